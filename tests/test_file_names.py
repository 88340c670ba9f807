"""File names of every kind, through a real sync (and a real watcher) into a real index.

A name that is UTF-8 (spaces, newlines, 255 bytes, either Unicode normalisation) is its own
document, byte for byte. A file or folder name that is not UTF-8 is skipped and reported with
its bad bytes escaped and what to do (rename it), and never stops a sync or the watcher.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from searchidx import indexer, watch
from searchidx.export import export_elasticsearch
from searchidx.indexer import SyncReport
from searchidx.store import IndexStore
from searchidx.web.app import create_app
from tests.conftest import stored_titles
from tests.test_export import read_bulk
from tests.test_watch import WAIT_SECONDS, Watcher, wait_for, watch_command

#: ``searchidx`` as a user runs it, in another process.
COMMAND = [sys.executable, "-c", "from searchidx.cli import cli; cli()"]
BAD_NAME = b"bad\xffname.md"

NAME_BYTES = 255  # the longest file or folder name Linux file systems take
SUFFIXES = (b".md", b".txt", b".markdown", b".MD")
CAFE_NFC = unicodedata.normalize("NFC", "café")
CAFE_NFD = unicodedata.normalize("NFD", "café")


def article(title: str) -> bytes:
    return (
        f'---\ntitle: "{title}"\npublishedDateTime: 2024-05-01T12:00:00Z\n---\n\nBody.\n'.encode()
    )


def write(folder: Path, relpath: bytes, data: bytes) -> None:
    """Write ``folder/relpath`` given as bytes: any name the file system takes."""
    path = os.path.join(os.fsencode(folder), relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as file:
        file.write(data)


def is_utf8(relpath: bytes) -> bool:
    try:
        relpath.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def shown(relpath: bytes) -> str:
    """How a report names a path: bytes that are not UTF-8 written as ``\\xNN``."""
    return relpath.decode("utf-8", "backslashreplace")


def check_report(report: SyncReport, store: IndexStore, files: dict[bytes, str]) -> None:
    """The index holds exactly the files with UTF-8 names; the sync and ``status`` report
    exactly the others, each with what to do."""
    assert stored_titles(store) == {
        path.decode(): title for path, title in files.items() if is_utf8(path)
    }
    skipped = {problem.path: problem.reason for problem in report.skipped}
    assert sorted(skipped) == sorted(shown(path) for path in files if not is_utf8(path))
    assert all(
        "is not valid UTF-8" in reason and "rename the" in reason for reason in skipped.values()
    )
    assert store.read_meta().skipped == report.skipped


def searchidx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=60)


def test_index_reports_a_file_name_that_is_not_utf8_and_applies_every_other_change(
    tmp_path: Path,
):
    folder, index = tmp_path / "content", str(tmp_path / "index")
    for name in ("kept", "edited", "deleted"):
        write(folder, f"{name}.md".encode(), article(name.title()))
    assert searchidx("index", str(folder), "--index", index).returncode == 0
    write(folder, BAD_NAME, article("Badly named"))
    write(folder, b"edited.md", article("Edited again"))
    write(folder, b"added.md", article("Added"))
    (folder / "deleted.md").unlink()

    run = searchidx("index", "--index", index)

    line = (
        "bad\\xffname.md: the file name is not valid UTF-8 (its bad bytes are shown as \\xNN) "
        "and cannot be stored as text: rename the file"
    )
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr and f"  {line}\n" in run.stderr
    assert "2 added" not in run.stdout and "1 added, 1 updated, 1 removed" in run.stdout
    assert stored_titles(IndexStore(index)) == {
        "kept.md": "Kept",
        "edited.md": "Edited again",
        "added.md": "Added",
    }
    assert f"  {line}\n" in searchidx("status", "--index", index).stdout

    os.rename(os.path.join(os.fsencode(folder), BAD_NAME), folder / "renamed.md")
    run = searchidx("index", "--index", index)
    assert run.returncode == 0 and "1 added, 0 updated, 0 removed" in run.stdout, run.stderr
    assert stored_titles(IndexStore(index))["renamed.md"] == "Badly named"
    assert "skipped files:  0" in searchidx("status", "--index", index).stdout


def test_sync_names_the_folder_whose_name_is_not_utf8(tmp_path: Path, store: IndexStore):
    folder = tmp_path / "content"
    write(folder, b"ok.md", article("Fine"))
    write(folder, b"archive \xe9t\xe9/2003/notes.md", article("Latin-1 folder"))

    report = indexer.sync(store, folder)

    [problem] = report.skipped
    assert problem.path == "archive \\xe9t\\xe9/2003/notes.md"
    assert problem.reason.startswith('the folder name "archive \\xe9t\\xe9" is not valid UTF-8')
    assert problem.reason.endswith("rename the folder")
    assert stored_titles(store) == {"ok.md": "Fine"}


def test_sync_in_worker_processes_reports_names_that_are_not_utf8(
    tmp_path: Path, store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    """Builds and syncs of many files read them in worker processes; one per file here."""
    monkeypatch.setattr(indexer, "BUILD_PROCESSES", 2)
    monkeypatch.setattr(indexer, "PARALLEL_FILES_PER_PROCESS", 1)
    monkeypatch.setattr(indexer, "SYNC_FILES_PER_PROCESS", 1)
    folder = tmp_path / "content"
    files = {f"{number}.md".encode(): f"Article {number}" for number in range(4)}
    files[b"first\xff.md"] = "First badly named"
    for relpath, title in files.items():
        write(folder, relpath, article(title))
    check_report(indexer.sync(store, folder), store, files)

    for number in range(4, 8):
        files[f"{number}.md".encode()] = f"Article {number}"
    files[b"d\xfe/second.md"] = "Second badly named"
    for relpath, title in files.items():
        write(folder, relpath, article(title))
    report = indexer.sync(store, folder)
    assert not report.rebuilt and report.added == 4
    check_report(report, store, files)


def test_names_differing_only_in_normalisation_stay_two_documents(
    tmp_path: Path, store: IndexStore
):
    folder = tmp_path / "content"
    write(folder, f"{CAFE_NFC}.md".encode(), article("Composed cafe"))
    write(folder, f"{CAFE_NFD}.md".encode(), article("Decomposed cafe"))
    indexer.sync(store, folder)
    both = {f"{CAFE_NFC}.md": "Composed cafe", f"{CAFE_NFD}.md": "Decomposed cafe"}
    assert stored_titles(store) == both

    client = create_app(store, config={"TESTING": True}).test_client()
    hits = client.get("/api/search?q=cafe").get_json()["hits"]
    assert {hit["path"]: hit["title"] for hit in hits} == both
    export_elasticsearch(store, tmp_path / "export")
    exported = read_bulk(tmp_path / "export")
    assert {action["index"]["_id"]: source["title"] for action, source in exported} == both

    (folder / f"{CAFE_NFD}.md").unlink()
    assert indexer.sync(store, folder).removed == 1
    assert stored_titles(store) == {f"{CAFE_NFC}.md": "Composed cafe"}


def test_watch_command_reports_names_that_are_not_utf8_and_keeps_watching(tmp_path: Path):
    folder, index = tmp_path / "content", str(tmp_path / "index")
    write(folder, b"first.md", article("First"))

    def logged(text: str) -> Callable[[], bool]:
        return lambda: any(text in line for line in lines)

    with watch_command(folder, index) as lines:
        wait_for(logged("1 added"), "the first sync")
        write(folder, BAD_NAME, article("Badly named"))
        wait_for(logged("skipped bad\\xffname.md: the file name is not valid"), "its report")
        write(folder, b"old \xe9/inside.md", article("Inside"))
        wait_for(logged('skipped old \\xe9/inside.md: the folder name "old \\xe9"'), "its report")
        os.rename(os.path.join(os.fsencode(folder), b"old \xe9"), folder / "renamed")
        wait_for(
            lambda: "renamed/inside.md" in (stored_titles(IndexStore(index)) or {}),
            "the renamed folder's article",
            timeout=2 * watch.POLL_MS / 1000,
        )
    assert any("cannot watch" in line for line in lines), "".join(lines)


# Generated names -----------------------------------------------------------------------------

_TEXT = st.text(
    st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]), min_size=1, max_size=10
)
#: Name pieces people and tools produce: white space, both forms of "café", a byte that is
#: never UTF-8, a cut sequence, a name that looks like a report's escape, and a UTF-16
#: surrogate, which UTF-8 forbids.
ODD_PIECES = (
    b" ",
    b"\n",
    b"\t",
    CAFE_NFC.encode(),
    CAFE_NFD.encode(),
    b"\xff",
    b"\xc3",
    b"\\xff",
    b"\xed\xa0\x80",
)
#: The two normal forms names come in (macOS tools write NFD, most others NFC).
NORMAL_FORMS: list[Literal["NFC", "NFD"]] = ["NFC", "NFD"]
_PIECES = st.one_of(
    st.sampled_from(ODD_PIECES),
    st.tuples(_TEXT, st.sampled_from(NORMAL_FORMS)).map(
        lambda text_form: unicodedata.normalize(text_form[1], text_form[0]).encode()
    ),
    st.binary(min_size=1, max_size=4),  # mostly not UTF-8
    st.integers(100, NAME_BYTES).map(lambda length: b"n" * length),
)


def names(suffixes: tuple[bytes, ...] = (b"",)) -> st.SearchStrategy[bytes]:
    """One file or folder name: any bytes but "/" and NUL, not hidden, at most 255 bytes
    (a long one cut there, maybe inside a UTF-8 sequence)."""

    def name(pieces: list[bytes], suffix: bytes) -> bytes:
        stem = b"".join(pieces).replace(b"/", b"").replace(b"\x00", b"").lstrip(b".") or b"x"
        return stem[: NAME_BYTES - len(suffix)] + suffix

    return st.builds(name, st.lists(_PIECES, min_size=1, max_size=4), st.sampled_from(suffixes))


def join(*parts: bytes) -> bytes:
    return b"/".join(part for part in parts if part)


class FileNames(RuleBasedStateMachine):
    """Article files created, renamed and deleted under generated names in nested folders;
    the model is each file's path (bytes) and title. Subclasses say how the index catches up.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scratch = Path(tempfile.mkdtemp())
        self.folder = self.scratch / "content"
        self.folder.mkdir()
        self.store = IndexStore(self.scratch / "index")
        self.files: dict[bytes, str] = {}
        self.folders: set[bytes] = {b""}
        self.titles = itertools.count()

    def teardown(self) -> None:
        shutil.rmtree(self.scratch)

    def path(self, relpath: bytes) -> bytes:
        return os.path.join(os.fsencode(self.folder), relpath)

    def free(self, relpath: bytes) -> bool:
        """Whether a new file or folder may take ``relpath``: nothing is there, and no file
        stands where one of its folders would be."""
        parents = relpath.split(b"/")
        prefixes = {b"/".join(parents[:end]) for end in range(1, len(parents))}
        return (
            relpath not in self.files
            and relpath not in self.folders
            and not (prefixes & self.files.keys())
        )

    def add(self, relpath: bytes) -> None:
        title = f"Article {next(self.titles)}"
        write(self.folder, relpath, article(title))
        self.files[relpath] = title
        parts = relpath.split(b"/")
        self.folders.update(b"/".join(parts[:end]) for end in range(1, len(parts)))

    @rule(data=st.data(), new_folders=st.lists(names(), max_size=2), name=names(SUFFIXES))
    def create(self, data: st.DataObject, new_folders: list[bytes], name: bytes) -> None:
        relpath = join(data.draw(st.sampled_from(sorted(self.folders))), *new_folders, name)
        assume(self.free(relpath))
        self.add(relpath)

    @rule(data=st.data(), text=_TEXT, suffix=st.sampled_from(SUFFIXES))
    def create_nfc_and_nfd(self, data: st.DataObject, text: str, suffix: bytes) -> None:
        """Two files whose names differ only in normalisation, as macOS and Linux tools
        write ``café``: two documents."""
        folder = data.draw(st.sampled_from(sorted(self.folders)))
        stem = text.replace(".", "") + CAFE_NFC
        pair = [
            join(folder, unicodedata.normalize(form, stem).encode() + suffix)
            for form in NORMAL_FORMS
        ]
        assume(pair[0] != pair[1] and all(self.free(relpath) for relpath in pair))
        for relpath in pair:
            self.add(relpath)

    @precondition(lambda self: self.files)
    @rule(data=st.data(), name=names(SUFFIXES))
    def rename(self, data: st.DataObject, name: bytes) -> None:
        old = data.draw(st.sampled_from(sorted(self.files)))
        new = join(data.draw(st.sampled_from(sorted(self.folders))), name)
        assume(new == old or new not in self.folders)
        os.rename(self.path(old), self.path(new))  # replaces a file of that name
        self.files[new] = self.files.pop(old)

    @precondition(lambda self: len(self.folders) > 1)
    @rule(data=st.data(), name=names())
    def rename_folder(self, data: st.DataObject, name: bytes) -> None:
        """The fix the report asks for (or its opposite): every file below moves with it."""
        old = data.draw(st.sampled_from(sorted(self.folders - {b""})))
        new = join(old.rpartition(b"/")[0], name)
        assume(self.free(new))
        os.rename(self.path(old), self.path(new))

        def moved(relpath: bytes) -> bytes:
            inside = relpath == old or relpath.startswith(old + b"/")
            return new + relpath[len(old) :] if inside else relpath

        self.files = {moved(relpath): title for relpath, title in self.files.items()}
        self.folders = {moved(relpath) for relpath in self.folders}

    @precondition(lambda self: self.files)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        relpath = data.draw(st.sampled_from(sorted(self.files)))
        os.unlink(self.path(relpath))
        del self.files[relpath]


class SyncedFileNames(FileNames):
    """``searchidx index`` after every change; sometimes ``searchidx rebuild``."""

    @rule()
    def rebuild(self) -> None:
        check_report(indexer.rebuild(self.store, self.folder), self.store, self.files)

    @invariant()
    def index_matches_the_folder(self) -> None:
        check_report(indexer.sync(self.store, self.folder), self.store, self.files)


class WatchedFileNames(FileNames):
    """A real watcher (watchfiles on the real folder) follows every change."""

    @initialize()
    def start_watching(self) -> None:
        self.watcher = Watcher(self.store, self.folder).start()
        self.watcher.listening()

    def teardown(self) -> None:
        if hasattr(self, "watcher"):
            self.watcher.close()  # asserts that no sync raised
        super().teardown()

    @invariant()
    def index_matches_the_folder(self) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            assert not self.watcher.errors, self.watcher.errors
            try:
                check_report(self.watcher.reports[-1], self.store, self.files)
                return
            except (AssertionError, OSError, ValueError):  # not caught up yet, or mid-commit
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)


def run_machine(machine: type[RuleBasedStateMachine], examples: int, steps: int) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_sync_of_generated_names_indexes_exactly_the_utf8_ones_and_reports_the_rest():
    run_machine(SyncedFileNames, examples=25, steps=10)


@pytest.mark.slow
def test_sync_of_generated_names_indexes_exactly_the_utf8_ones_and_reports_the_rest_long():
    run_machine(SyncedFileNames, examples=300, steps=25)


def test_watch_of_generated_names_indexes_exactly_the_utf8_ones_and_reports_the_rest(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(watch, "POLL_MS", 300)
    run_machine(WatchedFileNames, examples=5, steps=6)


@pytest.mark.slow
def test_watch_of_generated_names_indexes_exactly_the_utf8_ones_and_reports_the_rest_long(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(watch, "POLL_MS", 300)
    run_machine(WatchedFileNames, examples=40, steps=12)
