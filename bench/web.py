"""The web API under load: a real ``searchidx serve`` (waitress) on loopback, and a small,
bounded load generator of our own.

Each client is a thread with one keep-alive HTTP/1.1 connection that sends the benchmark's
queries (all kinds, as ``/api/search`` URLs) back to back for a fixed time: a closed loop, so
throughput is what the server sustains with that many requests in flight. The cost of starting
is measured too: from spawning the server to its port accepting connections, and the first
query (built caches: cold) once it does.

:func:`measure_hostile` measures issue #15's bounds: each hostile request of
:mod:`bench.hostile` sent alone (the worst time, and that none is a 5xx), then 4 clients
sending only those while 12 send the ordinary queries (their p95, and that none fails).
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.hostile import hostile_urls
from bench.memory import cpu_seconds, descendants, resident
from bench.queries import KINDS, BenchQuery
from bench.report import latency_summary

STARTUP_TIMEOUT = 60.0
#: Seconds of warm-up load before the timed load.
WARMUP_SECONDS = 5.0
#: Hostile requests (after the issue's own), and the clients of the mixed load.
HOSTILE_REQUESTS = 300
HOSTILE_CLIENTS, ORDINARY_CLIENTS = 4, 12


def measure(
    index_dir: Path,
    queries: dict[str, list[BenchQuery]],
    warmup: dict[str, list[BenchQuery]],
    clients: int,
    seconds: float,
    log: Path,
    workers: int,
    cached_results: int | None = None,
) -> dict[str, Any]:
    """Start the server, time its first answer, then load it; its stderr goes to ``log`` (a
    pipe nobody reads would fill up and stall it: waitress logs its queue depth).

    ``workers`` and ``cached_results`` are passed to ``serve --workers`` and
    ``--cached-results`` (None: the server's default).
    The query set repeats queries, so with the result cache most requests are answered from
    it; with 0 every request searches. Before the timed load, the clients send the ``warmup``
    queries (others than the measured ones, as the in-process query timings warm up) for
    :data:`WARMUP_SECONDS`: postings are read from disk once per worker, and the first
    query's cost is measured on its own.

    Memory, per server process (parent, workers, lane): the largest peak resident size
    (``VmHWM``), which counts the pages of the index a worker has mapped and read, shared
    page cache; and the largest anonymous memory after the load, what a process holds of its
    own (Python, arrays, caches).

    CPU, all server processes together, over the timed load: milliseconds per answered
    request, which other work on a shared machine disturbs far less than requests a second."""
    if _serve_command() is None:
        return {"error": "'searchidx serve' is not available in this checkout"}
    urls = _urls(queries)
    options = ["--workers", str(workers)]
    if cached_results is not None:
        options += ["--cached-results", str(cached_results)]
    started = time.perf_counter()
    with _server(index_dir, log, options) as (port, pid):
        if port is None:
            return {"error": f"the server did not start: {log.read_text()[-2000:]}"}
        listening = time.perf_counter()
        status, first_ms = _get(http.client.HTTPConnection("127.0.0.1", port), urls[0])
        if status != 200:
            return {"error": f"the first query answered HTTP {status}"}
        _load(port, _urls(warmup), clients, WARMUP_SECONDS)
        processes = descendants(pid)
        cpu_before = sum(cpu_seconds(process) for process in processes)
        load = _load(port, urls, clients, seconds)
        cpu_used = sum(cpu_seconds(process) for process in processes) - cpu_before
        memory = [resident(process) for process in processes]
    return {
        "clients": clients,
        "workers": workers,
        "cached_results": cached_results,
        "tracebacks": log.read_text(errors="replace").count("Traceback"),
        "start_ms": (listening - started) * 1000,
        "first_query_ms": first_ms,
        "first_answer_ms": (listening - started) * 1000 + first_ms,
        "largest_process_peak_bytes": max(held.peak for held in memory),
        "largest_process_anonymous_bytes": max(held.anonymous for held in memory),
        "server_cpu_ms_per_request": cpu_used * 1000 / max(1, load["requests"]),
        **load,
    }


def measure_hostile(
    index_dir: Path,
    queries: dict[str, list[BenchQuery]],
    warmup: dict[str, list[BenchQuery]],
    seconds: float,
    log: Path,
    workers: int,
) -> dict[str, Any]:
    """The server as started by default (but ``workers``), warmed up with ordinary queries:
    every hostile request alone, then hostile and ordinary clients together."""
    if _serve_command() is None:
        return {"error": "'searchidx serve' is not available in this checkout"}
    with _server(index_dir, log, ["--workers", str(workers)]) as (port, _):
        if port is None:
            return {"error": f"the server did not start: {log.read_text()[-2000:]}"}
        _load(port, _urls(warmup), ORDINARY_CLIENTS, WARMUP_SECONDS)
        alone = _clients(port, [(hostile_urls(HOSTILE_REQUESTS), 1)], seconds=None)[0]
        hostile, ordinary = _clients(
            port,
            [
                (hostile_urls(HOSTILE_REQUESTS, seed=16), HOSTILE_CLIENTS),
                (_urls(queries), ORDINARY_CLIENTS),
            ],
            seconds,
        )
    return {
        "workers": workers,
        "requests": len(alone.answers),
        "statuses": alone.statuses(),
        "worst_ms": max(alone.latencies()),
        "latency": latency_summary(alone.latencies()),
        "under_load": {
            "seconds": seconds,
            "hostile_clients": HOSTILE_CLIENTS,
            "ordinary_clients": ORDINARY_CLIENTS,
            "hostile_statuses": hostile.statuses(),
            "ordinary_errors": len(ordinary.answers) - len(ordinary.latencies(200)),
            "ordinary_latency": latency_summary(ordinary.latencies(200) or [float("nan")]),
        },
    }


@contextlib.contextmanager
def _server(index_dir: Path, log: Path, options: list[str]) -> Iterator[tuple[int | None, int]]:
    """``searchidx serve`` on a free port (None: it did not start) and its process id (its
    workers are its children); its stderr goes to
    ``log`` (a pipe nobody reads would fill up and stall it: waitress logs its queue depth)."""
    command = _serve_command() or []
    port = _free_port()
    with open(log, "wb") as output:
        address = ["--index", str(index_dir), "--host", "127.0.0.1", "--port", str(port)]
        server = subprocess.Popen(
            [*command, *options, *address],
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    try:
        yield (port if _wait_for_port(port, server) else None), server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


class _Answers:
    """What one group of clients got: each answer's status (0: none) and time (ms)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, float]] = []

    def latencies(self, status: int | None = None) -> list[float]:
        return [ms for got, ms in self.answers if status is None or got == status]

    def statuses(self) -> dict[str, int]:
        return {str(status): n for status, n in sorted(Counter(s for s, _ in self.answers).items())}


def _clients(
    port: int, groups: list[tuple[list[str], int]], seconds: float | None
) -> list[_Answers]:
    """Groups of closed-loop clients (their URLs, how many) run together, each on one
    keep-alive connection, for ``seconds`` (None: each client sends its URLs once)."""
    answers = [_Answers() for _ in groups]
    deadline = time.perf_counter() + (seconds or 0)

    def client(urls: list[str], start: int, found: _Answers) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        position = start
        while position - start < len(urls) if seconds is None else time.perf_counter() < deadline:
            try:
                status, elapsed = _get(connection, urls[position % len(urls)])
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status, elapsed = 0, 0.0
            found.answers.append((status, elapsed))
            position += 1
        connection.close()

    threads = [
        threading.Thread(target=client, args=(urls, n * len(urls) // count, found))
        for (urls, count), found in zip(groups, answers, strict=True)
        for n in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _urls(queries: dict[str, list[BenchQuery]]) -> list[str]:
    """Every query as a URL, the kinds interleaved."""
    return [url_for(queries[kind][i]) for i in range(len(queries[KINDS[0]])) for kind in KINDS]


def url_for(query: BenchQuery) -> str:
    params: list[tuple[str, str]] = []
    if query.terms:
        params.append(("q", query.text))
    params += [("topic", topic) for topic in query.topics]
    params += [("provider", provider) for provider in query.providers]
    if query.date_from:
        params.append(("from", query.date_from.strftime("%Y-%m-%dT%H:%M:%SZ")))
    if query.date_to:
        params.append(("to", query.date_to.strftime("%Y-%m-%dT%H:%M:%SZ")))
    if query.sort != "relevance":
        params.append(("sort", query.sort))
    if query.page != 1:
        params.append(("page", str(query.page)))
    return "/api/search?" + urlencode(params)


def _load(port: int, urls: list[str], clients: int, seconds: float) -> dict[str, Any]:
    began = time.perf_counter()
    found = _clients(port, [(urls, clients)], seconds)[0]
    elapsed = time.perf_counter() - began
    answered = found.latencies(200)
    return {
        "requests": len(answered),
        "errors": len(found.answers) - len(answered),
        "seconds": elapsed,
        "rps": len(answered) / elapsed,
        "latency": latency_summary(answered) if answered else None,
    }


def _get(connection: http.client.HTTPConnection, url: str) -> tuple[int, float]:
    before = time.perf_counter()
    connection.request("GET", url)
    response = connection.getresponse()
    response.read()
    return response.status, (time.perf_counter() - before) * 1000


def _serve_command() -> list[str] | None:
    script = Path(sys.executable).with_name("searchidx")
    command = [str(script)] if script.exists() else [shutil.which("searchidx") or "searchidx"]
    try:
        probe = subprocess.run([*command, "serve", "--help"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [*command, "serve"] if probe.returncode == 0 else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, server: subprocess.Popen) -> bool:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.01)
    return False
