"""Hostile requests against a real ``searchidx serve`` on an index large enough to show the
problem of issue #15: 20,000 generated articles (written and indexed once for this module,
about 35 s on a busy 2-core machine), on which ``q=*`` took 2.3 s and ``*e*`` 0.5 s before
the bounds.

The issue's own requests, a seeded hostile set (bench/hostile.py) and Hypothesis-generated
texts (wildcards, fuzzy words, ranges, long phrases, many words, every field, up to 1,000
characters; every parameter at its limits) must each be answered with any status but a 5xx
within :data:`LIMIT_SECONDS`: the issue's 250 ms at 100,000 articles, with a wide margin for a
busy machine. The server runs with a budget above that limit, so a slow search fails the test
instead of being stopped (the budget itself is tested in tests/test_bounds.py). While 4 clients
send hostile requests, 12 ordinary ones must all succeed, quickly (hostile ones may be refused
for now when the server's lane for broad searches is busy: a 429, never a 5xx).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.hostile import ENDPOINTS, ISSUE_URLS, hostile_urls, vocabulary
from searchidx import indexer
from searchidx.querylang import QUERY_FIELDS
from searchidx.request import Sort
from searchidx.sample import write_sample
from searchidx.store import IndexStore
from tests.web_helpers import SEARCHIDX, serving

ARTICLES = 20_000
LIMIT_SECONDS = 2.0
#: The server's budget: above the limit, so that slowness fails rather than answers 503.
SERVER_TIMEOUT = "5"
HOSTILE_CLIENTS, ORDINARY_CLIENTS = 4, 12
LOAD_SECONDS = 8.0
ORDINARY_URLS = tuple(
    f"/api/search?{urlencode(params)}"
    for params in (
        {"q": "microsoft"},
        {"q": "cloud regulation", "topic": "AI"},
        {"q": '"chip production"'},
        {"sort": "newest", "provider": "Forbes"},
        {"q": "analysts", "sort": "quality"},
        {"from": "2022", "to": "2022-06"},
        {"q": "quantum OR robotics", "page": "3"},
    )
)


@pytest.fixture(scope="module")
def big_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile-sample")
    write_sample(folder, ARTICLES, seed=15)
    store = IndexStore(tmp_path_factory.mktemp("hostile-index"))
    indexer.rebuild(store, folder)
    return store.location


@pytest.fixture(scope="module")
def server(big_index: Path) -> Iterator[tuple[str, int]]:
    with serving(big_index, "--search-timeout", SERVER_TIMEOUT) as url:
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        yield parts.hostname, parts.port


def fetch(server: tuple[str, int], url: str) -> tuple[int, float, bytes]:
    connection = http.client.HTTPConnection(*server, timeout=60)
    try:
        started = time.perf_counter()
        connection.request("GET", url)
        response = connection.getresponse()
        body = response.read()
        return response.status, time.perf_counter() - started, body
    finally:
        connection.close()


def assert_bounded(server: tuple[str, int], url: str) -> int:
    status, seconds, body = fetch(server, url)
    assert status < 500, f"{url}: {status} {body[:300]!r}"
    assert seconds < LIMIT_SECONDS, f"{url}: {seconds:.2f} s"
    return status


@pytest.mark.parametrize("url", ISSUE_URLS)
def test_serve_answers_the_issues_requests_quickly(server, url: str):
    assert_bounded(server, url)


def test_serve_answers_a_bare_star_as_every_article(server):
    status, _, body = fetch(server, "/api/search?q=title:*&per_page=1")
    assert status == 200 and f'"total":{ARTICLES + 1}' in body.decode()  # + the seed article


def test_serve_reads_a_leading_wildcard_as_punctuation_saying_so(server):
    status, _, body = fetch(server, "/api/search?q=*e*")
    assert status == 200 and b"cannot start with a wildcard" in body


def test_serve_answers_the_seeded_hostile_set_quickly(server):
    statuses = [assert_bounded(server, url) for url in hostile_urls(120)]
    assert 200 in statuses and 400 in statuses  # some answered, some refused


WORDS = st.sampled_from(vocabulary())
FIELDS = st.sampled_from(list(QUERY_FIELDS))
BOUNDS = WORDS | st.integers(-(10**9), 10**9).map(str) | st.sampled_from(["2022", "2022-06"])
PIECES = st.one_of(
    WORDS,
    st.builds(lambda word, keep: word[:keep] + "*", WORDS, st.integers(0, 4)),
    st.builds(lambda word, keep: "*" + word[keep:] + "*", WORDS, st.integers(0, 4)),
    st.builds(lambda word, keep: word[:keep] + "?" + word[keep + 1 :], WORDS, st.integers(0, 4)),
    st.builds(lambda word, edits: f"{word}~{edits}", WORDS, st.sampled_from(["", "1", "2"])),
    st.builds(lambda field, low, high: f"{field}:[{low} TO {high}]", FIELDS, BOUNDS, BOUNDS),
    st.builds(lambda field, word: f"{field}:{word}", FIELDS, WORDS | st.just("*")),
    st.builds(
        lambda field, words, slop: f'{field}"{" ".join(words)}"{slop}',
        st.sampled_from(["", *(f"{name}:" for name in QUERY_FIELDS)]),
        st.lists(WORDS, min_size=2, max_size=80),
        st.sampled_from(["", "~1", "~5"]),
    ),
    st.sampled_from(["OR", "AND", "NOT", "-", "(", ")", "*", "?", "~", '"']),
    st.text(max_size=30),
)
TEXTS = st.lists(PIECES, min_size=1, max_size=300).map(lambda pieces: " ".join(pieces)[:1000])
LIMITS = st.fixed_dictionaries(
    {},
    optional={
        "per_page": st.sampled_from(["1", "100"]),
        "page": st.sampled_from(["1", "100", "10000"]),
        "facet_size": st.sampled_from(["1", "200"]),
        "topic_q": WORDS.map(lambda word: word[:1]),
        "provider_q": WORDS.map(lambda word: word[:2]),
        "sort": st.sampled_from([sort.value for sort in Sort]),
        "from": st.sampled_from(["0001", "2022"]),
        "to": st.sampled_from(["2022-06", "9999"]),
        "min_quality": st.sampled_from(["-2147483648", "0"]),
        "max_quality": st.sampled_from(["100", "2147483647"]),
    },
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=TEXTS, limits=LIMITS, endpoint=st.sampled_from([*ENDPOINTS, "/api/suggest"]))
def test_serve_answers_generated_hostile_requests_quickly(server, text, limits, endpoint):
    params = {"q": text, **limits} if endpoint != "/api/suggest" else {"q": text, "limit": "20"}
    assert_bounded(server, f"{endpoint}?{urlencode(params)}")


def test_serve_keeps_ordinary_clients_fast_under_hostile_load(server):
    hostile = hostile_urls(200, seed=16)
    ordinary: list[float] = []
    failures: list[str] = []
    stop = time.monotonic() + LOAD_SECONDS

    def client(urls: list[str] | tuple[str, ...], offset: int, latencies: list[float] | None):
        position = offset
        while time.monotonic() < stop:
            url = urls[position % len(urls)]
            try:
                status, seconds, body = fetch(server, url)
            except OSError as error:  # a timeout too: the test fails, not the thread
                failures.append(f"{url}: {error!r}")
                return
            if latencies is not None:
                latencies.append(seconds)
                if status != 200:
                    failures.append(f"{url}: {status} {body[:200]!r}")
            elif status >= 500:  # refused for now (429) at most
                failures.append(f"{url}: {status} {body[:200]!r}")
            position += 1

    threads = [
        threading.Thread(target=client, args=(hostile, n * 50, None))
        for n in range(HOSTILE_CLIENTS)
    ]
    threads += [
        threading.Thread(target=client, args=(ORDINARY_URLS, n, ordinary))
        for n in range(ORDINARY_CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(ordinary) > ORDINARY_CLIENTS
    assert np.percentile(ordinary, 95) < LIMIT_SECONDS


def test_serve_search_timeout_option_answers_503_past_the_budget(sample_store: IndexStore):
    with serving(sample_store.location, "--search-timeout", "0.000001") as url:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        status, _, body = fetch((parts.hostname, parts.port), "/api/search?q=microsoft")
    assert status == 503 and b'"parameter":null' in body and b"budget" in body


def test_serve_refuses_a_search_timeout_that_is_not_positive():
    done = subprocess.run([SEARCHIDX, "serve", "--search-timeout", "0"], capture_output=True)
    assert done.returncode == 2 and b"--search-timeout" in done.stderr


#: Broad searches (more than 8 words: run in the server's lane, see web/lane.py), each with a
#: page of 100 highlighted hits, different pages so that none is answered from the cache.
BROAD_URLS = tuple(
    "/api/search?" + urlencode({"q": " OR ".join(vocabulary()[n : n + 20]), "per_page": "100"})
    for n in range(0, 160, 20)
)


def lane_server(big_index: Path, *options: str) -> contextlib.AbstractContextManager[str]:
    return serving(big_index, "--workers", "1", *options)


def test_serve_runs_broad_searches_one_at_a_time_within_their_budget(big_index: Path):
    """8 broad searches at once, with a 0.05 s budget: the lane runs one at a time, so those
    still waiting when their budget ends are refused for now (429) saying so, none later than
    its budget (plus a wide margin for a busy machine); one that ran out of it is the
    budget's 503."""
    with lane_server(big_index, "--threads", "8", "--search-timeout", "0.05") as url:
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        server = (parts.hostname, parts.port)
        answers: list[tuple[int, float, bytes]] = []
        threads = [
            threading.Thread(target=lambda url=url: answers.append(fetch(server, url)))
            for url in BROAD_URLS
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    refused = [json.loads(body) for status, _, body in answers if status != 200]
    assert {status for status, _, _ in answers} <= {200, 429, 503}
    assert all(set(error) >= {"error", "parameter"} for error in refused)
    assert all(error["parameter"] is None for error in refused)
    assert all("budget" in e["error"] for e in refused if e["status"] == 503)
    waited = [e["error"] for e in refused if e["status"] == 429 and "other" in e["error"]]
    assert waited, [e["error"] for e in refused]  # the lane made them wait: one at a time
    assert max(seconds for _, seconds, _ in answers) < 0.05 + LIMIT_SECONDS


def test_serve_answers_ordinary_searches_while_the_lane_is_busy(big_index: Path):
    """2 clients keep the lane busy with broad searches while one sends ordinary ones: these
    run in the worker, each answered well within its budget, none refused."""
    with lane_server(big_index, "--threads", "4", "--search-timeout", SERVER_TIMEOUT) as url:
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        server = (parts.hostname, parts.port)
        stop = time.monotonic() + LOAD_SECONDS / 2
        broad: list[int] = []

        def keep_the_lane_busy(offset: int) -> None:
            position = offset
            while time.monotonic() < stop:
                page = f"&page={position // len(BROAD_URLS) + 1}"  # never from the cache
                broad.append(fetch(server, BROAD_URLS[position % len(BROAD_URLS)] + page)[0])
                position += 2

        threads = [threading.Thread(target=keep_the_lane_busy, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        ordinary = []
        while time.monotonic() < stop:
            for url in ORDINARY_URLS:
                ordinary.append(fetch(server, url)[:2])
        for thread in threads:
            thread.join()
    assert broad and set(broad) <= {200, 429}
    assert {status for status, _ in ordinary} == {200}
    assert max(seconds for _, seconds in ordinary) < LIMIT_SECONDS
