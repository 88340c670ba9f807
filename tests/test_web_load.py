"""The real server under load while the index changes under it.

``searchidx serve`` (waitress, 4 threads) runs on 127.0.0.1 over a collection of 80 articles,
small enough that ``/api/search?per_page=100`` returns every hit on one page. 16 client threads
send requests over keep-alive connections for a bounded time while the test, through other
``searchidx`` processes, keeps changing the folder and running ``searchidx index`` (a sync) and
``searchidx rebuild`` (a new generation swapped in). Every request must succeed, and every
response must be consistent: its total equals its hits, no path twice, and its articles (paths
and titles) are exactly one of the folder states the test produced, never a mix. The clients must
also have seen more than one state: the changes reached the server while it was under load.

Requests per second and the 95th percentile latency are printed and written to
``test-artifacts/web-load-<name>.json``; they are figures of this machine, not assertions.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from searchidx.service import REFRESH_INTERVAL
from searchidx.store import IndexStore
from searchidx.web.app import create_app
from tests.conftest import write_article
from tests.web_helpers import SEARCHIDX

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CLIENTS = 16
SERVER_THREADS = 4
ARTICLES = 80
#: Default run and long run: seconds of load, and a cap on requests per client.
DEFAULT_SECONDS = 10
SLOW_SECONDS = 90
MAX_REQUESTS_PER_CLIENT = 50_000
URLS = ("/api/search?per_page=100", "/api/search?q=story&per_page=100&sort=oldest")
State = frozenset[tuple[str, str]]


# The folder and its states ---------------------------------------------------------------------


def title(number: int, edited: bool = False) -> str:
    return f"Story {number} {'edited' if edited else 'first'} version"


def write(folder: Path, number: int, edited: bool = False) -> None:
    write_article(
        folder,
        f"{number:03d}.md",
        f"title: {title(number, edited)}\npublishedDateTime: 2024-01-{number % 28 + 1:02d}",
        f"Body of story {number}.",
    )


#: State B differs from A by two articles removed, three added and one edited.
REMOVED = (3, 40)
ADDED = (ARTICLES, ARTICLES + 1, ARTICLES + 2)
EDITED = 7


def state(edited: bool) -> State:
    numbers = set(range(ARTICLES))
    if edited:
        numbers = (numbers - set(REMOVED)) | set(ADDED)
    return frozenset((f"{n:03d}.md", title(n, edited and n == EDITED)) for n in numbers)


def to_state(folder: Path, b: bool) -> None:
    """Change the folder to state B (``b``) or back to state A."""
    for number in REMOVED:
        if b:
            (folder / f"{number:03d}.md").unlink()
        else:
            write(folder, number)
    for number in ADDED:
        if b:
            write(folder, number)
        else:
            (folder / f"{number:03d}.md").unlink()
    write(folder, EDITED, edited=b)


# The server --------------------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    host: str
    port: int
    log: list[str] = field(default_factory=list)


@contextlib.contextmanager
def serve(index: Path, cwd: Path) -> Iterator[Server]:
    """``searchidx serve`` on a free port of 127.0.0.1; its stderr is read all along (a full
    pipe would stall the server) and kept for the test to inspect. Stopped in any case."""
    command = [SEARCHIDX, "serve", "--host", "127.0.0.1", "--port", "0"]
    command += ["--threads", str(SERVER_THREADS), "--index", str(index)]
    process = subprocess.Popen(command, cwd=cwd, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    log: list[str] = []
    started = threading.Event()
    address: list[str] = []

    def read() -> None:
        for line in process.stderr:
            log.append(line)
            if not started.is_set() and (match := re.search(r"http://([\d.]+):(\d+)/", line)):
                address.extend(match.groups())
                started.set()
        started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(30) and address, "searchidx serve did not start:\n" + "".join(log)
        host, port = address
        yield Server(f"http://{host}:{port}", host, int(port), log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        reader.join(10)
        process.stderr.close()


# Load ----------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients saw; appended to from many threads (list.append is atomic)."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)
    #: Responses whose articles are no folder state (deleted or old versions among them).
    stale: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)


def client(server: Server, number: int, deadline: float, known: dict[State, str], tally: Tally):
    """One client: requests over a keep-alive connection until the deadline."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        for count in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                break
            url = URLS[(number + count) % len(URLS)]
            started = time.perf_counter()
            try:
                connection.request("GET", url)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as error:
                tally.failures.append(f"{url}: {error!r}")
                connection.close()
                connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
                continue
            tally.latencies.append(time.perf_counter() - started)
            if response.status != 200:
                tally.failures.append(f"{url}: {response.status} {body[:200]!r}")
                continue
            check(json.loads(body), url, known, tally)
    finally:
        connection.close()


def check(result: dict, url: str, known: dict[State, str], tally: Tally) -> None:
    """One response is consistent: its total is its hits, no path twice, and its articles
    (paths and titles) are one folder state."""
    hits = result["hits"]
    seen = frozenset((hit["path"], hit["title"]) for hit in hits)
    if result["total"] != len(hits):
        tally.inconsistent.append(f"{url}: total {result['total']} but {len(hits)} hits")
    elif len({hit["path"] for hit in hits}) != len(hits) or seen not in known:
        paths = Counter(hit["path"] for hit in hits)
        twice = sorted(path for path, count in paths.items() if count > 1)
        tally.stale.append(f"{url}: {len(hits)} hits, no folder state; twice: {twice}")
    else:
        tally.states.append(known[seen])


def writer(folder: Path, index: Path, deadline: float, counts: Counter, errors: list[str]):
    """Flip the folder between its states; after each flip a sync, then a rebuild, each in a
    ``searchidx`` process of its own, until the deadline (at most 1,000 flips)."""
    for flip in range(1_000):
        if time.monotonic() >= deadline:
            break
        to_state(folder, b=flip % 2 == 0)
        for command in ("index", "rebuild"):
            arguments = [SEARCHIDX, command, str(folder), "--index", str(index)]
            done = subprocess.run(arguments, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                errors.append(f"{command}: {done.returncode} {done.stderr[-500:]}")
            counts[command] += 1


def run_load(tmp_path: Path, seconds: float, name: str) -> dict:
    folder = tmp_path / "content"
    for number in range(ARTICLES):
        write(folder, number)
    index = tmp_path / "index"
    sync = [SEARCHIDX, "index", str(folder), "--index", str(index)]
    subprocess.run(sync, check=True, capture_output=True)
    known = {state(False): "A", state(True): "B"}
    tally, counts, writer_errors = Tally(), Counter[str](), list[str]()
    with serve(index, cwd=tmp_path) as server:
        started = time.monotonic()
        deadline = started + seconds
        threads = [
            threading.Thread(target=client, args=(server, n, deadline, known, tally))
            for n in range(CLIENTS)
        ]
        threads.append(
            threading.Thread(target=writer, args=(folder, index, deadline, counts, writer_errors))
        )
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 180)
        elapsed = time.monotonic() - started
        assert not any(thread.is_alive() for thread in threads), "a client or the writer hangs"
        server_log = "".join(server.log)
    latencies = sorted(tally.latencies)
    figures: dict[str, Any] = {
        "clients": CLIENTS,
        "server_threads": SERVER_THREADS,
        "articles": ARTICLES,
        "seconds": round(elapsed, 1),
        "requests": len(latencies) + len(tally.failures),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 1) if latencies else None,
        "failures": len(tally.failures),
        "inconsistent": len(tally.inconsistent),
        "stale": len(tally.stale),
        "states_seen": dict(Counter(tally.states)),
        "syncs": counts["index"],
        "rebuilds": counts["rebuild"],
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"web-load-{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"web load ({name}): {json.dumps(figures)}")
    # The server's first traceback before the failures: it says why a request failed, they
    # only that it did (with the line before it: the request it served).
    traceback = server_log.find("Traceback")
    assert traceback == -1, server_log[max(0, traceback - 200) :][:4000]
    assert tally.failures == [], tally.failures[:10]
    assert tally.inconsistent == [], tally.inconsistent[:10]
    assert writer_errors == [], writer_errors
    assert counts["index"] >= 2 and counts["rebuild"] >= 2, counts  # the index did change
    assert figures["requests"] >= CLIENTS * 10, figures
    assert tally.stale == [], tally.stale[:10]
    assert set(tally.states) == {"A", "B"}, figures  # and the clients saw it change
    return figures


def test_load_sixteen_clients_see_no_failure_and_no_mixed_result(tmp_path):
    run_load(tmp_path, DEFAULT_SECONDS, "default")


@pytest.mark.slow
def test_load_long_run_sees_no_failure_and_no_mixed_result(tmp_path):
    run_load(tmp_path, SLOW_SECONDS, "slow")


def test_load_refresh_after_a_sync_shows_no_deleted_article(tmp_path):
    """One sync of an edit and a delete by another process, then the next search: no deleted
    article and no old version (whoosh3's Searcher.refresh() brought them back)."""
    folder = tmp_path / "content"
    for number in range(ARTICLES):
        write(folder, number)
    index = tmp_path / "index"
    sync = [SEARCHIDX, "index", str(folder), "--index", str(index)]
    subprocess.run(sync, check=True, capture_output=True)
    app = create_app(IndexStore(index), config={"TESTING": True})
    try:
        client = app.test_client()
        before = client.get("/api/search?per_page=100").get_json()
        assert {(hit["path"], hit["title"]) for hit in before["hits"]} == state(False)
        to_state(folder, b=True)
        subprocess.run(sync, check=True, capture_output=True)
        time.sleep(REFRESH_INTERVAL + 0.1)
        after = client.get("/api/search?per_page=100").get_json()
    finally:
        app.extensions["searchidx"].close()
    assert after["total"] == len(state(True))
    assert {(hit["path"], hit["title"]) for hit in after["hits"]} == state(True)
