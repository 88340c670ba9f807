"""The one data function behind the page, the API and the feed (as Datasette's
``table_view_data``): parse the arguments, run the search, and keep ``SearchResult.to_dict()``
as *the* data. The API returns that dict as it is; the page renders the same dict, plus extras
that only a page needs (links, pagination, the histogram), computed from the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from searchidx.facets import FILTERS, MONTH
from searchidx.marks import to_html
from searchidx.request import MAX_RESULT_WINDOW, SearchRequest, Sort
from searchidx.result import SearchResult
from searchidx.similar import SimilarResult
from searchidx.web.facets import facet_view, month_histogram
from searchidx.web.links import Links
from searchidx.web.params import DEFAULT_PER_PAGE, Args, parse_search_args, parse_similar_args

if TYPE_CHECKING:
    from searchidx.engine import Service

SORT_LABELS = {
    Sort.BEST: "Best match",
    Sort.RELEVANCE: "Text relevance",
    Sort.NEWEST: "Newest first",
    Sort.OLDEST: "Oldest first",
    Sort.QUALITY: "Highest quality",
}


@dataclass(frozen=True)
class SearchView:
    """A search as the web shows it: the request, the result, and the result's JSON form."""

    request: SearchRequest
    result: SearchResult
    data: dict[str, Any]


def search_view_data(
    service: Service,
    args: Args,
    *,
    per_page: int = DEFAULT_PER_PAGE,
    facets: bool = True,
) -> SearchView:
    """Parse ``args`` and search; raises QueryError (400) or IndexMissingError (503)."""
    request = parse_search_args(args, per_page=per_page, facets=facets)
    result = service.search(request)
    return SearchView(request, result, result.to_dict())


def similar_view_data(service: Service, args: Args) -> SimilarResult:
    """Parse ``args`` and find the similar articles; raises QueryError (400), UnknownArticle
    (404) or IndexMissingError (503)."""
    return service.similar(parse_similar_args(args))


def page_extras(view: SearchView, links: Links) -> dict[str, Any]:
    """What the HTML page shows beyond the JSON: links for every control, from the same result."""
    result, request = view.result, view.request
    facet_search = request.facet_search
    return {
        "facets": [
            facet_view(facet, links, facet_search.get(facet.name, ""))
            for spec in FILTERS
            if (facet := result.facet(spec.name)) is not None
        ],
        "histogram": month_histogram(result.facet(MONTH.name), links),
        "pagination": pagination(result, links),
        "chips": filter_chips(links),
        "first": request.offset + 1 if result.hits else 0,
        "last": request.offset + len(result.hits),
        "did_you_mean": None
        if result.did_you_mean is None or result.retry is not None
        else {
            "html": to_html(result.did_you_mean.marked, quote=True),
            "url": links.url(changes={"q": result.did_you_mean.text}),
        },
    }


def pagination(result: SearchResult, links: Links) -> dict[str, Any] | None:
    """Previous/next and a window of page numbers around the current one (``None`` is a gap);
    pages past the deepest one a request may ask for are not offered."""
    request = result.request
    last = min(result.pages, max(1, MAX_RESULT_WINDOW // request.per_page))
    current = request.page
    if last <= 1 and current == 1:
        return None
    shown = sorted({1, last, *range(max(1, current - 2), min(last, current + 2) + 1)})
    numbers: list[dict[str, Any] | None] = []
    for number in shown:
        if numbers and numbers[-1] is not None and number - numbers[-1]["number"] > 1:
            numbers.append(None)
        numbers.append({"number": number, "url": links.page(number), "current": number == current})
    return {
        "current": current,
        "last": last,
        "pages": result.pages,
        "numbers": numbers,
        "previous": links.page(current - 1) if current > 1 else None,
        "next": links.page(current + 1) if current < last else None,
        "beyond": current > last,
        "last_url": links.page(last),
    }


def filter_chips(links: Links) -> list[dict[str, str]]:
    """Every active filter as a label and the link that removes it."""
    chips = []
    for facet in FILTERS:
        for value in links.values(facet.name):
            chips.append(
                {
                    "label": f"{facet.label}: {facet.value_label(value)}",
                    "url": links.toggle(facet.name, value),
                }
            )
    ranges = {
        "from": "From {}",
        "to": "Until {}",
        "min_quality": "Quality ≥ {}",
        "max_quality": "Quality ≤ {}",
    }
    for name, label in ranges.items():
        for value in links.values(name):
            chips.append({"label": label.format(value), "url": links.url(changes={name: None})})
    return chips
