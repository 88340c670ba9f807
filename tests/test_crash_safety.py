"""Crash safety: a sync or rebuild killed (SIGKILL) or failing (disk full) at any point.

Each scenario starts from an index of a collection, then changes the collection (adds, edits,
deletes, one new broken file). A reference run records every file operation of the sync or
rebuild (see :mod:`tests.crashkit`); points are chosen from that trace, and for each point a
fresh copy of the index is synced or rebuilt in a child process that SIGKILLs itself there.

After each kill the index must open, answer queries and hold exactly the state before or the
state after (path -> content hash and title), never a mix; the next sync must finish the work,
clear the stale lock with a note, leave one generation, and match the folder exactly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from searchidx import indexer
from searchidx.cli import cli
from searchidx.errors import IndexWriteError, SearchidxError
from searchidx.sample import write_sample
from searchidx.store import IndexStore
from searchidx.write_options import WriteOptions
from tests import crashkit
from tests.conftest import write_article

#: Kill points in the default run (per scenario) and in the slow run.
POINTS = {"sync": 24, "rebuild": 24, "first-build": 8}
SLOW_POINTS = {"sync": 120, "rebuild": 160, "first-build": 60}

#: Failing writes (disk full) in the default run (per operation) and in the slow run.
FAILURES = 12
SLOW_FAILURES = 80

#: The installed command, next to the interpreter running the tests.
SEARCHIDX = str(Path(sys.executable).parent / "searchidx")


@dataclass(frozen=True)
class Scenario:
    """An index of a collection, the collection changed since, and what each state holds."""

    content: Path
    before: IndexStore
    before_state: crashkit.Snapshot
    after_state: crashkit.Snapshot
    traces: dict[str, list[str]]


def make_scenario(folder: Path, files: int) -> Scenario:
    """Index ``files`` sample articles, then add, edit and delete some of them."""
    content = folder / "content"
    write_sample(content, files, seed=11)
    before = IndexStore(folder / "before")
    indexer.sync(before, content)
    before_state = crashkit.snapshot(before)
    paths = sorted(before_state)
    for path in paths[1 : files // 8]:
        text = (content / path).read_text()
        (content / path).write_text(text.replace("title: ", "title: Edited ", 1))
    for path in paths[files // 8 : files // 5]:
        (content / path).unlink()
    for number in range(files // 10):
        write_article(
            content,
            f"added/story-{number}.md",
            f'title: "Fresh report number {number}"\npublishedDateTime: 2024-03-0{number % 9 + 1}',
            body="Freshly added body text.",
        )
    write_article(content, "added/broken.md", "title: [never closed")  # reported, not indexed
    after_state = crashkit.folder_snapshot(content)
    assert before_state != after_state and after_state

    traces = {}
    for op in ("sync", "rebuild"):
        copy = crashkit.copy_index(before, folder / f"trace-{op}")
        result = crashkit.run_child(op, copy.location, None, crashkit.Faults())
        assert result.exitcode == 0 and crashkit.snapshot(copy) == after_state
        traces[op] = result.trace
    fresh = folder / "trace-first"
    result = crashkit.run_child("sync", fresh, content, crashkit.Faults())
    assert result.exitcode == 0
    traces["first-build"] = result.trace
    return Scenario(content, before, before_state, after_state, traces)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return make_scenario(tmp_path_factory.mktemp("crash"), files=40)


@pytest.fixture(scope="module")
def big_scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return make_scenario(tmp_path_factory.mktemp("crash-big"), files=240)


def writes_of(scenario: Scenario, op: str) -> list[str]:
    """The events of ``op`` that write (those a full disk can fail)."""
    return [label for label in scenario.traces[op] if crashkit.counts_as(label, crashkit.WRITE_OPS)]


def kill_and_recover(scenario: Scenario, op: str, point: int, workdir: Path) -> str:
    """Kill ``op`` at event ``point``; check the index then and after the next sync."""
    location = workdir / f"{op}-{point}"
    if op == "first-build":
        store, run, content = IndexStore(location), "sync", scenario.content
    else:
        store, run, content = crashkit.copy_index(scenario.before, location), op, None
    faults = crashkit.Faults(mode="kill", at=point)

    result = crashkit.run_child(run, store.location, content, faults)

    expected_label = scenario.traces[op][point - 1]
    assert result.exitcode == -signal.SIGKILL, f"{op} was not killed at {expected_label}"
    # Runs make the same operations in the same order, but for the order of listing a folder
    # (which segment file Whoosh copies or closes first): the chosen point is the one hit.
    assert crashkit.step(result.hit) == crashkit.step(expected_label), result.hit
    # A first build killed before it published leaves no index (and shows none).
    if op != "first-build" or store.exists():
        state = crashkit.snapshot(store)  # opens, answers queries, no doubled path
        allowed = [scenario.after_state]
        if op != "first-build":
            allowed.append(scenario.before_state)
        assert state in allowed, f"{op} killed at {point} ({result.hit}) left a mixed index"
        assert store.read_meta().content_dir == str(scenario.content.resolve())

    # What 'searchidx index' does next (a first build killed early needs the folder again).
    report = indexer.sync(store, scenario.content if op == "first-build" else None)

    assert any("cleared a stale lock" in note for note in report.notes), report.notes
    assert crashkit.snapshot(store) == scenario.after_state
    assert crashkit.generation_dirs(store) == [store.generation()]
    assert [problem.path for problem in store.read_meta().skipped] == ["added/broken.md"]
    leftovers = [*store.location.glob(".*.tmp"), *store.live_dir().glob(".*.tmp")]
    assert not leftovers, f"{op} killed at {result.hit} left {leftovers}"
    shutil.rmtree(location)
    return result.hit


@pytest.mark.parametrize("op", ["sync", "rebuild", "first-build"])
def test_indexer_killed_anywhere_leaves_before_or_after_and_recovers(
    scenario: Scenario, op: str, tmp_path: Path
):
    points = crashkit.choose_points(scenario.traces[op], POINTS[op])
    assert len(points) == POINTS[op]
    for point in points:
        kill_and_recover(scenario, op, point, tmp_path)  # hits the point's step, or fails
    # Points fall before, inside and after Whoosh's commit, and in the publish step. (Taken
    # from the recorded trace: a run may close one segment file where the trace created
    # another, as kill_and_recover allows.)
    ops = {scenario.traces[op][point - 1].split(" ")[0] for point in points}
    if op == "first-build":  # few points: the steps whose order matters
        assert set(ops) <= crashkit.CRITICAL_OPS and len(ops) >= 5
        return
    assert {"progress", "create", "close", "write", "rename", "renamed"} <= ops
    assert {"replace", "replaced", "write_meta", "wrote_meta"} <= ops
    if op == "rebuild":
        assert {"publish", "published"} <= ops


@pytest.mark.slow
@pytest.mark.parametrize("op", ["sync", "rebuild", "first-build"])
def test_indexer_killed_anywhere_in_a_bigger_run_leaves_before_or_after(
    big_scenario: Scenario, op: str, tmp_path: Path
):
    points = crashkit.choose_points(big_scenario.traces[op], SLOW_POINTS[op])
    assert len(points) == SLOW_POINTS[op]
    for point in points:
        kill_and_recover(big_scenario, op, point, tmp_path)


# A full disk or a write error ----------------------------------------------------------------


def fail_and_recover(scenario: Scenario, op: str, point: int, workdir: Path) -> str:
    """Make the ``point``-th write of ``op`` fail with ENOSPC, in-process, then recover."""
    store = crashkit.copy_index(scenario.before, workdir / f"{op}-{point}")
    generation = store.generation()
    faults = crashkit.Faults(mode="raise", at=point, ops=crashkit.WRITE_OPS)

    options = WriteOptions(progress=faults.progress)
    with faults.installed(), pytest.raises(IndexWriteError) as raised:
        (indexer.sync if op == "sync" else indexer.rebuild)(store, options=options)

    message = str(raised.value)
    assert message.startswith(f"could not write the index at {store.location}/")
    assert "No space left on device" in message and "free some disk space" in message.lower()
    assert "\n" not in message
    assert isinstance(raised.value, SearchidxError)
    state = crashkit.snapshot(store)
    committed = point > _visible_at(writes_of(scenario, op), op)
    assert state == (scenario.after_state if committed else scenario.before_state), faults.hit
    if op == "rebuild":
        assert store.generation() == generation  # the new generation was not published
    indexer.sync(store)  # the next run, with room on the disk, finishes the work
    assert crashkit.snapshot(store) == scenario.after_state
    assert crashkit.generation_dirs(store) == [store.generation()]
    leftovers = [*store.location.glob(".*.tmp"), *store.live_dir().glob(".*.tmp")]
    assert not leftovers, f"{op} failing at {faults.hit} left {leftovers}"
    shutil.rmtree(store.location)
    return faults.hit


def _visible_at(writes: list[str], op: str) -> int:
    """The 1-based write that makes the new state visible: the TOC rename of a sync's commit,
    the replacement of ``CURRENT`` for a rebuild. A failure there or before leaves the old."""
    label = "rename toc-temp" if op == "sync" else "replace CURRENT"
    return max(n for n, write in enumerate(writes, 1) if write == label)


@pytest.mark.parametrize("op", ["sync", "rebuild"])
def test_indexer_write_error_fails_cleanly_and_keeps_the_live_index(
    scenario: Scenario, op: str, tmp_path: Path
):
    points = crashkit.choose_points(writes_of(scenario, op), FAILURES)
    assert len(points) == FAILURES
    ops = {fail_and_recover(scenario, op, point, tmp_path).split(" ")[0] for point in points}
    assert {"create", "write", "close", "rename", "replace", "fsync"} <= ops


@pytest.mark.slow
@pytest.mark.parametrize("op", ["sync", "rebuild"])
def test_indexer_write_error_anywhere_fails_cleanly(scenario: Scenario, op: str, tmp_path: Path):
    points = crashkit.choose_points(writes_of(scenario, op), SLOW_FAILURES)
    assert len(points) == SLOW_FAILURES
    for point in points:
        fail_and_recover(scenario, op, point, tmp_path)


def test_cli_index_on_a_full_disk_prints_one_line_and_exits_1(scenario: Scenario, tmp_path: Path):
    store = crashkit.copy_index(scenario.before, tmp_path / "ix")
    faults = crashkit.Faults(mode="raise", at=3, ops=frozenset({"write"}))

    with faults.installed():
        result = CliRunner().invoke(cli, ["index", "--index", str(store.location)])

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: could not write the index at ")
    assert "No space left on device" in lines[0]
    assert crashkit.snapshot(store) == scenario.before_state


def test_cli_index_write_error_has_no_traceback(scenario: Scenario, tmp_path: Path):
    """A real ``searchidx index`` process whose disk is full: one line on stderr, exit 1."""
    store = crashkit.copy_index(scenario.before, tmp_path / "ix")
    code = (
        "import errno, sys; from whoosh.filedb.structfile import StructFile\n"
        "def full(self, *a, **k): raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "StructFile.write = full\n"
        "from searchidx.cli import cli; cli(['index', '--index', sys.argv[1]])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(store.location)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("Error: could not write the index at ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert crashkit.snapshot(store) == scenario.before_state


# A stale lock ---------------------------------------------------------------------------------


def test_cli_index_clears_the_stale_lock_of_a_killed_writer(scenario: Scenario, tmp_path: Path):
    """Kill a real ``searchidx rebuild`` while it holds the lock; the next index says so."""
    store = crashkit.copy_index(scenario.before, tmp_path / "ix")
    lock = store.location / ".writer.lock"
    env = {**os.environ, "SEARCHIDX_INDEX": str(store.location)}
    writer = subprocess.Popen([SEARCHIDX, "rebuild"], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while lock.read_text().strip() != str(writer.pid) and time.monotonic() < deadline:
        time.sleep(0.002)
    writer.send_signal(signal.SIGSTOP)  # freeze it, then make sure it still holds the lock
    assert lock.read_text().strip() == str(writer.pid), "the writer finished too soon"
    writer.kill()
    writer.wait()

    result = subprocess.run([SEARCHIDX, "index"], env=env, capture_output=True, text=True)

    assert result.returncode == 3, result.stderr  # 3: the broken file is listed
    assert (
        f"note: cleared a stale lock left by pid {writer.pid}, which stopped while writing"
        in result.stderr
    )
    assert crashkit.snapshot(store) == scenario.after_state
    assert crashkit.generation_dirs(store) == [store.generation()]
    assert lock.read_text() == ""
