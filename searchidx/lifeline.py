"""Child processes that end with their parent, however it ends.

A parent killed by SIGKILL runs no handler to stop its children, and a child left behind goes
on: a web worker answering on the port, an indexing worker waiting for work forever,
reparented to init. So each child watches a pipe whose writing end only its parent holds:
reading it ends (end of file) once the parent has ended, and the child then stops as a
SIGTERM stops it, at once past a grace period. A pipe, not Linux's parent-death signal: it
works on every POSIX system, and the kernel sends that signal when the *thread* that started
the child ends, not the process.
"""

from __future__ import annotations

import os
import signal
import threading
import time


class Lifeline:
    """A pipe whose writing end only this process holds, for the children it forks: each calls
    :meth:`hold` first thing."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()

    def __enter__(self) -> Lifeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._read)
        os.close(self._write)

    def hold(self, grace: float) -> None:
        """In a forked child: end with the parent (see :func:`end_with_parent`)."""
        os.close(self._write)  # or the child would keep the pipe open itself
        end_with_parent(self._read, grace)


def end_with_parent(parent_end: int, grace: float) -> None:
    """Stop this process (SIGTERM, then exit after ``grace`` seconds) once the pipe that
    ``parent_end`` reads from is closed by the end of the parent, its only writer (a
    multiprocessing child's ``parent_process().sentinel`` is such a pipe)."""
    watcher = threading.Thread(
        target=_stop_at_end, args=(parent_end, grace), name="lifeline", daemon=True
    )
    watcher.start()


def _stop_at_end(parent_end: int, grace: float) -> None:
    while os.read(parent_end, 4096):  # the parent writes nothing; read to the end regardless
        pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os._exit(1)
