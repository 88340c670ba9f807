"""Serving the app: waitress in one process or several, each on its own listening socket.

A search runs in Python and holds the GIL, so one process answers on one core however many
threads it has. ``workers`` processes each listen on the same port with a socket of their own
(``SO_REUSEPORT``: the kernel spreads new connections evenly over the sockets), each with its
own app and searcher; the parent only starts them (keeping none of their sockets), stops
them all when it is interrupted or one of them dies, and takes them with it when it is
killed. With a lane for heavy searches
(:mod:`searchidx.web.lane`), the parent starts its process first, and the workers hand it their
heavy searches.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from waitress.server import create_server

from searchidx.errors import SearchidxError

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
        listeners = _listen(host, port, workers)
        url = f"http://{host}:{listeners[0].getsockname()[1]}/"
        if workers == 1 and lane is None:
            on_ready(url)
            _run(make_app, listeners[0], threads)
            return
        children: list[int] = []
        signal.signal(signal.SIGTERM, _interrupt)  # stop the workers too, not just this process
        lifeline = cleanup.enter_context(_Lifeline())
        try:
            _start(lifeline, children, make_app, listeners, threads, lane)
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
    lifeline: _Lifeline,
    children: list[int],
    make_app: Callable[[], Any],
    listeners: list[socket.socket],
    threads: int,
    lane: HeavyLane | None,
) -> None:
    """Start the lane and a worker for each socket (their pids into ``children``), then close
    this process's copies of the sockets: each is its worker's alone, so a worker that stops
    takes its socket with it, and no connection waits on a socket nobody answers."""
    try:
        if lane is not None:
            children.append(lifeline.fork(lambda: _run_lane(lane, listeners)))
        for mine in listeners:
            work = functools.partial(_run_worker, make_app, listeners, mine, threads)
            children.append(lifeline.fork(work))
    finally:
        for listener in listeners:
            listener.close()


def _listen(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on ``host:port``, one per worker.

    With one socket shared by every worker, the worker that wakes first takes most new
    connections, and a keep-alive connection stays with the worker that took it: under load
    one core did most of the work. ``SO_REUSEPORT`` lets the kernel spread them evenly. A
    probe bound without it claims the port first, so a port in use (by another searchidx
    server too, whose sockets would otherwise share it) is still an error.
    """
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = info[0]
        listeners = [socket.socket(family, kind, proto) for _ in range(count + 1)]
    except OSError as error:
        raise ServerError(f"cannot listen on {host}:{port}: {error}") from None
    probe, *ours = listeners
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        address = probe.getsockname()  # port 0 becomes a free port
        probe.close()
        for listener in ours:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind(address)
            listener.listen(BACKLOG)
    except OSError as error:
        for listener in listeners:
            listener.close()
        raise ServerError(
            f"cannot listen on {host}:{port}: {error.strerror or error}; choose another "
            "--port, or stop what is using it"
        ) from None
    return ours


class _Lifeline:
    """A pipe whose writing end only the parent holds, so that its children end with it
    however it ends: a SIGKILL runs no handler to stop them, and a worker left behind would
    go on answering on the port. In each child a thread reads the pipe, which ends when the
    parent does; the child then stops as a SIGTERM stops it (at once past :data:`STOP_GRACE`).
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()

    def __enter__(self) -> _Lifeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._read)
        os.close(self._write)

    def fork(self, work: Callable[[], None]) -> int:
        """Start a child process doing ``work`` that ends with this one; its pid."""
        return _fork(functools.partial(self._child, work))

    def _child(self, work: Callable[[], None]) -> None:
        os.close(self._write)  # or the child would keep its own pipe open
        threading.Thread(target=self._end_with_parent, name="lifeline", daemon=True).start()
        work()

    def _end_with_parent(self) -> None:
        os.read(self._read, 1)  # nothing is written: it returns when the parent has ended
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(STOP_GRACE)
        os._exit(1)


def _fork(work: Callable[[], None]) -> int:
    """Start a child process doing ``work``; its pid. Stop signals are held back across the
    fork, so one reaches the child inside :func:`_work`, never in the caller's code."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        pid = os.fork()
        if pid == 0:
            _work(work)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    return pid


def _work(work: Callable[[], None]) -> NoReturn:
    """A child: work until told to stop, and never return to the caller."""
    code = 1
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        work()
        code = 0
    except KeyboardInterrupt:
        code = 0
    finally:
        os._exit(code)


def _run_lane(lane: HeavyLane, listeners: list[socket.socket]) -> None:
    for listener in listeners:
        listener.close()  # the lane answers workers, never a client
    try:
        lane.run()
    finally:
        lane.close()  # the parent does too, unless it was killed


def _run_worker(
    make_app: Callable[[], Any],
    listeners: list[socket.socket],
    mine: socket.socket,
    threads: int,
) -> None:
    """A worker: closes the other workers' sockets, so a connection the kernel queued on
    one is never held by a process that does not answer it, and serves on its own."""
    for listener in listeners:
        if listener is not mine:
            listener.close()
    _run(make_app, mine, threads)


def _run(make_app: Callable[[], Any], listener: socket.socket, threads: int) -> None:
    app = make_app()
    _settle_collector()
    _quiet_queue_log()
    server = create_server(app, sockets=[listener], threads=threads)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _settle_collector() -> None:
    """The collector at :data:`GC_THRESHOLDS`: a few runs a second under load, not hundreds.
    Not ``gc.freeze``: a snapshot frozen at start and replaced by a sync would never be freed."""
    gc.set_threshold(*GC_THRESHOLDS)


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
