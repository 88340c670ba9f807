"""The benchmark harness runs end to end on a tiny collection, so it cannot rot.

Nothing here is timed: benchmarks are run by hand (``make bench``). tantivy is used when the
``bench`` extra is installed and skipped otherwise.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import corpus, report, run, terminal, web
from bench.engines import ENGINES
from bench.engines.fts5 import Fts5Engine, Plan
from bench.hostile import ISSUE_URLS
from bench.queries import KINDS, BenchQuery, make_queries
from bench.web import url_for
from searchidx.content import scan_content
from searchidx.parsing import read_article
from searchidx.sample import write_sample
from searchidx.store import IndexStore


def test_the_harness_runs_and_the_engines_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    engines = [name for name, engine in ENGINES.items() if engine.available()]
    monkeypatch.setattr(terminal, "HELP_RUNS", 1)  # one `searchidx --help` process, not ten
    out = tmp_path / "result.json"

    status = run.main(
        [
            "--sizes",
            "200",
            "--queries",
            "10",
            "--engines",
            ",".join(engines),
            "--no-web",
            "--terminal-queries",
            "1",
            "--workdir",
            str(tmp_path / "work"),
            "--out",
            str(out),
        ]
    )

    assert status == 0, capsys.readouterr().out
    result = json.loads(out.read_text())
    size = result["runs"]["200"]
    assert set(size["engines"]) == set(engines)
    for name in engines:
        engine = size["engines"][name]
        assert engine["build"]["documents"] == 201
        assert engine["build"]["cpu_seconds"] > 0
        assert engine["sync"]["documents"] == 201  # 2 changed, 1 deleted, 1 added
        assert (engine["noop_sync"]["upserted"], engine["noop_sync"]["removed"]) == (0, 0)
        assert set(engine["query"]["kinds"]) == set(KINDS)
    assert all(check["ok"] for check in size["agreement"].values())
    assert size["terminal"]["query"]["n"] == len(KINDS)  # one of each kind, each succeeded
    assert size["terminal"]["help"]["p50"] > 0 and size["terminal"]["query_peak_rss_bytes"] > 0
    printed = capsys.readouterr().out
    assert "relevance p50 / p95 / p99 (ms)" in printed and "best peer" in printed
    assert "searchidx query: p50" in printed
    assert "sync, nothing changed (s)" in printed


def _table_rows(run: str, **figures: object) -> dict[str, str]:
    """The table's rows (label: last column) for a size with one web run of ``figures``."""
    served = {
        "clients": 16,
        "workers": 2,
        "rps": 200.0,
        "latency": {"p50": 40.0, "p95": 90.0, "p99": 120.0},
        **figures,
    }
    printed = report.table({"size": 10, "engines": {"searchidx": {}}, run: served})
    return {line.rsplit(maxsplit=1)[0]: line.split()[-1] for line in printed.splitlines()}


def test_table_shows_a_server_process_memory_with_and_without_its_mapped_files():
    rows = _table_rows(
        "web",
        largest_process_peak_bytes=500 * 1024**2,
        largest_process_anonymous_bytes=150 * 1024**2,
        first_answer_ms=900.0,
        first_query_ms=30.0,
    )

    assert rows["web API, result cache: largest process, peak RSS (MiB)"] == "500"
    anonymous = "web API, result cache: largest process, anonymous: RSS without mapped files (MiB)"
    assert rows[anonymous] == "150"


def test_an_edit_is_reverted_exactly(tmp_path: Path):
    folder = corpus.collection(tmp_path, 300, seed=3)
    before = {path: (folder / path).read_bytes() for path in sorted(scan_content(folder))}
    stats = {path: (folder / path).stat().st_mtime_ns for path in before}

    edit = corpus.apply_edit(folder, seed=3)
    assert edit.summary == {"changed": 3, "deleted": 1, "added": 1}
    corpus.revert_edit(folder, edit)

    after = {path: (folder / path).read_bytes() for path in sorted(scan_content(folder))}
    assert after == before
    assert {path: (folder / path).stat().st_mtime_ns for path in after} == stats


def test_queries_are_seeded_and_web_urls_carry_every_filter():
    first, again = make_queries(20, seed=5), make_queries(20, seed=5)
    assert first == again and set(first) == set(KINDS)
    two = first["two_filters"][0]
    url = url_for(two)
    assert url.startswith("/api/search?") and "topic=" in url and "provider=" in url
    dated = url_for(first["date_range"][0])
    assert "from=" in dated and "to=" in dated


def test_peer_reader_reads_the_fields_searchidx_parses(tmp_path: Path):
    folder = tmp_path / "articles"
    write_sample(folder, 60, seed=4, vocabulary=2000)

    for path in sorted(scan_content(folder)):
        doc = corpus.read_doc(folder, path)
        article = read_article(folder, path)
        assert doc is not None
        assert (doc.title, doc.excerpt, doc.body, doc.topics, doc.date) == (
            article.title,
            article.excerpt,
            article.body,
            article.topics,
            article.published_at,
        )
        assert (doc.provider_name, doc.provider_domain) == (
            article.provider.name,
            article.provider.domain,
        )
        assert (doc.category, doc.type, doc.published, doc.quality) == (
            article.category.lower(),
            article.type.lower(),
            article.published,
            article.quality,
        )


def test_peer_reader_in_processes_reads_the_same_docs_in_order(tmp_path: Path):
    folder = tmp_path / "articles"
    write_sample(folder, 2 * corpus.CHUNK + 10, seed=5)
    (folder / "broken.md").write_text("no front matter\n")
    paths = sorted(scan_content(folder))

    with corpus.read_docs(folder, paths, processes=1) as docs:
        here = list(docs)
    with corpus.read_docs(folder, paths, processes=2) as docs:
        in_processes = list(docs)

    assert in_processes == here
    assert [doc.path for doc in here] == [path for path in paths if path != "broken.md"]


def test_sample_zipf_vocabulary_gives_many_words_with_skewed_frequencies(tmp_path: Path):
    folder = tmp_path / "articles"
    write_sample(folder, 300, seed=6, vocabulary=5000)
    docs = [corpus.read_doc(folder, path) for path in sorted(scan_content(folder))]

    frequency = Counter(
        word for doc in docs for word in set(re.findall(r"[a-z]+", doc.body.lower()))
    )
    title_words = {word for doc in docs for word in doc.title.lower().split()}

    assert len(title_words) > 250  # the template titles have about 90 words in all
    counts = sorted(frequency.values(), reverse=True)
    assert len(counts) > 3000
    assert counts[0] > 0.3 * len(docs) and counts[len(counts) // 2] < 0.02 * len(docs)


def _article_file(folder: Path, name: str, published: str) -> None:
    (folder / name).write_text(
        f'---\ntitle: "Storage {name}"\npublishedDateTime: {published}\n---\n\nStorage news.\n'
    )


def test_fts5_rowids_follow_dates_and_equal_dates_follow_paths(tmp_path: Path):
    folder = tmp_path / "articles"
    folder.mkdir()
    for name, published in [
        ("d.md", "2021-03-01T10:00:00Z"),
        ("b.md", "2021-03-01T10:00:00Z"),
        ("a.md", "2020-01-01T00:00:00Z"),
        ("c.md", "2022-07-01T00:00:00.5Z"),
        ("e.md", "1969-12-31T23:59:59.5Z"),
    ]:
        _article_file(folder, name, published)
    engine = Fts5Engine(tmp_path / "index")
    engine.build(folder)
    _article_file(folder, "f.md", "2021-03-01T10:00:00Z")  # sorts after b and d
    _article_file(folder, "a.md", "2023-01-01T00:00:00Z")  # now the newest
    engine.sync(folder)

    engine.open()
    newest = engine.search(BenchQuery("newest", ("storage",), sort="newest"))
    dated = engine.search(
        BenchQuery(
            "date_range",
            date_from=datetime(2021, 3, 1, 10, tzinfo=UTC),
            date_to=datetime(2022, 7, 1, tzinfo=UTC),
        )
    )
    engine.close()

    assert newest.ids == ["a.md", "c.md", "b.md", "d.md", "f.md", "e.md"]
    assert (dated.total, dated.ids) == (3, ["b.md", "d.md", "f.md"])


def test_fts5_plans_walk_rowids_instead_of_sorting(tmp_path: Path):
    folder = corpus.collection(tmp_path, 50, seed=8)
    engine = Fts5Engine(tmp_path / "index")
    engine.build(folder)
    engine.open()
    assert engine.db is not None
    week = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 8, tzinfo=UTC))

    def plan(**request) -> str:
        sql, params = Plan(BenchQuery(**request)).page()
        return " | ".join(row[3] for row in engine.db.execute(f"EXPLAIN QUERY PLAN {sql}", params))

    newest_text = plan(kind="newest", terms=("analysts",), sort="newest")
    newest = plan(kind="newest", sort="newest")
    dated = plan(kind="date_range", date_from=week[0], date_to=week[1])
    engine.close()

    assert "TEMP B-TREE" not in newest_text and "TEMP B-TREE" not in newest
    assert "rowid>? AND rowid<?" in dated and "TEMP B-TREE" not in dated


def test_measure_hostile_times_each_request_and_ordinary_clients_under_hostile_load(
    sample_store: IndexStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(web, "WARMUP_SECONDS", 0.5)
    monkeypatch.setattr(web, "HOSTILE_REQUESTS", 20)

    found = web.measure_hostile(
        sample_store.location, make_queries(3, 1), make_queries(2, 2), 1.0, tmp_path / "log", 1
    )

    assert found["requests"] == len(ISSUE_URLS) + 20
    assert report._server_errors(found["statuses"]) == 0
    assert found["worst_ms"] >= found["latency"]["p50"] > 0
    loaded = found["under_load"]
    assert loaded["ordinary_errors"] == 0 and loaded["ordinary_latency"]["n"] > 0
    # beside ordinary clients, a hostile search may be refused for now (the lane is busy: the
    # documented 429) or stopped at its time budget (the budget's 503), never another 5xx or
    # no answer
    assert set(loaded["hostile_statuses"]) <= {"200", "400", "429", "503"}


def test_measure_web_reports_the_largest_server_process(
    sample_store: IndexStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(web, "WARMUP_SECONDS", 0.2)

    found = web.measure(
        sample_store.location, make_queries(3, 1), make_queries(2, 2), 2, 0.5, tmp_path / "log", 2
    )

    assert found["requests"] > 0 and found["tracebacks"] == 0
    # a worker holds Python, Flask and the index's arrays: tens of MiB, never a few KiB
    assert 20 * 1024**2 < found["largest_process_peak_bytes"] < 2 * 1024**3
    # of its own (the mapped index aside): the interpreter's heap at least, never more than all
    own = found["largest_process_anonymous_bytes"]
    assert 10 * 1024**2 < own <= found["largest_process_peak_bytes"]
    # the workers' CPU over the timed load, per answer: a search and its JSON cost some, and
    # no answer takes a whole second of CPU at this size
    assert 0 < found["server_cpu_ms_per_request"] < 1000


def test_table_shows_the_server_cpu_per_request():
    rows = _table_rows("web_uncached", server_cpu_ms_per_request=6.034)

    cpu = "web API, every request searched: server CPU per request, all processes (ms)"
    assert rows[cpu] == "6.03"


def test_table_shows_the_hostile_requests_statuses_under_load():
    hostile = {
        "statuses": {"200": 10, "400": 5},
        "worst_ms": 90.0,
        "latency": {"p50": 5.0, "p95": 40.0, "p99": 80.0},
        "under_load": {
            "hostile_clients": 4,
            "ordinary_clients": 12,
            "hostile_statuses": {"200": 7, "429": 3, "503": 2},
            "ordinary_errors": 0,
            "ordinary_latency": {"p50": 50.0, "p95": 90.0, "p99": 120.0},
        },
    }
    run = {"size": 10, "engines": {"searchidx": {}}, "hostile": hostile}

    assert "hostile requests under load: 200: 7, 429: 3, 503: 2" in report.table(run)
