"""The typed search request, and the parsing of its values from text (CLI options, URLs).

Both the CLI and the web app read every value through the parsers here (the CLI's option types
call them), and the request checks every value itself, so a date, a sort name, a page number
or a filter value means the same thing, and fails with the same message, in both.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time
from enum import StrEnum

from searchidx.defaults import DEFAULT_HALF_LIFE_DAYS, MAX_HALF_LIFE_DAYS, MIN_HALF_LIFE_DAYS
from searchidx.errors import QueryError
from searchidx.facets import BY_NAME, FILTERS

#: The names of the facets a request can filter on (see :mod:`searchidx.facets`); the date
#: range (``date_from``/``date_to``) is how a request narrows by month.
FILTER_FACETS = tuple(facet.name for facet in FILTERS)

MAX_PER_PAGE = 100
#: Like Elasticsearch's result window: deeper pages need a narrower search.
MAX_RESULT_WINDOW = 10_000
MAX_QUERY_CHARS = 1_000
MAX_FILTER_VALUES = 50
#: Longest filter value (and, on the web, value of any parameter but ``q``).
MAX_VALUE_CHARS = 200
MAX_FACET_SIZE = 200


#: Query text that asks for every article: none, ``*`` or a field's ``*`` (``title:*``). It is
#: a browse, so its default order is the newest first.
_EVERY_ARTICLE = re.compile(r"\s*(?:[A-Za-z_]\w*:)?\*?\s*")


class Sort(StrEnum):
    #: Relevance blended with freshness and quality (:mod:`searchidx.ranking`).
    BEST = "best"
    #: The text score alone.
    RELEVANCE = "relevance"
    NEWEST = "newest"
    OLDEST = "oldest"
    QUALITY = "quality"


@dataclass(frozen=True)
class SearchRequest:
    """What to search for, how to filter and sort it, and which page to return.

    ``sort=None`` means best when there is query text and newest when there is not (or ``*``).
    ``half_life_days`` is the ``best`` sort's freshness half-life; ``explain`` asks for the
    parts of each hit's score. ``highlight`` marks the query's matches in each hit's title and
    excerpt (a body snippet when only the body matched), as Elasticsearch's ``highlight``
    section asks for it; without it a hit shows its title and excerpt plain, and the search
    skips that work (about half of a sorted page's) for a caller that shows no marks.
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
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS
    explain: bool = False
    highlight: bool = True

    def __post_init__(self) -> None:
        check_query_text(self.text)
        for name, values in self.filters.items():
            _check(
                name in FILTER_FACETS,
                name,
                f"unknown filter {name!r}; use one of " + ", ".join(FILTER_FACETS),
            )
            _check(
                len(values) <= MAX_FILTER_VALUES,
                name,
                f"more than {MAX_FILTER_VALUES} values for {name}",
            )
            _check_filter_values(name, values)
        for name in self.facet_search:
            _check(name in FILTER_FACETS, name, f"unknown facet {name!r}")
        _check(self.page >= 1, "page", f"page must be 1 or more, not {self.page}")
        _check(
            1 <= self.per_page <= MAX_PER_PAGE,
            "per_page",
            f"page size must be between 1 and {MAX_PER_PAGE}, not {self.per_page}",
        )
        _check(
            self.page * self.per_page <= MAX_RESULT_WINDOW,
            "page",
            f"page {self.page:,} is beyond the first {MAX_RESULT_WINDOW:,} results; "
            "narrow the search or change the sort",
        )
        _check(
            1 <= self.facet_size <= MAX_FACET_SIZE,
            "facet_size",
            f"facet size must be between 1 and {MAX_FACET_SIZE}",
        )
        check_half_life(self.half_life_days)
        if self.date_from and self.date_to:
            _check(
                self.date_from <= self.date_to,
                "from",
                "the start date is after the end date; swap them",
            )
        if self.min_quality is not None and self.max_quality is not None:
            _check(
                self.min_quality <= self.max_quality,
                "min_quality",
                "the minimum quality is above the maximum",
            )

    @property
    def effective_sort(self) -> Sort:
        if self.sort is not None:
            return self.sort
        return Sort.NEWEST if _EVERY_ARTICLE.fullmatch(self.text) else Sort.BEST

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def key(self) -> Hashable:
        """The request as one hashable value (equal requests, equal keys): for caches."""
        return tuple(
            tuple(sorted(value.items())) if isinstance(value, Mapping) else value
            for value in (getattr(self, item.name) for item in fields(self))
        )


def _check(condition: bool, parameter: str, message: str) -> None:
    if not condition:
        raise QueryError(message, parameter)


def check_query_text(text: str) -> str:
    """The query text, if it is not too long (for a search or a completion)."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query is longer than {MAX_QUERY_CHARS:,} characters; shorten it", "q"
        )
    return text


def _check_filter_values(name: str, values: Iterable[str]) -> None:
    allowed = BY_NAME[name].allowed_values
    for value in values:
        if len(value) > MAX_VALUE_CHARS:
            raise QueryError(f"a {name} value is longer than {MAX_VALUE_CHARS} characters", name)
        if allowed is not None and value not in allowed:
            raise QueryError(f"{name} must be {' or '.join(allowed)}, not {value[:40]!r}", name)


def distinct_values(given: Iterable[str]) -> tuple[str, ...]:
    """Values as a request holds them: stripped, without empty ones, each once (regardless of
    case, as filters match them), in the order given. The CLI's repeated options, the URL's
    repeated parameters and the page's links all read their values through this."""
    seen: dict[str, str] = {}
    for raw in given:
        value = raw.strip()
        if value:
            seen.setdefault(value.casefold(), value)
    return tuple(seen.values())


#: The forms a date bound may take, exactly (ASCII digits; ``T`` between date and time).
_YEAR_ONLY = re.compile(r"[0-9]{4}")
_MONTH_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}")
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?"
)


def parse_date_bound(text: str, *, end: bool, parameter: str = "date") -> datetime:
    """A UTC instant from a date or date-time; ``end=True`` makes a bare date inclusive.

    Accepts ``2022``, ``2022-06``, ``2022-06-24``, ``2022-06-24T14:08[:SS[.ffffff]]``, with
    ``Z`` or an offset (converted to UTC; no zone means UTC), and nothing else: the forms the
    web API's OpenAPI description gives. For an end bound, a year, month or day means its last
    instant: ``--to 2022-06`` includes all of June (and ``--to 9999`` all of year 9999).
    """
    value = text.strip()
    try:
        if _YEAR_ONLY.fullmatch(value):
            first, last = date(int(value), 1, 1), date(int(value), 12, 31)
        elif _MONTH_ONLY.fullmatch(value):
            year, month = int(value[:4]), int(value[5:])
            first = date(year, month, 1)
            last = first.replace(day=calendar.monthrange(year, month)[1])
        elif _DATE_ONLY.fullmatch(value):
            first = last = date.fromisoformat(value)
        elif _DATE_TIME.fullmatch(value):
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
        else:
            raise ValueError(value)
    except (ValueError, OverflowError):  # an offset can move a time past year 9999 or 1
        raise QueryError(
            f"{text!r} is not a date; use YYYY-MM-DD (or YYYY, YYYY-MM, or an ISO 8601 time "
            "such as 2022-06-24T14:08Z)",
            parameter,
        ) from None
    if end:
        return datetime.combine(last, time.max, tzinfo=UTC)
    return datetime.combine(first, time(), tzinfo=UTC)


_INTEGER = re.compile(r"-?[0-9]+")


def parse_int(text: str, parameter: str) -> int:
    """A whole number as written in a URL: ASCII digits and an optional minus sign (not
    ``+5``, ``1_000`` or other scripts' digits, which Python's ``int()`` would take)."""
    value = text.strip()
    if not _INTEGER.fullmatch(value) or len(value) > 4000:  # int() refuses beyond 4,300 digits
        raise QueryError(f"{parameter} must be a whole number, not {text[:40]!r}", parameter)
    return int(value)


def parse_sort(text: str) -> Sort:
    try:
        return Sort(text.strip())
    except ValueError:
        raise QueryError(
            f"unknown sort {text!r}; use one of " + ", ".join(sort.value for sort in Sort),
            "sort",
        ) from None


_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?|\.[0-9]+")


def parse_half_life(text: str, parameter: str = "half_life") -> float:
    """A half-life in days as written in a URL or option: ASCII digits with an optional
    decimal point (``30``, ``7.5``), from a quarter of an hour to a century."""
    value = text.strip()
    if not _DECIMAL.fullmatch(value):
        raise QueryError(
            f"{parameter} must be a number of days such as 30 or 7.5, not {text[:40]!r}",
            parameter,
        )
    return check_half_life(float(value), parameter)


def check_half_life(days: float, parameter: str = "half_life") -> float:
    low, high = MIN_HALF_LIFE_DAYS, MAX_HALF_LIFE_DAYS
    _check(
        low <= days <= high,
        parameter,
        f"{parameter} must be between {low:g} and {high:,.0f} days, not {days:g}",
    )
    return days


def parse_flag(text: str, parameter: str) -> bool:
    """``true`` or ``false`` (as the API's booleans are spelled)."""
    value = text.strip()
    if value not in ("true", "false"):
        raise QueryError(f"{parameter} must be true or false, not {text[:40]!r}", parameter)
    return value == "true"
