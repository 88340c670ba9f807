"""The Whoosh schema, and how an :class:`Article` becomes an index document.

Two kinds of fields, on purpose:

* text fields (``title``, ``excerpt``, ``body``, ``topic``, ``provider``) are analysed with a
  stemming analyzer and scored; they are what the query language searches;
* facet fields (``topics``, ``provider_name``, ``category``, ``type``, ``published``, ``date``,
  ``quality``) are exact values kept in Whoosh columns. Facet counts, filters and sorts read
  the columns once per searcher into arrays (see :mod:`searchidx.catalog`) instead of
  expanding terms on every search, which is where naive Whoosh spends its time.

The display record (everything but ``secured`` and the body) is one JSON blob in a column of
its own, the stored body in another (:mod:`searchidx.records`), so a hit is one read, two when
it shows a snippet of the body.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
import re
import weakref
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from whoosh import columns, fields, formats
from whoosh.analysis import (
    STOP_WORDS,
    CharsetFilter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.system import pack_uint

from searchidx import whoosh_internals
from searchidx.articles import Article
from searchidx.date_column import DateColumn
from searchidx.positions import VarintPositions, encoded
from searchidx.records import JSON_ONLY, TrainedColumn, decoded
from searchidx.value_columns import SEPARATOR, CodedValuesColumn

if TYPE_CHECKING:  # the content folder's module (and hashlib) is the indexer's, not a search's
    from searchidx.content import FileState

#: Bump when the schema, the analyzer or the document mapping changes: ``searchidx index``
#: rebuilds an index of another version from scratch, and searching one says to.
#: 3: accents folded ("são" is "sao"); "&" joins words as "." does ("AT&T" is one word); words
#: of one character kept. 4: one term per date and per quality (no numeric tiers). 5: short
#: posting lists inlined in the term index (``whoosh_internals.INLINE_LIMIT``), which an older
#: searchidx reads, but its sync fails merging them. 6: the display record in a column deflated
#: with a dictionary (:mod:`searchidx.records`), not a Whoosh stored field. 7: the body out of
#: the display record, in a column of its own (``stored_body``).
#: 8: a word's positions in a text field as varints (:mod:`searchidx.positions`), not pickled;
#: paths a column alone (no term), states packed, records and bodies compressed by zstd.
#: 9: a block's positions one string (:func:`searchidx.positions.joined`), not a value each.
#: 10: a state's content hash SHA-256's first 16 bytes (:data:`searchidx.content.DIGEST_BYTES`);
#: topics coded (:class:`searchidx.value_columns.CodedValuesColumn`); display records without
#: the path (the path column's, put back as read); a date a column alone, no term
#: (:mod:`searchidx.date_column`); the term index sorted columns of each field's words
#: (:mod:`searchidx.term_index`), not Whoosh's hash file.
SCHEMA_VERSION = 10

#: Separates the values of the multi-valued ``topics`` column; cannot occur in YAML text.
VALUE_SEPARATOR = SEPARATOR.decode()

#: Column value for an article without a quality: below every real one, so it sorts last.
QUALITY_MISSING = -(2**31)

#: Body text kept in the ``stored_body`` column for snippets; the whole body is still indexed.
STORED_BODY_CHARS = 4000

#: A word of text: letters and digits (and Whoosh's ``*``), joined by "." or "&" ("u.s",
#: "at&t", "3.5"); every other character separates words ("covid-19" is "covid" and "19").
WORD_PATTERN = r"[\w*]+(?:[.&][\w*]+)*"
#: :data:`WORD_PATTERN` with possessive repeats: the same words (nothing after a repeat can
#: fail, so the engine never backtracks into one), found in less time (a body's in 20 us, 24
#: as written above). What the analyzer's own expression is read as, by a plain chain.
WORD_PATTERN_POSSESSIVE = r"[\w*]++(?:[.&][\w*]++)*+"

#: The (lowercase) letters Unicode does not decompose, spelled out.
_SPELLED_OUT = {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th"}
#: Accents folded away, and the letters Unicode does not decompose spelled out (after
#: lowercasing): "São", "sao" and "SÃO" are the same word.
FOLDED = {**whoosh_internals.ACCENT_MAP, **str.maketrans(_SPELLED_OUT)}

#: The analyzer of every text field (and of query words): words, lowercased, accents folded,
#: stop words dropped, Porter stems (cached without bound: news vocabulary is small). Words of
#: one letter or digit are kept, so "t-mobile", "x-ray", "vitamin c" and "windows 7" find what
#: they say, not every "mobile", "ray", "vitamin" and "windows".
ANALYZER = (
    RegexTokenizer(WORD_PATTERN)
    | LowercaseFilter()
    | CharsetFilter(FOLDED)
    | StopFilter(stoplist=STOP_WORDS, minsize=1)
    | StemFilter(cachesize=-1)
)


class Text(fields.TEXT):
    """Whoosh's TEXT, indexed in one pass when its analyzer is the stemming chain.

    Whoosh runs every token through a generator per filter and a Token object, then groups the
    positions: 0.25 ms per sample article. For the chain of :data:`ANALYZER` (regex tokens,
    lowercase, folded accents, stop words, cached Porter stems) :meth:`index` does the same in
    one loop, each distinct word analysed once (:data:`_ANALYSES`) and each single position
    encoded once: 0.13 ms per article of the benchmark's collection (0.27 with a loop per
    word). It returns exactly what ``TEXT.index`` yields (same terms, frequencies, weights and
    encoded positions; tests/test_build_fastpaths.py compares them). Any other analyzer,
    format or option goes through Whoosh. Positions are kept as :class:`VarintPositions`
    (1 byte a word found once, where Whoosh's ``Positions`` takes 13).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if type(self.format) is formats.Positions:  # a word's positions: their own encoding
            self.format = VarintPositions(field_boost=self.format.field_boost)

    def subfields(self) -> Iterator[tuple[str, fields.FieldType]]:
        """TEXT's subfields, its spelling words' field without values. Whoosh gives a spelling
        word the value of the field's last term (a leftover variable), which the spelling
        field's ``Frequency`` splits into 4-byte pieces: a block of varints shorter than that
        has fewer pieces than postings, and Whoosh's merge fails reading them. A spelling
        word's posting needs no value (``Existence``), and no longer keeps one."""
        for prefix, field in super().subfields():
            if type(field) is fields.SpellField and type(self.format) is VarintPositions:
                field.format = formats.Existence()
            yield prefix, field

    def index(self, value: Any, **kwargs: Any) -> Any:
        analysis = _plain_analysis(self.analyzer)
        if kwargs or type(value) is not str or analysis is None:
            return super().index(value, **kwargs)
        chain, known = analysis
        renumber = chain[5]
        positions: dict[bytes, list[int]] = {}
        kept = -1
        for position, word in enumerate(_written(chain, value)):
            term = known.get(word)
            if term is None:
                if len(known) >= _KNOWN_WORDS:
                    known.clear()
                analysed_word, stopped = analysed(chain, word)
                term = known[word] = b"" if stopped else analysed_word.encode()
            if not term:  # a stop word
                continue
            # StopFilter(renumber=True) numbers the words it keeps from the first one on.
            kept = position if not renumber or kept < 0 else kept + 1
            if term in positions:
                positions[term].append(kept)
            else:
                positions[term] = [kept]
        format_ = self.format
        if type(format_) is VarintPositions:
            boost = format_.field_boost
            weight = _count_weight if boost == 1.0 else partial(operator.mul, 1.0 * boost)
            return [
                (term, len(found), weight(len(found)), encoded(found))
                for term, found in positions.items()
            ]
        if type(format_) is formats.Frequency:
            boost = format_.field_boost
            return [
                (term, len(found), len(found) * 1.0 * boost, pack_uint(len(found)))
                for term, found in positions.items()
            ]
        return super().index(value)

    def spellable_words(self, value: Any) -> Iterator[str]:
        """``TEXT.spellable_words`` (the distinct words, sorted, analysed without the stemmer)
        in one pass for the plain chain; any other analyzer or value goes through Whoosh."""
        analysis = _plain_analysis(self.analyzer)
        if type(value) is not str or analysis is None:
            return super().spellable_words(value)
        chain = analysis[0]
        unstemmed = map(partial(_unstemmed, chain), _written(chain, value))
        return iter(sorted({word for word, stopped in unstemmed if not stopped}))


def _written(chain: tuple[Any, ...], value: str) -> list[str]:
    """The words of ``value`` as written, by the chain's tokenizer."""
    expression = chain[0]
    if expression.groups:  # findall would give the groups, not the words
        return [match.group(0) for match in expression.finditer(value)]
    return cast(list[str], expression.findall(value))


#: Words as written -> their terms' bytes (b"": a stop word) under each plain analyzer chain,
#: by the analyzer's id while it lives (each opened index unpickles analyzers of its own):
#: text repeats its words, and each is then lowercased, folded, checked, stemmed and encoded
#: once.
_ANALYSES: dict[int, tuple[tuple[Any, ...], dict[str, bytes]]] = {}
#: Words kept per chain before the cache starts again (some 100 MB at most).
_KNOWN_WORDS = 500_000


def _plain_analysis(analyzer: Any) -> tuple[tuple[Any, ...], dict[str, bytes]] | None:
    """The settings of a plain chain (:func:`_plain_chain`) and its words analysed so far."""
    found = _ANALYSES.get(id(analyzer))
    if found is None:
        chain = _plain_chain(analyzer)
        if chain is None:
            return None
        found = _ANALYSES[id(analyzer)] = (chain, {})
        weakref.finalize(analyzer, _ANALYSES.pop, id(analyzer), None)
    return found


@functools.cache
def _count_weight(count: int) -> float:
    """The weight of a word found ``count`` times (``count * 1.0``), one float object a count:
    a build buffers a segment's postings, each with its weight, and a float apiece was a third
    of a posting's memory (24 of some 75 bytes)."""
    return count * 1.0


_WORDS_POSSESSIVE = re.compile(WORD_PATTERN_POSSESSIVE)
#: The flags Whoosh's tokenizer compiles its expression with (Unicode: a str pattern's).
_WORD_FLAGS = _WORDS_POSSESSIVE.flags


def _plain_chain(analyzer: Any) -> tuple[Any, ...] | None:
    """The settings of a RegexTokenizer | LowercaseFilter | [CharsetFilter |] StopFilter |
    StemFilter chain (as :data:`ANALYZER`, or StemmingAnalyzer, builds it): the tokenizer's
    expression, the charset map (None without one), the stop filter's settings, the stemmer's,
    and whether the charset map leaves lowercase ASCII as it is (then an ASCII word is not
    translated: 2 us a word, most of analysing one of a sync's new words); None for any other
    analyzer."""
    items = getattr(analyzer, "items", None)
    if items is None:
        return None
    kinds = tuple(type(item) for item in items)
    if kinds == (RegexTokenizer, LowercaseFilter, StopFilter, StemFilter):
        tokenizer, _, stop, stem = items
        charmap = None
    elif kinds == (RegexTokenizer, LowercaseFilter, CharsetFilter, StopFilter, StemFilter):
        tokenizer, _, charset, stop, stem = items
        charmap = charset.charmap
    else:
        return None
    if tokenizer.gaps:
        return None
    expression = tokenizer.expression
    if expression.pattern == WORD_PATTERN and expression.flags == _WORD_FLAGS:
        expression = _WORDS_POSSESSIVE
    return (
        expression,
        charmap,
        stop.stops,
        stop.min,
        stop.max,
        stop.renumber,
        stem.ignore,
        whoosh_internals.stem_function(stem),
        charmap is None or _keeps_lowercase_ascii(charmap),
    )


def _keeps_lowercase_ascii(charmap: Any) -> bool:
    """Whether ``str.translate(charmap)`` gives back every lowercased ASCII text as it is."""
    if not isinstance(charmap, dict):
        return False
    kept = [code for code in range(128) if not chr(code).isupper()]
    return all(charmap.get(code, code) in (code, chr(code)) for code in kept)


def analysed(chain: tuple[Any, ...], written: str) -> tuple[str, bool]:
    """A word as written -> (its term, whether the stop filter drops it), under the settings
    of :func:`_plain_chain`: the term lowercased and folded, and stemmed unless the stop filter
    drops it or the stemmer ignores it. Indexing skips the stopped words; highlighting keeps
    them, unstemmed, as Whoosh's highlighter does."""
    word, stopped = _unstemmed(chain, written)
    if not stopped and word not in chain[6]:
        word = chain[7](word)  # the stemmer, unless it ignores the word
    return word, stopped


def _unstemmed(chain: tuple[Any, ...], written: str) -> tuple[str, bool]:
    """A word as written -> (the word lowercased and folded, whether the stop filter drops
    it): what the chain makes of it without its stemmer."""
    _, charmap, stops, minsize, maxsize, *_, ascii_kept = chain
    word = written.lower()
    if charmap is not None and not (ascii_kept and word.isascii()):
        word = word.translate(charmap)  # spans stay on the text as written
    stopped = len(word) < minsize or (maxsize is not None and len(word) > maxsize)
    return word, stopped or word in stops


def fold(text: str) -> str:
    """Lowercased ``text`` with accents folded, as the index keeps its words."""
    return text.lower().translate(FOLDED)


def _coded_column() -> bool:
    """A column of a code per document and each distinct value once (facets of few values)."""
    return whoosh_internals.sortable_column(columns.RefBytesColumn())


def _coded_keyword() -> fields.KEYWORD:
    """A lowercased keyword with a :func:`_coded_column`: Whoosh's ``KEYWORD`` takes
    ``sortable`` as a flag only (its column of each document's bytes took 8 bytes a
    document at 100,000 articles, the codes take 1), so the column is set after."""
    field = fields.KEYWORD(lowercase=True)
    field.set_sortable(_coded_column())
    return field


def _bytes_column() -> columns.VarBytesColumn:
    """Whoosh's column of variable-length bytes without the offsets it adds past 32,768
    documents a segment (4 bytes a document, for its own reader not to sum the lengths when
    it opens the column): searchidx reads these columns by their lengths
    (:func:`whoosh_internals.var_bytes`), and Whoosh's reader sums them without."""
    return columns.VarBytesColumn(allow_offsets=False)


def _untiered(field: fields.NUMERIC) -> fields.NUMERIC:
    """``field`` indexing one term per value, not Whoosh's tiers of coarser ones.

    The tiers (8 terms a quality) only speed up Whoosh's own range search, and searches
    answer ranges from the per-document arrays (:meth:`IndexSnapshot.numeric_range`);
    Whoosh's searcher, where it answers (the fast paths off), expands a range over the exact
    terms instead: the same documents, more slowly. (Dates index no term at all: see
    :mod:`searchidx.date_column`.)"""
    field.shift_step = 0
    return field


def build_schema() -> fields.Schema:
    return fields.Schema(
        # Identity and sync state: columns alone. A path's term (a document's own, 110 bytes
        # of term index each) found only an article to show similar ones to, which reads the
        # column (:meth:`IndexSnapshot.documents_at`); a sync deletes by docnum.
        path=fields.COLUMN(_bytes_column()),
        state=fields.COLUMN(_bytes_column()),
        record=fields.COLUMN(TrainedColumn()),
        stored_body=fields.COLUMN(TrainedColumn()),
        # Searched text.
        title=Text(analyzer=ANALYZER, spelling=True),
        excerpt=Text(analyzer=ANALYZER),
        body=Text(analyzer=ANALYZER),
        topic=Text(analyzer=ANALYZER),
        provider=Text(analyzer=ANALYZER),
        domain=fields.KEYWORD(lowercase=True),
        # Facets, filters and sorts: exact values in columns.
        topics=fields.COLUMN(CodedValuesColumn()),
        provider_name=fields.ID(sortable=_coded_column()),
        category=_coded_keyword(),
        type=_coded_keyword(),
        published=fields.ID(sortable=_coded_column()),
        date=DateColumn(),
        quality=_untiered(fields.NUMERIC(int, bits=32, signed=True, sortable=True)),
    )


def to_document(article: Article, state: FileState) -> dict[str, Any]:
    """The fields Whoosh indexes for one article."""
    return {
        "path": article.path.encode(),
        "state": state.packed(),
        "record": display_record(article),
        "stored_body": article.body[:STORED_BODY_CHARS].encode(),
        "title": article.title,
        "excerpt": article.excerpt,
        "body": article.body,
        "topic": "\n".join(article.topics),
        "provider": " ".join(filter(None, [article.provider.name, article.provider.domain])),
        "domain": article.provider.domain.lower(),
        "topics": VALUE_SEPARATOR.join(article.topics).encode(),
        "provider_name": article.provider.name,
        "category": article.category.lower(),
        "type": article.type.lower(),
        "published": "true" if article.published else "false",
        "date": article.published_at.replace(tzinfo=None),
        "quality": QUALITY_MISSING if article.quality is None else _clamp(article.quality),
    }


def stored_record(article: Article) -> str:
    """The whole record, as the cluster engine stores it: JSON, the body cut short."""
    return encoded_record(_record(article)).decode()


def display_record(article: Article) -> bytes:
    """The record of the ``record`` column, in UTF-8: the article's row (:meth:`Article.to_row`,
    a JSON array; a JSON object before, which is read as ever: a hit's article is built of
    the array in 5.2 us where the object took 7.5) without the body (null: kept in the
    ``stored_body`` column, read only for a body snippet), without the path (null: kept in the
    ``path`` column, put back as records are read: :func:`~searchidx.records.records_of`),
    and without the web address where it is the original's (null, as it nearly always is: 10
    bytes a record deflated)."""
    row = article.to_row()
    row[_PATH] = row[_BODY] = None
    if row[_WEB_URL] == row[_ORIGINAL_URL]:
        row[_WEB_URL] = None
    return encoded_record(row)


#: Where a field's value is in a row (:meth:`Article.to_row`).
_PATH, _BODY, _ORIGINAL_URL, _WEB_URL = map(
    [field.name for field in dataclasses.fields(Article)].index,
    ("path", "body", "original_url", "web_url"),
)


def encoded_record(record: dict[str, Any] | list[Any]) -> bytes:
    """A record in UTF-8, written by orjson (a build's 30 us an article by the standard
    library's encoder, 5 by orjson: the same bytes for these keys and values). What orjson
    refuses, an integer beyond 64 bits or a lone surrogate from a YAML escape, goes through the
    standard library's, as before, marked :data:`~searchidx.records.JSON_ONLY` to be read back
    by it too."""
    import orjson  # not at import: a search never writes records (orjson imports uuid)

    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError:
        return JSON_ONLY + json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def _record(article: Article) -> dict[str, Any]:
    """``article.to_dict()`` with the body cut to :data:`STORED_BODY_CHARS`."""
    return {**article.to_dict(), "body": article.body[:STORED_BODY_CHARS]}


def from_record(stored: str | bytes, body: str | None = None, path: str | None = None) -> Article:
    """The article of a stored record with ``body`` (the stored body, cut to
    :data:`STORED_BODY_CHARS`) and ``path`` (the path column's); None: the record's own (a
    whole record, or a display record of schema 6 or older, which holds its body; of schema 9
    or older, or put back, its path)."""
    data = decoded(stored)
    if isinstance(data, list):  # a display record's row
        if path is not None:
            data[_PATH] = path
        data[_BODY] = body or ""
        if data[_WEB_URL] is None:
            data[_WEB_URL] = data[_ORIGINAL_URL]
        return Article.from_row(data)
    if body is not None:
        data["body"] = body
    if path is not None:
        data["path"] = path
    if "web_url" not in data:  # a display record's, the same as the original's
        data["web_url"] = data.get("original_url", "")
    return Article.from_dict(data)


def _clamp(quality: int) -> int:
    return max(QUALITY_MISSING + 1, min(quality, 2**31 - 1))
