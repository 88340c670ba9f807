"""Per-searcher caches: postings, facet values, dates, qualities and sort orders as numpy arrays.

Whoosh matches, scores and counts document by document in Python, and expands date ranges into
terms on every search: tens to hundreds of milliseconds per query at 100,000 articles (see
shared/notes/whoosh-performance.md). Nothing it computes changes between searches on the same
index generation, so an :class:`IndexSnapshot` reads what a search needs once, when first
needed, and answers with vectorised array operations:

* a term's posting list becomes an array of docnums and an array of its BM25F scores, computed
  with Whoosh's own formula, statistics and field lengths, so scores (and so rankings) are the
  ones Whoosh computes, and queries are evaluated as boolean masks and score sums
  (:meth:`IndexSnapshot.match`); phrases are checked on cached positions;
* columns (facet values, dates, qualities, paths) are read straight from their files.

Query shapes this does not reproduce exactly are handed to Whoosh. A new snapshot is made
whenever the searcher is refreshed; docnums are only meaningful within one snapshot.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate, chain
from pickle import loads
from typing import Any

import numpy as np
from whoosh import columns, formats, query
from whoosh.reading import IndexReader
from whoosh.scoring import BM25F
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length
from whoosh.util.times import datetime_to_long

from searchidx.lru import LruCache
from searchidx.request import Sort
from searchidx.schema import QUALITY_MISSING, VALUE_SEPARATOR

#: Facet name -> the column it is read from. ``month`` is derived from ``date``.
FACET_COLUMNS = {
    "topic": "topics",
    "provider": "provider_name",
    "category": "category",
    "type": "type",
    "published": "published",
}

#: Counting goes document by document when the documents are fewer than the pairs / this.
_GATHER_BELOW = 4
#: Memory for decoded posting lists and positions, per snapshot (least recently used go first).
POSTINGS_CACHE_BYTES = 192 * 1024 * 1024
#: Expanded wildcard, prefix and fuzzy terms kept per snapshot.
EXPANSIONS_CACHED = 4096
#: Search results kept per snapshot: a page reloaded, paged back to or shared, and the front
#: page most of all, cost one search per index change.
RESULTS_CACHED = 512
#: Whoosh scores a constant-score Or (wildcards, fuzzy terms) as a sum of BM25F only above this
#: many documents (``Or.AUTO_MATCHER``); below it, Whoosh ranks those queries itself.
_WHOOSH_UNION_ABOVE = 5000
#: Positions are packed with their docnum into one integer: ``docnum << _POSITION_BITS | pos``.
_POSITION_BITS = 24
#: Bytes of the count that starts a ``Positions`` posting value (``whoosh.formats``).
_COUNT_BYTES = 4
#: Field length byte -> the length Whoosh scores with.
_LENGTHS = np.array([byte_to_length(code) or 0 for code in range(256)], dtype=np.float64)


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
    def build(cls, per_document: Sequence[Iterable[str]], live: np.ndarray) -> FacetTable:
        ids: dict[str, int] = {}
        doc_ids: list[int] = []
        value_ids: list[int] = []
        for docnum, values in enumerate(per_document):
            if not live[docnum]:
                continue
            for value in values:
                if value:
                    doc_ids.append(docnum)
                    value_ids.append(ids.setdefault(value, len(ids)))
        return cls.of(tuple(ids), np.asarray(doc_ids, np.int32), np.asarray(value_ids, np.int32))

    @classmethod
    def of(cls, values: tuple[str, ...], doc_ids: np.ndarray, value_ids: np.ndarray) -> FacetTable:
        return cls(
            values=values,
            doc_ids=doc_ids,
            value_ids=value_ids,
            ids_by_key={value.casefold(): number for number, value in enumerate(values)},
        )

    def lookup(self, value: str) -> int | None:
        """The id of a value, matched without regard to case."""
        return self.ids_by_key.get(value.casefold())

    @functools.cached_property
    def _by_value(self) -> tuple[np.ndarray, np.ndarray]:
        """Docnums grouped by value id, and where each value's group starts."""
        order = np.argsort(self.value_ids, kind="stable")
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


@dataclass(frozen=True, slots=True)
class Postings:
    """One term's documents (ascending docnums, deleted ones included) and its score in each:
    Whoosh's BM25F for scored fields, the posting weight for the others; None when the
    searcher's weighting is not one reproduced here."""

    docs: np.ndarray
    scores: np.ndarray | None

    @property
    def nbytes(self) -> int:
        return self.docs.nbytes + (0 if self.scores is None else self.scores.nbytes)


@dataclass(frozen=True)
class Matches:
    """The documents a query matches (deleted ones excluded) and, when asked for and
    reproducible, their scores (zero elsewhere)."""

    mask: np.ndarray
    scores: np.ndarray | None


class IndexSnapshot:
    """The cached, array form of one searcher's documents. Build lazily, never mutate."""

    def __init__(self, searcher: Searcher, results_cached: int = RESULTS_CACHED) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()
        self.schema = searcher.schema
        self.size = self.reader.doc_count_all()
        # An index built from an empty folder has a reader without segments, and so no columns.
        self._leaves: list[tuple[IndexReader, int]] = [
            (leaf, base) for leaf, base in self.reader.leaf_readers() if leaf.doc_count_all()
        ]
        weighting = searcher.weighting
        self._bm25 = weighting if type(weighting) is BM25F else None
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cached_bytes = 0
        self._expansions: LruCache[str, list[bytes]] = LruCache(EXPANSIONS_CACHED)
        #: Answers already given on this snapshot, by request (see SearchService.search).
        self.results: LruCache[Hashable, Any] = LruCache(results_cached)

    @functools.cached_property
    def live(self) -> np.ndarray:
        """Mask of documents not deleted."""
        mask = np.ones(self.size, dtype=bool)
        for leaf, base in self._leaves:
            if leaf.has_deletions():
                mask[base + np.fromiter(_deleted_docs(leaf), dtype=np.int64)] = False
        return mask

    # Facets, dates, sorts ----------------------------------------------------------------

    @functools.cache  # noqa: B019 - the snapshot lives exactly as long as its caches should
    def facet(self, name: str) -> FacetTable:
        if name == "month":
            return self._month_table()
        column = FACET_COLUMNS[name]
        if name == "topic":
            topics = self._column(column, translate=True)
            return FacetTable.build([raw.decode().split(VALUE_SEPARATOR) for raw in topics],
                                    self.live)  # fmt: skip
        return self._single_valued_table(column)

    @functools.cache  # noqa: B019 - see facet()
    def counts_of_all(self, name: str) -> np.ndarray:
        """A facet's counts over every live document: those of any search with no text and
        no filter (the front page), the same until the index changes."""
        return self.facet(name).counts(self.live)

    def _single_valued_table(self, name: str) -> FacetTable:
        """A facet of one value per document, from the column's codes where it has them."""
        field = self.schema[name]
        ids: dict[str, int] = {}
        value_of = np.full(self.size, -1, dtype=np.int32)
        for leaf, base in self._leaves:
            reader = leaf.column_reader(name, translate=False)
            count = leaf.doc_count_all()
            coded = _ref_codes(reader, count)
            if coded is None:
                values = [field.from_column_value(raw) for raw in reader]
                distinct, inverse = np.unique(np.asarray(values, dtype=object), return_inverse=True)
                codes, uniques = inverse.astype(np.int64), list(distinct)
            else:
                codes, raw_uniques = coded
                uniques = [field.from_column_value(raw) for raw in raw_uniques]
            mapping = np.array(
                [ids.setdefault(value, len(ids)) if value else -1 for value in uniques] or [-1],
                dtype=np.int32,
            )
            value_of[base : base + count] = mapping[codes]
        docs = np.flatnonzero(self.live & (value_of >= 0)).astype(np.int32)
        return FacetTable.of(tuple(ids), docs, value_of[docs])

    def _month_table(self) -> FacetTable:
        """Publication months ("2022-06"), in calendar order, straight from the date column."""
        documents = np.flatnonzero(self.live).astype(np.int32)
        micros = self.dates[documents] - _EPOCH_KEY
        months = micros.astype("datetime64[us]").astype("datetime64[M]")
        unique, value_ids = np.unique(months, return_inverse=True)
        values = tuple(str(month) for month in unique)
        return FacetTable(
            values=values,
            doc_ids=documents,
            value_ids=value_ids.astype(np.int32),
            ids_by_key={value: number for number, value in enumerate(values)},
        )

    @functools.cached_property
    def dates(self) -> np.ndarray:
        """Publication time of each document, in Whoosh's long form (see :func:`date_key`)."""
        return self._numbers("date", translate=False)

    @functools.cached_property
    def qualities(self) -> np.ndarray:
        return self._numbers("quality", translate=True)

    @functools.cached_property
    def path_ranks(self) -> np.ndarray:
        """Each document's position in path order: the tie-break that keeps pages stable."""
        paths = self._column("path", translate=True)
        ranks = np.empty(self.size, dtype=np.int64)
        ranks[sorted(range(self.size), key=paths.__getitem__)] = np.arange(self.size)
        return ranks

    @functools.cache  # noqa: B019 - see facet()
    def order(self, sort: Sort) -> np.ndarray:
        """All docnums in ``sort`` order, ties broken by date and then path."""
        if sort is Sort.OLDEST:
            keys = (self.path_ranks, self.dates)
        elif sort is Sort.QUALITY:
            keys = (self.path_ranks, -self.dates, -self.qualities)
        else:
            keys = (self.path_ranks, -self.dates)
        return np.lexsort(keys)

    @functools.cache  # noqa: B019 - see facet()
    def rank(self, sort: Sort) -> np.ndarray:
        """Each docnum's position in :meth:`order` (its inverse)."""
        ranks = np.empty(self.size, dtype=np.int64)
        ranks[self.order(sort)] = np.arange(self.size)
        return ranks

    def date_range(self, start: datetime | None, end: datetime | None) -> np.ndarray:
        mask = self.live.copy()
        if start is not None:
            mask &= self.dates >= date_key(start)
        if end is not None:
            mask &= self.dates <= date_key(end)
        return mask

    def quality_range(self, low: int | None, high: int | None) -> np.ndarray:
        mask = self.qualities != QUALITY_MISSING
        if low is not None:
            mask &= self.qualities >= low
        if high is not None:
            mask &= self.qualities <= high
        return mask

    def _column(self, name: str, translate: bool) -> list:
        if not self._leaves:
            return []
        return list(self.reader.column_reader(name, translate=translate))

    def _numbers(self, name: str, translate: bool) -> np.ndarray:
        """A numeric column as an int64 array, read from its file in one piece per segment."""
        field = self.schema[name]
        out = np.empty(self.size, dtype=np.int64)
        for leaf, base in self._leaves:
            count = leaf.doc_count_all()
            raw = _fixed_numbers(leaf.column_reader(name, translate=False), count)
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

    # Matching and scoring ----------------------------------------------------------------

    def match(self, parsed: query.Query, scored: bool) -> Matches:
        """The documents ``parsed`` matches and, if ``scored``, their Whoosh scores (None when
        the query has a part whose score is not reproduced: rank with Whoosh then)."""
        mask, scores = self._evaluate(parsed, scored)
        mask = mask & self.live
        if not scored or scores is None:
            return Matches(mask, None)
        return Matches(mask, np.where(mask, scores, 0.0))

    def _evaluate(self, q: query.Query, scored: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(mask, scores) of one query node; scores are zero where the mask is False."""
        kind = type(q)
        if kind is query.Term:
            return self._term(q.fieldname, q.text, q.boost, scored)
        if kind is query.Phrase:
            return self._phrase(q, scored)
        if isinstance(q, query.MultiTerm):
            return self._multiterm(q, scored)
        plain_or = isinstance(q, query.Or) and not q.scale and not q.minmatch
        if plain_or and q.subqueries and all(type(sub) is query.Term for sub in q.subqueries):
            # A word in each field: the commonest node. Summed straight from the postings.
            terms = [(sub.fieldname, sub.text, sub.boost) for sub in q.subqueries]
            mask, scores = self._union(terms, scored)
            return mask, _boosted(scores, q.boost)
        if kind is query.And or plain_or:
            parts = [self._evaluate(sub, scored) for sub in q.subqueries]
            if not parts:
                return self._nothing(scored)
            combine = np.logical_and if kind is query.And else np.logical_or
            mask = functools.reduce(combine, (part[0] for part in parts))
            return mask, _boosted(_sum(parts, mask, scored), q.boost)
        if isinstance(q, query.AndNot | query.AndMaybe | query.Require):
            (a_mask, a_scores), (b_mask, b_scores) = (self._evaluate(q.a, scored),
                                                      self._evaluate(q.b, scored))  # fmt: skip
            if isinstance(q, query.AndNot):
                mask, parts = a_mask & ~b_mask, [(a_mask, a_scores)]
            elif isinstance(q, query.Require):
                mask, parts = a_mask & b_mask, [(a_mask, a_scores)]
            else:
                mask, parts = a_mask, [(a_mask, a_scores), (b_mask, b_scores)]
            return mask, _boosted(_sum(parts, mask, scored), q.boost)
        if kind is query.Not:
            mask = self.live & ~self._evaluate(q.query, scored=False)[0]
            return mask, mask.astype(np.float64) if scored else None  # Whoosh: 1.0 each
        if q is query.NullQuery or isinstance(q, type(query.NullQuery)):
            return self._nothing(scored)
        mask = np.zeros(self.size, dtype=bool)  # anything else: Whoosh matches it, unscored
        mask[np.fromiter(self.searcher.docs_for_query(q), dtype=np.int64)] = True
        return mask, None

    def _nothing(self, scored: bool) -> tuple[np.ndarray, np.ndarray | None]:
        return np.zeros(self.size, dtype=bool), np.zeros(self.size) if scored else None

    def _term(
        self, fieldname: str, text: str | bytes, boost: float, scored: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        return self._union([(fieldname, text, boost)], scored)

    def _union(
        self, terms: Sequence[tuple[str, str | bytes, float]], scored: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The Or of (field, text, boost) terms, with the sum of their scores: one pass over
        their postings, rather than two full-size arrays per term added up. Each document's
        scores are added in the terms' order, as the sum of the terms' arrays would be."""
        found = [(self.postings(fieldname, text), boost) for fieldname, text, boost in terms]
        docs = np.concatenate([postings.docs for postings, _ in found])
        mask = np.zeros(self.size, dtype=bool)
        mask[docs] = True
        if not scored or any(postings.scores is None for postings, _ in found):
            return mask, None
        weights = np.concatenate(
            [
                postings.scores * boost if boost != 1.0 else postings.scores
                for postings, boost in found
            ]
        )
        return mask, np.bincount(docs, weights=weights, minlength=self.size)

    def _multiterm(self, q: query.MultiTerm, scored: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Wildcards, prefixes, fuzzy terms, ranges: the Or of the terms they expand to."""
        fieldname = q.field()
        if fieldname is None or fieldname not in self.schema:
            return self._nothing(scored)
        words = self._expanded(q)
        if not words:
            return self._nothing(scored)
        mask, scores = self._union([(fieldname, word, q.boost) for word in words], scored)
        if len(words) > 1 and q.constantscore and self.size <= _WHOOSH_UNION_ABOVE:
            return mask, None
        return mask, scores

    def _expanded(self, q: query.MultiTerm) -> list[bytes]:
        return self._expansions.get(
            repr(q), lambda: [word for _, word in q.expanded_terms(self.reader) if word]
        )

    def _phrase(self, q: query.Phrase, scored: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Words at consecutive positions (Whoosh's ``SpanNear2``, slop 1, ordered), scored
        as Whoosh does: the sum of the words' scores, times the phrase's boost."""
        field = self.schema[q.fieldname] if q.fieldname in self.schema else None  # noqa: SIM401
        if field is None or not q.words:
            return self._nothing(scored)
        if q.slop != 1 or not field.format or not field.format.supports("positions"):
            return self._evaluate_with_whoosh(q)
        try:
            words = [field.to_bytes(word) for word in q.words]
        except ValueError:
            return self._nothing(scored)
        if any((q.fieldname, word) not in self.reader for word in words):
            return self._nothing(scored)
        keys = self.positions(q.fieldname, words[0])
        for word in words[1:]:
            keys = keys + 1
            keys = keys[np.isin(keys, self.positions(q.fieldname, word), assume_unique=True)]
        mask = np.zeros(self.size, dtype=bool)
        mask[keys >> _POSITION_BITS] = True
        parts = [self._term(q.fieldname, word, 1.0, scored) for word in words]
        return mask, _boosted(_sum(parts, mask, scored), q.boost)

    def _evaluate_with_whoosh(self, q: query.Query) -> tuple[np.ndarray, np.ndarray | None]:
        """Matches and scores of one node straight from Whoosh's matcher."""
        matcher = q.matcher(self.searcher, self.searcher.boolean_context())
        mask = np.zeros(self.size, dtype=bool)
        mask[np.fromiter(matcher.all_ids(), dtype=np.int64)] = True
        return mask, None

    # Posting lists -------------------------------------------------------------------------

    def postings(self, fieldname: str, text: str | bytes) -> Postings:
        """The docnums and scores of one term (cached)."""
        field = self.schema[fieldname] if fieldname in self.schema else None  # noqa: SIM401
        if field is None:
            return _NO_POSTINGS
        try:
            word = text if isinstance(text, bytes) else field.to_bytes(text)
        except ValueError:
            return _NO_POSTINGS
        key = ("postings", fieldname, word)
        found = self._cached(key)
        if found is None:
            docs, weights, _ = self._read_postings(fieldname, word, values=False)
            found = self._store(key, Postings(docs, self._scores(fieldname, word, docs, weights)))
        return found

    def positions(self, fieldname: str, word: bytes) -> np.ndarray:
        """Every position of a term, as sorted ``docnum << 24 | position`` keys (cached)."""
        key = ("positions", fieldname, word)
        found = self._cached(key)
        if found is None:
            docs, _, values = self._read_postings(fieldname, word, values=True)
            decode = _positions_decoder(self.schema[fieldname].format)
            positions = [decode(value) for value in values]
            counts = np.fromiter(map(len, positions), dtype=np.int64, count=len(positions))
            flat = np.fromiter(chain.from_iterable(positions), dtype=np.int64, count=counts.sum())
            found = self._store(key, (np.repeat(docs, counts) << _POSITION_BITS) | flat)
        return found

    def _cached(self, key: tuple) -> Any:
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
        return found

    def _store(self, key: tuple, value: Any) -> Any:
        self._cache[key] = value
        self._cached_bytes += value.nbytes
        while self._cached_bytes > POSTINGS_CACHE_BYTES and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= dropped.nbytes
        return value

    def _read_postings(
        self, fieldname: str, word: bytes, values: bool
    ) -> tuple[np.ndarray, np.ndarray, list]:
        """Docnums, weights and (if asked) raw values of a term, segment by segment."""
        doc_parts, weight_parts, value_list = [], [], []
        for leaf, base in self._leaves:
            if (fieldname, word) not in leaf:
                continue
            docs, weights, raw = _leaf_postings(leaf, fieldname, word, values)
            doc_parts.append(docs + base)
            weight_parts.append(weights)
            value_list.extend(raw)
        if not doc_parts:
            return np.zeros(0, np.int64), np.zeros(0), []
        return np.concatenate(doc_parts), np.concatenate(weight_parts), value_list

    def _scores(
        self, fieldname: str, word: bytes, docs: np.ndarray, weights: np.ndarray
    ) -> np.ndarray | None:
        """Each posting's score, as Whoosh's scorer for the searcher's weighting gives it."""
        if not self.schema[fieldname].scorable:
            return weights  # WeightScorer: the posting weight
        if self._bm25 is None:
            return None
        if not len(docs):  # no postings, nothing to score (and no idf on an empty index)
            return np.zeros(0)
        b = self._bm25._field_B.get(fieldname, self._bm25.B)
        k1 = self._bm25.K1
        idf = self.searcher.idf(fieldname, word)
        average = self.searcher.avg_field_length(fieldname) or 1
        lengths = self.field_lengths(fieldname)[docs]
        # scoring.bm25, operation for operation, so the floats are Whoosh's.
        return idf * ((weights * (k1 + 1)) / (weights + k1 * ((1 - b) + b * lengths / average)))

    @functools.cache  # noqa: B019 - see facet()
    def field_lengths(self, fieldname: str) -> np.ndarray:
        """Each document's length in a field, as Whoosh scores with it (a byte, decoded)."""
        out = np.zeros(self.size)
        for leaf, base in self._leaves:
            count = leaf.doc_count_all()
            codes = _length_codes(leaf, fieldname, count)
            if codes is None:
                lengths = [leaf.doc_field_length(d, fieldname, 0) or 0 for d in range(count)]
                out[base : base + count] = lengths
            else:
                out[base : base + count] = _LENGTHS[codes]
        return out


_NO_POSTINGS = Postings(np.zeros(0, np.int64), np.zeros(0))


def _deleted_docs(leaf: IndexReader) -> Iterable[int]:
    """A segment's deleted docnums (its reader keeps them as a set; else: all minus live)."""
    deleted = getattr(leaf, "deleted_docs_set", None)
    if deleted is not None:
        return deleted
    live = set(leaf.all_doc_ids())
    return [docnum for docnum in range(leaf.doc_count_all()) if docnum not in live]


def _sum(
    parts: list[tuple[np.ndarray, np.ndarray | None]], mask: np.ndarray, scored: bool
) -> np.ndarray | None:
    """The sum of the parts' scores where ``mask`` is set (None if any part has none)."""
    if not scored or any(scores is None for _, scores in parts):
        return None
    total = functools.reduce(np.add, (scores for _, scores in parts))
    return np.where(mask, total, 0.0)


def _boosted(scores: np.ndarray | None, boost: float) -> np.ndarray | None:
    return scores if scores is None or boost == 1.0 else scores * boost


def _leaf_postings(
    leaf: IndexReader, fieldname: str, word: bytes, values: bool
) -> tuple[np.ndarray, np.ndarray, list]:
    """One segment's postings of a term, a block at a time where the codec allows it.

    Reads below Whoosh's deletion filter: the caller masks deleted documents itself.
    """
    terms = getattr(leaf, "_terms", None)
    if terms is not None:
        matcher = terms.matcher(fieldname, word, leaf.schema[fieldname].format, scorer=None)
    else:
        matcher = leaf.postings(fieldname, word)
    docs: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    raw: list = []
    if _W3_BLOCKS.issubset(dir(matcher)) and not matcher._byteids:
        variable = matcher.format.fixed_value_size() in (None, -1)
        while matcher.is_active():  # the W3 codec: whole blocks, decoded with numpy
            matcher._read_data()
            ids, block_weights, block_values = matcher._data
            count = matcher._blocklength
            docs.append(np.cumsum(np.asarray(ids, dtype=np.int64)))  # delta-coded ids
            if block_weights is None:
                weights.append(np.ones(count))
            elif isinstance(block_weights, float):
                weights.append(np.full(count, block_weights))
            else:
                weights.append(np.asarray(block_weights, dtype=np.float64))
            if values:
                if not variable:
                    matcher._read_values()
                    block_values = matcher._values
                raw.extend(block_values)
            matcher._next_block()
        if not docs:
            return np.zeros(0, np.int64), np.zeros(0), raw
        return np.concatenate(docs), np.concatenate(weights), raw
    ids, found = [], []
    while matcher.is_active():
        ids.append(matcher.id())
        found.append(matcher.weight())
        if values:
            raw.append(matcher.value())
        matcher.next()
    return np.asarray(ids, dtype=np.int64), np.asarray(found, dtype=np.float64), raw


#: What a W3 codec posting matcher has that lets whole blocks be read at once.
_W3_BLOCKS = frozenset({"_read_data", "_data", "_blocklength", "_byteids", "_next_block"})


def _positions_decoder(format_: Any) -> Callable[[bytes], list[int]]:
    """Decodes a posting value to its positions: Whoosh's ``Positions`` encoding (a count,
    then the pickled list of deltas) decoded in C where possible, else the format's own."""
    if type(format_) is not formats.Positions:
        return format_.decode_positions

    def decode(value: bytes) -> list[int]:
        payload = value[_COUNT_BYTES:]
        return list(accumulate(loads(payload if payload[-1:] == b"." else payload + b".")))

    return decode


def _fixed_numbers(reader: Any, count: int) -> np.ndarray | None:
    """A fixed-width numeric column's values, straight from its file (None: read it slowly)."""
    if not isinstance(reader, columns.NumericColumn.Reader):
        return None
    stored = min(reader._count, count)
    raw = reader._dbfile.get(reader._basepos, stored * reader._fixedlen)
    values = np.frombuffer(raw, dtype=np.dtype(">" + reader._typecode)).astype(np.int64)
    if stored < count:
        values = np.concatenate([values, np.full(count - stored, reader._default, np.int64)])
    return values


def _length_codes(leaf: IndexReader, fieldname: str, count: int) -> np.ndarray | None:
    """The length bytes of a field (the W3 codec's ``_<field>_len`` column), or None."""
    perdoc = getattr(leaf, "_perdoc", None)
    try:
        from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield

        reader = perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    except (AttributeError, ImportError):
        return None
    if reader is None:
        return np.zeros(count, dtype=np.int64)
    return _fixed_numbers(reader, count)


def _ref_codes(reader: Any, count: int) -> tuple[np.ndarray, list[bytes]] | None:
    """A reference column's per-document codes and its unique values (None: read slowly)."""
    if not isinstance(reader, columns.RefBytesColumn.Reader):
        return None
    raw = reader._dbfile.get(reader._basepos, count * reader._itemsize)
    codes = np.frombuffer(raw, dtype=np.dtype(">" + reader._typecode)).astype(np.int64)
    return codes, list(reader._uniques)


def date_key(moment: datetime) -> int:
    """A datetime in the form the ``date`` column stores (Whoosh's long: UTC microseconds)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return datetime_to_long(moment)


_EPOCH_KEY = date_key(datetime(1970, 1, 1))
