"""searchidx measured through its real code paths: the indexer on the folder, and
:meth:`SearchService.search` with a typed :class:`SearchRequest`.

Like the peers, searchidx highlights the hits (``Hit.marked_title``/``marked_excerpt``) only in
the ``highlight`` kind: the other kinds' requests ask for none (``SearchRequest.highlight``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.engines.base import FACET_SIZE, BuildStats, Engine, Outcome, SyncStats
from bench.queries import BenchQuery
from searchidx import indexer
from searchidx.marks import Mark
from searchidx.request import SearchRequest, Sort
from searchidx.service import SearchService
from searchidx.store import IndexStore

if TYPE_CHECKING:
    from searchidx.engine import Service

_SORTS = {"relevance": Sort.RELEVANCE, "newest": Sort.NEWEST, "quality": Sort.QUALITY}


class SearchidxEngine(Engine):
    name = "searchidx"

    def __init__(self, index_dir: Path) -> None:
        super().__init__(index_dir)
        self.store = IndexStore(index_dir)
        self.service: Service | None = None

    def build(self, folder: Path) -> BuildStats:
        report = indexer.rebuild(self.store, folder)
        notes = [f"{len(report.skipped)} files skipped"] if report.skipped else []
        return BuildStats(report.seconds, report.documents, self.index_bytes(), notes)

    def sync(self, folder: Path) -> SyncStats:
        report = indexer.sync(self.store, folder)
        return SyncStats(
            report.seconds, report.added + report.updated, report.removed, report.documents
        )

    def index_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.store.live_dir().iterdir() if p.is_file())

    def open(self) -> None:
        # No result cache: the query set repeats queries, and each is to be measured searching.
        self.service = SearchService(self.store, results_cached=0)

    def close(self) -> None:
        if self.service is not None:
            self.service.close()

    def search(self, query: BenchQuery) -> Outcome:
        assert self.service is not None
        filters = {
            name: values
            for name, values in (("topic", query.topics), ("provider", query.providers))
            if values
        }
        result = self.service.search(
            SearchRequest(
                text=query.text,
                filters=filters,
                date_from=query.date_from,
                date_to=query.date_to,
                sort=_SORTS[query.sort],
                page=query.page,
                per_page=query.per_page,
                facets=query.facets,
                facet_size=FACET_SIZE,
                highlight=query.highlight,
            )
        )
        facets = None
        if query.facets:
            facets = {f.name: [(v.value, v.count) for v in f.values] for f in result.facets}
        highlighted = sum(
            any(isinstance(piece, Mark) for piece in hit.marked_title + hit.marked_excerpt)
            for hit in result.hits
        )
        if result.retry is not None:  # nothing matched; the hits are a corrected query's
            return Outcome(0, [], facets, highlighted)
        return Outcome(result.total, [hit.article.path for hit in result.hits], facets, highlighted)
