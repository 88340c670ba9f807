"""Per-searcher caches: facet values, dates, qualities and sort orders as numpy arrays.

Whoosh counts facets document by document in Python and expands date ranges into terms on every
search: tens to hundreds of milliseconds per query at 100,000 articles (measured at 20,000 on 2
cores with whoosh3 3.54: facet counts 14 ms at p50 and 243 ms at p95, a date-range filter
109 / 158 ms). Nothing it computes changes between searches on the same index generation, so
an :class:`IndexSnapshot` reads what a search needs once, when first needed, straight from the
column files, and answers with vectorised array operations. Its
:class:`~searchidx.matching.QueryMatcher` does the same for postings and scores.

A new snapshot is made whenever the searcher is refreshed; docnums are only meaningful within
one snapshot. Its arrays are the ones the indexer wrote at commit (:mod:`searchidx.arrays`)
when it is given them, else built from the columns.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np
from whoosh import query
from whoosh.reading import IndexReader
from whoosh.searching import Searcher

from searchidx import ranking, whoosh_internals
from searchidx.articles import Article
from searchidx.defaults import RESULTS_CACHED, RESULTS_CACHED_BYTES
from searchidx.facets import BY_NAME, FACETS, Kind
from searchidx.lru import LruCache
from searchidx.matching import Matches, QueryMatcher
from searchidx.records import bodies_of, record_and_path, records_of
from searchidx.request import Sort
from searchidx.schema import QUALITY_MISSING, VALUE_SEPARATOR, from_record
from searchidx.value_columns import CodedValuesColumn

if TYPE_CHECKING:
    from searchidx.arrays import StoredArrays

#: The sorts kept as a whole order of the documents (relevance and best: by score).
PRESORTED = (Sort.NEWEST, Sort.OLDEST, Sort.QUALITY)

#: Counting goes document by document when the documents are fewer than the pairs / this.
_GATHER_BELOW = 4
#: Words whose document counts are kept per snapshot (similar articles weigh every word of an
#: article by them, and the same words come back from article to article).
FREQUENCIES_CACHED = 32_768
#: Articles kept per snapshot as hits show them (without their bodies): a common word's top
#: articles come back from search to search (45% of the bench's relevance hits at 100,000
#: had been shown before), and each is some 10 us to make again (its record inflated,
#: decoded and made an :class:`~searchidx.articles.Article`, frozen: 17 fields set one by
#: one). Some 2.4 KB each (10 MB at most).
SHOWN_CACHED = 4096


@dataclass(frozen=True)
class FacetTable:
    """The values of one facet for every document, as (document, value id) pairs.

    One pair per value a document has: a single-valued facet has one pair per document,
    ``topic`` one per topic. Counting the values of a set of documents is one ``bincount``.
    """

    values: tuple[str, ...]
    doc_ids: np.ndarray
    value_ids: np.ndarray
    ids_by_key: dict[str, int]

    @classmethod
    def build(
        cls,
        per_document: Sequence[Iterable[str]],
        live: np.ndarray,
        leading: FacetTable | None = None,
        start: int = 0,
    ) -> FacetTable:
        """The table of the live documents from ``start`` on (``per_document``: their values)
        after the ``leading`` table of those before (an earlier commit's: ``live`` has the
        deletions since). Value ids count in order of first appearance, document by
        document, as when built from the first document."""
        ids = {} if leading is None else {value: n for n, value in enumerate(leading.values)}
        doc_ids: list[int] = []
        value_ids: list[int] = []
        for docnum, values in enumerate(per_document, start):
            if not live[docnum]:
                continue
            for value in values:
                if value:
                    doc_ids.append(docnum)
                    value_ids.append(ids.setdefault(value, len(ids)))
        docs, codes = np.asarray(doc_ids, np.int32), np.asarray(value_ids, np.int32)
        if leading is not None:
            kept = live[leading.doc_ids]
            docs = np.concatenate([leading.doc_ids[kept], docs])
            codes = np.concatenate([leading.value_ids[kept], codes])
        # Each id's first pair, found in one pass (np.unique sorted every pair: 10 ms of the
        # arrays a sync writes, for the topics' 200,000 pairs at 100,000 articles).
        first = np.full(len(ids), len(codes), dtype=np.int64)
        np.minimum.at(first, codes, np.arange(len(codes)))
        seen = np.flatnonzero(first < len(codes))
        order = seen[np.argsort(first[seen], kind="stable")]  # ids in order of first appearance
        renumbered = np.zeros(len(ids), np.int32)
        renumbered[order] = np.arange(len(order), dtype=np.int32)
        names = list(ids)
        return cls.of(tuple(names[code] for code in order.tolist()), docs, renumbered[codes])

    @classmethod
    def of(cls, values: tuple[str, ...], doc_ids: np.ndarray, value_ids: np.ndarray) -> FacetTable:
        return cls(
            values=values,
            doc_ids=doc_ids,
            value_ids=value_ids,
            ids_by_key={value.casefold(): number for number, value in enumerate(values)},
        )

    @functools.cached_property
    def name_order(self) -> list[int]:
        """The value ids in order of their casefolded names (equal names by id): ties in
        counts are listed in it."""
        return sorted(range(len(self.values)), key=lambda number: self.values[number].casefold())

    @functools.cached_property
    def name_ranks(self) -> np.ndarray:
        """Each value id's place in :attr:`name_order`."""
        ranks = np.empty(len(self.values), dtype=np.int64)
        ranks[self.name_order] = np.arange(len(self.values))
        return ranks

    def lookup(self, value: str) -> int | None:
        """The id of a value, matched without regard to case."""
        return self.ids_by_key.get(value.casefold())

    @functools.cached_property
    def _by_value(self) -> tuple[np.ndarray, np.ndarray]:
        """Docnums grouped by value id, and where each value's group starts."""
        keys = self.value_ids
        if len(self.values) <= np.iinfo(np.int16).max:
            keys = keys.astype(np.int16)  # numpy sorts 16-bit keys by radix: 5-10 times faster
        order = np.argsort(keys, kind="stable")
        starts = np.searchsorted(self.value_ids[order], np.arange(len(self.values) + 1))
        return self.doc_ids[order], starts

    def documents_with(self, values: Iterable[str], size: int) -> np.ndarray:
        """A mask of the documents having any of ``values`` (unknown values match nothing)."""
        docs, starts = self._by_value
        mask = np.zeros(size, dtype=bool)
        for value in values:
            number = self.lookup(value)
            if number is not None:
                mask[docs[starts[number] : starts[number + 1]]] = True
        return mask

    def counts(self, documents: np.ndarray, docs: np.ndarray | None = None) -> np.ndarray:
        """How many of the masked documents have each value (indexed by value id).

        ``docs`` (the mask's docnums, if known) lets a small set be counted document by
        document instead of scanning every (document, value) pair.
        """
        value_of = self._value_of
        if value_of is not None:  # one value at most per document: a lookup each
            docs = np.flatnonzero(documents) if docs is None else docs
            docs = docs[: np.searchsorted(docs, len(value_of))]  # later ones have no value
            return np.bincount(value_of[docs], minlength=len(self.values) + 1)[:-1]
        if docs is not None and len(docs) * _GATHER_BELOW < len(self.doc_ids):
            starts = self._starts
            docs = docs[docs < len(starts) - 1]  # later documents have no value
            first, lengths = starts[docs], starts[docs + 1] - starts[docs]
            total = int(lengths.sum())
            offsets = np.repeat(first - np.cumsum(lengths) + lengths, lengths)
            chosen = self.value_ids[offsets + np.arange(total)]
        else:
            chosen = self.value_ids[documents[self.doc_ids]]
        return np.bincount(chosen, minlength=len(self.values))

    @functools.cached_property
    def _value_of(self) -> np.ndarray | None:
        """Each document's value id (``len(values)``: none) up to the last document with a
        value; None when a document has several (topics)."""
        if len(self.doc_ids) > 1 and not np.all(np.diff(self.doc_ids) > 0):
            return None
        last = int(self.doc_ids[-1]) if len(self.doc_ids) else -1
        value_of = np.full(last + 1, len(self.values), dtype=np.int64)
        value_of[self.doc_ids] = self.value_ids
        return value_of

    @functools.cached_property
    def _starts(self) -> np.ndarray:
        """Where each document's pairs start (``doc_ids`` is ascending), up to the last
        document with a value, and where its pairs end."""
        last = int(self.doc_ids[-1]) if len(self.doc_ids) else -1
        return np.searchsorted(self.doc_ids, np.arange(last + 2)).astype(np.int64)


#: A facet whose documents have more values than this is counted from its table, not a row.
_ROW_WIDTH_MAX = 8


class FacetRows(NamedTuple):
    """Every facet's value ids of each document side by side in one row, so that the facets
    of a set of documents are counted by one gather of rows and one ``bincount``.

    Counting facet by facet from their tables reads one array per facet, a cache line per hit
    each, right after matching has filled the cache with postings; and a facet with two or
    three values (nearly every document in the same one) makes ``bincount`` add to the same
    counter over and over. A row is one read per hit, and its facets' counters take turns.
    A facet's ids are offset past the facets' before it, and a document with fewer values
    than its facet's columns pads them with the facet's own "none" id, counted and dropped.
    """

    rows: np.ndarray
    #: Per facet: its first column, its columns' end, its first id and its number of values.
    spans: dict[str, tuple[int, int, int, int]]
    #: How many ids the facets have in all, their "none" ids included.
    ids: int

    @classmethod
    def of(cls, tables: dict[str, FacetTable], size: int) -> FacetRows:
        """The rows of ``size`` documents (a table with a document of more than
        :data:`_ROW_WIDTH_MAX` values is left out). A table's ``doc_ids`` are ascending."""
        spans: dict[str, tuple[int, int, int, int]] = {}
        column = first = 0
        for name, table in tables.items():
            counted = np.bincount(table.doc_ids) if len(table.doc_ids) else np.zeros(1, int)
            width = max(1, int(counted.max()))
            if width <= _ROW_WIDTH_MAX:
                spans[name] = (column, column + width, first, len(table.values))
                column, first = column + width, first + len(table.values) + 1
        rows = np.empty((size, column), np.int16 if first <= np.iinfo(np.int16).max else np.int32)
        for name, (start, end, offset, count) in spans.items():
            docs = tables[name].doc_ids
            rows[:, start:end] = offset + count  # "none"
            position: int | np.ndarray = 0
            if end - start > 1:  # a pair's column: how many pairs of its document come before
                pairs = np.arange(len(docs))
                firsts = np.where(np.r_[True, docs[1:] != docs[:-1]], pairs, 0)
                position = pairs - np.maximum.accumulate(firsts)
            rows[docs, start + position] = tables[name].value_ids + offset
        return cls(rows, spans, first)

    def counts(self, names: Sequence[str], docs: np.ndarray) -> dict[str, np.ndarray]:
        """How many of the documents ``docs`` have each value of the facets ``names`` (those
        in the rows), indexed by value id."""
        spans = [(name, self.spans[name]) for name in names if name in self.spans]
        if not spans:
            return {}
        hits = self.rows.take(docs, axis=0)  # 4-6 times faster than rows[docs]
        if len(spans) < len(self.spans):
            # A list of columns: np.r_ of their slices cost more than the counting of a few.
            hits = hits[
                :, [column for _, (start, end, _, _) in spans for column in range(start, end)]
            ]
        total = np.bincount(hits.ravel(), minlength=self.ids)
        return {name: total[first : first + n] for name, (_, _, first, n) in spans}


class Leading(NamedTuple):
    """An earlier commit's arrays whose segments lead this reader's, unchanged: their first
    ``documents`` rows are this reader's but for the deletions since (a sync adds its segments
    after the others). A writer extends them with the later segments' rows instead of reading
    every document's columns again (see :mod:`searchidx.arrays`)."""

    arrays: StoredArrays
    documents: int


def _stored_as(name: str) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """A snapshot's array read from those written at commit, under ``name`` (formatted with
    the method's arguments), when it has them; else built by the method."""

    def decorate(build: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        @functools.wraps(build)
        def read(self: IndexSnapshot, *args: Any) -> np.ndarray:
            stored = None if self.stored is None else self.stored.array(name.format(*args))
            return build(self, *args) if stored is None else stored

        return read

    return decorate


_Key = TypeVar("_Key", bound=Hashable)
_Value = TypeVar("_Value")


def _kept(
    method: Callable[[IndexSnapshot, _Key], _Value],
) -> Callable[[IndexSnapshot, _Key], _Value]:
    """A snapshot's method whose answers are kept on the snapshot, by argument, and freed with
    it. Not ``functools.cache``: its one cache, the function's, holds every instance it was
    called on, so each snapshot a sync replaced stayed in the server's workers for good, with
    its postings cache (up to :data:`~searchidx.matching.POSTINGS_CACHE_BYTES`), its shown
    articles and its segments' maps."""
    name = f"_kept_{method.__name__}"

    @functools.wraps(method)
    def kept(self: IndexSnapshot, argument: _Key) -> _Value:
        answers: dict[_Key, _Value] = vars(self).setdefault(name, {})
        try:
            return answers[argument]
        except KeyError:
            answer = answers[argument] = method(self, argument)
            return answer

    return kept


class IndexSnapshot:
    """The cached, array form of one searcher's documents. Build lazily, never mutate.

    ``stored``: the arrays written at commit for this searcher's segments, if any;
    ``leading``: those of an earlier commit, to extend (the arrays' writer)."""

    def __init__(
        self,
        searcher: Searcher,
        results_cached: int = RESULTS_CACHED,
        stored: StoredArrays | None = None,
        leading: Leading | None = None,
    ) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()
        self.schema = searcher.schema
        self.size = self.reader.doc_count_all()
        self.stored = stored
        self.leading = leading
        if stored is not None:
            whoosh_internals.trust_layout(stored.layout_checked)
        whoosh_internals.layout_known()  # checked (and warned about) once, at the first snapshot
        # An index built from an empty folder has a reader without segments, and so no columns.
        self._leaves: list[tuple[IndexReader, int]] = [
            (leaf, base) for leaf, base in self.reader.leaf_readers() if leaf.doc_count_all()
        ]
        self._bases = [base for _, base in self._leaves]
        #: Answers already given on this snapshot, by request (see SearchService.search),
        #: weighed by their bytes.
        self.results: LruCache[Hashable, Any] = LruCache(
            RESULTS_CACHED_BYTES, weight=lambda result: result.kept_bytes(), most=results_cached
        )
        self._frequencies: LruCache[tuple[tuple[str, ...], str], tuple[int, ...]] = LruCache(
            FREQUENCIES_CACHED
        )
        self._shown: LruCache[int, Article] = LruCache(SHOWN_CACHED)

    @functools.cached_property
    @_stored_as("live")
    def live(self) -> np.ndarray:
        """Mask of documents not deleted."""
        mask = np.ones(self.size, dtype=bool)
        for leaf, base in self._leaves:
            if leaf.has_deletions():
                mask[base + np.fromiter(whoosh_internals.deleted_set(leaf), dtype=np.int64)] = False
        return mask

    @functools.cached_property
    def matcher(self) -> QueryMatcher:
        return QueryMatcher(
            self.searcher, self._leaves, self.live, self.field_lengths, self.numeric_range
        )

    @property
    def reading(self) -> contextlib.AbstractContextManager[Any]:
        """Held by every read through the searcher (see :class:`QueryMatcher`)."""
        return self.matcher.reading

    def prepare(self) -> IndexSnapshot:
        """Read every per-index array a search may use, now: before the snapshot serves
        several threads at once, and outside any request's time budget."""
        for facet in FACETS:
            self.counts_of_all(facet.name)
            self.facet(facet.name).name_ranks  # noqa: B018 - read for its side effect
        self.facet_rows  # noqa: B018 - built for its side effect
        for sort in PRESORTED:
            self.rank(sort)
        self._dates_oldest_first  # noqa: B018 - read for its side effect
        for field in ranking.FIELD_BOOSTS:  # the scored (text) fields
            self.field_lengths(field)
        self.title_words  # noqa: B018 - read for its side effect
        with self.reading:
            for segment in range(len(self._leaves)):
                self._records(segment)
                self._bodies(segment)
        self.quality_factors  # noqa: B018 - read for its side effect
        self.matcher  # noqa: B018 - built for its side effect
        return self

    def arrays_to_store(self) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
        """What :mod:`searchidx.arrays` writes at commit: every array a search may read that
        a new process would otherwise build from the columns, by the name it is read under,
        and each facet's values."""
        arrays = {
            "live": self.live,
            "dates": self.dates,
            "qualities": self.qualities,
            "quality-percentiles": self.quality_percentiles,
        }
        for sort in PRESORTED:
            arrays[f"order-{sort}"], arrays[f"rank-{sort}"] = self.order(sort), self.rank(sort)
        for field in ranking.FIELD_BOOSTS:
            arrays[f"lengths-{field}"] = self.field_lengths(field)
        values = {}
        for facet in FACETS:
            table = self.facet(facet.name)
            arrays[f"facet-{facet.name}-docs"] = table.doc_ids
            arrays[f"facet-{facet.name}-ids"] = table.value_ids
            values[facet.name] = table.values
        return arrays, values

    def article(self, docnum: int) -> Article:
        """The article stored for document ``docnum``, its body (cut, see
        :data:`~searchidx.schema.STORED_BODY_CHARS`) included."""
        return from_record(self._record(docnum), self.body(docnum))

    def shown(self, docnum: int) -> Article:
        """The article stored for document ``docnum`` without its body, which is not read:
        what a hit keeps (its snippet, where it needs one, reads :meth:`body`). Kept (see
        :data:`SHOWN_CACHED`): an article is immutable."""
        return self._shown.get(docnum, lambda: self._read_shown(docnum))

    def _read_shown(self, docnum: int) -> Article:
        segment, number = self._place(docnum)
        with self.reading:
            record, path = record_and_path(self._records(segment), number)
        return from_record(record, "", path)

    def body(self, docnum: int) -> str:
        """The body stored for document ``docnum`` (cut)."""
        segment, number = self._place(docnum)
        with self.reading:
            body: str = self._bodies(segment)[number]
        return body

    def _record(self, docnum: int) -> str | bytes:
        segment, number = self._place(docnum)
        with self.reading:
            record: str | bytes = self._records(segment)[number]
        return record

    def _place(self, docnum: int) -> tuple[int, int]:
        """The segment of document ``docnum``, and its number there."""
        segment = bisect.bisect_right(self._bases, docnum) - 1
        return segment, docnum - self._bases[segment]

    @_kept
    def _records(self, segment: int) -> Any:
        """The records of ``self._leaves[segment]``, opened once: opening reads where each of
        them ends (see :mod:`searchidx.records`)."""
        return records_of(self._leaves[segment][0])

    @_kept
    def _bodies(self, segment: int) -> Any:
        """The bodies of ``self._leaves[segment]``, opened once (as :meth:`_records`)."""
        return bodies_of(self._leaves[segment][0])

    def match(self, parsed: query.Query, scored: bool, within: np.ndarray | None = None) -> Matches:
        """The documents ``parsed`` matches and, if ``scored``, their Whoosh scores ``within``
        a mask if given (see :meth:`~searchidx.matching.QueryMatcher.match`)."""
        return self.matcher.match(parsed, scored, within)

    def match_at(
        self, parsed: query.Query, docs: np.ndarray, charged: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Which of ``docs`` (ascending, live) ``parsed`` matches, and their scores (see
        :meth:`~searchidx.matching.QueryMatcher.match_at`)."""
        return self.matcher.match_at(parsed, docs, charged)

    def document_frequencies(self, fields: tuple[str, ...], term: str) -> tuple[int, ...]:
        """How many documents have ``term`` (a stem) in each of ``fields`` (cached)."""

        def count() -> tuple[int, ...]:
            with self.reading:
                return tuple(self.reader.doc_frequency(field, term) for field in fields)

        return self._frequencies.get((fields, term), count)

    # Facets, dates, sorts ----------------------------------------------------------------

    @_kept
    def facet(self, name: str) -> FacetTable:
        """The table of a facet of :data:`~searchidx.facets.FACETS`, by name."""
        spec = BY_NAME[name]
        stored = None if self.stored is None else self.stored.facet(name)
        if stored is not None:
            return FacetTable.of(*stored)
        if spec.kind is Kind.MONTH:
            return self._month_table()
        leading, start = None, 0
        if self.leading is not None and (rows := self.leading.arrays.facet(name)) is not None:
            leading, start = FacetTable.of(*rows), self.leading.documents
        if spec.multi_valued:
            values = self._value_lists(spec.column, start)
            return FacetTable.build(values, self.live, leading, start)
        return self._single_valued_table(spec.column, leading, start)

    @functools.cached_property
    def live_count(self) -> int:
        """How many documents are not deleted."""
        return int(np.count_nonzero(self.live))

    @_kept
    def counts_of_all(self, name: str) -> np.ndarray:
        """A facet's counts over every live document: those of any search with no text and
        no filter (the front page), the same until the index changes."""
        return self.facet(name).counts(self.live)

    @functools.cached_property
    def facet_rows(self) -> FacetRows:
        """Every facet's values of each document as one row (see :class:`FacetRows`)."""
        return FacetRows.of({facet.name: self.facet(facet.name) for facet in FACETS}, self.size)

    def facet_counts(self, names: Sequence[str], documents: np.ndarray) -> dict[str, np.ndarray]:
        """How many of the masked ``documents`` (live ones) have each value of the facets
        ``names``. Counting costs about a nanosecond a (document, value) pair, so more than
        half of the live documents (a common word's matches) are counted as all of them less
        the others."""
        docs = np.flatnonzero(documents)
        if 2 * len(docs) > self.live_count:
            others = self.facet_counts(names, self.live & ~documents)
            return {name: self.counts_of_all(name) - others[name] for name in names}
        counts = self.facet_rows.counts(names, docs)
        for name in names:
            if name not in counts:  # too many values to a document for a row
                counts[name] = self.facet(name).counts(documents, docs)
        return counts

    def _single_valued_table(self, name: str, leading: FacetTable | None, start: int) -> FacetTable:
        """A facet of one value per document, from the column's codes where it has them,
        the documents before ``start`` from the ``leading`` table. Value ids count segment by
        segment, in each in the order of its values (those of deleted documents too)."""
        field = self.schema[name]
        ids: dict[str, int] = {}
        value_of = np.full(self.size, -1, dtype=np.int32)
        if leading is not None:
            ids = {value: number for number, value in enumerate(leading.values)}
            value_of[leading.doc_ids] = leading.value_ids
        for leaf, base in self._leaves:
            if base < start:
                continue
            codes, uniques = _column_codes(leaf, name, field)
            mapping = np.array(
                [ids.setdefault(value, len(ids)) if value else -1 for value in uniques] or [-1],
                dtype=np.int32,
            )
            value_of[base : base + leaf.doc_count_all()] = mapping[codes]
        docs = np.flatnonzero(self.live & (value_of >= 0)).astype(np.int32)
        return FacetTable.of(tuple(ids), docs, value_of[docs])

    def _month_table(self) -> FacetTable:
        """Publication months ("2022-06"), in calendar order, straight from the date column."""
        documents = np.flatnonzero(self.live).astype(np.int32)
        micros = self.dates[documents] - _EPOCH_KEY
        months = micros.astype("datetime64[us]").astype("datetime64[M]")
        unique, value_ids = _unique_months(months)
        values = tuple(str(month) for month in unique)
        return FacetTable.of(values, documents, value_ids.astype(np.int32))

    @functools.cached_property
    def title_words(self) -> tuple[list[str], np.ndarray]:
        """Every title word (unstemmed, sorted) and the documents having it: completions are
        a slice of it, however short the prefix typed."""
        counts: dict[str, int] = {}
        for leaf, _ in self._leaves:
            words, frequencies = whoosh_internals.word_frequencies(leaf, "spell_title")
            for word, frequency in zip(words, frequencies, strict=True):
                counts[word] = counts.get(word, 0) + frequency
        words = sorted(counts)
        return words, np.array([counts[word] for word in words], dtype=np.int64)

    @functools.cached_property
    @_stored_as("dates")
    def dates(self) -> np.ndarray:
        """Publication time of each document, in Whoosh's long form (see :func:`date_key`)."""
        return self._numbers("date", "dates", translate=False)

    @functools.cached_property
    @_stored_as("qualities")
    def qualities(self) -> np.ndarray:
        """Each document's quality: int32, exactly as the column's (32 bits, signed; missing:
        :data:`QUALITY_MISSING`, int32's least), half the bytes of int64."""
        return self._numbers("quality", "qualities", translate=True, dtype=np.int32)

    @functools.cached_property
    @_stored_as("quality-percentiles")
    def quality_percentiles(self) -> np.ndarray:
        """Each document's quality percentile among the live ones (0.5: no quality)."""
        known = self.live & (self.qualities != QUALITY_MISSING)
        return ranking.percentiles(self.qualities, known)

    @functools.cached_property
    def quality_factors(self) -> np.ndarray:
        return ranking.quality(self.quality_percentiles)

    @functools.cached_property
    def newest_date(self) -> int:
        """The newest live document's date: "now" for freshness (see :mod:`ranking`)."""
        return int(self.dates[self.live].max()) if self.live.any() else 0

    def freshness_factors(
        self, half_life_days: float, docs: np.ndarray | None = None
    ) -> np.ndarray:
        """The freshness factor of each document, or of ``docs`` alone (computed per request:
        a millisecond for all 100,000 articles, and half-lives are as many as the URLs that
        ask for them)."""
        dates = self.dates if docs is None else self.dates[docs]
        return ranking.freshness(dates, self.newest_date, half_life_days)

    def age_days(self, docnum: int) -> float:
        return float(ranking.age_days(self.dates[docnum], self.newest_date))

    @functools.cached_property
    def path_ranks(self) -> np.ndarray:
        """Each document's position in path order: the tie-break that keeps pages stable
        (paths compared as UTF-8 bytes compare as text)."""
        return _ranks(self._raw_column("path", 0))

    @_kept
    @_stored_as("order-{}")
    def order(self, sort: Sort) -> np.ndarray:
        """All docnums in ``sort`` order, ties broken by date, then path, then docnum; a
        writer extends the leading segments' order (:meth:`_extended_order`)."""
        keys, leading = self._sort_keys(sort), self.leading
        earlier = None if leading is None else leading.arrays.array(f"order-{sort}")
        if leading is not None and earlier is not None and len(earlier) == leading.documents:
            return self._extended_order(earlier, keys, leading.documents)
        return np.lexsort((self.path_ranks, *reversed(keys))).astype(docnum_type(self.size))

    def _sort_keys(self, sort: Sort) -> tuple[np.ndarray, ...]:
        """What orders the documents in ``sort`` before their paths, the first key first."""
        if sort is Sort.OLDEST:
            return (self.dates,)
        if sort is Sort.QUALITY:  # negated in int64: QUALITY_MISSING has no int32 opposite
            return (-self.qualities.astype(np.int64), -self.dates)
        return (-self.dates,)

    def _extended_order(
        self, earlier: np.ndarray, keys: tuple[np.ndarray, ...], start: int
    ) -> np.ndarray:
        """The ``earlier`` order of the leading segments' documents with the later ones (from
        ``start`` on) inserted where the whole sort puts them: each after every earlier
        document of a smaller key, or of an equal key and a path not after its own (a later
        docnum is greater). Only the later documents' paths are read, and those of the earlier ones
        whose keys they tie with (a changed file's old version): sorting every path again
        was two thirds of the arrays a 1% sync writes at 100,000 articles."""
        later_paths = self._raw_column("path", start)
        later = start + np.lexsort((_ranks(later_paths), *reversed([key[start:] for key in keys])))
        earlier_rows, later_rows = _key_rows(keys, earlier), _key_rows(keys, later)
        places = np.searchsorted(earlier_rows, later_rows, side="left")
        tied = np.searchsorted(earlier_rows, later_rows, side="right") - places
        if tied.any():
            path_at = self._path_at
            for n in np.flatnonzero(tied).tolist():
                low = int(places[n])
                paths = [path_at(int(doc)) for doc in earlier[low : low + int(tied[n])]]
                places[n] = low + bisect.bisect_right(paths, later_paths[later[n] - start])
        return np.insert(earlier, places, later).astype(docnum_type(self.size))

    @functools.cached_property
    def _path_at(self) -> Callable[[int], bytes]:
        """A document's path as bytes, read from its segment's column one at a time (each
        segment's column opened once, for every sort)."""
        readers: dict[int, Callable[[int], bytes]] = {}

        def path_at(docnum: int) -> bytes:
            segment, number = self._place(docnum)
            if segment not in readers:
                leaf = self._leaves[segment][0]
                found = whoosh_internals.var_bytes_at(leaf, "path")
                readers[segment] = found or whoosh_internals.column_bytes(leaf, "path").__getitem__
            return readers[segment](number)

        return path_at

    @_kept
    @_stored_as("rank-{}")
    def rank(self, sort: Sort) -> np.ndarray:
        """Each docnum's position in :meth:`order` (its inverse)."""
        ranks = np.empty(self.size, dtype=docnum_type(self.size))
        ranks[self.order(sort)] = np.arange(self.size)
        return ranks

    @functools.cached_property
    def _dates_oldest_first(self) -> np.ndarray:
        """The dates in :meth:`order` oldest first (sorted): where a date range lies in it."""
        dates: np.ndarray = self.dates[self.order(Sort.OLDEST)]
        return dates

    def dated_span(
        self, sort: Sort, start: datetime | None, end: datetime | None
    ) -> tuple[int, int]:
        """Where the documents dated from ``start`` to ``end`` lie in :meth:`order`: a slice
        of the newest and oldest orders (sorted by date, ties within a date); the whole of
        another order."""
        if sort not in (Sort.NEWEST, Sort.OLDEST):
            return 0, self.size
        dates = self._dates_oldest_first
        low = 0 if start is None else int(dates.searchsorted(date_key(start), "left"))
        high = self.size if end is None else int(dates.searchsorted(date_key(end), "right"))
        high = max(low, high)
        return (low, high) if sort is Sort.OLDEST else (self.size - high, self.size - low)

    def dated_in_order(
        self, sort: Sort, start: datetime | None, end: datetime | None
    ) -> np.ndarray:
        """The live documents dated from ``start`` to ``end`` in ``sort``'s order (the newest
        or the oldest): that order's slice of them (a view), the deleted left out."""
        first, last = self.dated_span(sort, start, end)
        docs = self.order(sort)[first:last]
        if self.live_count < self.size:
            docs = docs[self.live[docs]]
        return docs

    def date_range(self, start: datetime | None, end: datetime | None) -> np.ndarray:
        """The live documents dated from ``start`` to ``end``: a slice of the oldest-first
        order (a scan of every date costs five times more)."""
        low, high = self.dated_span(Sort.OLDEST, start, end)
        mask = np.zeros(self.size, dtype=bool)
        mask[self.order(Sort.OLDEST)[low:high]] = True
        mask &= self.live
        return mask

    def dated(self, docs: np.ndarray, start: datetime | None, end: datetime | None) -> np.ndarray:
        """Which of ``docs`` are dated from ``start`` to ``end``, deleted or not (for live
        ones, ``date_range``'s mask at them): those whose place in the oldest-first order is
        within the range's slice of it, no mask of every document made. One int32 gather and
        one compare (its offset from the slice's start, unsigned, below the slice's length):
        a word's 20,000 documents in 26 us at 100,000, where their dates compared at both
        ends took 38 and the mask 40-90."""
        low, high = self.dated_span(Sort.OLDEST, start, end)
        places = self.rank(Sort.OLDEST).take(docs)
        unsigned = np.dtype(places.dtype).str.replace("i", "u")
        within: np.ndarray = (places - low).view(unsigned) < high - low
        return within

    def dated_docs(self, start: datetime | None, end: datetime | None) -> np.ndarray:
        """The live documents dated from ``start`` to ``end``, ascending (what
        ``np.flatnonzero(date_range(start, end))`` gives): their slice of the oldest-first
        order, sorted: at 100,000 documents, 49 us for the bench's ranges (8,200 documents on
        average), where ANDing and scanning every document's mask took 100."""
        docs: np.ndarray = np.sort(self.dated_in_order(Sort.OLDEST, start, end)).astype(np.intp)
        return docs

    def numeric_range(self, q: query.NumericRange) -> np.ndarray | None:
        """The documents a numeric range of the query text (``quality:[80 TO 100]``,
        ``date:2022``) matches, from the arrays the filters use (None: another field)."""
        values = {"date": self.dates, "quality": self.qualities}.get(q.fieldname)
        if values is None:
            return None
        # A new mask; no date is that value.
        mask: np.ndarray = self.live & (values != QUALITY_MISSING)
        if q.start is not None:
            mask &= values > q.start if q.startexcl else values >= q.start
        if q.end is not None:
            mask &= values < q.end if q.endexcl else values <= q.end
        return mask

    def quality_range(self, low: int | None, high: int | None) -> np.ndarray:
        mask: np.ndarray = self.qualities != QUALITY_MISSING
        if low is not None:
            mask &= self.qualities >= low
        if high is not None:
            mask &= self.qualities <= high
        return mask

    def documents_at(self, path: str) -> list[int]:
        """The docnums, live or deleted, of the articles at ``path``, ascending: from the path
        column (the index keeps no term of a path)."""
        wanted = path.encode("utf-8", "surrogatepass")  # unencodable: a path no article has
        found: list[int] = []
        for leaf, base in self._leaves:
            docs = whoosh_internals.docs_with_bytes(leaf, "path", wanted)
            if docs is None:
                paths = whoosh_internals.column_bytes(leaf, "path")
                docs = [doc for doc, value in enumerate(paths) if value == wanted]
            found += [base + doc for doc in docs]
        return found

    def _value_lists(self, name: str, start: int) -> list[list[str]]:
        """A multi-valued column's values of each document from ``start`` on (a segment's
        first): coded, or (an index of schema 9 or older) joined bytes."""
        values: list[list[str]] = []
        for leaf, base in self._leaves:
            if base < start:
                continue
            column = leaf.column_reader(name, translate=False)
            if isinstance(column, CodedValuesColumn.Reader):
                values += column.per_document()
            else:
                joined = whoosh_internals.column_bytes(leaf, name)
                values += [raw.decode().split(VALUE_SEPARATOR) for raw in joined]
        return values

    def _raw_column(self, name: str, start: int) -> list[bytes]:
        """A column's bytes for each document from ``start`` on (a segment's first)."""
        values: list[bytes] = []
        for leaf, base in self._leaves:
            if base >= start:
                values += whoosh_internals.column_bytes(leaf, name)
        return values

    def _later_leaves(self, name: str, out: np.ndarray) -> list[tuple[IndexReader, int]]:
        """The segments whose rows of the per-document array ``name`` are to be read into
        ``out``: every one, or those after the leading segments, whose rows are copied now."""
        rows = None if self.leading is None else self.leading.arrays.array(name)
        if self.leading is None or rows is None:
            return self._leaves
        start = self.leading.documents
        out[:start] = rows[:start]
        return [(leaf, base) for leaf, base in self._leaves if base >= start]

    def _numbers(
        self, name: str, stored: str, translate: bool, dtype: type[np.integer] = np.int64
    ) -> np.ndarray:
        """A numeric column as an array of ``dtype`` (which holds its every value), read from
        its file in one piece per segment (those of the leading segments copied: stored under
        ``stored``)."""
        field = self.schema[name]
        out = np.empty(self.size, dtype=dtype)
        for leaf, base in self._later_leaves(stored, out):
            count = leaf.doc_count_all()
            raw = whoosh_internals.fixed_numbers(leaf.column_reader(name, translate=False), count)
            if raw is None:
                values = list(leaf.column_reader(name, translate=translate))
                out[base : base + count] = np.asarray(values, dtype=np.int64)
                continue
            if translate:  # few distinct values: translate each once, exactly as Whoosh does
                uniques, inverse = np.unique(raw, return_inverse=True)
                translated = [field.from_column_value(int(value)) for value in uniques]
                raw = np.asarray(translated, dtype=np.int64)[inverse]
            out[base : base + count] = raw
        return out

    @_kept
    @_stored_as("lengths-{}")
    def field_lengths(self, fieldname: str) -> np.ndarray:
        """Each document's length in a field, as Whoosh scores with it (a byte, decoded): as
        float32, half the bytes of float64 and exact (every length a byte decodes to is a whole
        number below 2**24); the scorer computes with them as float64, as Whoosh does."""
        out = np.zeros(self.size, dtype=np.float32)
        for leaf, base in self._later_leaves(f"lengths-{fieldname}", out):
            count = leaf.doc_count_all()
            codes = whoosh_internals.length_codes(leaf, fieldname, count)
            if codes is None:
                lengths = [leaf.doc_field_length(d, fieldname, 0) or 0 for d in range(count)]
                out[base : base + count] = lengths
            else:
                out[base : base + count] = whoosh_internals.LENGTH_OF_BYTE[codes]
        return out


def _column_codes(leaf: Any, name: str, field: Any) -> tuple[np.ndarray, list[Any]]:
    """Each document's code in ``leaf``'s column ``name``, and the values the codes stand for:
    read below Whoosh's column reader where its layout is known (see
    :mod:`searchidx.whoosh_internals`)."""
    if (raw := whoosh_internals.var_bytes(leaf, name)) is not None:
        # Sorted as bytes, sorted as the values: UTF-8 keeps the order of characters.
        distinct, inverse = np.unique(np.asarray(raw, dtype=object), return_inverse=True)
        return inverse.astype(np.int64), [field.from_column_value(value) for value in distinct]
    reader = leaf.column_reader(name, translate=False)
    coded = whoosh_internals.ref_codes(reader, leaf.doc_count_all())
    if coded is not None:
        codes, raw_uniques = coded
        return codes, [field.from_column_value(value) for value in raw_uniques]
    values = [field.from_column_value(value) for value in reader]
    distinct, inverse = np.unique(np.asarray(values, dtype=object), return_inverse=True)
    return inverse.astype(np.int64), list(distinct)


def _unique_months(months: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(months, return_inverse=True)`` counted, not sorted: the months between
    the first and the last are a few hundred (9 ms -> 1 of the arrays a sync writes at
    100,000 articles)."""
    if not len(months):
        return np.unique(months, return_inverse=True)
    numbers = months.astype(np.int64)
    first = int(numbers.min())
    offsets = numbers - first
    present = np.bincount(offsets) > 0
    ids = np.cumsum(present) - 1
    unique = (np.flatnonzero(present) + first).astype(months.dtype)
    return unique, ids[offsets]


def _ranks(values: list[bytes]) -> np.ndarray:
    """Each value's position in the values sorted (equal ones in their order)."""
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[sorted(range(len(values)), key=values.__getitem__)] = np.arange(len(values))
    return ranks


def _key_rows(keys: tuple[np.ndarray, ...], docs: np.ndarray) -> np.ndarray:
    """The ``keys`` of ``docs`` as one record each, which numpy compares key by key (a
    search of records in a sorted array finds their place by every key at once); one key
    as itself (searched four times faster)."""
    if len(keys) == 1:
        first: np.ndarray = keys[0][docs]
        return first
    rows = np.empty(len(docs), dtype=[(f"k{n}", key.dtype) for n, key in enumerate(keys)])
    for n, key in enumerate(keys):
        rows[f"k{n}"] = key[docs]
    return rows


def docnum_type(documents: int) -> type[np.integer]:
    """The integer type of arrays of docnums or positions among ``documents``: int32 (half
    the bytes to write, map and read) while they fit, as every index this side of 2**31
    documents does."""
    return np.int32 if documents <= np.iinfo(np.int32).max else np.int64


def date_key(moment: datetime) -> int:
    """A datetime in the form the ``date`` column stores (Whoosh's long: UTC microseconds
    since the year 1, as Whoosh's ``datetime_to_long`` gives; in a tenth of its 2.3 us, as a
    search with a date range reads a few)."""
    if moment.tzinfo is not None:
        return (moment - _FIRST_MOMENT_UTC) // _MICROSECOND
    return (moment - datetime.min) // _MICROSECOND


_FIRST_MOMENT_UTC = datetime.min.replace(tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_EPOCH_KEY = date_key(datetime(1970, 1, 1))
