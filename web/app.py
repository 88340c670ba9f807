"""The app factory: one Flask app over one long-lived :class:`SearchService`.

``create_app(IndexStore("index"))`` is all a WSGI server needs (``searchidx serve`` runs it
under waitress). The app holds no state of its own beyond the service, which refreshes itself
when another process syncs or rebuilds the index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask

from searchidx.defaults import DEFAULT_SEARCH_TIMEOUT
from searchidx.querylog import QueryLog
from searchidx.service import SearchService
from searchidx.store import IndexStore
from searchidx.web import api, errors, feed, formatting, querylog, security, service, views
from searchidx.web.encoding import FastJSONProvider

if TYPE_CHECKING:
    from searchidx.engine import Service


def create_app(
    store: IndexStore | None = None,
    *,
    search_service: Service | None = None,
    config: Mapping[str, Any] | None = None,
    query_log: QueryLog | None = None,
) -> Flask:
    """The web app for the index at ``store`` (default: ``./index`` or ``$SEARCHIDX_INDEX``),
    its searches stopped after :data:`~searchidx.defaults.DEFAULT_SEARCH_TIMEOUT` seconds; with
    ``query_log``, the page and the API record each search there."""
    app = Flask(__name__)
    app.json = FastJSONProvider(app)
    app.config.update(config or {})
    search_service = search_service or SearchService(
        store or IndexStore(), search_timeout=DEFAULT_SEARCH_TIMEOUT
    )
    service.init_app(app, search_service)
    querylog.init_app(app, query_log)
    for blueprint in (views.bp, api.bp, feed.bp):
        app.register_blueprint(blueprint)
    formatting.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    return app
