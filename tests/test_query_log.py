"""The query log: what the page and the API record, rotation under several writers, and the
summary ``searchidx stats`` prints."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.request import urlopen

import pytest
from click.testing import CliRunner

from searchidx.cli import cli
from searchidx.querylog import LoggedSearch, QueryLog, read_log, summarise
from searchidx.store import IndexStore
from searchidx.web.app import create_app
from tests.web_helpers import serving

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def logged(
    query: str, hits: int = 3, ms: float = 2.0, page: int = 1, ago_h: float = 1
) -> LoggedSearch:
    return LoggedSearch(NOW - timedelta(hours=ago_h), query, {}, "relevance", page, hits, ms)


def test_query_log_records_page_and_api_searches_but_not_the_feed(
    sample_store: IndexStore, tmp_path: Path
):
    log = QueryLog(tmp_path / "queries.log")
    app = create_app(sample_store, config={"TESTING": True}, query_log=log)
    client = app.test_client()
    try:
        assert client.get("/?q=microsoft&topic=Microsoft+AI&sort=newest").status_code == 200
        assert client.get("/api/search?q=zzqqxx&min_quality=3").status_code == 200
        assert client.get("/api/search?q=%22unclosed").status_code in (200, 400)
        assert client.get("/feed.atom?q=microsoft").status_code == 200
    finally:
        app.extensions["searchidx"].close()
    searches, unreadable = read_log(log.path)
    assert unreadable == 0
    assert [s.query for s in searches][:2] == ["microsoft", "zzqqxx"]
    first, second = searches[:2]
    assert first.filters == {"topic": ["Microsoft AI"]}
    assert first.sort == "newest"
    assert first.hits > 0 and first.ms >= 0
    assert second.filters == {"min_quality": ["3"]}
    assert second.hits == 0
    assert "microsoft" not in [s.query for s in searches[2:]]  # the feed is not logged


def test_query_log_records_no_address_or_header(sample_store: IndexStore, tmp_path: Path):
    log = QueryLog(tmp_path / "queries.log")
    app = create_app(sample_store, config={"TESTING": True}, query_log=log)
    try:
        app.test_client().get(
            "/api/search?q=cloud",
            headers={"Cookie": "session=secret-cookie", "User-Agent": "agent-x"},
            environ_base={"REMOTE_ADDR": "203.0.113.9"},
        )
    finally:
        app.extensions["searchidx"].close()
    text = log.path.read_text("utf-8")
    assert set(json.loads(text)) == {"at", "query", "filters", "sort", "page", "hits", "ms"}
    for secret in ("203.0.113.9", "secret-cookie", "agent-x"):
        assert secret not in text


def _append_many(path: str, writer: int, count: int) -> None:
    log = QueryLog(path, max_bytes=4096, backups=50)
    for number in range(count):
        log.append(logged(f"writer {writer} search {number}"))


def test_query_log_rotates_by_size_without_losing_lines_across_processes(tmp_path: Path):
    path = tmp_path / "queries.log"
    processes = [
        multiprocessing.get_context("fork").Process(target=_append_many, args=(str(path), n, 300))
        for n in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    searches, unreadable = read_log(path)
    assert unreadable == 0
    assert sorted(s.query for s in searches) == sorted(
        f"writer {n} search {i}" for n in range(4) for i in range(300)
    )
    rotated = sorted(tmp_path.glob("queries.log.*"))
    assert len(rotated) > 5  # 1,200 lines of ~130 bytes over 4 KiB files
    assert all(file.stat().st_size < 4096 + 4 * 200 for file in rotated)


def test_query_log_keeps_only_its_backups(tmp_path: Path):
    log = QueryLog(tmp_path / "q.log", max_bytes=500, backups=2)
    for number in range(100):
        log.append(logged(f"search {number}"))
    files = {p.name for p in tmp_path.iterdir() if p.suffix != ".lock"}
    assert {"q.log.1", "q.log.2"} <= files <= {"q.log", "q.log.1", "q.log.2"}
    searches, _ = read_log(log.path)
    assert searches[-1].query == "search 99"
    assert [s.query for s in searches] == sorted(
        (s.query for s in searches), key=lambda q: int(q.split()[1])
    )  # oldest first


def test_read_log_skips_a_line_cut_short(tmp_path: Path):
    log = QueryLog(tmp_path / "q.log")
    log.append(logged("whole"))
    with log.path.open("a", encoding="utf-8") as stream:
        stream.write('{"at": "2026-11-30T10:00:00Z", "query": "cut')
    searches, unreadable = read_log(log.path)
    assert [s.query for s in searches] == ["whole"]
    assert unreadable == 1


def test_summarise_counts_first_pages_zero_results_and_percentiles():
    searches = [
        *(logged("Cloud  Security", ms=float(ms)) for ms in range(1, 11)),
        logged("cloud security", page=2, ms=100.0),
        *(logged("zzqqxx", hits=0) for _ in range(3)),
        logged("old search", ago_h=24 * 30),
    ]
    stats = summarise(searches, since=NOW - timedelta(days=7), top=5)
    assert stats.requests == 14
    assert stats.searches == 13
    assert stats.top == [("cloud security", 10), ("zzqqxx", 3)]
    assert stats.top_zero == [("zzqqxx", 3)]
    assert stats.zero_results == 3
    assert stats.latency_ms["p50"] == 4.0  # nearest rank: 7th of 14
    assert stats.latency_ms["p99"] == 100.0


def test_stats_command_prints_a_table_and_json(tmp_path: Path):
    log = QueryLog(tmp_path / "q.log")
    now = datetime.now(UTC)
    for query, hits, ago in (("budget", 4, 1), ("budget", 4, 2), ("nothing here", 0, 3)):
        log.append(LoggedSearch(now - timedelta(hours=ago), query, {}, "relevance", 1, hits, 3.5))
    log.append(LoggedSearch(now - timedelta(days=10), "ancient", {}, "newest", 1, 0, 1.0))
    table = CliRunner().invoke(cli, ["stats", str(log.path), "--since", "7d"])
    assert table.exit_code == 0, table.output
    assert "3 searches" in table.output
    assert "2  budget" in table.output
    assert "ancient" not in table.output
    as_json = CliRunner().invoke(cli, ["stats", str(log.path), "--json", "--top", "1"])
    data = json.loads(as_json.output)
    assert data["top"] == [{"query": "budget", "count": 2}]
    assert data["top_zero_results"] == [{"query": "nothing here", "count": 1}]
    assert data["latency_ms"]["p50"] == 3.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "neither a date"),
        ([], "no query log at"),
    ],
)
def test_stats_command_errors_say_how_to_fix(tmp_path: Path, args: list[str], message: str):
    result = CliRunner().invoke(cli, ["stats", str(tmp_path / "none.log"), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_serve_query_log_records_searches_of_a_real_server(
    sample_store: IndexStore, tmp_path: Path
):
    path = tmp_path / "logs" / "queries.log"
    with serving(sample_store.location, "--query-log", str(path)) as url:
        for query in ("cloud", "cloud", "zzqqxx"):
            with urlopen(f"{url}api/search?q={query}", timeout=30) as response:
                assert response.status == 200
    result = CliRunner().invoke(cli, ["stats", str(path), "--json"])
    data = json.loads(result.output)
    assert data["searches"] == 3
    assert data["top"][0] == {"query": "cloud", "count": 2}
    assert data["top_zero_results"] == [{"query": "zzqqxx", "count": 1}]


def test_serve_query_log_in_an_unwritable_place_is_a_one_line_error(
    sample_store: IndexStore, tmp_path: Path
):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(
        cli,
        ["serve", "--index", str(sample_store.location), "--query-log", str(blocker / "q.log")],
    )
    assert result.exit_code == 1
    assert "cannot write the query log" in result.output
