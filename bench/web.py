"""The web API under load: a real ``searchidx serve`` (waitress) on loopback, and a small,
bounded load generator of our own.

Each client is a thread with one keep-alive HTTP/1.1 connection that sends the benchmark's
queries (all kinds, as ``/api/search`` URLs) back to back for a fixed time: a closed loop, so
throughput is what the server sustains with that many requests in flight. The cost of starting
is measured too: from spawning the server to its port accepting connections, and the first
query (built caches: cold) once it does.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.queries import KINDS, BenchQuery
from bench.report import latency_summary

STARTUP_TIMEOUT = 60.0
#: Seconds of warm-up load before the timed load.
WARMUP_SECONDS = 5.0


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
    query's cost is measured on its own."""
    command = _serve_command()
    if command is None:
        return {"error": "'searchidx serve' is not available in this checkout"}
    urls = _urls(queries)
    port = _free_port()
    command += ["--workers", str(workers)]
    if cached_results is not None:
        command += ["--cached-results", str(cached_results)]
    started = time.perf_counter()
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [*command, "--index", str(index_dir), "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    try:
        if not _wait_for_port(port, server):
            return {"error": f"the server did not start: {log.read_text()[-2000:]}"}
        listening = time.perf_counter()
        status, first_ms = _get(http.client.HTTPConnection("127.0.0.1", port), urls[0])
        if status != 200:
            return {"error": f"the first query answered HTTP {status}"}
        _load(port, _urls(warmup), clients, WARMUP_SECONDS)
        load = _load(port, urls, clients, seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "clients": clients,
        "workers": workers,
        "cached_results": cached_results,
        "tracebacks": log.read_text(errors="replace").count("Traceback"),
        "start_ms": (listening - started) * 1000,
        "first_query_ms": first_ms,
        "first_answer_ms": (listening - started) * 1000 + first_ms,
        **load,
    }


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
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    deadline = time.perf_counter() + seconds

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        position = number * len(urls) // clients
        while time.perf_counter() < deadline:
            try:
                status, elapsed = _get(connection, urls[position % len(urls)])
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status, elapsed = 0, 0.0
            if status == 200:
                latencies[number].append(elapsed)
            else:
                errors[number] += 1
            position += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = [value for values in latencies for value in values]
    return {
        "requests": len(every),
        "errors": sum(errors),
        "seconds": elapsed,
        "rps": len(every) / elapsed,
        "latency": latency_summary(every) if every else None,
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
