"""The search page and its OpenSearch description: parse, search, render; nothing else.

A query that does not parse is not an error page: it is the search page again, with the words
as typed, the filters kept, and a message next to the field at fault (HTTP 400); so is a search
stopped at its time budget (HTTP 503).
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from searchidx.bounds import SearchTimeout
from searchidx.errors import QueryError
from searchidx.request import MAX_QUERY_CHARS, Sort
from searchidx.similar import UnknownArticle
from searchidx.web import querylog, xmldocs
from searchidx.web.data import (
    SORT_LABELS,
    filter_chips,
    page_extras,
    search_view_data,
    similar_view_data,
)
from searchidx.web.links import MATCH_PARAMS, Links
from searchidx.web.params import FACET_SEARCH_PARAMS
from searchidx.web.service import get_service

bp = Blueprint("pages", __name__)

PER_PAGE_CHOICES = (10, 25, 50, 100)


@bp.get("/")
def search() -> tuple[str, int, dict[str, str]] | str:
    links = Links(request.args, base=url_for("pages.search"))
    form = _form_values(links)
    context = {
        "links": links,
        "form": form,
        "sort_labels": SORT_LABELS,
        "per_page_choices": PER_PAGE_CHOICES,
        "max_query_chars": MAX_QUERY_CHARS,
        "feed_url": links.url(only=MATCH_PARAMS, base=url_for("feed.atom")),
    }
    try:
        view = search_view_data(get_service(), request.args)
    except (QueryError, SearchTimeout) as error:
        page = render_template("search.html", error=error, chips=filter_chips(links), **context)
        if isinstance(error, SearchTimeout):  # a heavy search refused for now: 429, Retry-After
            return page, error.status, error.headers()
        return page, 400, {}
    querylog.record(view.result)
    form["sort"] = view.request.sort.value if view.request.sort else ""
    return render_template("search.html", data=view.data, **page_extras(view, links), **context)


@bp.get("/similar")
def similar() -> tuple[str, int] | str:
    """The articles similar to ``path``: a page of its own, every hit as on the results page
    (its topics link to a search for them); a bad or unknown path is this page with the
    message (400, 404)."""
    context = {
        "links": Links(MultiDict(), base=url_for("pages.search")),
        "form": {"q": ""},
        "max_query_chars": MAX_QUERY_CHARS,
        "similar_page": True,
    }
    try:
        result = similar_view_data(get_service(), request.args)
    except (QueryError, SearchTimeout) as error:
        status = 503 if isinstance(error, SearchTimeout) else 400
        status = 404 if isinstance(error, UnknownArticle) else status
        return render_template("similar.html", error=error, **context), status
    return render_template("similar.html", data=result.to_dict(), **context)


def _form_values(links: Links) -> dict[str, str]:
    """The text fields as the user typed them, to fill the form again."""
    names = ("q", "from", "to", "min_quality", "max_quality", "sort", "per_page", "facet_size")
    values = {name: (links.values(name) or [""])[0] for name in (*names, *FACET_SEARCH_PARAMS)}
    if values["sort"] not in {sort.value for sort in Sort}:
        values["sort"] = ""
    return values


@bp.get("/opensearch.xml")
def opensearch() -> Response:
    """Lets a browser add the page as a search engine, with suggestions as the user types."""
    root = url_for("pages.search", _external=True)
    return Response(
        xmldocs.opensearch_description(
            search=f"{root}?q={{searchTerms}}",
            suggest=f"{url_for('api.suggest', _external=True)}?format=opensearch&q={{searchTerms}}",
            feed=f"{url_for('feed.atom', _external=True)}?q={{searchTerms}}",
            self_url=url_for("pages.opensearch", _external=True),
            icon=url_for("static", filename="favicon.png", _external=True),
        ),
        mimetype="application/opensearchdescription+xml",
    )
