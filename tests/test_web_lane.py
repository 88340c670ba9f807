"""Which searches go to the server's lane for heavy searches (web/lane.py): broad ones at once
(searchidx.bounds.broad), others once they pass their CPU share (bounds.HandOff), within the
request's deadline. The lane itself, under load and past the budget, is tested against a real
``searchidx serve`` in tests/test_web_bounds.py."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import NoReturn, cast

import pytest
from flask.testing import FlaskClient

from searchidx import bounds, querylang
from searchidx.request import SearchRequest
from searchidx.result import SearchResult
from searchidx.service import SearchService
from searchidx.store import IndexStore
from searchidx.web import lane as lane_module
from searchidx.web.app import create_app
from searchidx.web.lane import HeavyLane


class RecordingLane:
    """A lane that answers with a search of its own service, recording what it was given."""

    def __init__(self, service: SearchService, heavy_after: float) -> None:
        self.heavy_after = heavy_after
        self.service = service
        self.handed: list[tuple[SearchRequest, bounds.Deadline]] = []
        self.running = 0  # searches in the worker, as the lane sees them

    @contextlib.contextmanager
    def searching(self) -> Iterator[None]:
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1

    def search(self, request: SearchRequest, deadline: bounds.Deadline) -> SearchResult:
        assert self.running == 0  # the worker's search has stopped before it is handed off
        self.handed.append((request, deadline))
        return self.service.search(request, deadline)


@pytest.fixture
def lane(sample_store: IndexStore) -> Iterator[RecordingLane]:
    lane_service = SearchService(sample_store, results_cached=0, search_timeout=5.0)
    yield RecordingLane(lane_service, heavy_after=10.0)
    lane_service.close()


@pytest.fixture
def worker(sample_store: IndexStore, lane: RecordingLane) -> Iterator[SearchService]:
    service = SearchService(sample_store, results_cached=0, search_timeout=5.0, lane=lane)
    yield service
    service.close()


@pytest.mark.parametrize(
    ("text", "broad"),
    [
        ("micro*", True),
        ("microsoft~", True),
        ("title:[a TO c]", True),
        ("one two three four five six seven eight nine", True),
        ("microsoft cloud", False),
        ('"chip production" google', False),
        ("quality:[0 TO 10] date:2022", False),  # answered from the arrays, not expanded
        ("one two three four five six seven eight", False),
    ],
)
def test_broad_is_an_expansion_or_more_than_eight_words(text: str, broad: bool):
    parsed = querylang.parse_reading(querylang.read(text))
    assert parsed is not None and bounds.broad(parsed) is broad


def test_search_hands_a_broad_search_to_the_lane_at_once(worker, lane):
    result = worker.search(SearchRequest(text="micro*"))
    ((request, deadline),) = lane.handed
    assert request.text == "micro*" and result.total > 0
    assert deadline.seconds == 5.0 and deadline.at is not None  # the worker's, not a new one


def test_search_runs_an_ordinary_search_in_the_worker(worker, lane):
    assert worker.search(SearchRequest(text="microsoft cloud")).total > 0
    assert lane.handed == [] and lane.running == 0


def test_search_hands_off_a_search_past_its_cpu_share(worker, lane):
    lane.heavy_after = 0.0  # every check is past it
    here = worker.search(SearchRequest(text="microsoft cloud"))
    assert [request.text for request, _ in lane.handed] == ["microsoft cloud"]
    assert here.total == lane.service.search(SearchRequest(text="microsoft cloud")).total


def test_budget_hands_off_once_its_thread_used_its_cpu_share():
    budget = bounds.Budget(None, heavy_after=0.0)
    started = time.thread_time()
    while time.thread_time() == started:  # use some CPU
        pass
    with pytest.raises(bounds.HandOff):
        budget.check()
    bounds.Budget(None).check()  # without a share: never


def test_deadline_given_to_another_process_keeps_its_moment_and_budget():
    deadline = bounds.Deadline(1.0)
    assert deadline.at is not None
    moved = bounds.Deadline(deadline.seconds, deadline.at)
    assert moved.at == deadline.at and 0 < (moved.remaining() or 0) <= 1.0
    past = bounds.Deadline(1.0, time.monotonic() - 0.001)
    with pytest.raises(bounds.SearchTimeout, match="1 s budget"):
        past.check()


class BusyLane(RecordingLane):
    """A lane with as many heavy searches waiting as it takes."""

    def search(self, request: SearchRequest, deadline: bounds.Deadline) -> SearchResult:
        raise bounds.HeavyBusy("the server is busy with other broad searches; try again")


@pytest.fixture
def busy_client(sample_store: IndexStore, lane: RecordingLane) -> Iterator[FlaskClient]:
    service = SearchService(sample_store, results_cached=0, lane=BusyLane(lane.service, 10.0))
    yield create_app(search_service=service, config={"TESTING": True}).test_client()
    service.close()


def test_web_answers_a_heavy_search_refused_for_now_429_with_retry_after(busy_client):
    """Not a 5xx: the server is well, the client sent too many heavy searches at once."""
    api = busy_client.get("/api/search?q=micro*")
    assert api.status_code == 429 and api.headers["Retry-After"] == str(bounds.RETRY_AFTER)
    assert api.json == {"error": api.json["error"], "parameter": None, "status": 429}
    assert "busy with other broad searches" in api.json["error"]
    page = busy_client.get("/?q=micro*")
    assert page.status_code == 429 and page.headers["Retry-After"]
    assert "busy with other broad searches" in page.get_data(as_text=True)
    assert 'value="micro*"' in page.get_data(as_text=True)  # the form, as typed
    feed = busy_client.get("/feed.atom?q=micro*")
    assert feed.status_code == 429 and feed.mimetype == "text/plain" and feed.headers["Retry-After"]
    assert busy_client.get("/api/search?q=microsoft").status_code == 200  # not a broad one


@pytest.fixture
def heavy_lane(sample_store: IndexStore) -> Iterator[HeavyLane]:
    made = HeavyLane(lambda: SearchService(sample_store), heavy_after=0.25, waiting=1)
    yield made
    made.close()


def test_lane_refuses_at_once_past_the_searches_a_worker_lets_wait(heavy_lane: HeavyLane):
    assert heavy_lane._waiting.acquire(blocking=False)  # the one allowed is waiting
    with pytest.raises(bounds.HeavyBusy, match="busy with other broad searches"):
        heavy_lane.search(SearchRequest(text="micro*"), bounds.Deadline(5.0))


def test_lane_pause_sleeps_its_whole_debt_while_workers_search(heavy_lane, monkeypatch):
    """YIELD times as long as the lane ran, MAX_PAUSE at a time (one capped sleep let a
    search with checks far apart run most of the time); nothing while no worker searches."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    heavy_lane._searching.value = 1
    heavy_lane._resumed = time.monotonic() - 0.1
    heavy_lane._pause()
    assert sum(slept) >= 0.1 * lane_module.YIELD - 1e-9
    assert max(slept) <= lane_module.MAX_PAUSE
    slept.clear()
    heavy_lane._searching.value = 0
    heavy_lane._resumed = time.monotonic() - 0.1
    heavy_lane._pause()
    assert slept == []


class CheckingService:
    """A search that does a little work between checks of its budget, until stopped."""

    def search(
        self, request: SearchRequest, deadline: bounds.Deadline, pause: Callable[[], None]
    ) -> NoReturn:
        with bounds.budget(None, deadline=deadline, pause=pause):
            while True:
                sum(range(10_000))
                bounds.check()


def test_lane_search_stopped_by_yielding_to_workers_is_refused_for_now(heavy_lane):
    """Workers search all along: the lane's search sleeps until its deadline having used
    little CPU, so it is the 429 of a busy server, not the budget's 503."""
    heavy_lane._searching.value = 1
    service = cast(SearchService, CheckingService())
    with pytest.raises(bounds.HeavyBusy, match="waited for other searches"):
        heavy_lane._search(service, SearchRequest(text="micro*"), bounds.Deadline(0.3))


def test_lane_process_runs_below_the_workers_for_the_kernel(heavy_lane: HeavyLane):
    """Its nice value is NICENESS above the server's: the kernel gives a busy worker the core."""
    own = os.getpriority(os.PRIO_PROCESS, 0)
    expected = min(own + lane_module.NICENESS, 19)
    pid = os.fork()
    if pid == 0:  # the lane's process, as serve forks it
        try:
            heavy_lane.run()
        finally:
            os._exit(1)
    try:
        deadline = time.monotonic() + 30
        while os.getpriority(os.PRIO_PROCESS, pid) != expected:
            assert time.monotonic() < deadline, os.getpriority(os.PRIO_PROCESS, pid)
            time.sleep(0.01)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert os.getpriority(os.PRIO_PROCESS, 0) == own  # the workers' stays as it was
