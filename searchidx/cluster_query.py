"""The project's query language, translated into OpenSearch query DSL (never ``query_string``).

The text is read (:mod:`searchidx.typedtext`) and parsed by the same Whoosh parser as locally,
so the same words, phrases, operators, groups, fields, wildcards, fuzzy words and ranges come
out, and a query that fails locally fails the same way. One thing differs: the words are left
unstemmed (lowercased and folded only), and each becomes a ``match`` that the cluster analyses
with its own copy of the analyzer, so a word finds what the cluster indexed for it (Whoosh's
and Lucene's Porter stemmers differ on a few words: "running" is "runn" to one, "run" to the
other). Phrases get back the stop words the reading dropped ("bank of america", "stay-at-home"),
from the text as typed: the cluster leaves a gap where a stop word was (Whoosh closes it up),
and finds the phrase only when it is asked the way it indexed it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC
from typing import Any

from whoosh import query
from whoosh.analysis import STOP_WORDS, CharsetFilter, LowercaseFilter, RegexTokenizer
from whoosh.util.times import long_to_datetime

from searchidx import querylang, synonyms
from searchidx.errors import QueryError
from searchidx.schema import ANALYZER, FOLDED, WORD_PATTERN, Text, build_schema, fold

#: Words as typed, lowercased and folded: what the parser leaves for the cluster to analyse.
SURFACE = RegexTokenizer(WORD_PATTERN) | LowercaseFilter() | CharsetFilter(FOLDED)
#: Keyword fields whose values the cluster lowercases itself (a normalizer).
KEYWORDS = ("domain", "category", "type")

Dsl = dict[str, Any]
_WORDS = re.compile(WORD_PATTERN)


@functools.cache
def _parser(fuzzy: bool) -> Any:
    schema = build_schema()
    for name in querylang.TEXT_FIELDS:
        schema.remove(name)
        schema.add(name, Text(analyzer=SURFACE))
    termclass = query.FuzzyTerm if fuzzy else query.Term
    return querylang._make_parser(termclass, schema)


def text_query(text: str, fuzzy: bool = False, typed: str | None = None) -> Dsl:
    """The OpenSearch query for typed ``text``; call it after :func:`querylang.parse_reading`
    has accepted its reading (and said it is not a browse of everything). ``typed``: the text
    the user typed, when ``text`` is derived from it (a relaxed query): its phrases' stop
    words are looked up there."""
    reading = querylang.read(text)
    if not reading.query:
        return {"match_none": {}}
    try:
        parsed = _parser(fuzzy).parse(reading.query)
    except Exception as error:  # the parser's own errors have no common base class
        raise QueryError(f"cannot parse the query: {error}", "q") from None
    words = tuple(fold(word) for word in _WORDS.findall(text if typed is None else typed))
    return translate(parsed, words) or {"match_none": {}}


def translate(node: query.Query, typed: tuple[str, ...] = ()) -> Dsl | None:
    """One Whoosh query node as DSL; None for a node that matches by nothing it holds (a stop
    word, an empty group), which its parent leaves out as Whoosh's parser does. ``typed``:
    the words of the text as typed (for the stop words of phrases)."""
    kind = type(node)
    if kind in (query.And, query.Require):
        return _bool("must", node.children(), typed)
    if kind in (query.Or, query.DefaultOr):
        return _bool("should", node.children(), typed)
    if type(node) is query.Not:
        inner = translate(node.query, typed)
        return None if inner is None else {"bool": {"must_not": [inner]}}
    if type(node) is query.AndNot:
        positive, negative = translate(node.a, typed), translate(node.b, typed)
        if positive is None or negative is None:
            return positive
        return {"bool": {"must": [positive], "must_not": [negative]}}
    if type(node) is query.AndMaybe:
        required, optional = translate(node.a, typed), translate(node.b, typed)
        if required is None or optional is None:
            return required
        return {"bool": {"must": [required], "should": [optional]}}
    if isinstance(node, query.Every):  # an EveryDated too
        return {"exists": {"field": node.fieldname}} if node.fieldname else {"match_all": {}}
    if node is query.NullQuery or kind is type(query.NullQuery):
        return None
    leaf = _leaf(node, typed)
    if leaf is None:
        return None
    boost = getattr(node, "boost", 1.0)
    if boost != 1.0:
        (body,) = leaf.values()
        if "bool" in leaf:  # a word and its synonyms
            body["boost"] = boost
        else:
            (options,) = body.values()
            if isinstance(options, dict):  # a leaf of one field's options: the weight goes there
                options["boost"] = boost
    return leaf


def _leaf(node: query.Query, typed: tuple[str, ...]) -> Dsl | None:
    if type(node) is query.FuzzyTerm:
        fuzzy = {
            "query": node.text,
            "fuzziness": node.maxdist,
            "prefix_length": node.prefixlength,
            "fuzzy_transpositions": False,
        }
        return {"match": {node.fieldname: fuzzy}}
    if type(node) is query.Term:
        return _with_synonyms(node.fieldname, [node.text], _term(node.fieldname, node.text))
    if type(node) is query.Phrase:
        options = {"query": _as_typed(node.words, typed), "slop": max(node.slop - 1, 0)}
        phrase = {"match_phrase": {node.fieldname: options}}
        return _with_synonyms(node.fieldname, node.words, phrase)
    if type(node) is query.Prefix:
        return {"prefix": {node.fieldname: {"value": node.text}}}
    if type(node) is query.Wildcard:
        return {"wildcard": {node.fieldname: {"value": node.text}}}
    if isinstance(node, query.NumericRange):  # a DateRange, a ColumnDateRange too
        convert = _date if node.fieldname == "date" else int
        return {"range": {node.fieldname: _bounds(node, convert)}}
    if type(node) is query.TermRange:
        return {"range": {node.fieldname: _bounds(node, str)}}
    raise QueryError(f"this query has a part ({node}) the OpenSearch engine cannot run yet", "q")


def _with_synonyms(field: str, words: list[str], leaf: Dsl | None) -> Dsl | None:
    """A word or phrase of a text field, or, if it is in a group of the current synonyms
    (:func:`synonyms.current`), any member of the group, as written in the synonyms file, as
    :meth:`synonyms.Synonyms.expand` does locally."""
    rules = synonyms.current()
    if not rules or leaf is None or field not in querylang.TEXT_FIELDS:
        return leaf
    members = rules.rules.get(tuple(token.text for token in ANALYZER(" ".join(words))))
    if members is None:
        return leaf
    found = [{"match_phrase": {field: {"query": rules.written[member]}}} for member in members]
    return {"bool": {"should": found, "minimum_should_match": 1}}


def _term(field: str, text: str) -> Dsl | None:
    if field in querylang.TEXT_FIELDS:
        if text in STOP_WORDS:
            return None  # Whoosh's analyzer drops it: no condition
        return {"match": {field: {"query": text}}}
    if field == "published":
        if text not in ("true", "false"):
            return {"match_none": {}}
        return {"term": {field: {"value": text == "true"}}}
    return {"term": {field: {"value": text}}}


def _bounds(
    node: query.NumericRange | query.TermRange, convert: Callable[[Any], Any]
) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if node.start is not None:
        bounds["gt" if node.startexcl else "gte"] = convert(node.start)
    if node.end is not None:
        bounds["lt" if node.endexcl else "lte"] = convert(node.end)
    return bounds


def _date(value: int) -> str:
    """A bound of the ``date`` field (Whoosh's long: microseconds) as an ISO instant."""
    return long_to_datetime(value).replace(tzinfo=UTC).isoformat()


def _as_typed(words: list[str], typed: tuple[str, ...]) -> str:
    """A phrase's words with the stop words that stood between them where it was typed."""
    for start in range(len(typed)):
        found: list[int] = []
        position = start
        for word in words:
            while position < len(typed) and typed[position] != word:
                if typed[position] not in STOP_WORDS or not found:
                    break
                position += 1
            if position >= len(typed) or typed[position] != word:
                break
            found.append(position)
            position += 1
        else:
            return " ".join(typed[found[0] : found[-1] + 1])
    return " ".join(words)


def _bool(occur: str, children: Any, typed: tuple[str, ...]) -> Dsl | None:
    parts = [part for child in children if (part := translate(child, typed)) is not None]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    clause: Dsl = {occur: parts}
    if occur == "should":
        clause["minimum_should_match"] = 1
    return {"bool": clause}
