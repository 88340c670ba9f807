"""Article files into records: the seed, real-shaped articles, and every way a file can be bad."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from searchidx.errors import ArticleError
from searchidx.parsing import (
    MAX_FILE_BYTES,
    _load_yaml,
    _SafeLoader,
    parse_article,
    read_article,
)
from tests.conftest import ARTICLES_COUNT, read_seed, real_shaped_articles, write_article

GOOD = """
title: "A title"
publishedDateTime: 2022-06-24T14:08:00Z
"""


def test_read_article_parses_every_field_of_the_seed():
    article = read_seed()
    assert article.title.startswith("Microsoft Halts Sales of Emotion-Reading Tech")
    assert article.published_at == datetime(2022, 6, 24, 14, 8, tzinfo=UTC)
    assert article.provider.name == "ExtremeTech"
    assert article.provider.domain == "extremetech.com"
    assert article.topics == ("Computer Vision", "AI", "AI in Sales", "Microsoft AI")
    assert (article.category, article.type, article.quality, article.heat) == (
        "news",
        "article",
        69,
        -1,
    )
    assert article.published is False
    assert article.url.startswith("https://www.extremetech.com/internet/337431")
    assert article.image is not None and article.image.width == 640
    assert len(article.related) == 5
    first = article.related[0]
    assert first.provider.name == "Forbes" and first.quality == 106
    assert first.published_at == datetime(2022, 6, 24, 17, 0, tzinfo=UTC)
    assert first.url.startswith("https://www.forbes.com/")


def test_read_article_drops_secured_everywhere():
    article = read_seed()
    assert "secured" not in article.to_dict()
    assert "83pOGiRlIfRn" not in repr(article)
    assert "83pOGiRlIfRn" not in str(article.to_dict())


def test_read_article_reads_every_real_shaped_article():
    articles = real_shaped_articles()
    assert len(articles) == ARTICLES_COUNT + 1
    assert all(article.title and article.provider.name for article in articles)
    assert sum(1 for article in articles if not article.web_url) == 3  # videos, a blog post
    assert all(article.url for article in articles)
    by_path = {article.path: article for article in articles}
    video = by_path["2019-10-14-contoso-forms-wave-overview.md"]
    assert video.type == "video" and video.url.startswith("https://video.tailspin.example/")
    assert video.provider.domain == "tailspin.example" and video.image is not None
    news = by_path["2019-09-02-contoso-forms-portals-preview.md"]
    assert [related.provider.name for related in news.related] == [
        "Fabrikam Weekly",
        "Wide World News",
    ]
    assert news.related[0].quality == 88 and news.body.startswith("Customer **portals**")
    assert by_path["2020-06-01-northwind-offline-forms.md"].published_at == datetime(
        2020, 6, 1, 3, 10, tzinfo=UTC
    )
    assert all("secured" not in str(article.to_dict()) for article in articles)


def test_parse_article_defaults_optional_fields():
    article = parse_article(f"---\n{GOOD}---\nBody *text*.\n", "a.md")
    assert article.body == "Body *text*."
    assert (article.quality, article.heat, article.published, article.type) == (
        None,
        None,
        True,
        "article",
    )
    assert article.topics == () and article.related == () and article.image is None


def test_article_round_trips_through_its_dict():
    for article in real_shaped_articles():
        assert type(article).from_dict(article.to_dict()) == article


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        ("2022-06-24", datetime(2022, 6, 24, tzinfo=UTC)),
        ("2022-06-24T16:08:00+02:00", datetime(2022, 6, 24, 14, 8, tzinfo=UTC)),
        ('"2022-06-24 14:08"', datetime(2022, 6, 24, 14, 8, tzinfo=UTC)),
    ],
)
def test_parse_article_normalises_dates_to_utc(published, expected):
    text = f"---\ntitle: t\npublishedDateTime: {published}\n---\n"
    assert parse_article(text, "a.md").published_at == expected


BROKEN = {
    "no front matter": ("just text\n", 1, "no front matter"),
    "unclosed": ("---\ntitle: t\n", 1, "not closed"),
    "invalid yaml": ("---\ntitle: t\ntopics: [a, b\nquality: 3\n---\n", 4, "invalid YAML"),
    "control character": ("---\ntitle: t\x07\n---\n", 2, "character YAML does not allow"),
    "not a mapping": ("---\n- a\n- b\n---\n", 2, "not a mapping"),
    "empty front matter": ("---\n---\nbody\n", 2, "empty"),
    "no title": ("---\npublishedDateTime: 2022-01-01\n---\n", None, "title: missing"),
    "bad date": (
        "---\ntitle: t\npublishedDateTime: next tuesday\n---\n",
        3,
        "publishedDateTime: 'next tuesday' is not a date",
    ),
    "no date": ("---\ntitle: t\n---\n", None, "publishedDateTime: missing"),
    "quality not a number": (
        "---\ntitle: t\npublishedDateTime: 2022-01-01\nquality: high\n---\n",
        4,
        "quality: expected a whole number",
    ),
    "provider not a mapping": (
        "---\ntitle: t\npublishedDateTime: 2022-01-01\nprovider: [x]\n---\n",
        4,
        "provider: expected a mapping",
    ),
    "alias bomb": (
        "---\ntitle: t\npublishedDateTime: 2022-01-01\n"
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n---\n",
        None,
        "expands to more than",
    ),
    "deep nesting": (
        "---\ntitle: t\npublishedDateTime: 2022-01-01\nx: " + "[" * 5000 + "]" * 5000 + "\n---\n",
        None,
        "invalid YAML",
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_parse_article_reports_broken_files_with_line_and_reason(case):
    text, line, reason = BROKEN[case]
    with pytest.raises(ArticleError) as raised:
        parse_article(text, "bad.md")
    problem = raised.value.problem
    assert problem.path == "bad.md"
    assert reason in problem.reason
    if line is not None:
        assert problem.line == line


def test_read_article_refuses_files_that_are_not_utf8(tmp_path: Path):
    (tmp_path / "latin1.md").write_bytes(b"---\ntitle: caf\xe9\n---\n")
    with pytest.raises(ArticleError, match=r"latin1\.md:2: not UTF-8"):
        read_article(tmp_path, "latin1.md")


def test_read_article_refuses_binary_files(tmp_path: Path):
    (tmp_path / "binary.md").write_bytes(b"---\x00\x01\x02")
    with pytest.raises(ArticleError, match="binary file"):
        read_article(tmp_path, "binary.md")


def test_read_article_refuses_files_over_the_size_limit(tmp_path: Path):
    write_article(tmp_path, "huge.md", GOOD, body="x" * MAX_FILE_BYTES)
    with pytest.raises(ArticleError, match="over the 1,048,576-byte limit"):
        read_article(tmp_path, "huge.md")


def test_read_article_reports_a_missing_file(tmp_path: Path):
    with pytest.raises(ArticleError, match="cannot read the file"):
        read_article(tmp_path, "gone.md")


YAML_DOCUMENTS = [
    GOOD,
    "",
    "# only a comment",
    "title: plain\nquality: 41\nheat: -1\npublished: true\nratio: 1.5\nnone: ~\nwhen: 2022-01-02",
    "title: 'quoted: true'\nother: \"41\"\nyes: yes\noff: off\nempty:\nnull: null",
    "list: [a, 1, true, 2022-06-24T14:08:00Z, [nested, {map: 1}]]\n'1': one\n1: int key",
    "base: &base {name: x, domain: y}\nprovider: *base\nagain: *base",
    "base: &b {a: 1}\nmerged:\n  <<: *b\n  c: 2",
    "=: value key\nplain: 1",
    "tags: !!set {a, b}\nordered: !!omap [{a: 1}, {b: 2}]\nbin: !!binary aGVsbG8=",
    "strange: !!str 41\nnumber: !!int '42'\nfloaty: !!float '1'",
    "? [a, b]\n: collection key",
    "loop: &loop [1, *loop]",
    "bad: 2022-02-30",
    "undefined: !custom value",
    "- a\n- list",
    "text",
    "a: 1\na: 2",
    "deep: " + "[" * 60 + "]" * 60,
    # Null, bool, int and float scalars are built once per text: the same text under other
    # tags, in other spellings and again, and one that cannot be built (too many digits).
    "a: 1\nb: !!float 1\nc: !!str 1\nd: '1'\ne: 1\nf: [1, !!float 1, 1.0, +1, 0x1, 0o1, 1_0]",
    "a: .nan\nb: -.inf\nc: ~\nd: NULL\ne: On\nf: TRUE\ng: [~, null, On, 1, 1.5e3, .NaN]",
    "big: " + "9" * 5000,
]


@pytest.mark.parametrize("text", YAML_DOCUMENTS)
def test_load_yaml_builds_what_pyyamls_safe_loader_builds(text: str):
    def loaded(load: Callable[[str], Any]) -> Any:
        try:
            return ("value", repr(load(text)))
        except (yaml.YAMLError, ValueError) as error:
            return ("error", type(error).__name__, str(error))

    expected = loaded(lambda text: yaml.load(text, Loader=_SafeLoader))
    assert loaded(_load_yaml) == expected


def test_load_yaml_shares_an_aliased_value_as_pyyaml_does():
    loaded = _load_yaml("base: &base {name: x}\nprovider: *base\nagain: *base")
    assert loaded["provider"] is loaded["base"] is loaded["again"]
