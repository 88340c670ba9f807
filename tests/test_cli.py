"""The ``searchidx`` command: thin shells over the library, with clear errors and exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from searchidx.cli import EXIT_SKIPPED, cli
from tests.conftest import SAMPLE_COUNT, write_article


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_cli_every_command_has_help(command: str):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert cli.commands[command].help, f"{command} has no docstring"
    assert "Usage:" in result.output


def test_cli_index_then_status(content: Path, tmp_path: Path):
    index = str(tmp_path / "ix")
    result = run("index", str(content), "--index", index)
    assert result.exit_code == 0, result.output
    assert f"{SAMPLE_COUNT + 1:,} added" in result.output
    assert "\r" not in result.output  # no progress bar when not on a terminal

    again = run("index", env={"SEARCHIDX_INDEX": index})
    assert again.exit_code == 0 and f"{SAMPLE_COUNT + 1:,} unchanged" in again.output

    status = run("status", "--index", index)
    assert f"documents:      {SAMPLE_COUNT + 1:,}" in status.output
    assert str(content.resolve()) in status.output
    assert "skipped files:  0" in status.output


def test_cli_index_lists_skipped_files_and_exits_3(content: Path, tmp_path: Path):
    write_article(content, "broken.md", "title: [unclosed")
    result = run("index", str(content), "--index", str(tmp_path / "ix"))
    assert result.exit_code == EXIT_SKIPPED
    assert "skipped 1 file(s):" in result.output
    assert "broken.md:" in result.output and "invalid YAML" in result.output
    assert "broken.md" in run("status", "--index", str(tmp_path / "ix")).output


def test_cli_rebuild_swaps_in_a_new_index(content: Path, tmp_path: Path):
    index = str(tmp_path / "ix")
    run("index", str(content), "--index", index)
    result = run("rebuild", "--index", index)
    assert result.exit_code == 0 and result.output.startswith("rebuilt ")


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path):
    result = CliRunner().invoke(cli, ["status", "--index", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: no index at {tmp_path / 'none'}/: build one with 'searchidx index CONTENT_DIR'"
    )
    result = CliRunner().invoke(cli, ["index", "--index", str(tmp_path / "none")])
    assert result.exit_code == 1 and "no content folder is known" in result.output


def test_cli_sample_is_deterministic(tmp_path: Path):
    run("sample", str(tmp_path / "a"), "--count", "20")
    run("sample", str(tmp_path / "b"), "--count", "20")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.*"))
    assert files_a == files_b and len(files_a) == 21
    assert all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a
    )


def test_cli_query_json_is_the_service_result(sample_store):
    from searchidx.request import SearchRequest
    from searchidx.service import SearchService

    index = ("--index", str(sample_store.location))
    result = run("query", "microsoft", "--provider", "Forbes", "--json", *index)
    assert result.exit_code == 0
    printed = json.loads(result.output)
    service = SearchService(sample_store)
    expected = service.search(
        SearchRequest(text="microsoft", filters={"provider": ("Forbes",)})
    ).to_dict()
    service.close()
    printed.pop("took_ms"), expected.pop("took_ms")
    assert printed == expected
    assert printed["total"] > 0 and "secured" not in result.output


def test_cli_query_prints_hits_facets_and_the_total(sample_store):
    index = ("--index", str(sample_store.location))
    result = run("query", "cloud", "--facets", "--limit", "2", "--sort", "newest", *index)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert re.match(
        r"\d+ results for 'cloud' \(\d+\.\d ms\) - page 1 of \d+, sorted by newest", lines[0]
    )
    assert lines[2].startswith("1. ") and "cloud" in "\n".join(lines[2:6]).lower()
    assert " UTC · quality " in lines[3] or " UTC · no quality" in lines[3]
    assert any(line.startswith("provider: ") for line in lines)
    assert "\x1b[" not in result.output and "<mark" not in result.output


def test_cli_query_filters_by_every_option(sample_store):
    args = ["query", "--json", "--index", str(sample_store.location)]
    args += ["--topic", "AI", "--category", "news", "--type", "article", "--unpublished"]
    args += ["--from", "2019", "--to", "2024-06-30", "--min-quality", "10", "--max-quality", "150"]
    args += ["--page", "1", "--limit", "5"]
    printed = json.loads(run(*args).output)
    assert printed["filters"] == {
        "topic": ["AI"],
        "category": ["news"],
        "type": ["article"],
        "published": ["false"],
    }
    assert (printed["from"], printed["to"]) == (
        "2019-01-01T00:00:00Z",
        "2024-06-30T23:59:59.999999Z",
    )
    for hit in printed["hits"]:
        assert "AI" in hit["topics"] and hit["published"] is False
        assert 10 <= hit["quality"] <= 150 and "2019" <= hit["published_at"][:4] <= "2024"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (['"unclosed', "--strict"], 'unbalanced quote: close the phrase with a second "'),
        (["x", "--from", "yesterday"], "'yesterday' is not a date"),
        (["x", "--page", "0"], "page must be 1 or more"),
        (["x", "--from", "2024", "--to", "2023"], "start date is after the end date"),
    ],
)
def test_cli_query_errors_go_to_stderr(sample_store, args, message):
    result = CliRunner().invoke(cli, ["query", *args, "--index", str(sample_store.location)])
    assert result.exit_code != 0 and message in result.stderr and "Traceback" not in result.output


def run_on_terminal(*args: str, no_color: str = "") -> bytes:
    """Run the real ``searchidx`` on a pseudo-terminal and return what it printed."""
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    if no_color:
        env["NO_COLOR"] = no_color
    command = [sys.executable, "-m", "searchidx.cli", *args]
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the command
        os.execvpe(command[0], command, env)
    output = b""
    with contextlib.suppress(OSError):  # EIO once the child has gone
        while chunk := os.read(fd, 4096):
            output += chunk
    os.waitpid(pid, 0)
    return output


@pytest.mark.parametrize(("no_color", "coloured"), [("", True), ("1", False)])
def test_cli_query_colours_only_on_a_terminal_without_no_color(sample_store, no_color, coloured):
    output = run_on_terminal(
        "query", "cloud", "--limit", "1", "--index", str(sample_store.location), no_color=no_color
    )
    assert b"cloud" in output.lower()
    assert (b"\x1b[" in output) is coloured


def test_cli_index_shows_a_progress_bar_on_a_terminal(content: Path, tmp_path: Path):
    output = run_on_terminal("index", str(content), "--index", str(tmp_path / "ix"))
    assert b"Indexing" in output and b"100%" in output
    assert f"{SAMPLE_COUNT + 1:,} added".encode() in output
