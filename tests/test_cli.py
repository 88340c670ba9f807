"""The ``searchidx`` command: thin shells over the library, with clear errors and exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner

from searchidx import cli as cli_module
from searchidx import console
from searchidx.cli import EXIT_SKIPPED, cli
from searchidx.facets import FILTERS, FacetSpec, Kind
from searchidx.request import SearchRequest
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
        (["quality:abc", "--strict"], "'abc' is not a quality in quality:abc (quality: takes"),
        (["x", "--from", "yesterday"], "'yesterday' is not a date"),
        (["x", "--page", "0"], "page must be 1 or more"),
        (["x", "--from", "2024", "--to", "2023"], "start date is after the end date"),
    ],
)
def test_cli_query_errors_go_to_stderr(sample_store, args, message):
    result = CliRunner().invoke(cli, ["query", *args, "--index", str(sample_store.location)])
    assert result.exit_code != 0 and message in result.stderr and "Traceback" not in result.output


# The same bad value, given as an option and as a URL parameter: the same message (the CLI's
# is prefixed with the option's name, by click).
FIFTY_ONE_TOPICS = [f"t{n}" for n in range(51)]
SAME_MESSAGES = [
    (["--page", "1_000"], "page=1_000", "page must be a whole number, not '1_000'"),
    (["--page", "+2"], "page=%2B2", "page must be a whole number, not '+2'"),
    (["--page", "0"], "page=0", "page must be 1 or more, not 0"),
    (["--page", "10001"], "page=10001", "page 10,001 is beyond the first 10,000 results"),
    (["--limit", "0"], "per_page=0", "page size must be between 1 and 100, not 0"),
    (["--min-quality", "\u0663"], "min_quality=%D9%A3", "min_quality must be a whole number"),
    (["--max-quality", "1e3"], "max_quality=1e3", "max_quality must be a whole number"),
    (
        ["--min-quality", "90", "--max-quality", "10"],
        "min_quality=90&max_quality=10",
        "the minimum quality is above the maximum",
    ),
    (["--sort", "top"], "sort=top", "unknown sort 'top'; use one of best, relevance, newest"),
    (["--sort", "NEWEST"], "sort=NEWEST", "unknown sort 'NEWEST'"),
    (["--half-life", "0"], "half_life=0", "half_life must be between 0.01 and 36,500 days"),
    (["--from", "20220624"], "from=20220624", "'20220624' is not a date"),
    (["--from", "2023", "--to", "2022"], "from=2023&to=2022", "the start date is after the end"),
    (["--topic", "x" * 201], "topic=" + "x" * 201, "a topic value is longer than 200 characters"),
    (
        [arg for topic in FIFTY_ONE_TOPICS for arg in ("--topic", topic)],
        urlencode([("topic", topic) for topic in FIFTY_ONE_TOPICS]),
        "more than 50 values for topic",
    ),
    (["a" * 1001], "q=" + "a" * 1001, "the query is longer than 1,000 characters; shorten it"),
]


@pytest.mark.parametrize(("args", "query", "message"), SAME_MESSAGES)
def test_cli_query_refuses_a_bad_value_as_the_api_does(sample_store, client, args, query, message):
    response = client.get(f"/api/search?{query}")
    assert response.status_code == 400 and message in response.get_json()["error"]
    result = CliRunner().invoke(cli, ["query", *args, "--index", str(sample_store.location)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert response.get_json()["error"] in result.stderr


def as_options_and_query(facet: FacetSpec, value: str) -> tuple[list[str], str]:
    """A filter as options and as a query string; a value given twice (spaced, then in another
    case), which both read as one."""
    if facet.kind is Kind.BOOLEAN:
        flag = f"--{facet.name}" if value == "true" else f"--un{facet.name}"
        return [flag], f"{facet.name}={value}"
    given = [f" {value} ", value.swapcase()]
    options = [arg for item in given for arg in (f"--{facet.name}", item)]
    return options, urlencode([(facet.name, item) for item in given])


@pytest.mark.parametrize("facet", FILTERS, ids=lambda facet: facet.name)
def test_cli_query_filters_on_every_facet_as_the_api_does(sample_store, client, service, facet):
    value = service.search(SearchRequest()).facet(facet.name).values[-1].value
    options, query = as_options_and_query(facet, value)
    index = str(sample_store.location)
    printed = json.loads(run("query", "--json", *options, "--index", index).output)
    answered = client.get(f"/api/search?{query}").get_json()
    printed.pop("took_ms"), answered.pop("took_ms")
    assert printed == answered
    assert printed["filters"] == {facet.name: [value]}
    assert 0 < printed["total"] < SAMPLE_COUNT


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


#: Modules a search from the command line has no use for (the web server, the file watcher,
#: the indexer, its YAML parser and its worker processes, Whoosh's writer, which the layout
#: self-test would import, the cluster engine and its client, similar articles, the sample
#: generator, the query log).
NOT_FOR_A_QUERY = (
    "flask",
    "waitress",
    "watchfiles",
    "yaml",
    "multiprocessing",
    "opensearchpy",
    "searchidx.indexer",
    "searchidx.workers",
    "searchidx.parsing",
    "searchidx.content",
    "searchidx.export",
    "searchidx.cluster",
    "searchidx.cluster_search",
    "searchidx.cluster_sync",
    "searchidx.similar",
    "searchidx.sample",
    "searchidx.querylog",
    "whoosh.writing",
    "markupsafe",
    "searchidx.web.app",
)


def _imported_by(args: list[str]) -> set[str]:
    """The modules a fresh interpreter has imported once ``searchidx ARGS`` has run."""
    script = (
        "import sys\nfrom searchidx.cli import cli\n"
        f"try:\n    cli({args!r})\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    return set(done.stderr.split())


def test_cli_query_of_a_damaged_index_says_to_rebuild_it(damaged_index: Path):
    """A term index whose table does not read: one line saying so and what to do, not a
    traceback."""
    result = CliRunner().invoke(cli, ["query", "cloud", "--index", str(damaged_index)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.stderr.startswith("Error: the index is damaged: a term index's table")
    assert result.stderr.rstrip().endswith(
        "run 'searchidx rebuild' to build it again from the articles"
    )


def test_cli_help_imports_no_numpy_or_whoosh():
    imported = _imported_by(["--help"])
    assert "click" in imported  # the listing is the real one
    assert not {"numpy", "whoosh", *NOT_FOR_A_QUERY} & imported


def test_cli_query_imports_only_what_a_search_uses(sample_store):
    imported = _imported_by(["query", "cloud", "--facets", "--index", str(sample_store.location)])
    assert {"numpy", "whoosh.searching", "searchidx.service"} <= imported  # it searched
    assert not set(NOT_FOR_A_QUERY) & imported


def _ending(args: list[str]) -> subprocess.CompletedProcess[str]:
    """The console script's ``main`` running ``searchidx ARGS`` in a fresh interpreter, which
    notes on stderr whether the cyclic garbage collector was on when the process ended, and
    how it ended: at once (``os._exit``) or through the interpreter's teardown; before an
    ending at once, on Linux, the threads the process has (``threads N``: numpy's OpenBLAS
    starts its own, which Python does not list)."""
    script = (
        "import atexit, gc, os, sys\nfrom searchidx.console import main\n"
        "exit_now = os._exit\n"
        "def ending(status):\n"
        "    if os.path.isdir('/proc/self/task'):\n"
        "        print('threads', len(os.listdir('/proc/self/task')), file=sys.stderr)\n"
        "    print('ended at once, collector', gc.isenabled(), file=sys.stderr)\n"
        "    exit_now(status)\n"
        "os._exit = ending\n"
        "atexit.register(lambda: print('torn down, collector', gc.isenabled(), file=sys.stderr))\n"
        f"sys.argv = ['searchidx', *{args!r}]\n"
        "main()\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def test_cli_main_ends_a_search_at_once_without_the_garbage_collector(sample_store, tmp_path):
    index = str(sample_store.location)
    found = _ending(["query", "cloud", "--index", index])
    assert found.returncode == 0
    assert "results for 'cloud'" in found.stdout
    assert found.stderr.splitlines()[-1] == "ended at once, collector False"
    failed = _ending(["query", "cloud", "--index", str(tmp_path / "none")])
    assert failed.returncode == 1
    assert failed.stderr.startswith("Error: no index at ")
    assert failed.stderr.splitlines()[-1] == "ended at once, collector False"
    status = _ending(["status", "--index", index])  # not a one-shot
    assert status.returncode == 0
    assert status.stderr.splitlines()[-1] == "torn down, collector True"


def test_cli_main_shows_a_one_shot_commands_usage_through_its_deferred_modules(sample_store):
    bad = _ending(["query", "cloud", "--sort", "bogus", "--index", str(sample_store.location)])
    assert bad.returncode == 2
    assert bad.stderr.startswith("Usage: searchidx query [OPTIONS] [TEXT]\n")
    assert "Invalid value for '--sort': unknown sort 'bogus'" in bad.stderr
    helped = _ending(["query", "--help"])
    assert helped.returncode == 0
    assert "Search the index for TEXT" in helped.stdout


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or len(os.sched_getaffinity(0)) < 2,
    reason="counts threads in Linux's /proc; OpenBLAS starts none on one core",
)
def test_cli_main_searches_without_numpys_thread_pool(sample_store):
    found = _ending(["query", "cloud", "--index", str(sample_store.location)])
    assert found.returncode == 0
    assert "threads 1" in found.stderr.splitlines()


def test_console_imports_no_command_line_before_it_set_the_process_up():
    script = "import sys, searchidx.console\nprint(' '.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    imported = set(done.stdout.split())
    assert "searchidx.console" in imported
    assert not {"click", "searchidx.cli", "searchidx.request", "numpy"} & imported
    assert cli_module.main is console.main  # what the console script of an older install calls


def test_console_search_leaves_whooshs_unused_modules_unimported(sample_store):
    args = ["searchidx", "query", "cloud OR runs", "--index", str(sample_store.location)]
    script = (
        "import os, sys\nfrom searchidx.console import main\nfrom searchidx.deferred import "
        "StandIn, UNUSED_BY_A_SEARCH\nexit_now = os._exit\n"
        "def ending(status):\n"
        "    print(all(isinstance(sys.modules[name], StandIn) for name in UNUSED_BY_A_SEARCH))\n"
        "    exit_now(status)\n"
        "os._exit = ending\n"
        f"sys.argv = {args!r}\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "results for" in done.stdout and done.stdout.splitlines()[-1] == "True"


def test_cli_runs_as_python_m_searchidx():
    done = subprocess.run(
        [sys.executable, "-m", "searchidx", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: searchidx ")
