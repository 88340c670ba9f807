"""Watch mode against a real watcher on a real folder, with a real index on disk.

Every wait is a bounded poll: a test ends as soon as the index matches the folder, and fails
with what it was waiting for after WAIT_SECONDS.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from watchfiles import Change

from searchidx import indexer
from searchidx.content import scan_content
from searchidx.errors import ArticleError, ContentFolderError, IndexBusyError
from searchidx.indexer import SyncReport
from searchidx.parsing import read_article
from searchidx.store import IndexStore
from searchidx.watch import ArticleChanges, watch
from tests.conftest import stored_titles, write_article

WAIT_SECONDS = 8.0
FAST_DEBOUNCE_MS = 50


def front_matter(title: str, day: int = 1) -> str:
    return f'title: "{title}"\npublishedDateTime: 2024-03-{day:02d}T10:00:00Z'


def article_text(title: str, body: str = "Some body text.") -> str:
    return f"---\n{front_matter(title)}\n---\n\n{body}\n"


def folder_titles(folder: Path) -> dict[str, str]:
    """Path -> title of every article file in the folder that parses."""
    titles = {}
    for path in scan_content(folder):
        try:
            titles[path] = read_article(folder.resolve(), path).title
        except ArticleError:
            continue
    return titles


def wait_for(condition: Callable[[], object], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Watcher:
    """A ``watch`` running in a background thread, as the web server runs it."""

    store: IndexStore
    folder: Path
    stop: threading.Event = field(default_factory=threading.Event)
    reports: list[SyncReport] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self, debounce_ms: int = FAST_DEBOUNCE_MS) -> Watcher:
        def run() -> None:
            try:
                watch(
                    self.store,
                    self.folder,
                    stop_event=self.stop,
                    on_sync=self.reports.append,
                    debounce_ms=debounce_ms,
                )
            except BaseException as error:
                self.errors.append(error)

        self.thread = threading.Thread(target=run, name="test-watcher", daemon=True)
        self.thread.start()
        wait_for(lambda: self.reports or self.errors, "the first sync")
        assert not self.errors
        return self

    def listening(self) -> None:
        """Wait for the catch-up sync: from then on, every change is an event."""
        wait_for(lambda: len(self.reports) >= 2, "the watcher's catch-up sync")

    def in_step(self) -> bool:
        """The index holds exactly the folder's articles and no file is reported skipped."""
        try:
            indexed = stored_titles(self.store)
        except (OSError, ValueError):  # no index to read yet
            return False
        if indexed != folder_titles(self.folder):
            return False
        return not self.store.read_meta().skipped

    def wait_in_step(self, what: str) -> None:
        wait_for(self.in_step, f"the index to match the folder after {what}")

    def close(self) -> float:
        """Stop the watcher; returns how long it took to return."""
        assert self.thread is not None
        started = time.monotonic()
        self.stop.set()
        self.thread.join(timeout=WAIT_SECONDS)
        assert not self.thread.is_alive(), "the watcher did not stop"
        assert not self.errors, self.errors
        return time.monotonic() - started


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    write_article(folder, "alpha.md", front_matter("Alpha", 1), "First body.")
    write_article(folder, "beta.markdown", front_matter("Beta", 2), "Second body.")
    write_article(folder, "news/gamma.txt", front_matter("Gamma", 3), "Third body.")
    return folder


@pytest.fixture
def watcher(folder: Path, store: IndexStore) -> Iterator[Watcher]:
    running = Watcher(store, folder).start()
    yield running
    running.close()


def test_watch_first_sync_indexes_the_folder(watcher: Watcher):
    assert watcher.reports[0].added == 3
    assert stored_titles(watcher.store) == {
        "alpha.md": "Alpha",
        "beta.markdown": "Beta",
        "news/gamma.txt": "Gamma",
    }


def test_watch_catches_up_with_a_save_made_before_it_listened(
    folder: Path, store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    """A file saved between the first sync and the watcher starting to listen has no event."""
    real_sync = indexer.sync

    def first_sync_then_save(*args: Any, **kwargs: Any) -> SyncReport:
        report = real_sync(*args, **kwargs)
        if not (folder / "unheard.md").exists():
            write_article(folder, "unheard.md", front_matter("Saved before listening"))
        return report

    monkeypatch.setattr(indexer, "sync", first_sync_then_save)
    running = Watcher(store, folder).start()
    try:
        assert running.reports[0].added == 3  # the first sync did not see it
        running.wait_in_step("the catch-up sync")
    finally:
        running.close()


def test_watch_follows_add_edit_rename_move_and_delete(watcher: Watcher, tmp_path: Path):
    folder = watcher.folder
    write_article(folder, "new/delta.md", front_matter("Delta"))
    watcher.wait_in_step("an added file")
    assert stored_titles(watcher.store)["new/delta.md"] == "Delta"

    (folder / "alpha.md").write_text(article_text("Alpha, corrected and longer"))
    watcher.wait_in_step("an edit")
    assert stored_titles(watcher.store)["alpha.md"] == "Alpha, corrected and longer"

    os.rename(folder / "beta.markdown", folder / "news" / "beta-renamed.md")
    watcher.wait_in_step("a rename")
    assert "beta.markdown" not in stored_titles(watcher.store)

    os.rename(folder / "news", folder / "archive")  # a folder moved: one event, not one a file
    watcher.wait_in_step("a folder rename")
    assert set(stored_titles(watcher.store)) == {
        "alpha.md",
        "new/delta.md",
        "archive/gamma.txt",
        "archive/beta-renamed.md",
    }

    os.rename(folder / "archive", tmp_path / "moved-out")  # out of the watched tree
    (folder / "alpha.md").unlink()
    watcher.wait_in_step("deletions")
    assert stored_titles(watcher.store) == {"new/delta.md": "Delta"}


@pytest.mark.parametrize(
    "temporary",
    [".alpha.md.swp", "alpha.md.tmp", "alpha-autosave.md"],
    ids=["hidden", "not-an-article", "an-article-itself"],
)
def test_watch_indexes_a_file_saved_as_temp_then_renamed(watcher: Watcher, temporary: str):
    temp = watcher.folder / temporary
    with open(temp, "w", encoding="utf-8") as out:
        out.write(article_text("Alpha, saved the safe way"))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, watcher.folder / "alpha.md")

    watcher.wait_in_step("a temp-then-rename save")
    titles = stored_titles(watcher.store)
    assert titles["alpha.md"] == "Alpha, saved the safe way"
    assert temporary not in titles


@pytest.mark.parametrize("half", ["empty", "front matter cut short"])
def test_watch_indexes_the_finished_file_after_a_half_written_one(watcher: Watcher, half: str):
    """Truncate-then-write with a pause between: a sync sees the half file, the next fixes it."""
    watcher.listening()
    path = watcher.folder / "alpha.md"
    final = article_text("Alpha, rewritten in two steps", "A new body.")
    partial = "" if half == "empty" else final[: final.index("publishedDateTime")]
    with open(path, "w", encoding="utf-8") as out:
        out.write(partial)
        out.flush()
        wait_for(
            lambda: any(problem.path == "alpha.md" for problem in watcher.reports[-1].skipped),
            "a sync to see the half-written file",
        )
        assert stored_titles(watcher.store)["alpha.md"] == "Alpha"  # the last good version
        out.write(final[len(partial) :])

    watcher.wait_in_step("the write that finishes the file")
    assert stored_titles(watcher.store)["alpha.md"] == "Alpha, rewritten in two steps"
    wait_for(lambda: not watcher.reports[-1].skipped, "a report without the half-written file")


def test_watch_reindexes_a_file_that_was_broken_then_fixed(watcher: Watcher):
    write_article(watcher.folder, "broken.md", "title: [unclosed")
    wait_for(
        lambda: [p.path for p in watcher.store.read_meta().skipped] == ["broken.md"],
        "the broken file to be reported",
    )
    write_article(watcher.folder, "broken.md", front_matter("Fixed now"))
    watcher.wait_in_step("the fix")
    assert stored_titles(watcher.store)["broken.md"] == "Fixed now"


def test_watch_batches_a_burst_of_changes_into_one_sync(folder: Path, store: IndexStore):
    running = Watcher(store, folder).start(debounce_ms=600)
    try:
        running.listening()
        before = len(running.reports)
        for number in range(8):  # an editor's "save all", or a git checkout
            write_article(folder, f"burst/{number}.md", front_matter(f"Burst {number}"))
            time.sleep(0.08)  # longer than watchfiles' own 50 ms step, shorter than the debounce
        wait_for(
            lambda: sum(report.added for report in running.reports[before:]) == 8,
            "the burst's syncs",
        )
        assert running.in_step()
        syncs = [report for report in running.reports[before:] if report.changed]
        assert len(syncs) <= 2, [report.added for report in syncs]
    finally:
        running.close()


def test_watch_waits_for_a_busy_index_instead_of_failing(
    watcher: Watcher, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="searchidx.watch")
    watcher.listening()
    with watcher.store.writing():  # another process is indexing
        write_article(watcher.folder, "while-busy.md", front_matter("Written while busy"))
        wait_for(
            lambda: any(record.message.startswith("waiting:") for record in caplog.records),
            "the watcher to find the index busy",
        )
        assert "while-busy.md" not in stored_titles(watcher.store)
    watcher.wait_in_step("the lock was released")
    assert watcher.thread is not None and watcher.thread.is_alive()


def test_watch_retries_a_sync_that_could_not_write(
    folder: Path,
    store: IndexStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    """Disk full during a later sync: logged once, retried, and the watcher carries on."""
    caplog.set_level(logging.INFO, logger="searchidx.watch")
    real_sync = indexer.sync
    failures = iter([OSError(errno.ENOSPC, "No space left on device")] * 3)

    def sync_on_a_full_disk(*args: Any, **kwargs: Any) -> SyncReport:
        if (folder / "during-full-disk.md").exists():
            error = next(failures, None)
            if error is not None:
                raise error
        return real_sync(*args, **kwargs)

    monkeypatch.setattr(indexer, "sync", sync_on_a_full_disk)
    running = Watcher(store, folder).start()
    try:
        write_article(
            folder, "during-full-disk.md", front_matter("Written while the disk was full")
        )
        running.wait_in_step("the retried sync")
    finally:
        running.close()
    errors = [record.message for record in caplog.records if record.levelno == logging.ERROR]
    assert errors == ["sync failed, will retry: [Errno 28] No space left on device"]


def test_watch_first_sync_gives_up_after_wait_when_busy(folder: Path, store: IndexStore):
    with store.writing(), pytest.raises(IndexBusyError):
        watch(store, folder, wait=0.2)


def test_watch_without_a_known_folder_raises_at_once(store: IndexStore):
    with pytest.raises(ContentFolderError):
        watch(store)


def test_watch_returns_soon_after_stop_event(folder: Path, store: IndexStore):
    running = Watcher(store, folder).start(debounce_ms=100)
    running.listening()
    assert running.close() < 1.0


def test_watch_logs_a_line_per_sync_and_new_skipped_files_once(
    watcher: Watcher, caplog: pytest.LogCaptureFixture
):
    watcher.listening()
    caplog.set_level(logging.INFO, logger="searchidx.watch")
    before = len(watcher.reports)

    def lines(level: int) -> list[str]:
        return [record.message for record in caplog.records if record.levelno == level]

    write_article(watcher.folder, "broken.md", "title: [unclosed")
    wait_for(lambda: watcher.reports[-1].skipped, "a sync that skips broken.md")
    write_article(watcher.folder, "other.md", front_matter("Other"))
    wait_for(lambda: watcher.reports[-1].added == 1, "the sync that adds other.md")

    summaries = lines(logging.INFO)
    assert len(summaries) == len(watcher.reports) - before  # one line per sync
    assert all(message.startswith("synced ") for message in summaries)
    assert any("1 added" in message and "1 skipped" in message for message in summaries)
    warnings = lines(logging.WARNING)
    assert len(warnings) == 1 and warnings[0].startswith("skipped broken.md:")


@pytest.mark.parametrize(
    ("relpath", "change", "counts"),
    [
        ("alpha.md", Change.modified, True),
        ("news/new.TXT", Change.added, True),
        ("news", Change.added, True),  # a folder moved in
        ("gone", Change.deleted, True),  # maybe a folder that carried articles away
        ("notes.json", Change.added, False),
        (".alpha.md.swp", Change.added, False),
        (".drafts/alpha.md", Change.added, False),
        ("index/gen-1/_MAIN_1.toc", Change.deleted, False),  # the index inside the folder
    ],
)
def test_watch_filter_counts_articles_and_folders_not_hidden_or_index_files(
    folder: Path, relpath: str, change: Change, counts: bool
):
    (folder / "notes.json").write_text("{}")
    (folder / ".alpha.md.swp").write_text("")
    changes = ArticleChanges(folder, folder / "index")
    assert changes(change, str(folder.resolve() / relpath)) is counts
    assert changes(Change.added, "/somewhere/else/article.md") is False


@contextmanager
def watch_command(folder: Path, index: Path | str) -> Iterator[list[str]]:
    """``searchidx watch FOLDER`` in a real process, its output lines collected as they come;
    after the body, Ctrl-C must stop it cleanly (exit 0), with no traceback."""
    command = [sys.executable, "-c", "from searchidx.cli import cli; cli()"]
    process = subprocess.Popen(
        [*command, "watch", str(folder), "--index", str(index), "--debounce", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()
    try:
        yield lines
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=WAIT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=WAIT_SECONDS)
    assert not any("Traceback" in line for line in lines), "".join(lines)


def test_watch_command_syncs_changes_until_interrupted(folder: Path, tmp_path: Path):
    index = tmp_path / "index"
    with watch_command(folder, index) as lines:
        wait_for(lambda: any("3 added" in line for line in lines), "the first sync's line")
        write_article(folder, "late.md", front_matter("Late"))
        wait_for(lambda: any("1 added" in line for line in lines), "the change's line")
    assert "late.md" in stored_titles(IndexStore(index))
    shutil.rmtree(index)
