"""The ``searchidx`` command: thin shells over the library, with clear errors and exit codes."""

from __future__ import annotations

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
