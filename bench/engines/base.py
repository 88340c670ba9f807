"""The one small interface every engine adapter implements, and what the peers share.

An engine builds an index of a collection, syncs it after the collection changed, and answers
:class:`~bench.queries.BenchQuery` requests with an :class:`Outcome` (hit count, the page's
paths, facet counts). Timing, memory and agreement checks live outside the adapters, so no
adapter can measure itself generously.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from bench.corpus import Doc, changed_files, read_docs
from bench.queries import BenchQuery
from searchidx.content import scan_content
from searchidx.indexer import (
    BUILD_PROCESSES,
    PARALLEL_FILES_PER_PROCESS,
    SYNC_FILES_PER_PROCESS,
)

#: Facets every engine counts when asked, and how many values of each (month: all of them).
FACETS = ("topic", "provider", "category", "type", "published", "month")
FACET_SIZE = 10
#: Field weights of the text search: searchidx's (ranking.FIELD_BOOSTS), used by every peer.
FIELD_BOOSTS = {"title": 3.0, "excerpt": 1.0, "body": 0.5, "topic": 2.0, "provider": 1.5}


@dataclass
class BuildStats:
    seconds: float
    documents: int
    index_bytes: int
    notes: list[str] = field(default_factory=list)


@dataclass
class SyncStats:
    seconds: float
    upserted: int
    removed: int
    documents: int


@dataclass
class Outcome:
    """One answered query: the hit count, the page (paths in order) and facet counts."""

    total: int
    ids: list[str]
    facets: dict[str, list[tuple[str, int]]] | None = None
    #: How many highlighted fragments came back (highlight queries), to prove the work was done.
    highlighted: int = 0


class Engine(ABC):
    """An index at ``index_dir``: build it, sync it, open it and search it."""

    name: ClassVar[str]

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir

    @classmethod
    def available(cls) -> bool:
        return True

    @abstractmethod
    def build(self, folder: Path) -> BuildStats:
        """A fresh index of the article files in ``folder``, read and parsed in the timing."""

    @abstractmethod
    def sync(self, folder: Path) -> SyncStats:
        """Bring the index in line with ``folder``: work in proportion to the change."""

    @abstractmethod
    def open(self) -> None:
        """Get ready to search (a searcher, a connection)."""

    @abstractmethod
    def search(self, query: BenchQuery) -> Outcome: ...

    @abstractmethod
    def close(self) -> None:
        """Release what :meth:`open` took."""

    def index_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.index_dir.rglob("*") if path.is_file())


class PeerEngine(Engine):
    """A peer: lists the folder, reads the files with :func:`~bench.corpus.read_docs` in as
    many processes as searchidx's indexer would use for as many files, and indexes them in
    this process; syncs by stat, as searchidx does, then reads the changed files the same way.

    The (size, mtime) of every indexed file is kept beside the index, so a sync has the same
    information searchidx's has.
    """

    STATE_FILE = "bench-files.json"

    @abstractmethod
    def _create(self) -> None:
        """An empty index at ``index_dir``."""

    @abstractmethod
    def _write(self, upserts: Iterable[Doc], removed: list[str], fresh: bool) -> int:
        """Add or replace ``upserts``, delete ``removed``, commit; returns the document count."""

    def build(self, folder: Path) -> BuildStats:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        paths = sorted(scan_content(folder))
        known: dict[str, tuple[int, int]] = {}
        processes = min(BUILD_PROCESSES, len(paths) // PARALLEL_FILES_PER_PROCESS)
        with read_docs(folder, paths, processes) as docs:
            self._create()
            documents = self._write(_remembering(docs, known), [], fresh=True)
        self._save_state(known)
        seconds = time.perf_counter() - started
        notes = [f"read by {max(processes, 1)} process(es)"]
        return BuildStats(seconds, documents, self.index_bytes(), notes)

    def sync(self, folder: Path) -> SyncStats:
        started = time.perf_counter()
        known = self._load_state()
        upserts, removed = changed_files(folder, known)
        processes = min(BUILD_PROCESSES, len(upserts) // SYNC_FILES_PER_PROCESS)
        with read_docs(folder, upserts, processes) as reading:
            docs = list(reading)
        for path in removed:
            known.pop(path, None)
        documents = self._write(_remembering(iter(docs), known), removed, fresh=False)
        self._save_state(known)
        return SyncStats(time.perf_counter() - started, len(docs), len(removed), documents)

    def _load_state(self) -> dict[str, tuple[int, int]]:
        data = json.loads((self.index_dir / self.STATE_FILE).read_text())
        return {path: (size, mtime) for path, (size, mtime) in data.items()}

    def _save_state(self, known: dict[str, tuple[int, int]]) -> None:
        (self.index_dir / self.STATE_FILE).write_text(json.dumps(known))


def _remembering(docs: Iterator[Doc], known: dict[str, tuple[int, int]]) -> Iterator[Doc]:
    for doc in docs:
        known[doc.path] = (doc.size, doc.mtime_ns)
        yield doc
