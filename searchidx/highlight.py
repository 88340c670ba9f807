"""A hit's title and excerpt with the query's matches marked, as data (:mod:`searchidx.marks`).

Whoosh's fragmenters and scorer choose the excerpt; the marks are what its ``HtmlFormatter``
would write (:func:`_formatted`), without the HTML. Text is cut to :data:`MAX_HIGHLIGHT_CHARS`
before analysis so a huge body costs bounded time.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, cast

from whoosh import highlight

from searchidx.articles import Article
from searchidx.marks import Highlighted, Mark, highlighted
from searchidx.result import Explanation, Hit, MarkedArticle
from searchidx.schema import ANALYZER, _plain_chain, analysed

#: The analyzer's settings when it is the plain stemming chain (then text is analysed in one
#: pass, see :func:`_analysed`, instead of by Whoosh's token machinery); else None, as for a
#: word expression with groups of its own, which would split the text into more pieces.
_CHAIN = None if (_chain := _plain_chain(ANALYZER)) is None or _chain[0].groups else _chain
#: Analysed texts kept per process (a result page shows the same few texts again and again):
#: up to SHORT_TEXT characters (titles, excerpts), about 10 KB each, and longer ones (body
#: snippets, up to MAX_HIGHLIGHT_CHARS: up to 0.4 MB each); some 50 MB in all at most.
SHORT_TEXT = 600
SHORT_TEXTS_CACHED = 2048
LONG_TEXTS_CACHED = 64
#: Words as written kept with their terms (most pages repeat the same few thousand words);
#: forgotten all at once past this many, so text from anywhere cannot grow it without end.
WORDS_KEPT = 100_000
#: HtmlFormatter's default ``maxclasses``: term classes term0..term4, then again from term0.
_TERM_CLASSES = 5
#: What is shown between two snippets of a body.
BETWEEN_FRAGMENTS = " … "

MAX_HIGHLIGHT_CHARS = 20_000
EXCERPT_CHARS = 320


class _Analysis(NamedTuple):
    """A text's words as :func:`_analysed` reads them: where each starts and ends, its term,
    and the set of their terms."""

    starts: list[int]
    ends: list[int]
    words: list[str]
    terms: frozenset[str]


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
        analysis = _tokens(text) if len(text) <= SHORT_TEXT else _long_tokens(text)
        if terms.isdisjoint(analysis.terms):
            return ()  # no match: Whoosh's fragments would all score 0, below its minimum of 1
        if type(fragmenter) is highlight.WholeFragmenter:
            return _whole(text, analysis, terms, fragmenter.charlimit)
        if type(fragmenter) is highlight.ContextFragmenter:
            return _formatted(text, _context(analysis, terms, fragmenter, top))
        words = zip(analysis.starts, analysis.ends, analysis.words, strict=True)
        tokens = (_Token(start, end, word, word in terms) for start, end, word in words)
    # Whoosh's own fragmenting and scoring, as ``highlight.highlight`` runs them.
    fragments = fragmenter.fragment_tokens(text, tokens)
    best = highlight.top_fragments(fragments, top, highlight.BasicFragmentScorer(), highlight.FIRST)
    return _formatted(text, [_fragment_spans(fragment) for fragment in best])


#: A fragment to show: where it starts and ends, and its matches' (start, end) in order.
_Fragment = tuple[int, int, list[tuple[int, int]]]


def _fragment_spans(fragment: highlight.Fragment) -> _Fragment:
    """A Whoosh fragment's spans; longest first among matches at the same place, as Whoosh's
    Formatter sorts them."""
    matches = sorted(fragment.matches, key=lambda t: (t.startchar, t.startchar - t.endchar))
    spans = [(token.startchar, token.endchar) for token in matches]
    return fragment.startchar, fragment.endchar, spans


def _formatted(text: str, fragments: Iterable[_Fragment]) -> Highlighted:
    """What Whoosh's ``HtmlFormatter(between=" … ")`` writes of ``fragments``, as data: the
    same matches, the same term numbers (a word's in order of first appearance, five at
    most), the same text between (tests/test_search_fastpaths.py compares the two)."""
    pieces: list[str | Mark] = []
    numbers: dict[str, int] = {}
    for count, (position, endchar, spans) in enumerate(fragments):
        if count:
            pieces.append(BETWEEN_FRAGMENTS)
        for start, end in spans:
            if start is None or start < position:
                continue
            pieces += [text[position:start], _mark(text[start:end], numbers)]
            position = end
        pieces.append(text[position:endchar])
    return highlighted(pieces)


def _context(
    analysis: _Analysis, terms: frozenset[str], fragmenter: highlight.ContextFragmenter, top: int
) -> list[_Fragment]:
    """The fragments Whoosh's ``ContextFragmenter.fragment_tokens`` makes of the analysed
    words, the ``top`` of them by its ``BasicFragmentScorer`` (ties: the later, as its
    ``nlargest`` keeps them), in text order, as ``highlight.highlight`` picks them. Written
    out over the word lists: outside a fragment its loop only keeps the starts of the words
    within ``surround`` characters, so a run of unmatched words there is one step."""
    maxchars, surround, charlimit = fragmenter.maxchars, fragmenter.surround, fragmenter.charlimit
    starts, ends, words = analysis.starts, analysis.ends, analysis.words
    stop = bisect.bisect_right(ends, charlimit) if charlimit else len(ends)  # its break
    matched = iter(itertools.compress(range(stop), map(terms.__contains__, words[:stop])))
    upcoming = next(matched, stop)  # the next matched word at or after ``number``
    made: list[tuple[int | None, int, list[int]]] = []  # (first, end, matched word numbers)
    first: int | None = None
    firsts: list[int] = []
    countdown, currentlen, number = -1, 0, 0
    tks: list[int] = []
    while number < stop:
        if upcoming < number:
            upcoming = next(matched, stop)
        if countdown < 0 and upcoming > number:  # unmatched words outside a fragment
            threshold = ends[upcoming - 1] - surround
            kept = bisect.bisect_left(starts, threshold, number, upcoming)
            firsts = [start for start in firsts if start >= threshold] + starts[kept:upcoming]
            number = upcoming
            continue
        length = ends[number] - starts[number]
        if currentlen + length > maxchars:
            countdown = 0
        elif number == upcoming:
            countdown = surround
            if first is None:
                if firsts:
                    first = firsts[0]
                else:
                    first = starts[number]
                    countdown += surround
            tks.append(number)
        if countdown >= 0:
            currentlen += length
            countdown -= length
            if countdown <= 0:
                made.append((first, ends[number], tks))
                first, firsts, currentlen, tks = None, [], 0, []
        number += 1
    if tks:  # the end of the text, or the first word past the limit
        made.append((first, ends[min(stop, len(ends) - 1)], tks))
    scored = []
    for start, end, found in made:
        score = len(found) * (len({words[each] for each in found}) * 100 or 1)
        if score >= 1:  # Whoosh's minimum score
            scored.append((score, 0 if start is None else start, end, found))
    best = sorted(scored, reverse=True, key=lambda item: item[:2])[:top]
    best.sort(key=lambda item: item[1])
    return [(start, end, [(starts[k], ends[k]) for k in found]) for _, start, end, found in best]


def _mark(word: str, numbers: dict[str, int]) -> Mark:
    """``word`` marked with its term number: the same word, the same number."""
    return Mark(word, numbers.setdefault(word, len(numbers) % _TERM_CLASSES))


@functools.lru_cache(maxsize=SHORT_TEXTS_CACHED)
def _tokens(text: str) -> _Analysis:
    return _analysed(text)


@functools.lru_cache(maxsize=LONG_TEXTS_CACHED)
def _long_tokens(text: str) -> _Analysis:
    return _analysed(text)


#: The chain's words and the text between them, alternately (its expression in a group).
_SPLIT = None if _CHAIN is None else re.compile(f"({_CHAIN[0].pattern})", _CHAIN[0].flags)
#: A word as written -> its term (see :data:`WORDS_KEPT`).
_TERMS: dict[str, str] = {}


def _analysed(text: str) -> _Analysis:
    """(start, end, term) of each word of ``text`` as ``highlight.highlight`` analyses it:
    stop words kept and not stemmed, the others stemmed. A result page shows the same few
    texts again and again, and their analysis was most of the highlighting time: the words
    are split out in one call, and each written word is analysed once (:data:`_TERMS`)."""
    assert _CHAIN is not None and _SPLIT is not None  # only the plain chain (see _marked)
    pieces = _SPLIT.split(text)  # between, word, between, ..., word, between
    ends = list(itertools.accumulate(map(len, pieces)))
    written = pieces[1::2]
    terms = list(map(_TERMS.get, written))
    if None in terms:
        if len(_TERMS) > WORDS_KEPT:
            _TERMS.clear()
        for number, word in enumerate(written):
            if terms[number] is None:  # a word new here (maybe again: analysed once)
                term = _TERMS.get(word)
                if term is None:
                    term = _TERMS[word] = analysed(_CHAIN, word)[0]
                terms[number] = term
    found = cast(list[str], terms)
    return _Analysis(ends[0:-1:2], ends[1::2], found, frozenset(found))


class _Token:
    """What Whoosh's fragmenters, scorer and formatter read of a token."""

    __slots__ = ("endchar", "matched", "startchar", "text")
    boost = 1.0

    def __init__(self, start: int, end: int, text: str, matched: bool) -> None:
        self.startchar, self.endchar, self.text, self.matched = start, end, text, matched

    def copy(self) -> _Token:
        return self  # never changed once made


def _whole(text: str, analysis: _Analysis, terms: frozenset[str], charlimit: int) -> Highlighted:
    """:func:`_marked` with a WholeFragmenter, written out: the same marks without a Token,
    Fragment or sort per call."""
    # Words end further and further on: the fragmenter's stop at the first word past the
    # limit is every word within it.
    spans = [
        (start, end)
        for start, end, word in zip(analysis.starts, analysis.ends, analysis.words, strict=True)
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


#: A body, or how to read it: read only where the excerpt does not do.
Body = str | Callable[[], str]


def marked_excerpt(excerpt: str, body: Body, terms: frozenset[str]) -> Highlighted:
    """The excerpt with matches marked; a snippet of the ``body`` when only the body matched.
    The body is read only for a snippet (``terms`` the excerpt does not show) or when there is
    no excerpt: a page of hits without highlighting reads no body."""
    if len(excerpt) <= EXCERPT_CHARS:
        marked = _marked(excerpt, terms, highlight.WholeFragmenter(), 1)
    else:
        marked = _marked(excerpt, terms, highlight.ContextFragmenter(EXCERPT_CHARS, 80), 1)
    if marked:
        return marked
    if terms:
        body = _read(body)
        snippet = _marked(body, terms, highlight.ContextFragmenter(EXCERPT_CHARS // 2, 60), 2)
        if snippet:
            return snippet
    text = excerpt or _read(body)
    cut = text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"
    return highlighted([cut])


def _read(body: Body) -> str:
    return body if isinstance(body, str) else body()


def marked(article: Article, terms: frozenset[str], body: Body | None = None) -> MarkedArticle:
    """``article`` as a page shows it, ``terms`` marked in its title and excerpt (see
    :func:`hit`): the article the similar ones are like."""
    return MarkedArticle(*_shown(article, terms, body))


def hit(
    article: Article,
    terms: frozenset[str],
    score: float | None,
    explain: Explanation | None,
    body: Body | None = None,
) -> Hit:
    """``article`` as a result shows it, ``terms`` marked in its title and excerpt (the same
    for both engines and for similar articles). The hit keeps the article without its body:
    nothing shows the body but its snippet, made here, and a cached result would hold it
    (up to 4,000 characters a hit, 100 hits a page). ``body``: the body of an ``article``
    given without it, or how to read it (as the snapshot keeps them apart, see
    :meth:`~searchidx.snapshot.IndexSnapshot.shown`); None: ``article``'s own."""
    return Hit(*_shown(article, terms, body), score=score, explain=explain)


def _shown(
    article: Article, terms: frozenset[str], body: Body | None
) -> tuple[Article, Highlighted, Highlighted]:
    """A :class:`MarkedArticle`'s parts: ``article`` without its body, its title and its
    excerpt (or body snippet) with ``terms`` marked."""
    if body is None:
        article, body = article.without_body(), article.body
    return article, marked_title(article, terms), marked_excerpt(article.excerpt, body, terms)
