"""Highlighted text and its two renderings: HTML (the JSON, the page, the feed) and a terminal's."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import click
from jinja2 import Environment
from markupsafe import Markup

from searchidx.articles import Article
from searchidx.marks import Mark, highlighted, to_html
from searchidx.result import Explanation, Hit
from searchidx.terminal import marked_text

HOSTILE = (
    '<script>alert("x")</script> & ',
    Mark("<img src=x onerror='1'>", 0),
    " AT&amp;T ",
    Mark("Oracle", 1),
    " ",
    Mark("<b>", None),
)


def test_to_html_escapes_hostile_text_and_marks_the_terms():
    assert to_html(HOSTILE) == (
        '&lt;script&gt;alert("x")&lt;/script&gt; &amp; '
        "<mark class=\"match term0\">&lt;img src=x onerror='1'&gt;</mark>"
        ' AT&amp;amp;T <mark class="match term1">Oracle</mark> <mark>&lt;b&gt;</mark>'
    )


def test_to_html_escapes_quotes_only_when_asked():
    text = ('"quoted" ', Mark("it's"))
    assert to_html(text) == '"quoted" <mark>it\'s</mark>'
    assert to_html(text, quote=True) == "&quot;quoted&quot; <mark>it&#x27;s</mark>"


def test_to_html_is_markup_a_template_inserts_and_json_writes_as_it_is():
    rendered = to_html(HOSTILE)
    assert isinstance(rendered, Markup)
    page = Environment(autoescape=True).from_string("<h2>{{ title }}</h2>").render(title=rendered)
    assert page == f"<h2>{rendered}</h2>" and "<script>" not in page
    assert json.dumps({"title_html": rendered}) == json.dumps({"title_html": str(rendered)})


def test_to_html_of_nothing_is_empty():
    assert to_html(()) == "" and to_html(highlighted([""])) == ""


def test_highlighted_drops_empty_runs_and_joins_plain_ones():
    pieces: list[str | Mark] = ["", "a ", "b", Mark("c", 0), "", " … ", "d", Mark("", 1), ""]
    assert highlighted(pieces) == ("a b", Mark("c", 0), " … d", Mark("", 1))


def test_marked_text_styles_the_marks_bold_yellow():
    styled = marked_text(("Did ", Mark("Oracle", 2), " & ", Mark("<b>")))
    bold_yellow = "\x1b[33m\x1b[1m{}\x1b[0m"
    assert styled == f"Did {bold_yellow.format('Oracle')} & {bold_yellow.format('<b>')}"


def test_marked_text_without_colour_is_the_text_as_written():
    shown = io.StringIO()
    click.echo(marked_text(HOSTILE), file=shown, color=False)
    written = "".join(piece if isinstance(piece, str) else piece.text for piece in HOSTILE)
    assert shown.getvalue() == written + "\n"
    assert "&amp;T" in written and "&lt;" not in shown.getvalue()  # never unescaped or escaped


def test_hit_made_is_the_hit_its_init_makes_and_renders_once():
    article = Article(path="a.md", title="T & U", published_at=datetime(2024, 1, 2, tzinfo=UTC))
    explain = Explanation(1.0, None, 0.5, 1.0, 2.0, None, 0.5)
    marked = (("T ", Mark("&", 0), " U"), ("plain",))
    made = Hit.made(article, *marked, 0.25, explain)
    assert made == Hit(article, *marked, score=0.25, explain=explain)
    assert made.to_dict() == Hit(article, *marked, score=0.25, explain=explain).to_dict()
    assert made.title_html is made.title_html == 'T <mark class="match term0">&amp;</mark> U'
