"""Highlighted title and excerpt HTML for a hit: matches in ``<mark>``, everything else escaped.

Built on Whoosh's highlighter with a fresh ``HtmlFormatter`` per call (it keeps state). Text is
cut to :data:`MAX_HIGHLIGHT_CHARS` before analysis so a huge body costs bounded time.
"""

from __future__ import annotations

import functools
import html

from whoosh import highlight

from searchidx.articles import Article
from searchidx.result import Explanation, Hit
from searchidx.schema import ANALYZER, _plain_chain, plain_words

#: The analyzer's settings when it is the plain stemming chain (then text is analysed in one
#: pass, see :func:`_analysed`, instead of by Whoosh's token machinery); else None.
_CHAIN = _plain_chain(ANALYZER)
#: Analysed texts kept per process (a result page shows the same few texts again and again):
#: up to SHORT_TEXT characters (titles, excerpts), about 10 KB each, and longer ones (body
#: snippets, up to MAX_HIGHLIGHT_CHARS: up to 0.4 MB each); some 50 MB in all at most.
SHORT_TEXT = 600
SHORT_TEXTS_CACHED = 2048
LONG_TEXTS_CACHED = 64
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
    if _CHAIN is None:
        return highlight.highlight(text, terms, ANALYZER, fragmenter, _formatter(), top=top)
    tokens = _tokens(text) if len(text) <= SHORT_TEXT else _long_tokens(text)
    if type(fragmenter) is highlight.WholeFragmenter:
        return _whole(text, tokens, terms, fragmenter.charlimit)
    # Whoosh's own fragmenting, scoring and formatting, on the analysed tokens kept.
    marked = (_Token(start, end, word, word in terms) for start, end, word in tokens)
    fragments = fragmenter.fragment_tokens(text, marked)
    best = highlight.top_fragments(fragments, top, highlight.BasicFragmentScorer(), highlight.FIRST)
    return _formatter()(text, best)


@functools.lru_cache(maxsize=SHORT_TEXTS_CACHED)
def _tokens(text: str) -> tuple[tuple[int, int, str], ...]:
    return _analysed(text)


@functools.lru_cache(maxsize=LONG_TEXTS_CACHED)
def _long_tokens(text: str) -> tuple[tuple[int, int, str], ...]:
    return _analysed(text)


def _analysed(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, term) of each word of ``text`` as ``highlight.highlight`` analyses it:
    stop words kept and not stemmed, the others stemmed. A result page shows the same few
    texts again and again, and their analysis was most of the highlighting time."""
    assert _CHAIN is not None  # only the plain chain is analysed here (see _marked)
    words = plain_words(_CHAIN, text)
    return tuple((match.start(), match.end(), word) for _, match, word, _ in words)


class _Token:
    """What Whoosh's fragmenters, scorer and formatter read of a token."""

    __slots__ = ("endchar", "matched", "startchar", "text")
    boost = 1.0

    def __init__(self, start: int, end: int, text: str, matched: bool) -> None:
        self.startchar, self.endchar, self.text, self.matched = start, end, text, matched

    def copy(self) -> _Token:
        return self  # never changed once made


def _whole(
    text: str, tokens: tuple[tuple[int, int, str], ...], terms: frozenset[str], charlimit: int
) -> str:
    """``highlight.highlight`` with a WholeFragmenter and :func:`_formatter`, written out: the
    same matches and the same HTML (term classes numbered in order of first appearance, five
    at most), without a Token, Fragment or formatter per call. tests/test_search_fastpaths.py
    compares the two."""
    # Words end further and further on: the fragmenter's stop at the first word past the
    # limit is every word within it.
    spans = [
        (start, end)
        for start, end, word in tokens
        if word in terms and not (charlimit and end > charlimit)
    ]
    if not spans:
        return ""  # no match: Whoosh's fragment scores 0, below its minimum of 1
    output: list[str] = []
    position = 0
    seen: dict[str, int] = {}
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


def hit(
    article: Article, terms: frozenset[str], score: float | None, explain: Explanation | None
) -> Hit:
    """``article`` as a result shows it, ``terms`` marked in its title and excerpt (the same
    for both engines and for similar articles)."""
    return Hit(
        path=article.path,
        title=article.title,
        url=article.url,
        provider=article.provider,
        published_at=article.published_at,
        quality=article.quality,
        topics=article.topics,
        category=article.category,
        type=article.type,
        published=article.published,
        image=article.image,
        related=article.related,
        score=score,
        title_html=title_html(article, terms),
        excerpt_html=excerpt_html(article, terms),
        explain=explain,
    )
