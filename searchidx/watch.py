"""Keeping the index in line with its content folder while people edit it (``searchidx watch``).

The watcher does not index anything itself: each burst of file events becomes one call of
:func:`searchidx.engine.sync`, which compares the whole folder with the index (a local one,
or one on an OpenSearch cluster). So an event
that is missed, duplicated or out of order costs nothing but a sync, and whatever an editor does
to save a file (truncate then write, write a temporary file then rename it over the old one),
the sync after its last event reads the finished file. A sync that sees a half-written file
reports it as skipped; the write that finishes it is another event, and the next sync indexes it
and clears the report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import watchfiles
from watchfiles._rust_notify import WatchfilesRustInternalError

from searchidx import engine
from searchidx.content import ARTICLE_SUFFIXES
from searchidx.defaults import DEFAULT_DEBOUNCE_MS
from searchidx.errors import ArticleProblem, IndexBusyError
from searchidx.indexer import SyncReport
from searchidx.store import IndexStore
from searchidx.write_options import WriteOptions

logger = logging.getLogger(__name__)


#: A burst that never goes quiet (copying in thousands of files) still syncs this often.
MAX_BATCH_MS = 2000

#: Idle time after which the watcher checks once that nothing changed while it was starting.
CATCH_UP_MS = 1000

#: How often the folder is synced while watchfiles cannot watch it (a folder name below it is not
#: UTF-8): a sync that finds nothing to do costs about 0.1 s per 10,000 articles.
POLL_MS = 5000

#: How long one attempt waits for another writer's lock before the watcher tries again.
LOCK_POLL_SECONDS = 0.5

#: Called with the report of every sync the watcher runs, the first one included.
OnSync = Callable[[SyncReport], None]


def watch(
    store: engine.Location,
    content_dir: Path | str | None = None,
    *,
    stop_event: threading.Event | None = None,
    on_sync: OnSync | None = None,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
    wait: float | None = None,
) -> None:
    """Sync the index at ``store`` now, then again after every burst of changes in the folder.

    ``content_dir`` defaults to the folder the index remembers. The first sync runs before
    watching starts, so a missing folder or index raises at once; ``wait`` bounds how many
    seconds that first sync waits for another writer (``None``: as long as it takes). Later
    syncs never give up on a busy index: they retry until the lock is free.

    Blocks until ``stop_event`` is set (then returns within about ``debounce_ms``), or until
    KeyboardInterrupt in the main thread. Safe to run in a background thread: the web server
    does, with its own ``stop_event``, and refreshes its searcher from ``on_sync``.

    Every sync is logged on the ``searchidx.watch`` logger (a one-line summary at INFO, newly
    skipped files at WARNING) and passed to ``on_sync``. A later sync that cannot write the
    index (disk full, permissions: an ``OSError``) is logged at ERROR and retried about every
    :data:`CATCH_UP_MS`; the index keeps its last complete state meanwhile. A name that is not
    UTF-8, which stops watchfiles, costs a restart of it, or syncs every :data:`POLL_MS` while a
    folder is so named (see :func:`_bursts`). Any other error ends the watch and propagates:
    an exception from ``on_sync``, or a :class:`~searchidx.errors.SearchidxError` such as the
    content folder being deleted.
    """
    stop = stop_event or threading.Event()
    announce = _Announcer(on_sync)
    report = _sync_patiently(store, content_dir, stop, give_up_after=wait)
    if report is None:
        return
    announce(report)
    root = Path(report.content_dir)
    # The first wake-up syncs even without events: files saved between the first sync and the
    # moment the watcher was listening produced none. A sync that failed to write is retried
    # the same way, at the next event or idle wake-up.
    pending = True
    failure = _FailureLog()
    for changed in _bursts(root, store, debounce_ms, stop):
        if not (changed or pending):
            continue  # idle
        try:
            report = _sync_patiently(store, root, stop, give_up_after=None)
        except OSError as error:  # disk full, permissions: the index keeps its last state
            failure.log(error)
            pending = True
            continue
        pending = False
        failure.clear()
        if report is None:
            return
        announce(report)


def _bursts(
    root: Path, store: engine.Location, debounce_ms: int, stop: threading.Event
) -> Iterator[bool]:
    """True after each burst of relevant changes below ``root``, False every idle CATCH_UP_MS.

    watchfiles stops for good at any event for a path that is not UTF-8 (it cannot give Python
    the path), and a folder so named sends events whenever it is listed, by a sync or by a
    new watcher. A watcher that stops is started again, and its first wake-up counts as a
    change; one that stops before it wakes cannot watch this folder, so it is synced at once
    and then every POLL_MS until the name is fixed (each sync reports the files it leaves out).
    """
    unheard = False  # a watcher stopped: what changed since then is unknown
    polling = False
    while not stop.is_set():
        try:
            for changes in watchfiles.watch(
                root,
                watch_filter=ArticleChanges(
                    root, store.location if isinstance(store, IndexStore) else None
                ),
                debounce=max(MAX_BATCH_MS, debounce_ms),
                step=max(debounce_ms, 1),
                stop_event=stop,
                rust_timeout=CATCH_UP_MS,
                yield_on_timeout=True,
            ):
                if polling:
                    logger.info("watching %s for changes again", root)
                yield bool(changes) or unheard
                unheard = polling = False
            return
        except WatchfilesRustInternalError as error:
            if not unheard:
                logger.info("watching again after watchfiles stopped: %s", error)
            else:  # stopped again before its first wake-up: sync now, then every POLL_MS
                if polling:
                    if stop.wait(POLL_MS / 1000):
                        return
                else:
                    logger.warning(
                        "cannot watch %s: watchfiles stops at any name that is not UTF-8 "
                        "(%s); syncing every %d s instead until it is renamed",
                        root,
                        error,
                        POLL_MS // 1000,
                    )
                    polling = True
                yield True
            unheard = True


class ArticleChanges:
    """A ``watchfiles`` filter: the events that can change what the index should hold.

    Article files count; so do folders (a folder moved or deleted carries its articles with it,
    with no event for each file) and paths already gone, which may have been folders. Hidden
    files and folders (editors' swap and temporary files) are skipped, as the indexer skips
    them, and so is the index itself when it lives inside the content folder: otherwise every
    sync would trigger the next.
    """

    def __init__(self, root: Path, index_location: Path | None) -> None:
        self.root = root.resolve()
        #: A local index's folder (None: the index is on a cluster).
        self.index_location = index_location.resolve() if index_location else None

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        target = Path(path)
        try:
            relative = target.relative_to(self.root)
        except ValueError:
            return False
        if self.index_location and target.is_relative_to(self.index_location):
            return False
        if any(part.startswith(".") for part in relative.parts):
            return False
        if target.suffix.lower() in ARTICLE_SUFFIXES:
            return True
        return target.is_dir() or not target.exists()


def summarize(report: SyncReport) -> str:
    """One line for the log: what a sync changed, and how big the index is now."""
    verb = "built" if report.rebuilt else "synced"
    return (
        f"{verb} {report.content_dir}: {report.added:,} added, {report.updated:,} updated, "
        f"{report.removed:,} removed, {len(report.skipped):,} skipped; "
        f"{report.documents:,} documents ({report.seconds:.2f}s)"
    )


class _Announcer:
    """Logs each sync and hands it to ``on_sync``; lists skipped files only when they change.

    A file that stays broken is read again by every sync; naming it every time would bury the
    one line that matters.
    """

    def __init__(self, on_sync: OnSync | None) -> None:
        self.on_sync = on_sync
        self.skipped: set[ArticleProblem] = set()

    def __call__(self, report: SyncReport) -> None:
        logger.info(summarize(report))
        for note in report.notes:
            logger.info("note: %s", note)
        skipped = set(report.skipped)
        for problem in sorted(skipped - self.skipped, key=str):
            logger.warning("skipped %s", problem)
        self.skipped = skipped
        if self.on_sync is not None:
            self.on_sync(report)


class _FailureLog:
    """Logs a failed sync once, not at every retry, until a sync succeeds again."""

    def __init__(self) -> None:
        self.last = ""

    def log(self, error: OSError) -> None:
        if str(error) != self.last:
            logger.error("sync failed, will retry: %s", error)
            self.last = str(error)

    def clear(self) -> None:
        self.last = ""


def _sync_patiently(
    store: engine.Location,
    content_dir: Path | str | None,
    stop: threading.Event,
    give_up_after: float | None,
) -> SyncReport | None:
    """One sync, retried while another process holds the writer lock; None once stopped."""
    started = time.monotonic()
    waiting_logged = False
    while not stop.is_set():
        attempt = LOCK_POLL_SECONDS
        if give_up_after is not None:
            attempt = max(0.0, min(attempt, give_up_after - (time.monotonic() - started)))
        try:
            return engine.sync(store, content_dir, WriteOptions(wait=attempt))
        except IndexBusyError as error:
            if give_up_after is not None and time.monotonic() - started >= give_up_after:
                raise
            if not waiting_logged:
                logger.info("waiting: %s", error)
                waiting_logged = True
    return None
