"""The app's query log, if the server was started with one (``serve --query-log FILE``).

Only the page and the API record searches: a feed reader polling the same feed is not a reader
searching.
"""

from __future__ import annotations

from flask import Flask, current_app

from searchidx.querylog import LoggedSearch, QueryLog
from searchidx.result import SearchResult

EXTENSION = "searchidx.query_log"


def init_app(app: Flask, log: QueryLog | None) -> None:
    app.extensions[EXTENSION] = log


def record(result: SearchResult) -> None:
    """Append the search to the log, if there is one; a full disk costs the log, not the page."""
    log: QueryLog | None = current_app.extensions.get(EXTENSION)
    if log is None:
        return
    try:
        log.append(LoggedSearch.of(result))
    except OSError as error:
        current_app.logger.warning("could not append to the query log %s: %s", log.path, error)
