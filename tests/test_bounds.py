"""Bounded work per request (searchidx/bounds.py), on the session's real sample index: a bare
``*`` browses, leading wildcards are refused, each cap refuses the query that passes it with a
message saying how to narrow it, numeric ranges of the query text are the filters' ranges,
the time budget stops a search, and searches run side by side in one service."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from whoosh import qparser, query
from whoosh.reading import MultiReader

from searchidx import (
    bounds,
    defaults,
    indexer,
    matching,
    querylang,
    relaxation,
    whoosh_internals,
)
from searchidx import service as service_module
from searchidx.bounds import QueryTooBroad, SearchTimeout
from searchidx.cli import cli
from searchidx.errors import QueryError
from searchidx.lru import LruCache
from searchidx.marks import highlighted
from searchidx.querylang import parse_query
from searchidx.request import SearchRequest, Sort
from searchidx.result import Correction, Relaxation, SearchResult
from searchidx.schema import build_schema
from searchidx.service import SearchService
from searchidx.snapshot import IndexSnapshot
from searchidx.store import IndexStore
from searchidx.typedtext import Part
from searchidx.web.app import create_app


@pytest.fixture
def service(sample_store: IndexStore) -> Iterator[SearchService]:
    service = SearchService(sample_store, results_cached=0)
    yield service
    service.close()


def search(service: SearchService, text: str, **fields) -> SearchResult:
    return service.search(SearchRequest(text=text, **fields))


# A bare * ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "microsoft",
        "Microsoft quantum cloud",
        '"chip production" -quantum (cloud OR regions)',
        "micro* microsfot~ title:cloud^2 date:[2021 TO 2022] quality:[60 TO 90]",
        "NOT microsoft",
    ],
)
def test_leaves_are_whooshs_in_its_order(text: str):
    parsed = parse_query(text)
    assert parsed is not None
    assert [id(leaf) for leaf in bounds.leaves(parsed)] == [id(leaf) for leaf in parsed.leaves()]
    assert bounds.leaves(query.Term("title", "cloud")) == [query.Term("title", "cloud")]


@pytest.mark.parametrize("text", ["*", " * ", "title:*", "body:*"])
def test_parse_query_bare_star_is_a_browse(text: str):
    assert parse_query(text) is None


def test_search_bare_star_answers_every_article_newest_first(service: SearchService):
    browse = search(service, "")
    star = search(service, "*")
    assert star.total == browse.total > 0
    assert [hit.article.path for hit in star.hits] == [hit.article.path for hit in browse.hits]
    assert star.ran_query == "*"


def test_search_star_beside_words_matches_what_the_words_match(service: SearchService):
    assert search(service, "* microsoft").total == search(service, "microsoft").total > 0


# Leading wildcards and the caps -----------------------------------------------------------


@pytest.mark.parametrize("text", ["*e*", "?icrosoft", "title:*soft", "microsoft OR *e"])
def test_read_takes_a_leading_wildcard_as_punctuation_with_a_note(text: str):
    assert any("cannot start with a wildcard" in note for note in querylang.read(text).notes)
    parsed = parse_query(text)
    assert parsed is not None
    assert not any(isinstance(leaf, query.Wildcard) for leaf in parsed.leaves())


@pytest.mark.parametrize("text", ["*e*", "?icrosoft", "title:*soft"])
def test_check_query_refuses_a_leading_wildcard_given_as_whoosh_syntax(text: str):
    with pytest.raises(QueryError, match="starts with a wildcard") as caught:
        bounds.check_query(_whoosh_parsed(text), build_schema())
    assert caught.value.parameter == "q"


def test_parse_query_refuses_words_near_each_other():
    with pytest.raises(QueryError, match="words near each other are not searched") as caught:
        parse_query('"chip production"~5')
    assert caught.value.parameter == "q"
    parse_query('topic:"machine learning" "chip production"')  # text fields take phrases


@pytest.mark.parametrize("text", ['category:"news blog"', 'domain:"forbes com"'])
def test_check_query_refuses_phrases_in_fields_of_whole_values(text: str):
    with pytest.raises(QueryError, match="holds whole values, not phrases"):
        bounds.check_query(_whoosh_parsed(text), build_schema())
    parse_query(text)  # typed, a quoted value of such a field is one value, not a phrase


def _whoosh_parsed(text: str) -> query.Query:
    """``text`` as Whoosh's own parser reads it (not the typed reading)."""
    return qparser.QueryParser("body", build_schema()).parse(text)


def test_search_wildcards_past_the_word_cap_are_refused(service, monkeypatch):
    assert search(service, "st*").total > 0
    monkeypatch.setattr(bounds, "MAX_EXPANDED_TERMS", 3)
    with pytest.raises(QueryTooBroad, match="more than 3 words") as caught:
        search(service, "st*")
    assert caught.value.parameter == "q"
    assert "micro* rather than m*" in str(caught.value)


def test_search_expansions_past_the_document_cap_are_refused(service, monkeypatch):
    monkeypatch.setattr(bounds, "MAX_EXPANDED_POSTINGS", 50)
    with pytest.raises(QueryTooBroad, match="more than 50 places"):
        search(service, "st*")
    assert search(service, "nosuchprefix*").total == 0  # nothing matched, nothing charged


@pytest.mark.parametrize("text", ["microsft~", "title:[a TO z]", "sha?e"])
def test_search_fuzzy_words_and_term_ranges_are_capped_like_wildcards(service, monkeypatch, text):
    search(service, text)
    monkeypatch.setattr(bounds, "MAX_EXPANDED_POSTINGS", 0)
    with pytest.raises(QueryTooBroad):
        search(service, text)


def test_search_words_past_the_cap_are_refused_before_their_documents_are_counted(
    service, monkeypatch
):
    matcher = service.snapshot().matcher
    monkeypatch.setattr(bounds, "MAX_EXPANDED_TERMS", 3)
    monkeypatch.setattr(matcher.reader, "doc_frequency", lambda *args: pytest.fail("counted"))
    with pytest.raises(QueryTooBroad, match="more than 3 words"):
        search(service, "title:[a TO z]")


def test_search_expansions_list_every_word_outside_a_request(service, monkeypatch):
    monkeypatch.setattr(bounds, "MAX_EXPANDED_TERMS", 3)
    everything = service.snapshot().match(parse_query("title:[a TO z]"), scored=False)
    with service.snapshot().reading:
        titled = service.snapshot().searcher.search(parse_query("title:[a TO z]"), limit=None)
        assert int(everything.mask.sum()) == len(titled) > 3


def test_search_caps_count_every_expansion_of_the_request(service, monkeypatch):
    with bounds.budget(None) as budget:
        service.snapshot().match(parse_query("st*"), scored=False)
    monkeypatch.setattr(bounds, "MAX_EXPANDED_TERMS", budget.terms)
    search(service, "st*")
    with pytest.raises(QueryTooBroad):
        search(service, "st* OR sa*")


def _words_looked_up(service: SearchService, text: str) -> int:
    parsed = parse_query(text)
    assert parsed is not None
    with bounds.budget(None) as budget:
        service.snapshot().match(parsed, scored=False)
    return budget.visits


def test_search_fuzzy_words_past_the_lookup_cap_are_refused(service, monkeypatch):
    looked_up = _words_looked_up(service, "microsft~")
    assert looked_up > 0
    monkeypatch.setattr(bounds, "MAX_WORDS_VISITED", looked_up)
    assert search(service, "microsft~").total > 0
    monkeypatch.setattr(bounds, "MAX_WORDS_VISITED", looked_up - 1)
    with pytest.raises(QueryTooBroad, match="fewer edits") as caught:
        search(service, "microsft~")  # its walks are kept: charged what they cost
    assert caught.value.parameter == "q"
    assert "'microsft~'" in str(caught.value)


def test_search_wildcards_testing_words_past_the_lookup_cap_are_refused(service, monkeypatch):
    tested = _words_looked_up(service, "mi?ro*")
    assert tested > _words_looked_up(service, "micro*") == 0  # a prefix lists its words only
    monkeypatch.setattr(bounds, "MAX_WORDS_VISITED", tested)
    assert search(service, "mi?ro*").total > 0
    monkeypatch.setattr(bounds, "MAX_WORDS_VISITED", tested - 1)
    with pytest.raises(QueryTooBroad, match="more letters before a wildcard"):
        search(service, "mi?ro*")


def test_search_walks_made_again_once_forgotten_are_charged_once(service, monkeypatch):
    tested = _words_looked_up(service, "mi?ro*")
    monkeypatch.setattr(bounds, "MAX_WORDS_VISITED", tested)
    monkeypatch.setattr(service.snapshot().matcher, "_expansions", LruCache(0))  # keeps none
    for _ in range(2):  # walked to be charged, then again to be matched: charged once
        assert search(service, "mi?ro*").total > 0


def test_search_fuzzy_walks_stop_at_the_lookup_cap(sample_store: IndexStore, monkeypatch):
    finds = []
    find = whoosh_internals._SortedWords.first_from
    monkeypatch.setattr(
        whoosh_internals._SortedWords,
        "first_from",
        lambda self, text: finds.append(text) or find(self, text),
    )
    monkeypatch.setattr(bounds, "MAX_WORDS_VISITED", 5)
    service = SearchService(sample_store, results_cached=0)
    with pytest.raises(QueryTooBroad):
        search(service, "microsft~2")
    assert finds[0] == ""  # where the walk starts: the field's first word
    assert len(finds[1:]) == 5  # the sixth word would pass the cap: it is not looked up
    service.close()


def test_leaf_postings_without_values_are_whooshs(
    sample_dir, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    """Blocks read without their positions (a fifth of the time) give Whoosh's documents and
    weights, over several blocks of a common word."""
    monkeypatch.setattr(whoosh_internals, "POSTINGS_PER_BLOCK", 100)
    monkeypatch.setattr(indexer, "BUILD_PROCESSES", 1)  # written in this process, so
    store = IndexStore(tmp_path)
    indexer.sync(store, sample_dir)
    with store.open_index().searcher() as searcher:
        for leaf, _ in searcher.reader().leaf_readers():
            word = max(leaf.lexicon("body"), key=lambda w: leaf.doc_frequency("body", w))
            assert leaf.doc_frequency("body", word) > 100  # in several blocks
            docs, weights, values = whoosh_internals.leaf_postings(leaf, "body", word, False)
            public = list(leaf.postings("body", word).items_as("weight"))
            assert values == []
            assert [(int(d), float(w)) for d, w in zip(docs, weights, strict=True)] == public


def test_search_words_past_the_postings_cap_are_refused_before_reading_them(
    service, sample_store: IndexStore, monkeypatch
):
    with bounds.budget(None) as budget:
        service.snapshot().match(parse_query("microsoft OR google"), scored=False)
    assert budget.word_postings > 0
    monkeypatch.setattr(bounds, "MAX_WORD_POSTINGS", budget.word_postings)
    assert search(service, "microsoft OR google").total > 0
    monkeypatch.setattr(bounds, "MAX_WORD_POSTINGS", budget.word_postings - 1)
    fresh = SearchService(sample_store, results_cached=0)  # nothing read yet
    monkeypatch.setattr(fresh.snapshot().matcher, "_read_postings", lambda *a: pytest.fail("read"))
    with pytest.raises(QueryTooBroad, match="rarer words") as caught:
        search(fresh, "microsoft OR google")
    assert caught.value.parameter == "q"
    fresh.close()


def test_search_refusal_names_the_word_as_typed(service: SearchService, monkeypatch):
    """The index searches "compani"; the reader typed "Companies" and must recognise it."""
    monkeypatch.setattr(bounds, "MAX_WORD_POSTINGS", 0)
    with pytest.raises(QueryTooBroad, match=r"^'Companies' and the query's other words"):
        search(service, "Companies")


def test_search_words_are_charged_once_per_request(service: SearchService):
    parsed = parse_query("microsoft OR google")
    assert parsed is not None
    with bounds.budget(None) as budget:
        service.snapshot().match(parsed, scored=False)
        charged = budget.word_postings
        service.snapshot().match(parsed, scored=True)  # a retry reads them from the cache
        assert budget.word_postings == charged


def test_search_phrases_past_the_phrase_cap_are_refused(service, monkeypatch):
    assert search(service, '"chip production"').total >= 0
    monkeypatch.setattr(bounds, "MAX_PHRASE_POSTINGS", 1)
    with pytest.raises(QueryTooBroad, match="phrase"):
        search(service, '"chip production"')
    search(service, '"nosuchword production"')  # reads no positions: not refused


def test_search_fuzzy_retry_past_a_cap_is_skipped_not_refused(service, monkeypatch):
    monkeypatch.setattr(bounds, "MAX_EXPANDED_POSTINGS", 0)
    result = search(service, "xqzzyv")  # nothing found: the fuzzy retry would pass the cap
    assert result.retry != "fuzzy"


def test_search_relaxation_past_a_cap_is_skipped_not_refused(service, monkeypatch):
    text = '"chip production" xqzzyv'  # nothing matches; relaxing reads the phrase again
    with bounds.budget(None) as budget:
        service.snapshot().match(parse_query(text), scored=False)
    assert budget.phrase_postings > 0
    monkeypatch.setattr(bounds, "MAX_PHRASE_POSTINGS", budget.phrase_postings)
    result = search(service, text)
    assert result.total == 0 and result.retry != "relaxed"


# Numeric ranges of the query text ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("quality:[60 TO 90]", {"min_quality": 60, "max_quality": 90}),
        ("quality:[0 TO 1000]", {"min_quality": 0, "max_quality": 1000}),
    ],
)
def test_search_quality_range_in_the_text_is_the_filters_range(service, text, fields):
    assert search(service, text).total == search(service, "", **fields).total > 0


def test_search_numeric_ranges_read_no_terms(service: SearchService, monkeypatch):
    matcher = service.snapshot().matcher
    monkeypatch.setattr(matcher, "postings", lambda *args: pytest.fail("read a term"))
    everything = search(service, "").total
    assert 0 < search(service, "quality:[0 TO 1000] date:[2000 TO 2100]").total <= everything
    assert search(service, "date:2022").total < everything == search(service, "").total


# The time budget --------------------------------------------------------------------------


def test_deadline_check_raises_once_passed():
    bounds.Deadline(None).check()
    bounds.Deadline(60).check()
    deadline = bounds.Deadline(0.001)
    time.sleep(0.01)
    with pytest.raises(SearchTimeout, match=r"0\.001 s budget"):
        deadline.check()


def test_search_past_its_time_budget_stops_with_search_timeout(sample_store: IndexStore):
    service = SearchService(sample_store, results_cached=0, search_timeout=1e-9)
    try:
        with pytest.raises(SearchTimeout) as caught:
            search(service, "microsoft cloud")
        assert caught.value.parameter is None
        assert search(service, "").total > 0  # a browse reads no words: never stopped
    finally:
        service.close()


def test_search_without_a_budget_is_never_stopped(service: SearchService):
    assert service.search_timeout is None
    assert search(service, "microsoft OR cloud OR s*").total > 0


def test_reading_a_word_checks_the_budget_per_segment_and_while_decoding_positions(
    sample_store: IndexStore, monkeypatch
):
    """A common word's postings (100 ms with its positions at 100,000 articles) are read with
    the budget checked along the way: a heavy search yields or stops within them."""
    monkeypatch.setattr(matching, "_DECODED_PER_CHECK", 16)
    service = SearchService(sample_store, results_cached=0)
    snapshot = service.snapshot()
    segments = len(list(snapshot.reader.leaf_readers()))
    word = max(
        snapshot.reader.lexicon("body"), key=lambda w: snapshot.reader.doc_frequency("body", w)
    )
    documents = snapshot.reader.doc_frequency("body", word)
    checks: list[None] = []
    with bounds.budget(None, pause=lambda: checks.append(None)):
        snapshot.matcher.postings("body", word)
        assert len(checks) >= segments
        checks.clear()
        snapshot.matcher.positions("body", word)
    assert len(checks) >= segments + documents // 16
    service.close()


@pytest.fixture
def impatient_client(sample_store: IndexStore) -> FlaskClient:
    service = SearchService(sample_store, results_cached=0, search_timeout=1e-9)
    return create_app(search_service=service, config={"TESTING": True}).test_client()


def test_api_search_past_its_budget_answers_503_with_no_parameter(impatient_client):
    response = impatient_client.get("/api/search?q=microsoft")
    assert response.status_code == 503
    assert response.json["parameter"] is None and response.json["status"] == 503
    assert "budget" in response.json["error"]


def test_page_search_past_its_budget_shows_the_message_and_the_form(impatient_client):
    response = impatient_client.get("/?q=microsoft")
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "This search could not run" in page and "budget" in page
    assert 'value="microsoft"' in page


def test_feed_past_its_budget_answers_503_in_plain_text(impatient_client):
    response = impatient_client.get("/feed.atom?q=microsoft")
    assert response.status_code == 503 and response.mimetype == "text/plain"
    assert "budget" in response.get_data(as_text=True)


def test_create_app_gives_searches_the_default_budget(sample_store: IndexStore):
    service = create_app(sample_store).extensions["searchidx"]
    assert service.search_timeout == defaults.DEFAULT_SEARCH_TIMEOUT


def test_api_search_past_a_cap_answers_400_naming_q(sample_store, monkeypatch):
    client = create_app(sample_store, config={"TESTING": True}).test_client()
    monkeypatch.setattr(bounds, "MAX_EXPANDED_TERMS", 1)
    for url in ("/api/search?q=st*", "/api/search?q=body:st*"):
        response = client.get(url)
        assert response.status_code == 400 and response.get_json()["parameter"] == "q"
    page = client.get("/?q=st*")
    assert page.status_code == 400 and "micro* rather than m*" in page.get_data(as_text=True)


# Side by side -----------------------------------------------------------------------------


def test_search_threads_share_one_service_and_get_sequential_answers(sample_store: IndexStore):
    texts = ["microsoft", "s*", '"chip production"', "cloud OR quantum", "regul*", "*", ""]
    requests = [SearchRequest(text=text, sort=sort) for text in texts for sort in Sort]
    alone = SearchService(sample_store, results_cached=0)
    expected = [alone.search(request).to_dict() for request in requests]
    alone.close()
    shared = SearchService(sample_store, results_cached=0)
    answers: dict[int, list] = {}

    def run(number: int) -> None:
        answers[number] = [shared.search(request).to_dict() for request in requests]

    threads = [threading.Thread(target=run, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shared.close()
    for got in answers.values():
        assert [_without_time(a) for a in got] == [_without_time(a) for a in expected]


def _without_time(answer: dict) -> dict:
    return {key: value for key, value in answer.items() if key != "took_ms"}


def test_search_does_not_wait_for_another_search(service: SearchService, monkeypatch):
    """A search stuck inside the matching does not hold the others up."""
    snapshot = service.snapshot()
    entered, release = threading.Event(), threading.Event()
    match = snapshot.match

    def stuck(parsed, scored, within=None):
        if "xyz" in str(parsed):
            entered.set()
            release.wait(10)
        return match(parsed, scored, within)

    monkeypatch.setattr(snapshot, "match", stuck)
    slow = threading.Thread(target=search, args=(service, "xyz"))
    fast = threading.Thread(target=search, args=(service, "microsoft"))
    slow.start()
    try:
        assert entered.wait(10)
        fast.start()
        fast.join(5)
        assert not fast.is_alive(), "the search waited for the stuck one"
    finally:
        release.set()
        slow.join()
        fast.join()


def test_lru_cache_gives_a_value_not_to_keep_without_keeping_it():
    cache: LruCache[str, int] = LruCache(8)
    assert cache.get("made", lambda: 1, keep=False) == 1
    assert cache.get("made", lambda: 2) == 2  # made again, kept now
    assert cache.get("made", lambda: 3, keep=False) == 2  # a kept value is given


def test_lru_cache_keeps_at_most_its_most_values_whatever_they_weigh():
    cache: LruCache[int, int] = LruCache(100, weight=lambda value: value, most=2)
    for key in (1, 2, 3):
        cache.get(key, lambda key=key: key)  # type: ignore[misc]
    assert list(cache._items) == [2, 3]
    cache.get(99, lambda: 99)  # past the weight: the oldest go
    assert list(cache._items) == [99]


def test_lru_cache_of_no_values_never_weighs_one():
    def weigh(value: int) -> int:
        raise AssertionError("a value weighed that no cache of none keeps")

    cache: LruCache[int, int] = LruCache(100, weight=weigh, most=0)
    assert cache.get(1, lambda: 1) == 1
    assert not cache._items


def test_lru_cache_answers_and_stays_bounded_under_many_threads():
    cache: LruCache[int, int] = LruCache(8)

    def use(offset: int) -> None:
        for number in range(2000):
            key = (number + offset) % 20
            # mypy cannot infer a lambda with a default argument (the key of this turn).
            assert cache.get(key, lambda key=key: key * 2) == key * 2  # type: ignore[misc]

    threads = [threading.Thread(target=use, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache._items) == 8


# Suggest ----------------------------------------------------------------------------------


def test_suggest_words_are_the_most_frequent_title_words_with_the_prefix(service, sample_store):
    index = sample_store.open_index()
    with index.searcher() as searcher:
        reader = searcher.reader()
        expected = sorted(
            (
                (reader.doc_frequency("spell_title", w), w.decode())
                for w in reader.expand_prefix("spell_title", "s")
            ),
            key=lambda item: (-item[0], item[1]),
        )
    words = [s for s in service.suggest("s", limit=20) if s.kind == "word"]
    assert [(s.count, s.text) for s in words] == expected[: len(words)]
    assert words


def test_read_leaves_out_the_words_past_the_cap_with_a_note():
    parse_query(" ".join(f"word{number}" for number in range(bounds.MAX_QUERY_WORDS)))
    too_many = " OR ".join(f"word{number}" for number in range(bounds.MAX_QUERY_WORDS + 1))
    reading = querylang.read(too_many)
    assert f"word{bounds.MAX_QUERY_WORDS - 1}" in reading.query
    assert f"word{bounds.MAX_QUERY_WORDS}" not in reading.query
    assert any("at most 32 different words" in note for note in reading.notes)
    parse_query(too_many)
    with pytest.raises(QueryError, match=f"use at most {bounds.MAX_QUERY_WORDS}"):
        bounds.check_query(_whoosh_parsed(too_many), build_schema())
    parse_query(" ".join(["microsoft"] * 100))  # the same word is read once


@pytest.mark.parametrize("text", ["st*", "body:st*"])
def test_cli_query_refuses_like_the_web(sample_store: IndexStore, monkeypatch, text: str):
    monkeypatch.setattr(bounds, "MAX_EXPANDED_TERMS", 1)
    result = CliRunner().invoke(cli, ["query", text, "--index", str(sample_store.location)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "Traceback" not in result.output


def test_search_goes_on_with_the_old_snapshot_while_a_new_one_is_prepared(
    content, store: IndexStore, monkeypatch
):
    indexer.sync(store, content)
    service = SearchService(store, results_cached=0)
    before = search(service, "").total
    next(content.rglob("*.md")).unlink()
    indexer.sync(store)
    monkeypatch.setattr(service_module, "REFRESH_INTERVAL", 0)
    entered, release = threading.Event(), threading.Event()
    prepare = IndexSnapshot.prepare

    def slow_prepare(snapshot: IndexSnapshot) -> IndexSnapshot:
        entered.set()
        release.wait(10)
        return prepare(snapshot)

    monkeypatch.setattr(IndexSnapshot, "prepare", slow_prepare)
    refreshing = threading.Thread(target=search, args=(service, ""))
    refreshing.start()
    try:
        assert entered.wait(10)
        assert search(service, "").total == before  # the old snapshot answers meanwhile
    finally:
        release.set()
        refreshing.join()
    assert search(service, "").total == before - 1
    service.close()


def test_fuzzy_words_expand_segment_by_segment_never_scanning_every_word(
    content, store: IndexStore, monkeypatch
):
    """The whole index's reader tests every word it has for a fuzzy word (8 s over 450,000
    distinct words); each segment's reader walks its word graph."""
    indexer.sync(store, content)
    edited = next(content.rglob("*.md"))
    edited.write_text(edited.read_text().replace('title: "', 'title: "Microsoft edit ', 1))
    indexer.sync(store)
    service = SearchService(store, results_cached=0)
    assert len(list(service.snapshot().reader.leaf_readers())) > 1
    monkeypatch.setattr(MultiReader, "terms_within", lambda *args: pytest.fail("scanned"))
    assert search(service, "microsuft~").total == search(service, "microsoft").total > 0
    service.close()


# Retries: corrections and relaxation ------------------------------------------------------


def test_correct_with_looks_up_at_most_the_cap_of_unknown_words():
    looked_up: list[str] = []

    def closest(word: str) -> str:
        looked_up.append(word)
        return word + "s"

    words = [f"w{letter}q" for letter in "abcdefgh"]
    corrected = querylang.correct_with(" ".join(words), lambda word: False, closest)
    assert looked_up == words[: querylang.MAX_CORRECTED_WORDS]
    assert corrected is not None
    kept = words[querylang.MAX_CORRECTED_WORDS :]
    assert corrected.text.split()[querylang.MAX_CORRECTED_WORDS :] == kept  # left as typed


@pytest.mark.parametrize("typed", ["microsft", "goverment", "elecric", "qzzzq", "chp"])
def test_correct_suggests_what_whooshs_corrector_suggests(service: SearchService, typed: str):
    snapshot = service.snapshot()
    with snapshot.reading:
        expected = snapshot.searcher.reader().corrector("title").suggest(typed, 1, 2, 1)
        found = querylang.correct(typed, snapshot.searcher, snapshot.title_words[0])
    assert (found.text if found else None) == (expected[0] if expected else None)


def test_retries_work_out_each_only_when_those_before_found_nothing():
    """Both engines' retry chain: the correction, it relaxed, the query relaxed, the fuzzy
    query; a relaxation (counts the engine makes) only once the retries before it failed."""
    relaxed_texts: list[str] = []

    def relaxed(text: str) -> Relaxation:
        relaxed_texts.append(text)
        first, *rest = text.split()
        return Relaxation(len(rest) + 1, (first,), tuple(rest), False)

    correction = Correction("cloud computing", highlighted(["cloud computing"]))
    attempts = relaxation.retries("clowd computing", correction, relaxed)
    assert next(attempts).kind == "corrected" and relaxed_texts == []
    assert next(attempts).text == "cloud" and relaxed_texts == ["cloud computing"]
    rest = [(retry.text, retry.kind, retry.relaxed is not None) for retry in attempts]
    assert rest == [("clowd", "relaxed", True), ("clowd computing", "fuzzy", False)]
    assert relaxed_texts == ["cloud computing", "clowd computing"]


def test_relax_combines_no_set_with_a_word_found_nowhere(monkeypatch):
    combined: list[int] = []
    every = relaxation._every
    monkeypatch.setattr(
        relaxation, "_every", lambda masks, size: combined.append(1) or every(masks, size)
    )
    words = [f"w{number}" for number in range(12)]
    found = {"w3": np.array([True, False]), "w7": np.array([True, True])}
    parts = tuple(Part(word, (word,)) for word in words)
    relaxed = relaxation.relax(parts, lambda text: found.get(text, np.zeros(2, bool)), 2)
    assert relaxed is not None and relaxed.kept == ("w3", "w7")
    assert len(combined) < 10  # the two words found, not the 4,000 sets of the twelve


@pytest.mark.parametrize("text", ['market "supply chain" cloud', "st* market", "microsft~ cloud"])
def test_search_looked_up_at_few_documents_is_charged_as_over_every_document(
    service: SearchService, text: str
):
    """A query looked up at a filter's few documents (IndexSnapshot.match_at) is charged once,
    as matched over every document, also when a part of it is matched over every document
    (wildcards, fuzzy words)."""
    snapshot, parsed = service.snapshot(), parse_query(text)
    assert parsed is not None
    with bounds.budget(None) as everywhere:
        snapshot.match(parsed, scored=True)
    with bounds.budget(None) as few:
        snapshot.match_at(parsed, np.flatnonzero(snapshot.live)[:20])

    def charged(budget: bounds.Budget) -> tuple[int, ...]:
        return budget.terms, budget.postings, budget.word_postings, budget.phrase_postings

    assert charged(few) == charged(everywhere)
    assert sum(charged(few)) > 0
