"""The benchmark runner: one table, one JSON file, every engine in the same run.

    python -m bench.run --sizes 10000,100000 --queries 200 --out bench/results/run.json

For each size: generate (or reuse) the collection, then for each engine build from the files
(in a child process, peak memory sampled; every engine reads and parses the files itself, in
as many processes as searchidx), answer the query set (in a fresh child process), and, after
1% of the files changed, 0.1% were deleted and 0.1% added, sync, then sync again with nothing
changed. The searchidx web API is then put under load. Ratios are only meaningful within one
run: the machine is shared, so compare engines measured minutes apart, not runs measured days
apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import corpus, report, terminal, web
from bench.engines import ENGINES
from bench.memory import run_measured
from bench.queries import KINDS, make_queries
from bench.worker import WARMUP_PER_KIND

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    args = _arguments().parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    engines = [name for name in args.engines.split(",") if name]
    unknown = set(engines) - ENGINES.keys()
    if unknown:
        raise SystemExit(f"unknown engine(s): {', '.join(sorted(unknown))}")
    missing = [name for name in engines if not ENGINES[name].available()]
    if missing:
        print(
            f"skipping {', '.join(missing)}: not installed (pip install -e '.[bench]'); "
            "opensearch runs when SEARCHIDX_BENCH_OPENSEARCH names a cluster"
        )
        engines = [name for name in engines if name not in missing]
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    out = Path(args.out) if args.out else DEFAULT_RESULTS / f"bench-{_stamp()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {"meta": _meta(args, sizes, engines), "runs": {}}
    started = time.perf_counter()
    for size in sizes:
        run = run_size(size, engines, args, workdir)
        results["runs"][str(size)] = run
        out.write_text(json.dumps(results, indent=1))
        _print_run(size, run, args)
    results["meta"]["seconds"] = time.perf_counter() - started
    out.write_text(json.dumps(results, indent=1))
    if args.compare:
        previous = json.loads(Path(args.compare).read_text())
        print(f"\nCompared with {args.compare}:")
        print(report.comparison_text(previous, results))
    print(f"\nwrote {out} ({results['meta']['seconds']:.0f} s in all)")
    failed = [
        size
        for size, run in results["runs"].items()
        if not all(check["ok"] for check in run["agreement"].values())
    ]
    return 1 if failed else 0


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default="10000,100000", help="collection sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=200, help="queries per kind")
    parser.add_argument("--seed", type=int, default=42, help="collection and query seed")
    parser.add_argument("--engines", default=",".join(ENGINES), help="engines, comma-separated")
    parser.add_argument(
        "--workdir",
        default=str(DEFAULT_RESULTS / "data"),
        help="collections and indexes (reused between runs)",
    )
    parser.add_argument("--out", help="the JSON results (default: bench/results/bench-TIME.json)")
    parser.add_argument("--compare", help="an earlier JSON result to compare searchidx with")
    parser.add_argument("--clients", type=int, default=16, help="web API concurrent clients")
    parser.add_argument("--web-seconds", type=float, default=15.0, help="web API load duration")
    parser.add_argument(
        "--web-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="'searchidx serve --workers' (default: one per core)",
    )
    parser.add_argument(
        "--terminal-queries",
        type=int,
        default=terminal.PER_KIND,
        help="'searchidx query' processes per query kind (0: skip the command line)",
    )
    parser.add_argument("--no-web", action="store_true", help="skip the web API measurement")
    parser.add_argument("--no-sync", action="store_true", help="skip the incremental sync")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    return parser


def run_size(size: int, engines: list[str], args: argparse.Namespace, workdir: Path) -> dict:
    print(f"\n== {size:,} articles ==", flush=True)
    folder = corpus.collection(workdir, size, args.seed)
    run: dict[str, Any] = {"size": size, "engines": {name: {} for name in engines}}
    indexes = {name: workdir / f"index-{name}-{size}" for name in engines}
    for name in engines:
        shutil.rmtree(indexes[name], ignore_errors=True)
        _say(f"{name}: building")
        build, child = _child(name, "build", workdir, index=indexes[name], folder=folder)
        build.update(
            wall_seconds=child.seconds,
            peak_tree_bytes=child.peak_tree_bytes,
            peak_single_bytes=child.peak_single_bytes,
            cpu_seconds=child.cpu_seconds,
        )
        run["engines"][name]["build"] = build
        _say(
            f"{name}: built in {build['seconds']:.1f} s, "
            f"peak {child.peak_tree_bytes / 1024**2:,.0f} MiB"
        )
    outcomes = {}
    for name in engines:
        _say(f"{name}: {args.queries} queries of each of {len(KINDS)} kinds")
        session, _ = _child(
            name, "query", workdir, index=indexes[name], queries=args.queries, seed=args.seed
        )
        outcomes[name] = session.pop("outcomes")
        latencies = session.pop("latencies")
        session["kinds"] = {kind: report.latency_summary(latencies[kind]) for kind in KINDS}
        run["engines"][name]["query"] = session
    queries = make_queries(args.queries, args.seed)
    run["agreement"] = report.agreement(queries, outcomes)
    if "searchidx" in engines and args.terminal_queries:
        _say(
            f"searchidx: the command line, {args.terminal_queries} queries of each kind, "
            "a fresh process each"
        )
        run["terminal"] = terminal.measure(indexes["searchidx"], queries, args.terminal_queries)
    if "searchidx" in engines and not args.no_web:
        for key, _, cached in report.WEB_RUNS:
            _say(f"searchidx: web API under {args.clients} clients ({key})")
            run[key] = web.measure(
                indexes["searchidx"],
                queries,
                make_queries(WARMUP_PER_KIND, args.seed + 1),
                args.clients,
                args.web_seconds,
                workdir / f"log-{key}.txt",
                args.web_workers,
                cached_results=cached,
            )
    if "searchidx" in engines and not args.no_web:
        _say(
            f"searchidx: hostile requests, then {web.HOSTILE_CLIENTS} hostile clients beside "
            f"{web.ORDINARY_CLIENTS} ordinary ones"
        )
        run["hostile"] = web.measure_hostile(
            indexes["searchidx"],
            queries,
            make_queries(WARMUP_PER_KIND, args.seed + 1),
            args.web_seconds,
            workdir / "log-hostile.txt",
            args.web_workers,
        )
    if not args.no_sync:
        edit = corpus.apply_edit(folder, args.seed)
        try:
            for name in engines:
                _say(f"{name}: syncing {edit.summary}")
                sync, _ = _child(name, "sync", workdir, index=indexes[name], folder=folder)
                run["engines"][name]["sync"] = sync
                _say(f"{name}: syncing again, nothing changed")
                noop, _ = _child(name, "sync", workdir, index=indexes[name], folder=folder)
                run["engines"][name]["noop_sync"] = noop
        finally:
            corpus.revert_edit(folder, edit)
        run["edit"] = edit.summary
    run["targets"] = report.targets(run) if size == report.TARGET_SIZE else []
    return run


def _child(engine: str, op: str, workdir: Path, **spec: Any) -> tuple[dict[str, Any], Any]:
    """Run one operation of one engine in a fresh interpreter; its result and its run."""
    spec_path = workdir / f"spec-{engine}-{op}.json"
    out = workdir / f"result-{engine}-{op}.json"
    log = workdir / f"log-{engine}-{op}.txt"
    out.unlink(missing_ok=True)
    spec = {key: str(value) if isinstance(value, Path) else value for key, value in spec.items()}
    spec_path.write_text(json.dumps({"op": op, "engine": engine, "out": str(out), **spec}))
    child = run_measured([sys.executable, "-m", "bench.worker", str(spec_path)], log=log)
    if child.returncode != 0:
        raise SystemExit(
            f"{engine} {op} failed (exit {child.returncode}); see {log}:\n"
            + log.read_text()[-3000:]
        )
    return json.loads(out.read_text()), child


def _print_run(size: int, run: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"\n{size:,} articles ({run.get('edit', {})} for the sync); every build reads and "
        "parses the files; best peer: the fastest (smallest) peer in the row\n"
    )
    print(report.table(run, markdown=args.markdown))
    if run.get("terminal"):
        print("\nThe command line (start to exit):")
        print(terminal.summary_text(run["terminal"]))
    print("\nAgreement (searchidx against each peer):")
    print(report.agreement_text(run["agreement"]))
    if run.get("web", {}).get("error"):
        print(f"\nweb API not measured: {run['web']['error']}")
    if run["targets"]:
        print(f"\nTargets at {size:,} articles:")
        print(report.targets_text(run["targets"]))


def _meta(args: argparse.Namespace, sizes: list[int], engines: list[str]) -> dict[str, Any]:
    def version(package: str) -> str | None:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as package_version

        try:
            return package_version(package)
        except PackageNotFoundError:
            return None

    import sqlite3

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "sizes": sizes,
        "engines": engines,
        "queries_per_kind": args.queries,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.platform(),
        "versions": {
            "whoosh3": version("whoosh3"),
            "tantivy": version("tantivy"),
            "sqlite": sqlite3.sqlite_version,
        },
    }


def _say(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


if __name__ == "__main__":
    sys.exit(main())
