"""The query language: typed text read by :mod:`searchidx.typedtext`, parsed by Whoosh's parser
configured for news search.

Words must all match (AND) unless joined by ``OR``; ``NOT word`` or ``-word`` excludes;
``"a phrase"``; ``field:value`` for the fields in :data:`QUERY_FIELDS`; ``micro*`` wildcards;
``word~`` fuzzy; parentheses group. Words are stemmed, so "regulations" finds "regulation".
Punctuation never changes the meaning of typed text, and stray syntax (an unclosed quote or
bracket, an unknown ``field:``) is read as words with a note; :func:`check_syntax` is the
strict check (``searchidx query --strict``) for those who want the mistake as an error.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from whoosh import fields, qparser, query
from whoosh.searching import Searcher
from whoosh.support.levenshtein import distance

from searchidx import bounds, ranking, synonyms, typed_values, typedtext
from searchidx.errors import QueryError
from searchidx.marks import Mark, highlighted
from searchidx.result import Correction
from searchidx.schema import ANALYZER, WORD_PATTERN, build_schema
from searchidx.typedtext import FIELDS, Reading

#: Fields a query may name (``field:value``).
QUERY_FIELDS = FIELDS
#: Text fields searched when a word names no field (and whose terms are highlighted).
TEXT_FIELDS = tuple(ranking.FIELD_BOOSTS)

#: Parsed queries kept (most recently used).
PARSED_CACHED = 4096

#: Fuzzy and wildcard words a query may have. Each is matched against the whole vocabulary of
#: every field it searches: tens of milliseconds each, and 10 s for a query of 160 (while the
#: searcher serves no one else).
MAX_EXPANDED_WORDS = 10
_EXPANDED = (query.FuzzyTerm, query.Wildcard, query.Prefix)
#: Unknown words of a query a correction looks up the closest title word for: each compares
#: the title words with its first letter (some 8 ms at 100,000 articles; 32 unknown words
#: took 0.25 s); the rest are left as typed.
MAX_CORRECTED_WORDS = 4
#: Edits between an unknown word and its correction, at most.
_CORRECTION_EDITS = 2

_OPERATORS = frozenset({"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE", "TO"})
_FIELD_PREFIX = re.compile(r"(?<![\w.])([A-Za-z_]\w*):(?=\S)")
#: A word a correction may replace: letters and digits, a part of a joined word ("gover" and
#: "nor" of "gover-nor", as the index splits it); not a wildcard, a fuzzy or a boosted word (an
#: operator character counts only right after a letter or digit), nor a field's name or value
#: (:func:`_in_field_syntax`).
_WORD = re.compile(r"(?<!\w)(?<!\w[*?~^'])[^\W\d_]\w*(?![\w*?~]|\^)")
_FIELD_BEFORE = re.compile(r"(\w+):$")


#: The schema both parsers read fields from, and the bounds check queries against.
_SCHEMA = build_schema()


def _make_parser(
    termclass: type[query.Query] = query.Term, schema: fields.Schema | None = None
) -> qparser.QueryParser:
    """The query language's parser; ``schema`` (default: the index's) decides how words are
    analysed (:mod:`searchidx.cluster_query` parses the same text keeping words unstemmed)."""
    parser = qparser.MultifieldParser(
        list(TEXT_FIELDS),
        schema or _SCHEMA,
        fieldboosts=ranking.FIELD_BOOSTS,
        group=qparser.AndGroup,
        termclass=termclass,
    )
    parser.add_plugin(qparser.PlusMinusPlugin())
    parser.add_plugin(qparser.FuzzyTermPlugin())
    return parser


_PARSER = _make_parser()
_FUZZY_PARSER = _make_parser(termclass=query.FuzzyTerm)


def read(text: str) -> Reading:
    """How typed ``text`` is read (:func:`typedtext.read`), its words after the
    :data:`~searchidx.bounds.MAX_QUERY_WORDS`-th left out with a note (as web search engines do
    with a pasted paragraph); should Whoosh's parser still fail on the reading, its words alone,
    with a note."""
    text, cut = _within_word_cap(text)
    reading = typedtext.read(text)
    try:
        _parsed(reading.query, False)
    except QueryError as error:
        words = typedtext.words_only(text)
        reading = Reading(
            words.query, (*reading.notes, f"{error}; searched its words only"), words.parts
        )
    if cut:
        return Reading(reading.query, (*reading.notes, cut), reading.parts)
    return reading


_INDEXED_WORD = re.compile(WORD_PATTERN)


def _within_word_cap(text: str) -> tuple[str, str | None]:
    """``text`` up to its :data:`~searchidx.bounds.MAX_QUERY_WORDS`-th different word, and the
    note saying where it was cut (None when it was not)."""
    seen: set[str] = set()
    for found in _INDEXED_WORD.finditer(text):
        if found.group(0) in typedtext.RESERVED_WORDS:
            continue
        seen.add(found.group(0).casefold())
        if len(seen) > bounds.MAX_QUERY_WORDS:
            rest = text[found.start() :].split()
            return text[: found.start()], (
                f"a search takes at most {bounds.MAX_QUERY_WORDS} different words, so the "
                f"rest ({' '.join(rest[:3])}{' ...' * (len(rest) > 3)}) was left out"
            )
    return text, None


def parse_query(text: str, fuzzy: bool = False) -> query.Query | None:
    """The Whoosh query for typed ``text`` (see :func:`read`); None for blank text or a bare
    ``*`` (browse everything), :data:`whoosh.query.NullQuery` (nothing) for text without a word."""
    if not text.strip():
        return None
    return parse_reading(read(text), fuzzy)


def parse_reading(reading: Reading, fuzzy: bool = False) -> query.Query | None:
    """The Whoosh query of a reading (see :func:`read`), within :mod:`searchidx.bounds`, with
    the title phrase bonus (:func:`ranking.with_title_phrase`), its words and phrases expanded
    by the current synonyms (:mod:`searchidx.synonyms`)."""
    if not reading.query:
        return query.NullQuery
    parsed = _parsed(reading.query, fuzzy)
    if bounds.every_article(parsed):
        return None  # a bare *: every article, answered as a browse
    bounds.check_query(parsed, _SCHEMA)
    if not fuzzy and (count := expanded_words(parsed)) > MAX_EXPANDED_WORDS:
        raise QueryError(
            f"the query has {count} fuzzy or wildcard words (word~, word*); use at "
            f"most {MAX_EXPANDED_WORDS}",
            "q",
        )
    return synonyms.current().expand(ranking.with_title_phrase(parsed))


def expanded_words(parsed: query.Query) -> int:
    """How many distinct fuzzy and wildcard words ``parsed`` has (the parser repeats each
    for every field searched)."""
    return len(
        {(type(leaf), leaf.text) for leaf in bounds.leaves(parsed) if isinstance(leaf, _EXPANDED)}
    )


#: Words of letters and digits alone, one space apart: what Whoosh's parser reads as each
#: word parsed alone, all required (no operator, phrase, field, wildcard or group).
_PLAIN_WORDS = re.compile(r"[^\W_]+(?: [^\W_]+)+")
_PLAIN_WORD = re.compile(r"[^\W_]+")


@functools.lru_cache(maxsize=PARSED_CACHED)
def _parsed(text: str, fuzzy: bool) -> query.Query:
    """Whoosh's parser takes about a millisecond and its answer depends on the text alone
    (never on the index), so parsed queries are kept; nothing mutates them. ``text`` is a
    :class:`Reading`'s query. Plain words (most queries) are parsed a word at a time, each
    as the parser reads it in any query (:func:`_plain_word`), and their And normalised as
    the parser normalises its answer is its answer: a new query of the bench's in 0.10 ms
    of CPU instead of 0.25 (tests/test_typed_queries.py holds the two equal)."""
    words = text.split(" ")
    if not fuzzy and _PLAIN_WORDS.fullmatch(text) and _OPERATORS.isdisjoint(words):
        return _all_of([_parsed(word, False) for word in words])
    word = _plain_word(text) if not fuzzy and text not in _OPERATORS else None
    if word is not None:
        return word
    parser = _FUZZY_PARSER if fuzzy else _PARSER
    try:
        parsed = parser.parse(text)
    except Exception as error:  # the parser's own errors have no common base class
        raise QueryError(f"cannot parse the query: {error}", "q") from None
    # A plain word's span, noted by the parser (see bounds._shown).
    for leaf in bounds.leaves(parsed):
        if type(leaf) is query.Term and getattr(leaf, "startchar", None) is not None:
            setattr(leaf, "typed", text[leaf.startchar : leaf.endchar])  # noqa: B010
    return parsed


def _all_of(parts: list[query.Query]) -> query.Query:
    """``And(parts).normalize()``: made directly where every part is a word's Or of its terms
    as :func:`_plain_word` makes it, normal already (the distinct ones in order, as Whoosh's
    normalize keeps them, which copies each: 30 us of a new query of two words), else
    normalised by Whoosh."""
    if not all(map(_normal_word, parts)):
        together: query.Query = query.And(parts).normalize()
        return together
    distinct = list(dict.fromkeys(parts))
    return distinct[0] if len(distinct) == 1 else query.And(distinct)


def _normal_word(part: query.Query) -> bool:
    """Whether ``part`` is an Or of terms, unboosted, that Whoosh's normalize leaves as it is
    (no term twice)."""
    return (
        type(part) is query.Or
        and part.boost == 1.0
        and not part.minmatch
        and not part.scale
        and all(type(term) is query.Term for term in part.subqueries)
        and len(set(part.subqueries)) == len(part.subqueries)
    )


def _plain_word(text: str) -> query.Query | None:
    """What the parser makes of one word of letters and digits, made as its ``term_query``
    makes it, without the parser's tagging and plugins: the Or of the word's term in each
    text field (with the field's boost) where its analysis gives one; None when a field's
    gives several or parses queries itself (the parser then)."""
    if not _PLAIN_WORD.fullmatch(text):
        return None
    terms: list[query.Query] = []
    analysed: dict[tuple[type, int], list[str]] = {}  # fields of one kind and analyzer: once
    for name in TEXT_FIELDS:
        field = _SCHEMA[name]
        if field.self_parsing():
            return None
        kind = (type(field), id(field.analyzer))  # the schema's: alive as long as it
        if kind not in analysed:
            analysed[kind] = list(
                field.process_text(text, mode="query", tokenize=True, removestops=True)
            )
        texts = analysed[kind]
        if len(texts) > 1:
            return None
        if texts:
            term = query.Term(name, texts[0], boost=ranking.FIELD_BOOSTS[name])
            setattr(term, "typed", text)  # noqa: B010 - as _parsed notes the parser's
            terms.append(term)
    if len(terms) > 1:  # one term a field, distinct: normal already (normalize copies it)
        return query.Or(terms)
    either: query.Query = query.Or(terms).normalize()
    return either


def check_syntax(text: str) -> None:
    """Raise :class:`QueryError` for stray syntax (``searchidx query --strict``): what
    :func:`read` would read as words, with a note; and for a value its field cannot take
    (``quality:abc``), which a search leaves out, with a note."""
    if text.count('"') % 2:
        raise QueryError('unbalanced quote: close the phrase with a second "', "q")
    depth = 0
    for character in _outside_quotes(text):
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth < 0:
            raise QueryError("unbalanced brackets: a ')' has no '(' before it", "q")
    if depth:
        raise QueryError("unbalanced brackets: a '(' is never closed with ')'", "q")
    unquoted = "".join(_outside_quotes(text))
    for match in _FIELD_PREFIX.finditer(unquoted):
        if match.group(1).lower() not in QUERY_FIELDS:
            raise QueryError(
                f"unknown field {match.group(1)!r}; search one of "
                + ", ".join(QUERY_FIELDS)
                + ' (or put the words in quotes: "a:b")',
                "q",
            )
    for note in typedtext.read(text).notes:
        if (refused := typed_values.refusal(note)) is not None:
            raise QueryError(refused, "q")


def _outside_quotes(text: str) -> Iterator[str]:
    inside = False
    for character in text:
        if character == '"':
            inside = not inside
        elif not inside:
            yield character


def highlight_terms(
    parsed: query.Query,
    expanded_terms: Callable[[query.Query], Iterable[tuple[str | None, Any]]],
) -> frozenset[str]:
    """The terms (stems) the query looks for in text fields, wildcards and fuzzy expanded by
    ``expanded_terms(leaf)`` (the matcher's: the words it matched, not a second expansion).

    Walks the leaves itself: whoosh3 3.54's ``Query.existing_terms`` reuses its ``fieldname``
    argument as a loop variable and so drops every field after the first it meets.
    """
    return frozenset(
        text.decode() if isinstance(text, bytes) else text
        for leaf in bounds.leaves(parsed)
        for field, text in expanded_terms(leaf)
        if field in TEXT_FIELDS
    )


def correct(
    text: str,
    searcher: Searcher,
    title_words: Sequence[str],
    documents: Callable[[str, str], int] | None = None,
) -> Correction | None:
    """``text`` with unknown words replaced by the closest title word of the index, if any.

    A word is unknown when its stem is in no text field. Field names, operators, wildcards and
    quoted phrases are left as typed. ``title_words`` are the index's title words as written,
    sorted (the snapshot's table): the candidates Whoosh's corrector would merge from every
    segment's word list for each unknown word. ``documents``: how many documents have a
    field's word (None: the reader's count; a snapshot's matcher keeps the counts of the words
    its search just charged: some 70 us of a search that finds nothing, asked again).
    """
    reader = searcher.reader()
    count = reader.doc_frequency if documents is None else documents

    def known(word: str) -> bool:
        stems = [token.text for token in ANALYZER(word)]
        return not stems or any(count(f, s) for f in TEXT_FIELDS for s in stems)

    def closest(word: str) -> str | None:
        """Whoosh's ``reader.corrector("title").suggest(word, limit=1, maxdist=2, prefix=1)``:
        of the title words within two edits starting with the same letter, the one with the
        highest (score, word), the score rising with the word's frequency in titles."""
        first = bisect.bisect_left(title_words, word[:1])
        end = bisect.bisect_left(title_words, word[:1] + "\U0010ffff", lo=first)
        near = [
            candidate
            for candidate in title_words[first:end]
            if abs(len(candidate) - len(word)) <= _CORRECTION_EDITS  # else too far: not measured
            and candidate != word
            and distance(candidate, word, limit=_CORRECTION_EDITS) <= _CORRECTION_EDITS
        ]
        scored = [
            (0 - (_CORRECTION_EDITS + 1.0 / (reader.frequency("title", each) or 1) * 0.5), each)
            for each in near
        ]
        return max(scored)[1] if scored else None

    return correct_with(text, known, closest)


def correct_with(
    text: str, known: Callable[[str], bool], closest: Callable[[str], str | None]
) -> Correction | None:
    """:func:`correct` with the index's answers given: whether a (lowercased) word is known,
    and the closest title word to an unknown one (an engine that is not Whoosh has its own).
    Only the first :data:`MAX_CORRECTED_WORDS` unknown words are looked up; the rest are left
    as typed."""
    pieces: list[tuple[str, str | None]] = []  # (original, replacement)
    position = 0
    looked_up = 0
    for match in _WORD.finditer(text):
        word = match.group(0)
        if word in _OPERATORS or _inside_quotes(text, match.start()):
            continue
        if _in_field_syntax(text, match):
            continue
        if looked_up == MAX_CORRECTED_WORDS or known(word.lower()):
            continue
        looked_up += 1
        suggestion = closest(word.lower())
        if suggestion:
            pieces.append((text[position : match.start()], None))
            pieces.append((word, suggestion))
            position = match.end()
    if not any(replacement for _, replacement in pieces):
        return None
    pieces.append((text[position:], None))
    plain = "".join(replacement or original for original, replacement in pieces)
    marked = highlighted(
        Mark(replacement) if replacement else original for original, replacement in pieces
    )
    return Correction(text=plain, marked=marked)


def _in_field_syntax(text: str, match: re.Match[str]) -> bool:
    """Whether the word names a known field (``title:``) or is a value of one (``title:word``);
    another ``name:`` is text, as :mod:`searchidx.typedtext` reads it."""
    if text[match.end() : match.end() + 1] == ":" and match.group(0).lower() in QUERY_FIELDS:
        return True
    field = _FIELD_BEFORE.search(text, 0, match.start())
    return field is not None and field.group(1).lower() in QUERY_FIELDS


def _inside_quotes(text: str, position: int) -> bool:
    """Inside a phrase: after an opening quote that is closed (an unclosed one is ignored)."""
    return text.count('"', 0, position) % 2 == 1 and '"' in text[position:]
