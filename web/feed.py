"""``/feed.atom``: the newest articles matching a search, so a reader can subscribe to a topic
or a query. Takes the page's parameters; sort, page and page size are the feed's own (newest
first, the newest :data:`FEED_SIZE`), so a page URL with ``sort=quality&page=3`` still works.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import Blueprint, Response, request, url_for
from werkzeug.datastructures import MultiDict

from searchidx.bounds import SearchTimeout
from searchidx.errors import QueryError
from searchidx.facets import FILTERS
from searchidx.request import Sort
from searchidx.result import Hit
from searchidx.web import xmldocs
from searchidx.web.data import search_view_data
from searchidx.web.formatting import link_url
from searchidx.web.links import MATCH_PARAMS, Links
from searchidx.web.service import get_service

bp = Blueprint("feed", __name__)

FEED_SIZE = 50
#: Entry ids are UUIDs named by the article's path in this namespace: the same article has the
#: same id whatever host or port serves the feed, so a reader never sees it twice.
ENTRY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://pypi.org/project/searchidx/#article")


@bp.get("/feed.atom")
def atom() -> Response:
    args = MultiDict([(k, v) for k, v in request.args.items(multi=True) if k in MATCH_PARAMS])
    args["sort"] = Sort.NEWEST.value
    view = search_view_data(get_service(), args, per_page=FEED_SIZE, facets=False)
    links = Links(args, base=url_for("pages.search", _external=True))
    self_url = links.url(only=MATCH_PARAMS, base=url_for("feed.atom", _external=True))
    hits = view.result.hits
    body = xmldocs.atom_feed(
        feed_id=self_url,
        title=f"searchidx: {describe(links)}",
        subtitle=f"The newest {FEED_SIZE} articles matching {describe(links)}",
        self_url=self_url,
        page_url=links.url(changes={"sort": Sort.NEWEST.value}),
        updated=hits[0].article.published_at if hits else datetime.now(UTC),
        entries=[_entry(hit) for hit in hits],
    )
    return Response(body, mimetype="application/atom+xml")


@bp.errorhandler(QueryError)
def bad_request(error: QueryError) -> tuple[Response, int]:
    """A feed reader shows little; plain text at least says what to fix."""
    return Response(f"Bad request: {error}\n", mimetype="text/plain"), 400


@bp.errorhandler(SearchTimeout)
def search_timeout(error: SearchTimeout) -> tuple[Response, int, dict[str, str]]:
    stopped = Response(f"Search stopped: {error}\n", mimetype="text/plain")
    return stopped, error.status, error.headers()


def describe(links: Links) -> str:
    """The search in words: ``“facial recognition”, Topic: AI, from 2022``."""
    parts = [f"“{value}”" for value in links.values("q")]
    for facet in FILTERS:
        values = [facet.value_label(value) for value in links.values(facet.name)]
        if values:
            parts.append(f"{facet.label}: {' or '.join(values)}")
    for name, label in (("from", "from"), ("to", "until")):
        parts += [f"{label} {value}" for value in links.values(name)]
    for name, label in (("min_quality", "quality ≥"), ("max_quality", "quality ≤")):
        parts += [f"{label} {value}" for value in links.values(name)]
    return ", ".join(parts) or "all articles"


def entry_id(path: str) -> str:
    return f"urn:uuid:{uuid.uuid5(ENTRY_NAMESPACE, path)}"


def _entry(hit: Hit) -> xmldocs.FeedEntry:
    article = hit.article
    return xmldocs.FeedEntry(
        id=entry_id(article.path),
        title=article.title,
        url=link_url(article.url),
        published=article.published_at,
        author=article.provider.name or article.provider.domain,
        # A plain str: ElementTree escapes with str.replace, which Markup overrides (escaping its
        # arguments, so ``&`` would go out as it is).
        summary_html=str(hit.excerpt_html),
        categories=article.topics,
    )
