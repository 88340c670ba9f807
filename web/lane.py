"""The server's lane for heavy searches: one process, at a lower priority, running them one
at a time.

A search runs in Python and holds its worker's core until it ends (the GIL), so a few heavy
searches (many common words, fuzzy words, wildcards near the caps: hundreds of ms each) would
take the cores from the ordinary ones, which take a few ms. A worker's search that has used
``heavy_after`` seconds of its thread's CPU (``serve --heavy-after-ms``) stops at the next
check of its budget (:class:`searchidx.bounds.HandOff`) and is run again here:

- one heavy search at a time for the whole server, however many workers;
- in a process niced by :data:`NICE`: the kernel gives the workers' ordinary searches the
  cores first. Not a niced thread in each worker: a thread holding the GIL while the kernel
  holds it back would stall its worker's ordinary searches (priority inversion);
- within the request's own deadline: the time it waited for the lane counts against its budget,
  and past it the worker answers the budget's 503 (a request never waits behind another's
  search longer than its budget);
- a worker keeps at most ``waiting`` threads waiting for the lane and answers further heavy
  requests with a 503 at once: its other threads stay free for ordinary requests.

Workers reach the lane through a Unix socket in a private temporary folder; the lane answers
the connections in the order they came (the listening socket's backlog is its queue).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from multiprocessing.connection import Client, Connection
from typing import TYPE_CHECKING, Any

from searchidx import bounds
from searchidx.bounds import SearchTimeout
from searchidx.errors import QueryError, SearchidxError

if TYPE_CHECKING:
    from searchidx.request import SearchRequest
    from searchidx.result import SearchResult
    from searchidx.service import SearchService

#: The lane's niceness: the kernel gives it about a tenth of a core that workers keep busy.
NICE = 10
#: Heavy searches that may wait for the lane (the listening socket's backlog).
BACKLOG = 64
#: Seconds the lane waits for a connected worker to send its request.
_RECEIVE_TIMEOUT = 5.0


class HeavyLane:
    """The lane, made before the server forks (the socket listens at once); :meth:`run` in
    its own process, :meth:`search` in the workers' threads. ``make_service`` makes the lane
    process's own search service (no lane of its own)."""

    def __init__(
        self,
        make_service: Callable[[], SearchService],
        heavy_after: float,
        waiting: int,
    ) -> None:
        self.heavy_after = heavy_after
        self._make_service = make_service
        self._folder = tempfile.mkdtemp(prefix="searchidx-lane-")  # only this user may connect
        self._address = os.path.join(self._folder, "lane")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self._address)
        self._listener.listen(BACKLOG)
        # Each forked worker gets its own copy: a limit per worker.
        self._waiting = threading.BoundedSemaphore(waiting)

    # In the lane's process -----------------------------------------------------------------

    def run(self) -> None:
        """Answer the workers' heavy searches one at a time, until the process is stopped."""
        os.nice(NICE)
        service = self._make_service()
        while True:
            accepted, _ = self._listener.accept()
            with Connection(accepted.detach()) as connection:
                self._answer(connection, service)

    def _answer(self, connection: Connection, service: SearchService) -> None:
        try:
            if not connection.poll(_RECEIVE_TIMEOUT):
                return
            request, seconds, at = connection.recv()
            deadline = bounds.Deadline(seconds, at)
            try:
                deadline.check()  # its worker has stopped waiting: do not search
                answer: tuple[Any, ...] = ("result", service.search(request, deadline))
            except SearchidxError as error:
                answer = ("error", type(error), str(error), getattr(error, "parameter", None))
            connection.send(answer)
        except (OSError, EOFError):
            pass  # the worker stopped waiting (its deadline passed, or it was stopped)

    # In a worker -------------------------------------------------------------------------

    def search(self, request: SearchRequest, deadline: bounds.Deadline) -> SearchResult:
        """``request`` answered by the lane by ``deadline``; else :class:`SearchTimeout`."""
        if not self._waiting.acquire(blocking=False):
            raise SearchTimeout(
                "the server is busy with other broad searches; narrow this one (fewer or "
                "longer words, fewer wildcards) or try again in a moment"
            )
        try:
            with Client(self._address, family="AF_UNIX") as connection:
                connection.send((request, deadline.seconds, deadline.at))
                if not connection.poll(deadline.remaining()):
                    raise SearchTimeout(
                        f"the search waited for other broad searches for its whole "
                        f"{deadline.seconds:g} s budget; narrow it (fewer or longer words, "
                        "fewer wildcards) or try again"
                    )
                answer = connection.recv()
        finally:
            self._waiting.release()
        if answer[0] == "result":
            result: SearchResult = answer[1]
            return result
        _, kind, message, parameter = answer
        raise kind(message, parameter) if issubclass(kind, QueryError) else kind(message)

    def close(self) -> None:
        """Stop listening and remove the socket (the server's parent, when it stops)."""
        self._listener.close()
        with contextlib.suppress(OSError):
            shutil.rmtree(self._folder)
