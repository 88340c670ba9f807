"""Where an index lives decides the engine: a folder is the embedded Whoosh index (the
default), an ``http(s)://`` URL an OpenSearch cluster (:mod:`searchidx.cluster`). The CLI and
the web app call these functions and never ask which engine they talk to.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from searchidx.defaults import DEFAULT_SEARCH_TIMEOUT, RESULTS_CACHED
from searchidx.store import IndexStore
from searchidx.write_options import DEFAULT_OPTIONS, WriteOptions

if TYPE_CHECKING:  # each engine's modules are imported by the calls that use them
    from searchidx.cluster import ClusterIndex
    from searchidx.cluster_search import ClusterSearchService
    from searchidx.indexer import SyncReport
    from searchidx.service import Lane, SearchService

    Location = IndexStore | ClusterIndex
    Service = SearchService | ClusterSearchService

_CLUSTER_URL = re.compile(r"https?://", re.IGNORECASE)


def is_cluster_url(location: str | os.PathLike[str]) -> bool:
    """Whether an index location names an OpenSearch cluster rather than a folder."""
    return bool(_CLUSTER_URL.match(str(location)))


def location(text: str | Path | None) -> Location:
    """The index location a user gave (``--index``, ``SEARCHIDX_INDEX``)."""
    if text is not None and is_cluster_url(text):
        from searchidx.cluster import ClusterIndex

        return ClusterIndex.parse(str(text))
    return IndexStore(text)


def sync(
    where: Location,
    content_dir: Path | str | None = None,
    options: WriteOptions = DEFAULT_OPTIONS,
) -> SyncReport:
    """Bring the index in line with its content folder (see :func:`indexer.sync`)."""
    if isinstance(where, IndexStore):
        from searchidx import indexer

        return indexer.sync(where, content_dir, options)
    from searchidx import cluster_sync

    return cluster_sync.sync(where, content_dir, options)


def rebuild(
    where: Location,
    content_dir: Path | str | None = None,
    options: WriteOptions = DEFAULT_OPTIONS,
) -> SyncReport:
    """Build a new index and swap it in atomically (see :func:`indexer.rebuild`)."""
    if isinstance(where, IndexStore):
        from searchidx import indexer

        return indexer.rebuild(where, content_dir, options)
    from searchidx import cluster_sync

    return cluster_sync.rebuild(where, content_dir, options)


def search_service(
    where: Location,
    results_cached: int = RESULTS_CACHED,
    search_timeout: float | None = DEFAULT_SEARCH_TIMEOUT,
    prepare: bool = True,
    lane: Lane | None = None,
) -> Service:
    """The long-lived search service of the location (``prepare`` and ``lane``: see
    :class:`~searchidx.service.SearchService`; a cluster has nothing to prepare, and bounds
    its searches' work itself)."""
    if isinstance(where, IndexStore):
        from searchidx.service import SearchService

        return SearchService(where, results_cached, search_timeout, prepare=prepare, lane=lane)
    from searchidx.cluster_search import ClusterSearchService

    return ClusterSearchService(where, search_timeout)
