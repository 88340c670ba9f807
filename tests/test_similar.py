"""Similar articles: on a real index of hand-written stories and a generated sample with
stories, through the service, the terminal, the JSON API and the page."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings

from bench import similar as bench_similar
from searchidx import indexer, similar, whoosh_internals
from searchidx.bounds import SearchTimeout
from searchidx.cli import cli
from searchidx.content import scan_content
from searchidx.errors import QueryError
from searchidx.marks import to_html
from searchidx.parsing import read_article
from searchidx.result import Hit
from searchidx.sample import write_sample
from searchidx.service import SearchService
from searchidx.similar import SimilarRequest, UnknownArticle
from searchidx.store import IndexStore
from searchidx.web.app import create_app
from searchidx.web.security import HEADERS
from tests.conftest import indexed, write_article
from tests.test_web import api, page
from tests.test_web_fuzz import MODES, SCHEMA_CHECKS
from tests.web_helpers import validate

#: (path, title, excerpt, date, provider, topics): one story told three ways within two days,
#: an older article sharing its subject but not its story, and unrelated news.
STORIES = [
    (
        "2024/lagos-herald.md",
        "Lagos council halts the Ikoyi otter sanctuary expansion",
        "The council paused the sanctuary plan, worth 40 million naira, after Ada Obi's petition.",
        "2024-06-24T09:00:00Z",
        "Lagos Herald",
        ["Wildlife", "Local Government"],
    ),
    (
        "2024/coast-wire.md",
        "Ikoyi otter sanctuary plan paused by Lagos officials",
        "Officials stopped the 40 million naira sanctuary expansion; campaigner Ada Obi "
        "welcomed it.",
        "2024-06-25T15:30:00Z",
        "Coast Wire",
        ["Wildlife"],
    ),
    (
        "2024/daily-tide.md",
        "Why Lagos stopped growing its otter sanctuary",
        "Ada Obi's petition against the Ikoyi expansion won: the council froze the plan.",
        "2024-06-26T08:00:00Z",
        "Daily Tide",
        ["Local Government", "Conservation"],
    ),
    (
        "2019/otter-census.md",
        "Otter census counts more otters in the sanctuary",
        "Rangers counted otters in the sanctuary at dawn, as every year.",
        "2019-03-01T08:00:00Z",
        "Lagos Herald",
        ["Wildlife"],
    ),
    (
        "2024/chips.md",
        "Chip prices rise for the third month",
        "Memory makers raised prices again as demand for servers grew.",
        "2024-06-24T10:00:00Z",
        "Coast Wire",
        ["Semiconductors"],
    ),
]
NEAR_DUPLICATE = {"2024/lagos-herald.md": "2024/coast-wire.md"}


def story_front_matter(title, excerpt, date, provider, topics) -> str:
    domain = provider.lower().replace(" ", "") + ".com"
    return "\n".join(
        [
            f'title: "{title}"',
            f'excerpt: "{excerpt}"',
            f"publishedDateTime: {date}",
            f"provider:\n  name: {provider}\n  domain: {domain}",
            "topics:\n" + "\n".join(f"  - {topic}" for topic in topics),
            f"webUrl: https://www.{domain}/{title.lower().replace(' ', '-')}",
        ]
    )


def story_files(stories: list[tuple[Any, ...]]) -> list[tuple[str, str, str]]:
    """Each of ``stories`` as a file: its path, front matter and body (its excerpt)."""
    return [
        (path, story_front_matter(title, excerpt, date, provider, topics), excerpt)
        for path, title, excerpt, date, provider, topics in stories
    ]


@pytest.fixture(scope="module")
def story_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-written stories among a generated sample with stories of its own."""
    folder = tmp_path_factory.mktemp("stories")
    write_sample(folder, 300, seed=3, stories=0.3)
    for path, front_matter, body in story_files(STORIES):
        write_article(folder, path, front_matter, body)
    return folder


@pytest.fixture(scope="module")
def app_store(story_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> IndexStore:
    store = IndexStore(tmp_path_factory.mktemp("stories-index"))
    indexer.sync(store, story_dir)
    return store


def similar_paths(service: SearchService, path: str, limit: int = 10) -> list[str]:
    return [hit.article.path for hit in service.similar(SimilarRequest(path, limit)).hits]


def without_timing(document: dict) -> dict:
    return {key: value for key, value in document.items() if key != "took_ms"}


# The service --------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "duplicate"), NEAR_DUPLICATE.items())
def test_similar_ranks_the_same_story_in_other_words_first(service, path, duplicate):
    found = similar_paths(service, path)
    assert found[0] == duplicate
    assert set(found[:2]) == {"2024/coast-wire.md", "2024/daily-tide.md"}


def test_similar_prefers_the_story_to_an_old_article_on_the_subject(service):
    found = similar_paths(service, "2024/coast-wire.md")
    assert found.index("2024/daily-tide.md") < found.index("2019/otter-census.md")
    assert "2024/chips.md" not in found  # same day, nothing in common


def test_similar_never_lists_the_article_itself(service, story_dir):
    for path in sorted(scan_content(story_dir))[:40]:
        assert path not in similar_paths(service, path, limit=100)


def test_similar_marks_the_shared_key_terms(service):
    result = service.similar(SimilarRequest("2024/lagos-herald.md", 3))
    assert "otter" in result.terms and "ikoyi" in result.terms
    assert '<mark class="match' in to_html(result.hits[0].marked_title)
    assert result.article.article.path == "2024/lagos-herald.md"
    assert '<mark class="match' in to_html(result.article.marked_title)
    assert not isinstance(result.article, Hit) and result.article.to_dict()["score"] is None
    assert [hit.score for hit in result.hits] == sorted(
        (hit.score for hit in result.hits), reverse=True
    )


def test_similar_finds_the_sample_stories_related_coverage(app_store, story_dir):
    """The generated stories' in-collection related entries are found (bench/similar.py's
    measure on a small sample: far above the plain OR query of title and excerpt words). Its
    own service has no time limit: some 200 searches on a loaded machine once met the app's."""
    articles = [read_article(story_dir, path) for path in sorted(scan_content(story_dir))]
    truth = bench_similar.answers(articles)
    assert len(truth) >= 80  # 30% of 300 articles in stories, each listing most of the others
    service = SearchService(app_store)
    try:
        ours = bench_similar.measure(service, truth, bench_similar.ours)
        plain = bench_similar.measure(service, truth, bench_similar.baseline)
    finally:
        service.close()
    assert ours["recall"] >= 0.9 and ours["recall"] > plain["recall"]


def test_similar_key_terms_stay_within_the_caps(service, story_dir, monkeypatch):
    snapshot = service.snapshot()
    article = read_article(story_dir, "2024/lagos-herald.md")
    terms = similar.key_terms(snapshot, article)
    assert 0 < len(terms) <= similar.MAX_TERMS and "ikoyi" in terms
    assert "the" not in terms and "council" in terms
    monkeypatch.setattr(similar, "MAX_POSTINGS", 4)
    few = similar.key_terms(snapshot, article)
    with snapshot.reading:
        read = sum(
            snapshot.reader.doc_frequency(field, term)
            for term in few
            for field in similar.TEXT_FIELDS
        )
    assert 0 < read <= 4 and len(few) < len(terms)


def test_similar_stops_at_the_time_budget(app_store):
    hurried = SearchService(app_store, search_timeout=1e-9)
    try:
        with pytest.raises(SearchTimeout):
            hurried.similar(SimilarRequest("2024/lagos-herald.md"))
    finally:
        hurried.close()


@pytest.mark.parametrize(
    ("path", "limit", "parameter", "message"),
    [
        ("", 10, "path", "name the article"),
        ("   ", 10, "path", "name the article"),
        ("2024/lagos-herald.md", 0, "limit", "between 1 and 100"),
        ("2024/lagos-herald.md", 101, "limit", "between 1 and 100"),
        ("x" * 5000, 10, "path", "longer than"),
    ],
)
def test_similar_request_refuses_bad_values(path, limit, parameter, message):
    with pytest.raises(QueryError, match=message) as caught:
        SimilarRequest(path, limit)
    assert caught.value.parameter == parameter


def test_similar_unknown_or_deleted_article_says_how_to_fix_it(service):
    with pytest.raises(UnknownArticle, match="give the path of a search hit") as caught:
        service.similar(SimilarRequest("2024/nope.md"))
    assert caught.value.parameter == "path"


def test_similar_answers_a_deleted_article_as_unknown(tmp_path: Path):
    store = indexed(tmp_path, story_files(STORIES[:2]))
    folder = tmp_path / "content"
    (folder / STORIES[1][0]).unlink()
    indexer.sync(store, folder)
    service = SearchService(store)
    try:
        assert similar_paths(service, STORIES[0][0]) == []
        with pytest.raises(UnknownArticle):
            service.similar(SimilarRequest(STORIES[1][0]))
    finally:
        service.close()


@pytest.mark.parametrize("fast", [True, False])
def test_documents_at_finds_whole_paths_only_live_or_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
):
    """A path's documents, read from the path column (no term), as Whoosh's column reader
    gives them: never a path that holds it ("xa/b.md") or starts with it ("a/b.mdx"), in
    every segment, the deleted ones too; read fast, or (an unknown Whoosh) value by value."""
    folder = tmp_path / "news"
    store = IndexStore(tmp_path / "index")
    for path in ["a/b.md", "xa/b.md", "a/b.mdx", "b.md"]:
        write_article(folder, path, "title: Paths\npublishedDateTime: 2024-01-02", body=path)
    indexer.sync(store, folder)
    write_article(folder, "a/b.md", "title: Edited\npublishedDateTime: 2024-01-03", body="new")
    write_article(folder, "c/a/b.md", "title: Later\npublishedDateTime: 2024-01-03", body="c")
    indexer.sync(store, folder)  # a second segment; the first a/b.md deleted
    monkeypatch.setattr(whoosh_internals, "layout_known", lambda: fast)
    service = SearchService(store)
    try:
        snapshot = service.snapshot()
        paths = list(snapshot.searcher.reader().column_reader("path"))
        for path in ["a/b.md", "xa/b.md", "a/b.mdx", "b.md", "c/a/b.md", "/b.md", "a/b"]:
            expected = [docnum for docnum, value in enumerate(paths) if value == path.encode()]
            assert snapshot.documents_at(path) == expected, path
        assert snapshot.documents_at("a/b.md\udc80") == []  # not UTF-8: no file's path
        first, edited = snapshot.documents_at("a/b.md")
        assert not snapshot.live[first] and similar.document_number(snapshot, "a/b.md") == edited
    finally:
        service.close()


# The terminal --------------------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_similar_json_is_the_service_result(app_store, service):
    result = run(
        "similar",
        "2024/lagos-herald.md",
        "--limit",
        "3",
        "--json",
        "--index",
        str(app_store.location),
    )
    assert result.exit_code == 0
    expected = service.similar(SimilarRequest("2024/lagos-herald.md", 3)).to_dict()
    assert without_timing(json.loads(result.output)) == without_timing(expected)


def test_cli_similar_lists_the_article_and_its_story(app_store):
    result = run("similar", "2024/lagos-herald.md", "--index", str(app_store.location))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("10 articles similar to Lagos council halts")
    assert lines[3] == "1. Ikoyi otter sanctuary plan paused by Lagos officials"
    assert "Coast Wire · 2024-06-25 15:30 UTC" in lines[4]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["2024/nope.md"], "Error: no article at '2024/nope.md' in the index; give the path"),
        (["2024/lagos-herald.md", "--limit", "0"], "Error: limit must be between 1 and 100"),
    ],
)
def test_cli_similar_errors_are_one_line(app_store, args, message):
    result = CliRunner().invoke(cli, ["similar", *args, "--index", str(app_store.location)])
    assert result.exit_code == 1
    assert result.output.startswith(message) and "Traceback" not in result.output


# The API and the page ------------------------------------------------------------------------


def test_api_similar_is_what_searchidx_similar_json_prints(client: FlaskClient, app_store):
    printed = run(
        "similar",
        "2024/daily-tide.md",
        "--limit",
        "5",
        "--json",
        "--index",
        str(app_store.location),
    ).output
    body = api(client, "/api/similar?path=2024/daily-tide.md&limit=5")
    assert without_timing(body) == without_timing(json.loads(printed))
    assert len(body["hits"]) == body["total"] == 5


def test_api_similar_hits_are_search_hits(client: FlaskClient):
    similar_hit = api(client, "/api/similar?path=2024/lagos-herald.md")["hits"][0]
    search_hit = api(client, "/api/search?q=ikoyi+officials")["hits"][0]
    assert similar_hit["path"] == search_hit["path"] == "2024/coast-wire.md"
    assert similar_hit.keys() == search_hit.keys()
    for key in similar_hit.keys() - {"score", "title_html", "excerpt_html"}:
        assert similar_hit[key] == search_hit[key]


def test_api_similar_matches_the_openapi_schema(client: FlaskClient):
    document = api(client, "/api/openapi.json")
    body = api(client, "/api/similar?path=2024/lagos-herald.md&limit=2")
    validate(body, {"$ref": "#/components/schemas/SimilarResult"}, document)
    parameters = document["paths"]["/api/similar"]["get"]["parameters"]
    assert {parameter["name"] for parameter in parameters} == {"path", "limit"}


@pytest.mark.parametrize(
    ("query", "status", "parameter"),
    [
        ("", 400, "path"),
        ("path=", 400, "path"),
        ("path=2024/nope.md", 404, "path"),
        ("path=2024/chips.md&limit=0", 400, "limit"),
        ("path=2024/chips.md&limit=ten", 400, "limit"),
        ("path=2024/chips.md&limit=101", 400, "limit"),
        ("path=2024/chips.md&path=2024/coast-wire.md", 400, "path"),
        ("path=" + "x" * 5000, 400, "path"),
    ],
)
def test_api_similar_errors_name_the_parameter(client: FlaskClient, query, status, parameter):
    body = api(client, f"/api/similar?{query}", status=status)
    assert body["parameter"] == parameter and body["status"] == status and body["error"]
    validate(body, {"$ref": "#/components/schemas/Error"}, api(client, "/api/openapi.json"))


def test_page_every_hit_links_to_its_similar_articles(client: FlaskClient):
    doc = page(client, "/?q=otter+sanctuary")
    hits = doc.find_all("li", cls="hit")
    links = [node.find_all("a")[0] for node in doc.find_all("p", cls="similar-link")]
    assert len(links) == len(hits) > 0
    assert all(link.text == "Similar articles" for link in links)
    assert links[0].attrs["href"].startswith("/similar?path=")


def test_page_similar_shows_the_story_with_the_results_hit_partial(client: FlaskClient):
    response = client.get("/similar?path=2024/lagos-herald.md&limit=3")
    assert response.status_code == 200
    for name, value in HEADERS.items():
        assert response.headers[name] == value
    doc = page(client, "/similar?path=2024/lagos-herald.md&limit=3")
    assert "similar to “Lagos council halts" in doc.find_all("h1")[0].text
    titles = [node.text for node in doc.find_all("h2", cls="hit-title")]
    assert titles[0] == "Ikoyi otter sanctuary plan paused by Lagos officials"
    assert len(titles) == 3 and len(doc.find_all("article", cls="hit-card")) == 3
    topic = doc.find_all("a", cls="topic")[0].attrs["href"]
    assert topic.startswith("/?topic=")  # a topic is a search, as on the results page
    assert not doc.find_all("p", cls="why")  # the score parts are a search's
    follow = doc.find_all("p", cls="similar-link")[0].find_all("a")[0].attrs["href"]
    assert page(client, follow).find_all("h2", cls="hit-title")  # and so on, without JavaScript


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [("path=2024/nope.md", 404, "no article at"), ("", 400, "name the article")],
)
def test_page_similar_errors_say_how_to_fix_them(client: FlaskClient, query, status, message):
    doc = page(client, f"/similar?{query}", status=status)
    assert message in doc.find_all("p", cls="alert-message")[0].text
    assert doc.find_all("a", href="/")


def test_api_similar_past_the_budget_is_a_503(app_store):
    hurried: Flask = create_app(
        search_service=SearchService(app_store, search_timeout=1e-9), config={"TESTING": True}
    )
    try:
        response = hurried.test_client().get("/api/similar?path=2024/lagos-herald.md")
        assert response.status_code == 503 and response.get_json()["parameter"] is None
    finally:
        hurried.extensions["searchidx"].close()


# The sample's stories and the evaluation -----------------------------------------------------


def test_sample_stories_are_covered_by_other_outlets_within_days(tmp_path: Path):
    write_sample(tmp_path, 100, seed=1, stories=0.5)
    articles = {path: read_article(tmp_path, path) for path in scan_content(tmp_path)}
    assert len(articles) == 101
    truth = bench_similar.answers(list(articles.values()))
    assert 20 <= len(truth) <= 50  # the 50 story articles, each listing most of the others
    for path, others in truth.items():
        article = articles[path]
        for other in map(articles.get, others):
            assert other.provider != article.provider
            assert abs(other.published_at - article.published_at).days < 4


def test_bench_similar_prints_recall_and_latency_of_both_methods(capsys):
    bench_similar.main(["--generate", "150", "--vocabulary", "500"])
    printed = capsys.readouterr().out
    assert re.search(r"similar +recall@10 [01]\.\d{3} .* p95 [\d.]+ ms", printed), printed
    assert re.search(r"baseline +recall@10 [01]\.\d{3}", printed), printed


def test_bench_similar_says_when_a_collection_has_no_related_pairs(tmp_path: Path, capsys):
    write_sample(tmp_path / "seed", 0)
    bench_similar.main([str(tmp_path / "seed")])
    printed = capsys.readouterr().out
    assert "1 articles, 5 related entries, 0 of them in the collection" in printed
    assert "recall cannot be measured" in printed


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.value)
def test_api_similar_answers_every_generated_request_as_described(app: Flask, mode):
    """schemathesis from the served description: every answer documented (status, content
    type, body), never a 5xx; a path that fits the schema is most often no article (404)."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    statuses: Counter = Counter()

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=schema["/api/similar"]["GET"].as_strategy(generation_mode=mode))
    def run_case(case) -> None:
        response = case.call()
        statuses[response.status_code] += 1
        case.validate_response(response, checks=SCHEMA_CHECKS)

    run_case()
    assert set(statuses) <= {200, 400, 404} and sum(statuses.values()) >= 40, statuses
