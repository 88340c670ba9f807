"""What runs in a child process: one build, sync or query session of one engine.

``python -m bench.worker SPEC.json``: the spec names the operation, the engine and the paths;
the result goes to ``spec["out"]`` as JSON. Each operation gets a fresh interpreter, so a build's
peak memory is its own and a query session starts cold, as a server does after a restart.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.engines import ENGINES
from bench.engines.base import Engine, Outcome
from bench.queries import KINDS, make_queries

#: Queries of each kind run (untimed, from another seed) before the timed ones.
WARMUP_PER_KIND = 10


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    engine = ENGINES[spec["engine"]](Path(spec["index"]))
    operation = spec["op"]
    if operation == "build":
        result: Any = asdict(engine.build(Path(spec["folder"])))
    elif operation == "sync":
        result = asdict(engine.sync(Path(spec["folder"])))
    elif operation == "query":
        result = query_session(engine, spec["queries"], spec["seed"])
    else:
        raise ValueError(operation)
    Path(spec["out"]).write_text(json.dumps(result))


def query_session(engine: Engine, count: int, seed: int) -> dict[str, Any]:
    """Open, answer a first query cold, warm up, then time every query (kinds interleaved,
    so noise from other work on the machine spreads over all kinds alike)."""
    queries = make_queries(count, seed)
    started = time.perf_counter()
    engine.open()
    opened = time.perf_counter()
    engine.search(queries["facets"][0])
    first = time.perf_counter()
    for warmups in make_queries(WARMUP_PER_KIND, seed + 1).values():
        for query in warmups:
            engine.search(query)
    latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
    outcomes: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for number in range(count):
        for kind in KINDS:
            query = queries[kind][number]
            before = time.perf_counter()
            outcome = engine.search(query)
            latencies[kind].append((time.perf_counter() - before) * 1000)
            outcomes[kind].append(_outcome_dict(outcome))
    engine.close()
    return {
        "open_ms": (opened - started) * 1000,
        "first_query_ms": (first - opened) * 1000,
        "latencies": latencies,
        "outcomes": outcomes,
    }


def _outcome_dict(outcome: Outcome) -> dict[str, Any]:
    return {
        "total": outcome.total,
        "ids": outcome.ids,
        "facets": outcome.facets,
        "highlighted": outcome.highlighted,
    }


if __name__ == "__main__":
    main(sys.argv[1])
