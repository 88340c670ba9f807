"""The typed search request, and the parsing of its values from text (CLI options, URLs).

Both the CLI and the web app build a :class:`SearchRequest` through the helpers here, so a date,
a sort name or a page number means the same thing, and fails with the same message, in both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from searchidx.errors import QueryError

#: The facets a request can filter on, by name. Values within one facet are OR-ed; facets are
#: AND-ed. ``month`` is the publication month histogram ("2022-06"); it is counted, and the
#: date range (``date_from``/``date_to``) is how a request narrows by date.
FILTER_FACETS = ("topic", "provider", "category", "type", "published")

MAX_PER_PAGE = 100
#: Like Elasticsearch's result window: deeper pages need a narrower search.
MAX_RESULT_WINDOW = 10_000
MAX_QUERY_CHARS = 1_000
MAX_FILTER_VALUES = 50
MAX_FACET_SIZE = 200


class Sort(StrEnum):
    RELEVANCE = "relevance"
    NEWEST = "newest"
    OLDEST = "oldest"
    QUALITY = "quality"


@dataclass(frozen=True)
class SearchRequest:
    """What to search for, how to filter and sort it, and which page to return.

    ``sort=None`` means relevance when there is query text and newest when there is not.
    ``date_to`` is inclusive. ``facet_search`` narrows the values listed for a facet to those
    with a word starting with the given text (for long facets such as providers).
    """

    text: str = ""
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    date_from: datetime | None = None
    date_to: datetime | None = None
    min_quality: int | None = None
    max_quality: int | None = None
    sort: Sort | None = None
    page: int = 1
    per_page: int = 10
    facets: bool = True
    facet_size: int = 10
    facet_search: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(len(self.text) <= MAX_QUERY_CHARS, "q", f"the query is longer than "
               f"{MAX_QUERY_CHARS:,} characters; shorten it")  # fmt: skip
        for name, values in self.filters.items():
            _check(name in FILTER_FACETS, name, f"unknown filter {name!r}; use one of "
                   + ", ".join(FILTER_FACETS))  # fmt: skip
            _check(len(values) <= MAX_FILTER_VALUES, name,
                   f"more than {MAX_FILTER_VALUES} values for {name}")  # fmt: skip
        for name in self.facet_search:
            _check(name in FILTER_FACETS, name, f"unknown facet {name!r}")
        _check(self.page >= 1, "page", f"page must be 1 or more, not {self.page}")
        _check(1 <= self.per_page <= MAX_PER_PAGE, "per_page",
               f"page size must be between 1 and {MAX_PER_PAGE}, not {self.per_page}")  # fmt: skip
        _check(self.page * self.per_page <= MAX_RESULT_WINDOW, "page",
               f"page {self.page:,} is beyond the first {MAX_RESULT_WINDOW:,} results; "
               "narrow the search or change the sort")  # fmt: skip
        _check(1 <= self.facet_size <= MAX_FACET_SIZE, "facet_size",
               f"facet size must be between 1 and {MAX_FACET_SIZE}")  # fmt: skip
        if self.date_from and self.date_to:
            _check(self.date_from <= self.date_to, "from",
                   "the start date is after the end date; swap them")  # fmt: skip
        if self.min_quality is not None and self.max_quality is not None:
            _check(self.min_quality <= self.max_quality, "min_quality",
                   "the minimum quality is above the maximum")  # fmt: skip

    @property
    def effective_sort(self) -> Sort:
        if self.sort is not None:
            return self.sort
        return Sort.RELEVANCE if self.text.strip() else Sort.NEWEST

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def _check(condition: bool, parameter: str, message: str) -> None:
    if not condition:
        raise QueryError(message, parameter)


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH_ONLY = re.compile(r"^\d{4}-\d{2}$")
_YEAR_ONLY = re.compile(r"^\d{4}$")


def parse_date_bound(text: str, *, end: bool, parameter: str = "date") -> datetime:
    """A UTC instant from a date or date-time; ``end=True`` makes a bare date inclusive.

    Accepts ``2022``, ``2022-06``, ``2022-06-24``, ``2022-06-24T14:08``, with ``Z`` or an
    offset (converted to UTC; no zone means UTC). For an end bound, a year, month or day means
    its last instant: ``--to 2022-06`` includes all of June.
    """
    value = text.strip()
    try:
        if _YEAR_ONLY.match(value):
            start = datetime(int(value), 1, 1, tzinfo=UTC)
            following = start.replace(year=start.year + 1)
        elif _MONTH_ONLY.match(value):
            start = datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
            following = (start + timedelta(days=32)).replace(day=1)
        elif _DATE_ONLY.match(value):
            start = datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
            following = start + timedelta(days=1)
        else:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
    except (ValueError, OverflowError):  # a year-9999 month ends past datetime.max
        raise QueryError(
            f"{text!r} is not a date; use YYYY-MM-DD (or YYYY, YYYY-MM, or an ISO 8601 time "
            "such as 2022-06-24T14:08Z)",
            parameter,
        ) from None
    return following - timedelta(microseconds=1) if end else start


def parse_int(text: str, parameter: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise QueryError(f"{parameter} must be a whole number, not {text!r}", parameter) from None


def parse_sort(text: str) -> Sort:
    try:
        return Sort(text.strip().lower())
    except ValueError:
        raise QueryError(
            f"unknown sort {text!r}; use one of " + ", ".join(sort.value for sort in Sort),
            "sort",
        ) from None
