"""Errors as pages a reader can act on (and as JSON under ``/api/``), never a traceback.

``IndexMissingError`` is a 503 saying how to build the index; the page starts working, without
a restart, as soon as one exists. An OpenSearch cluster that cannot be reached or refuses the
search is a 503 too (logged, with the cause), and so is a damaged index (saying to rebuild it).
Anything unexpected is logged and answered with a short 500.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable
from whoosh.reading import CorruptIndexError

from searchidx.cluster import ClusterError
from searchidx.errors import IndexMissingError, damaged_index_message
from searchidx.web.api import error_response
from searchidx.web.service import get_service


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def index_missing(error: IndexMissingError) -> Response | tuple[str, int]:
    location = get_service().store.location
    if _wants_json():
        return error_response(f"{error}", 503)
    return render_template("no_index.html", location=location, message=str(error)), 503


def http_error(error: HTTPException) -> Response | tuple[str, int]:
    status = error.code or 500
    if _wants_json():
        return error_response(error.description or error.name, status)
    return render_template("error.html", status=status, title=error.name, error=error), status


def server_error(error: InternalServerError) -> Response | tuple[str, int]:
    return http_error(error)


def cluster_unavailable(error: ClusterError) -> Response | tuple[str, int]:
    logging.getLogger(__name__).warning("search failed: %s", error)
    return http_error(ServiceUnavailable(description=str(error)))


def index_damaged(error: CorruptIndexError) -> Response | tuple[str, int]:
    """A damaged index (a disk error, a file changed by hand): a 503 saying to rebuild it, as
    ``searchidx query`` says, not a 500; logged with the cause."""
    message = damaged_index_message(error) or str(error)
    logging.getLogger(__name__).error("search failed: %s", message)
    if _wants_json():
        return error_response(message, 503)
    location = get_service().store.location
    return render_template("damaged_index.html", location=location, message=message), 503


def init_app(app: Flask) -> None:
    app.register_error_handler(IndexMissingError, index_missing)
    app.register_error_handler(ClusterError, cluster_unavailable)
    app.register_error_handler(CorruptIndexError, index_damaged)
    app.register_error_handler(InternalServerError, server_error)
    app.register_error_handler(HTTPException, http_error)
