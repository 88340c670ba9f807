"""Queries as people type them (issue #16): punctuation never costs results, stray syntax is read
as words with a note, a query of required words that finds nothing relaxes, accents fold.

Every row of the issue's table runs on the service, the API, the page and ``searchidx query``,
over a dozen hand-written articles.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh import query

from bench import typed_queries
from bench.queries import make_queries
from searchidx import indexer, querylang, typedtext
from searchidx.cli import cli
from searchidx.errors import QueryError
from searchidx.marks import to_html
from searchidx.request import SearchRequest
from searchidx.service import OUTDATED_NOTE, SearchService
from searchidx.store import IndexStore
from tests.conftest import indexed
from tests.web_helpers import parse_html

#: path -> (title, excerpt, provider name, provider domain)
ARTICLES = {
    "covid.md": (
        "Covid-19 cases rise in New York",
        "What is the death toll in New York? It climbed again this week.",
        "NBC News",
        "nbcnews.com",
    ),
    "wards.md": (
        "Study of 19 covid wards",
        "Doctors compared wards in three cities.",
        "Wired",
        "wired.com",
    ),
    "ecommerce.md": (
        "E-commerce sales soar as shoppers shop online",
        "Retailers report record quarters.",
        "Forbes",
        "forbes.com",
    ),
    "xray.md": (
        "X-ray machines in short supply",
        "Hospitals wait for imaging equipment.",
        "Wired",
        "wired.com",
    ),
    "mobile.md": (
        "T-Mobile and AT&T expand 5G networks",
        "Carriers race to cover cities.",
        "The Verge",
        "theverge.com",
    ),
    "carriers.md": (
        "Mobile carriers at a crossroads",
        "Talks at T stations stalled.",
        "Forbes",
        "forbes.com",
    ),
    "stay.md": (
        "Stay-at-home orders extended in California",
        "The governor asked residents to remain indoors.",
        "NBC News",
        "nbcnews.com",
    ),
    "homes.md": (
        "Home sales stay strong",
        "Buyers stay active despite rates.",
        "Forbes",
        "forbes.com",
    ),
    "paulo.md": (
        "São Paulo hospitals near capacity",
        "Brazil's largest city adds beds.",
        "Wired",
        "wired.com",
    ),
    "vaccine.md": (
        "Vaccine trial results published",
        "Researchers share early data.",
        "Reuters",
        "reuters.com",
    ),
    "wolf.md": (
        "Coronavirus in Pennsylvania: Gov. Tom Wolf orders closures",
        "Businesses must close by Monday.",
        "NBC News",
        "nbcnews.com",
    ),
}

#: The issue's table: typed text -> the article that must come first, and articles that must not
#: be found at all (the words are there, but not as written).
TABLE = [
    ("covid-19", "covid.md", {"wards.md"}),
    ('"covid-19"', "covid.md", {"wards.md"}),
    ("e-commerce", "ecommerce.md", set()),
    ("x-ray", "xray.md", set()),
    ("t-mobile", "mobile.md", set()),
    ("AT&T", "mobile.md", {"carriers.md"}),
    ("what is the death toll in new york?", "covid.md", set()),
    ("https://www.reuters.com", "vaccine.md", set()),
    ("stay-at-home", "stay.md", {"homes.md"}),
    ("são paulo", "paulo.md", set()),
    ("sao paulo", "paulo.md", set()),
    ("SÃO PAULO", "paulo.md", set()),
    ("coronavirus pennsylvania: gov. tom wolf", "wolf.md", set()),
    ("“death toll” york", "covid.md", set()),
    ("«death toll» york", "covid.md", set()),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> IndexStore:
    articles = [
        (
            path,
            f"title: {json.dumps(title)}\n"
            f"excerpt: {json.dumps(excerpt)}\npublishedDateTime: 2020-05-01T00:00:00Z\n"
            f"provider:\n  name: {provider}\n  domain: {domain}",
            "",
        )
        for path, (title, excerpt, provider, domain) in ARTICLES.items()
    ]
    return indexed(tmp_path_factory.mktemp("typed"), articles)


@pytest.fixture(scope="module")
def app_store(store: IndexStore) -> IndexStore:
    return store


# One search, on each surface: the found paths (best first), the notes and the retry message.

TITLE_TO_PATH = {title: path for path, (title, *_) in ARTICLES.items()}


def on_service(service: SearchService, client: FlaskClient, store: IndexStore, text: str) -> dict:
    result = service.search(SearchRequest(text=text))
    relaxed = result.relaxed.message if result.relaxed else None
    return {
        "paths": [hit.article.path for hit in result.hits],
        "notes": list(result.notes),
        "relaxed": relaxed,
        "retry": result.retry,
    }


def on_api(service: SearchService, client: FlaskClient, store: IndexStore, text: str) -> dict:
    response = client.get("/api/search?" + urlencode({"q": text}))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    return {
        "paths": [hit["path"] for hit in body["hits"]],
        "notes": body["notes"],
        "relaxed": (body["relaxed"] or {}).get("message"),
        "retry": body["retry"],
    }


def on_page(service: SearchService, client: FlaskClient, store: IndexStore, text: str) -> dict:
    response = client.get("/?" + urlencode({"q": text}))
    assert response.status_code == 200, response.get_data(as_text=True)
    doc = parse_html(response.get_data(as_text=True))
    titles = [node.text for node in doc.find_all("h2", cls="hit-title")]
    relaxed = doc.find_all("p", cls="relaxed")
    return {
        "paths": [TITLE_TO_PATH[title] for title in titles],
        "notes": [node.text for node in doc.find_all("p", cls="note")],
        "relaxed": relaxed[0].text if relaxed else None,
        "retry": None,
    }


def on_terminal(service: SearchService, client: FlaskClient, store: IndexStore, text: str) -> dict:
    index = ["--index", str(store.location)]
    printed = CliRunner().invoke(cli, ["query", text, "--json", *index])
    assert printed.exit_code == 0, printed.output
    body = json.loads(printed.output)
    shown = CliRunner().invoke(cli, ["query", text, *index])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    return {
        "paths": [hit["path"] for hit in body["hits"]],
        "notes": [line.removeprefix("Note: ") for line in lines if line.startswith("Note: ")],
        "relaxed": next((line for line in lines if line.startswith("No article")), None),
        "retry": body["retry"],
    }


SURFACES = [on_service, on_api, on_page, on_terminal]
Surface = Callable[[SearchService, FlaskClient, IndexStore, str], dict]


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(("text", "first", "absent"), TABLE)
def test_typed_queries_find_what_the_title_shows(
    service, client, store, surface: Surface, text: str, first: str, absent: set[str]
):
    found = surface(service, client, store, text)
    assert found["paths"][:1] == [first], found
    assert not absent & set(found["paths"])
    assert found["relaxed"] is None and found["retry"] is None  # read as typed, not retried


@pytest.mark.parametrize("surface", SURFACES)
def test_typed_queries_address_is_searched_as_its_words_with_a_note(
    service, client, store, surface: Surface
):
    found = surface(service, client, store, "https://www.reuters.com")
    assert any("searched as its words: reuters.com" in note for note in found["notes"])


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(
    ("text", "note"),
    [
        ('"death toll', 'the quote " is never closed'),
        ("(death toll", "'(' that is never closed"),
        ("death toll)", "')' with no '(' before it"),
        ("author:smith york", "'author' is not a field name"),
    ],
)
def test_typed_queries_stray_syntax_is_words_with_a_note(
    service, client, store, surface: Surface, text: str, note: str
):
    found = surface(service, client, store, text)
    assert any(note.lower() in line.lower() for line in found["notes"]), found
    if "author" not in text:
        assert found["paths"] == ["covid.md"]


@pytest.mark.parametrize("surface", SURFACES)
def test_typed_queries_bad_field_value_is_left_out_with_a_note(
    service, client, store, surface: Surface
):
    found = surface(service, client, store, "york date:2020-13")
    assert found["paths"] == ["covid.md"]
    (note,) = found["notes"]
    assert "'2020-13' is not a date, so date:2020-13 was left out" in note
    assert "date: takes date:2022, date:2022-05" in note


@pytest.mark.parametrize("surface", SURFACES)
def test_typed_queries_relax_a_query_no_article_fully_matches(
    service, client, store, surface: Surface
):
    found = surface(service, client, store, "death toll in new york zebra quokka")
    assert found["paths"] == ["covid.md"]
    assert found["relaxed"] == (
        "No article has all 6 words; showing articles with 4 of them (without zebra, quokka)."
    )


@pytest.mark.parametrize("surface", SURFACES)
def test_typed_queries_relax_a_phrase_to_its_words(service, client, store, surface: Surface):
    found = surface(service, client, store, "“toll death”")
    assert found["paths"] == ["covid.md"]
    assert "side by side" in found["relaxed"]


def test_typed_queries_relaxation_keeps_the_rarest_words_and_named_fields(service):
    result = service.search(SearchRequest(text="wards stay zebra"))
    assert result.retry == "relaxed" and result.relaxed.dropped == ("stay", "zebra")
    assert [hit.article.path for hit in result.hits] == ["wards.md"]
    phrase = service.search(SearchRequest(text="covid-19 zebra"))  # the phrase is kept whole
    assert phrase.relaxed.kept == ('"covid 19"',) and phrase.relaxed.dropped == ("zebra",)
    assert [hit.article.path for hit in phrase.hits] == ["covid.md"]
    named = service.search(SearchRequest(text="title:stay home zebra"))
    assert named.relaxed.kept == ("title:stay", "home")
    assert {hit.article.path for hit in named.hits} == {"stay.md", "homes.md"}


def test_typed_queries_operators_still_work_where_they_cannot_be_punctuation(service):
    def paths(text: str) -> set[str]:
        return {
            hit.article.path for hit in service.search(SearchRequest(text=text, per_page=50)).hits
        }

    assert paths("york -covid") == set() and paths("stay -sales") == {"stay.md"}
    assert paths("wards OR machines") == {"wards.md", "xray.md"}
    assert paths("title:covid") == {"covid.md", "wards.md"}
    assert paths("provider:reuters") == {"vaccine.md"}
    assert paths("domain:forbes.com stay") == {"homes.md"}
    assert paths("hosp* near") == {"paulo.md"} and paths("c?vid york") == {"covid.md"}
    assert paths("resarchers~") == {"vaccine.md"}
    assert paths("(wards OR machines) -study") == {"xray.md"}
    assert paths("stay NOT home") == set()
    assert paths("STAY NOT HOME") == {"stay.md", "homes.md"}  # all capitals: NOT is a word


def test_typed_queries_accents_fold_and_highlight_the_text_as_written(service):
    for text in ("sao paulo", "SÃO PAULO", "são paulo"):
        (hit,) = service.search(SearchRequest(text=text)).hits
        assert to_html(hit.marked_title).startswith('<mark class="match term0">São</mark>')
    assert [s.text for s in service.suggest("sã")] == [s.text for s in service.suggest("sa")]
    assert "sao" in [suggestion.text for suggestion in service.suggest("SÃ")]


def test_typed_queries_strict_cli_rejects_stray_syntax(store: IndexStore):
    result = CliRunner().invoke(
        cli, ["query", '"death toll', "--strict", "--index", str(store.location)]
    )
    assert result.exit_code == 1 and "unbalanced quote" in result.stderr
    assert "Traceback" not in result.output


def test_typed_queries_old_schema_index_is_noted_until_rebuilt(tmp_path: Path, store: IndexStore):
    old = IndexStore(tmp_path / "old")
    indexer.sync(old, store.read_meta().content_dir)
    meta = old.read_meta()
    meta.schema_version = 2
    old.write_meta(old.live_dir(), meta)
    service = SearchService(old)
    try:
        assert OUTDATED_NOTE in service.search(SearchRequest(text="york")).notes
    finally:
        service.close()
    assert indexer.sync(old).rebuilt
    service = SearchService(old)
    try:
        assert service.search(SearchRequest(text="york")).notes == ()
    finally:
        service.close()


# Typed text, generated ------------------------------------------------------------------------

VOCABULARY = sorted(
    {
        word.lower()
        for title, excerpt, *_ in ARTICLES.values()
        for word in re.findall(r"[A-Za-z]{3,}", f"{title} {excerpt}")
    }
    - {"and", "the", "not", "for", "are", "from", "was", "with", "title", "type", "body", "date"}
)
#: Punctuation people type; not the operators (* ~ ^ are never typed as punctuation).
PUNCTUATION = [*"-?!.,;:'&/#@\"“”«»()[]{}+|…\u2019", " - ", "? ", ": ", "...", "--"]


@st.composite
def typed_text(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=5))
    pieces = []
    for word in words:
        if draw(st.booleans()):  # punctuation inside the word
            cut = draw(st.integers(1, len(word) - 1))
            word = word[:cut] + draw(st.sampled_from(PUNCTUATION)) + word[cut:]
        pieces.append(draw(st.sampled_from([*PUNCTUATION, ""])) + word)
        pieces.append(draw(st.sampled_from([" ", " ", *PUNCTUATION])))
    text = "".join(pieces)
    return text.upper() if draw(st.integers(0, 9)) == 0 else text


#: What a typed text says on purpose: NOT at a word start, a wildcard inside a word.
INTENDED = re.compile(r"(?:^|[\s\"“”„«»()])-|\w\?\w")


@settings(max_examples=300, deadline=None, derandomize=True)  # the same texts in every run
@given(typed_text())
def test_typed_queries_punctuation_never_errors_nor_loses_every_result(service, text: str):
    result = service.search(SearchRequest(text=text, facets=False))
    cleaned = " ".join(re.sub(r"[^\w\s]", " ", text).split())
    if INTENDED.search(text) or not cleaned:
        return
    if service.search(SearchRequest(text=cleaned, facets=False)).total:
        assert result.total, (text, cleaned, querylang.read(text))


@pytest.mark.parametrize("text", ["GOVER-NOR", "?GOVER-NOR ", "gover-nor?"])
def test_typed_queries_correct_a_joined_word_and_relax_it(service, text: str):
    """A misspelt part of a joined word is corrected; the corrected phrase, found nowhere, is
    relaxed to its words (found by Hypothesis: the same words typed apart found articles)."""
    assert service.search(SearchRequest(text="GOVER NOR", facets=False)).total
    assert service.search(SearchRequest(text=text, facets=False)).total


def test_typed_queries_odd_syntax_is_read_and_searched_without_error(service):
    """Whoosh's parser accepts every reading (no fallback note), and the search runs: phrases
    of a facet field (which has no positions) are read as its values."""
    texts = [
        'a"b"c(d)e',
        "x:y:z",
        "-(",
        "--",
        "OR AND NOT",
        "(((",
        "title:",
        "date:[2020 TO",
        "[1 TO 2]",
        "«»“”„",
        "?",
        "*",
        "~",
        "^",
        "wom?n*~^2",
        "\\",
        "'",
        "q'a'b",
        'domain:"forbes com"',
        "domain:(new-york OR forbes.com)",
        "-type:(live-blog)",
        'date:("2020-05")',
        "date:2020-05 york",
        "quality:[x TO y]",
    ]
    for text in texts:
        reading = querylang.read(text)
        assert not any("searched its words only" in note for note in reading.notes), text
        service.search(SearchRequest(text=text))
    assert service.search(SearchRequest(text="date:(2020-05) york")).total == 1
    with pytest.raises(QueryError, match="words near each other"):  # bounded work: refused
        service.search(SearchRequest(text='"what death"~3 york'))


def test_typed_queries_strict_check_names_what_to_fix():
    with pytest.raises(QueryError, match="unknown field 'http'"):
        querylang.check_syntax("http://x")


def test_typed_queries_bench_compares_typed_and_cleaned_title_windows(store: IndexStore, capsys):
    titles = {path: title for path, (title, *_) in ARTICLES.items()}
    items = typed_queries.known_items(titles, count=50, seed=1, windows=2)
    assert items == typed_queries.known_items(titles, count=50, seed=1, windows=2)
    assert len(items) == 2 * len(ARTICLES)  # every title has 3 words or more
    for path, typed, cleaned in items:
        assert typed.rstrip("?").lower() in titles[path].lower()
        assert not re.search(r"[^\w\s]", cleaned)
    assert typed_queries.main([store.read_meta().content_dir, "--queries", "50"]) == 0
    typed_line, cleaned_line = capsys.readouterr().out.splitlines()[1:3]
    assert typed_line.startswith("typed    MRR@10 ") and typed_line.endswith("errors 0")
    assert cleaned_line.startswith("cleaned  MRR@10 ")


def _plain_texts() -> list[str]:
    """The bench's query texts (plain words, phrases, mixed case) and plain words that are
    stop words, operators, digits, accented letters or repeated."""
    texts = {each.text for queries in make_queries(150, 3).values() for each in queries}
    return sorted(
        texts
        | {
            "the analysts",
            "analysts the",
            "AND analysts",
            "analysts OR regulators",
            "to be or not to be",
            "café naïve ÉCOLE",
            "2022 2023",
            "analysts analysts",
            "Amazon amazon",
            "and or",
            "ANDNOT",
        }
    )


@pytest.mark.parametrize("text", _plain_texts())
def test_parse_query_of_plain_words_is_whooshs_parse(text: str):
    """Plain words are parsed a word at a time without Whoosh's parser: its very answer, each
    word's terms noted with the word as typed (what a refusal names)."""
    reading = querylang.read(text).query
    if not reading:
        return
    parsed = querylang._parsed(reading, False)
    whooshs = querylang._PARSER.parse(reading)
    assert parsed == whooshs
    assert repr(parsed) == repr(whooshs)
    for leaf, whoosh_leaf in zip(parsed.leaves(), whooshs.leaves(), strict=True):
        if type(whoosh_leaf) is query.Term:
            assert (
                getattr(leaf, "typed", None) == reading[whoosh_leaf.startchar : whoosh_leaf.endchar]
            )


@pytest.mark.parametrize(
    "text", [*_plain_texts(), "TO be", "ANDMAYBE cloud", "AI IBM", "the", "x_y z", "a  b", " cloud"]
)
def test_read_of_plain_words_is_the_scanned_reading(text: str):
    """Plain words are read without the scan a character at a time: its very reading (stop
    words, operators, words in capitals alone, parts), for the scanned text alike."""
    assert typedtext.read.__wrapped__(text) == typedtext._scanned(text)


def test_read_of_plain_words_does_not_scan_them(monkeypatch):
    monkeypatch.setattr(typedtext, "_scanned", lambda text: pytest.fail(text))
    reading = typedtext.read.__wrapped__("Cloud analysts the 2022")
    assert reading.query == "Cloud analysts 2022" and reading.parts is not None


def test_parse_query_of_plain_words_does_not_run_whooshs_parser(monkeypatch):
    monkeypatch.setattr(querylang._PARSER, "parse", lambda text: pytest.fail(text))
    querylang._parsed.cache_clear()
    try:
        assert querylang.parse_query("cloud analysts regulators") is not None
    finally:
        querylang._parsed.cache_clear()


@pytest.mark.parametrize(
    "words",
    [
        ["cloud", "analysts"],
        ["cloud", "analysts", "cloud"],
        ["cloud", "cloud"],
        ["the", "analysts"],
        ["cloud", "2022"],
        ["analysts", "regulators", "investors"],
    ],
)
def test_all_of_words_is_their_and_as_whoosh_normalizes_it(words: list[str]):
    """Words' Ors put together without Whoosh's normalize are its answer, and keep the very
    terms of each word (with the word as typed)."""
    parts = [querylang._parsed(word, False) for word in words]
    together = querylang._all_of(parts)
    normalized = query.And(parts).normalize()
    assert together == normalized
    assert repr(together) == repr(normalized)
    assert [getattr(leaf, "typed", None) for leaf in together.leaves()] == [
        getattr(leaf, "typed", None) for leaf in normalized.leaves()
    ]
