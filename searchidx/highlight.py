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
from typing import Any

from whoosh import highlight
from whoosh.lang import porter

from searchidx.articles import Article
from searchidx.marks import Highlighted, Mark, highlighted
from searchidx.result import Explanation, Hit, MarkedArticle
from searchidx.schema import (
    ANALYZER,
    WORD_PATTERN_POSSESSIVE,
    _plain_chain,
    _unstemmed,
    analysed,
)

#: The analyzer's settings when it is the plain stemming chain (see :func:`_plain_chain`).
_CHAIN = _plain_chain(ANALYZER)
#: Whether highlighting finds the matches itself (:func:`_matches`) rather than by Whoosh's
#: token machinery: the plain chain with the schema's word expression and Porter's stemmer.
#: Porter's stemmer keeps a word's first letter (it only cuts or replaces an ending after at
#: least one kept letter, and undoes its one change of a first letter, y -> Y -> y): a word
#: whose first letter begins no query term cannot match, and is neither stemmed nor looked at.
_SCANNED = (
    _CHAIN is not None
    and _CHAIN[0].pattern == WORD_PATTERN_POSSESSIVE
    and getattr(ANALYZER.items[-1], "stemfn", None) is porter.stem
)
#: The fragmenters written out here (exactly these types: a subclass may change their ways).
_WRITTEN_OUT = (highlight.WholeFragmenter, highlight.ContextFragmenter) if _SCANNED else ()
#: Words as written kept with their terms (most pages repeat the same few thousand words);
#: forgotten all at once past this many, so text from anywhere cannot grow it without end.
WORDS_KEPT = 100_000
#: HtmlFormatter's default ``maxclasses``: term classes term0..term4, then again from term0.
_TERM_CLASSES = 5
#: What is shown between two snippets of a body.
BETWEEN_FRAGMENTS = " … "

MAX_HIGHLIGHT_CHARS = 20_000
EXCERPT_CHARS = 320
#: A title's and a short excerpt's, a long excerpt's, a body snippet's fragmenters (they keep
#: only their settings: made once, shared).
_WHOLE = highlight.WholeFragmenter()
_EXCERPT = highlight.ContextFragmenter(EXCERPT_CHARS, 80)
_SNIPPET = highlight.ContextFragmenter(EXCERPT_CHARS // 2, 60)


def _marked(
    text: str, terms: frozenset[str], fragmenter: highlight.Fragmenter, top: int
) -> Highlighted:
    if not terms or not text:
        return ()
    text = text[:MAX_HIGHLIGHT_CHARS]
    if type(fragmenter) not in _WRITTEN_OUT:
        return _whooshs(text, terms, fragmenter, top)
    matches = _matches(text, terms)
    if not matches:
        return ()  # no match: Whoosh's fragments would all score 0, below its minimum of 1
    if isinstance(fragmenter, highlight.WholeFragmenter):
        return _whole(text, matches, fragmenter.charlimit)
    assert isinstance(fragmenter, highlight.ContextFragmenter)
    ends = list(itertools.accumulate(map(len, _SPLIT.split(text))))  # between, word, ...
    starts, ends = ends[0:-1:2], ends[1::2]
    found = {bisect.bisect_left(starts, start): term for start, _, term in matches}
    return _formatted(text, _context(starts, ends, found, fragmenter, top))


def _whooshs(
    text: str, terms: frozenset[str], fragmenter: highlight.Fragmenter, top: int
) -> Highlighted:
    """What Whoosh's ``highlight.highlight`` marks, for an analyzer or fragmenter the fast
    paths do not know."""
    analysed = ANALYZER(text, chars=True, mode="query", removestops=False)
    tokens = highlight.set_matched_filter(analysed, terms)
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
    starts: list[int],
    ends: list[int],
    found: dict[int, str],
    fragmenter: highlight.ContextFragmenter,
    top: int,
) -> list[_Fragment]:
    """The fragments Whoosh's ``ContextFragmenter.fragment_tokens`` makes of the words (where
    each starts and ends; the matched ones' numbers, in order, with their terms), the ``top``
    of them by its ``BasicFragmentScorer`` (ties: the later, as its ``nlargest`` keeps them),
    in text order, as ``highlight.highlight`` picks them. Written out over the word lists:
    outside a fragment its loop only keeps the starts of the words within ``surround``
    characters, so a run of unmatched words there is one step."""
    maxchars, surround, charlimit = fragmenter.maxchars, fragmenter.surround, fragmenter.charlimit
    stop = bisect.bisect_right(ends, charlimit) if charlimit else len(ends)  # its break
    matches = iter([number for number in found if number < stop])
    upcoming = next(matches, stop)  # the next matched word at or after ``number``
    made: list[tuple[int | None, int, list[int]]] = []  # (first, end, matched word numbers)
    first: int | None = None
    firsts: list[int] = []
    countdown, currentlen, number = -1, 0, 0
    tks: list[int] = []
    while number < stop:
        if upcoming < number:
            upcoming = next(matches, stop)
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
    for start, end, numbers in made:
        score = len(numbers) * (len({found[each] for each in numbers}) * 100 or 1)
        if score >= 1:  # Whoosh's minimum score
            scored.append((score, 0 if start is None else start, end, numbers))
    best = sorted(scored, reverse=True, key=lambda item: item[:2])[:top]
    best.sort(key=lambda item: item[1])
    return [
        (start, end, [(starts[k], ends[k]) for k in matches]) for _, start, end, matches in best
    ]


def _mark(word: str, numbers: dict[str, int]) -> Mark:
    """``word`` marked with its term number: the same word, the same number."""
    return Mark(word, numbers.setdefault(word, len(numbers) % _TERM_CLASSES))


#: Words and the text between them, alternately (the expression in a group).
_SPLIT = re.compile(f"({WORD_PATTERN_POSSESSIVE})")


def _ascii_initials(chain: tuple[Any, ...]) -> list[tuple[int, str | None]]:
    """Each ASCII code, and the first letter of a term of a word beginning with it: of its
    folded lowercase ("" if it folds to nothing); None for a code no word begins with."""
    letters = ((code, chr(code)) for code in range(128))
    return [
        (code, _unstemmed(chain, letter)[0][:1] if re.match(r"[\w*]", letter) else None)
        for code, letter in letters
    ]


_ASCII_INITIALS = [] if _CHAIN is None else _ascii_initials(_CHAIN)
#: What :data:`_TERMS` keeps of a word not stemmed yet: its term's first letter (see
#: :data:`_SCANNED`), in a tuple, which no term equals.
_Unstemmed = tuple[str]
#: A word as written -> its term (see :data:`WORDS_KEPT`).
_TERMS: dict[str, str | _Unstemmed] = {}


def _known(word: str, initials: frozenset[str]) -> str | _Unstemmed:
    """What :data:`_TERMS` keeps of ``word``, analysed first if need be for a query's
    ``initials``."""
    known = _TERMS.get(word)
    if known is None or (isinstance(known, tuple) and known[0] in initials):
        if len(_TERMS) > WORDS_KEPT:
            _TERMS.clear()
        known = _TERMS[word] = _term(word, initials)
    return known


def _term(word: str, initials: frozenset[str]) -> str | _Unstemmed:
    assert _CHAIN is not None
    letter = _unstemmed(_CHAIN, word)[0][:1]
    if letter not in initials:
        return (letter,)  # its term begins with it (see _SCANNED): not one of the query's
    return analysed(_CHAIN, word)[0]


@functools.lru_cache(maxsize=64)
def _initials(terms: frozenset[str]) -> frozenset[str]:
    """The first letters of ``terms``: a word's term can only be one of them if it begins
    with one (see :data:`_SCANNED`)."""
    return frozenset(term[:1] for term in terms)


@functools.lru_cache(maxsize=64)
def _candidates(initial: str) -> re.Pattern[str]:
    """The words (as the schema's expression finds them) whose term may begin with
    ``initial``: they start where a word can (not after a word character, nor after . or &
    after one), with a letter whose folded lowercase begins with it, or folds to nothing
    (ASCII letters checked, every other letter taken). The letter comes first, so that the
    expression engine skips to the next one in C, as a class of the ASCII codes it is not, in
    ranges (compiled 30 times faster than the class of every other letter). One expression
    a letter, not a query's letters: a query of new letters compiled one (0.1-0.4 ms)."""
    others = [
        code for code, letter in _ASCII_INITIALS if letter is None or (letter and letter != initial)
    ]
    ranges = "".join(
        f"\\x{run[0][1]:02x}-\\x{run[-1][1]:02x}"
        for run in (
            list(codes)
            for _, codes in itertools.groupby(enumerate(others), lambda item: item[1] - item[0])
        )
    )
    # The letter taken, looked behind: a word character, not after a word character nor
    # after . or & after one; then the rest of the word, as WORD_PATTERN_POSSESSIVE goes on.
    return re.compile(rf"[^{ranges}](?<=[\w*])(?<![\w*].)(?<![\w*][.&].)[\w*]*+(?:[.&][\w*]++)*+")


#: A match: where the word starts and ends, its term.
_Match = tuple[int, int, str]


def _matches(text: str, terms: frozenset[str]) -> list[_Match]:
    """The words of ``text`` whose term, as ``highlight.highlight`` analyses it (stop words
    kept and not stemmed, the others stemmed), is one of ``terms``. A result page shows some
    thousand words, and analysing them (Porter's stemmer, in Python, on the words new to the
    process) was most of highlighting's time: only the words that may match
    (:func:`_candidates`) are analysed, each once (:data:`_TERMS`)."""
    initials = _initials(terms)
    found: Iterable[re.Match[str]]
    if len(initials) == 1:
        found = _candidates(next(iter(initials))).finditer(text)
    else:  # each letter's words, in text order
        scans = [_candidates(initial).finditer(text) for initial in initials]
        found = sorted(itertools.chain(*scans), key=re.Match.start)
    matches: list[_Match] = []
    last = -1
    for match in found:
        start = match.start()
        if start == last:
            continue  # a word every letter's expression takes (it begins with a non-ASCII one)
        last = start
        term = _known(match.group(), initials)
        if isinstance(term, str) and term in terms:
            matches.append((start, match.end(), term))
    return matches


def _whole(text: str, matches: list[_Match], charlimit: int) -> Highlighted:
    """:func:`_marked` with a WholeFragmenter, written out: the same marks without a Token,
    Fragment or sort per call."""
    shown: list[str | Mark] = []
    position = 0
    numbers: dict[str, int] = {}
    for start, end, _ in matches:
        if charlimit and end > charlimit:
            break  # the fragmenter stops at the first word past the limit
        shown += [text[position:start], _mark(text[start:end], numbers)]
        position = end
    if not numbers:
        return ()  # no match: Whoosh's fragment scores 0, below its minimum of 1
    shown.append(text[position:])
    return tuple(filter(None, shown))  # as highlighted(): runs and marks alternate


def marked_title(article: Article, terms: frozenset[str]) -> Highlighted:
    return _marked(article.title, terms, _WHOLE, 1) or _plain(article.title)


#: A body, or how to read it: read only where the excerpt does not do.
Body = str | Callable[[], str]


def marked_excerpt(excerpt: str, body: Body, terms: frozenset[str]) -> Highlighted:
    """The excerpt with matches marked; a snippet of the ``body`` when only the body matched.
    The body is read only for a snippet (``terms`` the excerpt does not show) or when there is
    no excerpt: a page of hits without highlighting reads no body."""
    if len(excerpt) <= EXCERPT_CHARS:
        marked = _marked(excerpt, terms, _WHOLE, 1)
    else:
        marked = _marked(excerpt, terms, _EXCERPT, 1)
    if marked:
        return marked
    if terms:
        body = _read(body)
        snippet = _marked(body, terms, _SNIPPET, 2)
        if snippet:
            return snippet
    text = excerpt or _read(body)
    cut = text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"
    return _plain(cut)


def _plain(text: str) -> Highlighted:
    """``text`` unmarked, as ``highlighted([text])`` makes it without its loop (a hit's title
    and excerpt where the query's words are not in them, or not asked for)."""
    return (text,) if text else ()


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
    return Hit.made(*_shown(article, terms, body), score, explain)


def _shown(
    article: Article, terms: frozenset[str], body: Body | None
) -> tuple[Article, Highlighted, Highlighted]:
    """A :class:`MarkedArticle`'s parts: ``article`` without its body, its title and its
    excerpt (or body snippet) with ``terms`` marked."""
    if body is None:
        article, body = article.without_body(), article.body
    return article, marked_title(article, terms), marked_excerpt(article.excerpt, body, terms)
