"""Hostile and broken files in the content folder, through a real sync into a real index.

Whatever a file holds, the sync finishes: the file is either indexed faithfully or reported
(path, line, reason), never both, never neither. Links never lead the indexer out of the
folder, and files that vanish or change during a sync end up as they are on disk.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from searchidx import indexer, parsing, workers
from searchidx.articles import Article, Provider
from searchidx.content import scan_content
from searchidx.errors import ArticleError
from searchidx.parsing import MAX_FILE_BYTES, read_article
from searchidx.schema import QUALITY_MISSING, STORED_BODY_CHARS, VALUE_SEPARATOR
from searchidx.store import IndexStore
from searchidx.write_options import WriteOptions
from tests import crashkit
from tests.conftest import write_article
from tests.test_parsing import BROKEN

GOOD = 'title: "{title}"\npublishedDateTime: 2024-05-01T12:00:00Z'
SECRET = "Exfiltrated"  # a word only files outside the content folder contain


def good(folder: Path, relpath: str, title: str = "", body: str = "Some body text.") -> Path:
    return write_article(folder, relpath, GOOD.format(title=title or relpath), body)


def indexed(store: IndexStore) -> dict[str, Article]:
    """Path -> article as stored, for every live document."""
    articles = store.articles()
    assert len({article.path for article in articles}) == len(articles), "a path is doubled"
    return {article.path: article for article in articles}


def text_of_index(store: IndexStore) -> str:
    """Everything the index stores, as one string (to look for words that must not be in it)."""
    return "\n".join(repr(article) for article in indexed(store).values())


# Broken files ---------------------------------------------------------------------------------

YAML_HEAD = "---\ntitle: t\npublishedDateTime: 2022-01-01\n"
LAUGHS = "".join(
    f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9) if level else 'lol'}]\n"
    for level in range(10)
)

#: Files beyond the parser's own cases (tests/test_parsing.py): name -> (bytes, reason).
HOSTILE: dict[str, tuple[bytes, str]] = {
    "empty.md": (b"", "no front matter"),
    "only-newlines.md": (b"\n\n\n", "no front matter"),
    "huge.md": (
        (YAML_HEAD + "---\n").encode() + b"x" * (2 * MAX_FILE_BYTES),
        "over the 1,048,576-byte limit",
    ),
    "png.md": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "not UTF-8"),
    "random.md": (random.Random(5).randbytes(4096), "not UTF-8"),
    "nul.txt": (b"---\ntitle: t\x00\n---\n", "binary file"),
    "utf16.md": ("---\ntitle: t\n---\n".encode("utf-16"), "not UTF-8"),
    "billion-laughs.md": ((YAML_HEAD + LAUGHS + "---\n").encode(), "expands to more than"),
    "deep-flow.md": (
        (YAML_HEAD + "x: " + "[" * 200_000 + "]" * 200_000 + "\n---\n").encode(),
        "maximum nesting depth",
    ),
    "deep-block.md": (
        (YAML_HEAD + "x:\n" + "".join(" " * i + "a:\n" for i in range(1, 1200)) + "---\n").encode(),
        "maximum nesting depth",
    ),
    "python-tag.md": (
        b"---\ntitle: !!python/object/apply:os.system ['touch pwned']\n---\n",
        "could not determine a constructor",
    ),
    "day-out-of-range.md": (
        b"---\ntitle: t\npublishedDateTime: 2022-02-30\n---\n",
        "invalid value in front matter: day is out of range for month",
    ),
    "year-zero.md": (b"---\ntitle: t\npublishedDateTime: 0000-01-01\n---\n", "year 0"),
    "hour-24.md": (b"---\ntitle: t\npublishedDateTime: 2022-01-01T24:00:00Z\n---\n", "hour"),
    "int-tag.md": (
        b"---\ntitle: !!int many\npublishedDateTime: 2022-01-01\n---\n",
        "invalid value in front matter: invalid literal for int()",
    ),
    "date-overflows-utc.md": (
        b"---\ntitle: t\npublishedDateTime: 0001-01-01T00:00:00+14:00\n---\n",
        "publishedDateTime: '0001-01-01T00:00:00+14:00' is out of range in UTC",
    ),
    "date-text-overflows-utc.md": (
        b"---\ntitle: t\npublishedDateTime: '9999-12-31T23:00:00-05:00'\n---\n",
        "publishedDateTime: '9999-12-31T23:00:00-05:00' is out of range in UTC",
    ),
    "escaped-nul.md": (
        b'---\ntitle: "before\\0after"\npublishedDateTime: 2022-01-01\n---\n',
        "title: contains the control character U+0000",
    ),
    "escaped-separator.md": (
        b'---\ntitle: t\ntopics: ["one\\x1ftwo"]\npublishedDateTime: 2022-01-01\n---\n',
        "topics: contains the control character U+001F",
    ),
}


def test_sync_reports_every_broken_file_and_indexes_the_rest(tmp_path: Path, store: IndexStore):
    content = tmp_path / "content"
    expected: dict[str, str] = {}
    for number, (case, (text, _line, reason)) in enumerate(BROKEN.items()):
        path = content / "parser-cases" / f"{number:02d}-{case.replace(' ', '-')}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        expected[path.relative_to(content).as_posix()] = reason
    for name, (data, reason) in HOSTILE.items():
        (content / "hostile").mkdir(parents=True, exist_ok=True)
        (content / "hostile" / name).write_bytes(data)
        expected[f"hostile/{name}"] = reason
    goods = {f"good/{number}.md" for number in range(5)}
    for relpath in goods:
        good(content, relpath)
    (content / "good" / "bom-crlf.md").write_bytes(
        b"\xef\xbb\xbf---\r\ntitle: Windows file\r\npublishedDateTime: 2024-01-01\r\n"
        b"---\r\nBody\r\n"
    )
    goods.add("good/bom-crlf.md")

    report = indexer.sync(store, content)

    reported = {problem.path: problem.reason for problem in report.skipped}
    assert sorted(reported) == sorted(expected)
    for relpath, reason in expected.items():
        assert reason in reported[relpath], f"{relpath}: {reported[relpath]}"
    assert set(indexed(store)) == goods
    assert indexed(store)["good/bom-crlf.md"].title == "Windows file"
    assert not (Path.cwd() / "pwned").exists()


def test_sync_reads_at_most_the_size_limit_of_a_huge_file(
    tmp_path: Path, store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    """A sparse file of 8 GiB is refused after reading just over 1 MiB of it."""
    content = tmp_path / "content"
    good(content, "fine.md")
    with open(content / "huge.md", "wb") as file:
        file.write(b"---\ntitle: t\n---\n")
        file.truncate(8 * 1024**3)
    reads: list[int] = []
    real_read_bounded = parsing.read_bounded

    def counting(root: Path, relpath: str) -> Any:
        data, info = real_read_bounded(root, relpath)
        reads.append(len(data))
        return data, info

    monkeypatch.setattr(workers, "read_bounded", counting)
    report = indexer.sync(store, content)

    assert [problem.path for problem in report.skipped] == ["huge.md"]
    assert max(reads) == MAX_FILE_BYTES + 1
    assert set(indexed(store)) == {"fine.md"}


# Links ------------------------------------------------------------------------------------------


def test_sync_ends_on_link_loops_and_never_follows_links_out(tmp_path: Path, store: IndexStore):
    content, outside = tmp_path / "content", tmp_path / "outside"
    good(content, "in.md")
    good(outside, "secret.md", title=f"{SECRET} secret")
    good(outside, "dir/secret.md", title=f"{SECRET} in a folder")
    (outside / "back-in.md").symlink_to(content / "in.md")
    (content / "self.md").symlink_to("self.md")  # a link to itself
    (content / "ping.md").symlink_to("pong.md")  # two links to each other
    (content / "pong.md").symlink_to("ping.md")
    (content / "a").mkdir()
    (content / "b").mkdir()
    (content / "a" / "to-b").symlink_to("../b", target_is_directory=True)  # a folder loop
    (content / "b" / "to-a").symlink_to("../a", target_is_directory=True)
    (content / "a" / "up").symlink_to("..", target_is_directory=True)
    (content / "absolute-out.md").symlink_to(outside / "secret.md")
    (content / "relative-out.md").symlink_to("../outside/secret.md")
    (content / "dir-out").symlink_to(outside / "dir", target_is_directory=True)
    (content / "a" / "nested-out.md").symlink_to("../../outside/secret.md")
    (content / "device.md").symlink_to("/dev/zero")
    (content / "dangling.md").symlink_to("nowhere.md")
    (content / "via-outside.md").symlink_to(outside / "back-in.md")  # ends inside: followed

    report = indexer.sync(store, content)

    assert set(indexed(store)) == {"in.md", "via-outside.md"}
    assert not report.skipped
    assert SECRET not in text_of_index(store)


def test_sync_does_not_follow_a_file_swapped_for_an_outside_link_mid_sync(
    tmp_path: Path, store: IndexStore
):
    """Scanned as a regular file, replaced by a link out of the folder before it is read."""
    content, outside = tmp_path / "content", tmp_path / "outside"
    good(outside, "secret.md", title=f"{SECRET} file")
    good(outside, "sub/a.md", title=f"{SECRET} folder")
    good(outside, "sub/b.md", title=f"{SECRET} folder")
    for path in ("a.md", "b.md", "sub/a.md", "sub/b.md"):
        good(content, path)

    def swap(done: int, total: int) -> None:
        if done == 1:  # a.md was read; b.md and sub/ are still to come
            (content / "b.md").unlink()
            (content / "b.md").symlink_to(outside / "secret.md")
            shutil.rmtree(content / "sub")
            (content / "sub").symlink_to(outside / "sub", target_is_directory=True)

    report = indexer.sync(store, content, WriteOptions(progress=swap))

    assert SECRET not in text_of_index(store)
    assert {problem.path for problem in report.skipped} == {"b.md", "sub/a.md", "sub/b.md"}
    assert all("out of the content folder" in problem.reason for problem in report.skipped)
    assert not indexer.sync(store).skipped  # the next scan does not see them at all
    assert set(indexed(store)) == {"a.md"}


def test_sync_does_not_hang_on_a_file_swapped_for_a_fifo_mid_sync(
    tmp_path: Path, store: IndexStore
):
    content = tmp_path / "content"
    for path in ("a.md", "b.md", "c.md"):
        good(content, path)

    def swap(done: int, total: int) -> None:
        if done == 1:
            (content / "b.md").unlink()
            os.mkfifo(content / "b.md")  # opening it for reading would wait for a writer

    def run() -> None:
        report = indexer.sync(store, content, WriteOptions(progress=swap))
        assert [problem.path for problem in report.skipped] == ["b.md"]
        assert "not a regular file" in report.skipped[0].reason

    assert crashkit.call_in_child(run, timeout=20) == 0
    assert set(indexed(store)) == {"a.md", "c.md"}
    indexer.sync(store)
    assert set(indexed(store)) == {"a.md", "c.md"}


def test_sync_after_a_folder_of_only_broken_files_indexes_new_ones(
    tmp_path: Path, store: IndexStore
):
    """An index with no document at all (an empty or all-broken folder) can still be synced."""
    content = tmp_path / "content"
    (content / "broken.md").parent.mkdir(parents=True)
    (content / "broken.md").write_bytes(b"")
    assert indexer.sync(store, content).documents == 0
    assert indexer.sync(store).documents == 0
    good(content, "good.md")

    report = indexer.sync(store)

    assert (report.added, report.documents) == (1, 1)
    assert set(indexed(store)) == {"good.md"}


# Files that vanish or change during a sync ---------------------------------------------------


def folder_articles(folder: Path) -> dict[str, str]:
    """Path -> title of every good file now in the folder."""
    titles = {}
    for path in scan_content(folder):
        try:
            titles[path] = read_article(folder, path).title
        except ArticleError:
            continue
    return titles


def sync_with(store: IndexStore, content: Path, at: int, change: Callable[[], None]) -> None:
    """Sync, running ``change`` right after the ``at``-th file was read."""

    def progress(done: int, total: int) -> None:
        if done == at:
            change()

    indexer.sync(store, content, WriteOptions(progress=progress))


def test_sync_after_files_vanish_mid_sync_matches_the_folder(tmp_path: Path, store: IndexStore):
    content = tmp_path / "content"
    for number in range(6):
        good(content, f"b-indexed/{number}.md")
        good(content, f"c-gone/{number}.md")
    indexer.sync(store, content)
    for number in range(6):
        good(content, f"a-new/{number}.md")  # read first
        os.utime(content / f"b-indexed/{number}.md", ns=(1, 1))  # read again (stat changed)

    def vanish() -> None:
        for path in ("a-new/3.md", "a-new/5.md", "b-indexed/1.md", "b-indexed/4.md"):
            (content / path).unlink()
        shutil.rmtree(content / "c-gone")  # indexed, unchanged, gone: a plain removal

    sync_with(store, content, at=2, change=vanish)
    assert crashkit.snapshot(IndexStore(store.location))  # consistent: opens, no doubles

    report = indexer.sync(store)

    titles = {path: article.title for path, article in indexed(store).items()}
    assert titles == folder_articles(content)
    assert set(titles) == {f"a-new/{n}.md" for n in (0, 1, 2, 4)} | {
        f"b-indexed/{n}.md" for n in (0, 2, 3, 5)
    }
    assert not report.skipped


def test_sync_after_files_change_mid_sync_holds_their_new_content(
    tmp_path: Path, store: IndexStore
):
    content = tmp_path / "content"
    for number in range(6):
        good(content, f"{number}.md", title=f"First {number}")
        os.utime(content / f"{number}.md", ns=(10**18, 10**18))
    indexer.sync(store, content)
    for number in range(6):
        good(content, f"{number}.md", title=f"Second {number}")  # all six are read again

    def change() -> None:
        good(content, "1.md", title="Third 1, after it was read")
        good(content, "4.md", title="Third 4, before it is read")
        good(content, "5.md", title="Third 5 is a longer title, before it is read")

    sync_with(store, content, at=2, change=change)
    assert indexed(store)["4.md"].title == "Third 4, before it is read"

    indexer.sync(store)

    titles = {path: article.title for path, article in indexed(store).items()}
    assert titles == folder_articles(content)
    assert titles["1.md"] == "Third 1, after it was read"


def test_sync_of_a_file_changed_while_it_is_read_holds_its_new_content_next_time(
    tmp_path: Path, store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    """The change lands between reading the bytes and anything after: the next sync sees it."""
    content = tmp_path / "content"
    good(content, "a.md", title="Old title")
    os.utime(content / "a.md", ns=(10**18, 10**18))  # an mtime the rewrite cannot repeat
    real_read = parsing._read_at_most

    def changed_after_read(descriptor: int, size: int) -> bytes:
        data = real_read(descriptor, size)
        good(content, "a.md", title="New title")  # same size, written in place
        return data

    monkeypatch.setattr(parsing, "_read_at_most", changed_after_read)
    indexer.sync(store, content)
    monkeypatch.undo()
    assert indexed(store)["a.md"].title == "Old title"

    indexer.sync(store)

    assert indexed(store)["a.md"].title == "New title"


# Generated front matter -----------------------------------------------------------------------

#: Generated examples (each a folder of up to 8 files, or 12, and a fresh index).
EXAMPLES = 60
SLOW_EXAMPLES = 2000

INVALID = "<invalid>"  # the file must be reported
UNKNOWN = "<unknown>"  # odd YAML: the parser decides (indexed faithfully or reported)
UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")
NICE_TEXT = st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=30)
YAML_LINE_BREAKS = re.compile("[\x85\u2028\u2029\ufeff]")  # raw, YAML folds or drops them


@dataclass(frozen=True)
class Value:
    """A front matter value as written, and what the article must hold for it."""

    yaml: str
    expected: Any


@st.composite
def quoted_texts(draw: st.DrawFn, required: bool = False) -> Value:
    """Any text, written as a YAML double-quoted string (escaped, or raw Unicode)."""
    # One in n, as "draw(integers(0, n - 1)) == a middle value": Hypothesis favours the ends.
    text = draw(st.text(max_size=30) if draw(st.integers(0, 5)) == 3 else NICE_TEXT)
    if required and draw(st.integers(0, 9)) != 4:
        text += draw(st.text("abcxyz", min_size=1, max_size=5))  # not blank, mostly
    ascii_only = draw(st.booleans())
    written = yaml_quoted(text, ascii_only)
    if not ascii_only and YAML_LINE_BREAKS.search(text):
        return Value(written, UNKNOWN)
    if UNPRINTABLE.search(text) or (required and not text.strip()):
        return Value(written, INVALID)
    return Value(written, text.strip())


def yaml_quoted(text: str, ascii_only: bool) -> str:
    """``text`` as a YAML double-quoted scalar: escapes for what YAML cannot hold raw, and
    (``ascii_only``) for everything beyond ASCII; raw Unicode otherwise."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or code == 0x7F or (ascii_only and code > 0x7E):
            width, letter = (2, "x") if code < 0x100 else (4, "u") if code < 0x10000 else (8, "U")
            out.append(f"\\{letter}{code:0{width}x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def plain(*cases: tuple[str, Any]) -> st.SearchStrategy[Value]:
    return st.sampled_from([Value(yaml, expected) for yaml, expected in cases])


@st.composite
def mostly(
    draw: st.DrawFn, usual: st.SearchStrategy[Value], odd: st.SearchStrategy[Value]
) -> Value:
    """``usual`` three times in four: most files should be good enough to be indexed."""
    return draw(odd if draw(st.integers(0, 3)) == 2 else usual)


TITLES = mostly(
    quoted_texts(required=True),
    plain(
        ("Plain title", "Plain title"),
        ("yes", "True"),
        ("123", "123"),
        ("2022-01-01", "2022-01-01"),
        ("!!str 42", "42"),
        ("&anchor Anchored title", "Anchored title"),
        ("'single ''quoted'''", "single 'quoted'"),
        ("|\n  block\n  text", "block\ntext"),
        ("null", INVALID),
        ("''", INVALID),
        ("[a, b]", INVALID),
        ("{a: 1}", INVALID),
        ("*undefined", INVALID),
        ('"unterminated', INVALID),
        ("a: b", INVALID),
        ("!!python/name:os.system", INVALID),
        ("!!binary aGk=", UNKNOWN),
    ),
)

OFFSETS = st.none() | st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@st.composite
def dates(draw: st.DrawFn) -> Value:
    """A date or datetime in ISO 8601, quoted or not (YAML builds a timestamp, or a string)."""
    if draw(st.booleans()):
        moment: date = draw(st.dates())
        expected: Any = datetime.combine(moment, time(), tzinfo=UTC)
    else:
        bounds = {} if draw(st.integers(0, 5)) == 3 else {"min_value": datetime(2, 1, 1)}
        # hypothesis's overloads take a min_value only with naive or aware times, not a mix
        moment = draw(st.datetimes(**bounds, timezones=OFFSETS))  # type: ignore[arg-type]
        try:
            expected = parsing.to_utc(moment)
        except OverflowError:
            expected = INVALID
    text = moment.isoformat()
    return Value(json.dumps(text) if draw(st.booleans()) else text, expected)


PUBLISHED_AT = mostly(
    dates(),
    plain(
        ("next tuesday", INVALID),
        ("2022-02-30", INVALID),
        ("2022-13-01", INVALID),
        ("20220101", INVALID),
        ("[2022-01-01]", INVALID),
        ("null", INVALID),
        ("''", INVALID),
    ),
)

QUALITIES = mostly(
    st.integers(-(2**70), 2**70).map(lambda n: Value(str(n), n))
    | st.integers(-1000, 1000).map(lambda n: Value(f"'{n}'", n)),
    plain(
        ("3.0", 3),
        ("' -7 '", -7),
        ("null", None),
        ("''", None),
        ("2.5", INVALID),
        ("high", INVALID),
        ("true", INVALID),
        ("[1]", INVALID),
        ("1e400", INVALID),
        (".inf", INVALID),
        ("017", UNKNOWN),
        ("1:30", UNKNOWN),
        ("0x1f", UNKNOWN),
    ),
)


@st.composite
def topic_lists(draw: st.DrawFn) -> Value:
    items = draw(st.lists(quoted_texts(), max_size=5))
    written = "[" + ", ".join(item.yaml for item in items) + "]"
    expectations = [item.expected for item in items]
    if UNKNOWN in expectations:
        return Value(written, UNKNOWN)
    if INVALID in expectations:
        return Value(written, INVALID)
    return Value(written, tuple(dict.fromkeys(text for text in expectations if text)))


@st.composite
def single_topics(draw: st.DrawFn) -> Value:
    """One topic, not in a list: the article holds it as a list of one."""
    value = draw(quoted_texts())
    if value.expected in (INVALID, UNKNOWN):
        return value
    return Value(value.yaml, (value.expected,) if value.expected else ())


TOPICS = mostly(
    topic_lists(),
    single_topics()
    | plain(
        ("[1, 2.5, true]", ("1", "2.5", "True")),
        ("[[nested]]", INVALID),
        ("{a: 1}", INVALID),
        ("null", ()),
    ),
)


@st.composite
def providers(draw: st.DrawFn) -> Value:
    name, domain = draw(quoted_texts()), draw(quoted_texts())
    written = f"{{name: {name.yaml}, domain: {domain.yaml}}}"
    for part in (name, domain):
        if part.expected in (INVALID, UNKNOWN):
            return Value(written, part.expected)
    return Value(written, Provider(name.expected, domain.expected))


PROVIDERS = mostly(
    providers(), plain(("just text", INVALID), ("[x]", INVALID), ("null", Provider()))
)

PUBLISHED = plain(
    ("true", True),
    ("false", False),
    ("yes", True),
    ("no", False),
    ("on", True),
    ("off", False),
    ('"False"', False),
    ("' Yes '", True),
    ("null", True),
    ("maybe", INVALID),
    ("1", INVALID),
    ("[true]", INVALID),
)

#: Extra lines: odd but harmless YAML (None: no effect on the article), or anything goes.
EXTRAS = st.sampled_from(
    [
        ("# a comment", None),
        ("unknown_key: [1, {a: b}]", None),
        ("secured: {token: never-indexed-token}", None),
        ("? complex key\n: value", None),
        ("excerpt: >\n  folded\n  text", None),
        ("tags: !!set {a, b}", UNKNOWN),
        ("anchored: &list [1, 2]\naliased: *list", None),
        ("title: Duplicate key", UNKNOWN),
        ("<<: {category: merged}", UNKNOWN),
        ("\ttabbed: 1", INVALID),
        ("...", UNKNOWN),
        ("deep: " + "[" * 1100 + "]" * 1100, INVALID),
        ("nested: [[[]], {}]", None),
    ]
)

FIELDS = {
    "title": TITLES,
    "publishedDateTime": PUBLISHED_AT,
    "quality": QUALITIES,
    "topics": TOPICS,
    "provider": PROVIDERS,
    "published": PUBLISHED,
}
DEFAULTS = {"quality": None, "topics": (), "provider": Provider(), "published": True}
ATTRIBUTES = {"publishedDateTime": "published_at"}


@dataclass(frozen=True)
class GeneratedFile:
    text: str
    expected: dict[str, Any]  # field -> value, or INVALID / UNKNOWN
    verdict: str  # "indexed", INVALID or UNKNOWN


@st.composite
def article_files(draw: st.DrawFn) -> GeneratedFile:
    lines: list[str] = []
    expected: dict[str, Any] = {}
    for key, values in FIELDS.items():
        if key in ("title", "publishedDateTime") and draw(st.integers(0, 19)) == 7:
            expected[key] = INVALID  # a required field left out
            continue
        if key not in ("title", "publishedDateTime") and draw(st.booleans()):
            expected[key] = DEFAULTS[key]
            continue
        value = draw(values)
        lines.append(f"{key}: {value.yaml}")
        expected[key] = value.expected
    extras = draw(st.lists(EXTRAS, max_size=2, unique=True))
    lines.extend(line for line, _ in extras)
    lines = draw(st.permutations(lines))
    body = draw(st.text(max_size=80))
    outcomes = [*expected.values(), *(effect for _, effect in extras)]
    if "\x00" in body:
        outcomes.append(INVALID)  # a binary file
    verdict = UNKNOWN if UNKNOWN in outcomes else INVALID if INVALID in outcomes else "indexed"
    return GeneratedFile("---\n" + "\n".join(lines) + f"\n---\n{body}\n", expected, verdict)


def check_folder_against_index(
    folder: Path, files: dict[str, GeneratedFile], report: Any, store: IndexStore
) -> None:
    """Each file: indexed as read_article reads it, or reported with its reason; not both."""
    skipped = {problem.path: problem for problem in report.skipped}
    documents = indexed(store)
    columns = indexed_columns(store)
    for path, generated in files.items():
        assert (path in documents) != (path in skipped), f"{path}: indexed and reported, or neither"
        try:
            outcome: Article | ArticleError = read_article(folder, path)
        except ArticleError as error:
            outcome = error
        event(f"expected {generated.verdict.strip('<>')}, {type(outcome).__name__}")
        if isinstance(outcome, ArticleError):
            assert generated.verdict != "indexed", f"{path} was refused: {outcome}"
            assert skipped.get(path) == outcome.problem
            continue
        assert generated.verdict != INVALID, f"{path} should have been refused"
        assert documents.get(path) == replace(outcome, body=outcome.body[:STORED_BODY_CHARS])
        assert columns[path] == expected_columns(outcome)
        assert "never-indexed-token" not in repr(documents[path])
        if generated.verdict == "indexed":
            for key, value in generated.expected.items():
                assert getattr(outcome, ATTRIBUTES.get(key, key)) == value, f"{path}: {key}"


def indexed_columns(store: IndexStore) -> dict[str, tuple[Any, ...]]:
    """Path -> the facet columns of its document, as searches read them."""
    index = store.open_index()
    try:
        with index.reader() as reader:
            if not reader.doc_count_all():
                return {}
            names = ("path", "topics", "quality", "date", "published", "provider_name")
            column = {name: reader.column_reader(name, translate=True) for name in names}
            return {
                column["path"][docnum].decode(): (
                    [t for t in column["topics"][docnum].decode().split(VALUE_SEPARATOR) if t],
                    column["quality"][docnum],
                    column["date"][docnum],
                    column["published"][docnum],
                    column["provider_name"][docnum],
                )
                for docnum in reader.all_doc_ids()
            }
    finally:
        index.close()


def expected_columns(article: Article) -> tuple[Any, ...]:
    quality = article.quality
    return (
        list(article.topics),
        QUALITY_MISSING if quality is None else max(QUALITY_MISSING + 1, min(quality, 2**31 - 1)),
        article.published_at.replace(tzinfo=None),
        "true" if article.published else "false",
        article.provider.name,
    )


def check_generated_files(generated: list[GeneratedFile], incremental: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder, store = Path(scratch) / "content", IndexStore(Path(scratch) / "index")
        folder.mkdir()
        if incremental:  # new files into an existing index: the sync path, not the build
            indexer.sync(store, folder)
        files = {f"generated/{n:02d}.md": file for n, file in enumerate(generated)}
        for path, file in files.items():
            (folder / path).parent.mkdir(exist_ok=True)
            (folder / path).write_text(file.text, encoding="utf-8")
        report = indexer.sync(store, folder)
        assert report.rebuilt != incremental
        check_folder_against_index(folder, files, report, store)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(article_files(), min_size=1, max_size=8), st.booleans())
def test_sync_indexes_generated_front_matter_faithfully_or_reports_it(
    generated: list[GeneratedFile], incremental: bool
):
    check_generated_files(generated, incremental)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, deadline=None)
@given(st.lists(article_files(), min_size=1, max_size=12), st.booleans())
def test_sync_indexes_generated_front_matter_faithfully_or_reports_it_long(
    generated: list[GeneratedFile], incremental: bool
):
    check_generated_files(generated, incremental)
