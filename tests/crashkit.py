"""Fault injection for the crash-safety tests: stop a sync or rebuild at a chosen point.

Every file operation the indexer and Whoosh make on the way to a commit or a publish is an
*event* with a label (``create trm``, ``write toc-temp``, ``rename toc``, ``publish``...). A
:class:`Faults` plan counts the events of one run and, at the ``at``-th one, does its fault:

* ``record``: nothing; the labels are kept, so a test can choose points spread over the run;
* ``kill``: the process SIGKILLs itself before the operation (run it in a child process);
* ``raise``: the operation fails with ``OSError(ENOSPC)``, as on a full disk (in-process);
* ``pause``: the process signals a ready file and waits for a go file, holding the writer lock.

A run with the same index and content folder makes the same events in the same order, so a
point chosen from a recorded trace is the same point in a later run (:func:`run_child` checks).
"""

from __future__ import annotations

import errno
import functools
import multiprocessing
import os
import re
import shutil
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import StructFile
from whoosh.qparser import QueryParser

from searchidx import indexer
from searchidx.content import FileState, content_hash, scan_content
from searchidx.parsing import read_article
from searchidx.records import records_of
from searchidx.schema import from_record
from searchidx.store import IndexStore
from searchidx.write_options import WriteOptions

#: Operations that can fail for lack of space (the ``raise`` mode fails only these).
WRITE_OPS = frozenset({"create", "write", "close", "rename", "replace", "fsync"})

#: Steps whose order decides what survives a crash: each one is always a kill point.
CRITICAL_OPS = frozenset(
    {"rename", "renamed", "replace", "replaced", "fsync", "publish", "published"}
    | {"write_meta", "wrote_meta", "rmtree", "rmtreed"}
)


@dataclass
class Faults:
    """Count the file events of one run and act at the ``at``-th (1-based) event of ``ops``."""

    mode: str = "record"
    at: int = 0
    ops: frozenset[str] | None = None
    marker: Path | None = None
    ready: Path | None = None
    go: Path | None = None
    trace: list[str] = field(default_factory=list)
    hit: str = ""

    def event(self, label: str) -> None:
        """Called before (and for some, after) each operation; may kill, fail or pause."""
        if self.ops is not None and not counts_as(label, self.ops):
            return
        self.trace.append(label)
        if len(self.trace) != self.at or self.mode == "record":
            return
        self.hit = label
        if self.marker is not None:
            self.marker.write_text(label)
        if self.mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.mode == "raise":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        elif self.mode == "pause":
            assert self.ready is not None and self.go is not None
            self.ready.touch()
            deadline = time.monotonic() + 60
            while not self.go.exists() and time.monotonic() < deadline:
                time.sleep(0.01)

    def progress(self, done: int, total: int) -> None:
        self.event(f"progress {done}/{total}")

    @contextmanager
    def installed(self) -> Iterator[Faults]:
        """Patch the file operations of Whoosh and of the index store for the duration."""
        patches = [
            (FileStorage, "create_file", _around(self, "create", None, _name_arg)),
            (FileStorage, "rename_file", _around(self, "rename", "renamed", _name_arg)),
            (FileStorage, "delete_file", _around(self, "delete", None, _name_arg)),
            (StructFile, "write", _around(self, "write", None, _self_name)),
            (StructFile, "close", _around(self, "close", None, _closing)),
            (IndexStore, "write_meta", _around(self, "write_meta", "wrote_meta", None)),
            (IndexStore, "publish", _around(self, "publish", "published", None)),
            (os, "replace", _around(self, "replace", "replaced", _path_arg)),
            (os, "fsync", _around(self, "fsync", None, None)),
            (shutil, "rmtree", _around(self, "rmtree", "rmtreed", None)),
            (os, "unlink", _around(self, "unlink", None, _path_arg)),
        ]
        originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
        for (owner, name, wrap), (_, _, original) in zip(patches, originals, strict=True):
            setattr(owner, name, wrap(original))
        try:
            yield self
        finally:
            for owner, name, original in originals:
                setattr(owner, name, original)


def step(label: str) -> str:
    """The kind of step an event is, with the writes inside segment files taken as one kind.

    Whoosh copies and closes segment files in the order the folder lists them, so which of
    these comes n-th can differ between runs; the n-th event is always the same step.
    """
    op = label.split(" ", 1)[0]
    return "segment file i/o" if op in {"create", "write", "close", "delete", "unlink"} else op


def counts_as(label: str, ops: frozenset[str]) -> bool:
    """Whether an event is one of ``ops`` (closing a file open for reading is no write)."""
    return label.split(" ", 1)[0] in ops and not label.endswith(" read-only")


def _around(
    faults: Faults, before: str, after: str | None, detail: Callable[..., str] | None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap an operation so it makes a ``before`` event (and an ``after`` one) with a detail."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def patched(*args: Any, **kwargs: Any) -> Any:
            suffix = f" {detail(*args)}" if detail is not None else ""
            faults.event(before + suffix)
            result = original(*args, **kwargs)
            if after is not None:
                faults.event(after + suffix)
            return result

        return patched

    return wrap


def file_kind(name: str | None) -> str:
    """A stable label for a Whoosh or store file (segment names are random)."""
    name = os.path.basename(str(name or ""))
    if re.fullmatch(r"_\w+_\d+\.toc", name):
        return "toc"
    if re.fullmatch(r"_\w+_\d+\.toc\..+", name):
        return "toc-temp"
    if name.startswith("."):
        return name.split(".")[1]  # .sync.json.<pid>.tmp, .CURRENT.<pid>.tmp
    return name.rsplit(".", 1)[-1] if "." in name else name


def _name_arg(_self: Any, name: str, *_: Any) -> str:
    return file_kind(name)


def _self_name(self: StructFile, *_: Any) -> str:
    return file_kind(self._name)


def _closing(self: StructFile, *_: Any) -> str:
    """Closing a file open for reading cannot run out of space: label it apart."""
    mode = getattr(self.file, "mode", "")
    written = isinstance(mode, str) and ("w" in mode or "+" in mode)
    return file_kind(self._name) if written else f"{file_kind(self._name)} read-only"


def _path_arg(source: Any, *_: Any) -> str:
    return file_kind(source)


def choose_points(trace: list[str], count: int) -> list[int]:
    """About ``count`` 1-based event numbers spread over ``trace``; the same trace, the same points.

    Every step whose order matters (renames, replaces, publish, metadata, removal of the old
    generation) is a point. The rest of the budget is shared between files processed
    (``progress``), file creations, closes and deletions (each kind at least once), and writes
    inside files, each spread evenly over the run.
    """
    groups: dict[str, list[int]] = {"critical": [], "progress": [], "files": [], "write": []}
    kinds: dict[str, list[int]] = {}  # the file operations by kind: create, close, ...
    for number, label in enumerate(trace, 1):
        op = label.split(" ", 1)[0]
        if op in CRITICAL_OPS:
            groups["critical"].append(number)
        elif op in ("progress", "write"):
            groups[op].append(number)
        else:
            groups["files"].append(number)
            kinds.setdefault(op, []).append(number)
    chosen = set(spread(groups["critical"], count))
    for share, name in ((3, "progress"), (2, "files"), (1, "write")):
        budget = (count - len(chosen)) // share if share > 1 else count - len(chosen)
        if name == "files":  # each kind once, wherever the even spread would miss one
            once = [numbers[len(numbers) // 2] for numbers in kinds.values()][:budget]
            chosen.update(once)
            budget -= len(once)
        chosen.update(spread(groups[name], budget))
    return sorted(chosen)


def spread(items: list[int], count: int) -> list[int]:
    if count <= 0:
        return []
    if count >= len(items):
        return list(items)
    step = (len(items) - 1) / max(count - 1, 1)
    return sorted({items[round(i * step)] for i in range(count)})


# Running a sync or rebuild in a child process -------------------------------------------------


@dataclass(frozen=True)
class ChildResult:
    exitcode: int | None
    hit: str
    trace: list[str]


def run_child(
    op: str, location: Path, content: Path | None, faults: Faults, timeout: float = 60
) -> ChildResult:
    """Run ``indexer.<op>`` in a forked child process with ``faults`` installed.

    The child reports the label it stopped at (``marker``) and, when it finishes, its trace.
    """
    scratch = location.parent / f".crashkit-{location.name}"
    scratch.mkdir(exist_ok=True)
    faults.marker = scratch / "hit"
    trace_file = scratch / "trace"
    for path in (faults.marker, trace_file):
        path.unlink(missing_ok=True)
    process = multiprocessing.get_context("fork").Process(
        target=_child_main, args=(op, location, content, faults, trace_file)
    )
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        raise AssertionError(f"{op} child did not finish in {timeout}s")
    hit = faults.marker.read_text() if faults.marker.exists() else ""
    trace = trace_file.read_text().splitlines() if trace_file.exists() else []
    return ChildResult(process.exitcode, hit, trace)


def _child_main(op: str, location: Path, content: Path | None, faults: Faults, out: Path) -> None:
    try:
        with faults.installed():
            run = indexer.sync if op == "sync" else indexer.rebuild
            run(IndexStore(location), content, WriteOptions(progress=faults.progress))
    except BaseException:
        traceback.print_exc()
        os._exit(2)
    out.write_text("\n".join(faults.trace))
    os._exit(0)


def call_in_child(function: Callable[[], object], timeout: float = 30) -> int:
    """Run ``function`` in a forked child process; its exit code (0 when it returned).

    For runs that could hang (a file swapped for a FIFO): a hang fails the test, not the suite.
    """
    process = multiprocessing.get_context("fork").Process(target=_call_and_exit, args=(function,))
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        raise AssertionError(f"{function} did not finish in {timeout}s")
    assert process.exitcode is not None
    return process.exitcode


def _call_and_exit(function: Callable[[], object]) -> None:
    try:
        function()
    except BaseException:
        traceback.print_exc()
        os._exit(2)
    os._exit(0)


# What an index holds ---------------------------------------------------------------------------


Snapshot = dict[str, tuple[str, str]]


def snapshot(store: IndexStore) -> Snapshot:
    """Path -> (content hash, title) of every live document; fails on a doubled path.

    Also proves the index answers queries: each document is found by a search for a word of
    its title.
    """
    index = store.open_index()
    try:
        with index.searcher() as searcher:
            result: Snapshot = {}
            docnums: dict[str, int] = {}
            records = records_of(searcher.reader())
            states = searcher.reader().column_reader("state")  # one reader: each reads offsets
            for docnum in searcher.reader().all_doc_ids():
                article = from_record(records[docnum])
                assert article.path not in result, f"{article.path} is indexed twice"
                result[article.path] = (FileState.unpacked(states[docnum]).digest, article.title)
                docnums[article.path] = docnum
            assert searcher.doc_count() == len(result)
            parser = QueryParser("title", index.schema)
            for path, (_, title) in list(result.items())[:: max(1, len(result) // 5)]:
                docnum = docnums[path]
                for word in sorted(re.findall(r"[A-Za-z]{4,}", title), key=len)[-1:]:
                    # The hits' document numbers: reading each hit's path would open the
                    # path column once a hit.
                    hits = searcher.search(parser.parse(word), limit=None)
                    assert docnum in set(hits.docs()), f"'{word}' misses {path}"
    finally:
        index.close()
    return result


def folder_snapshot(folder: Path) -> Snapshot:
    """What an index of ``folder`` must hold: path -> (hash, title) of each good file."""
    result: Snapshot = {}
    for path in scan_content(folder):
        try:
            article = read_article(folder, path)
        except Exception:
            continue
        digest = content_hash((folder / path).read_bytes())
        result[path] = (digest, article.title)
    return result


def copy_index(source: IndexStore, target: Path) -> IndexStore:
    """A private copy of an index location (its content folder stays the same)."""
    shutil.copytree(source.location, target, symlinks=True)
    return IndexStore(target)


def generation_dirs(store: IndexStore) -> list[str]:
    return sorted(path.name for path in store.location.glob("gen-*"))
