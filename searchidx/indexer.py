"""Bringing an index in line with its content folder: ``sync`` (incremental) and ``rebuild``.

A sync does work in proportion to the change. It lists the folder (one ``stat`` a file),
compares size and mtime with the state each indexed document carries in its ``state`` column,
reads and hashes only files whose stat changed, and re-indexes only files whose hash changed.
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
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from whoosh.index import Index
from whoosh.writing import IndexWriter

from searchidx.content import FileState, content_hash, scan_content
from searchidx.errors import ArticleError, ArticleProblem, ContentFolderError, IndexWriteError
from searchidx.parsing import decode_article, parse_article, read_bounded
from searchidx.schema import SCHEMA_VERSION, to_document
from searchidx.store import IndexMeta, IndexStore

#: Called as ``progress(done, total)`` while files are indexed.
Progress = Callable[[int, int], None]

#: Memory Whoosh may use for its indexing buffer before it flushes a run to disk.
WRITER_LIMIT_MB = 256


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


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A file read once: its state (from the open file) and its parsed article or problem."""

    path: str
    state: FileState
    document: dict[str, Any] | None
    problem: ArticleProblem | None


def sync(
    store: IndexStore,
    content_dir: Path | str | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
) -> SyncReport:
    """Bring the index at ``store`` in line with ``content_dir`` (default: the one it knows).

    Builds the index from scratch when there is none yet, or when it was written by another
    schema version.
    """
    with _writing(store, wait) as note:
        root = _content_root(store, content_dir)
        if not store.exists() or store.read_meta().schema_version != SCHEMA_VERSION:
            report = _build(store, root, progress)
        else:
            report = _sync(store, root, progress)
        report.notes.extend(filter(None, [note]))
        return report


def rebuild(
    store: IndexStore,
    content_dir: Path | str | None = None,
    progress: Progress | None = None,
    wait: float = 0.0,
) -> SyncReport:
    """Index everything into a new generation and swap it in atomically."""
    with _writing(store, wait) as note:
        report = _build(store, _content_root(store, content_dir), progress)
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
    root = Path(content_dir).expanduser()
    if not root.is_dir():
        raise ContentFolderError(
            f"content folder {root} does not exist or is not a folder; "
            "pass the folder of article files"
        )
    return root.resolve()


def _build(store: IndexStore, root: Path, progress: Progress | None) -> SyncReport:
    started = time.perf_counter()
    report = SyncReport(str(root), rebuilt=True)
    on_disk = scan_content(root)
    generation, index = store.create_generation()
    try:
        try:
            _add_all(index, root, sorted(on_disk), report, progress)
            report.documents = index.doc_count()
        finally:
            index.close()
        _finish(store, generation, report, started)
    except BaseException:
        shutil.rmtree(generation, ignore_errors=True)
        raise
    store.publish(generation)
    return report


def _add_all(
    index: Index, root: Path, paths: list[str], report: SyncReport, progress: Progress | None
) -> None:
    writer = _writer(index)
    try:
        for loaded in _load_all(root, paths, progress):
            if loaded.problem is not None:
                report.skipped.append(loaded.problem)
            else:
                writer.add_document(**loaded.document)
                report.added += 1
        writer.commit()
    except BaseException:
        _cancel(writer)
        raise


def _writer(index: Index) -> IndexWriter:
    """A Whoosh writer without Whoosh's own write lock: the store's writer lock is the one lock.

    Whoosh takes its lock before creating the segment files, and a writer that fails while
    creating them (disk full) never releases it: the next sync in the same process (``watch``,
    the web server) would fail with LockError until the garbage collector runs.
    """
    return index.writer(limitmb=WRITER_LIMIT_MB, _lk=False)


def _cancel(writer: IndexWriter) -> None:
    """Drop an unfinished commit. A commit that failed has already cleaned up and closed its
    writer; cancelling it again would hide the real error behind "This writer is closed"."""
    if not writer.is_closed:
        writer.cancel()


def _sync(store: IndexStore, root: Path, progress: Progress | None) -> SyncReport:
    started = time.perf_counter()
    report = SyncReport(str(root))
    on_disk = scan_content(root)
    index = store.open_index()
    try:
        indexed = _indexed_states(index)
        stat_changed = sorted(
            path
            for path, state in on_disk.items()
            if path not in indexed or not indexed[path].same_stat(state)
        )
        report.unchanged = len(on_disk) - len(stat_changed)
        changes = _changes(_load_all(root, stat_changed, progress), indexed, report)
        removed = sorted(indexed.keys() - on_disk.keys())
        writer: IndexWriter | None = None
        try:
            for loaded in changes:
                writer = writer or _writer(index)
                if loaded.path in indexed:
                    writer.update_document(**loaded.document)
                    report.updated += 1
                else:
                    writer.add_document(**loaded.document)
                    report.added += 1
            for path in removed:
                writer = writer or _writer(index)
                writer.delete_by_term("path", path)
                report.removed += 1
            if writer is not None:
                writer.commit()
        except BaseException:
            if writer is not None:
                _cancel(writer)
            raise
    finally:
        index.close()
    report.documents = store.open_index().doc_count() if report.changed else len(indexed)
    _finish(store, store.live_dir(), report, started)
    return report


def _changes(
    loads: Iterable[_Loaded], indexed: dict[str, FileState], report: SyncReport
) -> Iterator[_Loaded]:
    """The loaded files whose content changed and parses; counts the rest into ``report``."""
    for loaded in loads:
        previous = indexed.get(loaded.path)
        if previous is not None and previous.sha256 == loaded.state.sha256:
            report.unchanged += 1  # touched, not changed
        elif loaded.problem is None:
            yield loaded
        elif previous is None:
            report.skipped.append(loaded.problem)
        else:
            problem = loaded.problem
            report.skipped.append(
                ArticleProblem(
                    problem.path,
                    problem.line,
                    f"{problem.reason} (its last good version stays indexed)",
                )
            )


def _finish(store: IndexStore, generation: Path, report: SyncReport, started: float) -> None:
    report.seconds = time.perf_counter() - started
    store.write_meta(
        generation,
        IndexMeta(
            content_dir=report.content_dir,
            last_sync=datetime.now(UTC).isoformat(timespec="seconds"),
            documents=report.documents,
            skipped=report.skipped,
        ),
    )


def _indexed_states(index: Index) -> dict[str, FileState]:
    """Path -> remembered file state of every live document, read from two columns."""
    with index.reader() as reader:
        if not reader.doc_count_all():
            return {}  # no segment at all (built from an empty folder): Whoosh has no columns
        paths = reader.column_reader("path")
        states = reader.column_reader("state")
        return {
            paths[docnum]: FileState.decode(states[docnum].decode())
            for docnum in reader.all_doc_ids()
        }


def _load_all(root: Path, paths: list[str], progress: Progress | None) -> Iterator[_Loaded]:
    for done, path in enumerate(paths, 1):
        yield _load(root, path)
        if progress is not None:
            progress(done, len(paths))


def _load(root: Path, path: str) -> _Loaded:
    """Read a file once: hash, decode and parse the same bytes, and stat the open file."""
    try:
        data, info = read_bounded(root, path)
    except ArticleError as error:
        return _Loaded(path, FileState(0, 0), None, error.problem)
    state = FileState(info.st_size, info.st_mtime_ns, content_hash(data))
    try:
        article = parse_article(decode_article(data, path), path)
    except ArticleError as error:
        return _Loaded(path, state, None, error.problem)
    return _Loaded(path, state, to_document(article, state), None)
