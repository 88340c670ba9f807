"""Article files into records: the seed, real-shaped articles, and every way a file can be bad."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

import pytest
import yaml

from searchidx import block_yaml
from searchidx.articles import Article, Image, RelatedArticle
from searchidx.errors import ArticleError
from searchidx.parsing import (
    _DELIMITER,
    MAX_FILE_BYTES,
    MAX_FRONT_MATTER_VALUES,
    _closing_line,
    _load_yaml,
    _SafeLoader,
    load_front_matter,
    parse_article,
    read_article,
    read_bounded,
    split_front_matter,
)
from searchidx.sample import SEED_ARTICLE
from tests.conftest import (
    ARTICLES_COUNT,
    ARTICLES_DIR,
    read_seed,
    real_shaped_articles,
    write_article,
)

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


def test_article_round_trips_through_its_dict_and_its_row():
    for article in real_shaped_articles():
        assert type(article).from_dict(article.to_dict()) == article
        assert type(article).from_row(json.loads(json.dumps(article.to_row()))) == article


@pytest.mark.parametrize("form", ["dict", "row"])
def test_article_from_dict_or_row_builds_frozen_records_of_their_own_types(form: str):
    article = next(a for a in real_shaped_articles() if a.related and a.images)
    if form == "dict":
        built = Article.from_dict(article.to_dict())
    else:
        built = Article.from_row(article.to_row())
    parts: list[Any] = [built, built.images[0], built.related[0]]
    assert [type(part) for part in parts] == [Article, Image, RelatedArticle]
    assert hash(built) == hash(article) and repr(built) == repr(article)
    for part in parts:
        with pytest.raises(dataclasses.FrozenInstanceError):
            part.title = "changed"


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


def test_closing_line_is_the_first_the_delimiter_expression_finds():
    rng = Random(3)
    pieces = ["---", "--- ", "---\t", "---\r", "----", "-- -", "a", "\n", "\r\n", "x---", "---x"]
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        expected = _DELIMITER.search(text)
        found = _closing_line(text)
        assert (found and found.span()) == (expected and expected.span()), repr(text)


def test_read_bounded_follows_links_only_while_they_stay_inside(tmp_path: Path):
    content, outside = tmp_path / "content", tmp_path / "outside"
    write_article(content / "real", "in.md", GOOD)
    write_article(outside, "secret.md", GOOD)
    (content / "alias").symlink_to(content / "real", target_is_directory=True)
    (content / "real" / "link.md").symlink_to(content / "real" / "in.md")
    (content / "out").symlink_to(outside, target_is_directory=True)
    (content / "real" / "out.md").symlink_to(outside / "secret.md")
    expected = (content / "real" / "in.md").read_bytes()
    for inside in ("real/in.md", "alias/in.md", "real/link.md", "alias/link.md"):
        assert read_bounded(content, inside)[0] == expected
    for leading_out in (
        "out/secret.md",
        "real/out.md",
        "alias/out.md",
        "real/../../outside/secret.md",
    ):
        with pytest.raises(ArticleError, match="leads out of the content folder"):
            read_bounded(content, leading_out)


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


#: Front matters of the shape :mod:`searchidx.block_yaml` reads, each close to one it must not.
COMMON_SHAPES = [
    GOOD,
    "title: plain words\nquality: 41\nheat: -1\npublished: yes\nratio: 1.5\nwhen: 2022-01-02",
    'title: "quoted: # not a comment"\nexcerpt: \'single "quotes"\'\nempty: ""\nnone:',
    'title: "escaped \\"quotes\\", a back\\\\slash and a \\/ slash"',
    "true: key\nnull: key\nOn: key\nNo: key\nNULL: key\nk: 0x1f\nl: 1_000\nm: 0o17\nn: 1e3",
    "url: https://example.com/a:b/c+d\nwhen: 2022-06-24T14:08:00Z\nzone: 2022-06-24 14:08:00 +02",
    "provider:\n  name: x\n  domain: y\ntopics:\n  - a\n  - 'b'\n  - 3\nafter: 1",
    "images:\n  - url: a\n    width: 2\n  -   url: b\n      height: 3\n  - plain\n  -\n  - c",
    "nested:\n    deeper:\n        - no\n        - 'x'\n",
    "list:\n  -\n    key: value\n  -\n  - x\nend:",
    "a: 1\na: 2\n\n   \nb:   spaced   out   \nc: 'x'   ",
    'title: Ünïcode wörds 日本語\nother: "✓ € — \u2018quotes\u2019"',
]

#: Shapes it leaves to PyYAML, each a value, an error or a difference it would miss.
UNUSUAL_SHAPES = [
    "title: a # comment",
    "# comment\ntitle: a",
    "title: a\n  continued",
    'title: "two\n  lines"',
    "title: 'it''s'",
    'title: "tab\\there"',
    "title: \ta",
    "title: a\r\nother: b",
    "title: a\x85other",
    "title: \ufeffa",
    "title: [a, b]",
    "title: {a: 1}",
    "title: &a x\nother: *a",
    "title: !!str 1",
    "title: |\n  block",
    "title: >\n  folded",
    "title: ~",
    "title: .5",
    "when: 2022-02-30T14:08:00Z",  # no such day: PyYAML says so
    "title: a: b",
    "title:a",
    "title : a",
    "- a\n- b",
    "  title: indented",
    "topics:\n- indentless",
    "<<: {a: 1}",
    "k" * 1100 + ": long key",
    "title: a\n...\n",
    "%YAML 1.1\n---\ntitle: a",
    "list:\n  - a\n  key: b",
    "map:\n    a: 1\n  b: 2",
    "plain",
    "title: - a",
    "list:\n  - - nested\n  - [x]",
    "title: 'unclosed",
]


def _pyyaml(text: str) -> Any:
    return yaml.load(text, Loader=_SafeLoader)


@pytest.mark.parametrize("text", COMMON_SHAPES)
def test_block_yaml_reads_the_common_shape_as_pyyaml_does(text: str):
    read = block_yaml.load(text)
    assert read is not None
    assert repr(read) == repr(_pyyaml(text))


def test_block_yaml_reads_lines_read_before_as_pyyaml_does():
    for text in COMMON_SHAPES:
        block_yaml.load(text)  # its short lines kept, read again from there below
    for text in COMMON_SHAPES:
        assert repr(block_yaml.load(text)) == repr(_pyyaml(text))
    for text in UNUSUAL_SHAPES:
        assert block_yaml.load(text) is None


def test_load_front_matter_bounds_values_read_a_line_at_a_time_and_counts_others():
    most = block_yaml.MOST_LINES
    assert 1 + 3 * most <= MAX_FRONT_MATTER_VALUES  # what block_yaml reads is not counted
    longest = "items:\n" + "  - a: 1\n" * (most - 2)  # three values a line
    fields = block_yaml.load(longest)
    assert fields is not None and len(fields["items"]) == most - 2
    load_front_matter(longest, "longest.md")
    too_many = "items:\n" + "  - a: 1\n" * (MAX_FRONT_MATTER_VALUES // 3)
    assert block_yaml.load(too_many) is None  # left to PyYAML, and counted
    with pytest.raises(ArticleError, match="expands to more than"):
        load_front_matter(too_many, "too-many.md")


@pytest.mark.parametrize("text", UNUSUAL_SHAPES)
def test_block_yaml_leaves_other_shapes_to_pyyaml(text: str):
    assert block_yaml.load(text) is None


def test_block_yaml_reads_the_seed_and_real_shaped_articles_as_pyyaml_does():
    for path in [SEED_ARTICLE, *sorted(ARTICLES_DIR.rglob("*.*"))]:
        front_matter, _ = split_front_matter(path.read_text(encoding="utf-8"), path.name)
        read = block_yaml.load(front_matter)
        assert read is not None, path
        assert repr(read) == repr(_pyyaml(front_matter)), path


#: Keys and scalars that random documents are made of: (common ones, unusual ones).
_KEYS = (["title", "a", "yes", "null", "On", "_k", "k1"], ["'q'", "<<", "a b", "1", "é", "a:"])
_SCALARS = (
    [
        *["plain", "two words", "a  b", "-1", "1.5", "0x1A", "1_000", "true", "No", "null"],
        *["2022-06-24", "2022-06-24T14:08:00Z", "2022-02-30", "a:b", "é", "12:30:00", "v "],
        *['"dq"', '"d \\" q"', '"\\\\"', "'sq'", "''", ".inf", "9" * 30, "+1", "1e3", "0b11"],
        *["http://x.y/z", "1.0e+3", "0o7", "-x", "x:", "a#b", "-1.5e-3", "1__0", "0.", '""'],
    ],
    [
        *["~", '"\\n"', '"unclosed', "'s''q'", "[1]", "{a: 1}", "&a v", "*a", "!!int 3"],
        *["a #c", "#c", "-", "- x", "'", '"', "a: b", "? x", "|", ">", "%", "\t", ""],
    ],
)


def _piece(random: Random, pieces: tuple[list[str], list[str]]) -> str:
    return random.choice(pieces[random.random() < 0.03])


def _random_block(random: Random, indent: int, lead: str, depth: int) -> list[str]:
    """A mapping or sequence at ``indent``, its first line after ``lead`` (an item's "- ")."""
    sequence = depth > 0 and random.random() < 0.4
    lines = []
    for number in range(random.randint(1, 4)):
        start = lead if number == 0 else " " * indent
        if random.random() < 0.03:  # an indent off by one
            start = " " + start
        head = "- " if sequence else _piece(random, _KEYS) + ":"
        inner = indent + random.choice([2, 2, 4])
        if depth < 3 and random.random() < 0.3:
            if sequence and random.random() < 0.5:  # "- key: ..." then keys below it
                lines += _random_block(random, indent + 2, start + "- ", depth + 1)
            else:
                lines.append(start + head.rstrip())
                lines += _random_block(random, inner, " " * inner, depth + 1)
        else:
            lines.append(start + head + (" " if not sequence else "") + _piece(random, _SCALARS))
    return lines


def _random_document(random: Random) -> str:
    lines = _random_block(random, 0, "", 0)
    if random.random() < 0.05:
        lines.insert(random.randrange(len(lines) + 1), random.choice(["", "  ", "# c", "..."]))
    return "\n".join(lines)


def test_block_yaml_reads_random_documents_as_pyyaml_does_or_leaves_them():
    random = Random(12)
    read = 0
    for _ in range(10_000):
        text = _random_document(random)
        fast = block_yaml.load(text)
        if fast is None:
            continue
        read += 1
        assert repr(fast) == repr(_pyyaml(text)), text
    assert read > 1000  # the test reads enough documents to find a difference
