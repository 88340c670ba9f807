"""Bringing an index in line with its content folder: ``sync`` (incremental) and ``rebuild``.

A sync does work in proportion to the change. It lists the folder (one ``stat`` a file),
compares size and mtime with the state each indexed document carries in its ``state`` column,
reads and hashes only files whose stat changed, and re-indexes only files whose hash changed.
Many such files are read by a worker process, handed over as the listing finds them, and by
this one once it has listed the folder.
All changes of one sync go into one Whoosh commit, so a crash leaves the index as it was before
or as it is after, never between.

A rebuild indexes everything into a new generation and publishes it atomically
(:meth:`IndexStore.publish`).

Files that cannot be used are reported (path, line, reason) and the rest are indexed. A file that
was indexed and then broken by an edit keeps its last good version in the index until fixed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from whoosh.index import FileIndex
from whoosh.writing import SegmentWriter

from searchidx import merge_policy, records, whoosh_internals, workers
from searchidx.arrays import trust_layout_checked, write_arrays
from searchidx.content import FileState, packed_stat, walk_content
from searchidx.errors import ArticleProblem, ContentFolderError, IndexWriteError
from searchidx.schema import SCHEMA_VERSION
from searchidx.store import IndexMeta, IndexStore
from searchidx.workers import Progress as Progress  # what callers of sync pass
from searchidx.write_options import DEFAULT_OPTIONS, WriteOptions

#: Memory Whoosh may use for its indexing buffer before it flushes a run to disk (a sync), or
#: before the buffer is written as a segment (a build; per worker process). Each segment
#: repeats the words it shares with the others in its term index: at 100,000 articles of the
#: benchmark's collection this writes one segment a worker (some 330 MiB of buffer each).
WRITER_LIMIT_MB = 384
#: A build uses up to one worker process per core...
BUILD_PROCESSES = os.cpu_count() or 1
#: ...and only when each gets at least this many files (starting one costs about 0.3 s).
PARALLEL_FILES_PER_PROCESS = 1000
#: A sync reads and indexes its changed files in worker processes from this many a process,
#: this one indexing beside them once it has listed the folder (one indexes a file in 1.1-1.9
#: ms of CPU, and starts by fork in under 10): on 2 cores, one worker.
SYNC_FILES_PER_PROCESS = 100


@dataclass
class SyncReport:
    """What a sync or rebuild did."""

    content_dir: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[ArticleProblem] = field(default_factory=list)
    documents: int = 0
    seconds: float = 0.0
    rebuilt: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def sync(
    store: IndexStore,
    content_dir: Path | str | None = None,
    options: WriteOptions = DEFAULT_OPTIONS,
) -> SyncReport:
    """Bring the index at ``store`` in line with ``content_dir`` (default: the one it knows).

    Builds the index from scratch when there is none yet, or when it was written by another
    schema version.
    """
    with _writing(store, options.wait) as note:
        root = _content_root(store, content_dir)
        if not store.exists() or store.read_meta().schema_version != SCHEMA_VERSION:
            report = _build(store, root, options.progress, options.synonyms)
        else:
            report = _sync(store, root, options.progress, options.synonyms)
        report.notes.extend(filter(None, [note]))
        return report


def rebuild(
    store: IndexStore,
    content_dir: Path | str | None = None,
    options: WriteOptions = DEFAULT_OPTIONS,
) -> SyncReport:
    """Index everything into a new generation and swap it in atomically."""
    with _writing(store, options.wait) as note:
        root = _content_root(store, content_dir)
        report = _build(store, root, options.progress, options.synonyms)
        report.notes.extend(filter(None, [note]))
        return report


@contextlib.contextmanager
def _writing(store: IndexStore, wait: float) -> Iterator[str]:
    """Hold the writer lock; a failed write (disk full, permissions) becomes a clear error.

    Whoosh commits atomically and a rebuild publishes only a complete generation, so whatever
    failed, the index keeps its last complete state; the message says so and what to do.
    """
    try:
        with store.writing(wait) as note:
            yield note
    except OSError as error:
        if isinstance(error, IndexWriteError):
            raise
        reason = error.strerror or str(error)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = "free some disk space"
        else:
            fix = f"check the disk and that {store.location}/ is writable"
        raise IndexWriteError(
            f"could not write the index at {store.location}/ ({reason}); it keeps its last "
            f"complete state: {fix}, then run the command again"
        ) from error


def _content_root(store: IndexStore, content_dir: Path | str | None) -> Path:
    if content_dir is None:
        if not store.exists():
            raise ContentFolderError(
                f"no index at {store.location}/ yet, so no content folder is known; "
                "run 'searchidx index CONTENT_DIR'"
            )
        content_dir = store.read_meta().content_dir
    return content_folder(content_dir)


def content_folder(content_dir: Path | str) -> Path:
    """The content folder as an absolute path, or a clear error if it is not a folder."""
    root = Path(content_dir).expanduser()
    if not root.is_dir():
        raise ContentFolderError(
            f"content folder {root} does not exist or is not a folder; "
            "pass the folder of article files"
        )
    return root.resolve()


def _build(
    store: IndexStore, root: Path, progress: Progress | None, synonyms: str | None
) -> SyncReport:
    started = time.perf_counter()
    report = SyncReport(str(root), rebuilt=True)
    generation, index = store.create_generation()
    try:
        try:
            _add_all(index, root, report, progress)
            report.documents = index.doc_count()
        finally:
            index.close()
        _finish(store, generation, report, started, synonyms)
    except BaseException:
        shutil.rmtree(generation, ignore_errors=True)
        raise
    store.publish(generation)
    return report


def _add_all(index: FileIndex, root: Path, report: SyncReport, progress: Progress | None) -> None:
    """Index every article file in ``root`` into the new, empty ``index``: in worker processes
    once the listing has found enough files to pay for starting them, each file handed over as
    listed (the workers index while the listing goes on: it took a second alone before them
    at 100,000 files), else here in path order; either way into segments that fit in memory."""
    paths = []
    with workers.BuildWorkers(index, root, WRITER_LIMIT_MB) as building:
        for path, _ in walk_content(root):
            paths.append(path)
            building.hand(path, None)
            building.grow(BUILD_PROCESSES, PARALLEL_FILES_PER_PROCESS)
        if building.started:
            built = building.finish(progress)
        else:
            built = _build_here(index, root, sorted(paths), progress, {})
    report.added += built.added
    report.skipped.extend(built.problems)
    _publish(index, built.segments)


def _publish(index: FileIndex, segments: list[Any], deleted: Iterable[int] = ()) -> None:
    """Make ``segments`` part of the index and delete the ``deleted`` docnums, in one commit,
    as Whoosh's multi-process writer does; its end removes the temporary folder the
    segments' writers shared."""
    writer = _writer(index)
    try:
        for docnum in deleted:
            writer.delete_document(docnum)
        writer.commit(mergetype=_adding(index, segments))
    except BaseException:
        whoosh_internals.cancel_writer(writer)
        raise


def _adding(index: FileIndex, segments: list[Any]) -> Callable[[Any, list[Any]], list[Any]]:
    """A Whoosh merge policy: ``segments`` (new segments written into the index folder by
    this process or workers) added to the ``existing`` ones, and those of a full tier merged
    into one new segment (:mod:`searchidx.merge_policy`) by
    :func:`whoosh_internals.merged_segment`, as Whoosh's writer would merge them.

    Not Whoosh's ``MERGE_SMALL``: its bound grows as the Fibonacci numbers with the count of
    segments, so past some 20 (a build writes one per full buffer) one sync merged most of the
    index: over 100 s for a 1% sync at 100,000 articles.
    """

    def merge(writer: Any, existing: list[Any]) -> list[Any]:
        every = existing + segments
        live = [segment.doc_count() for segment in every]
        documents = [segment.doc_count_all() for segment in every]
        chosen = [every[n] for n in merge_policy.to_merge(live, documents)]
        if not chosen:
            return every
        merged = whoosh_internals.merged_segment(index, chosen)
        return [segment for segment in every if segment not in chosen] + [merged]

    return merge


def _writer(index: FileIndex) -> SegmentWriter:
    """A Whoosh writer without Whoosh's own write lock: the store's writer lock is the one lock.

    Whoosh takes its lock before creating the segment files, and a writer that fails while
    creating them (disk full) never releases it: the next sync in the same process (``watch``,
    the web server) would fail with LockError until the garbage collector runs.
    """
    return whoosh_internals.unlocked_writer(index, WRITER_LIMIT_MB)


def _sync(
    store: IndexStore, root: Path, progress: Progress | None, synonyms: str | None
) -> SyncReport:
    started = time.perf_counter()
    report = SyncReport(str(root))
    trust_layout_checked(store.live_dir())
    index = store.open_index()
    try:
        indexed = _IndexedFiles.read(index)
        with workers.BuildWorkers(index, root, WRITER_LIMIT_MB, index_here=True) as building:

            def found(path: str) -> None:  # a file to read: workers start as they pay
                building.hand(path, indexed.digest(path))
                building.grow(BUILD_PROCESSES - 1, SYNC_FILES_PER_PROCESS)

            changes = indexed.compare(walk_content(root), found)
            report.unchanged = changes.unchanged
            if building.started:  # this process, done listing, indexes beside them
                built = building.finish(progress)
            else:
                paths, previous = changes.stat_changed, changes.previous()
                built = _build_here(index, root, paths, progress, previous)
        _commit(index, changes, built, report)
    finally:
        index.close()
    report.documents = store.open_index().doc_count() if report.changed else len(indexed.docnums)
    _finish(store, store.live_dir(), report, started, synonyms)
    return report


@dataclass(frozen=True)
class _Changes:
    """What a sync found to do: files to read (their size or mtime changed, or they are new),
    indexed files gone from the folder, how many files are as indexed, and what the index
    holds."""

    stat_changed: list[str]
    removed: list[str]
    unchanged: int
    indexed: _IndexedFiles

    def previous(self) -> dict[str, str]:
        """The content hash each file to read was indexed with, if it was."""
        return {
            path: digest
            for path in self.stat_changed
            if (digest := self.indexed.digest(path)) is not None
        }


def _build_here(
    index: FileIndex,
    root: Path,
    paths: list[str],
    progress: Progress | None,
    previous: dict[str, str],
) -> workers.Built:
    """Read ``paths`` in this process and index those whose content changed (all of them for a
    build) into new segments, as a worker process does (few files: starting one would cost
    more)."""
    builder = whoosh_internals.SegmentBuilder(
        index, WRITER_LIMIT_MB, records.largest_dictionaries(index)
    )
    built = workers.Built()
    try:
        for loaded in workers.load_all(root, paths, progress):
            built.take(loaded, previous, builder)
        built.segments = builder.finish()
    except BaseException:
        builder.cancel()
        raise
    return built


def _commit(index: FileIndex, changes: _Changes, built: workers.Built, report: SyncReport) -> None:
    """Delete the old versions of the files indexed anew and the files gone, and publish the
    new segments, in one commit: a sync that fails before it leaves the index as it was.
    Old versions go by the docnums read at the start, with no term lookup per file. Segments
    of a sync that failed before its commit are in no table of contents; Whoosh removes them
    at the next commit."""
    indexed, removed = changes.indexed, changes.removed
    report.unchanged += len(built.unchanged)
    report.skipped += [
        _skipped(problem, problem.path in indexed.docnums) for problem in built.problems
    ]
    unused = set(built.unchanged).union(problem.path for problem in built.problems)
    replaced = [
        path for path in changes.stat_changed if path in indexed.docnums and path not in unused
    ]
    report.updated += len(replaced)
    report.added += built.added - len(replaced)
    report.removed += len(removed)
    if built.segments or replaced or removed:
        _publish(index, built.segments, [indexed.docnums[path] for path in replaced + removed])


def _skipped(problem: ArticleProblem, was_indexed: bool) -> ArticleProblem:
    """A problem as a sync reports it: a file indexed before keeps its last good version."""
    if not was_indexed:
        return problem
    reason = f"{problem.reason} (its last good version stays indexed)"
    return ArticleProblem(problem.path, problem.line, reason)


def _finish(
    store: IndexStore, generation: Path, report: SyncReport, started: float, synonyms: str | None
) -> None:
    write_arrays(generation)  # what searches read, for the next readers to map
    report.seconds = time.perf_counter() - started
    if synonyms is None and store.exists() and generation != store.live_dir():
        synonyms = store.read_synonyms()  # a new generation keeps the live one's synonyms
    if synonyms is not None:
        store.write_synonyms(generation, synonyms)
    store.write_meta(
        generation,
        IndexMeta(
            content_dir=report.content_dir,
            last_sync=datetime.now(UTC).isoformat(timespec="seconds"),
            documents=report.documents,
            skipped=report.skipped,
        ),
    )


@dataclass(frozen=True)
class _IndexedFiles:
    """Every live document's docnum by path, and the state of each document's file when
    indexed: the state columns' bytes in one piece, document ``n``'s from
    ``state_bounds[n]`` to ``state_bounds[n + 1]``. Kept as bytes, neither decoded (decoding
    100,000 states to compare sizes and mtimes took a tenth of a sync) nor cut into a value
    a document (a sync reads the hashes of its changed files alone)."""

    docnums: dict[str, int]
    states: bytes
    state_bounds: list[int]

    @classmethod
    def read(cls, index: FileIndex) -> _IndexedFiles:
        """From the path and state columns, each segment's read in one piece (Whoosh's
        readers, value by value and document by document, took 0.3 s at 100,000)."""
        docnums: dict[str, int] = {}
        states: list[bytes] = []
        bounds = [0]
        with index.reader() as reader:
            for leaf, base in reader.leaf_readers():
                count = leaf.doc_count_all()
                if not count:
                    continue  # built from an empty folder: Whoosh has no columns
                texts = whoosh_internals.column_texts(leaf, "path")  # UTF-8, without NUL
                data, ends = whoosh_internals.column_joined(leaf, "state")
                bounds += (np.asarray(ends, dtype=np.int64) + bounds[-1]).tolist()
                states.append(data)
                live: Sequence[int] = range(count)
                if leaf.has_deletions():
                    deleted = whoosh_internals.deleted_set(leaf)
                    live = [docnum for docnum in live if docnum not in deleted]
                    texts = [texts[docnum] for docnum in live]
                docnums.update(zip(texts, [base + docnum for docnum in live], strict=True))
        return cls(docnums, b"".join(states), bounds)

    def compare(
        self, files: Iterable[tuple[str, os.stat_result]], found: Callable[[str], None]
    ) -> _Changes:
        """What a sync is to do for the ``files`` in the folder (path and stat, as
        :func:`walk_content` lists them): one dictionary pop and one prefix test a file,
        since most are as indexed (the docnums not popped are of files gone); each file to
        read is ``found`` as soon as listed."""
        unseen = dict(self.docnums)
        pop = unseen.pop
        states, bounds = self.states, self.state_bounds
        listed = 0
        stat_changed = []
        for path, info in files:
            listed += 1
            docnum = pop(path, None)
            if docnum is None or not states.startswith(
                packed_stat(info.st_size, info.st_mtime_ns), bounds[docnum], bounds[docnum + 1]
            ):
                stat_changed.append(path)
                found(path)
        stat_changed.sort()
        return _Changes(stat_changed, sorted(unseen), listed - len(stat_changed), self)

    def digest(self, path: str) -> str | None:
        docnum = self.docnums.get(path)
        if docnum is None:
            return None
        known = self.states[self.state_bounds[docnum] : self.state_bounds[docnum + 1]]
        return FileState.unpacked(known).digest
