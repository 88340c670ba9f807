"""The benchmark harness runs end to end on a tiny collection, so it cannot rot.

Nothing here is timed: benchmarks are run by hand (``make bench``). tantivy is used when the
``bench`` extra is installed and skipped otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import corpus, report, run, web
from bench.engines import ENGINES
from bench.hostile import ISSUE_URLS
from bench.queries import KINDS, make_queries
from bench.web import url_for
from searchidx.content import scan_content
from searchidx.store import IndexStore


def test_the_harness_runs_and_the_engines_agree(tmp_path: Path, capsys: pytest.CaptureFixture):
    engines = [name for name, engine in ENGINES.items() if engine.available()]
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
        assert engine["sync"]["documents"] == 201  # 2 changed, 1 deleted, 1 added
        assert set(engine["query"]["kinds"]) == set(KINDS)
    assert all(check["ok"] for check in size["agreement"].values())
    printed = capsys.readouterr().out
    assert "relevance p50 / p95 / p99 (ms)" in printed and "ratio fts5" in printed


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
    assert report._server_errors(loaded["hostile_statuses"]) == 0
