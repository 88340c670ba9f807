"""Where an index lives on disk, and how a new one replaces the old without readers noticing.

Layout of an index location (``./index`` unless told otherwise)::

    index/
      CURRENT          name of the live generation, replaced atomically (os.replace)
      .writer.lock     held (flock) by the one process allowed to write
      gen-<stamp>/     a Whoosh index, plus sync.json (content folder, last sync, skipped files)
                       and synonyms.txt (the synonyms file named at index time, if any)

A sync writes into the live generation (Whoosh commits are atomic). A rebuild writes a whole new
generation beside it and then switches ``CURRENT``: a reader holding the old one keeps reading it,
and the next reader opens the new one. Nobody ever sees a half-built index.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from whoosh import index as whoosh_index

from searchidx.articles import Article
from searchidx.defaults import INDEX_ENV
from searchidx.errors import ArticleProblem, IndexBusyError, IndexMissingError
from searchidx.records import live_bodies, live_records
from searchidx.schema import SCHEMA_VERSION, build_schema, from_record

DEFAULT_LOCATION = "index"
_CURRENT = "CURRENT"
_LOCK = ".writer.lock"
#: How long past its wait a writer keeps trying while the lock file names no holder.
_LOCK_SETTLE = 1.0
_META = "sync.json"
_SYNONYMS = "synonyms.txt"


def default_location() -> Path:
    return Path(os.environ.get(INDEX_ENV) or DEFAULT_LOCATION)


@dataclass
class IndexMeta:
    """What an index remembers between runs, beside the Whoosh files (``sync.json``)."""

    content_dir: str
    schema_version: int = SCHEMA_VERSION
    last_sync: str = ""
    documents: int = 0
    skipped: list[ArticleProblem] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> IndexMeta:
        data: dict[str, Any] = json.loads(text)
        data["skipped"] = [ArticleProblem(**item) for item in data.get("skipped", [])]
        return cls(**data)


class IndexStore:
    """One index location: its live generation, its writer lock and its metadata."""

    def __init__(self, location: Path | str | None = None) -> None:
        self.location = Path(location) if location is not None else default_location()

    def __repr__(self) -> str:
        return f"IndexStore({str(self.location)!r})"

    # Reading ---------------------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.location / _CURRENT).is_file()

    def generation(self) -> str:
        """The name of the live generation; changes only when a rebuild is published."""
        try:
            return (self.location / _CURRENT).read_text().strip()
        except FileNotFoundError:
            raise IndexMissingError(
                f"no index at {self.location}/: build one with 'searchidx index CONTENT_DIR'"
            ) from None

    def live_dir(self) -> Path:
        return self.generation_dir()

    def generation_dir(self, generation: str | None = None) -> Path:
        """The folder of ``generation`` (default: the live one): a reader that read the name
        keeps to it, though a rebuild may have replaced it since (see :meth:`publish`)."""
        return self.location / (generation or self.generation())

    def open_index(self, generation: str | None = None) -> whoosh_index.FileIndex:
        """The Whoosh index of ``generation`` (default: the live one), to read or write."""
        return whoosh_index.open_dir(str(self.generation_dir(generation)))

    def articles(self) -> list[Article]:
        """Every live article as the index stores it: a whole collection read back (the
        benchmarks' ground truth, the tests' view of what was indexed)."""
        index = self.open_index()
        try:
            with index.reader() as reader:
                documents = zip(live_records(reader), live_bodies(reader), strict=True)
                return [from_record(record, body) for record, body in documents]
        finally:
            index.close()

    def read_meta(self, generation: str | None = None) -> IndexMeta:
        """What ``generation`` (default: the live one) remembers (``sync.json``)."""
        return IndexMeta.from_json((self.generation_dir(generation) / _META).read_text())

    def read_synonyms(self, generation: str | None = None) -> str:
        """The synonyms file kept with ``generation`` (default: the live one); "" for none."""
        try:
            return (self.generation_dir(generation) / _SYNONYMS).read_text()
        except FileNotFoundError:
            return ""

    # Writing ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, wait: float = 0.0) -> Iterator[str]:
        """Hold the writer lock for a sync or rebuild; yields a note about a stale lock.

        The lock is an ``flock``: the kernel drops it when its holder dies, however it dies,
        so a lock left by a killed indexer never blocks the next one; and no forked child
        (a build worker) keeps it alive after its parent (:func:`_closed_in_forked_children`).
        """
        self.location.mkdir(parents=True, exist_ok=True)
        lock_path = self.location / _LOCK
        with open(lock_path, "a+b", buffering=0) as lock, _closed_in_forked_children(lock):
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = _holder(lock)
                    # An empty lock file: its holder is just taking or leaving it, so the
                    # lock is free a moment later; only a named holder is worth refusing.
                    settling = holder is None and time.monotonic() < deadline + _LOCK_SETTLE
                    if time.monotonic() >= deadline and not settling:
                        raise IndexBusyError(self._busy(holder)) from None
                    time.sleep(0.02 if settling else 0.1)
            previous = _holder(lock)
            lock.seek(0)
            lock.truncate()
            lock.write(b"%d\n" % os.getpid())
            note = _stale_note(previous)
            if self.exists():
                self.remove_stale_generations()
            try:
                yield note
            finally:
                lock.seek(0)
                lock.truncate()
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _busy(self, holder: str | None) -> str:
        """Why the lock cannot be had: its holder is writing, or it is gone and a process it
        started keeps the lock (one that did not close its copy, as searchidx's workers do)."""
        if holder is not None and _gone(holder):
            return (
                f"the writer lock of {self.location}/ is held, but pid {holder}, which took it, "
                "is gone: a process it started keeps the lock open; end that process "
                f"('fuser -v {self.location / _LOCK}' names it), then run the command again"
            )
        return (
            f"another searchidx process (pid {holder or 'unknown'}) is writing to "
            f"{self.location}/; wait for it to finish, or pass --wait SECONDS"
        )

    def create_generation(self) -> tuple[Path, whoosh_index.FileIndex]:
        """A new, empty Whoosh index beside the live one; published by :meth:`publish`."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.location / f"gen-{stamp}-{os.getpid()}"
        path.mkdir(parents=True)
        return path, whoosh_index.create_in(str(path), build_schema())

    def write_meta(self, generation_dir: Path, meta: IndexMeta) -> None:
        _atomic_write(generation_dir / _META, meta.to_json())

    def write_synonyms(self, generation_dir: Path, text: str) -> None:
        """Keep ``text`` as the synonyms of ``generation_dir``; "" removes them."""
        if text:
            _atomic_write(generation_dir / _SYNONYMS, text)
        else:
            (generation_dir / _SYNONYMS).unlink(missing_ok=True)

    def publish(self, generation_dir: Path) -> None:
        """Make ``generation_dir`` the live index in one atomic step, then drop the others.

        Open readers of an old generation keep their open files (POSIX unlink semantics).
        """
        _atomic_write(self.location / _CURRENT, generation_dir.name + "\n")
        self.remove_stale_generations()

    def remove_stale_generations(self) -> None:
        """Delete every generation but the live one (old ones, and abandoned rebuilds), and the
        temporary files of a killed writer.

        Only called under the writer lock, so no other rebuild is in progress.
        """
        live = self.generation()
        for path in self.location.glob("gen-*"):
            if path.name != live and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
        # Temporary files of a writer killed between writing and renaming them.
        leftovers = [
            _temp_name(self.location / _CURRENT, "*"),
            _temp_name(self.location / live / _META, "*"),
            _temp_name(self.location / live / _SYNONYMS, "*"),
        ]
        for pattern in leftovers:
            for path in pattern.parent.glob(pattern.name):
                path.unlink(missing_ok=True)


def _atomic_write(path: Path, text: str) -> None:
    temp = _temp_name(path, str(os.getpid()))
    try:
        with open(temp, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)  # a full disk must not leave half-written files behind
        raise


def _temp_name(path: Path, writer: str) -> Path:
    return path.with_name(f".{path.name}.{writer}.tmp")


#: The writer lock files open in this process (see :func:`_closed_in_forked_children`).
_LOCK_FILES: set[BinaryIO] = set()


@contextlib.contextmanager
def _closed_in_forked_children(lock: BinaryIO) -> Iterator[None]:
    """Have a child forked while ``lock`` is open close its copy at once.

    An ``flock`` belongs to the open file, which a fork shares: a child keeping its copy
    keeps the lock held after its parent dies, and every later writer is refused. Closing the
    copy leaves the parent's lock as it is (unlocking would release it for both); the file is
    unbuffered, so closing it writes nothing.
    """
    _LOCK_FILES.add(lock)
    try:
        yield
    finally:
        _LOCK_FILES.discard(lock)


def _close_inherited_locks() -> None:
    for lock in _LOCK_FILES:
        lock.close()
    _LOCK_FILES.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


def _holder(lock: BinaryIO) -> str | None:
    """The pid the lock file names, if any."""
    lock.seek(0)
    return lock.read().decode("ascii", "replace").strip() or None


def _stale_note(pid: str | None) -> str:
    """If the lock file named a process that is gone, say so: it was killed mid-write."""
    if pid is None or not _gone(pid):
        return ""
    return f"cleared a stale lock left by pid {pid}, which stopped while writing"


def _gone(pid: str) -> bool:
    """Whether the lock file's ``pid`` names no running process."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, OverflowError):  # no such pid, or none could be
        return True
    except PermissionError:  # someone else's process
        pass
    return False
