"""Reading article files, and the worker processes that read and index many of them at once.

A build (or a sync of many changed files) hands chunks of paths to worker processes; each
parses its files and writes its own segments into the index folder, and the caller publishes
every worker's segments in one commit (:mod:`searchidx.indexer`). Workers start by ``fork``,
or ``spawn`` when other threads run, and end with their parent however it ends.
"""

from __future__ import annotations

import gc
import multiprocessing
import queue
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.context import ForkContext, SpawnContext
from pathlib import Path
from typing import Any, cast

from whoosh import index as whoosh_index
from whoosh.filedb.filestore import FileStorage
from whoosh.index import FileIndex

from searchidx import lifeline
from searchidx.articles import Article
from searchidx.content import FileState, check_name, content_hash
from searchidx.errors import ArticleError, ArticleProblem, IndexWriteError
from searchidx.parsing import decode_article, parse_article, read_bounded
from searchidx.records import largest_dictionaries
from searchidx.schema import to_document
from searchidx.whoosh_internals import SegmentBuilder

#: Called as ``progress(done, total)`` while files are indexed.
Progress = Callable[[int, int], None]

#: Files a build worker takes from the queue at a time: few enough that the workers get
#: files early in a sync's listing and end at about the same time (a chunk is 0.1 s of work).
_CHUNK_FILES = 50
#: Chunks on the queue for each worker at most while this process indexes too: enough that
#: a worker never waits while the listing finds more; the rest wait here, to be shared out
#: when the listing ends (:meth:`BuildWorkers.finish`).
_AHEAD = 2
#: What writing its segment adds to reading and indexing a document, as a share of both
#: (0.34 ms of 1.16 for a sync's 850 documents): a worker that indexed more while this
#: process listed takes that much longer to write its segment at the end.
_WRITING_SHARE = 0.3

#: Paths to index, and the content hash each was indexed with, if it was.
Chunk = tuple[list[str], dict[str, str]]


@dataclass(frozen=True, slots=True)
class Loaded:
    """A file read once: its state (from the open file) and its parsed article or problem."""

    path: str
    state: FileState
    document: dict[str, Any] | None
    problem: ArticleProblem | None


@dataclass
class Built:
    """What build workers did: segments written (not yet committed), files indexed, files
    unchanged since indexed (by path) and files that could not be used."""

    segments: list[Any] = field(default_factory=list)
    added: int = 0
    unchanged: list[str] = field(default_factory=list)
    problems: list[ArticleProblem] = field(default_factory=list)

    def take(self, loaded: Loaded, previous: dict[str, str], builder: SegmentBuilder) -> None:
        """One file read: unchanged since indexed (``previous`` has its content hash),
        unusable, or indexed into ``builder``."""
        if previous.get(loaded.path) == loaded.state.digest:
            self.unchanged.append(loaded.path)
        elif loaded.problem is not None:
            self.problems.append(loaded.problem)
        else:
            assert loaded.document is not None  # a file without a problem has a document
            builder.add(loaded.document)
            self.added += 1


class BuildWorkers:
    """Worker processes that read and index the files handed to them, each into segments of
    its own (of ``limit_mb`` of buffer at most) in ``index``'s folder, for the caller to
    publish in one commit.

    Files can be handed over before any worker runs and while they run: a sync hands each
    changed file over as its listing finds it, and has the workers start once there are
    enough (:meth:`grow`), so they index while it lists. With ``index_here``, this process
    indexes beside them once it has handed every file over (:meth:`finish`). Leaving the
    ``with`` block stops the workers that still run (an error, Ctrl-C).
    """

    def __init__(
        self, index: FileIndex, root: Path, limit_mb: int, index_here: bool = False
    ) -> None:
        self.handed = 0
        self._index_here = index_here
        self._context = _context()  # decided before any queue starts its feeding thread
        self._index = index
        self._location = cast(FileStorage, index.storage).folder  # an index on disk
        self._root = str(root)
        self._limit_mb = limit_mb
        self._dictionaries = largest_dictionaries(index)  # for every new segment to borrow
        self._jobs: Any = None
        self._results: Any = None
        self._workers: list[Any] = []
        #: Chunks handed over and not on the queue yet, then the chunk being filled.
        self._waiting: deque[Chunk] = deque()
        self._chunk: Chunk = ([], {})
        #: The files of each chunk put on the queue, and how many of them the workers took
        #: (a count they share).
        self._queued: list[int] = []
        self._taken: Any = None

    def __enter__(self) -> BuildWorkers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for worker in self._workers:
            if worker.is_alive():
                worker.terminate()
                worker.join()
        if self._jobs is not None:
            # Chunks no worker took (Ctrl-C) may fill the pipe: do not wait at exit to send them.
            self._jobs.cancel_join_thread()
            self._jobs.close()
            self._results.close()

    @property
    def started(self) -> bool:
        return bool(self._workers)

    def hand(self, path: str, previous: str | None) -> None:
        """Have a worker index ``path``, unless its content hash is ``previous``."""
        paths, hashes = self._chunk
        paths.append(path)
        if previous is not None:
            hashes[path] = previous
        self.handed += 1
        if len(paths) >= _CHUNK_FILES:
            self._send()
        elif self._waiting:
            self._feed()

    def grow(self, most: int, files_per_process: int) -> None:
        """Start workers once the files handed over pay for them: one for each
        ``files_per_process`` files, at most ``most``; without ``index_here``, none for fewer
        than two (one worker alone does what this process would)."""
        wanted = min(most, self.handed // files_per_process)
        if wanted >= (1 if self._index_here else 2) and wanted > len(self._workers):
            self.start(wanted)

    def start(self, processes: int) -> None:
        """Have ``processes`` workers running, starting those missing."""
        if self._jobs is None:
            self._jobs, self._results = self._context.Queue(), self._context.Queue()
            self._taken = self._context.Value("q", 0)
        # Forked workers share the parent's pages until either writes one: frozen, the
        # objects the parent holds are left out of the workers' garbage collections, which
        # would touch (and so copy) every page of them.
        gc.freeze()
        try:
            while len(self._workers) < processes:
                worker = self._context.Process(
                    target=_build_worker,
                    args=(
                        self._location,
                        self._root,
                        (self._jobs, self._taken, self._results),
                        self._limit_mb,
                        self._dictionaries,
                    ),
                    daemon=True,
                )
                worker.start()
                self._workers.append(worker)
        finally:
            gc.unfreeze()
        self._feed()

    def _send(self) -> None:
        if self._chunk[0]:
            self._waiting.append(self._chunk)
            self._chunk = ([], {})
            self._feed()

    def _feed(self) -> None:
        """Put waiting chunks on the queue once workers run: every one, or with
        ``index_here`` as many as keep each worker :data:`_AHEAD` chunks ahead."""
        if self._jobs is None:
            return
        most = _AHEAD * len(self._workers) if self._index_here else None
        while self._waiting and (most is None or len(self._queued) - self._taken.value < most):
            self._put(self._waiting.popleft())

    def _put(self, chunk: Chunk) -> None:
        self._jobs.put(chunk)
        self._queued.append(len(chunk[0]))

    def finish(self, progress: Progress | None) -> Built:
        """Wait for the workers to index every file handed over; what they did. With
        ``index_here``, this process indexes its share of them meanwhile (:meth:`_share`).
        """
        self._send()
        mine = self._share() if self._index_here else []
        while self._waiting:
            self._put(self._waiting.popleft())
        for _ in self._workers:
            self._jobs.put(None)  # a stop each, after every chunk
        built = Built()
        done = self._index_chunks_here(mine, built, progress) if mine else 0
        finished = 0
        while finished < len(self._workers):
            try:
                message = self._results.get(timeout=1.0)
            except queue.Empty:
                if any(worker.exitcode not in (None, 0) for worker in self._workers):
                    raise IndexWriteError(
                        "an indexing worker process died; nothing was "
                        "published, run the command again"
                    ) from None
                continue
            if message[0] == "error":
                raise IndexWriteError(f"an indexing worker failed: {message[1]}")
            if message[0] == "progress":
                done += message[1]
                if progress is not None:
                    progress(done, self.handed)
            else:
                part: Built = message[1]
                built.segments += part.segments
                built.added += part.added
                built.unchanged += part.unchanged
                built.problems += part.problems
                finished += 1
        for worker in self._workers:
            worker.join()
        # Every chunk was taken: the thread feeding them ends now, so that the next sync of
        # this process, finding no other thread, starts its workers by fork again.
        self._jobs.close()
        self._jobs.join_thread()
        built.problems.sort(key=lambda problem: problem.path)
        return built

    def _share(self) -> list[Chunk]:
        """The waiting chunks this process indexes, so that it ends with the workers.

        A sync lists the folder while one worker indexes, then indexes beside it: on two
        cores, two processes busy where a second worker would share one core with the
        listing, and pay again for starting, for its own segment and its own term index.
        Each worker is to write a segment of what it took while this process listed too, so
        this process takes more than an equal share of the files left:
        ``(left + w * taken) / (workers + 1)``, ``w`` being :data:`_WRITING_SHARE`.
        """
        taken = self._taken.value if self._workers else 0
        left = sum(self._queued[taken:]) + sum(len(paths) for paths, _ in self._waiting)
        share = (left + _WRITING_SHARE * sum(self._queued[:taken])) / (len(self._workers) + 1)
        mine: list[Chunk] = []
        while self._waiting and len(self._waiting[-1][0]) / 2 <= share:  # to the nearest chunk
            share -= len(self._waiting[-1][0])
            mine.append(self._waiting.pop())
        return mine

    def _index_chunks_here(
        self, chunks: list[Chunk], built: Built, progress: Progress | None
    ) -> int:
        """Index ``chunks`` in this process into ``built``; how many files they held."""
        builder = SegmentBuilder(self._index, self._limit_mb, self._dictionaries)
        done = 0

        def indexed(files: int) -> None:
            nonlocal done
            done += files
            if progress is not None:
                progress(done, self.handed)

        try:
            _index_chunks(chunks, Path(self._root), built, builder, indexed)
        except BaseException:
            builder.cancel()
            raise
        return done


def _context() -> ForkContext | SpawnContext:
    """``fork`` (nothing to re-import; the workers start at once) unless other threads run,
    which a forked child could find holding a lock forever; then ``spawn``, which re-imports
    the main module: a threaded program (the web app) must guard it, as ``searchidx`` does."""
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _build_worker(
    location: str,
    root: str,
    queues: tuple[Any, Any, Any],
    limit_mb: int,
    dictionaries: dict[str, bytes],
) -> None:
    """A worker process of :class:`BuildWorkers`: takes chunks of paths until told to stop
    (counting them), indexes them into segments of its own, and reports them (or its
    error)."""
    _end_with_parent()
    jobs, taken, results = queues

    def chunks() -> Iterator[Chunk]:
        while (chunk := jobs.get()) is not None:
            with taken.get_lock():
                taken.value += 1
            yield chunk

    builder = SegmentBuilder(whoosh_index.open_dir(location), limit_mb, dictionaries)
    built = Built()
    try:
        _index_chunks(
            chunks(), Path(root), built, builder, lambda files: results.put(("progress", files))
        )
        results.put(("done", built))
    except BaseException as error:
        builder.cancel()
        results.put(("error", f"{type(error).__name__}: {error}"))


def _index_chunks(
    chunks: Iterable[Chunk],
    root: Path,
    built: Built,
    builder: SegmentBuilder,
    indexed: Callable[[int], None],
) -> None:
    """Index the ``chunks`` of paths into ``builder`` (each chunk's files ``indexed``), then
    write the last segment; what was done into ``built``."""
    for paths, previous in chunks:
        for path in paths:
            built.take(load(root, path), previous, builder)
        indexed(len(paths))
    built.segments = builder.finish()


def _end_with_parent() -> None:
    """Make this worker end when its parent does, however that ends (SIGKILL included): else
    it waits for work forever, reparented to init. The pipe multiprocessing keeps between them
    closes when the parent ends (:mod:`searchidx.lifeline`). Ctrl-C reaches the whole process
    group: the parent alone handles it, and stops its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        lifeline.end_with_parent(parent.sentinel, grace=0.0)


def load_all(root: Path, paths: list[str], progress: Progress | None) -> Iterator[Loaded]:
    for done, path in enumerate(paths, 1):
        yield load(root, path)
        if progress is not None:
            progress(done, len(paths))


def load(root: Path, path: str) -> Loaded:
    state, article, problem = read_file(root, path)
    document = None if article is None else to_document(article, state)
    return Loaded(path, state, document, problem)


def read_file(root: Path, path: str) -> tuple[FileState, Article | None, ArticleProblem | None]:
    """Read a file once: hash, decode and parse the same bytes, and stat the open file. The
    article, or the problem that keeps it out (every engine decides changes the same way)."""
    try:
        check_name(path)
        data, info = read_bounded(root, path)
    except ArticleError as error:
        return FileState(0, 0), None, error.problem
    state = FileState(info.st_size, info.st_mtime_ns, content_hash(data))
    try:
        return state, parse_article(decode_article(data, path), path), None
    except ArticleError as error:
        return state, None, error.problem
