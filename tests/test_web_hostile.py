"""Hostile articles and hostile queries through the real app, the real server and a real browser.

An index is built from articles that carry markup in every field a reader could see (and some
they cannot: an image title, a related excerpt), ``javascript:`` URLs, attribute breakers, a
``secured`` blob, and a body of 900 KB. Every injected element carries the class ``xss``, so a
payload that ever becomes markup is found by the HTML parser (not by a substring search), and in
Chromium the payloads would call ``alert``. What tests/test_web.py already covers (the basic
escaping of title, query and feed, the headers of common responses) is not repeated here.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import yaml

from searchidx import highlight
from searchidx.articles import Article
from searchidx.marks import to_html
from searchidx.schema import ANALYZER, STORED_BODY_CHARS
from searchidx.store import IndexStore
from searchidx.web.app import create_app
from searchidx.web.security import CONTENT_SECURITY_POLICY
from tests.conftest import indexed
from tests.web_helpers import SEARCHIDX, Node, parse_html, serving

ATOM = "{http://www.w3.org/2005/Atom}"
#: A secret no output may show: what `secured` holds in the articles below.
SECRET = "qzsecretblob"
SECURED = f"{SECRET}-8Hc3pT0mYdZ2Q9x1Lw7Vn4Rb6Ka5Fe==;{SECRET.upper()}+tail"


def payload(field: str) -> str:
    """Markup for one field: a script, an image with a handler, an attribute breaker, an SVG
    and closers of raw-text elements, each marked ``xss`` so that a payload turned into markup is
    easy to find. Under 200 characters, so that it is a valid parameter value too."""
    return (
        f'{field} <script class=xss>alert("{field}")</script><img src=x class=xss'
        f" onerror=alert(1)>\"'><svg class=xss onload=alert(1)></title></textarea>"
        "<b class=xss>&amp;</b>"
    )


#: A hostile query that runs (its quotes balance), rather than failing to parse.
QUERY = payload("q") + '"'


def hostile_url(field: str) -> str:
    """An http(s) URL that tries to break out of its attribute."""
    return f'https://evil.example/{field}?a=1&b="><script id="xss-url-{field}">alert(1)</script>'


EVIL: dict[str, Any] = {
    "title": payload("title"),
    "excerpt": payload("excerpt") + " evilword",
    "publishedDateTime": "2023-03-04T05:06:07Z",
    "provider": {"name": payload("provider"), "domain": payload("domain")},
    "topics": [payload("topic"), "Plain topic"],
    "tags": [payload("tag")],
    "category": payload("category"),
    "type": payload("type"),
    "quality": 5,
    "webUrl": hostile_url("web"),
    "originalUrl": "javascript:alert('original')",
    "images": [
        {"url": hostile_url("image"), "width": 640, "height": 427, "title": payload("image-title")}
    ],
    "related": [
        {
            "title": payload("related"),
            "excerpt": payload("related-excerpt"),
            "publishedDateTime": "2023-03-03",
            "webUrl": "javascript:alert('related')",
            "provider": {"name": payload("related-provider"), "domain": "r.example"},
            "quality": 7,
        },
        {
            "title": "Second related",
            "webUrl": hostile_url("related"),
            "provider": {"domain": payload("related-domain")},
        },
    ],
    "secured": SECURED,
}
#: No excerpt and a provider with a domain only: the page shows a body snippet and the domain.
BODY_ONLY = {
    "title": "Snippet from the body",
    "publishedDateTime": "2023-03-05",
    "provider": {"domain": payload("domain-only")},
    "images": [{"url": "javascript:alert('image')"}],
    "webUrl": "data:text/html,<script>alert('data')</script>",
    "secured": SECURED,
}
BODY = "Some words first, then the snippetword " + payload("body") + " and more words after it."
#: Fields a reader sees on the page, as text, on the card of their article.
SHOWN = {
    "evil": [
        "title",
        "excerpt",
        "provider",
        "topic",
        "category",
        "type",
        "related",
        "related-provider",
        "related-domain",
    ],
    "snippet": ["domain-only"],
}


def front_matter(fields: dict[str, Any]) -> str:
    return yaml.safe_dump(fields, allow_unicode=True, sort_keys=False)


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> IndexStore:
    # A long body too, so that export reads the file again (its body is over the stored part).
    long_body = ("filler text " * 800) + payload("long-body")
    articles = [
        ("evil.md", front_matter(EVIL), payload("evil-body") + " evilword"),
        ("snippet.md", front_matter(BODY_ONLY), BODY),
        ("long.md", front_matter({**BODY_ONLY, "title": "Long"}), long_body),
    ]
    return indexed(tmp_path_factory.mktemp("hostile"), articles)


@pytest.fixture(scope="module")
def app_store(hostile_store: IndexStore) -> IndexStore:
    return hostile_store


def text_of(response) -> str:
    assert response.status_code in (200, 400), response.status_code
    return response.get_data(as_text=True)


def words(text: str) -> str:
    return " ".join(text.split())


# Markup that must not exist ------------------------------------------------------------------


def live_markup(doc: Node) -> list[str]:
    """Every element or attribute in ``doc`` that a payload could have made."""
    found = []
    for node in doc.iter():
        marks = " ".join([node.attrs.get("id", ""), node.attrs.get("class", "")])
        if "xss" in marks:
            found.append(f"<{node.tag} {node.attrs}>")
        found += [f"<{node.tag} {name}=...>" for name in node.attrs if name.startswith("on")]
        if node.tag in ("svg", "iframe", "object", "embed", "base", "math"):
            found.append(f"<{node.tag}>")
        if node.tag == "script" and (node.text or not node.attrs.get("src", "").startswith("/")):
            found.append(f"<script {node.attrs}> {node.text[:40]}")
        for name in ("href", "src", "action", "formaction"):
            scheme = node.attrs.get(name, "").strip().lower().split(":")[0]
            if scheme in ("javascript", "data", "vbscript"):
                found.append(f"<{node.tag} {name}={node.attrs[name]!r}>")
    return found


def assert_inert_html(text: str) -> Node:
    doc = parse_html(text)
    assert live_markup(doc) == []
    return doc


def assert_only_marks(html_text: str) -> None:
    """An ``*_html`` field: escaped text, with ``<mark>`` its only elements."""
    doc = parse_html(html_text)
    assert {node.tag for node in doc.iter()} <= {"mark"}, html_text
    assert live_markup(doc) == []


def card(doc: Node, title_start: str) -> Node:
    return next(a for a in doc.find_all("article") if a.find("h2").text.startswith(title_start))


# The page ------------------------------------------------------------------------------------


def test_hostile_page_shows_every_article_field_as_text(client):
    doc = assert_inert_html(text_of(client.get("/")))
    evil = card(doc, "title ")
    for field in SHOWN["evil"]:
        assert words(payload(field)) in words(evil.text), field
    # URLs: an http(s) link keeps its quotes as text in its href; a script URL is no link.
    assert evil.find("h2").find("a").attrs == {"href": hostile_url("web")}
    related = evil.find(cls="related").find_all("a")
    assert [a.attrs["href"] for a in related] == [hostile_url("related")]
    assert evil.find("img").attrs["src"] == hostile_url("image")
    assert "image-title" not in text_of(client.get("/"))  # the image title is shown nowhere
    snippet = assert_inert_html(text_of(client.get("/?q=snippetword")))
    shown = card(snippet, "Snippet")
    for field in SHOWN["snippet"]:
        assert words(payload(field)) in words(shown.text), field
    snippet_text = words(shown.find("p", cls="excerpt").text)  # a window of the body, verbatim
    assert snippet_text.strip(" …") in words(BODY) and "<script class=xss>" in snippet_text
    assert shown.find("h2").find_all("a") == [] and shown.find_all("img") == []


def test_hostile_page_facets_chips_and_form_keep_values_as_text(client):
    """Values travel from the index into facet links, checkboxes, chips and the form."""
    evil_topic = payload("topic")
    pages = [
        "/",
        "/?" + urlencode({"topic": evil_topic, "provider": payload("provider")}),
        "/?" + urlencode({"category": payload("category").lower(), "type": "x"}),
        "/?" + urlencode({"topic_q": payload("topic-q"), "provider_q": payload("provider-q")}),
    ]
    for url in pages:
        doc = assert_inert_html(text_of(client.get(url)))
        values = [node.attrs.get("value") for node in doc.find_all("input")]
        if "topic=" in url:
            assert evil_topic in values  # the chosen value, as a checkbox or hidden field
            chips = doc.find(cls="chips")
            assert words(evil_topic) in words(chips.text)


@pytest.mark.parametrize(
    "name", ["q", "topic", "from", "to", "sort", "page", "min_quality", "facet_size", "type_q"]
)
def test_hostile_page_keeps_a_hostile_parameter_inert(client, name):
    """A parameter as typed comes back in the form, a chip or the error message: as text."""
    value = payload(f"param-{name}")
    response = client.get("/?" + urlencode({name: value}))
    doc = assert_inert_html(text_of(response))
    if response.status_code == 400:
        assert doc.find(role="alert") is not None
    if name in ("q", "topic", "from", "to"):  # text fields keep what was typed
        assert value in [node.attrs.get("value") for node in doc.find_all("input")]


# The API and the feed ------------------------------------------------------------------------


def test_hostile_api_returns_every_field_as_the_plain_string(client):
    response = client.get("/api/search?q=evilword")
    assert response.mimetype == "application/json"
    hit = response.get_json()["hits"][0]
    assert hit["title"] == EVIL["title"]
    assert hit["provider"] == EVIL["provider"]
    assert hit["topics"] == EVIL["topics"]
    assert (hit["category"], hit["type"]) == (EVIL["category"], EVIL["type"])
    assert hit["url"] == EVIL["webUrl"]
    assert hit["image"] == {"url": hostile_url("image"), "width": 640, "height": 427}
    first, second = hit["related"]
    assert (first["title"], first["excerpt"]) == (payload("related"), payload("related-excerpt"))
    assert first["provider"]["name"] == payload("related-provider")
    assert second["provider"]["domain"] == payload("related-domain")
    assert_only_marks(hit["title_html"])
    assert_only_marks(hit["excerpt_html"])
    assert words(payload("excerpt")) in words(parse_html(hit["excerpt_html"]).text)
    body = client.get("/api/search?q=snippetword").get_json()["hits"][0]
    assert_only_marks(body["excerpt_html"])
    snippet = words(parse_html(body["excerpt_html"]).text)  # a window of the body, verbatim
    assert snippet.strip(" …") in words(BODY) and "<script class=xss>" in snippet


def test_hostile_api_echoes_hostile_parameters_as_json_strings(client):
    value = QUERY
    body = client.get("/api/search?" + urlencode({"q": value, "topic": value})).get_json()
    assert body["query"] == value and body["filters"]["topic"] == [value]
    error = client.get("/api/search?" + urlencode({"from": value}))
    assert error.status_code == 400 and error.mimetype == "application/json"
    assert error.get_json()["parameter"] == "from"
    suggest = client.get("/api/suggest?" + urlencode({"q": value}))
    assert suggest.get_json()["query"] == value


def test_hostile_feed_entries_are_text_and_summaries_only_marks(client):
    for url in (
        "/feed.atom",
        "/feed.atom?q=evilword",
        "/feed.atom?" + urlencode({"q": QUERY, "topic": payload("topic")}),
    ):
        response = client.get(url)
        assert response.status_code == 200 and response.mimetype == "application/atom+xml"
        root = ET.fromstring(response.data)  # well-formed: nothing broke out of the XML
        assert all(element.tag.startswith(ATOM) for element in root.iter())
        for entry in root.findall(f"{ATOM}entry"):
            summary = entry.find(f"{ATOM}summary")
            if summary is not None:
                assert summary.get("type") == "html"
                assert_only_marks(summary.text or "")  # what a feed reader renders as HTML
            for link in entry.findall(f"{ATOM}link"):
                assert link.get("href", "").startswith(("https://", "http://"))
    root = ET.fromstring(client.get("/feed.atom?q=evilword").data)
    evil = root.find(f"{ATOM}entry")
    assert evil.findtext(f"{ATOM}title") == EVIL["title"]
    assert evil.findtext(f"{ATOM}author/{ATOM}name") == EVIL["provider"]["name"]
    assert [c.get("term") for c in evil.findall(f"{ATOM}category")] == EVIL["topics"]
    assert evil.find(f"{ATOM}link").get("href") == EVIL["webUrl"]
    title = ET.fromstring(client.get("/feed.atom?" + urlencode({"q": QUERY})).data)
    assert QUERY in title.findtext(f"{ATOM}title", "")


# secured ---------------------------------------------------------------------------------------


def test_hostile_secured_is_in_no_response(client, hostile_store, tmp_path):
    urls = [
        "/",
        "/?q=evilword",
        "/?q=snippetword&per_page=100",
        "/?q=long",
        "/api/search?per_page=100",
        "/api/search?q=evilword",
        "/api/search?q=long",
        "/feed.atom",
        "/feed.atom?q=snippetword",
        "/api/suggest?q=qz",
        "/api/suggest?q=q&limit=20",
        "/api/suggest?q=qz&format=opensearch",
        "/opensearch.xml",
        "/api/openapi.json",
    ]
    for url in urls:
        body = client.get(url).get_data(as_text=True)
        assert SECRET not in body.lower() and "8Hc3pT0m" not in body, url
    # Not searchable either: the secret finds nothing, not even by a fuzzy retry.
    assert client.get(f"/api/search?q={SECRET}").get_json()["total"] == 0
    # The export (its long body is read again from the file) holds no trace of it.
    out = tmp_path / "export"
    command = [SEARCHIDX, "export", str(out), "--index", str(hostile_store.location)]
    subprocess.run(command, check=True, capture_output=True)
    exported = {path.name: path.read_text("utf-8") for path in out.iterdir()}
    assert any(payload("long-body")[:20] in text for text in exported.values())
    assert not any(SECRET in text.lower() or "8Hc3pT0m" in text for text in exported.values())


# Security headers where tests/test_web.py does not look -------------------------------------

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def assert_strict_policy(policy: str) -> None:
    """Only the app's own resources (article thumbnails, over https, the one exception), no
    inline code, no framing, no plugins."""
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    for name, sources in directives.items():
        allowed = {"'self'", "'none'"} | ({"https:", "data:"} if name == "img-src" else set())
        assert set(sources.split()) <= allowed, (name, sources)
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", "/?" + urlencode({"q": payload("q"), "page": "0"}), 400),
        ("GET", "/feed.atom?from=nope", 400),
        ("GET", "/api/suggest?limit=0", 400),
        ("POST", "/api/search", 405),
        ("POST", "/", 405),
        ("HEAD", "/", 200),
        ("GET", "/static/app.js", 200),
        ("GET", "/static/favicon.svg", 200),
    ],
)
def test_hostile_security_headers_on_errors_methods_and_assets(client, method, url, status):
    response = client.open(url, method=method)
    assert response.status_code == status
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, name
    assert_strict_policy(response.headers["Content-Security-Policy"])


def test_hostile_security_headers_without_an_index(tmp_path):
    app = create_app(IndexStore(tmp_path / "none"), config={"TESTING": True})
    for url in ("/", "/api/search", "/feed.atom"):
        response = app.test_client().get(url)
        assert response.status_code == 503
        assert {name: response.headers.get(name) for name in HEADERS} == HEADERS


def test_hostile_security_headers_from_the_real_server(hostile_store):
    from urllib.error import HTTPError
    from urllib.request import urlopen

    with serving(hostile_store.location) as base:
        for url in ("", "api/search?page=0", "feed.atom", "nowhere"):
            try:
                response = urlopen(base + url)
            except HTTPError as error:
                response = error
            with response:
                for name, value in HEADERS.items():
                    assert response.headers[name] == value, (url, name)


# Very long bodies: highlighting is bounded -------------------------------------------------

LONG_BODY_BYTES = 900_000


@pytest.fixture(scope="module")
def long_store(tmp_path_factory: pytest.TempPathFactory) -> IndexStore:
    """One article of 900 KB: a body with 'needle' every few words and 'finalterm' only at its
    very end, and an excerpt of 50 KB whose 'excerptonly' is past the highlighting cut."""
    unit = "the needle sits in a haystack of words "
    body = unit * (LONG_BODY_BYTES // len(unit)) + "finalterm"
    excerpt = "plain words " * (highlight.MAX_HIGHLIGHT_CHARS // 12 + 10) + "excerptonly"
    excerpt += " needle" * 2_000
    fields = {
        "title": "A very long article about a needle",
        "excerpt": excerpt,
        "publishedDateTime": "2024-01-01",
    }
    root = tmp_path_factory.mktemp("long")
    store = indexed(
        root,
        [
            ("long.md", front_matter(fields), body),
            ("short.md", "title: A short needle story\npublishedDateTime: 2024-01-02", ""),
        ],
    )
    size = (root / "content" / "long.md").stat().st_size
    assert LONG_BODY_BYTES < size < 1024 * 1024  # under the 1 MiB file limit
    return store


def test_hostile_long_body_is_stored_cut_and_found_whole(long_store):
    index = long_store.open_index()
    try:
        with index.searcher() as searcher:
            docnum = list(searcher.reader().column_reader("path")).index(b"long.md")
            record = json.loads(searcher.reader().column_reader("record")[docnum])
            body = searcher.reader().column_reader("stored_body")[docnum].decode()
    finally:
        index.close()
    fields = [field.name for field in dataclasses.fields(Article)]
    assert record[fields.index("body")] is None and len(body) == STORED_BODY_CHARS
    app = create_app(long_store, config={"TESTING": True})
    try:
        started = time.monotonic()
        found = app.test_client().get("/api/search?q=finalterm").get_json()
        assert time.monotonic() - started < 5  # a guard against a hang, not a performance target
        assert [hit["path"] for hit in found["hits"]] == ["long.md"]  # the whole body is indexed
        # Past the stored part, so no snippet can mark it: the excerpt's start stands in.
        assert "<mark" not in found["hits"][0]["excerpt_html"]
        assert len(found["hits"][0]["excerpt_html"]) <= highlight.EXCERPT_CHARS + 10
    finally:
        app.extensions["searchidx"].close()


@pytest.mark.parametrize("url", ["/api/search?q=needle", "/?q=needle", "/feed.atom?q=needle"])
def test_hostile_long_body_highlighting_is_bounded(long_store, url):
    app = create_app(long_store, config={"TESTING": True})
    try:
        started = time.monotonic()
        response = app.test_client().get(url)
        elapsed = time.monotonic() - started
    finally:
        app.extensions["searchidx"].close()
    assert response.status_code == 200
    assert elapsed < 5  # a guard against a hang, not a performance target
    assert len(response.data) < 200_000  # a page of two hits, not the 900 KB body


def test_hostile_highlighting_reads_only_the_first_characters():
    """The cut is what bounds the time: a match past MAX_HIGHLIGHT_CHARS is never looked at."""
    cut = highlight.MAX_HIGHLIGHT_CHARS
    text = "plain words " * (cut // 12 + 10) + "needle " + "needle " * 100_000
    article = Article(
        path="a.md", title="t " * cut + "needle", published_at=_EPOCH, excerpt=text, body=text
    )
    terms = frozenset(token.text for token in ANALYZER("needle"))  # as the index has it
    started = time.monotonic()
    excerpt = to_html(highlight.marked_excerpt(article.excerpt, article.body, terms))
    title = to_html(highlight.marked_title(article, terms))
    assert time.monotonic() - started < 5
    assert "<mark" not in excerpt and len(excerpt) <= highlight.EXCERPT_CHARS + 10
    assert "<mark" not in title  # the title as it is, escaped
    near = Article(path="b.md", title="needle", published_at=_EPOCH, excerpt=text[-cut:])
    assert excerpt_marks(to_html(highlight.marked_excerpt(near.excerpt, near.body, terms))) > 0


def excerpt_marks(html_text: str) -> int:
    return len(parse_html(html_text).find_all("mark"))


_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


# In a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_base_url(hostile_store: IndexStore) -> Iterator[str]:
    with serving(hostile_store.location) as base:
        yield base.rstrip("/")


RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
    (event) => window.__violations.push(event.violatedDirective + ' ' + event.blockedURI));
"""
LIVE_MARKUP = """() => {
    const found = [];
    for (const element of document.querySelectorAll('*')) {
        if ((element.id || '').includes('xss') || element.classList.contains('xss')) {
            found.push(element.outerHTML.slice(0, 80));
        }
        for (const attribute of element.attributes) {
            if (attribute.name.startsWith('on')) found.push(element.tagName + ' ' + attribute.name);
        }
    }
    for (const link of document.querySelectorAll('a[href], img[src]')) {
        const url = (link.getAttribute('href') || link.getAttribute('src')).trim().toLowerCase();
        if (!/^(https?:|[/?#])/.test(url)) {
            found.push(link.tagName + ' ' + url.slice(0, 40));
        }
    }
    return found;
}"""


@pytest.mark.browser
def test_hostile_browser_runs_no_injected_script(hostile_base_url):
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _local_only, _require_chromium

    _require_chromium()
    from playwright.sync_api import Dialog, sync_playwright

    base = hostile_base_url
    urls = [
        "/",
        "/?q=evilword",
        "/?q=snippetword",
        "/?" + urlencode({"topic": payload("topic"), "q": QUERY}),
        "/?" + urlencode({"from": payload("from")}),
        "/?" + urlencode({"provider_q": payload("provider-q")}),
        "/api/search?q=" + quote(QUERY),
        "/feed.atom",
    ]
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(15_000)
            context.route("**/*", lambda route: _local_only(route, base))
            context.add_init_script(RECORD_VIOLATIONS)
            page = context.new_page()

            def dismiss(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", dismiss)
            for url in urls:
                page.goto(base + url)
                page.wait_for_load_state("load")
                for summary in page.locator("details.related > summary").all():
                    summary.click()  # show related coverage
                assert page.evaluate(LIVE_MARKUP) == [], url
                assert page.evaluate("window.__violations") == [], url
            page.goto(base + "/")
            title = page.locator("h2.hit-title", has_text='alert("title")')
            assert words(title.inner_text()) == words(payload("title"))  # shown, as text
        finally:
            browser.close()
    assert dialogs == []
