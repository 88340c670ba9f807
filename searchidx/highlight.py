"""A hit's title and excerpt with the query's matches marked, as data (:mod:`searchidx.marks`).

Whoosh's fragmenters and scorer choose the excerpt; the marks are what its ``HtmlFormatter``
would write (:func:`_formatted`), without the HTML. Text is cut to :data:`MAX_HIGHLIGHT_CHARS`
before analysis so a huge body costs bounded time.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from whoosh import highlight

from searchidx.articles import Article
from searchidx.marks import Highlighted, Mark, highlighted
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
#: What is shown between two snippets of a body.
BETWEEN_FRAGMENTS = " … "

MAX_HIGHLIGHT_CHARS = 20_000
EXCERPT_CHARS = 320


def _marked(
    text: str, terms: frozenset[str], fragmenter: highlight.Fragmenter, top: int
) -> Highlighted:
    if not terms or not text:
        return ()
    text = text[:MAX_HIGHLIGHT_CHARS]
    tokens: Iterable[Any]
    if _CHAIN is None:
        analysed = ANALYZER(text, chars=True, mode="query", removestops=False)
        tokens = highlight.set_matched_filter(analysed, terms)
    else:
        words = _tokens(text) if len(text) <= SHORT_TEXT else _long_tokens(text)
        if type(fragmenter) is highlight.WholeFragmenter:
            return _whole(text, words, terms, fragmenter.charlimit)
        tokens = (_Token(start, end, word, word in terms) for start, end, word in words)
    # Whoosh's own fragmenting and scoring, as ``highlight.highlight`` runs them.
    fragments = fragmenter.fragment_tokens(text, tokens)
    best = highlight.top_fragments(fragments, top, highlight.BasicFragmentScorer(), highlight.FIRST)
    return _formatted(best)


def _formatted(fragments: Iterable[highlight.Fragment]) -> Highlighted:
    """What Whoosh's ``HtmlFormatter(between=" … ")`` writes of ``fragments``, as data: the
    same matches, the same term numbers (a word's in order of first appearance, five at
    most), the same text between (tests/test_search_fastpaths.py compares the two)."""
    pieces: list[str | Mark] = []
    numbers: dict[str, int] = {}
    for count, fragment in enumerate(fragments):
        if count:
            pieces.append(BETWEEN_FRAGMENTS)
        text, position = fragment.text, fragment.startchar
        # Longest first among matches at the same place, as Whoosh's Formatter sorts them.
        for token in sorted(fragment.matches, key=lambda t: (t.startchar, t.startchar - t.endchar)):
            if token.startchar is None or token.startchar < position:
                continue
            word = text[token.startchar : token.endchar]
            pieces += [text[position : token.startchar], _mark(word, numbers)]
            position = token.endchar
        pieces.append(text[position : fragment.endchar])
    return highlighted(pieces)


def _mark(word: str, numbers: dict[str, int]) -> Mark:
    """``word`` marked with its term number: the same word, the same number."""
    return Mark(word, numbers.setdefault(word, len(numbers) % _TERM_CLASSES))


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
) -> Highlighted:
    """:func:`_marked` with a WholeFragmenter, written out: the same marks without a Token,
    Fragment or sort per call."""
    # Words end further and further on: the fragmenter's stop at the first word past the
    # limit is every word within it.
    spans = [
        (start, end)
        for start, end, word in tokens
        if word in terms and not (charlimit and end > charlimit)
    ]
    if not spans:
        return ()  # no match: Whoosh's fragment scores 0, below its minimum of 1
    pieces: list[str | Mark] = []
    position = 0
    numbers: dict[str, int] = {}
    for start, end in spans:
        pieces += [text[position:start], _mark(text[start:end], numbers)]
        position = end
    pieces.append(text[position:])
    return highlighted(pieces)


def marked_title(article: Article, terms: frozenset[str]) -> Highlighted:
    return _marked(article.title, terms, highlight.WholeFragmenter(), 1) or highlighted(
        [article.title]
    )


def marked_excerpt(article: Article, terms: frozenset[str]) -> Highlighted:
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
    return highlighted([cut])


def hit(
    article: Article, terms: frozenset[str], score: float | None, explain: Explanation | None
) -> Hit:
    """``article`` as a result shows it, ``terms`` marked in its title and excerpt (the same
    for both engines and for similar articles). The hit keeps the article without its body:
    nothing shows the body but its snippet, made here, and a cached result would hold it
    (up to 4,000 characters a hit, 100 hits a page)."""
    return Hit(
        article=article.without_body(),
        score=score,
        marked_title=marked_title(article, terms),
        marked_excerpt=marked_excerpt(article, terms),
        explain=explain,
    )
