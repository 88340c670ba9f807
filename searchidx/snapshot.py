"""Per-searcher caches: facet values, dates, qualities and sort orders as numpy arrays.

Whoosh counts facets document by document and expands date ranges into terms on every search
(tens to hundreds of milliseconds; see shared/notes/whoosh-performance.md). The values do not
change between searches on the same index generation, so an :class:`IndexSnapshot` reads each
column once, when first needed, and answers filters, counts and sorts with vectorised array
operations. A new snapshot is made whenever the searcher is refreshed; docnums are only
meaningful within one snapshot.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from whoosh.searching import Searcher
from whoosh.util.times import datetime_to_long

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
        values = tuple(ids)
        return cls(
            values=values,
            doc_ids=np.asarray(doc_ids, dtype=np.int32),
            value_ids=np.asarray(value_ids, dtype=np.int32),
            ids_by_key={value.casefold(): number for number, value in enumerate(values)},
        )

    def lookup(self, value: str) -> int | None:
        """The id of a value, matched without regard to case."""
        return self.ids_by_key.get(value.casefold())

    def documents_with(self, values: Iterable[str], size: int) -> np.ndarray:
        """A mask of the documents having any of ``values`` (unknown values match nothing)."""
        wanted = [number for value in values if (number := self.lookup(value)) is not None]
        mask = np.zeros(size, dtype=bool)
        if wanted:
            mask[self.doc_ids[np.isin(self.value_ids, wanted)]] = True
        return mask

    def counts(self, documents: np.ndarray) -> np.ndarray:
        """How many of the masked documents have each value (indexed by value id)."""
        chosen = self.value_ids[documents[self.doc_ids]]
        return np.bincount(chosen, minlength=len(self.values))


class IndexSnapshot:
    """The cached, array form of one searcher's documents. Build lazily, never mutate."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()
        self.size = self.reader.doc_count_all()

    @functools.cached_property
    def live(self) -> np.ndarray:
        """Mask of documents not deleted."""
        mask = np.zeros(self.size, dtype=bool)
        mask[np.fromiter(self.reader.all_doc_ids(), dtype=np.int64)] = True
        return mask

    @functools.cache  # noqa: B019 - the snapshot lives exactly as long as its caches should
    def facet(self, name: str) -> FacetTable:
        if name == "month":
            return self._month_table()
        column = self._column(FACET_COLUMNS[name], translate=True)
        if name == "topic":
            return FacetTable.build([raw.decode().split(VALUE_SEPARATOR) for raw in column],
                                    self.live)  # fmt: skip
        return FacetTable.build([[value] for value in column], self.live)

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
        return np.asarray(self._column("date", translate=False), dtype=np.int64)

    @functools.cached_property
    def qualities(self) -> np.ndarray:
        return np.asarray(self._column("quality", translate=True), dtype=np.int64)

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
        return list(self.reader.column_reader(name, translate=translate))


def date_key(moment: datetime) -> int:
    """A datetime in the form the ``date`` column stores (Whoosh's long: UTC microseconds)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return datetime_to_long(moment)


_EPOCH_KEY = date_key(datetime(1970, 1, 1))
