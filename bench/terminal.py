"""The command line as a reader uses it: ``searchidx --help`` and ``searchidx query``, each in a
fresh process, timed from its start to its exit, with its peak memory from the kernel.

Unlike the query session of :mod:`bench.worker` (one searcher, many queries), every search here
pays for starting Python, importing, opening the index and reading what the search needs: the
figure a reader at a terminal waits for.

searchidx's modules are compiled to bytecode first, as an installed package has them: ``pip
install`` compiles them, and an editable install's first run writes them. Where
``PYTHONDONTWRITEBYTECODE`` is set (as on the project's machines) and the package is installed
editable, every process would otherwise compile them again from source (about 30 ms of each).
"""

from __future__ import annotations

import compileall
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.queries import KINDS, BenchQuery
from bench.report import latency_summary

#: ``searchidx --help`` runs measured.
HELP_RUNS = 10
#: Queries of each kind run, each in its own process.
PER_KIND = 3
SEARCHIDX = str(Path(sys.executable).with_name("searchidx"))


def measure(index: Path, queries: dict[str, list[BenchQuery]], per_kind: int = PER_KIND) -> dict:
    """Wall times (ms) of ``--help`` and of one query per process, and the queries' peak RSS."""
    _compile_package()
    helps = [_run([SEARCHIDX, "--help"]) for _ in range(HELP_RUNS)]
    runs = [
        _run([SEARCHIDX, "query", *command_line(query), "--index", str(index)])
        for kind in KINDS
        for query in queries[kind][:per_kind]
    ]
    peaks = [peak for _, peak in runs]
    return {
        "help": latency_summary([seconds * 1000 for seconds, _ in helps]),
        "query": latency_summary([seconds * 1000 for seconds, _ in runs]),
        "query_peak_rss_bytes": max(peaks),
        "query_peak_rss_p50_bytes": float(latency_summary(peaks)["p50"]),
    }


def command_line(query: BenchQuery) -> list[str]:
    """``searchidx query``'s arguments for ``query``."""
    args = [query.text] if query.text else []
    sort = "newest" if query.sort == "relevance" and not query.text else query.sort
    args += ["--sort", sort, "--page", str(query.page), "--limit", str(query.per_page)]
    for topic in query.topics:
        args += ["--topic", topic]
    for provider in query.providers:
        args += ["--provider", provider]
    if query.date_from is not None:
        args += ["--from", query.date_from.isoformat()]
    if query.date_to is not None:
        args += ["--to", query.date_to.isoformat()]
    if query.facets:
        args.append("--facets")
    return args


def _compile_package() -> None:
    """Write the bytecode of searchidx's modules where Python looks for it (see above)."""
    spec = importlib.util.find_spec("searchidx")
    assert spec is not None and spec.origin is not None
    compileall.compile_dir(Path(spec.origin).parent, quiet=1)


def _run(command: list[str]) -> tuple[float, int]:
    """Seconds from start to exit, and peak resident bytes (``ru_maxrss``) of ``command``."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"{' '.join(command)} failed:\n{message}")
    return seconds, usage.ru_maxrss * 1024


def summary_text(measured: dict[str, Any]) -> str:
    help_ms, query_ms = measured["help"], measured["query"]
    return (
        f"  searchidx --help: p50 {help_ms['p50']:.0f} ms, p95 {help_ms['p95']:.0f} ms "
        f"({help_ms['n']} runs)\n"
        f"  searchidx query: p50 {query_ms['p50']:.0f} ms, p95 {query_ms['p95']:.0f} ms, "
        f"peak RSS {measured['query_peak_rss_bytes'] / 1024**2:.0f} MiB "
        f"(p50 {measured['query_peak_rss_p50_bytes'] / 1024**2:.0f} MiB; {query_ms['n']} "
        "queries, a fresh process each)"
    )
