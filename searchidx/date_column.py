"""The ``date`` field as a column alone, and every date query answered from it.

A publication time is nearly unique per article: as terms (one a date, its one posting inlined
in the term index) dates were 49,890 of a segment's 117,000 term-index entries at 100,000
articles, 8.3 of its 19.65 MiB of term index, written term by term at every commit, for
queries the searches answer from the per-document arrays anyway
(:meth:`~searchidx.snapshot.IndexSnapshot.numeric_range`). The field indexes no term; it
parses every date of the query language (``date:2022``, ``date:[2020 TO 2021]``, an exact
time) into a :class:`ColumnDateRange`: a ``NumericRange``, which the fast paths answer from
the arrays as before, and which Whoosh's own searcher (the fast paths off, or a shape they do
not take) answers from each segment's column, not from terms.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from whoosh import fields, matching, query
from whoosh.reading import IndexReader
from whoosh.searching import Searcher
from whoosh.util.times import datetime_to_long

from searchidx import whoosh_internals


class DateColumn(fields.DATETIME):
    """Whoosh's ``DATETIME`` kept in a column (Whoosh's long: UTC microseconds), indexing no
    term; its queries are :class:`ColumnDateRange` (a date that does not parse stays Whoosh's
    error query, so it gives the same message)."""

    def __init__(self) -> None:
        super().__init__(sortable=True)
        self.indexed = False

    def parse_query(self, fieldname: str, qstring: str, boost: float = 1.0) -> query.Query:
        return _in_column(super().parse_query(fieldname, qstring, boost))

    def parse_range(
        self,
        fieldname: str,
        start: Any,
        end: Any,
        startexcl: bool,
        endexcl: bool,
        boost: float = 1.0,
    ) -> query.Query:
        return _in_column(super().parse_range(fieldname, start, end, startexcl, endexcl, boost))


def _in_column(parsed: query.Query) -> query.Query:
    """A date query as ``DATETIME`` parses it, over the same documents without terms: an
    exact time (a term) the range of its microsecond, a range the column's, ``date:[TO]``
    (Whoosh's ``Every`` of the field) every document, as every article has a date."""
    if type(parsed) is query.Term:
        moment = datetime_to_long(parsed.text)
        return ColumnDateRange(parsed.fieldname, moment, moment, boost=parsed.boost)
    if type(parsed) is query.NumericRange:
        return ColumnDateRange(
            parsed.fieldname,
            parsed.start,
            parsed.end,
            parsed.startexcl,
            parsed.endexcl,
            boost=parsed.boost,
            constantscore=parsed.constantscore,
        )
    if type(parsed) is query.Every:
        return EveryDated(parsed.fieldname, boost=parsed.boost)  # type: ignore[no-untyped-call]
    return parsed


class EveryDated(query.Every):
    """``date:[TO]``: Whoosh's ``Every`` of the field (a browse alone, a condition in a
    query) matching every live document, not those with a term of the field (none). Not
    Whoosh's ``Every()`` of no field, which an AND or OR normalises into a browse."""

    def matcher(self, searcher: Searcher, context: Any = None) -> matching.Matcher:
        every: matching.Matcher = query.Every(boost=self.boost).matcher(searcher, context)
        return every


class ColumnDateRange(query.NumericRange):
    """A range of a :class:`DateColumn`: Whoosh's searcher matches a segment's live documents
    whose date is in range, read from its column, each scoring the boost (as the constant-score
    range of terms it replaces did). Whoosh asks a query for its size, then its matcher, at
    each segment: the documents are read from the column once per reader and kept with the
    query (as :class:`~searchidx.snapshot.IndexSnapshot` keeps its answers), not once a call."""

    def matcher(self, searcher: Searcher, context: Any = None) -> matching.Matcher:
        found: matching.Matcher = matching.ListMatcher(
            self._docs(searcher.reader()), all_weights=self.boost
        )
        return found

    def docs(self, searcher: Searcher) -> Any:
        return iter(self._docs(searcher.reader()))

    def estimate_size(self, ixreader: IndexReader) -> int:
        return len(self._docs(ixreader))

    def estimate_min_size(self, ixreader: IndexReader) -> int:
        return len(self._docs(ixreader))

    def simplify(self, ixreader: IndexReader) -> query.Query:
        return self

    def __getstate__(self) -> dict[str, Any]:
        """The query without the documents kept: a copy (Whoosh's ``with_boost``, a deep
        copy, its range perhaps changed) neither shares them nor copies their readers."""
        state = dict(vars(self))
        state.pop("_kept", None)
        return state

    def _docs(self, reader: IndexReader) -> list[int]:
        """The reader's live docnums dated within the range, ascending: read once per reader."""
        kept: weakref.WeakKeyDictionary[IndexReader, list[int]]
        kept = vars(self).setdefault("_kept", weakref.WeakKeyDictionary())
        found = kept.get(reader)
        if found is None:
            found = kept[reader] = self._read_docs(reader)
        return found

    def _read_docs(self, reader: IndexReader) -> list[int]:
        """The reader's live docnums dated within the range, ascending, from its column."""
        count = reader.doc_count_all()
        if not count or not reader.has_column(self.fieldname):
            return []
        column = reader.column_reader(self.fieldname, translate=False)
        dates = whoosh_internals.fixed_numbers(column, count)
        if dates is None:
            dates = np.fromiter(column, dtype=np.int64, count=count)
        within = np.ones(count, dtype=bool)
        if self.start is not None:
            within &= dates > self.start if self.startexcl else dates >= self.start
        if self.end is not None:
            within &= dates < self.end if self.endexcl else dates <= self.end
        docs: list[int] = np.flatnonzero(within).tolist()
        if reader.has_deletions():
            return [doc for doc in docs if not reader.is_deleted(doc)]
        return docs
