"""Benchmarks: searchidx against SQLite FTS5 and tantivy on the same articles and queries.

Run by hand or with ``make bench`` (never from the test suite)::

    python -m bench.run --sizes 10000,100000 --queries 200

Modules: :mod:`bench.corpus` (collections, how the peers read them, sync edits),
:mod:`bench.queries` (the seeded query set), :mod:`bench.engines` (one adapter per engine, one
interface), :mod:`bench.worker` (what runs in a child process), :mod:`bench.memory` (peak RSS
of a process tree), :mod:`bench.web` (the web API under load), :mod:`bench.report` (the table
and the JSON), :mod:`bench.run` (the runner).
"""
