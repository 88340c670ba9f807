"""The same searches against a local Whoosh index and an OpenSearch index of the same folder.

Totals, facet counts, months and the pages of the non-relevance sorts must be equal, hit for
hit, highlights included; relevance and best pages are ranked by two BM25 implementations,
so their top 10s are compared by overlap (at least 8 of 10 on average), which is printed.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from searchidx import cluster_sync, indexer
from searchidx.cli import cli
from searchidx.cluster import ClusterIndex
from searchidx.cluster_search import ClusterSearchService
from searchidx.export import MANIFEST_FILE
from searchidx.marks import Mark
from searchidx.request import SearchRequest, Sort, parse_date_bound
from searchidx.result import SearchResult
from searchidx.sample import write_sample
from searchidx.service import SearchService
from searchidx.store import IndexStore
from searchidx.web.app import create_app
from tests.opensearch.cluster import OpenSearchCluster

REPO = Path(__file__).resolve().parents[2]
ARTICLES = 400


@dataclass(frozen=True)
class Engines:
    local: SearchService
    cluster: ClusterSearchService

    def __iter__(self) -> Iterator[Any]:
        return iter((self.local, self.cluster))

    def both(self, request: SearchRequest) -> tuple[SearchResult, SearchResult]:
        return self.local.search(request), self.cluster.search(request)


@pytest.fixture(scope="module")
def engines(
    opensearch_cluster: OpenSearchCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engines]:
    """A generated collection plus the hand-written fixtures, indexed by both engines."""
    folder = tmp_path_factory.mktemp("articles")
    write_sample(folder, ARTICLES, seed=5, vocabulary=200)
    shutil.copytree(REPO / "tests" / "articles", folder / "fixtures")
    store = IndexStore(tmp_path_factory.mktemp("index"))
    local_report = indexer.sync(store, folder)
    index = ClusterIndex.parse(f"{opensearch_cluster.url}/parity-{uuid.uuid4().hex[:8]}")
    cluster_report = cluster_sync.sync(index, folder)
    assert cluster_report.documents == local_report.documents > ARTICLES
    found = Engines(SearchService(store), ClusterSearchService(index))
    yield found
    found.local.close()
    found.cluster.close()


def _front(engines: Engines) -> SearchResult:
    return engines.local.search(SearchRequest(facet_size=5))


def _top(result: SearchResult, facet: str, rank: int = 0) -> str:
    found = result.facet(facet)
    assert found is not None and len(found.values) > rank
    return found.values[rank].value


#: Requests built from the collection's own facet values (the front page's top ones).
REQUESTS: dict[str, Callable[[SearchResult], SearchRequest]] = {
    "browse newest": lambda front: SearchRequest(),
    "browse oldest": lambda front: SearchRequest(sort=Sort.OLDEST),
    "browse quality": lambda front: SearchRequest(sort=Sort.QUALITY, per_page=25),
    "relevance without text is newest": lambda front: SearchRequest(sort=Sort.RELEVANCE),
    "deep page": lambda front: SearchRequest(sort=Sort.OLDEST, page=9, per_page=20),
    "past the last page": lambda front: SearchRequest(page=100),
    "two topics OR-ed": lambda front: SearchRequest(
        filters={"topic": (_top(front, "topic"), _top(front, "topic", 1))}
    ),
    "topic in another case": lambda front: SearchRequest(
        filters={"topic": (_top(front, "topic").upper(),)}
    ),
    "facets AND-ed": lambda front: SearchRequest(
        filters={"topic": (_top(front, "topic"),), "category": (_top(front, "category"),)},
        sort=Sort.QUALITY,
    ),
    "provider and type": lambda front: SearchRequest(
        filters={"provider": (_top(front, "provider"),), "type": (_top(front, "type"),)}
    ),
    "published": lambda front: SearchRequest(filters={"published": ("false",)}),
    "unknown value selected": lambda front: SearchRequest(filters={"topic": ("No Such Topic",)}),
    "date range": lambda front: SearchRequest(
        date_from=parse_date_bound("2021-03", end=False),
        date_to=parse_date_bound("2023-06-15", end=True),
        sort=Sort.OLDEST,
    ),
    "quality range": lambda front: SearchRequest(min_quality=40, max_quality=90),
    "long facets, narrowed": lambda front: SearchRequest(
        facet_size=3, facet_search={"provider": "d"}
    ),
    "word, newest": lambda front: SearchRequest(text="data", sort=Sort.NEWEST),
    "words AND-ed, oldest": lambda front: SearchRequest(text="cloud security", sort=Sort.OLDEST),
    "OR and NOT": lambda front: SearchRequest(
        text="(microsoft OR google) -cloud", sort=Sort.NEWEST
    ),
    "phrase": lambda front: SearchRequest(text='"data center"', sort=Sort.NEWEST),
    "phrase with stop words": lambda front: SearchRequest(
        text='"expected to respond with" OR "need of the"', sort=Sort.OLDEST
    ),
    "joined words": lambda front: SearchRequest(text="low-code", sort=Sort.NEWEST),
    "field": lambda front: SearchRequest(text="title:apple", sort=Sort.QUALITY),
    "provider field": lambda front: SearchRequest(text="provider:forbes", sort=Sort.NEWEST),
    "wildcard": lambda front: SearchRequest(text="regul*", sort=Sort.NEWEST),
    "fuzzy word": lambda front: SearchRequest(text="secruity~", sort=Sort.OLDEST),
    "range in the text": lambda front: SearchRequest(
        text="quality:[50 TO 100] date:2022", sort=Sort.NEWEST
    ),
    "text with filters and dates": lambda front: SearchRequest(
        text="ai",
        filters={"topic": (_top(front, "topic"),)},
        date_from=parse_date_bound("2020", end=False),
        sort=Sort.NEWEST,
    ),
    "stemmed plural": lambda front: SearchRequest(text="regulations", sort=Sort.OLDEST),
    "accents folded": lambda front: SearchRequest(text="cafe OR Zurich", sort=Sort.NEWEST),
    "field wildcard": lambda front: SearchRequest(text="title:micro*", sort=Sort.OLDEST),
    "nothing found": lambda front: SearchRequest(text="zzzqqq", sort=Sort.NEWEST),
    "relaxed retry": lambda front: SearchRequest(text="startups zzzqqq", sort=Sort.NEWEST),
    "corrected retry": lambda front: SearchRequest(text="clowd", sort=Sort.NEWEST),
    "corrected word among others": lambda front: SearchRequest(
        text="robotics partnrs", sort=Sort.OLDEST
    ),
    "relaxed retry, filtered": lambda front: SearchRequest(
        text='"data center" robotics zzzqqq',
        filters={"type": (_top(front, "type"),)},
        sort=Sort.OLDEST,
    ),
}


@pytest.mark.parametrize("name", REQUESTS)
def test_parity_totals_facets_and_sorted_pages_are_equal(engines: Engines, name: str):
    request = REQUESTS[name](_front(engines))
    local, cluster = engines.both(request)
    assert cluster.total == local.total
    assert _facets(cluster) == _facets(local)
    assert [hit.article.path for hit in cluster.hits] == [hit.article.path for hit in local.hits]
    assert [_shown(hit) for hit in cluster.hits] == [_shown(hit) for hit in local.hits]
    assert (cluster.retry, cluster.ran_query) == (local.retry, local.ran_query)
    assert cluster.relaxed == local.relaxed
    assert cluster.did_you_mean == local.did_you_mean
    if name.startswith(("corrected", "relaxed")):  # the retries these requests are about
        assert local.retry == name.split()[0]


@pytest.mark.parametrize("text", ["data", "regul*", "clowd"])
def test_parity_without_highlighting_both_show_the_same_plain_hits(engines: Engines, text: str):
    request = SearchRequest(text=text, sort=Sort.NEWEST, highlight=False)
    local, cluster = engines.both(request)
    marked = engines.cluster.search(dataclasses.replace(request, highlight=True))
    assert local.total == cluster.total == marked.total > 0
    assert [_shown(hit) for hit in cluster.hits] == [_shown(hit) for hit in local.hits]
    assert _paths(cluster) == _paths(marked) and cluster.hits != marked.hits
    for hit in cluster.hits:
        assert hit.marked_title == (hit.article.title,)
        assert not any(isinstance(piece, Mark) for piece in hit.marked_excerpt)


def test_parity_answers_have_the_same_json(engines: Engines):
    request = SearchRequest(text="data center", sort=Sort.NEWEST, filters={"type": ("article",)})
    local, cluster = (result.to_dict() for result in engines.both(request))
    for answer in (local, cluster):
        answer.pop("took_ms")
    assert cluster == local


#: Queries ranked by score: two BM25s, so only the top 10s' overlap is compared.
RANKED = [
    "data",
    "cloud security",
    "microsoft ai",
    "quantum computing",
    "apple OR google",
    '"data center"',
    "startups funding",
    "regulation",
    "chip shortage",
    "robotics",
]


@pytest.mark.parametrize("sort", [Sort.RELEVANCE, Sort.BEST])
def test_parity_ranked_top_tens_overlap(engines: Engines, sort: Sort):
    overlaps = []
    for text in RANKED:
        local, cluster = engines.both(SearchRequest(text=text, sort=sort, facets=False))
        assert cluster.total == local.total, text
        overlap = len(_paths(local) & _paths(cluster))
        overlaps.append(overlap / max(1, min(10, local.total)))
    average = sum(overlaps) / len(overlaps)
    per_query = ", ".join(f"{overlap * 10:.0f}" for overlap in overlaps)
    print(
        f"{sort} top-10 overlap, Whoosh vs OpenSearch: {average * 10:.1f} of 10 "
        f"(per query: {per_query})"
    )
    assert average >= 0.8


@pytest.mark.parametrize("prefix", ["c", "rob", "data ce", "Zü", "zzz", "u.s"])
def test_parity_suggestions(engines: Engines, prefix: str):
    assert engines.cluster.suggest(prefix) == engines.local.suggest(prefix)


def _facets(result: SearchResult) -> list[dict[str, Any]]:
    found = []
    for facet in result.facets:
        values = [(value.value, value.count, value.selected) for value in facet.values]
        found.append({"name": facet.name, "more": facet.more, "values": values})
    return found


def _shown(hit: Any) -> tuple[Any, ...]:
    article = hit.article
    return (
        article.title,
        hit.marked_title,
        hit.marked_excerpt,
        article.provider,
        article.published_at,
    )


def _paths(result: SearchResult) -> set[str]:
    return {hit.article.path for hit in result.hits}


#: The API and the page: faceted search, sorts, date range, errors.
URLS = [
    "/api/search?topic=AI&topic=Robotics&sort=oldest",
    "/api/search?q=data&provider=Forbes&type=article&sort=newest&page=2&per_page=5",
    "/api/search?from=2021-06&to=2022&sort=quality",
    "/api/search?q=cloud&min_quality=50&sort=oldest&facet_size=3",
    "/api/search?q=title:(apple OR google)&sort=newest",
    "/api/search?q=data&sort=sideways",
    "/api/search?from=yesterday",
    "/api/search?page=1001",
    "/api/search?q=%22unclosed&sort=newest",
    "/api/suggest?q=rob",
]


@pytest.mark.parametrize("url", URLS)
def test_parity_api_answers_the_same(engines: Engines, url: str):
    local, cluster = (create_app(search_service=service).test_client() for service in engines)
    mine, theirs = local.get(url), cluster.get(url)
    assert theirs.status_code == mine.status_code
    expected, answer = mine.get_json(), theirs.get_json()
    for found in (expected, answer):
        found.pop("took_ms", None)
    assert answer == expected


@pytest.mark.parametrize(
    "url", ["/?q=data&topic=AI&sort=newest", "/?from=2021&to=2022-03&sort=oldest", "/?q=a&to=x"]
)
def test_parity_page_shows_the_same_results(engines: Engines, url: str):
    local, cluster = (create_app(search_service=service).test_client() for service in engines)
    mine, theirs = local.get(url), cluster.get(url)
    assert theirs.status_code == mine.status_code
    assert _page(theirs.data) == _page(mine.data)


def _page(html: bytes) -> str:
    """The page without what differs between two runs of one search: the time it took."""
    return re.sub(r"[0-9.,]+\s*ms", "", html.decode())


@pytest.mark.parametrize(
    "request_",
    [
        SearchRequest(text="data center", sort=Sort.NEWEST, explain=True),
        SearchRequest(text="cloud", sort=Sort.BEST, explain=True, half_life_days=90),
        SearchRequest(sort=Sort.QUALITY, explain=True),
    ],
    ids=["text, newest", "text, best", "no text"],
)
def test_parity_explanations_have_the_same_freshness_and_quality(
    engines: Engines, request_: SearchRequest
):
    """The text score is each engine's BM25; the factors and how they combine are the same."""
    local, cluster = engines.both(request_)
    if request_.sort is not Sort.BEST:
        assert [hit.article.path for hit in cluster.hits] == [
            hit.article.path for hit in local.hits
        ]
    explained = {hit.article.path: hit.explain for hit in local.hits}
    compared = 0
    for hit in cluster.hits:
        mine, theirs = explained.get(hit.article.path), hit.explain
        assert theirs is not None
        assert (theirs.text is None) == (request_.text == "")
        text = 1.0 if theirs.text is None else theirs.text
        assert theirs.best == pytest.approx(text * theirs.freshness * theirs.quality, rel=1e-4)
        if mine is None:
            continue
        compared += 1
        for part in ("freshness", "quality", "age_days", "quality_percentile"):
            assert getattr(theirs, part) == pytest.approx(getattr(mine, part), abs=1e-6), part
    assert compared >= 5


def test_parity_exports_are_the_same_files(engines: Engines, tmp_path: Path):
    """``searchidx export`` of either index: the same mapping and the same bulk files, byte
    for byte (the cluster holds whole bodies; the local export reads them from the files)."""
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    for index, out in ((engines.local.store, local), (engines.cluster.store, cluster)):
        result = CliRunner().invoke(
            cli, ["export", str(out), "--max-bytes", "100000", "--index", str(index.location)]
        )
        assert result.exit_code == 0, result.output
    names = sorted(path.name for path in local.iterdir())
    assert sorted(path.name for path in cluster.iterdir()) == names
    assert len(names) > 3
    for name in names:
        if name != MANIFEST_FILE:  # names the index and the time of the export
            assert (cluster / name).read_bytes() == (local / name).read_bytes(), name


def test_cluster_similar_articles_are_refused_with_a_clear_400(engines: Engines):
    client = create_app(search_service=engines.cluster).test_client()
    path = _front(engines).hits[0].article.path
    answer = client.get(f"/api/similar?path={path}")
    assert answer.status_code == 400
    assert answer.get_json()["parameter"] == "path"
    assert "not available on an OpenSearch index" in answer.get_json()["error"]
    assert client.get(f"/similar?path={path}").status_code == 400
