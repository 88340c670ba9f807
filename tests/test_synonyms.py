"""Synonyms: a file named at index time, kept with the index, expanding every query the same
way on the page, the API and the terminal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from searchidx import indexer, synonyms
from searchidx.cli import cli
from searchidx.marks import to_html
from searchidx.querylang import parse_query
from searchidx.request import SearchRequest
from searchidx.service import SearchService
from searchidx.snapshot import IndexSnapshot
from searchidx.store import IndexStore
from searchidx.web.app import create_app
from tests.conftest import write_article
from tests.test_search_fastpaths import whoosh_ranking

ARTICLES = {
    "lagos.md": ("Coronavirus cases rise in Lagos", "Clinics see more patients each week."),
    "vaccine.md": ("Covid vaccine rollout widens", "Pharmacies join the campaign."),
    "oslo.md": ("SARS-CoV-2 variant sequenced in Oslo", "A lab reads its genome."),
    "subway.md": ("NYC subway fares rise", "Riders pay more from March."),
    "parks.md": ("New York City parks reopen", "Lawns and playgrounds open again."),
    "walls.md": ("City of York opens new museum", "The walls get a visitor centre."),
    "budget.md": ("Budget talks stall", "Ministers meet again next week."),
}
SYNONYMS = """# health
covid, coronavirus, sars-cov-2

nyc => new york city
"""


def paths(result) -> set[str]:
    return {hit.article.path for hit in result.hits}


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def content(tmp_path: Path) -> Path:
    folder = tmp_path / "news"
    for number, (path, (title, body)) in enumerate(ARTICLES.items()):
        front_matter = f'title: "{title}"\npublishedDateTime: 2030-01-{number + 1:02d}'
        write_article(folder, path, front_matter, body)
    return folder


@pytest.fixture
def synonyms_file(tmp_path: Path) -> Path:
    path = tmp_path / "synonyms.txt"
    path.write_text(SYNONYMS)
    return path


@pytest.fixture
def store(tmp_path: Path, content: Path, synonyms_file: Path) -> IndexStore:
    store = IndexStore(tmp_path / "index")
    result = invoke(
        "index", str(content), "--synonyms", str(synonyms_file), "--index", str(store.location)
    )
    assert result.exit_code == 0, result.output
    return store


@pytest.fixture
def service(store: IndexStore):
    service = SearchService(store)
    yield service
    service.close()


def search(service: SearchService, text: str):
    return service.search(SearchRequest(text=text))


@pytest.mark.parametrize("text", ["covid", "Coronaviruses", "sars-cov-2", "COVID"])
def test_synonyms_two_way_group_finds_every_member(service, text):
    assert paths(search(service, text)) == {"lagos.md", "vaccine.md", "oslo.md"}


def test_synonyms_one_way_rule_expands_only_its_left_side(service):
    assert paths(search(service, "nyc")) == {"subway.md", "parks.md"}
    assert paths(search(service, '"new york city"')) == {"parks.md"}
    assert paths(search(service, "new york city")) == {"parks.md", "walls.md"}


def test_synonyms_multi_word_member_is_a_phrase(service):
    # "City of York opens new museum" has new, york and city, but not side by side.
    assert "walls.md" not in paths(search(service, "nyc"))
    assert paths(search(service, "nyc subway")) == {"subway.md"}


def test_synonyms_highlighting_marks_the_synonym_that_matched(service):
    titles = {hit.article.path: to_html(hit.marked_title) for hit in search(service, "covid").hits}
    assert '<mark class="match term0">Coronavirus</mark> cases' in titles["lagos.md"]
    assert "<mark" in titles["oslo.md"] and ">SARS</mark>" in titles["oslo.md"]
    assert ">Covid</mark>" in titles["vaccine.md"]
    parks = {hit.article.path: hit for hit in search(service, "nyc").hits}["parks.md"]
    assert ">New</mark>" in to_html(parks.marked_title) and ">City</mark>" in to_html(
        parks.marked_title
    )


def test_synonyms_work_with_operators_and_fields(service):
    assert paths(search(service, "title:coronavirus -lagos")) == {"vaccine.md", "oslo.md"}
    assert paths(search(service, "budget OR covid")) == {
        "budget.md",
        "lagos.md",
        "vaccine.md",
        "oslo.md",
    }


def test_synonyms_zero_result_relaxation_keeps_the_expansion(service):
    result = search(service, "covid oslo walrus")
    assert result.retry == "relaxed"
    assert result.relaxed is not None and result.relaxed.dropped == ("walrus",)
    assert paths(result) == {"oslo.md"}


def test_synonyms_word_cap_counts_the_words_typed(service):
    filler = [f"w{chr(97 + a)}{chr(97 + b)}" for a in range(4) for b in range(8)][:31]
    # 32 words typed: within the cap, though the expansion searches 36.
    result = search(service, " ".join(["covid", *filler]))
    assert paths(result) == {"lagos.md", "vaccine.md", "oslo.md"}  # the fillers dropped


def test_synonyms_expanded_query_matches_and_scores_as_whoosh(store: IndexStore):
    index = store.open_index()
    try:
        with index.searcher() as searcher, synonyms.applied(synonyms.parse(SYNONYMS)):
            snapshot = IndexSnapshot(searcher)
            for text in ("covid", "nyc subway", "coronavirus OR budget", "-covid"):
                parsed = parse_query(text)
                assert parsed is not None
                matches = snapshot.match(parsed, scored=True)
                expected = set(searcher.docs_for_query(parsed))
                assert set(np.flatnonzero(matches.mask).tolist()) == expected, text
                if matches.scores is not None:
                    mine = sorted(
                        ((int(d), matches.scores[d]) for d in np.flatnonzero(matches.mask)),
                        key=lambda item: (-item[1], item[0]),
                    )
                    theirs = whoosh_ranking(parsed, searcher, len(mine))
                    assert [d for d, _ in mine] == [d for d, _ in theirs], text
                    assert np.allclose([s for _, s in mine], [s for _, s in theirs])
    finally:
        index.close()


def test_synonyms_are_kept_with_the_index_for_service_api_and_terminal(store: IndexStore):
    expected = {"lagos.md", "vaccine.md", "oslo.md"}
    service = SearchService(store)
    try:
        assert paths(search(service, "coronavirus")) == expected
    finally:
        service.close()
    app = create_app(store, config={"TESTING": True})
    try:
        answer = app.test_client().get("/api/search", query_string={"q": "coronavirus"})
        assert answer.status_code == 200
        assert {hit["path"] for hit in answer.get_json()["hits"]} == expected
    finally:
        app.extensions["searchidx"].close()
    printed = invoke("query", "coronavirus", "--json", "--index", str(store.location))
    assert printed.exit_code == 0, printed.output
    assert {hit["path"] for hit in json.loads(printed.output)["hits"]} == expected


def test_synonyms_a_later_index_replaces_them_and_rebuild_keeps_them(
    store: IndexStore, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr("searchidx.service.REFRESH_INTERVAL", 0)
    service = SearchService(store)
    try:
        assert paths(search(service, "covid")) == {"lagos.md", "vaccine.md", "oslo.md"}
        other = tmp_path / "other.txt"
        other.write_text("covid, budget\n")
        location = str(store.location)
        assert invoke("index", "--synonyms", str(other), "--index", location).exit_code == 0
        assert paths(search(service, "covid")) == {"vaccine.md", "budget.md"}  # no rebuild
        assert invoke("rebuild", "--index", location).exit_code == 0
        assert store.read_synonyms() == "covid, budget\n"
        assert invoke("index", "--no-synonyms", "--index", location).exit_code == 0
        assert store.read_synonyms() == ""
        assert paths(search(service, "covid")) == {"vaccine.md"}
    finally:
        service.close()


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("covid, coronavirus\n\n# note\ncovid,,sars\n", 4, "an empty member"),
        ("covid\n", 1, "a group needs two different words"),
        ("a => b => c\n", 1, "more than one '=>'"),
        ("ok, fine\n => york\n", 2, "an empty member"),
        ("covid, the\n", 1, "'the' has no searchable word"),
        ("covid, corona*\n", 1, "'corona*' has query syntax"),
    ],
)
def test_synonyms_malformed_line_is_an_error_with_its_line_and_changes_nothing(
    store: IndexStore, tmp_path: Path, text: str, line: int, problem: str
):
    bad = tmp_path / "bad.txt"
    bad.write_text(text)
    generation = store.generation()
    result = invoke("index", "--synonyms", str(bad), "--index", str(store.location))
    assert result.exit_code == 1
    assert f"{bad}:{line}: " in result.output and problem in result.output
    assert "nyc => new york city" in result.output  # how to write it
    assert "Traceback" not in result.output
    assert store.generation() == generation and store.read_synonyms() == SYNONYMS


def test_synonyms_file_that_is_not_utf8_is_an_error(store: IndexStore, tmp_path: Path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café, coffee\n".encode("latin-1"))
    result = invoke("rebuild", "--synonyms", str(bad), "--index", str(store.location))
    assert result.exit_code == 1 and "not UTF-8" in result.output


def test_synonyms_library_sync_without_synonyms_keeps_them(store: IndexStore, content: Path):
    write_article(content, "more.md", 'title: "Coronavirus update"\npublishedDateTime: 2030-02-01')
    indexer.sync(store)
    service = SearchService(store)
    try:
        assert "more.md" in paths(search(service, "covid"))
    finally:
        service.close()
