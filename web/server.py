"""Serving the app: waitress on one listening socket, in one process or several.

A search runs in Python and holds the GIL, so one process answers on one core however many
threads it has. ``workers`` processes share one listening socket (the kernel hands each
connection to one of them), each with its own app and searcher; the parent only starts them,
and stops them all when it is interrupted or one of them dies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

from waitress import create_server

from searchidx.errors import SearchidxError

#: Connections the kernel queues while every worker is busy.
BACKLOG = 1024


class ServerError(SearchidxError):
    """The server could not start or a worker stopped."""


def serve(
    make_app: Callable[[], Any],
    host: str,
    port: int,
    threads: int,
    workers: int,
    on_ready: Callable[[str], None],
) -> None:
    """Serve ``make_app()`` on ``host:port`` until interrupted; ``on_ready(url)`` once the
    socket listens (port 0 becomes a free port). Each worker process calls ``make_app``."""
    listener = _listen(host, port)
    url = f"http://{host}:{listener.getsockname()[1]}/"
    if workers == 1:
        on_ready(url)
        _run(make_app, listener, threads)
        return
    children: list[int] = []
    signal.signal(signal.SIGTERM, _interrupt)  # stop the workers too, not just this process
    try:
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:  # a worker: serve until told to stop, and never return to the caller
                code = 1
                try:
                    _run(make_app, listener, threads)
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
        on_ready(url)
        pid, status = os.wait()
        children.remove(pid)
        raise ServerError(
            f"worker process {pid} stopped ({_describe(status)}); stopping the server"
        )
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
        _stop(children)


def _listen(host: str, port: int) -> socket.socket:
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


def _run(make_app: Callable[[], Any], listener: socket.socket, threads: int) -> None:
    server = create_server(make_app(), sockets=[listener], threads=threads)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop(children: list[int]) -> None:
    """SIGTERM every worker still running, and wait for each."""
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
