"""Two or more ``searchidx index`` (or ``rebuild``) processes at once, as real subprocesses.

One process writes at a time: another one either stops at once with a message naming the
writer, or (``--wait``) waits for it and then does what is left. Whatever the interleaving,
nothing is lost and nothing is doubled: the index ends as exactly the folder.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from searchidx import indexer
from searchidx.content import scan_content
from searchidx.sample import write_sample
from searchidx.store import IndexStore
from tests import crashkit
from tests.conftest import write_article

SEARCHIDX = str(Path(sys.executable).parent / "searchidx")
BUSY = re.compile(
    r"^Error: another searchidx process \(pid (\d+)\) is writing to .+/; "
    r"wait for it to finish, or pass --wait SECONDS$"
)


def start(*args: str) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if key != "SEARCHIDX_INDEX"}
    return subprocess.Popen(
        [SEARCHIDX, *args], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


@contextmanager
def frozen_while_writing(process: subprocess.Popen[str], store: IndexStore) -> Iterator[None]:
    """Stop ``process`` (SIGSTOP) while it holds the writer lock; let it go on afterwards."""
    lock = store.location / ".writer.lock"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if lock.exists() and lock.read_text().strip() == str(process.pid):
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGSTOP)
    try:
        assert lock.read_text().strip() == str(process.pid), "it finished before it was frozen"
        yield
    finally:
        process.send_signal(signal.SIGCONT)


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    write_sample(folder, 150, seed=3)
    return folder


def changes(folder: Path) -> None:
    """Add, edit and delete files."""
    paths = sorted(scan_content(folder))
    for path in paths[:5]:
        (folder / path).unlink()
    for path in paths[5:10]:
        text = (folder / path).read_text()
        (folder / path).write_text(text.replace("title: ", "title: Revised ", 1))
    for number in range(5):
        write_article(
            folder, f"late/{number}.md", f"title: Late {number}\npublishedDateTime: 2024-02-02"
        )


@pytest.mark.parametrize("first", ["index", "rebuild"])
def test_cli_second_writer_stops_with_a_message_or_waits_and_finishes(
    collection: Path, tmp_path: Path, first: str
):
    store = IndexStore(tmp_path / "ix")
    indexer.sync(store, collection)
    changes(collection)
    writer = start(first, str(collection), "--index", str(store.location))

    with frozen_while_writing(writer, store):
        code, out, err = finish(start("index", "--index", str(store.location)))
        assert code == 1 and out == ""
        assert (match := BUSY.match(err.strip())), err
        assert match.group(1) == str(writer.pid)
        waiting = start("index", "--index", str(store.location), "--wait", "60")
        time.sleep(0.5)
        assert waiting.poll() is None  # it waits for the frozen writer
        # The folder changes again while the writer is stopped (perhaps after its scan).
        (collection / "late" / "0.md").unlink()
        write_article(collection, "later.md", "title: Later\npublishedDateTime: 2024-02-03")

    writer_code, writer_out, _ = finish(writer)
    waiting_code, waiting_out, waiting_err = finish(waiting)
    assert waiting_out.startswith("synced ")  # on top of the writer's work, not rebuilt

    assert writer_code in (0, 3), writer_out  # 3: it listed the file deleted under it
    assert waiting_code == 0, waiting_err
    assert crashkit.snapshot(store) == crashkit.folder_snapshot(collection)
    assert crashkit.generation_dirs(store) == [store.generation()]
    assert not store.read_meta().skipped


def test_cli_index_runs_started_together_neither_lose_nor_double(collection: Path, tmp_path: Path):
    store = IndexStore(tmp_path / "ix")
    expected = crashkit.folder_snapshot(collection)

    waiting = [
        start("index", str(collection), "--index", str(store.location), "--wait", "60")
        for _ in range(3)
    ]
    results = [finish(process) for process in waiting]

    assert [code for code, _, _ in results] == [0, 0, 0], results
    outputs = sorted(out.split(" ", 1)[0] for _, out, _ in results)
    assert outputs == ["rebuilt", "synced", "synced"]  # one first build, two syncs after it
    assert sum(f"{len(expected)} added" in out for _, out, _ in results) == 1
    assert crashkit.snapshot(store) == expected
    assert crashkit.generation_dirs(store) == [store.generation()]

    changes(collection)
    expected = crashkit.folder_snapshot(collection)
    racing = [start("index", "--index", str(store.location)) for _ in range(3)]
    results = [finish(process) for process in racing]

    for code, _, err in results:
        assert code == 0 or (code == 1 and BUSY.match(err.strip())), err
    assert any(code == 0 for code, _, _ in results)
    assert sum(" 5 added" in out for _, out, _ in results) == 1  # applied once, not twice
    assert crashkit.snapshot(store) == expected
