"""The search service on real indexes with known answers: exact counts, orders and facets."""

from __future__ import annotations

import dataclasses
import gc
import re
import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from whoosh.index import FileIndex

from searchidx import indexer, querylang
from searchidx import result as result_module
from searchidx.articles import Article
from searchidx.content import scan_content
from searchidx.defaults import RESULTS_CACHED
from searchidx.errors import QueryError
from searchidx.facets import FACETS
from searchidx.marks import Mark, to_html
from searchidx.parsing import read_article
from searchidx.request import MAX_QUERY_CHARS, SearchRequest, Sort, parse_date_bound
from searchidx.result import SearchResult
from searchidx.schema import build_schema
from searchidx.service import SearchService
from searchidx.store import IndexStore
from tests.conftest import ARTICLES_DIR, indexed, write_article

NEWS = {
    "a.md": (
        "Microsoft halts facial recognition sales",
        "Regulators welcomed the move.",
        "2022-06-24T14:08:00Z",
        "ExtremeTech",
        ["AI", "Computer Vision"],
        69,
    ),
    "b.md": (
        "New regulation for chip makers",
        "Microsoft and Intel respond to the rules.",
        "2022-06-25T09:00:00Z",
        "Forbes",
        ["Semiconductors", "Regulation"],
        80,
    ),
    "c.md": (
        "Cloud prices rise again",
        "Amazon and Google raise cloud storage prices.",
        "2021-01-10T12:00:00Z",
        "Forbes",
        ["Cloud Computing"],
        80,
    ),
    "d.md": (
        "Recognition software audit",
        "Auditors review facial analysis at the agency.",
        "2020-03-01T00:00:00Z",
        "NBC News",
        ["AI", "Regulation"],
        None,
    ),
    "e.md": (
        "Microsoft cloud outage",
        "Azure went down for hours in Europe.",
        "2023-11-30T23:30:00Z",
        "The Verge",
        ["Cloud Computing", "Microsoft AI"],
        55,
    ),
    "sub/f.markdown": (
        "Quantum chips <script>alert(1)</script>",
        "Qubits & <b>noise</b>.",
        "2019-07-04T08:00:00+02:00",
        "Wired",
        ["Quantum Computing"],
        90,
    ),
}


def news_article(title, excerpt, date, provider, topics, quality) -> str:
    lines = [
        f'title: "{title}"',
        f'excerpt: "{excerpt}"',
        f"publishedDateTime: {date}",
        f"provider:\n  name: {provider}\n  domain: {provider.lower().replace(' ', '')}.com",
        "topics:\n" + "\n".join(f"  - {topic}" for topic in topics),
        "category: news",
        f"type: {'video' if provider == 'Wired' else 'article'}",
        f"published: {'false' if provider == 'NBC News' else 'true'}",
    ]
    if quality is not None:
        lines.append(f"quality: {quality}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchService]:
    """A six-article index whose answers are known by heart."""
    body = "Body text about budgets."
    articles = [(path, news_article(*fields), body) for path, fields in NEWS.items()]
    with closing(SearchService(indexed(tmp_path_factory.mktemp("news"), articles))) as service:
        yield service


@pytest.fixture(scope="module")
def sample(sample_store: IndexStore) -> Iterator[SearchService]:
    service = SearchService(sample_store)
    yield service
    service.close()


@pytest.fixture(scope="module")
def sample_articles(sample_dir: Path) -> dict[str, Article]:
    return {path: read_article(sample_dir, path) for path in scan_content(sample_dir)}


def paths(service: SearchService, **fields) -> list[str]:
    return [hit.article.path for hit in service.search(SearchRequest(per_page=100, **fields)).hits]


def every_hit(service: SearchService, **fields) -> list[str]:
    """Page through the whole result, 7 at a time (an odd size to catch boundary bugs)."""
    found: list[str] = []
    page = 1
    while True:
        result = service.search(SearchRequest(page=page, per_page=7, **fields))
        found += [hit.article.path for hit in result.hits]
        if page >= result.pages:
            assert len(found) == result.total
            return found
        page += 1


# The query language ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("microsoft", {"a.md", "b.md", "e.md"}),
        ("microsoft cloud", {"e.md"}),  # all words must match
        ("microsoft OR quantum", {"a.md", "b.md", "e.md", "sub/f.markdown"}),
        ("microsoft NOT cloud", {"a.md", "b.md"}),
        ("microsoft -cloud", {"a.md", "b.md"}),
        ('"facial recognition"', {"a.md"}),
        ("facial recognition", {"a.md", "d.md"}),
        ("regulations", {"a.md", "b.md", "d.md"}),  # stemming: regulation, regulators
        ("title:microsoft", {"a.md", "e.md"}),
        ("topic:regulation", {"b.md", "d.md"}),
        ('provider:"the verge"', {"e.md"}),
        ("provider:forbes cloud", {"c.md"}),
        ("domain:forbes.com", {"b.md", "c.md"}),
        ("type:video", {"sub/f.markdown"}),
        ("published:false", {"d.md"}),
        ("quality:[80 TO 90]", {"b.md", "c.md", "sub/f.markdown"}),
        ("micro*", {"a.md", "b.md", "e.md"}),
        ("(cloud OR quantum) NOT microsoft", {"c.md", "sub/f.markdown"}),
        ("budgets", set(NEWS)),  # the body is searched too
    ],
)
def test_search_query_language(news: SearchService, text: str, expected: set[str]):
    assert set(paths(news, text=text)) == expected


def test_search_titles_weigh_more_than_excerpts(news: SearchService):
    # "microsoft" is in the titles of a.md and e.md, only in the excerpt of b.md
    assert paths(news, text="microsoft")[-1] == "b.md"


def test_search_empty_query_browses_everything_newest_first(news: SearchService):
    assert paths(news) == ["e.md", "b.md", "a.md", "c.md", "d.md", "sub/f.markdown"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x" * (MAX_QUERY_CHARS + 1), "longer than 1,000 characters"),
        (" OR ".join(f"word{n}~" for n in range(11)), "11 fuzzy or wildcard words"),
        ("aa* bb* cc* dd* ee* ff* gg* hh* ii* jj* kk~2 kk~2 kk~2", "11 fuzzy or wildcard words"),
    ],
)
def test_search_rejects_queries_beyond_the_limits(news: SearchService, text: str, message: str):
    with pytest.raises(QueryError, match=re.escape(message)):
        news.search(SearchRequest(text=text))


@pytest.mark.parametrize(
    ("text", "message", "note"),
    [
        ('"facial recognition', "unbalanced quote", "never closed"),
        ("(cloud OR quantum", "'(' is never closed", "'(' that is never closed"),
        ("cloud)", "')' has no '('", "')' with no '('"),
        ("author:smith", "unknown field 'author'", "'author' is not a field name"),
    ],
)
def test_search_reads_stray_syntax_as_words_and_strict_check_rejects_it(
    news: SearchService, text: str, message: str, note: str
):
    result = news.search(SearchRequest(text=text))
    assert any(note in line for line in result.notes)
    with pytest.raises(QueryError, match=re.escape(message)):
        querylang.check_syntax(text)


def test_search_allows_colons_and_brackets_inside_quotes(news: SearchService):
    assert news.search(SearchRequest(text='"author:smith (x"')).total == 0


# Filters, dates and quality -------------------------------------------------------------


def test_search_filters_or_within_a_facet_and_across_facets(news: SearchService):
    assert set(paths(news, filters={"provider": ("Forbes", "wired")})) == {
        "b.md",
        "c.md",
        "sub/f.markdown",
    }
    assert set(paths(news, filters={"provider": ("Forbes",), "topic": ("regulation",)})) == {"b.md"}
    assert paths(news, filters={"provider": ("Nobody",)}) == []
    assert set(paths(news, filters={"published": ("false",)})) == {"d.md"}


def test_search_date_range_is_inclusive_and_in_utc(news: SearchService):
    june = {
        "date_from": parse_date_bound("2022-06-24", end=False),
        "date_to": parse_date_bound("2022-06-24", end=True),
    }
    assert paths(news, **june) == ["a.md"]
    # 08:00+02:00 is 06:00 UTC, and the end bound is inclusive
    assert paths(news, date_to=parse_date_bound("2019-07-04T06:00Z", end=True)) == [
        "sub/f.markdown"
    ]
    assert set(paths(news, date_from=parse_date_bound("2023", end=False))) == {"e.md"}
    assert set(paths(news, date_to=parse_date_bound("2021-01", end=True))) == {
        "c.md",
        "d.md",
        "sub/f.markdown",
    }


def test_search_date_bounds_with_time_zones(news: SearchService):
    just_after = parse_date_bound("2019-07-04T08:00:01+02:00", end=False)
    assert "sub/f.markdown" not in paths(news, date_from=just_after)
    exactly = parse_date_bound("2019-07-04T06:00:00Z", end=False)
    assert "sub/f.markdown" in paths(news, date_from=exactly)


def test_search_quality_range_excludes_articles_without_quality(news: SearchService):
    assert set(paths(news, min_quality=80)) == {"b.md", "c.md", "sub/f.markdown"}
    assert set(paths(news, max_quality=60)) == {"e.md"}
    assert "d.md" not in paths(news, min_quality=0)


# Sorting and paging ---------------------------------------------------------------------


def test_search_sorts_with_stable_tie_breaks(news: SearchService):
    assert paths(news, sort=Sort.OLDEST) == [
        "sub/f.markdown",
        "d.md",
        "c.md",
        "a.md",
        "b.md",
        "e.md",
    ]
    # quality 80 twice: the newer first; no quality last
    assert paths(news, sort=Sort.QUALITY) == [
        "sub/f.markdown",
        "b.md",
        "c.md",
        "a.md",
        "e.md",
        "d.md",
    ]
    assert paths(news, text="microsoft", sort=Sort.NEWEST) == ["e.md", "b.md", "a.md"]


@pytest.mark.parametrize("sort", list(Sort))
def test_search_paging_yields_every_hit_exactly_once(sample: SearchService, sort: Sort):
    for text in ("", "microsoft OR cloud"):
        found = every_hit(sample, text=text, sort=sort)
        assert len(found) == len(set(found))
        assert len(found) == sample.search(SearchRequest(text=text, per_page=1)).total


def test_search_sort_orders_match_brute_force(sample: SearchService, sample_articles):
    articles = sample_articles.values()
    newest = sorted(articles, key=lambda a: (-a.published_at.timestamp(), a.path))
    assert every_hit(sample, sort=Sort.NEWEST) == [a.path for a in newest]
    by_quality = sorted(
        articles,
        key=lambda a: (
            -(a.quality if a.quality is not None else -(2**31)),
            -a.published_at.timestamp(),
            a.path,
        ),
    )
    assert every_hit(sample, sort=Sort.QUALITY) == [a.path for a in by_quality]


def _brute_force_key(sort: Sort):
    if sort is Sort.OLDEST:
        return lambda a: (a.published_at.timestamp(), a.path)
    if sort is Sort.QUALITY:
        return lambda a: (
            -(a.quality if a.quality is not None else -(2**31)),
            -a.published_at.timestamp(),
            a.path,
        )
    return lambda a: (-a.published_at.timestamp(), a.path)


@pytest.mark.parametrize("lookahead", [0, 256])
@pytest.mark.parametrize("sort", [Sort.NEWEST, Sort.OLDEST, Sort.QUALITY])
def test_search_date_ranged_pages_match_brute_force(
    sample_store: IndexStore, sample_articles, monkeypatch, lookahead: int, sort: Sort
):
    """A sorted page walks the date range's slice of the sort order, and sorts the matches
    when they cluster past its walk (no lookahead: walks fall short often)."""
    monkeypatch.setattr("searchidx.service.PAGE_LOOKAHEAD", lookahead)
    service = SearchService(sample_store, results_cached=0)
    articles = sorted(sample_articles.values(), key=lambda a: a.published_at)
    try:
        texts = ("", "cloud", "microsoft OR data", "date:[2018 TO 2019]", "date:[2025 TO 2026]")
        for text in texts:  # the last two match a quarter of the articles, at either end
            words = set(every_hit(service, text=text))
            for first, last in ((0, -1), (100, 103), (40, 360), (300, -1)):
                low, high = articles[first].published_at, articles[last].published_at
                expected = sorted(
                    (a for a in articles if low <= a.published_at <= high and a.path in words),
                    key=_brute_force_key(sort),
                )
                found = every_hit(service, text=text, sort=sort, date_from=low, date_to=high)
                assert found == [a.path for a in expected], (text, first, last)
    finally:
        service.close()


def _scored_hits(service: SearchService, **fields) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    page = 1
    while True:
        result = service.search(SearchRequest(page=page, per_page=100, **fields))
        found.update((hit.article.path, hit.score) for hit in result.hits)
        if page >= result.pages:
            return found
        page += 1


@pytest.mark.parametrize("sort", [Sort.RELEVANCE, Sort.BEST])
def test_search_scores_within_filters_are_those_of_the_whole_search(
    sample: SearchService, sample_articles, sort: Sort
):
    """A filtered search scores only the matches within its filters: each hit's score is the
    one it has unfiltered, and the hits are the unfiltered ones the filters keep."""
    dates = sorted(article.published_at for article in sample_articles.values())
    week = {"date_from": dates[200], "date_to": dates[230]}
    topics = sample.search(SearchRequest()).facet("topic")
    assert topics is not None
    topic = topics.values[0].value
    for text in ("cloud", "data OR microsoft", '"data center" OR security'):
        everywhere = _scored_hits(sample, text=text, sort=sort, facets=False)
        for filters in ({**week}, {"filters": {"topic": (topic,)}}, {**week, "min_quality": 50}):
            kept = set(_scored_hits(sample, **filters, facets=False))
            found = _scored_hits(sample, text=text, sort=sort, facets=False, **filters)
            assert found.keys() == everywhere.keys() & kept, (text, filters)
            assert found == {path: everywhere[path] for path in found}, (text, filters)
            scores = [float(score or 0) for score in found.values()]
            assert scores == sorted(scores, reverse=True)


def test_search_rejects_bad_paging(news: SearchService):
    with pytest.raises(QueryError, match="page must be 1 or more"):
        SearchRequest(page=0)
    with pytest.raises(QueryError, match="page size must be between 1 and 100"):
        SearchRequest(per_page=1000)
    with pytest.raises(QueryError, match="beyond the first 10,000 results"):
        SearchRequest(page=10**12)
    with pytest.raises(QueryError, match="start date is after the end date"):
        SearchRequest(
            date_from=datetime(2023, 1, 1, tzinfo=UTC), date_to=datetime(2022, 1, 1, tzinfo=UTC)
        )
    with pytest.raises(QueryError, match="unknown filter 'author'"):
        SearchRequest(filters={"author": ("x",)})
    with pytest.raises(QueryError, match="'next week' is not a date"):
        parse_date_bound("next week", end=False)


@pytest.mark.parametrize("facet", FACETS, ids=lambda facet: facet.name)
def test_facets_are_read_from_columns_of_the_schema(facet):
    schema = build_schema()
    assert facet.column in schema.names() and schema[facet.column].column_type is not None


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"published": ("yes",)}, "published must be true or false, not 'yes'"),
        ({"published": ("TRUE",)}, "published must be true or false, not 'TRUE'"),
        ({"topic": ("x" * 201,)}, "a topic value is longer than 200 characters"),
    ],
)
def test_request_checks_filter_values_by_their_facet(filters, message):
    with pytest.raises(QueryError, match=re.escape(message)) as raised:
        SearchRequest(filters=filters)
    assert raised.value.parameter == next(iter(filters))


def test_search_deep_pages_work(sample: SearchService):
    all_newest = every_hit(sample, sort=Sort.NEWEST)
    page = sample.search(SearchRequest(page=40, per_page=10, sort=Sort.NEWEST))
    assert [hit.article.path for hit in page.hits] == all_newest[390:400]


# Facets ---------------------------------------------------------------------------------


def brute_force_counts(articles, name: str, keep) -> Counter:
    counts: Counter = Counter()
    for article in articles:
        if keep(article):
            values = {
                "topic": article.topics,
                "provider": [article.provider.name],
                "category": [article.category],
                "type": [article.type],
                "published": [str(article.published).lower()],
                "month": [f"{article.published_at:%Y-%m}"],
            }[name]
            counts.update(value for value in values if value)
    return counts


FILTER_CASES = [
    {},
    {"provider": ("Forbes", "NBC News")},
    {"topic": ("AI", "Cloud Computing"), "type": ("article",)},
    {"published": ("false",), "category": ("news",)},
]


@pytest.mark.parametrize(
    "filters", FILTER_CASES, ids=["none", "providers", "topics+type", "unpublished-news"]
)
def test_search_facet_counts_equal_brute_force(sample: SearchService, sample_articles, filters):
    def value_of(article: Article, name: str) -> set[str]:
        return {
            "topic": {t.casefold() for t in article.topics},
            "provider": {article.provider.name.casefold()},
            "category": {article.category.casefold()},
            "type": {article.type.casefold()},
            "published": {str(article.published).lower()},
        }[name]

    def matches(article: Article, skip: str | None) -> bool:
        return all(
            value_of(article, name) & {v.casefold() for v in values}
            for name, values in filters.items()
            if name != skip
        )

    result = sample.search(SearchRequest(filters=filters, facet_size=200))
    articles = list(sample_articles.values())
    assert result.total == sum(matches(article, None) for article in articles)
    for facet in result.facets:
        expected = brute_force_counts(articles, facet.name, lambda a, f=facet: matches(a, f.name))
        listed = {value.value: value.count for value in facet.values if value.count}
        assert listed == {value: expected[value] for value in listed}, facet.name
        assert len(listed) + facet.more == len(expected), facet.name
        cutoff = min(listed.values(), default=0)
        assert all(count <= cutoff for value, count in expected.items() if value not in listed)


def test_facet_makes_its_values_and_json_from_its_counts(news: SearchService):
    """A facet holds its values, counts and choices as tuples (a kept result's hundred
    values, not an object each); its values and its JSON are made from them."""
    result = news.search(SearchRequest(filters={"provider": ("Forbes", "Nobody")}))
    provider = result.facet("provider")
    assert provider is not None
    assert type(provider.counts) is tuple and all(type(n) is int for n in provider.counts)
    listed = list(zip(provider.listed, provider.counts, provider.chosen, strict=True))
    assert ("Forbes", 2, True) in listed and listed[-1] == ("Nobody", 0, True)
    assert [(v.value, v.count, v.selected) for v in provider.values] == listed
    assert result.to_dict()["facets"]["provider"] == {
        "values": [{"value": v, "count": n, "selected": c} for v, n, c in listed],
        "more": provider.more,
    }


def test_search_facets_are_disjunctive(news: SearchService):
    result = news.search(SearchRequest(filters={"provider": ("Forbes",)}))
    providers = {
        value.value: (value.count, value.selected) for value in result.facet("provider").values
    }
    assert providers == {
        "Forbes": (2, True),
        "ExtremeTech": (1, False),
        "NBC News": (1, False),
        "The Verge": (1, False),
        "Wired": (1, False),
    }
    assert {v.value: v.count for v in result.facet("topic").values} == {
        "Cloud Computing": 1,
        "Regulation": 1,
        "Semiconductors": 1,
    }


def test_search_month_facet_ignores_the_date_range_and_marks_it(news: SearchService):
    result = news.search(
        SearchRequest(
            date_from=parse_date_bound("2022-06", end=False),
            date_to=parse_date_bound("2022-06", end=True),
        )
    )
    months = {value.value: (value.count, value.selected) for value in result.facet("month").values}
    assert months["2022-06"] == (2, True)
    assert months["2021-01"] == (1, False)
    assert result.total == 2


def test_search_long_facets_list_top_values_and_search_by_prefix(sample: SearchService):
    result = sample.search(SearchRequest(facet_size=5))
    providers = result.facet("provider")
    assert len(providers.values) == 5 and providers.more > 0
    counts = [value.count for value in providers.values]
    assert counts == sorted(counts, reverse=True)
    searched = sample.search(SearchRequest(facet_size=200, facet_search={"provider": "week"}))
    names = [value.value for value in searched.facet("provider").values]
    assert names and all("weekly" in name.lower().split() for name in names)


def test_search_selected_values_stay_listed(sample: SearchService):
    rare = sample.search(SearchRequest(facet_size=200)).facet("provider").values[-1].value
    result = sample.search(
        SearchRequest(filters={"provider": (rare, "No Such Outlet")}, facet_size=3)
    )
    listed = {value.value: value.selected for value in result.facet("provider").values}
    assert listed[rare] is True and listed["No Such Outlet"] is True


# Did-you-mean, retries, highlighting ----------------------------------------------------


def test_search_corrects_a_misspelling_and_says_what_it_ran(news: SearchService):
    result = news.search(SearchRequest(text="microsfot cloud"))
    assert result.retry == "corrected"
    assert result.ran_query == "microsoft cloud"
    assert result.did_you_mean is not None
    assert to_html(result.did_you_mean.marked, quote=True) == "<mark>microsoft</mark> cloud"
    assert [hit.article.path for hit in result.hits] == ["e.md"]


def test_search_offers_did_you_mean_when_few_results(news: SearchService):
    result = news.search(SearchRequest(text="clod OR quantum"))
    assert result.total == 1 and result.retry is None
    assert result.did_you_mean is not None and result.did_you_mean.text == "cloud OR quantum"


def test_search_retries_fuzzily_when_no_correction_exists(news: SearchService):
    result = news.search(SearchRequest(text="excerpt:azzure"))
    assert result.retry == "fuzzy" and [hit.article.path for hit in result.hits] == ["e.md"]


def test_search_allows_ten_fuzzy_or_wildcard_words(news: SearchService):
    assert news.search(
        SearchRequest(text=" OR ".join(f"clod{n}~" for n in range(9)) + " OR azzure~")
    )


def test_search_retries_fuzzily_only_a_few_words(news: SearchService):
    # Each word of a fuzzy retry is expanded against the vocabulary: a long query that finds
    # nothing is not retried word by word.
    few = news.search(SearchRequest(text="excerpt:azzure OR zzqx"))
    nonsense = " OR ".join(f"zzq{letter}" for letter in "abcdefghij")
    many = news.search(SearchRequest(text="excerpt:azzure OR " + nonsense))
    assert few.retry == "fuzzy" and few.total == 1
    assert (many.total, many.retry) == (0, None)


@pytest.mark.parametrize(
    ("text", "filters", "expected"),
    [
        ("azzure", {"provider": ("The Verge",)}, ("fuzzy", ["e.md"])),
        ("azzure", {"provider": ("Forbes",)}, (None, [])),  # the close word is elsewhere
        ("azzure budgetz", {"topic": ("Microsoft AI",)}, ("fuzzy", ["e.md"])),
        ("azzure budgetz", {"topic": ("Regulation",)}, (None, [])),
        ("azzure -qqqqq", {"provider": ("The Verge",)}, ("fuzzy", ["e.md"])),
        ("azzure -budgetz", {"provider": ("The Verge",)}, (None, [])),
        ('"azzure outage"', {"provider": ("Forbes",)}, (None, [])),
        ("intl OR azzure", {"topic": ("Semiconductors",)}, ("fuzzy", ["b.md"])),
    ],
)
def test_search_fuzzy_retry_within_filters_finds_what_it_found(
    news: SearchService, text: str, filters: dict[str, tuple[str, ...]], expected: tuple
):
    # Pinned before the retry learnt to tell, without walking every word list, that its fuzzy
    # words find nothing the filters allow.
    result = news.search(SearchRequest(text=text, filters=filters))
    assert (result.retry, [hit.article.path for hit in result.hits]) == expected
    assert result.total == len(expected[1])


def test_search_runs_no_retry_when_the_filters_alone_match_nothing(
    news: SearchService, monkeypatch: pytest.MonkeyPatch
):
    # No query text finds an article the filters leave out: a fuzzy retry (a walk through
    # every word list) would be work for nothing.
    parsed: list[str] = []
    parse_query = querylang.parse_query

    def parsing(text: str, **options: bool):
        parsed.append(text)
        return parse_query(text, **options)

    monkeypatch.setattr(querylang, "parse_query", parsing)
    nowhere = SearchRequest(
        text="excerpt:azzure", filters={"provider": ("Wired",), "topic": ("AI",)}
    )
    assert (news.search(nowhere).total, parsed) == (0, [])
    elsewhere = SearchRequest(text="excerpt:azzure", filters={"provider": ("Wired",)})
    result = news.search(elsewhere)
    assert (result.total, result.retry, parsed) == (0, None, ["excerpt:azzure"])


def test_search_reports_nothing_when_nothing_is_close(news: SearchService):
    result = news.search(SearchRequest(text="zzyzx"))
    assert (result.total, result.retry, result.did_you_mean) == (0, None, None)


def test_search_highlights_matches_and_escapes_everything_else(news: SearchService):
    hit = news.search(SearchRequest(text="quantum noise")).hits[0]
    assert to_html(hit.marked_title) == (
        '<mark class="match term0">Quantum</mark> chips &lt;script&gt;alert(1)&lt;/script&gt;'
    )
    excerpt = to_html(hit.marked_excerpt)
    assert "&lt;b&gt;<mark" in excerpt and "<b>" not in excerpt
    plain = news.search(SearchRequest(filters={"provider": ("Wired",)})).hits[0]
    assert to_html(plain.marked_title) == "Quantum chips &lt;script&gt;alert(1)&lt;/script&gt;"


def test_search_result_json_renders_each_hits_marks_once(
    news: SearchService, monkeypatch: pytest.MonkeyPatch
):
    """A cached result's JSON is written for every request of it: its hits' HTML is kept."""
    rendered = []
    monkeypatch.setattr(result_module, "to_html", lambda text: rendered.append(text) or "x")
    found = news.search(SearchRequest(text="quantum noise"))
    first = found.to_dict()
    assert found.to_dict() == first and first["hits"][0]["title_html"] == "x"
    assert len(rendered) == 2 * len(found.hits) > 0


def test_search_snippet_comes_from_the_body_when_only_the_body_matches(news: SearchService):
    hit = news.search(SearchRequest(text="budgets", filters={"provider": ("Wired",)})).hits[0]
    assert "<mark" in to_html(hit.marked_excerpt) and "budgets" in to_html(hit.marked_excerpt)
    # the body gave the snippet; the hit (kept in the result cache) does not hold it
    assert hit.article.body == "" and hit.article.title


@pytest.mark.parametrize("text", ["quantum noise", "budgets", "micro*", "recognitoin"])
def test_search_without_highlighting_gives_the_same_answer_unmarked(news: SearchService, text):
    marked = news.search(SearchRequest(text=text, sort=Sort.RELEVANCE))
    plain = news.search(SearchRequest(text=text, sort=Sort.RELEVANCE, highlight=False))
    shown = [piece for hit in marked.hits for piece in hit.marked_title + hit.marked_excerpt]
    assert any(isinstance(piece, Mark) for piece in shown)
    assert plain.hits and (plain.total, plain.facets) == (marked.total, marked.facets)
    assert (plain.ran_query, plain.retry) == (marked.ran_query, marked.retry)
    assert [(hit.article, hit.score) for hit in plain.hits] == [
        (hit.article, hit.score) for hit in marked.hits
    ]
    for hit in plain.hits:  # as a browse shows them: the title and excerpt as written
        assert hit.marked_title == (hit.article.title,)
        assert hit.marked_excerpt == (hit.article.excerpt,)


def test_search_hits_carry_the_article_and_never_secured(tmp_path: Path, seed_dir: Path):
    store = IndexStore(tmp_path / "ix")
    indexer.sync(store, seed_dir)
    service = SearchService(store)
    result = service.search(SearchRequest(text="emotion"))
    service.close()
    article = result.hits[0].article
    assert article.provider.name == "ExtremeTech" and article.quality == 69
    assert len(article.related) == 5
    assert article.image is not None and article.image.width == 640
    assert article.url.startswith("https://www.extremetech.com/")
    assert "83pOGiRlIfRn" not in repr(result.to_dict())
    assert result.to_dict()["hits"][0]["published_at"] == "2022-06-24T14:08:00Z"


# Real-shaped articles, refresh and autocomplete ------------------------------------------


def test_search_on_real_shaped_articles(tmp_path: Path):
    store = IndexStore(tmp_path / "ix")
    indexer.sync(store, ARTICLES_DIR)
    service = SearchService(store)
    try:
        articles = [read_article(ARTICLES_DIR, p) for p in scan_content(ARTICLES_DIR)]
        result = service.search(SearchRequest(text="portals", facet_size=200))
        texts = {a.path: f"{a.title} {a.excerpt} {a.body}".lower() for a in articles}
        mentions = {path for path, text in texts.items() if "portal" in text}
        assert {hit.article.path for hit in result.hits} == mentions and len(mentions) == 5
        assert all(
            "portal" in to_html(hit.marked_title).lower() + to_html(hit.marked_excerpt).lower()
            for hit in result.hits
        )
        assert "bSXPc0xJod0n" not in repr(result.to_dict())  # a start of a secured blob
        browse = service.search(SearchRequest(facet_size=200))
        expected = brute_force_counts(articles, "provider", lambda a: True)
        assert {v.value: v.count for v in browse.facet("provider").values} == dict(expected)
    finally:
        service.close()


def test_service_picks_up_syncs_and_rebuilds(content: Path, store: IndexStore, monkeypatch):
    monkeypatch.setattr("searchidx.service.REFRESH_INTERVAL", 0)
    indexer.sync(store, content)
    service = SearchService(store)
    before = service.search(SearchRequest()).total
    write_article(content, "zz/new.md", 'title: "Zebra news"\npublishedDateTime: 2030-01-01')
    indexer.sync(store)
    assert service.search(SearchRequest()).total == before + 1
    assert service.search(SearchRequest(text="zebra")).total == 1
    (content / "zz" / "new.md").unlink()
    indexer.rebuild(store)
    assert service.search(SearchRequest()).total == before
    assert service.search(SearchRequest(text="zebra")).total == 0
    service.close()


class RebuiltWhileRead(IndexStore):
    """An index location that another process rebuilds, once, at the ``moment`` a reader
    has read the name of the live generation (``"named"``) or opened its index (``"opened"``):
    the generation it goes on with is then removed (the load test's interleaving)."""

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self.moment: str | None = None

    def generation(self) -> str:
        name = super().generation()
        self._rebuild_at("named")
        return name

    def open_index(self, generation: str | None = None) -> FileIndex:
        index = super().open_index(generation)
        self._rebuild_at("opened")
        return index

    def _rebuild_at(self, moment: str) -> None:
        if self.moment == moment:
            self.moment = None
            indexer.rebuild(IndexStore(self.location))


@pytest.mark.parametrize("moment", ["named", "opened"])
def test_service_refreshes_onto_the_rebuild_that_removed_the_generation_it_read(
    content: Path, tmp_path: Path, monkeypatch, moment: str
):
    monkeypatch.setattr("searchidx.service.REFRESH_INTERVAL", 0)
    store = RebuiltWhileRead(tmp_path / "index")
    indexer.sync(store, content)
    service = SearchService(store)
    try:
        before = service.search(SearchRequest()).total
        write_article(content, "zz/new.md", 'title: "Zebra news"\npublishedDateTime: 2030-01-01')
        if moment == "opened":  # a generation the service has not opened yet
            indexer.rebuild(store)
        store.moment = moment
        after = service.search(SearchRequest(text="zebra"))
        assert store.moment is None  # the rebuild ran under the refresh
        assert after.total == 1 and service.search(SearchRequest()).total == before + 1
    finally:
        service.close()


def test_service_finishes_a_search_on_the_generation_it_began_on(
    content: Path, store: IndexStore, monkeypatch
):
    """A search paused once it matches, while another process syncs an edit and rebuilds
    (removing the generation the search reads) and another search refreshes onto that, ends
    on what it began on: its hits, their bodies and the arrays, none read before
    (``prepare=False``), from the removed files of a searcher not closed under it."""
    monkeypatch.setattr("searchidx.service.REFRESH_INTERVAL", 0)
    walrus = 'title: "Walrus report"\npublishedDateTime: 2030-01-01'
    write_article(content, "zz/a.md", walrus, "A zebra crossed the ice.")
    indexer.sync(store, content)
    began = store.generation_dir()
    service = SearchService(store, results_cached=0, prepare=False)

    def change() -> None:
        if began.exists():
            narwhal = 'title: "Narwhal report"\npublishedDateTime: 2030-01-01'
            write_article(content, "zz/a.md", narwhal, "A narwhal swam.")
            indexer.sync(store)
            indexer.rebuild(store)
            meanwhile.append(service.search(SearchRequest(text="narwhal")))  # the next snapshot

    meanwhile: list[SearchResult] = []
    try:
        during = service.search(SearchRequest(text="zebra", sort=Sort.BEST), pause=change)
        assert not began.exists()
        after = service.search(SearchRequest(text="zebra"))
    finally:
        service.close()
    assert [hit.article.title for hit in during.hits] == ["Walrus report"]
    assert during.hits[0].marked_excerpt == ("A ", Mark("zebra", 0), " crossed the ice")
    assert during.facet("provider") is not None and after.total == 0
    assert [hit.article.title for result in meanwhile for hit in result.hits] == ["Narwhal report"]


@pytest.mark.parametrize("kept", [RESULTS_CACHED, 0])
def test_service_answers_a_repeated_request_from_its_result_cache(sample_store: IndexStore, kept):
    service = SearchService(sample_store, results_cached=kept)
    searched = []
    search = service._search
    service._search = lambda *args: searched.append(args[1]) or search(*args)  # type: ignore[method-assign]
    try:
        first = service.search(SearchRequest(text="cloud", filters={"topic": ("AI",), "type": ()}))
        again = service.search(SearchRequest(text="cloud", filters={"type": (), "topic": ("AI",)}))
        other = service.search(SearchRequest(text="cloud", page=2))
    finally:
        service.close()
    assert first.total and dataclasses.replace(again, took_ms=first.took_ms) == first
    assert other.hits != first.hits
    assert len(searched) == (2 if kept else 3)  # with no cache, every request searches


def test_service_keeps_results_within_a_bound_of_bytes(sample_store: IndexStore, monkeypatch):
    """Results are kept within a bound of bytes as well as of their number: pages of 100 hits
    with long facet lists push out the ones used longest ago (512 of them weighed more than
    a worker's whole budget), where smaller results stay."""
    pages = [SearchRequest(per_page=100, facet_size=200, page=page) for page in (1, 2, 3)]
    probe = SearchService(sample_store)
    try:
        weight = probe.search(pages[0]).kept_bytes()
    finally:
        probe.close()
    assert weight > 100 * result_module.HIT_BYTES
    monkeypatch.setattr("searchidx.snapshot.RESULTS_CACHED_BYTES", 2 * weight)
    service = SearchService(sample_store)
    searched = []
    search = service._search
    service._search = lambda *args: searched.append(args[1]) or search(*args)  # type: ignore[method-assign]
    try:
        for request in [*pages, pages[2], pages[0]]:
            service.search(request)
        kept = service.snapshot().results
    finally:
        service.close()
    assert searched == [*pages, pages[0]]  # the third pushed out the first
    assert 0 < kept._weighed <= 2 * weight and len(kept._items) < RESULTS_CACHED


def test_suggest_completes_topics_providers_and_title_words(news: SearchService):
    suggestions = [(s.text, s.kind, s.count) for s in news.suggest("cl")]
    assert suggestions == [("Cloud Computing", "topic", 2), ("cloud", "word", 2)]
    assert [(s.text, s.kind) for s in news.suggest("for")] == [("Forbes", "provider")]
    assert news.suggest("  ") == ()


def test_service_forgets_deleted_and_replaced_documents_after_a_sync(
    content: Path, store: IndexStore, monkeypatch
):
    monkeypatch.setattr("searchidx.service.REFRESH_INTERVAL", 0)
    write_article(content, "zz/a.md", 'title: "Walrus report"\npublishedDateTime: 2030-01-01')
    write_article(content, "zz/b.md", 'title: "Walrus sighting"\npublishedDateTime: 2030-01-02')
    indexer.sync(store, content)
    service = SearchService(store)
    before = service.search(SearchRequest()).total
    assert service.search(SearchRequest(text="walrus")).total == 2
    (content / "zz" / "a.md").unlink()
    write_article(content, "zz/b.md", 'title: "Narwhal sighting"\npublishedDateTime: 2030-01-02')
    indexer.sync(store)
    assert service.search(SearchRequest()).total == before - 1
    assert service.search(SearchRequest(text="walrus")).total == 0
    assert [hit.article.title for hit in service.search(SearchRequest(text="narwhal")).hits] == [
        "Narwhal sighting"
    ]
    service.close()


def test_service_frees_the_snapshot_a_sync_replaced(content: Path, store: IndexStore, monkeypatch):
    monkeypatch.setattr("searchidx.service.REFRESH_INTERVAL", 0)
    indexer.sync(store, content)
    service = SearchService(store)  # prepared: every kept array and table read
    service.search(SearchRequest(text="cloud", sort=Sort.NEWEST))
    replaced = weakref.ref(service.snapshot())
    write_article(content, "zz/a.md", 'title: "Walrus report"\npublishedDateTime: 2030-01-01')
    indexer.sync(store)
    assert service.search(SearchRequest(text="walrus")).total == 1
    gc.collect()
    assert replaced() is None  # with its postings and shown articles
    service.close()


def test_service_answers_on_an_index_of_an_empty_folder(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    store = IndexStore(tmp_path / "ix")
    indexer.sync(store, tmp_path / "empty")
    service = SearchService(store)
    try:
        for request in (
            SearchRequest(),
            SearchRequest(text="cloud", sort=Sort.QUALITY),
            SearchRequest(filters={"topic": ("AI",)}, date_from=datetime(2020, 1, 1, tzinfo=UTC)),
        ):
            result = service.search(request)
            assert (result.total, result.hits) == (0, ())
            assert all(value.count == 0 for facet in result.facets for value in facet.values)
        assert service.suggest("cl") == ()
    finally:
        service.close()
