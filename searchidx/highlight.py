"""Highlighted title and excerpt HTML for a hit: matches in ``<mark>``, everything else escaped.

Built on Whoosh's highlighter with a fresh ``HtmlFormatter`` per call (it keeps state). Text is
cut to :data:`MAX_HIGHLIGHT_CHARS` before analysis so a huge body costs bounded time.
"""

from __future__ import annotations

import html

from whoosh import highlight

from searchidx.articles import Article
from searchidx.schema import ANALYZER

MAX_HIGHLIGHT_CHARS = 20_000
EXCERPT_CHARS = 320


def _formatter() -> highlight.HtmlFormatter:
    return highlight.HtmlFormatter(tagname="mark", classname="match", between=" … ")


def _marked(text: str, terms: frozenset[str], fragmenter: highlight.Fragmenter, top: int) -> str:
    if not terms or not text:
        return ""
    return highlight.highlight(
        text[:MAX_HIGHLIGHT_CHARS], terms, ANALYZER, fragmenter, _formatter(), top=top
    )


def title_html(article: Article, terms: frozenset[str]) -> str:
    return _marked(article.title, terms, highlight.WholeFragmenter(), 1) or html.escape(
        article.title, quote=False
    )


def excerpt_html(article: Article, terms: frozenset[str]) -> str:
    """The excerpt with matches marked; a body snippet when only the body matched."""
    excerpt = article.excerpt
    if len(excerpt) <= EXCERPT_CHARS:
        marked = _marked(excerpt, terms, highlight.WholeFragmenter(), 1)
    else:
        marked = _marked(excerpt, terms, highlight.ContextFragmenter(EXCERPT_CHARS, 80), 1)
    if marked:
        return marked
    body = _marked(article.body, terms, highlight.ContextFragmenter(EXCERPT_CHARS // 2, 60), 2)
    if body:
        return body
    text = excerpt or article.body
    cut = text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"
    return html.escape(cut, quote=False)
