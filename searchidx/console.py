"""The ``searchidx`` console script: the process is set up for its command before the command
line (:mod:`searchidx.cli`: click, and what its options read) is imported, so this module
imports nothing but the standard library's ``gc``, ``os`` and ``sys`` (and, for a one-shot
command, :mod:`searchidx.deferred`)."""

from __future__ import annotations

import gc
import os
import sys

#: Commands that answer once and exit: their process runs without cyclic garbage collection
#: and ends without the interpreter's teardown (see :func:`main`). Not the commands that
#: index, serve or watch, which run long, make garbage all along and clean up at exit.
ONE_SHOT = frozenset({"query", "similar"})


def main() -> None:
    """:func:`searchidx.cli.cli`, in a process of its own.

    A one-shot command (:data:`ONE_SHOT`) runs with the cyclic garbage collector off from
    before the command line is imported, and ends its process as soon as it has answered,
    without tearing the interpreter down: the collector walked the objects of every module
    imported (numpy, Whoosh, click: some 300) again and again while they were imported, and
    the teardown freed them one by one; the two cost some 40 ms of a 0.18 s search at 100,000
    articles (the collector's share while click and the command line are imported, about 2 ms
    more). Such a command makes little cyclic garbage before it exits (a search's peak memory
    is the same with the collector off), and nothing it runs needs a clean-up at exit. A
    caller running :func:`~searchidx.cli.cli` inside its own process (the tests) keeps its
    collector.

    Nor does it start numpy's OpenBLAS thread pool (a thread per core, 40-80 ms of a 2-core
    machine's start-up; no search multiplies matrices): the variable is set before any option
    is read, since reading ``--index`` imports the engine, and numpy with it. Nor does it
    import the modules a search never runs (:mod:`searchidx.deferred`).
    """
    one_shot = len(sys.argv) >= 2 and sys.argv[1] in ONE_SHOT
    if one_shot:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        gc.disable()
        from searchidx.deferred import defer_unused_modules

        defer_unused_modules()
    from searchidx.cli import cli

    if not one_shot:
        cli(prog_name="searchidx")
        return
    try:
        cli(prog_name="searchidx")
    except SystemExit as done:
        if done.code is not None and not isinstance(done.code, int):
            raise
        status = done.code or 0
    else:
        status = 0
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe: the interpreter's own exit reports it
        raise SystemExit(status) from None
    os._exit(status)
