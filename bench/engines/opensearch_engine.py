"""searchidx on an OpenSearch cluster, measured through the same code paths as the CLI: the
cluster sync (:mod:`searchidx.cluster_sync`) and :class:`ClusterSearchService`.

Runs when :data:`CLUSTER_ENV` names a cluster (``make bench`` passes it through): each index
is an alias on it named after the bench's index folder, so sizes do not collide.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.engines.base import BuildStats, SyncStats
from bench.engines.searchidx_engine import SearchidxEngine
from searchidx import cluster_sync
from searchidx.cluster import ClusterIndex
from searchidx.cluster_search import ClusterSearchService

#: The cluster's base URL, such as http://127.0.0.1:9200.
CLUSTER_ENV = "SEARCHIDX_BENCH_OPENSEARCH"


class OpenSearchEngine(SearchidxEngine):
    name = "opensearch"

    def __init__(self, index_dir: Path) -> None:
        super().__init__(index_dir)
        url = os.environ.get(CLUSTER_ENV, "").rstrip("/")
        self.index = ClusterIndex.parse(f"{url}/bench-{index_dir.name.lower()}")

    @classmethod
    def available(cls) -> bool:
        try:
            import opensearchpy  # noqa: F401
        except ImportError:
            return False
        return bool(os.environ.get(CLUSTER_ENV))

    def build(self, folder: Path) -> BuildStats:
        report = cluster_sync.rebuild(self.index, folder)
        notes = [f"{len(report.skipped)} files skipped"] if report.skipped else []
        return BuildStats(report.seconds, report.documents, self.index_bytes(), notes)

    def sync(self, folder: Path) -> SyncStats:
        report = cluster_sync.sync(self.index, folder)
        return SyncStats(
            report.seconds, report.added + report.updated, report.removed, report.documents
        )

    def index_bytes(self) -> int:
        return cluster_sync.status(self.index).size_bytes

    def open(self) -> None:
        self.service = ClusterSearchService(self.index)
