"""Serving the app: waitress in one process or several, sharing one listening socket.

A search runs in Python and holds the GIL, so one process answers on one core however many
threads it has. ``workers`` processes share one listening socket, each with its own app and
searcher, and each takes a new connection only while it holds no more of them than any other
(:class:`_Server`); the parent only starts them (keeping no copy of the socket), stops
them all when it is interrupted or one of them dies, and takes them with it when it is
killed. With a lane for heavy searches
(:mod:`searchidx.web.lane`), the parent starts its process first, and the workers hand it their
heavy searches.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, cast

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from searchidx.errors import SearchidxError
from searchidx.lifeline import Lifeline

if TYPE_CHECKING:
    from searchidx.web.lane import HeavyLane

#: Connections the kernel queues while every worker is busy.
BACKLOG = 1024

#: A worker's collector thresholds. A request allocates about a thousand objects that die
#: with it, so Python's default (a young collection every 700 allocations) ran the collector
#: about twice a request, and a full one over the growing caches (about 45 ms each) every
#: ~100 requests: 0.65 ms of a request's CPU at 100,000 articles, and each full collection
#: stalls the worker. These run a young collection every 20,000 (a few MB), a full one every
#: ~4,000 requests, which still frees a replaced snapshot's cycles within seconds under load.
GC_THRESHOLDS = (20_000, 20, 10)

#: glibc's ``mallopt`` parameter for the most malloc arenas (``M_ARENA_MAX``, malloc.h).
_M_ARENA_MAX = -8

#: Seconds between a worker's looks at whether it may take new connections while it may not
#: (another worker's count may have risen meanwhile); waitress's own wait is a second.
BALANCE_RECHECK = 0.05

#: Seconds a worker has to finish its requests after SIGTERM before it is killed: a SIGTERM
#: can be lost (raised inside a finaliser, Python only reports it), and the server must stop.
STOP_GRACE = 10.0

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class ServerError(SearchidxError):
    """The server could not start or a worker stopped."""


def serve(
    make_app: Callable[[], Any],
    host: str,
    port: int,
    threads: int,
    workers: int,
    on_ready: Callable[[str], None],
    lane: HeavyLane | None = None,
) -> None:
    """Serve ``make_app()`` on ``host:port`` until interrupted; ``on_ready(url)`` once the
    socket listens (port 0 becomes a free port). Each worker process calls ``make_app``;
    ``lane``, if given, runs in a process of its own, and is closed however serving ends."""
    with contextlib.ExitStack() as cleanup:
        if lane is not None:
            cleanup.callback(lane.close)
        listener = _listen(host, port)
        url = f"http://{host}:{listener.getsockname()[1]}/"
        if workers == 1 and lane is None:
            on_ready(url)
            _run(make_app, listener, threads)
            return
        children: list[int] = []
        signal.signal(signal.SIGTERM, _interrupt)  # stop the workers too, not just this process
        lifeline = cleanup.enter_context(Lifeline())
        try:
            _start(lifeline, children, make_app, listener, threads, workers, lane)
            on_ready(url)
            pid, status = os.wait()
            children.remove(pid)
            raise ServerError(
                f"worker process {pid} stopped ({_describe(status)}); stopping the server"
            )
        except KeyboardInterrupt:
            pass
        finally:
            _stop(children)


def _start(
    lifeline: Lifeline,
    children: list[int],
    make_app: Callable[[], Any],
    listener: socket.socket,
    threads: int,
    workers: int,
    lane: HeavyLane | None,
) -> None:
    """Start the lane and ``workers`` workers (their pids into ``children``), then close this
    process's copy of the socket: the workers' alone, so when they stop no connection waits on
    a socket nobody answers."""
    held = multiprocessing.get_context("fork").Array("i", workers, lock=False)
    try:
        if lane is not None:
            run_lane = functools.partial(_run_lane, lane, listener)
            children.append(_fork(lifeline, run_lane, ending=lane.close))
        for number in range(workers):
            balance = _Balance(held, number) if workers > 1 else None
            children.append(
                _fork(lifeline, functools.partial(_run, make_app, listener, threads, balance))
            )
    finally:
        listener.close()


def _listen(host: str, port: int) -> socket.socket:
    """The socket listening on ``host:port``, shared by every worker.

    Not a socket per worker with ``SO_REUSEPORT``: the kernel gives each new connection to a
    socket by a hash of its addresses, and a keep-alive connection stays with the worker that
    took it, so 16 clients split 11/5 between 2 workers in many runs (even or worse than 10/6
    in about half, by the binomial odds), and the worker with 11 answered with about twice the
    latency of the other while both were busy. :class:`_Server` splits them evenly, as
    Envoy's "exact balance" of connections over its workers does.
    """
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = info[0]
        listener = socket.socket(family, kind, proto)
    except OSError as error:
        raise ServerError(f"cannot listen on {host}:{port}: {error}") from None
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(BACKLOG)
    except OSError as error:
        listener.close()
        raise ServerError(
            f"cannot listen on {host}:{port}: {error.strerror or error}; choose another "
            "--port, or stop what is using it"
        ) from None
    return listener


class _Balance:
    """The open connections of every worker (shared memory, one count each), and which
    worker this is. A worker still starting counts none, so the others wait for it, as a
    socket of its own would have kept its share of the connections waiting."""

    def __init__(self, held: Any, number: int) -> None:
        self.held = held
        self.number = number

    def may_take(self, mine: int) -> bool:
        """Publish this worker's ``mine`` connections; whether it holds no more than any
        other (then it may take the next)."""
        self.held[self.number] = mine
        least: int = min(self.held)
        return mine <= least


class _Channel(HTTPChannel):
    """Waitress's connection, not polled for writing while a request's thread sends on it.

    A request's thread sends its response itself (waitress sends from the first byte written,
    ``send_bytes`` 1), holding the connection's output lock. Meanwhile the main loop saw output
    not yet sent, found the socket writable at once, could not take the lock, and polled
    again: under the bench's uncached load (16 clients, 2 workers) some 20 polls and 66
    attempts a request, each taking the GIL from the searches: 0.6 ms of a request's 3.4 ms of
    CPU. The loop sends what the thread leaves unsent once it is done writing, and at once
    past the high-water mark (the thread waits for it then)."""

    _sending = False

    def write_soon(self, data: bytes) -> int:
        self._sending = True
        try:
            return super().write_soon(data)
        finally:
            self._sending = False

    def writable(self) -> bool:
        if self._sending and self.total_outbufs_len <= self.adj.outbuf_high_watermark:
            return self.will_close or self.close_when_flushed
        return bool(super().writable())


class _Server(TcpWSGIServer):
    """Waitress's server on one listening socket, its connections :class:`_Channel`. With a
    ``balance``, it listens only while its worker holds no more connections than any other:
    the workers share the socket, so one that may take a connection does; one that may not
    looks again every :data:`BALANCE_RECHECK` seconds (the others' counts change without
    waking it)."""

    channel_class = _Channel

    def __init__(self, balance: _Balance | None, *args: Any, **kwargs: Any) -> None:
        self.balance = balance
        super().__init__(*args, **kwargs)

    def readable(self) -> bool:
        ready: bool = super().readable()
        if self.balance is None:
            return ready
        channels = cast("dict[int, Any]", self.active_channels)  # its stub says one channel
        return self.balance.may_take(len(channels)) and ready


def _fork(
    lifeline: Lifeline, work: Callable[[], None], ending: Callable[[], None] | None = None
) -> int:
    """Start a child process doing ``work`` that ends with this one (``lifeline``: a SIGKILL
    runs no handler to stop it, and a worker left behind would go on answering on the port),
    and runs ``ending`` however it ends; its pid. Stop signals are held back across the fork,
    so one reaches the child inside :func:`_work`, never in the caller's code."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        pid = os.fork()
        if pid == 0:
            _work(lifeline, work, ending)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    return pid


def _work(
    lifeline: Lifeline, work: Callable[[], None], ending: Callable[[], None] | None
) -> NoReturn:
    """A child: work until told to stop (or until this process's parent ends: then as told to
    stop, at once past :data:`STOP_GRACE`), then ``ending``, and never return to the caller.
    ``ending`` runs here, not in ``work``: a parent killed as the child starts has the lifeline
    stop it before ``work`` has begun (a killed server's test found the lane's folder left so)."""
    code = 1
    try:
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            lifeline.hold(STOP_GRACE)
            work()
            code = 0
        except KeyboardInterrupt:
            code = 0
        finally:
            for stop in _STOP_SIGNALS:  # told to stop again meanwhile: ending still runs
                signal.signal(stop, signal.SIG_IGN)
            if ending is not None:
                ending()  # the parent does too, unless it was killed
    finally:
        os._exit(code)


def _run_lane(lane: HeavyLane, listener: socket.socket) -> None:
    listener.close()  # the lane answers workers, never a client
    lane.run()


def _run(
    make_app: Callable[[], Any],
    listener: socket.socket,
    threads: int,
    balance: _Balance | None = None,
) -> None:
    """Serve on ``listener``; with ``balance``, one worker of several (see :class:`_Server`)."""
    _one_malloc_arena()
    app = make_app()
    _settle_collector()
    _quiet_queue_log()
    server = _server(app, listener, threads, balance)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _server(app: Any, listener: socket.socket, threads: int, balance: _Balance | None) -> _Server:
    """What waitress's ``create_server`` makes of one TCP socket, as a :class:`_Server`."""
    adjustments = Adjustments(sockets=[listener], threads=threads)
    if balance is not None:
        adjustments.asyncore_loop_timeout = BALANCE_RECHECK  # type: ignore[assignment]
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(threads)
    return _Server(
        balance,
        app,
        {},
        True,
        listener,
        dispatcher=dispatcher,
        adj=adjustments,
        bind_socket=False,
        sockinfo=(listener.family, listener.type, listener.proto, listener.getsockname()),
    )


def _settle_collector() -> None:
    """The collector at :data:`GC_THRESHOLDS`: a few runs a second under load, not hundreds.
    Not ``gc.freeze``: a snapshot frozen at start and replaced by a sync would never be freed."""
    gc.set_threshold(*GC_THRESHOLDS)


def _one_malloc_arena() -> None:
    """One malloc arena for all of a worker's threads, not one each (glibc makes up to eight a
    core): they allocate holding the GIL nearly always, so arenas of their own spare them no
    waiting, and each kept memory its thread had freed. At 100,000 articles under the bench's
    uncached load, a worker's peak RSS 309-314 -> 289-291 MiB. Nothing where the C library
    has no ``mallopt`` (not glibc)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1)


def _quiet_queue_log() -> None:
    """Waitress warns "Task queue depth is N" whenever a request waits for a thread, which under
    load is nearly every request: a log line each, written by the worker that should be
    answering. Its warnings stay off; its errors stay on."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop(children: list[int], grace: float = STOP_GRACE) -> None:
    """SIGTERM every worker still running and wait for each; SIGKILL those still running
    after ``grace`` seconds."""
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    running = set(children)
    while running and time.monotonic() < deadline:
        running -= {pid for pid in running if _has_stopped(pid)}
        if running:
            time.sleep(0.05)
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _has_stopped(pid: int) -> bool:
    """Whether child ``pid`` has exited (and is reaped now)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
