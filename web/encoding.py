"""The app's JSON responses, encoded by orjson.

An API answer is about 22 KB (ten hits with their highlights, the facets): the standard
library's encoder took about 210 us of CPU for one, a fifth of what the web layer costs a
request around the search; orjson takes about 40. The document is the same JSON: keys in
``to_dict()``'s order, compact, one newline at the end; only characters beyond ASCII are
written as UTF-8 instead of ``\\u`` escapes (the response says ``application/json``, UTF-8),
and a float that is not a number as ``null`` (valid JSON) instead of ``NaN``. What orjson
cannot write (an integer beyond 64 bits, echoed from a query string) goes through Flask's.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider
from werkzeug.sansio.response import Response as AnyResponse

#: Dates as Flask writes them (HTTP dates), through its own fallback; keys as given.
_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATETIME


class FastJSONProvider(DefaultJSONProvider):
    """Flask's provider, but ``jsonify`` encodes with orjson (outside debug mode, where
    Flask indents); ``json.dumps`` and ``loads`` are Flask's own."""

    sort_keys = False  # keep to_dict()'s order

    def response(self, *args: Any, **kwargs: Any) -> AnyResponse:
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)
        try:
            body = orjson.dumps(self._prepare_response_obj(args, kwargs), self.default, _OPTIONS)
        except TypeError:  # what orjson cannot write, an integer beyond 64 bits (as typed)
            return super().response(*args, **kwargs)
        response_class = cast("type[Response]", self._app.response_class)  # a Flask app's
        return response_class(body, mimetype=self.mimetype)
