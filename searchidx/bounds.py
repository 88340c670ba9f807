"""Bounds on the work one search request may do, whatever its text and parameters.

A wildcard, prefix, fuzzy word or term range is the Or of every index word it matches, so its
cost grows with the vocabulary and with those words' documents: ``a*`` or ``*e*`` on a large
index held a server for seconds. Here (the same for the page, the API, the feed and the
terminal):

- a bare ``*`` (the whole query, or a field's whole value) is every article: a browse;
- a word may not start with a wildcard (``*e*`` would test every word of the index), a
  phrase may not be a proximity search (``"a b"~5`` is matched by Whoosh document by
  document: seconds), and a query may have at most :data:`MAX_QUERY_WORDS` distinct words
  (each is read in every field it searches);
- the words of one request may sum at most :data:`MAX_WORD_POSTINGS` documents (each word's
  document count in each field it searches), and its expansions
  :data:`MAX_EXPANDED_TERMS` words and
  :data:`MAX_EXPANDED_POSTINGS` documents (each word's document count, added up), its fuzzy
  and wildcard words may test :data:`MAX_WORDS_VISITED` index words to find theirs, and its phrases
  :data:`MAX_PHRASE_POSTINGS` documents (each of their words' positions is read); past any,
  the request is refused with a message that says how to narrow it;
- a request has a time budget (a :class:`Deadline`): the search checks it wherever its work
  grows with the number of words or documents, and stops with :class:`SearchTimeout`;
- at the same checks, a web search that has used more than its worker's share of CPU stops
  with :class:`HandOff`, and the server runs it again in its lane for heavy searches
  (:mod:`searchidx.web.lane`), within the same deadline.

The request's :class:`Budget` is the current one of the thread running it (a context
variable), so the checks deep in the matching need no parameter threaded through every call.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import TypeVar

from whoosh import query
from whoosh.fields import Schema

from searchidx.errors import QueryError, SearchidxError

#: Distinct words a query may have (as Elasticsearch caps a query's clauses).
MAX_QUERY_WORDS = 32
#: Words all the expansions of one request may match, summed over the fields searched.
MAX_EXPANDED_TERMS = 256
#: Documents all the expansions of one request may sum (each word's document count, in
#: each field: the postings the search reads and adds up).
MAX_EXPANDED_POSTINGS = 100_000
#: Documents the phrases of one request may sum (each word's, in each field it is searched in).
MAX_PHRASE_POSTINGS = 150_000
#: Documents the words of one request may sum (each word's document count in each field it
#: searches, each once however often the request searches it): the postings it reads and adds
#: up, some 0.26 us each read from the index. At 100,000 articles the commonest words have
#: about 110,000 each in the five fields searched, and the benchmark's ordinary queries at most
#: 176,000 in all.
MAX_WORD_POSTINGS = 300_000
#: Index words the fuzzy and wildcard words of one request may test to find theirs, in each
#: segment and field searched, whatever they find: a fuzzy word walks the sorted words (some
#: 20 us a word looked up), a wildcard tests the words starting with its letters before the
#: first ``*`` or ``?`` (some 5 us a word).
MAX_WORDS_VISITED = 4_096
#: Distinct words (phrases' included) from which a query is broad (see :func:`broad`).
BROAD_WORDS = 8
#: Seconds after which a heavy search refused for the lane being busy may be sent again.
RETRY_AFTER = 1
#: Expanded words read between two looks at the clock.
_CHECK_EVERY = 64

_WILDCARDS = ("*", "?")

_T = TypeVar("_T")


class SearchTimeout(SearchidxError):
    """A search went past its time budget and was stopped (the web answers 503). No
    parameter is at fault (``parameter`` is None, as the API's error document says)."""

    parameter = None
    #: The web's status for it: the server did not finish the search.
    status = 503

    def headers(self) -> dict[str, str]:
        """The web answer's headers beside the status."""
        return {}


class HeavyBusy(SearchTimeout):
    """A heavy search refused for now: the server's lane for heavy searches
    (:mod:`searchidx.web.lane`) has as many waiting as it takes, or was not free within the
    request's budget, or yielded to the workers' searches for most of it. The client sent too
    many heavy searches at once (429, never a 5xx: the server is well), and may send it again
    after :data:`RETRY_AFTER` seconds."""

    status = 429

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER)}


class QueryTooBroad(QueryError):
    """The query's wildcard, fuzzy or range words or its phrases match more than a request
    may read."""


class HandOff(Exception):
    """A search used more CPU than its :class:`Budget` lets it use where it runs (see
    ``heavy_after``); the caller runs it again elsewhere. Never shown to a user."""


class Deadline:
    """A moment after which the search stops; None seconds: never. ``at`` (a
    :func:`time.monotonic` time, the same in every process of the machine) is given when the
    search goes on in another process: the moment the request's budget began counting."""

    def __init__(self, seconds: float | None, at: float | None = None) -> None:
        self.seconds = seconds
        self.at = at if at is not None or seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left (None: no limit)."""
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    def check(self) -> None:
        if self.at is not None and time.monotonic() > self.at:
            raise SearchTimeout(
                f"the search took longer than its {self.seconds:g} s budget and was stopped; "
                "narrow it (fewer or longer words, fewer wildcards) or try again"
            )


class Budget:
    """One request's deadline and the expansions it has read so far. ``heavy_after``: seconds
    of this thread's CPU after which a check raises :class:`HandOff` (None: never);
    ``pause``: called at each check (the lane yields to the workers there)."""

    def __init__(
        self,
        seconds: float | None,
        heavy_after: float | None = None,
        deadline: Deadline | None = None,
        pause: Callable[[], None] | None = None,
    ) -> None:
        self.deadline = deadline or Deadline(seconds)
        self._cpu_until = None if heavy_after is None else time.thread_time() + heavy_after
        self._pause = pause
        self.terms = 0
        self.postings = 0
        self.phrase_postings = 0
        self.visits = 0
        self.word_postings = 0
        self._words: set[tuple[str, object]] = set()

    def charge(self, q: query.Query, words: Sequence[bytes], postings: int) -> None:
        """Count one expansion (its words and their documents summed); refuse it when the
        request's total passes a cap."""
        self.terms += len(words)
        self.postings += postings
        if self.terms > MAX_EXPANDED_TERMS:
            raise QueryTooBroad(
                f"{_shown(q)} and the query's other wildcard, fuzzy and range words match more "
                f"than {MAX_EXPANDED_TERMS:,} words of the index; make them longer or more "
                "precise (micro* rather than m*)",
                "q",
            )
        if self.postings > MAX_EXPANDED_POSTINGS:
            raise QueryTooBroad(
                f"{_shown(q)} and the query's other wildcard, fuzzy and range words match words "
                f"found in more than {MAX_EXPANDED_POSTINGS:,} places; make them longer or more "
                "precise (micro* rather than m*), or narrow with a field (title:micro*)",
                "q",
            )

    def charge_word(self, q: query.Term, postings: int) -> None:
        """Count a word's documents in a field (once per request); refuse past the cap."""
        if (q.fieldname, q.text) in self._words:
            return
        self._words.add((q.fieldname, q.text))
        self.word_postings += postings
        if self.word_postings > MAX_WORD_POSTINGS:
            raise QueryTooBroad(
                f"{_shown(q)} and the query's other words are found in more than "
                f"{MAX_WORD_POSTINGS:,} places (each word counted in every field it searches); "
                "use fewer or rarer words, or narrow with a field (title:word)",
                "q",
            )

    def visit(self, q: query.Query, words: int) -> None:
        """Count index words a fuzzy or wildcard word tested; refuse past the request's cap."""
        self.visits += words
        if self.visits > MAX_WORDS_VISITED:
            raise QueryTooBroad(
                f"{_shown(q)} and the query's other fuzzy and wildcard words test more than "
                f"{MAX_WORDS_VISITED:,} words of the index to find theirs; make them longer, "
                "allow fewer edits (word~ rather than word~2) or put more letters before a "
                "wildcard, or narrow with a field (title:word~)",
                "q",
            )
        if self.visits % _CHECK_EVERY < words:
            self.check()

    def check(self) -> None:
        """Stop past the deadline; hand the search off past its CPU share."""
        self.deadline.check()
        if self._cpu_until is not None and time.thread_time() > self._cpu_until:
            raise HandOff
        if self._pause is not None:
            self._pause()

    def charge_phrase(self, q: query.Phrase, postings: int) -> None:
        """Count the documents of a phrase's words; refuse past the request's cap."""
        self.phrase_postings += postings
        if self.phrase_postings > MAX_PHRASE_POSTINGS:
            raise QueryTooBroad(
                f"the words of the phrase {' '.join(q.words)!r} and the query's other phrases are "
                f"found in more than {MAX_PHRASE_POSTINGS:,} places; use fewer or rarer words "
                'in phrases, or narrow with a field (title:"...")',
                "q",
            )


_current: ContextVar[Budget | None] = ContextVar("searchidx_budget", default=None)


@contextlib.contextmanager
def budget(
    seconds: float | None,
    heavy_after: float | None = None,
    deadline: Deadline | None = None,
    pause: Callable[[], None] | None = None,
) -> Iterator[Budget]:
    """Make a fresh :class:`Budget` the current one for the duration of a request."""
    current = Budget(seconds, heavy_after, deadline, pause)
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


def check() -> None:
    """Stop the search if the current request is past its deadline, or hand it off past its
    CPU share (no request: never)."""
    current = _current.get()
    if current is not None:
        current.check()


def charge(q: query.Query, words: Sequence[bytes], postings: int) -> None:
    """Count an expansion against the current request's caps (no request: no caps)."""
    current = _current.get()
    if current is not None:
        current.charge(q, words, postings)


def words_needed() -> int | None:
    """How many words of an expansion the current request needs listed: one past the cap
    (more are refused anyway, and listing them all can take most of a second); with no
    request, all of them (None)."""
    return None if _current.get() is None else MAX_EXPANDED_TERMS + 1


def charge_word(q: query.Term, postings: int) -> None:
    """Count a word's documents in a field against the current request's cap (no request: no
    cap)."""
    current = _current.get()
    if current is not None:
        current.charge_word(q, postings)


def visit(q: query.Query, words: int = 1) -> None:
    """Count index words a fuzzy or wildcard word tested against the current request's cap (no
    request: no cap)."""
    current = _current.get()
    if current is not None and words:
        current.visit(q, words)


def visits() -> int:
    """Index words the current request's fuzzy and wildcard words have tested so far."""
    current = _current.get()
    return 0 if current is None else current.visits


def charge_phrase(q: query.Phrase, postings: int) -> None:
    """Count a phrase against the current request's cap (no request: no cap)."""
    current = _current.get()
    if current is not None:
        current.charge_phrase(q, postings)


def checked(items: Iterable[_T], every: int = _CHECK_EVERY) -> Iterator[_T]:
    """``items``, looking at the clock every ``every`` of them."""
    for number, item in enumerate(items):
        if number % every == 0:
            check()
        yield item


# The query text ------------------------------------------------------------------------------


def leaves(parsed: query.Query) -> list[query.Query]:
    """``parsed.leaves()``, in its order: Whoosh's walk resumes a generator per level for each
    leaf (5 us for a query of two typed words, its title phrase bonus and 11 leaves, walked
    some four times a search); here one call a node that is not a leaf (1.4 us)."""
    if parsed.is_leaf():
        return [parsed]
    found: list[query.Query] = []
    for child in parsed.children():
        if child.is_leaf():
            found.append(child)
        else:
            found += leaves(child)
    return found


def every_article(parsed: query.Query) -> bool:
    """Whether ``parsed`` is a bare ``*`` (in every field, or one field's whole value)."""
    if isinstance(parsed, query.Every):
        return True
    return (
        isinstance(parsed, query.Or)
        and bool(parsed.subqueries)
        and all(isinstance(sub, query.Every) for sub in parsed.subqueries)
    )


def check_query(parsed: query.Query, schema: Schema) -> None:
    """Refuse a word starting with a wildcard (it would be tested against every word of the
    index), a proximity phrase, a phrase in a field of whole values (Whoosh cannot match it)
    and more than :data:`MAX_QUERY_WORDS` distinct words."""
    words: set[str] = set()
    for leaf in leaves(parsed):
        if isinstance(leaf, query.Wildcard) and leaf.text.startswith(_WILDCARDS):
            raise QueryError(
                f"{leaf.text!r} starts with a wildcard, which would test every word of the "
                "index; put at least one letter before the first * or ?",
                "q",
            )
        if type(leaf) is query.Term:
            words.add(str(leaf.text))
        elif isinstance(leaf, query.Phrase):
            field = schema[leaf.fieldname] if leaf.fieldname in schema else None  # noqa: SIM401
            if field is not None and not (field.format and field.format.supports("positions")):
                raise QueryError(
                    f"{leaf.fieldname}: holds whole values, not phrases; give it one value, "
                    "without quotes",
                    "q",
                )
            if leaf.slop != 1:
                raise QueryError(
                    f'"{" ".join(leaf.words)}"~{leaf.slop}: words near each other are not '
                    f"searched; search the exact phrase (without ~{leaf.slop}) or the words",
                    "q",
                )
            words.update(leaf.words)
    if len(words) > MAX_QUERY_WORDS:
        raise QueryError(
            f"the query has {len(words)} different words; use at most {MAX_QUERY_WORDS} "
            "(the most specific ones)",
            "q",
        )


def broad(parsed: query.Query) -> bool:
    """Whether a query's shape makes it costly before it runs: a wildcard, prefix, fuzzy word
    or term range (each expanded over the vocabulary), or more than :data:`BROAD_WORDS`
    distinct words. The server runs such a search in its lane (:mod:`searchidx.web.lane`) at
    once."""
    words: set[str] = set()
    for leaf in leaves(parsed):
        if isinstance(leaf, query.MultiTerm):
            return True
        if isinstance(leaf, query.Phrase):
            words.update(leaf.words)
        elif isinstance(leaf, query.Term):
            words.add(str(leaf.text))
    return len(words) > BROAD_WORDS


def _shown(q: query.Query) -> str:
    """The word as typed: "Companies", not the "compani" the index searches (the parser's
    plain words note it, :func:`searchidx.querylang._parsed`), and ``a*``, not the ``body:a*``
    of each field searched."""
    typed = getattr(q, "typed", None)
    return repr(typed or str(q).split(":", 1)[-1].split("^")[0])
