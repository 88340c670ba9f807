"""The ``best`` sort (text x freshness x quality), its half-life, and ``explain``: on a real
index of hand-written articles whose dates and qualities are chosen, through the service, the
JSON API, the page and the terminal. The title phrase bonus of the text score, and the
known-item benchmark that measures it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import closing

import numpy as np
import pytest
from click.testing import CliRunner

from bench import known_item
from searchidx import bounds, ranking
from searchidx.bounds import QueryTooBroad
from searchidx.cli import cli
from searchidx.errors import QueryError
from searchidx.querylang import parse_query
from searchidx.request import SearchRequest, Sort
from searchidx.service import SearchService
from searchidx.store import IndexStore
from tests.conftest import indexed, write_article
from tests.test_web import api, hit_titles, page

#: (path, title, date, quality, body): pairs that differ in one thing only.
ARTICLES = [
    # Equal text, one 150 days fresher than the other.
    ("a/otter-old.md", "Otter dams rebuilt", "2024-02-01", 50, "Otters rebuilt dams."),
    ("a/otter-young.md", "Otter dams rebuilt", "2024-06-30", 50, "Otters rebuilt dams."),
    # Equal text and date, a low and a high quality.
    ("b/lynx-low.md", "Lynx returns to valley", "2024-05-01", 20, "A lynx was seen."),
    ("b/lynx-top.md", "Lynx returns to valley", "2024-05-01", 180, "A lynx was seen."),
    ("b/lynx-none.md", "Lynx returns to valley", "2024-05-01", None, "A lynx was seen."),
    # More text relevance (the word once in a long body too) but 60 days older, against the
    # newest article.
    (
        "c/wombat-old.md",
        "Wombat census",
        "2024-05-01",
        100,
        "The census counted one wombat per hill. " + "Rangers walked the hills at dawn. " * 20,
    ),
    (
        "c/wombat-new.md",
        "Wombat census",
        "2024-06-30",
        100,
        "The census counted one animal per hill.",
    ),
    ("d/filler.md", "Harbour opens", "2023-01-01", 90, "A harbour opened."),
]


def front_matter(title: str, date: str, quality: int | None) -> str:
    lines = [f'title: "{title}"', f"publishedDateTime: {date}T12:00:00Z", f'excerpt: "{title}."']
    if quality is not None:
        lines.append(f"quality: {quality}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def app_store(tmp_path_factory: pytest.TempPathFactory) -> IndexStore:
    return indexed(
        tmp_path_factory.mktemp("ranked"),
        [
            (path, front_matter(title, date, quality), body)
            for path, title, date, quality, body in ARTICLES
        ],
    )


@pytest.fixture(scope="module")
def ranked(app_store: IndexStore) -> Iterator[SearchService]:
    service = SearchService(app_store)
    yield service
    service.close()


def paths(service: SearchService, text: str, **options) -> list[str]:
    return [hit.article.path for hit in service.search(SearchRequest(text=text, **options)).hits]


def test_best_is_the_default_sort_with_text(ranked):
    assert ranked.search(SearchRequest(text="otter")).request.effective_sort is Sort.BEST
    assert ranked.search(SearchRequest()).request.effective_sort is Sort.NEWEST


def test_best_puts_the_fresher_of_equally_relevant_articles_first(ranked):
    assert paths(ranked, "otter") == ["a/otter-young.md", "a/otter-old.md"]
    relevance = ranked.search(SearchRequest(text="otter", sort=Sort.RELEVANCE)).hits
    assert relevance[0].score == relevance[1].score  # equally relevant: only freshness differs


def test_best_puts_higher_quality_first_and_missing_quality_between(ranked):
    assert paths(ranked, "lynx") == ["b/lynx-top.md", "b/lynx-none.md", "b/lynx-low.md"]


def test_best_half_life_decides_between_relevance_and_freshness(ranked):
    relevance = ranked.search(SearchRequest(text="wombat", sort=Sort.RELEVANCE)).hits
    assert [hit.article.path for hit in relevance] == ["c/wombat-old.md", "c/wombat-new.md"]
    assert relevance[0].score < relevance[1].score * 1.1  # within freshness's reach
    long_memory = paths(ranked, "wombat", half_life_days=36_500)
    short_memory = paths(ranked, "wombat", half_life_days=1)
    assert long_memory == ["c/wombat-old.md", "c/wombat-new.md"]
    assert short_memory == ["c/wombat-new.md", "c/wombat-old.md"]


def test_relevance_is_the_text_score_whatever_the_half_life(ranked):
    for half_life in (1, 30, 36_500):
        request = SearchRequest(text="wombat", sort=Sort.RELEVANCE, half_life_days=half_life)
        hits = ranked.search(request).hits
        assert [hit.article.path for hit in hits] == ["c/wombat-old.md", "c/wombat-new.md"]
        explained = ranked.search(SearchRequest(text="wombat", explain=True)).hits
        text = {hit.article.path: hit.explain.text for hit in explained}
        assert all(math.isclose(hit.score, text[hit.article.path]) for hit in hits)


@pytest.mark.parametrize("text", ["wombat", "wombat census", "lynx NOT harbour", '"otter dams"'])
def test_explain_parts_add_up_to_the_text_score_and_multiply_to_the_score(ranked, text):
    hits = ranked.search(SearchRequest(text=text, explain=True)).hits
    assert hits
    for hit in hits:
        explain = hit.explain
        assert math.isclose(sum(explain.fields.values()), explain.text, rel_tol=1e-9)
        product = explain.text * explain.freshness * explain.quality
        assert math.isclose(product, explain.best) and math.isclose(explain.best, hit.score)
        assert explain.fields["title"] > 0


def test_explain_splits_the_text_score_by_field(ranked):
    old, new = ranked.search(SearchRequest(text="wombat", sort=Sort.RELEVANCE, explain=True)).hits
    assert old.explain.fields["body"] > 0 and new.explain.fields["body"] == 0
    assert old.explain.fields["title"] == new.explain.fields["title"]
    other = ranked.search(SearchRequest(text="lynx NOT harbour", explain=True)).hits[0]
    assert other.explain.fields["other"] == 1.0  # Whoosh scores a NOT 1 per match


def test_explain_without_text_is_freshness_times_quality(ranked):
    hits = ranked.search(SearchRequest(sort=Sort.BEST, explain=True)).hits
    assert hits[0].article.path == "c/wombat-new.md"  # of the two newest, the higher quality
    for hit in hits:
        assert hit.explain.text is None and hit.explain.fields is None
        assert math.isclose(hit.score, hit.explain.freshness * hit.explain.quality)
    none = next(hit for hit in hits if hit.article.path == "b/lynx-none.md")
    assert none.explain.quality == 1.0 and none.explain.quality_percentile is None


@pytest.mark.parametrize(
    ("text", "filters", "page"),
    [
        ("microsoft", {}, 1),
        ("microsoft", {}, 3),
        ("cloud analysts", {"topic": ("Cloud Computing",)}, 1),
        ("", {}, 2),
        ("nosuchword", {}, 1),
    ],
)
def test_best_page_scored_at_the_matches_equals_scoring_every_document(
    sample_store, text, filters, page
):
    service = SearchService(sample_store, results_cached=0)
    request = SearchRequest(text=text, filters=filters, sort=Sort.BEST, page=page, per_page=7)
    found = [(hit.article.path, hit.score) for hit in service.search(request).hits]
    with service._using() as snapshot:
        everywhere = snapshot.freshness_factors(request.half_life_days) * snapshot.quality_factors
        parsed = parse_query(text)
        mask = snapshot.live
        if parsed is not None:
            matches = snapshot.match(parsed, scored=True)
            everywhere, mask = everywhere * matches.scores, matches.mask
        for name, values in filters.items():
            mask = mask & snapshot.facet(name).documents_with(values, snapshot.size)
        page_of = ranking.top_scored(everywhere, mask, request.offset, request.offset + 7)
        expected = [(snapshot.article(doc).path, score) for doc, score in page_of]
    service.close()
    assert found == expected
    assert found or text == "nosuchword"


def test_top_of_pages_scored_documents_as_top_scored_does():
    scores = np.array([0.5, 2.0, 0.0, 2.0, 1.0, 0.5, 3.0, 2.0])
    final = np.array([True, True, False, True, True, True, False, True])
    docs = np.flatnonzero(final)
    for start, end in [(0, 3), (1, 4), (2, 10), (0, 1)]:
        expected = ranking.top_scored(scores, final, start, end)
        assert ranking.top_of(docs, scores[docs], start, end) == expected
    assert ranking.top_of(docs, scores[docs], 0, 3) == [(1, 2.0), (3, 2.0), (7, 2.0)]


def test_score_order_is_the_head_of_the_whole_score_order():
    """Sorting only the top ``end`` (and ties) gives the first ``end`` of the whole order, ties
    by docnum, over seeded scores with many ties: no true top hit is left out."""
    rng = np.random.default_rng(12)
    for _ in range(200):
        count = int(rng.integers(0, 300))
        docs = np.sort(rng.choice(10_000, size=count, replace=False))
        scores = rng.integers(0, int(rng.integers(1, 40)), size=count) / 7.0
        whole = np.lexsort((docs, -scores))
        for end in (1, 3, 10, 64, count, count + 5):
            found_docs, found_scores = ranking.score_order(docs, scores, end)
            assert found_docs.tolist() == docs[whole][:end].tolist()
            assert found_scores.tolist() == scores[whole][:end].tolist()


def test_request_refuses_a_half_life_out_of_range():
    for days in (0, 0.001, -1, 36_501):
        with pytest.raises(QueryError) as error:
            SearchRequest(text="otter", half_life_days=days)
        assert error.value.parameter == "half_life"


def test_api_explain_adds_the_parts_to_each_hit(client):
    plain = api(client, "/api/search?q=otter")
    assert plain["sort"] == "best" and all("explain" not in hit for hit in plain["hits"])
    explained = api(client, "/api/search?q=otter&explain=true&half_life=7.5")
    assert explained["half_life_days"] == 7.5
    for hit in explained["hits"]:
        parts = hit["explain"]
        assert set(parts) == {
            "text",
            "fields",
            "freshness",
            "quality",
            "age_days",
            "quality_percentile",
            "best",
        }
        assert parts["best"] == hit["score"]
    assert explained["hits"][0]["explain"]["age_days"] == 0


def test_api_bad_half_life_is_a_400_naming_it(client):
    error = api(client, "/api/search?q=otter&half_life=soon", status=400)
    assert error["parameter"] == "half_life" and "half_life must be a number" in error["error"]


def test_page_shows_why_this_result_on_request(client):
    doc = page(client, "/?q=otter")
    assert hit_titles(doc) == ["Otter dams rebuilt", "Otter dams rebuilt"]
    assert not doc.find_all("dl", cls="explain")
    link = doc.find_all("p", cls="why")[0].find_all("a")[0]
    assert "explain=true" in link.attrs["href"] and link.text == "Why this result"
    explained = page(client, link.attrs["href"].split("#")[0])
    boxes = explained.find_all("dl", cls="explain")
    assert len(boxes) == 2 and not explained.find_all("p", cls="why")
    assert "Freshness" in boxes[0].text and "title" in boxes[0].text


def test_page_keeps_half_life_and_explain_when_sorting_again(client):
    doc = page(client, "/?q=otter&half_life=3&explain=true")
    kept = {
        node.attrs["name"]: node.attrs["value"] for node in doc.find_all("input", type="hidden")
    }
    assert kept["half_life"] == "3" and kept["explain"] == "true"


def test_terminal_explain_shows_the_parts(app_store: IndexStore):
    result = CliRunner().invoke(
        cli, ["query", "wombat", "--explain", "--index", str(app_store.location)]
    )
    assert result.exit_code == 0, result.output
    assert "sorted by best" in result.output
    assert "= text " in result.output and "body " in result.output
    assert "x freshness " in result.output and "x quality " in result.output


@pytest.mark.parametrize("value", ["0", "abc", "40000"])
def test_cli_bad_half_life_is_an_error_naming_the_option(app_store: IndexStore, value):
    result = CliRunner().invoke(
        cli, ["query", "otter", "--half-life", value, "--index", str(app_store.location)]
    )
    assert result.exit_code == 2 and "--half-life" in result.output
    assert "Traceback" not in result.output


def test_cli_sort_choices_follow_the_sort_enum():
    result = CliRunner().invoke(cli, ["query", "--help"])
    for sort in Sort:
        assert sort.value in result.output


#: (path, title, excerpt): the words "crane strike" together in a title, apart in another
#: that has them in its excerpt too, and one of the words alone.
PHRASED = [
    ("t/together.md", "Harbour crane strike ends", "Work resumed on Monday."),
    (
        "t/apart.md",
        "Crane operators at the harbour threaten a strike",
        "A crane strike would close the harbour, the union said.",
    ),
    ("t/crane-only.md", "New crane for the harbour", "It lifts more."),
]


@pytest.fixture(scope="module")
def phrased(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchService]:
    articles = [
        (
            path,
            f'title: "{title}"\nexcerpt: "{excerpt}"\npublishedDateTime: 2024-05-01T12:00:00Z',
            f"{excerpt} " * 3,
        )
        for path, title, excerpt in PHRASED
    ]
    store = indexed(tmp_path_factory.mktemp("phrased"), articles)
    with closing(SearchService(store, results_cached=0)) as service:
        yield service


@pytest.mark.parametrize("sort", [Sort.RELEVANCE, Sort.BEST])
def test_title_phrase_ranks_the_words_together_in_a_title_first(phrased, sort):
    assert paths(phrased, "crane strike", sort=sort) == ["t/together.md", "t/apart.md"]


def test_title_phrase_bonus_is_what_puts_it_first(phrased, monkeypatch):
    monkeypatch.setattr(ranking, "TITLE_PHRASE_BOOST", 0.0)
    # Without it, the title with the words apart (and in its excerpt) scores higher.
    assert paths(phrased, "crane strike", sort=Sort.RELEVANCE) == ["t/apart.md", "t/together.md"]


def test_title_phrase_needs_the_typed_order_and_never_changes_what_matches(phrased):
    reversed_order = phrased.search(SearchRequest(text="strike crane", sort=Sort.RELEVANCE))
    assert [hit.article.path for hit in reversed_order.hits] == ["t/apart.md", "t/together.md"]
    assert phrased.search(SearchRequest(text="crane strike")).total == 2
    assert phrased.search(SearchRequest(text="crane strike", sort=Sort.NEWEST)).total == 2


def test_title_phrase_is_scored_in_the_title_and_as_whoosh_scores_it(phrased):
    parsed = parse_query("crane strike")
    snapshot = phrased.snapshot()
    scores = snapshot.match(parsed, scored=True).scores
    with snapshot.reading:
        theirs = {hit.docnum: hit.score for hit in snapshot.searcher.search(parsed, limit=None)}
    assert scores is not None and set(np.flatnonzero(scores).tolist()) == set(theirs)
    assert all(
        math.isclose(scores[docnum], score, rel_tol=1e-12) for docnum, score in theirs.items()
    )
    together, apart = phrased.search(SearchRequest(text="crane strike", explain=True)).hits
    assert together.explain.fields["title"] > 2 * apart.explain.fields["title"]
    assert math.isclose(sum(together.explain.fields.values()), together.explain.text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("crane strike", ["crane", "strike"]),
        ("harbour crane-strike", ["harbour", "crane", "strike"]),  # a joined word is two
        ('"harbour crane" strike', ["harbour", "crane", "strike"]),
        ("crane of the strike", ["crane", "strike"]),  # stop words are not searched
        ("crane provider:reuters strike -union", ["crane", "strike"]),
        ("crane", None),
        ("crane OR strike", None),
        ("crane (strike OR walkout)", None),  # not typed together
        ("cran* strike", None),
        ("crane strike~", None),
        (" ".join(f"word{number}" for number in range(ranking.TITLE_PHRASE_MAX_WORDS + 1)), None),
    ],
)
def test_title_phrase_is_added_to_plain_words_only(text, words):
    bonus = [leaf for leaf in parse_query(text).leaves() if isinstance(leaf, ranking.TitlePhrase)]
    assert [leaf.words for leaf in bonus] == ([words] if words else [])
    assert all(leaf.fieldname == "title" for leaf in bonus)


def test_title_phrase_never_makes_plain_words_too_broad(phrased, monkeypatch):
    monkeypatch.setattr(bounds, "MAX_PHRASE_POSTINGS", 1)
    assert paths(phrased, "crane strike")[0] == "t/together.md"
    with pytest.raises(QueryTooBroad):  # a phrase typed is still counted
        paths(phrased, '"crane strike"')


def test_known_item_bench_counts_shared_titles_and_the_ceiling(tmp_path, capsys):
    titles = {
        "a.md": "Otter dams rebuilt",
        "b.md": "Otter dams rebuilt",
        "c.md": "Otter dams rebuilt again",
        "d.md": "Lynx is back",
    }
    assert known_item.shared_titles(titles) == 2
    as_written = known_item.known_item_queries(titles, None, 1, skip_stop_words=False)
    skipped = known_item.known_item_queries(titles, None, 1, skip_stop_words=True)
    assert ("lynx is back", "d.md") in as_written and len(as_written) == 4
    assert {path for _, path in skipped} == {"a.md", "b.md", "c.md"}  # "lynx back": too short

    def best_possible(text: str, path: str) -> tuple[float, int]:
        return known_item.ceiling([(text, path)], titles, skip_stop_words=True)

    # a.md and b.md gave "otter dams rebuilt" for sure, c.md half the time (one window of two):
    # the best ranking puts a.md and b.md first, in either order, and c.md third.
    assert best_possible("otter dams rebuilt", "a.md") == ((1 + 1 / 2) / 2, 1)
    assert best_possible("otter dams rebuilt", "c.md") == (1 / 3, 1)
    assert best_possible("dams rebuilt again", "c.md") == (1.0, 0)

    folder = tmp_path / "articles"
    for path, title in titles.items():
        write_article(folder, path, f'title: "{title}"\npublishedDateTime: 2024-05-01T12:00:00Z')
    assert known_item.main([str(folder)]) == 0
    printed = capsys.readouterr().out
    assert "4 articles" in printed and "2 share their title" in printed
    assert "as written" in printed and "stop words skipped" in printed


def test_percentiles_are_mid_ranks_among_the_known_qualities():
    qualities = np.array([50, 10, -(2**31), 50, 90, 30, 50], dtype=np.int32)
    known = qualities != -(2**31)
    known[5] = False  # a deleted document: not counted, and 0.5
    # Known, sorted: 10 50 50 50 90 (ranks 0-4); 50's mid-rank is (1 + 3) / 2 = 2 of 4.
    expected = [0.5, 0.0, 0.5, 0.5, 1.0, 0.5, 0.5]
    assert ranking.percentiles(qualities, known).tolist() == expected


@pytest.mark.parametrize("span", [100, 2**30])  # counted in their span, or sorted
def test_percentiles_are_mid_ranks_whether_counted_or_sorted(span: int):
    rng = np.random.default_rng(span)
    qualities = rng.integers(-span, span, 400).astype(np.int32)
    known = rng.random(400) < 0.8
    values = qualities[known]
    expected = np.full(400, 0.5)
    for doc in np.flatnonzero(known):
        below, not_above = (values < qualities[doc]).sum(), (values <= qualities[doc]).sum()
        expected[doc] = (below + not_above - 1) / (2.0 * (len(values) - 1))
    assert ranking.percentiles(qualities, known).tolist() == expected.tolist()


@pytest.mark.parametrize("count", [5, 300, 5_000, 40_000])
@pytest.mark.parametrize("end", [1, 10, 64])
def test_score_order_is_a_whole_sort_by_score_then_docnum(count: int, end: int):
    """The top found through a sample of the scores is the top of every match sorted, ties
    (many: scores of two decimals) by docnum."""
    rng = np.random.default_rng(count + end)
    docs = np.sort(rng.choice(100_000, count, replace=False))
    scores = np.round(rng.random(count) * 3, 2)
    found_docs, found_scores = ranking.score_order(docs, scores, end)
    ranked = np.lexsort((docs, -scores))[:end]
    assert found_docs.tolist() == docs[ranked].tolist()
    assert found_scores.tolist() == scores[ranked].tolist()
