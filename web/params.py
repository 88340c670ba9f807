"""Query-string arguments to a :class:`SearchRequest`: every value checked, every mistake a
:class:`QueryError` naming its parameter.

The page, the API and the feed all read their arguments here (the search's and the
completions'), so ``?page=0`` fails the same way, with the same message, everywhere (and the
same way as the CLI, through the parsers and checks of :mod:`searchidx.request`). Decisions on
ambiguous input:

- unknown parameters are ignored: shared links carry ``utm_source`` and the like;
- empty values count as absent: a GET form sends every field, filled or not;
- a single-valued parameter given twice with different values is a 400 (which one did the
  user mean?); the same value twice is harmless and accepted;
- values out of range (``page=0``, ``per_page=1000000``, a page beyond the first 10,000
  results) are a 400 with the request's own message, not a silent clamp: a clamp would show a
  page that is not the one the link asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from werkzeug.datastructures import MultiDict

from searchidx.defaults import DEFAULT_HALF_LIFE_DAYS, DEFAULT_SIMILAR
from searchidx.errors import QueryError
from searchidx.request import (
    FILTER_FACETS,
    MAX_FILTER_VALUES,
    MAX_VALUE_CHARS,
    SearchRequest,
    check_query_text,
    distinct_values,
    parse_date_bound,
    parse_flag,
    parse_half_life,
    parse_int,
    parse_sort,
)
from searchidx.similar import SimilarRequest

#: ``provider_q=ex`` lists only the providers with a word starting with "ex".
FACET_SEARCH_PARAMS = {f"{name}_q": name for name in FILTER_FACETS}
#: Whether to count the facets and mark the query's words in the hits (both by default): as
#: Elasticsearch counts aggregations and highlights only when asked, a client that shows
#: neither (an API client listing hits) asks for neither, and its search skips that work.
FLAG_PARAMS = ("facets", "highlight")
#: Every parameter the page understands, in the order links spell them.
KNOWN_PARAMS = (
    "q",
    *FILTER_FACETS,
    "from",
    "to",
    "min_quality",
    "max_quality",
    "sort",
    "half_life",
    "per_page",
    "facet_size",
    *FACET_SEARCH_PARAMS,
    "explain",
    *FLAG_PARAMS,
    "page",
)
DEFAULT_PER_PAGE = 10
DEFAULT_FACET_SIZE = 10

Args = MultiDict[str, str]


def single(args: Args, name: str) -> str | None:
    """The one non-empty value of ``name`` (stripped), or None."""
    values = list(dict.fromkeys(value.strip() for value in args.getlist(name) if value.strip()))
    if len(values) > 1:
        shown = ", ".join(repr(value[:40]) for value in values[:3])
        raise QueryError(
            f"{name} was given {len(values)} different values ({shown}); give it once", name
        )
    if not values:
        return None
    if name != "q" and len(values[0]) > MAX_VALUE_CHARS:
        raise QueryError(f"{name} is longer than {MAX_VALUE_CHARS} characters", name)
    return values[0]


def multi(args: Args, name: str) -> tuple[str, ...]:
    """The distinct non-empty values of a repeatable parameter, in order (case-insensitive;
    the request checks each).

    At most :data:`MAX_FILTER_VALUES` may be given, repeats included (the OpenAPI ``maxItems``):
    the limit bounds the work a URL can ask for, so it counts what was sent.
    """
    given = args.getlist(name)
    if len(given) > MAX_FILTER_VALUES:
        raise QueryError(f"more than {MAX_FILTER_VALUES} values for {name}", name)
    return distinct_values(given)


def _int(args: Args, name: str, default: int | None) -> int | None:
    value = single(args, name)
    return default if value is None else parse_int(value, name)


def flag(args: Args, name: str, default: bool) -> bool:
    """``true`` or ``false`` (see :func:`parse_flag`), ``default`` when not given."""
    value = single(args, name)
    return default if value is None else parse_flag(value, name)


def _date(args: Args, name: str, *, end: bool) -> datetime | None:
    value = single(args, name)
    return None if value is None else parse_date_bound(value, end=end, parameter=name)


def parse_search_args(
    args: Args, *, per_page: int = DEFAULT_PER_PAGE, facets: bool = True
) -> SearchRequest:
    """The request the arguments describe; raises :class:`QueryError` for any bad value.
    ``facets=False``: none counted, whatever the arguments say (the feed shows none)."""
    filters = {name: values for name in FILTER_FACETS if (values := multi(args, name))}
    facet_search = {
        facet: value
        for param, facet in FACET_SEARCH_PARAMS.items()
        if (value := single(args, param)) is not None
    }
    sort_name = single(args, "sort")
    half_life = single(args, "half_life")
    return SearchRequest(
        text=single(args, "q") or "",
        filters=filters,
        date_from=_date(args, "from", end=False),
        date_to=_date(args, "to", end=True),
        min_quality=_int(args, "min_quality", None),
        max_quality=_int(args, "max_quality", None),
        sort=None if sort_name is None else parse_sort(sort_name),
        half_life_days=DEFAULT_HALF_LIFE_DAYS if half_life is None else parse_half_life(half_life),
        explain=flag(args, "explain", False),
        page=_int(args, "page", 1) or 0,
        per_page=_int(args, "per_page", per_page) or 0,
        facets=flag(args, "facets", True) and facets,
        facet_size=_int(args, "facet_size", DEFAULT_FACET_SIZE) or 0,
        facet_search=facet_search,
        highlight=flag(args, "highlight", True),
    )


DEFAULT_SUGGESTIONS = 8
MAX_SUGGESTIONS = 20
SUGGEST_FORMATS = ("json", "opensearch")


@dataclass(frozen=True)
class SuggestArgs:
    """What ``/api/suggest`` was asked: completions of ``text``, how many, in which format."""

    text: str
    limit: int
    format: str


def parse_suggest_args(args: Args) -> SuggestArgs:
    """The completion request the arguments describe; raises :class:`QueryError`."""
    text = check_query_text(single(args, "q") or "")
    limit = _int(args, "limit", DEFAULT_SUGGESTIONS) or 0
    if not 1 <= limit <= MAX_SUGGESTIONS:
        raise QueryError(f"limit must be between 1 and {MAX_SUGGESTIONS}, not {limit}", "limit")
    form = single(args, "format") or SUGGEST_FORMATS[0]
    if form not in SUGGEST_FORMATS:
        raise QueryError(f"unknown format {form[:40]!r}; use json or opensearch", "format")
    return SuggestArgs(text, limit, form)


def parse_similar_args(args: Args) -> SimilarRequest:
    """The similar-articles request of ``path`` and ``limit``; raises :class:`QueryError`.

    ``path`` is taken exactly as given, spaces included (a file name may start or end with
    one), and may be as long as a path can be: it names a file, it is not typed text."""
    given = list(dict.fromkeys(value for value in args.getlist("path") if value.strip()))
    if len(given) > 1:
        raise QueryError(f"path was given {len(given)} different values; give it once", "path")
    return SimilarRequest(
        path=given[0] if given else "",
        limit=_int(args, "limit", DEFAULT_SIMILAR) or 0,
    )
