"""The server's lane for heavy searches: one process that runs them one at a time, and
yields to the workers' searches.

A search runs in Python and holds its worker's core until it ends (the GIL), so a few heavy
searches (many common words, fuzzy words, wildcards near the caps: hundreds of ms each) would
take the cores from the ordinary ones, which take a few ms.
So a worker hands a broad search (:func:`searchidx.bounds.broad`: wildcards, fuzzy words,
term ranges, more than 8 words) here before doing any of its work, and any other search that
has used ``heavy_after`` seconds of its thread's CPU (``serve --heavy-after-ms``) stops at the
next check of its budget (:class:`searchidx.bounds.HandOff`) and is run again here:

- one heavy search at a time for the whole server, however many workers;
- yielding to the workers: while any worker is searching, the lane sleeps at each check of
  its budget :data:`YIELD` times as long as it ran since the last (:data:`MAX_PAUSE` at a
  time, until they stop or the debt is paid: a single capped sleep let a search whose checks
  are far apart run 30% of the time), so it takes about a quarter of a core from them (a
  check comes every few ms of work: 64 words read, a segment of a posting list, 8,192
  postings' positions decoded), and all of an idle one;
- below the workers for the kernel too (nice :data:`NICENESS`): the yielding sees only the
  workers' searches, not their parsing, rendering and HTTP (about half of an ordinary
  request's CPU), and at the workers' nice, waking from a sleep, it may take a core from a
  busy worker at once (the kernel favours a task that slept). Linux weighs a nice value against the
  processes of the same session (autogroup) or service (cgroup), so the lane gives way to its
  workers, not to the rest of a shared machine; 10 rather than 19 keeps it some 10% of a core
  beside any other busy process of its group, so a heavy search sent alone still ends in time.
  A mixed load at 20,000 articles on a loaded machine (4 hostile and 12 ordinary clients, 3
  runs each, medians): the lane's CPU beside the workers' 12% -> 4%, the ordinary p95 494 ->
  353 ms (the whole sleep alone: 17% -> 12%, 516 -> 494 ms). Not a thread in each worker:
  while it ran, it would take turns with its worker's ordinary searches for the worker's one
  core (the GIL, 5 ms at a time);
- within the request's own deadline: the time it waited for the lane counts against its budget,
  and past it the worker answers :class:`~searchidx.bounds.HeavyBusy` (a request never waits
  behind another's search longer than its budget); so does a search the lane stopped at the
  deadline having used less CPU than its budget (it waited and yielded more than it ran);
- a worker keeps at most ``waiting`` threads waiting for the lane (``serve``: all but one)
  and answers further heavy requests with :class:`~searchidx.bounds.HeavyBusy` at once: a
  thread stays free for ordinary requests. Waiting rather than refusing at once keeps a client
  that sends heavy requests back to back to about one a second (a fast refusal let 4 such
  clients send 2,500 requests in 15 s, each a few ms of a worker's time). These refusals are a
  429 with ``Retry-After``, never a 5xx: the client sent too many heavy searches at once, the
  server is well (a search that used its whole budget's CPU is the budget's 503).

Workers reach the lane through a Unix socket in a private temporary folder; the lane answers
the connections in the order they came (the listening socket's backlog is its queue).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Client, Connection
from typing import TYPE_CHECKING, Any

from searchidx import bounds
from searchidx.bounds import HeavyBusy, SearchTimeout
from searchidx.errors import QueryError, SearchidxError

if TYPE_CHECKING:
    from searchidx.request import SearchRequest
    from searchidx.result import SearchResult
    from searchidx.service import SearchService

#: While workers search, the lane sleeps this many times as long as it ran...
YIELD = 3
#: ... and at most this many seconds at a time (the deadline is checked in between).
MAX_PAUSE = 0.02
#: Added to the lane process's nice value: while the workers want both cores, it gets some
#: 10% of one (a weight of 110 to each worker's 1,024), all of an idle one.
NICENESS = 10
#: Heavy searches that may wait for the lane (the listening socket's backlog).
BACKLOG = 64
#: Seconds a worker waits past the deadline for the lane's own answer (the search stopped
#: there, a 503), before answering that it waited for other searches.
_GRACE = 0.1
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
        # Shared by every process forked from here: the searches running in the workers.
        self._searching = multiprocessing.get_context("fork").Value("i", 0)
        self._resumed = 0.0  # when the lane's search last ran on after a pause
        self._deadline = bounds.Deadline(None)  # of the search the lane runs

    # In the lane's process -----------------------------------------------------------------

    def run(self) -> None:
        """Answer the workers' heavy searches one at a time, until the process is stopped."""
        os.nice(NICENESS)
        service = self._make_service()
        with contextlib.suppress(SearchidxError):  # no index yet: the first search says so
            service.snapshot()  # its arrays, read now rather than in a request's budget
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
                answer: tuple[Any, ...] = ("result", self._search(service, request, deadline))
            except SearchidxError as error:
                answer = ("error", type(error), str(error), getattr(error, "parameter", None))
            connection.send(answer)
        except (OSError, EOFError):
            pass  # the worker stopped waiting (its deadline passed, or it was stopped)

    def _search(
        self, service: SearchService, request: SearchRequest, deadline: bounds.Deadline
    ) -> SearchResult:
        """``request`` searched within ``deadline``. One stopped there having used less CPU
        than its budget would have ended in time but for the other searches (waited for in
        the queue, or yielded to): :class:`HeavyBusy`, not the budget's 503."""
        self._deadline = deadline
        self._resumed = time.monotonic()
        started = time.thread_time()
        try:
            return service.search(request, deadline, self._pause)
        except SearchTimeout:
            if deadline.seconds is None or time.thread_time() - started >= deadline.seconds:
                raise
            raise HeavyBusy(
                f"the search waited for other searches for most of its {deadline.seconds:g} s "
                "budget; narrow it (fewer or longer words, fewer wildcards) or try again in a "
                "moment"
            ) from None

    def _pause(self) -> None:
        """At a check of the budget: yield to the workers' searches, if any run (see
        :data:`YIELD`), looking again every :data:`MAX_PAUSE` seconds."""
        owed = (time.monotonic() - self._resumed) * YIELD
        while owed > 0 and self._searching.value > 0:
            time.sleep(min(owed, MAX_PAUSE))
            owed -= MAX_PAUSE
            self._deadline.check()
        self._resumed = time.monotonic()

    # In a worker -------------------------------------------------------------------------

    @contextlib.contextmanager
    def searching(self) -> Iterator[None]:
        """Around a search in a worker: the lane yields while it runs."""
        with self._searching.get_lock():
            self._searching.value += 1
        try:
            yield
        finally:
            with self._searching.get_lock():
                self._searching.value -= 1

    def search(self, request: SearchRequest, deadline: bounds.Deadline) -> SearchResult:
        """``request`` answered by the lane by ``deadline``; else :class:`HeavyBusy` (it waited
        for the others that long), or the lane's :class:`~searchidx.bounds.SearchTimeout` (it
        ran that long)."""
        if not self._waiting.acquire(blocking=False):
            raise HeavyBusy(
                "the server is busy with other broad searches; narrow this one (fewer or "
                "longer words, fewer wildcards) or try again in a moment"
            )
        try:
            with Client(self._address, family="AF_UNIX") as connection:
                connection.send((request, deadline.seconds, deadline.at))
                remaining = deadline.remaining()
                # A search the lane runs stops at the deadline and says so itself.
                if not connection.poll(None if remaining is None else remaining + _GRACE):
                    raise HeavyBusy(
                        f"the search waited for other broad searches for its whole "
                        f"{deadline.seconds:g} s budget; narrow it (fewer or longer words, "
                        "fewer wildcards) or try again in a moment"
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
        """Stop listening and remove the socket (the server's parent when it stops, and the
        lane's process when it ends)."""
        self._listener.close()
        with contextlib.suppress(OSError):
            shutil.rmtree(self._folder)
