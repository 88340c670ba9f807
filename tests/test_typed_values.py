"""Values of ``date:``, ``quality:`` and ``published:`` as typed: a full ISO time finds the
article published then, in any zone; a value the field cannot take is left out with a note
naming the value, the field and the forms that work, and the rest of the query is searched."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest

from searchidx import querylang
from searchidx.errors import QueryError
from searchidx.request import SearchRequest
from searchidx.service import SearchService
from tests.conftest import indexed

#: path -> (publishedDateTime, quality, published, title)
ARTICLES = {
    "a.md": ("2021-06-07T10:30:05Z", 80, "true", "Cloud deal"),
    "b.md": ("2021-06-07T23:30:00-02:00", 40, "false", "Cloud outage"),  # 06-08 01:30 UTC
    "c.md": ("2021-06-07T10:45:00Z", 90, "true", "Chip plant"),
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchService]:
    articles = [
        (
            path,
            f'title: "{title}"\npublishedDateTime: {written}\nquality: {quality}\n'
            f"published: {published}",
            "",
        )
        for path, (written, quality, published, title) in ARTICLES.items()
    ]
    store = indexed(tmp_path_factory.mktemp("valued"), articles)
    with closing(SearchService(store, results_cached=0)) as service:
        yield service


def _paths(service: SearchService, text: str) -> set[str]:
    return {hit.article.path for hit in service.search(SearchRequest(text=text)).hits}


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("date:2021-06-07T10:30:05Z", {"a.md"}),
        ("date:2021-06-07T10:30:05", {"a.md"}),  # no zone: UTC, as indexed
        ("date:2021-06-07T12:30:05+02:00", {"a.md"}),
        ("date:2021-06-07T10:30:05.000+00:00", {"a.md"}),  # as the JSON API shows it
        ("date:2021-06-07T23:30:00-02:00", {"b.md"}),
        ('date:"2021-06-07 10:45"', {"c.md"}),  # a whole minute
        ("date:2021-06-07T10", {"a.md", "c.md"}),  # a whole hour
        ("date:[2021-06-07T10:40Z TO 2021-06-08T01:30:00Z]", {"b.md", "c.md"}),
        ("cloud date:[TO 2021-06-07T23:00:00+00:00]", {"a.md"}),
    ],
)
def test_typed_values_full_iso_time_finds_the_article_published_then(
    service: SearchService, text: str, found: set[str]
):
    result = service.search(SearchRequest(text=text))
    assert {hit.article.path for hit in result.hits} == found and not result.notes


#: A query with a value its field cannot take, the value as the note names it, a form that works.
BAD_VALUES = [
    ("cloud date:garbage", "'garbage' is not a date", "date:2022-05-14T10:30:05Z"),
    ("cloud date:2021-13", "'2021-13' is not a date", "date:[2020 TO 2022-06]"),
    ("cloud -date:2021-13", "'2021-13' is not a date", "date:2022-05"),
    ("cloud date:[garbage TO 2021]", "'garbage' is not a date", "date:2022"),
    ("cloud date:[2020 TO 2021-06-07T10+05:30]", "'2021-06-07T10+05:30'", "(UTC)"),
    ("cloud quality:abc", "'abc' is not a quality", "quality:[80 TO 100]"),
    ("cloud quality:[x TO y]", "'x' is not a quality", "quality:80"),
    ('cloud quality:"9.5"', "'9.5' is not a quality", "a whole number"),
    ("cloud published:maybe", "'maybe' is not true or false", "published:false"),
    ("cloud date:(2021-06 OR garbage)", "'garbage' is not a date", "date:2022"),
    ("cloud quality:[80]", "'[80]' is not a quality", "quality:[80 TO 100]"),  # no TO
    ("cloud -date:[2021]", "'[2021]' is not a date", "date:[2020 TO 2022-06]"),
]


@pytest.mark.parametrize(("text", "value", "forms"), BAD_VALUES)
def test_typed_values_bad_value_is_left_out_with_a_note_the_rest_searched(
    service: SearchService, text: str, value: str, forms: str
):
    result = service.search(SearchRequest(text=text))
    assert {hit.article.path for hit in result.hits} == _paths(service, "cloud")
    (note,) = result.notes
    field = text.split()[1].lstrip("-").split(":")[0]
    assert value in note and f"{field}: takes" in note and forms in note, note


@pytest.mark.parametrize(("text", "value", "forms"), BAD_VALUES)
def test_typed_values_strict_check_rejects_a_value_its_field_cannot_take(
    text: str, value: str, forms: str
):
    with pytest.raises(QueryError) as refused:
        querylang.check_syntax(text)
    assert value in str(refused.value) and forms in str(refused.value)


def test_typed_values_flag_is_read_in_any_case(service: SearchService):
    assert _paths(service, "published:FALSE") == {"b.md"} == _paths(service, "published:false")
