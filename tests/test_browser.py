"""The page in a real headless Chromium (Debian's ``chromium``, driven by Playwright), against
the real ``searchidx serve`` (waitress): what a reader does, and what the page then shows.

Screenshots go to ``test-artifacts/`` (git-ignored). Nothing leaves 127.0.0.1: article
thumbnails point at outside hosts, so image requests get a local placeholder and every other
outside request is aborted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from searchidx.request import SearchRequest, Sort
from searchidx.service import SearchService
from searchidx.store import IndexStore
from tests.web_helpers import serving

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
DASH = "\N{EN DASH}"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PLACEHOLDER = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="427">'
    b'<rect width="100%" height="100%" fill="#a9bcd0"/></svg>'
)


def _require_chromium() -> None:
    """Fail loudly in CI (it installs chromium: 'make browser'); skip on a laptop without it."""
    problem = None
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        problem = f"no Chromium at {CHROMIUM}: install Debian's package (make browser)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "playwright is not installed: pip install -e '.[test]'"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def base_url(sample_store: IndexStore) -> Iterator[str]:
    with serving(sample_store.location) as base:
        yield base.rstrip("/")


@pytest.fixture(scope="module")
def service(sample_store: IndexStore) -> Iterator[SearchService]:
    service = SearchService(sample_store)
    yield service
    service.close()


@pytest.fixture
def open_page(browser, base_url: str):
    """A new page in a fresh context that cannot reach anything but the server under test."""
    contexts = []

    def make(*, javascript: bool = True, viewport: dict[str, int] = DESKTOP):
        context = browser.new_context(java_script_enabled=javascript, viewport=viewport)
        context.set_default_timeout(15_000)
        context.route("**/*", lambda route: _local_only(route, base_url))
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()


def _local_only(route, base_url: str) -> None:
    request = route.request
    if request.url.startswith(base_url + "/"):
        route.continue_()
    elif request.resource_type == "image":
        route.fulfill(body=PLACEHOLDER, content_type="image/svg+xml")
    else:
        route.abort()


def state(page) -> dict[str, list[str]]:
    """The search state the URL holds."""
    return parse_qs(urlsplit(page.url).query)


def heading(page) -> str:
    return " ".join(page.locator("h1").inner_text().split())


def checked(page, facet: str) -> list[str]:
    boxes = page.locator(f"#facet-{facet} input[type=checkbox]:checked")
    return [boxes.nth(i).get_attribute("value") for i in range(boxes.count())]


def hit_count(service: SearchService, **request: object) -> int:
    return service.search(SearchRequest(**request)).total  # type: ignore[arg-type]


def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


def two_topics(service: SearchService, text: str) -> list[str]:
    facet = service.search(SearchRequest(text=text)).facet("topic")
    assert facet is not None and len(facet.values) >= 2
    return [facet.values[0].value, facet.values[1].value]


def test_browser_search_tick_facets_sort_page_and_go_back(open_page, base_url, service):
    page = open_page()
    page.goto(base_url + "/")
    assert f"of {hit_count(service):,} articles" in heading(page)

    # Type a query: the autocomplete offers completions, the keyboard picks one.
    page.locator("#q").press_sequentially("microso", delay=20)
    listbox = page.get_by_role("listbox", name="Suggestions")
    listbox.wait_for(state="visible")
    options = listbox.get_by_role("option")
    texts = [options.nth(i).inner_text().split("\n")[0] for i in range(options.count())]
    assert "microsoft" in texts
    assert page.locator("#q").get_attribute("aria-expanded") == "true"
    for _ in range(texts.index("microsoft") + 1):
        page.keyboard.press("ArrowDown")
    active = page.locator("#q").get_attribute("aria-activedescendant")
    assert page.locator(f"#{active}").inner_text().startswith("microsoft")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert state(page) == {"q": ["microsoft"]}
    assert f"of {hit_count(service, text='microsoft'):,} articles for “microsoft”" in heading(page)

    # Tick two topics: each submits at once; the counts are disjunctive within the facet.
    first, second = two_topics(service, "microsoft")
    for topic in (first, second):
        with page.expect_navigation():
            page.locator(f'#facet-topic input[value="{topic}"]').click()
    assert state(page) == {"q": ["microsoft"], "topic": [first, second]}
    assert sorted(checked(page, "topic")) == sorted([first, second])
    both = hit_count(service, text="microsoft", filters={"topic": (first, second)})
    assert f"{both:,} article" in heading(page)
    chips = page.locator(".chips .chip")
    assert chips.count() == 2 and first in chips.nth(0).inner_text()

    # Change the sort.
    with page.expect_navigation():
        page.select_option("#sort", "newest")
    assert state(page)["sort"] == ["newest"]
    assert page.locator("#sort").input_value() == "newest"
    times = page.locator(".hit-card > .hit-text > .meta time")
    dates = [times.nth(i).get_attribute("datetime") for i in range(times.count())]
    assert dates == sorted(dates, reverse=True)
    expected = service.search(
        SearchRequest(text="microsoft", filters={"topic": (first, second)}, sort=Sort.NEWEST)
    )
    titles = page.locator(".hit-title").all_inner_texts()
    assert titles == [hit.article.title for hit in expected.hits]
    screenshot(page, "browser-desktop")

    # Page forward, when there is a next page.
    if both > 10:
        with page.expect_navigation():
            page.locator('a[rel="next"]').click()
        assert state(page)["page"] == ["2"]
        assert page.locator('nav[aria-label="Pages"] [aria-current="page"]').inner_text() == "2"
        assert heading(page).startswith(f"11{DASH}")

        # Back: the first page again, with the sort and the ticked topics as they were.
        page.go_back()
        assert "page" not in state(page)
        assert page.locator('nav[aria-label="Pages"] [aria-current="page"]').inner_text() == "1"
    else:
        page.go_back()
        page.go_forward()
    assert page.locator("#sort").input_value() == "newest"
    assert sorted(checked(page, "topic")) == sorted([first, second])
    page.go_back()
    assert "sort" not in state(page) and page.locator("#sort").input_value() == ""
    assert page.problems == []


def test_browser_without_javascript_the_form_and_links_do_everything(open_page, base_url, service):
    page = open_page(javascript=False)
    page.goto(base_url + "/")
    page.fill("#q", "microsoft")
    with page.expect_navigation():
        page.get_by_role("button", name="Search", exact=True).click()
    assert state(page)["q"] == ["microsoft"]
    assert f"of {hit_count(service, text='microsoft'):,} articles" in heading(page)

    # Ticking does nothing by itself; "Apply filters" submits the form.
    first, second = two_topics(service, "microsoft")
    url = page.url
    page.locator(f'#facet-topic input[value="{first}"]').check()
    page.locator(f'#facet-topic input[value="{second}"]').check()
    assert page.url == url
    with page.expect_navigation():
        page.get_by_role("button", name="Apply filters").click()
    assert state(page)["topic"] == [first, second]
    assert sorted(checked(page, "topic")) == sorted([first, second])
    both = hit_count(service, text="microsoft", filters={"topic": (first, second)})
    assert f"{both:,} article" in heading(page)

    # Sort with the menu and its button (shown only without JavaScript).
    page.select_option("#sort", "oldest")
    with page.expect_navigation():
        page.get_by_role("button", name="Sort").click()
    assert state(page)["sort"] == ["oldest"]
    assert page.locator("#sort").input_value() == "oldest"

    # A facet value is also a link: follow it to drop a topic.
    with page.expect_navigation():
        page.locator("#facet-topic .facet-link", has_text=second).first.click()
    assert state(page)["topic"] == [first] and checked(page, "topic") == [first]

    # The month histogram's bars are links that narrow the dates.
    bar = page.locator(".histogram a.bar").first
    month = parse_qs(urlsplit(bar.get_attribute("href")).query)["from"][0]
    with page.expect_navigation():
        bar.click()
    assert state(page)["from"] == [month] and state(page)["to"] == [month]
    assert page.locator("#from").input_value() == month
    page.go_back()

    # Page forward with a link, then back.
    page.goto(base_url + "/?q=microsoft")
    with page.expect_navigation():
        page.locator('a[rel="next"]').click()
    assert state(page)["page"] == ["2"]
    assert heading(page).startswith(f"11{DASH}")
    page.go_back()
    assert "page" not in state(page) and heading(page).startswith(f"1{DASH}10")
    screenshot(page, "browser-nojs")


def test_browser_phone_width_folds_filters_and_never_scrolls_sideways(open_page, base_url):
    page = open_page(viewport=PHONE)
    page.goto(base_url + "/?q=microsoft&topic=AI")
    filters = page.locator("details.filters")
    assert filters.get_attribute("open") is None  # folded away on a phone
    toggle = page.locator("summary.filters-toggle")
    assert toggle.is_visible() and "1 active" in toggle.inner_text()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"page is {width}px wide on a {PHONE['width']}px phone"
    assert page.locator(".hit-title").first.is_visible()
    screenshot(page, "browser-phone")
    toggle.click()
    assert filters.get_attribute("open") is not None
    assert page.locator("#facet-topic").is_visible()
    screenshot(page, "browser-phone-filters")
    screenshot(page, "browser-phone-full", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_browser_keyboard_skip_link_and_visible_focus(open_page, base_url):
    page = open_page()
    page.goto(base_url + "/?q=microsoft")
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    assert skip.inner_text() == "Skip to results"
    assert skip.bounding_box()["y"] >= 0  # shown when focused
    page.keyboard.press("Enter")
    assert page.url.endswith("#results")
    page.focus("#q")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # focus by keyboard: :focus-visible applies
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")


def test_browser_bad_query_shows_a_message_not_an_error_page(open_page, base_url):
    page = open_page()
    too_many = " ".join(f"{letter * 2}*" for letter in "abcdefghijk")  # 11 wildcard words
    response = page.goto(base_url + "/?" + urlencode({"q": too_many, "topic": "AI"}))
    assert response is not None and response.status == 400
    alert = page.get_by_role("alert")
    assert "11 fuzzy or wildcard words" in alert.inner_text()
    assert page.locator("#q").input_value() == too_many
    page.fill("#q", "micro*")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert state(page) == {"q": ["micro*"], "topic": ["AI"]}
    assert page.get_by_role("alert").count() == 0
    assert page.problems == [] or all("400" in problem for problem in page.problems)


def test_browser_similar_articles_link_opens_their_page_without_javascript(open_page, base_url):
    page = open_page(javascript=False)
    page.goto(base_url + "/?q=microsoft")
    first = page.locator(".hit").first
    title = " ".join(first.locator(".hit-title").inner_text().split())
    with page.expect_navigation():
        first.get_by_role("link", name="Similar articles").click()
    assert state(page)["path"] and urlsplit(page.url).path == "/similar"
    assert f"similar to “{title}”" in heading(page)
    assert page.locator(".hit").count() == 10
    screenshot(page, "similar-articles")
    assert not page.problems  # the page's policy blocked nothing, no script failed
