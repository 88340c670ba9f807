"""A multi-process build or sync stopped by a signal leaves nothing running and no lock held.

Each test runs the real ``searchidx`` command in a session of its own (tests/paused_run.py,
with the worker thresholds lowered so a few hundred files use worker processes), lets it
pause at a point of its work, signals it there, and checks that 5 s later no process of its
process group is left, and that the next ``searchidx index`` takes the lock and gives an index
of exactly the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from searchidx import indexer
from searchidx.content import scan_content
from searchidx.errors import IndexBusyError
from searchidx.sample import write_sample
from searchidx.store import IndexStore
from tests import crashkit
from tests.conftest import write_article
from tests.paused_run import PAUSE_AT, PAUSE_READY, POINTS

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

REPO = Path(__file__).resolve().parents[1]
SEARCHIDX = [sys.executable, "-m", "searchidx.cli"]
#: How long after the signal every process of the run must be gone.
GONE_WITHIN = 5.0


def processes_in_group(pgid: int) -> list[int]:
    """The live processes (zombies are dead) of process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # it ended meanwhile
            continue
        fields = stat.rpartition(")")[2].split()  # after "pid (command name)"
        if fields and int(fields[2]) == pgid and fields[0] not in "ZX":
            found.append(int(entry.name))
    return found


def holds_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open."""
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in descriptors:
        with contextlib.suppress(OSError):  # closed meanwhile
            if os.readlink(fd) == str(path.resolve()):
                return True
    return False


def still_found(find: Callable[[], list[int]], seconds: float) -> list[int]:
    """What ``find()`` finds once it finds nothing or ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while (found := find()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def alive_after(pgid: int, seconds: float) -> list[int]:
    """The processes of group ``pgid`` still alive once ``seconds`` have passed (or none)."""
    return still_found(lambda: processes_in_group(pgid), seconds)


def keeping_open(pids: list[int], path: Path, seconds: float = GONE_WITHIN) -> list[int]:
    """Those of ``pids`` that have ``path`` open still ``seconds`` on (or none). A worker
    closes its copy of the writer lock first thing after the fork, but it may not have run
    yet: under load, a worker forked beside the one that paused may wait for a core until
    then, its copy open."""
    return still_found(lambda: [pid for pid in pids if holds_open(pid, path)], seconds)


def change_files(content: Path) -> None:
    """Edit, add and delete enough files that a sync or rebuild of them uses workers."""
    files = sorted(scan_content(content))
    for path in files[:60]:
        text = (content / path).read_text()
        (content / path).write_text(text.replace('title: "', 'title: "Edited ', 1))
    for number in range(10):
        write_article(
            content,
            f"new/{number}.md",
            f'title: "Added article {number}"\npublishedDateTime: 2024-05-1{number}',
        )
    for path in files[-5:]:
        (content / path).unlink()


class Run:
    """``searchidx ARGS`` in a session of its own, paused at ``point``; killed at the end."""

    def __init__(self, tmp_path: Path, args: list[str], point: str, spawn: bool = False) -> None:
        self.ready = tmp_path / "paused"
        self.output = tmp_path / "paused-run.out"
        env = {**os.environ, "PYTHONPATH": str(REPO), PAUSE_AT: point, PAUSE_READY: str(self.ready)}
        with open(self.output, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.paused_run", *(["--spawn"] if spawn else []), *args],
                cwd=REPO,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: pgid = its pid
            )
        self.pid = self.process.pid
        self.point = point

    def paused(self) -> int:
        """The pid of the process that paused, once one has."""
        deadline = time.monotonic() + 120
        while not self.ready.exists():
            assert self.process.poll() is None, f"it ended unpaused: {self.output.read_text()}"
            assert time.monotonic() < deadline, "it did not reach its pause point in 120 s"
            time.sleep(0.05)
        return int(self.ready.read_text())

    def stop(self) -> None:
        """Kill whatever of the run is left (after a failed test)."""
        if processes_in_group(self.pid):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def runs(tmp_path: Path):
    started: list[Run] = []

    def start(args: list[str], point: str, spawn: bool = False) -> Run:
        run = Run(tmp_path, args, point, spawn)
        started.append(run)
        return run

    yield start
    for run in started:
        run.stop()


def prepared(op: str, content: Path, store: IndexStore) -> list[str]:
    """An index of ``content`` with two small segments (so a sync merges them), then changes
    for ``op`` to do with workers; the command's arguments."""
    indexer.sync(store, content)
    write_article(
        content, "one-more.md", 'title: "One more article"\npublishedDateTime: 2024-01-01'
    )
    indexer.sync(store)
    change_files(content)
    return ["index" if op == "sync" else "rebuild", "--index", str(store.location)]


def stop_and_check(run: Run, how: signal.Signals, group: bool, store: IndexStore) -> None:
    """Signal the paused run; check nothing of it is left, and no worker held the lock."""
    paused = run.paused()
    members = processes_in_group(run.pid)
    if POINTS[run.point][0] == "worker":
        assert paused != run.pid and paused in members, "no worker was running"
    lock = store.location / ".writer.lock"
    assert holds_open(run.pid, lock)
    assert not keeping_open([pid for pid in members if pid != run.pid], lock)
    if group:
        os.killpg(run.pid, how)  # Ctrl-C in a terminal signals the whole foreground group
    else:
        os.kill(run.pid, how)
    signalled = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):
        run.process.wait(timeout=GONE_WITHIN)
    left = alive_after(run.pid, GONE_WITHIN - (time.monotonic() - signalled))
    assert not left, f"still running {GONE_WITHIN} s after {how.name}: {left}"


def recovered(store: IndexStore, content: Path) -> str:
    """Run the next ``searchidx index``; check the index is exactly the folder. Its stderr."""
    done = subprocess.run(
        [*SEARCHIDX, "index", str(content), "--index", str(store.location)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert crashkit.snapshot(store) == crashkit.folder_snapshot(content)
    assert len(crashkit.generation_dirs(store)) == 1
    return done.stderr


KILL_POINTS = [
    ("rebuild", "reading"),
    pytest.param("rebuild", "writing segments", marks=pytest.mark.slow),
    pytest.param("rebuild", "committing", marks=pytest.mark.slow),
    pytest.param("rebuild", "publishing", marks=pytest.mark.slow),
    pytest.param("sync", "reading", marks=pytest.mark.slow),
    ("sync", "writing segments"),
    pytest.param("sync", "merging", marks=pytest.mark.slow),
    pytest.param("sync", "committing", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("op", "point"), KILL_POINTS)
def test_killed_run_leaves_no_process_and_no_lock(op, point, content, store, runs):
    run = runs(prepared(op, content, store), point)
    stop_and_check(run, signal.SIGKILL, False, store)
    note = f"note: cleared a stale lock left by pid {run.pid}, which stopped while writing"
    assert note in recovered(store, content)


@pytest.mark.slow
def test_killed_run_with_spawned_workers_leaves_no_process(content, store, runs):
    run = runs(prepared("rebuild", content, store), "reading", spawn=True)
    assert "spawn_main" in Path(f"/proc/{run.paused()}/cmdline").read_text()
    stop_and_check(run, signal.SIGKILL, False, store)
    assert "cleared a stale lock" in recovered(store, content)


def test_sync_killed_while_its_workers_read_leaves_the_index_as_it_was(content, store, runs):
    # The workers started while the sync listed the folder (see test_indexer.py).
    args = prepared("sync", content, store)
    before = crashkit.snapshot(store)
    run = runs(args, "reading")
    stop_and_check(run, signal.SIGKILL, False, store)
    assert crashkit.snapshot(store) == before
    assert "cleared a stale lock" in recovered(store, content)


SIGNALS = [
    ("rebuild", signal.SIGINT, True),  # Ctrl-C
    pytest.param("sync", signal.SIGINT, True, marks=pytest.mark.slow),
    pytest.param("rebuild", signal.SIGINT, False, marks=pytest.mark.slow),
    pytest.param("rebuild", signal.SIGTERM, False, marks=pytest.mark.slow),
    pytest.param("sync", signal.SIGTERM, False, marks=pytest.mark.slow),
    pytest.param("sync", signal.SIGTERM, True, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("op", "how", "group"), SIGNALS)
def test_interrupted_run_stops_its_workers(op, how, group, content, store, runs):
    run = runs(prepared(op, content, store), "reading")
    stop_and_check(run, how, group, store)
    if how == signal.SIGINT:  # stopped cleanly: no stale lock, nothing half-built left
        assert run.process.returncode == 1 and "Aborted!" in run.output.read_text()
        assert len(crashkit.generation_dirs(store)) == 1
        assert "stale lock" not in recovered(store, content)
    else:
        assert "cleared a stale lock" in recovered(store, content)


@pytest.mark.slow
def test_interrupted_first_build_of_many_files_stops_at_once(tmp_path: Path, store, runs):
    # More chunks of paths than the job queue's pipe holds: those no worker took must not
    # keep the command waiting at exit to send them.
    content = tmp_path / "many"
    write_sample(content, 3000)
    run = runs(["index", str(content), "--index", str(store.location)], "reading")
    stop_and_check(run, signal.SIGINT, True, store)
    assert "stale lock" not in recovered(store, content)


def test_sync_says_how_to_free_a_lock_kept_after_its_holder_died(content, store):
    # What a worker of an older searchidx did: kept the lock after its parent was killed.
    indexer.sync(store, content)
    with open(store.location / ".writer.lock", "w") as kept:
        fcntl.flock(kept, fcntl.LOCK_EX)
        kept.write("999999999\n")  # a pid that cannot exist
        kept.flush()
        with pytest.raises(IndexBusyError, match=r"pid 999999999, which took it, is gone") as busy:
            indexer.sync(store)
    assert f"'fuser -v {store.location / '.writer.lock'}' names it" in str(busy.value)


def child_keeping_open(path: Path, seconds: float) -> int:
    """The pid of a child forked to have ``path`` open for ``seconds``, once it has."""
    opened, told = os.pipe()
    child = os.fork()
    if child == 0:
        with open(path, "rb"):
            os.write(told, b"1")
            time.sleep(seconds)
        os._exit(0)
    os.close(told)
    assert os.read(opened, 1) == b"1"
    os.close(opened)
    return child


def test_keeping_open_waits_for_a_forked_child_to_close_its_copy(store: IndexStore):
    lock = store.location / ".writer.lock"
    with store.writing():
        child = child_keeping_open(lock, 1.0)  # as a worker that has not run yet
        try:
            assert keeping_open([child], lock) == []
        finally:
            os.waitpid(child, 0)


def test_keeping_open_finds_a_child_that_keeps_its_copy(store: IndexStore):
    lock = store.location / ".writer.lock"
    with store.writing():
        child = child_keeping_open(lock, 60)  # as a worker of an older searchidx
        try:
            assert keeping_open([child], lock, seconds=0.5) == [child]
        finally:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)


def test_store_lock_is_closed_in_a_forked_child(store: IndexStore):
    lock = store.location / ".writer.lock"
    with store.writing():
        child = os.fork()
        if child == 0:  # the child reports whether it still has the lock file open
            os._exit(1 if holds_open(os.getpid(), lock) else 0)
        _, status = os.waitpid(child, 0)
        assert holds_open(os.getpid(), lock)
    assert os.waitstatus_to_exitcode(status) == 0
