"""Schema-driven fuzzing of the web app: ``web/openapi.json``, as the app serves it, drives
schemathesis against the real Flask app (in-process, over the session's real sample index).

Every generated request, schema-valid ("positive") and schema-breaking ("negative"), must get a
documented answer, never a 5xx:

- schemathesis's checks: no server error; the status code, content type and body are what the
  description declares for it (the body validated against its response schema);
- the contract check here: the app accepts a query exactly when the description does. A
  request whose values, as they went over the wire, fit the parameter schemas (after the
  documented normalisation: empty values are absent, spaces around a value are ignored, the
  same value twice is one value) is a 200 unless it breaks one of the documented rules a schema
  cannot state (page * per_page above 10,000, ``from`` after ``to``, ...); anything else is a
  400 whose ``parameter`` names a value at fault. The contract is judged on the wire because a
  scalar sent for an exploded array parameter is a valid one-element array there, whatever the
  generator meant.

The same query strings then go to the HTML page and the Atom feed (no 5xx, and the same verdict
as the API). The default run sends a few hundred requests; the ``slow`` variant over 10,000 to
the API alone.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from searchidx import querylang
from searchidx.errors import QueryError
from searchidx.request import MAX_RESULT_WINDOW, MAX_VALUE_CHARS, parse_date_bound
from searchidx.web.links import MATCH_PARAMS

OPENAPI_FILE = Path(__file__).resolve().parents[1] / "web" / "openapi.json"
SCHEMA_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
#: Generated cases per operation and mode: 2 operations, 2 modes, this many API requests.
DEFAULT_EXAMPLES = 50
SLOW_EXAMPLES = 2_600
ATOM = "{http://www.w3.org/2005/Atom}"


class QueryRecorder:
    """WSGI middleware that keeps the last query string the app received: the contract is
    judged on what went over the wire (schemathesis's own report of the request serialises
    some generated values differently from what its WSGI transport sends)."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app
        self.last = ""

    def __call__(self, environ, start_response):
        self.last = environ.get("QUERY_STRING", "")
        return self.wsgi_app(environ, start_response)


@pytest.fixture(scope="module")
def app(app: Flask) -> Flask:
    """The shared app (conftest's, over the sample), its requests recorded."""
    app.wsgi_app = QueryRecorder(app.wsgi_app)  # type: ignore[method-assign]
    return app


@pytest.fixture(scope="module")
def api_schema(app: Flask) -> schemathesis.schemas.BaseSchema:
    """The description as the app serves it at /api/openapi.json; the WSGI app is the target."""
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


# The contract on the wire --------------------------------------------------------------------


def read_query(query_string: str) -> dict[str, list[str]]:
    """The query string as the app reads it (blank values kept)."""
    return parse_qs(query_string, keep_blank_values=True)


def fits(value: str, schema: dict[str, Any]) -> bool:
    """Whether one (normalised) wire value fits a parameter's schema: the keywords the
    description uses for parameters (type, enum, pattern, length and number bounds)."""
    number = {"integer": r"-?[0-9]+", "number": r"[0-9]+(\.[0-9]+)?|\.[0-9]+"}
    if schema.get("type") in number:  # a number in ASCII digits, without exponent
        if not re.fullmatch(number[schema["type"]], value):
            return False
        low, high = schema.get("minimum"), schema.get("maximum")
        return (low is None or float(value) >= low) and (high is None or float(value) <= high)
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return False
    return len(value) <= schema.get("maxLength", len(value))


def wire_problems(query: dict[str, list[str]], parameters: list[dict[str, Any]]) -> set[str]:
    """The declared parameters whose values, as sent, do not fit the description."""
    problems = set()
    for parameter in parameters:
        name, schema = parameter["name"], parameter["schema"]
        texts = query.get(name)
        if texts is None:
            continue
        values = [text.strip() for text in texts]
        if name != "q" and any(len(value) > MAX_VALUE_CHARS for value in values):
            problems.add(name)  # documented: values other than q are at most 200 characters
        elif schema["type"] == "array":
            too_many = len(texts) > schema.get("maxItems", len(texts))
            if too_many or not all(fits(value, schema["items"]) for value in values if value):
                problems.add(name)
        else:
            given = set(filter(None, values))  # empty is absent; the same value twice is one
            if len(given) > 1 or (given and not fits(given.pop(), schema)):
                problems.add(name)
    return problems


def one(query: dict[str, list[str]], name: str) -> str | None:
    values = [value.strip() for value in query.get(name, []) if value.strip()]
    return values[0] if values else None


def in_calendar(text: str) -> bool:
    """Whether a date that fits the pattern exists (no 2022-02-30, nothing past year 9999 in
    UTC): an independent reading with the standard library."""
    try:
        if len(text) <= 7:
            date(int(text[:4]), int(text[5:7] or 1), 1)
        elif len(text) == 10:
            date.fromisoformat(text)
        else:
            moment = datetime.fromisoformat(text)
            (moment if moment.tzinfo is None else moment.astimezone(UTC)).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return False
    return True


def rule_problems(query: dict[str, list[str]], problems: set[str]) -> set[str]:
    """The parameters that break a documented rule no schema states (only judged where the
    values involved fit their schemas)."""
    broken = set()
    numbers = {
        name: int(value)
        for name in ("page", "per_page", "min_quality", "max_quality")
        if name not in problems and (value := one(query, name)) is not None
    }
    if "per_page" not in problems and numbers.get("page", 1) * numbers.get("per_page", 10) > (
        MAX_RESULT_WINDOW
    ):
        broken.add("page")
    if numbers.get("min_quality", -(10**400)) > numbers.get("max_quality", 10**400):
        broken.add("min_quality")
    bounds = {}
    for name in ("from", "to"):
        value = one(query, name)
        if value is None or name in problems:
            continue
        if not in_calendar(value):
            broken.add(name)
        else:
            bounds[name] = parse_date_bound(value, end=name == "to")
    if len(bounds) == 2 and bounds["from"] > bounds["to"]:
        broken.add("from")
    text = one(query, "q")
    if text is not None and "q" not in problems:
        try:
            querylang.parse_query(text)
        except QueryError:
            broken.add("q")
    return broken


def expected_faults(operation: dict[str, Any], query: dict[str, list[str]]) -> set[str]:
    """The parameters a 400 may name for this query; empty when it must be a 200."""
    problems = wire_problems(query, operation["parameters"])
    if operation["operationId"] == "search":
        problems |= rule_problems(query, problems)
    return problems


# Driving it -----------------------------------------------------------------------------------


def check_case(app: Flask, api_schema, case, sent: Counter, replay_search: bool = True) -> None:
    """Send one generated case to the API (and a search to the page and the feed too, unless
    told not to), and judge the answers: schemathesis's checks, then the contract on the wire."""
    path = case.operation.path
    response = case.call()
    sent[path, response.status_code] += 1
    case.validate_response(response, checks=SCHEMA_CHECKS)
    query_string = cast(QueryRecorder, app.wsgi_app).last
    query = read_query(query_string)
    faults = expected_faults(api_schema.raw_schema["paths"][path]["get"], query)
    if faults:
        assert response.status_code == 400, (query, faults, response.text[:300])
        assert response.json()["parameter"] in faults, (query, faults, response.json())
    else:
        assert response.status_code == 200, (query, response.text[:300])
    if path == "/api/search" and replay_search:
        replay(app.test_client(), query_string, response.status_code, sent)


def fuzz(app: Flask, api_schema, path: str, mode: GenerationMode, examples: int) -> Counter:
    """Run ``examples`` generated cases against ``path``; the requests sent, by path and
    status."""
    sent: Counter = Counter()

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=api_schema[path]["GET"].as_strategy(generation_mode=mode))
    def run(case) -> None:
        check_case(app, api_schema, case, sent)

    run()
    return sent


def replay(client, query_string: str, api_status: int, sent: Counter) -> None:
    """The API's query on the page and the feed: the page answers as the API did; the feed
    (its own sort and size) is a 200 whenever the API's was."""
    page = client.get("/?" + query_string)
    sent["/", page.status_code] += 1
    assert page.status_code == api_status, (query_string, page.status_code)
    assert page.mimetype == "text/html"
    feed = client.get("/feed.atom?" + query_string)
    sent["/feed.atom", feed.status_code] += 1
    assert feed.status_code in (200, 400), (query_string, feed.status_code)
    if api_status == 200:
        assert feed.status_code == 200, (query_string, feed.get_data(as_text=True)[:300])
        assert ET.fromstring(feed.data).tag == f"{ATOM}feed"


def check_run(sent: Counter, examples: int, path: str) -> None:
    """Every answer was a 200 or a 400, and the run sent what it was asked to."""
    assert {status for _, status in sent} <= {200, 400}, sent
    assert sum(n for (where, _), n in sent.items() if where == path) >= examples, sent


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.value)
@pytest.mark.parametrize("path", ["/api/search", "/api/suggest"])
def test_fuzz_api_answers_every_generated_request_as_described(app, api_schema, path, mode):
    sent = fuzz(app, api_schema, path, mode, DEFAULT_EXAMPLES)
    check_run(sent, DEFAULT_EXAMPLES, path)


def boundaries(app: Flask, api_schema, path: str, replay_every: int) -> None:
    """schemathesis's coverage cases: each parameter at and just past its bounds, each enum
    value, wrong types, missing and duplicated values (positive and negative), plus methods the
    API does not have (a 405; Flask answers OPTIONS itself). Every ``replay_every``-th search
    also goes to the page and the feed."""
    operation = api_schema[path]["GET"]
    cases = list(
        api_schema.iter_coverage_cases(
            operation,
            generation_modes=MODES,
            generation_config=api_schema.config.generation_for(operation=operation),
        )
    )
    sent: Counter = Counter()
    for number, case in enumerate(cases):
        if case.method != "GET":
            response = case.call()
            expected = 200 if case.method in ("OPTIONS", "HEAD") else 405
            assert response.status_code == expected, (case.method, response.status_code)
            continue
        check_case(app, api_schema, case, sent, replay_search=number % replay_every == 0)
    check_run(sent, 40, path)


@pytest.mark.parametrize("path", ["/api/search", "/api/suggest"])
def test_fuzz_api_boundaries_of_every_parameter_are_answered_as_described(app, api_schema, path):
    boundaries(app, api_schema, path, replay_every=10)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/api/search", "/api/suggest"])
def test_fuzz_api_boundaries_all_replayed_to_the_page_and_feed(app, api_schema, path):
    boundaries(app, api_schema, path, replay_every=1)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.value)
@pytest.mark.parametrize("path", ["/api/search", "/api/suggest"])
def test_fuzz_api_long_run_answers_every_generated_request_as_described(
    app, api_schema, path, mode
):
    sent = fuzz(app, api_schema, path, mode, SLOW_EXAMPLES)
    check_run(sent, SLOW_EXAMPLES, path)


def test_fuzz_served_description_is_the_one_in_the_repository(app, api_schema):
    """The fuzzing reads the description the app serves; it must be the file kept in the repo."""
    served = app.test_client().get("/api/openapi.json").get_json()
    assert served == json.loads(OPENAPI_FILE.read_text("utf-8")) == api_schema.raw_schema
    search = served["paths"]["/api/search"]["get"]["parameters"]
    assert {p["name"] for p in search} >= set(MATCH_PARAMS)
    assert all(
        p.get("allowEmptyValue")
        for path in served["paths"].values()
        for p in path["get"]["parameters"]
    )


# What fuzzing rarely hits: values the description refuses that Python's own parsers would take,
# and values it accepts at the edge of the calendar.
REFUSED = [
    ("/api/search?sort=NEWEST", "sort"),
    ("/api/search?page=%2B2", "page"),
    ("/api/search?per_page=1_0", "per_page"),
    ("/api/search?min_quality=%D9%A3", "min_quality"),  # ARABIC-INDIC DIGIT THREE
    ("/api/search?published=TRUE", "published"),
    ("/api/search?from=20220624", "from"),
    ("/api/search?from=2022-06-24%2014:08", "from"),
    ("/api/search?to=2022-W25", "to"),
    ("/api/search?" + "&".join(["topic=AI"] * 51), "topic"),
    ("/api/suggest?q=a&format=OPENSEARCH", "format"),
    ("/api/suggest?q=a&limit=%2B3", "limit"),
]
ACCEPTED = [
    "/api/search?from=9999-12",
    "/api/search?to=9999-12",
    "/api/search?to=9999",
    "/api/search?from=0001&to=9999-12-31",
    "/api/search?page=%202%20&per_page=5&sort=%20newest",
    "/api/search?page=&topic=&published=&from=",
    "/api/search?" + "&".join(["topic=AI"] * 50),
    "/api/suggest?q=a&format=&limit=",
]


@pytest.mark.parametrize(("url", "parameter"), REFUSED)
def test_fuzz_contract_refuses_what_the_description_refuses(app, api_schema, url, parameter):
    response = app.test_client().get(url)
    assert response.status_code == 400
    assert response.get_json()["parameter"] == parameter
    path, _, query_string = url.partition("?")
    operation = api_schema.raw_schema["paths"][path]["get"]
    assert parameter in expected_faults(operation, read_query(query_string))


@pytest.mark.parametrize("url", ACCEPTED)
def test_fuzz_contract_accepts_what_the_description_accepts(app, api_schema, url):
    response = app.test_client().get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    path, _, query_string = url.partition("?")
    operation = api_schema.raw_schema["paths"][path]["get"]
    assert expected_faults(operation, read_query(query_string)) == set()
