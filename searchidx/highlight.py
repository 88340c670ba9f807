"""Highlighted title and excerpt HTML for a hit: matches in ``<mark>``, everything else escaped.

Built on Whoosh's highlighter with a fresh ``HtmlFormatter`` per call (it keeps state). Text is
cut to :data:`MAX_HIGHLIGHT_CHARS` before analysis so a huge body costs bounded time.
"""

from __future__ import annotations

import html

from whoosh import highlight

from searchidx.articles import Article
from searchidx.schema import ANALYZER, _plain_chain

#: The analyzer's settings when it is the plain stemming chain (then titles and short
#: excerpts are highlighted without Whoosh's token machinery; see :func:`_whole`).
_CHAIN = _plain_chain(ANALYZER)
#: HtmlFormatter's default ``maxclasses``: term classes term0..term4, then again from term0.
_TERM_CLASSES = 5

MAX_HIGHLIGHT_CHARS = 20_000
EXCERPT_CHARS = 320


def _formatter() -> highlight.HtmlFormatter:
    return highlight.HtmlFormatter(tagname="mark", classname="match", between=" … ")


def _marked(text: str, terms: frozenset[str], fragmenter: highlight.Fragmenter, top: int) -> str:
    if not terms or not text:
        return ""
    text = text[:MAX_HIGHLIGHT_CHARS]
    if type(fragmenter) is highlight.WholeFragmenter and _CHAIN is not None:
        return _whole(text, terms, fragmenter.charlimit)
    return highlight.highlight(text, terms, ANALYZER, fragmenter, _formatter(), top=top)


def _whole(text: str, terms: frozenset[str], charlimit: int | None) -> str:
    """``highlight.highlight`` with a WholeFragmenter and :func:`_formatter`, in one pass.

    Whoosh builds a Token per word through four generators and a Fragment; for the short
    titles and excerpts of a result page this is the same in a tenth of the time: the same
    tokens (stop words kept, not stemmed), the same matches and the same HTML (term classes
    numbered in order of first appearance, five at most). tests/test_search_fastpaths.py
    compares the two.
    """
    expression, stops, minsize, maxsize, _, ignore, stem = _CHAIN
    spans = []
    for match in expression.finditer(text):
        if charlimit and match.end() > charlimit:
            break
        word = match.group(0).lower()
        stopped = len(word) < minsize or (maxsize is not None and len(word) > maxsize)
        if not stopped and word not in stops and word not in ignore:
            word = stem(word)
        if word in terms:
            spans.append(match.span())
    if not spans:
        return ""  # no match: Whoosh's fragment scores 0, below its minimum of 1
    output, position, seen = [], 0, {}
    for start, end in spans:
        if start > position:
            output.append(html.escape(text[position:start], quote=False))
        word = html.escape(text[start:end], quote=False)
        number = seen.setdefault(word, len(seen) % _TERM_CLASSES)
        output.append(f'<mark class="match term{number}">{word}</mark>')
        position = end
    output.append(html.escape(text[position:], quote=False))
    return "".join(output)


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
