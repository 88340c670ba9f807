"""The JSON API: ``/api/search`` returns exactly ``SearchResult.to_dict()`` (the document of
``searchidx query --json``), ``/api/suggest`` autocomplete completions, and the OpenAPI
description of both. Errors are JSON too: ``{"error": ..., "parameter": ..., "status": ...}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from flask import Blueprint, Response, jsonify, request

from searchidx.bounds import SearchTimeout
from searchidx.errors import QueryError
from searchidx.request import MAX_QUERY_CHARS, parse_int
from web import querylog
from web.data import search_view_data
from web.params import single
from web.service import get_service

bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_SUGGESTIONS = 8
MAX_SUGGESTIONS = 20
SUGGEST_FORMATS = ("json", "opensearch")


def error_response(message: str, status: int, parameter: str | None = None) -> Response:
    response = jsonify({"error": message, "parameter": parameter, "status": status})
    response.status_code = status
    return response


@bp.errorhandler(QueryError)
def bad_request(error: QueryError) -> Response:
    return error_response(str(error), 400, error.parameter)


@bp.errorhandler(SearchTimeout)
def search_timeout(error: SearchTimeout) -> Response:
    return error_response(str(error), 503)


@bp.get("/search")
def search() -> Response:
    view = search_view_data(get_service(), request.args)
    querylog.record(view.result)
    return jsonify(view.data)


@bp.get("/suggest")
def suggest() -> Response:
    """Completions for ``q``; ``format=opensearch`` gives the browser suggestions format
    (``[query, [completion, ...]]``, ``application/x-suggestions+json``)."""
    text = single(request.args, "q") or ""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is longer than {MAX_QUERY_CHARS:,} characters", "q")
    limit_text = single(request.args, "limit")
    limit = DEFAULT_SUGGESTIONS if limit_text is None else parse_int(limit_text, "limit")
    if not 1 <= limit <= MAX_SUGGESTIONS:
        raise QueryError(f"limit must be between 1 and {MAX_SUGGESTIONS}, not {limit}", "limit")
    form = single(request.args, "format") or "json"
    if form not in SUGGEST_FORMATS:
        raise QueryError(f"unknown format {form[:40]!r}; use json or opensearch", "format")
    suggestions = get_service().suggest(text, limit)
    if form == "opensearch":
        body = json.dumps([text, [item.text for item in suggestions]])
        return Response(body, mimetype="application/x-suggestions+json")
    return jsonify({"query": text, "suggestions": [item.to_dict() for item in suggestions]})


#: Beside this module; not importlib.resources, which an editable install run from another
#: folder resolves to a namespace package without the file.
OPENAPI_PATH = Path(__file__).with_name("openapi.json")


def openapi_document() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(OPENAPI_PATH.read_text("utf-8")))


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
