"""Running a child process and measuring its peak memory, worker processes included.

``ru_maxrss`` (from ``wait4``) is the peak of the largest single process; a build that forks
workers uses the sum of them all, so the tree's resident memory is also sampled from ``/proc``
while it runs and the peak of the sum is reported.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")
#: Seconds between memory samples; between rescans of ``/proc`` for new worker processes.
SAMPLE_EVERY = 0.05
RESCAN_EVERY = 0.5


@dataclass
class ChildRun:
    returncode: int
    seconds: float
    #: Peak of the summed resident memory of the child and its descendants (sampled).
    peak_tree_bytes: int
    #: Peak resident memory of the largest single process (exact, from the kernel).
    peak_single_bytes: int
    #: CPU time (user and system) of the child and the descendants it waited for: less
    #: disturbed than wall time by other work on a shared machine.
    cpu_seconds: float


def run_measured(command: list[str], log: Path | None = None) -> ChildRun:
    """Run ``command`` to completion, sampling its process tree's memory."""
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    peak = 0
    tree = [process.pid]
    rescanned = 0.0
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if now - rescanned > RESCAN_EVERY:
                tree = descendants(process.pid)
                rescanned = now
            peak = max(peak, sum(_rss(pid) for pid in tree))
            time.sleep(SAMPLE_EVERY)
    finally:
        if not isinstance(output, int):  # the log file
            output.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    return ChildRun(
        returncode=process.returncode,
        seconds=time.perf_counter() - started,
        peak_tree_bytes=max(peak, usage.ru_maxrss * 1024),
        peak_single_bytes=usage.ru_maxrss * 1024,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
    )


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, ()))
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) ``pid`` has used so far, from ``/proc`` (0 if it is gone): a
    running server's, which ``wait4`` cannot give."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as file:
            return int(file.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


@dataclass(frozen=True)
class Resident:
    """A running process's memory, from ``/proc/PID/status``: ``peak`` is the most it held
    (``VmHWM``, all resident pages); of what it holds now, ``anonymous`` is its own (heap,
    arrays, caches) and ``file`` the pages of mapped files (the index's segments, libraries):
    page cache, shared with every process mapping the same file."""

    peak: int
    anonymous: int
    file: int


def resident(pid: int) -> Resident:
    """``pid``'s memory (all 0 if it is gone)."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as file:
            for line in file:
                name, _, value = line.partition(":")
                if name in ("VmHWM", "RssAnon", "RssFile"):
                    found[name] = int(value.split()[0]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return Resident(found.get("VmHWM", 0), found.get("RssAnon", 0), found.get("RssFile", 0))
