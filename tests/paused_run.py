"""Run a ``searchidx`` command that pauses at a chosen point, for a test to signal it there.

    TEST_PAUSE_AT=POINT TEST_PAUSE_READY=FILE python -m tests.paused_run [--spawn] ARGS...

runs ``searchidx ARGS`` (the real command, in this process) with the indexer's thresholds
lowered so that a few hundred files are read by worker processes, and an OpenSearch index's
bulk requests made small so that a few dozen files take several of them. Each process that reaches
POINT (one of :data:`POINTS`: the command's, or each worker's) waits there, holding what it
holds; the first writes its pid to FILE. Without TEST_PAUSE_AT the command runs to its end.
``--spawn`` keeps a second thread running, as the web server does, so the indexer starts its
workers with ``spawn`` instead of ``fork``.

Spawned workers import this module afresh (as ``__mp_main__``) and so install the pause too.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from whoosh.writing import SegmentWriter

from searchidx import cli, cluster_sync, indexer, merge_policy, whoosh_internals, workers
from searchidx.store import IndexStore

PAUSE_AT = "TEST_PAUSE_AT"
PAUSE_READY = "TEST_PAUSE_READY"
#: Longer than any test waits: a paused process is signalled, never let go.
PAUSE_SECONDS = 120
#: Documents per bulk request to an OpenSearch index in these runs.
CLUSTER_BULK_DOCUMENTS = 10

#: Where a run can pause: which process, in which function, at its n-th call there.
POINTS: dict[str, tuple[str, Any, str, int]] = {
    # a worker has read and indexed some files of its first chunk
    "reading": ("worker", workers, "load", 10),
    # a worker is writing a segment: one field's postings written, the next one's not
    "writing segments": ("worker", whoosh_internals._BufferedSegment, "_length_codes", 2),
    # the command is merging small segments into a new one (a sync): one read, one not yet
    "merging": ("command", whoosh_internals._BufferedSegment, "add_segment", 2),
    # the command is committing: every segment written, the table of contents not yet
    "committing": ("command", SegmentWriter, "_commit_toc", 1),
    # the new generation is complete and not yet the live one (a rebuild)
    "publishing": ("command", IndexStore, "publish", 1),
    # an OpenSearch index's first bulk request is taken, the next files are being read
    "sending": ("command", cluster_sync, "read_file", CLUSTER_BULK_DOCUMENTS + 2),
}


def _role() -> str:
    return "command" if multiprocessing.parent_process() is None else "worker"


def _install(point: str, ready: Path) -> None:
    """Wrap the function of ``point`` so that its n-th call in each process of its role
    pauses."""
    role, owner, name, nth = POINTS[point]
    original = getattr(owner, name)
    calls = 0  # a forked worker starts from the command's count: 0 for a worker's point

    def pausing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        if _role() == role:
            calls += 1
            if calls == nth:
                if not ready.exists():  # written whole: the test reads it as soon as it exists
                    temp = ready.with_name(f"{ready.name}.{os.getpid()}")
                    temp.write_text(str(os.getpid()))
                    os.replace(temp, ready)
                time.sleep(PAUSE_SECONDS)
        return original(*args, **kwargs)

    setattr(owner, name, pausing)


def main(args: list[str]) -> None:
    if args[:1] == ["--spawn"]:
        args = args[1:]
        threading.Thread(target=threading.Event().wait, daemon=True).start()
    indexer.BUILD_PROCESSES = 2
    indexer.PARALLEL_FILES_PER_PROCESS = 50
    indexer.SYNC_FILES_PER_PROCESS = 10
    merge_policy.MERGE_FACTOR = 2
    workers._CHUNK_FILES = 20
    cluster_sync.BULK_DOCUMENTS = CLUSTER_BULK_DOCUMENTS
    cli.cli.main(args=args, prog_name="searchidx")


if os.environ.get(PAUSE_AT):
    _install(os.environ[PAUSE_AT], Path(os.environ[PAUSE_READY]))

if __name__ == "__main__":
    main(sys.argv[1:])
