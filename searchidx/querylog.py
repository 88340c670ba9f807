"""What people search for: a log of searches, appended by every server worker, and its summary.

One JSON object a line: when, the query text, the filters and ranges, the sort, the page, the
hit count and the time the search took. No address, cookie or other header is recorded: the log
answers "what do readers look for, and not find", not "who".

Several worker processes append to one file. Each record is one ``write()`` on a file opened with
``O_APPEND``, so lines never interleave. The file rotates by size (``queries.log`` becomes
``queries.log.1``, and so on up to ``backups``): the worker that sees it grown past the limit takes
an ``flock`` on a lock file beside it and renames, unless another worker already did.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from searchidx.defaults import KEPT_FILES, ROTATE_BYTES
from searchidx.errors import QueryError, SearchidxError
from searchidx.request import parse_date_bound
from searchidx.result import SearchResult
from searchidx.timestamps import iso_timestamp

#: Percentiles of the search time that ``stats`` reports.
PERCENTILES = (50, 90, 95, 99)


class QueryLogError(SearchidxError):
    """The query log cannot be written or read."""


@dataclass(frozen=True)
class LoggedSearch:
    """One search as the log keeps it."""

    at: datetime
    query: str
    filters: dict[str, list[str]]
    sort: str
    page: int
    hits: int
    ms: float

    @classmethod
    def of(cls, result: SearchResult, at: datetime | None = None) -> LoggedSearch:
        request = result.request
        ranges = {
            "from": iso_timestamp(request.date_from),
            "to": iso_timestamp(request.date_to),
            "min_quality": request.min_quality,
            "max_quality": request.max_quality,
        }
        return cls(
            at=at or datetime.now(UTC),
            query=request.text,
            filters={name: list(values) for name, values in request.filters.items()}
            | {name: [str(value)] for name, value in ranges.items() if value is not None},
            sort=request.effective_sort.value,
            page=request.page,
            hits=result.total,
            ms=round(result.took_ms, 2),
        )

    def to_json(self) -> str:
        record = {
            "at": iso_timestamp(self.at),
            "query": self.query,
            "filters": self.filters,
            "sort": self.sort,
            "page": self.page,
            "hits": self.hits,
            "ms": self.ms,
        }
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> LoggedSearch:
        """Raises ValueError (or KeyError, TypeError) for a line that is not a record."""
        record = json.loads(line)
        return cls(
            at=datetime.fromisoformat(record["at"]).astimezone(UTC),
            query=str(record["query"]),
            filters={str(k): [str(v) for v in vs] for k, vs in dict(record["filters"]).items()},
            sort=str(record["sort"]),
            page=int(record["page"]),
            hits=int(record["hits"]),
            ms=float(record["ms"]),
        )


class QueryLog:
    """Appends searches to ``path``, rotating it past ``max_bytes``; safe across processes."""

    def __init__(
        self, path: Path | str, max_bytes: int = ROTATE_BYTES, backups: int = KEPT_FILES
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups

    def check(self) -> None:
        """Fail now, with a message naming the file, if the log cannot be appended to."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(self._open())
        except OSError as error:
            raise QueryLogError(
                f"cannot write the query log {self.path}: {error.strerror or error}; "
                "choose another --query-log file"
            ) from None

    def append(self, search: LoggedSearch) -> None:
        """Add one record: one ``write()``, so concurrent writers never split a line."""
        line = (search.to_json() + "\n").encode("utf-8")
        fd = self._open()
        try:
            os.write(fd, line)
            grown = os.fstat(fd).st_size >= self.max_bytes
            if grown:
                self._rotate(os.fstat(fd).st_ino)
        finally:
            os.close(fd)

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _rotate(self, written: int) -> None:
        """Shift ``log.N`` to ``log.N+1`` (dropping the oldest) and ``log`` to ``log.1``, once:
        under the lock, a worker whose file was already rotated by another leaves it."""
        lock = os.open(f"{self.path}.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                return
            if current.st_ino != written or current.st_size < self.max_bytes:
                return
            for number in range(self.backups - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(_backup(self.path, number), _backup(self.path, number + 1))
            if self.backups:
                os.replace(self.path, _backup(self.path, 1))
            else:
                os.truncate(self.path, 0)
        finally:
            os.close(lock)


def _backup(path: Path, number: int) -> Path:
    return path.with_name(f"{path.name}.{number}")


def read_log(path: Path | str) -> tuple[list[LoggedSearch], int]:
    """Every record of the log and its rotated files, oldest first, and how many lines were
    unreadable (a line cut short by a crash, or text that is not a record)."""
    path = Path(path)
    files = sorted(
        (p for p in path.parent.glob(f"{glob.escape(path.name)}.*") if p.suffix[1:].isdigit()),
        key=lambda p: -int(p.suffix[1:]),
    )
    files.append(path)
    if not any(file.exists() for file in files):
        raise QueryLogError(
            f"no query log at {path}; start the server with 'searchidx serve --query-log {path}'"
        )
    searches: list[LoggedSearch] = []
    unreadable = 0
    for file in files:
        for line in _lines(file):
            try:
                searches.append(LoggedSearch.from_json(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                unreadable += 1
    return searches, unreadable


def _lines(file: Path) -> Iterator[str]:
    try:
        with file.open(encoding="utf-8", errors="replace") as stream:
            yield from (line for line in stream if line.strip())
    except FileNotFoundError:
        return
    except OSError as error:
        raise QueryLogError(f"cannot read the query log {file}: {error.strerror}") from None


_RELATIVE = re.compile(r"([0-9]{1,6})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime, *, end: bool = False) -> datetime:
    """A moment given as a date (as ``--from``/``--to`` take it) or as a time before ``now``:
    ``30m``, ``12h``, ``7d``, ``2w``."""
    value = text.strip()
    if match := _RELATIVE.fullmatch(value):
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        return parse_date_bound(value, end=end)
    except QueryError:
        raise QueryError(
            f"{text!r} is neither a date (YYYY-MM-DD, ...) nor a time ago such as 30m, 12h, 7d or "
            "2w",
            "since",
        ) from None


@dataclass(frozen=True)
class QueryStats:
    """The summary ``searchidx stats`` prints: what was searched most, what found nothing, and
    how long searches took, over one period. Only first pages count as searches in the top
    lists (paging through one search is not searching again); every request counts in the
    latency figures."""

    since: datetime | None
    until: datetime | None
    requests: int
    searches: int
    zero_results: int
    unreadable: int
    top: list[tuple[str, int]]
    top_zero: list[tuple[str, int]]
    latency_ms: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": iso_timestamp(self.since),
            "until": iso_timestamp(self.until),
            "requests": self.requests,
            "searches": self.searches,
            "zero_results": self.zero_results,
            "unreadable_lines": self.unreadable,
            "top": [{"query": query, "count": count} for query, count in self.top],
            "top_zero_results": [
                {"query": query, "count": count} for query, count in self.top_zero
            ],
            "latency_ms": self.latency_ms,
        }


def summarise(
    searches: Iterable[LoggedSearch],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    top: int = 10,
    unreadable: int = 0,
) -> QueryStats:
    chosen = [
        search
        for search in searches
        if (since is None or search.at >= since) and (until is None or search.at <= until)
    ]
    firsts = [search for search in chosen if search.page == 1]
    asked = Counter(_normalised(search.query) for search in firsts)
    unanswered = Counter(_normalised(search.query) for search in firsts if search.hits == 0)
    times = sorted(search.ms for search in chosen)
    return QueryStats(
        since=since,
        until=until,
        requests=len(chosen),
        searches=len(firsts),
        zero_results=sum(unanswered.values()),
        unreadable=unreadable,
        top=asked.most_common(top),
        top_zero=unanswered.most_common(top),
        latency_ms={f"p{p}": _percentile(times, p) for p in PERCENTILES} if times else {},
    )


def _normalised(text: str) -> str:
    """Searches counted together: the same words, whatever the case and spacing."""
    return " ".join(text.split()).casefold() or "(no query text)"


def _percentile(ordered: list[float], percent: int) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]
