"""The OpenSearch test cluster: real nodes started by the launcher in tests/opensearch/launcher.

The launcher is one JVM holding every node, driven over its standard input and output. Its
standard input is a pipe held by this process only, and the JVM ends when that pipe closes: a
test run that ends in any way, even killed, leaves no JVM behind. Closing the cluster on
teardown also says so explicitly, and kills the JVM if it does not end in time.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opensearchpy import OpenSearch

LAUNCHER = Path(__file__).resolve().parent / "launcher"
JAR = LAUNCHER / "target" / "testcluster.jar"
MAIN_CLASS = "org.searchidx.testcluster.TestCluster"
JVM_OPTIONS = [
    # One heap for every node of the cluster: enough for test collections of a few thousand
    # articles.
    "-Xmx512m",
    # The quick compiler only and one GC thread: a cluster starts 2-3 times faster on two busy
    # cores (3 nodes: 15-19 s instead of 37-48 s measured side by side), and tests are short.
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
]
#: Generous: several test runs share two cores.
START_SECONDS = 180.0
COMMAND_SECONDS = 120.0
LOG_FILE = "cluster.log"


class ClusterError(Exception):
    """The test cluster cannot be built, started or driven as asked."""


class OpenSearchCluster:
    """A running test cluster: its nodes' HTTP ports, a client, and node faults on demand."""

    def __init__(self, process: subprocess.Popen[str], home: Path, lines: queue.Queue) -> None:
        self._process = process
        self._lines = lines
        self.home = home
        #: Node name -> HTTP port, of the nodes running now.
        self.http_ports: dict[str, int] = {}

    @classmethod
    def start(cls, home: Path, nodes: int) -> OpenSearchCluster:
        """Start ``nodes`` nodes with their data under ``home``; return once all have joined."""
        if not JAR.is_file():
            raise ClusterError(
                f"the OpenSearch test cluster is not built ({JAR} is missing): "
                "run `make opensearch-cluster` (needs Java 17 and Maven)"
            )
        home.mkdir(parents=True, exist_ok=True)
        classpath = os.pathsep.join([str(JAR), str(JAR.parent / "lib" / "*")])
        command = [_java(), *JVM_OPTIONS, "-cp", classpath, MAIN_CLASS]
        command += ["--nodes", str(nodes), "--home", str(home)]
        with open(home / LOG_FILE, "w", encoding="utf-8") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
            )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(process, lines), daemon=True).start()
        cluster = cls(process, home, lines)
        try:
            cluster.http_ports = _ports(cluster._reply("ready", START_SECONDS))
        except BaseException:
            cluster.close()
            raise
        return cluster

    @property
    def pid(self) -> int:
        """The JVM's process id."""
        return self._process.pid

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.http_ports.values()]

    @property
    def url(self) -> str:
        """The URL of one running node, as a user would give it."""
        return self.urls[0]

    def client(self, **options: Any) -> OpenSearch:
        """A client that knows every node running now, so it fails over when one is lost.

        Mind opensearch-py's ``timeout``: it is the HTTP timeout unless ``request_timeout`` is
        also given, and only then the server-side timeout of calls such as cluster health.
        """
        hosts = [{"host": "127.0.0.1", "port": port} for port in self.http_ports.values()]
        return OpenSearch(hosts=hosts, timeout=60, **options)

    def stop_node(self, name: str) -> None:
        """Close one node; returns once the others have seen it leave."""
        self._command(f"stop {name}", "stopped")
        del self.http_ports[name]

    def start_node(self, name: str) -> None:
        """Start a stopped node again on its data; returns once it has rejoined."""
        self.http_ports.update(_ports(self._command(f"start {name}", "started")))

    @contextlib.contextmanager
    def node_down(self, name: str) -> Iterator[None]:
        """One node lost for the block, back and the cluster green after it (for fault tests)."""
        self.stop_node(name)
        try:
            yield
        finally:
            self.start_node(name)
            self.client().cluster.health(
                wait_for_status="green",
                wait_for_nodes=len(self.http_ports),
                timeout="120s",
                request_timeout=150,
            )

    def close(self) -> None:
        """End the JVM: stdin closed (it closes its nodes), then a kill if it lingers."""
        with contextlib.suppress(OSError):
            if self._process.stdin:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def log_tail(self, lines: int = 20) -> str:
        """The end of the nodes' log, to say why a start or a command failed."""
        try:
            text = (self.home / LOG_FILE).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _command(self, command: str, answer: str) -> str:
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._reply(answer, COMMAND_SECONDS)

    def _reply(self, expected: str, seconds: float) -> str:
        """The launcher's next line, which must start with ``expected``."""
        deadline = time.monotonic() + seconds
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise ClusterError(
                f"the test cluster did not say '{expected}' in {seconds:g} s; "
                f"its log ({self.home / LOG_FILE}) ends:\n{self.log_tail()}"
            ) from None
        if line is None:
            raise ClusterError(
                f"the test cluster ended (exit {self._process.wait()}); "
                f"its log ({self.home / LOG_FILE}) ends:\n{self.log_tail()}"
            )
        if not line.startswith(expected + " "):
            raise ClusterError(f"the test cluster said: {line}")
        return line


def _java() -> str:
    """JAVA_HOME's java if set, else the one on PATH (the launcher is built for Java 17)."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java:
        raise ClusterError("no java found for the OpenSearch test cluster: install Java 17")
    return java


def _pump(process: subprocess.Popen[str], lines: queue.Queue) -> None:
    """Move the launcher's output lines to a queue, so reading them can time out; None at EOF."""
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line.strip())
    lines.put(None)


def _ports(line: str) -> dict[str, int]:
    """``ready node-1=9200 node-2=9201`` -> {"node-1": 9200, "node-2": 9201}."""
    pairs = (word.split("=", 1) for word in line.split()[1:])
    return {name: int(port) for name, port in pairs}
