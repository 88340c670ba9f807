"""Where an index lives decides the engine: a folder is the embedded Whoosh index (the
default), an ``http(s)://`` URL an OpenSearch cluster (:mod:`searchidx.cluster`). The CLI and
the web app call these functions and never ask which engine they talk to.
"""

from __future__ import annotations

from pathlib import Path

from searchidx import cluster_sync, indexer
from searchidx.bounds import DEFAULT_SEARCH_TIMEOUT
from searchidx.cluster import ClusterIndex, is_cluster_url
from searchidx.cluster_search import ClusterSearchService
from searchidx.indexer import Progress, SyncReport
from searchidx.service import SearchService
from searchidx.snapshot import RESULTS_CACHED
from searchidx.store import IndexStore

Location = IndexStore | ClusterIndex
Service = SearchService | ClusterSearchService


def location(text: str | Path | None) -> Location:
    """The index location a user gave (``--index``, ``SEARCHIDX_INDEX``)."""
    if text is not None and is_cluster_url(text):
        return ClusterIndex.parse(str(text))
    return IndexStore(text)


def sync(
    where: Location,
    content_dir: Path | str | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
    synonyms: str | None = None,
) -> SyncReport:
    """Bring the index in line with its content folder (see :func:`indexer.sync`)."""
    if isinstance(where, IndexStore):
        return indexer.sync(where, content_dir, progress, wait, synonyms)
    return cluster_sync.sync(where, content_dir, progress, wait, synonyms)


def rebuild(
    where: Location,
    content_dir: Path | str | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
    synonyms: str | None = None,
) -> SyncReport:
    """Build a new index and swap it in atomically (see :func:`indexer.rebuild`)."""
    if isinstance(where, IndexStore):
        return indexer.rebuild(where, content_dir, progress, wait, synonyms)
    return cluster_sync.rebuild(where, content_dir, progress, wait, synonyms)


def search_service(
    where: Location,
    results_cached: int = RESULTS_CACHED,
    search_timeout: float | None = DEFAULT_SEARCH_TIMEOUT,
) -> Service:
    """The long-lived search service of the location."""
    if isinstance(where, IndexStore):
        return SearchService(where, results_cached, search_timeout)
    return ClusterSearchService(where, search_timeout)
