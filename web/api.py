"""The JSON API: ``/api/search`` returns exactly ``SearchResult.to_dict()`` (the document of
``searchidx query --json``), ``/api/similar`` ``SimilarResult.to_dict()`` (``searchidx similar
--json``), ``/api/suggest`` autocomplete completions, and the OpenAPI description of them.
Errors are JSON too: ``{"error": ..., "parameter": ..., "status": ...}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from flask import Blueprint, Response, jsonify, request

from searchidx.bounds import SearchTimeout
from searchidx.errors import QueryError
from searchidx.similar import UnknownArticle
from searchidx.web import querylog
from searchidx.web.data import search_view_data, similar_view_data
from searchidx.web.params import parse_suggest_args
from searchidx.web.service import get_service

bp = Blueprint("api", __name__, url_prefix="/api")


def error_response(message: str, status: int, parameter: str | None = None) -> Response:
    response = jsonify({"error": message, "parameter": parameter, "status": status})
    response.status_code = status
    return response


@bp.errorhandler(QueryError)
def bad_request(error: QueryError) -> Response:
    return error_response(str(error), 400, error.parameter)


@bp.errorhandler(UnknownArticle)
def unknown_article(error: UnknownArticle) -> Response:
    return error_response(str(error), 404, error.parameter)


@bp.errorhandler(SearchTimeout)
def search_timeout(error: SearchTimeout) -> Response:
    response = error_response(str(error), error.status)
    response.headers.update(error.headers())  # a heavy search refused for now: Retry-After
    return response


@bp.get("/search")
def search() -> Response:
    view = search_view_data(get_service(), request.args)
    querylog.record(view.result)
    return jsonify(view.data)


@bp.get("/similar")
def similar() -> Response:
    return jsonify(similar_view_data(get_service(), request.args).to_dict())


@bp.get("/suggest")
def suggest() -> Response:
    """Completions for ``q``; ``format=opensearch`` gives the browser suggestions format
    (``[query, [completion, ...]]``, ``application/x-suggestions+json``)."""
    args = parse_suggest_args(request.args)
    suggestions = get_service().suggest(args.text, args.limit)
    if args.format == "opensearch":
        body = json.dumps([args.text, [item.text for item in suggestions]])
        return Response(body, mimetype="application/x-suggestions+json")
    return jsonify({"query": args.text, "suggestions": [item.to_dict() for item in suggestions]})


#: Beside this module; not importlib.resources, which an editable install run from another
#: folder resolves to a namespace package without the file.
OPENAPI_PATH = Path(__file__).with_name("openapi.json")


def openapi_document() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(OPENAPI_PATH.read_text("utf-8")))


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
