"""The search service: one long-lived searcher per process, answering typed requests.

``SearchService.search(SearchRequest) -> SearchResult`` is the only search logic; the CLI and the
web app render what it returns. How a search runs:

1. the query text is parsed (:mod:`searchidx.querylang`) and Whoosh finds the matching docnums;
2. filters become boolean masks from the snapshot's arrays (:mod:`searchidx.snapshot`);
3. facet counts are taken over the matches with every filter but the facet's own (disjunctive
   facets, as Solr's tag/exclude), so a chosen provider does not hide the others;
4. the page is cut from a precomputed sort order, or, for relevance, from the text scores
   (:mod:`searchidx.matching`, else Whoosh with the final mask as its ``filter``), and for
   best, from the text scores times freshness and quality (:mod:`searchidx.ranking`);
5. the page's hits are read from the stored record and highlighted (if asked).

Where the filters allow few documents and no facet is counted, the query is looked up at those
documents alone (:meth:`IndexSnapshot.match_at`) and the page cut from them, instead of steps
1 and 4 over every document; so it is at the documents of a word it requires (the rarest)
that the filters allow, where those are fewer, a lone word's matches being those (the date
range's by their dates: no mask of every document).

Opening a searcher costs tens of milliseconds, so one is kept and refreshed (at most every
:data:`REFRESH_INTERVAL` seconds) when a sync commits or a rebuild publishes a new generation.

Searches run side by side (one slow search must not queue the others): each runs within the
bounds of :mod:`searchidx.bounds` (capped expansions, a time budget), the snapshot's arrays are
read before it serves, reads through Whoosh hold the snapshot's :attr:`~IndexSnapshot.reading`
one term or one document at a time (a lock only where its segments need one), and a replaced
snapshot's searcher is closed when the last search using it ends. Given a :class:`Lane` (the
server's, :mod:`searchidx.web.lane`), a broad search (:func:`bounds.broad`) runs there, and
one that uses more CPU than :attr:`Lane.heavy_after` stops and runs there instead, within its
deadline.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np
from whoosh import index as whoosh_index
from whoosh import query as whoosh_query
from whoosh.index import Index
from whoosh.searching import Searcher

from searchidx import bounds, highlight, querylang, ranking, relaxation, synonyms
from searchidx.arrays import open_arrays
from searchidx.defaults import RESULTS_CACHED
from searchidx.errors import IndexMissingError
from searchidx.facets import FACETS, MONTH, SEARCHABLE, Kind
from searchidx.matching import SPARSE_SHARE, Matches, Postings
from searchidx.ranking import FIELD_BOOSTS, Page
from searchidx.request import SearchRequest, Sort
from searchidx.result import (
    Correction,
    Explanation,
    Facet,
    Hit,
    Relaxation,
    SearchResult,
    Suggestion,
)
from searchidx.schema import QUALITY_MISSING, SCHEMA_VERSION, fold
from searchidx.snapshot import FacetTable, IndexSnapshot
from searchidx.store import IndexStore
from searchidx.typedtext import Reading

if TYPE_CHECKING:  # imported by the similar-articles calls: a one-shot search has no use for it
    from searchidx.similar import SimilarRequest, SimilarResult

#: Seconds between checks for a newer index; a sync or rebuild shows up within this.
REFRESH_INTERVAL = 0.5
#: Opening the live generation is tried this many times, as many rebuilds replacing it.
_OPEN_ATTEMPTS = 5
#: With fewer hits than this, a did-you-mean correction is offered.
SUGGEST_BELOW = 3
#: Autocomplete: at most this many values of each searchable facet (topics, providers), the
#: rest title words.
SUGGEST_PER_KIND = 3
#: Sorts by a score computed from the query text's matches.
_SCORED = (Sort.RELEVANCE, Sort.BEST)
#: A sorted page walks the sort order when it likely ends within 1/8 of all documents, or
#: when more than 1/8 of them match; else it sorts just the matches.
SMALL_RESULT_SHARE = 8
#: Documents of the sort order a walk looks at beyond the page's expected end.
PAGE_LOOKAHEAD = 256
#: A text search within filters looks its query up at the documents they allow alone when
#: those documents times the query's terms are fewer than all documents / this (see
#: :meth:`SearchService._few_allowed`): each term is looked up at each of them, where over
#: every document each term's postings are read whole. At 100,000 articles a word of five
#: fields costs the same either way at some 12,000 documents, two words at some 2,000.
FEW_ALLOWED_SHARE = 4
#: A text search within filters looks its query up at the documents of a word it requires
#: that the filters allow (a lone word's matches are those; see :meth:`SearchService._among`)
#: unless the filters allow this many times fewer documents than the word has; 0: never.
WORD_AMONG = 8
#: The note on every result from an index of an older schema (read, not rebuilt, by searching).
OUTDATED_NOTE = (
    "this index was built by an older version of searchidx: run 'searchidx index' to rebuild "
    "it (one built before index format 3 matches accents and '&' only as written)"
)


class Lane(Protocol):
    """Where a broad search runs, and one that uses more than ``heavy_after`` seconds of CPU
    goes on."""

    heavy_after: float

    def searching(self) -> contextlib.AbstractContextManager[None]:
        """Around a search run here (the lane yields to it)."""
        ...

    def search(self, request: SearchRequest, deadline: bounds.Deadline) -> SearchResult:
        """The answer to ``request``, by ``deadline`` (else :class:`bounds.SearchTimeout`)."""
        ...


@dataclasses.dataclass
class _Matched:
    """A query's matches over every document (all live ones for no query text): ``final``
    those the filters allow (None: no filter, the matches' mask), ``total`` of them; and its
    documents in score order (``ranked``), when a relevance page is read off their top (a
    lone word's, see :meth:`QueryMatcher.ranked`; its matches then have no scores).

    ``matches`` may be given as the call that makes them, made when first read: a lone
    word's page and total need no mask of every document (see :meth:`SearchService._matched`)."""

    parsed: whoosh_query.Query | None
    _matches: Matches | Callable[[], Matches]
    _final: np.ndarray | None
    total: int
    ranked: Postings | None = None

    @property
    def matches(self) -> Matches:
        if callable(self._matches):
            self._matches = self._matches()
        return self._matches

    @property
    def final(self) -> np.ndarray:
        return self.matches.mask if self._final is None else self._final


class _MatchedAmong(NamedTuple):
    """A query's matches among the few documents the filters allow (see
    :meth:`SearchService._few_allowed`): their docnums, ascending, and their scores (None:
    Whoosh ranks them)."""

    parsed: whoosh_query.Query
    docs: np.ndarray
    scores: np.ndarray | None

    @property
    def total(self) -> int:
        return len(self.docs)


class _Dated(NamedTuple):
    """The live documents a date range alone allows (no query text, no other filter; no
    range: every live one) in the requested date order (see :func:`_dated`)."""

    ordered: np.ndarray

    @property
    def parsed(self) -> None:
        return None

    @property
    def total(self) -> int:
        return len(self.ordered)


class SearchService:
    """Answers searches against the live index at ``store``; safe to share between threads.

    ``results_cached``: answers kept per index snapshot (0: none; benchmarks measure searches).
    ``search_timeout``: seconds a search may take (None: no limit; see :mod:`searchidx.bounds`).
    ``prepare``: read every array a search may use before the first search (a server, whose
    threads then share them); False reads only what the searches made need, when they need
    it: one search in one thread (the command line).
    ``lane``: where searches heavier than its ``heavy_after`` go on (None: they run here).
    """

    def __init__(
        self,
        store: IndexStore,
        results_cached: int = RESULTS_CACHED,
        search_timeout: float | None = None,
        prepare: bool = True,
        lane: Lane | None = None,
    ) -> None:
        self.store = store
        self.results_cached = results_cached
        self.search_timeout = search_timeout
        self.prepare = prepare
        self.lane = lane
        self._lock = threading.RLock()  # guards the searcher, the snapshot and their users
        self._users: Counter[IndexSnapshot] = Counter()
        self._refreshing = False  # a new snapshot is being prepared outside the lock
        self._generation: str | None = None
        self._index: Index | None = None
        self._searcher: Searcher | None = None
        self._snapshot: IndexSnapshot | None = None
        self._checked = 0.0
        self._outdated = False
        #: (generation, when read, synonyms) of the last read (see :meth:`_synonyms`).
        self._kept_synonyms: tuple[str | None, float, synonyms.Synonyms] | None = None

    # The searcher ------------------------------------------------------------------------

    def snapshot(self) -> IndexSnapshot:
        """The snapshot of the newest committed index, reopened or refreshed when it changed.

        A new snapshot reads its arrays (:meth:`IndexSnapshot.prepare`, a second or so at
        100,000 articles) outside the lock: searches go on with the old one meanwhile; only
        the first snapshot of a service is waited for."""
        with self._lock:
            now = time.monotonic()
            current = self._snapshot
            fresh_enough = now - self._checked < REFRESH_INTERVAL
            if current is not None and (fresh_enough or self._refreshing):
                return current
            self._checked = now
            searcher = self._newer_searcher()
            if searcher is None:
                assert current is not None
                return current
            if current is None:
                return self._install(searcher, self._prepared(searcher))
            self._refreshing = True
        try:
            fresh = self._prepared(searcher)
            with self._lock:
                return self._install(searcher, fresh)
        finally:
            self._refreshing = False

    def _newer_searcher(self) -> Searcher | None:
        """A searcher of the newest committed index, if the current one is not (or none).

        A rebuild may publish a new generation and remove the one just named at any moment:
        after ``CURRENT`` was read, or after that generation's index was opened, before its
        searcher is (Whoosh then finds no table of contents: ``EmptyIndexError``, a request's
        500 under the load test). What fails so is done again on the generation named then."""
        failure: Exception | None = None
        for _attempt in range(_OPEN_ATTEMPTS):
            generation = self.store.generation()
            try:
                return self._searcher_of(generation)
            except (OSError, ValueError, whoosh_index.IndexError) as error:
                failure = error
                time.sleep(0.05)
        raise IndexMissingError(f"cannot open the index at {self.store.location}/: {failure}")

    def _searcher_of(self, generation: str) -> Searcher | None:
        """A searcher of ``generation``'s last commit, unless the current one is that; the
        generation's index kept only once its searcher is open."""
        if generation == self._generation and self._searcher is not None:
            if self._searcher.up_to_date():
                return None
            # Not Searcher.refresh(): whoosh3 reuses segment readers with their old
            # deletions, so deleted and replaced documents would be found again.
            assert self._index is not None
            return self._index.searcher()
        index = self.store.open_index(generation)
        searcher = index.searcher()
        if self._index is not None:
            self._index.close()
        self._index, self._generation = index, generation
        self._outdated = _schema_version(self.store, generation) not in (None, SCHEMA_VERSION)
        return searcher

    def _prepared(self, searcher: Searcher) -> IndexSnapshot:
        """A snapshot of ``searcher``, with the arrays written at its commit if there are."""
        assert self._generation is not None
        stored = open_arrays(self.store.location / self._generation, searcher.reader())
        snapshot = IndexSnapshot(searcher, self.results_cached, stored)
        return snapshot.prepare() if self.prepare else snapshot

    def _install(self, searcher: Searcher, snapshot: IndexSnapshot) -> IndexSnapshot:
        """Make ``snapshot`` the current one (the lock is held)."""
        self._retire(self._snapshot)
        self._searcher, self._snapshot = searcher, snapshot
        return snapshot

    @contextlib.contextmanager
    def _using(self) -> Iterator[IndexSnapshot]:
        """The current snapshot, kept open until the caller is done with it."""
        while True:
            snapshot = self.snapshot()
            with self._lock:
                if snapshot is self._snapshot:  # not replaced (and maybe closed) meanwhile
                    self._users[snapshot] += 1
                    break
        try:
            yield snapshot
        finally:
            with self._lock:
                self._users[snapshot] -= 1
                if snapshot is not self._snapshot:
                    self._retire(snapshot)

    def _retire(self, snapshot: IndexSnapshot | None) -> None:
        """Close a replaced snapshot's searcher, unless searches still use it (the last one
        closes it, see :meth:`_using`)."""
        if snapshot is not None and self._users[snapshot] <= 0:
            del self._users[snapshot]
            snapshot.searcher.close()

    def close(self) -> None:
        with self._lock:
            self._retire(self._snapshot)
            if self._index is not None:
                self._index.close()
            self._searcher = self._index = self._snapshot = None
            self._generation = None

    # Searching ---------------------------------------------------------------------------

    def search(
        self,
        request: SearchRequest,
        deadline: bounds.Deadline | None = None,
        pause: Callable[[], None] | None = None,
    ) -> SearchResult:
        """The answer to ``request`` from the newest index; the same request on the same index
        snapshot is answered from the snapshot's cache of results. ``deadline``: the one the
        request's budget started with elsewhere (the lane's searches; None: from now);
        ``pause``: see :class:`bounds.Budget`."""
        started = time.perf_counter()
        heavy_after = None if self.lane is None else self.lane.heavy_after
        with (
            self._using() as snapshot,
            bounds.budget(self.search_timeout, heavy_after, deadline, pause) as budget,
            synonyms.applied(self._synonyms()) as rules,
        ):
            key = (request.key, rules)  # a new synonyms file is read without a new snapshot
            result: SearchResult = snapshot.results.get(
                key, lambda: self._search_or_hand_off(snapshot, request, budget.deadline)
            )
        return dataclasses.replace(result, took_ms=(time.perf_counter() - started) * 1000)

    def _search_or_hand_off(
        self, snapshot: IndexSnapshot, request: SearchRequest, deadline: bounds.Deadline
    ) -> SearchResult:
        """The search run here; or in the lane: a broad one (:func:`bounds.broad`) at once, else
        one that passes the lane's share of CPU here (that work is lost: a heavy search costs
        at most that share in a worker)."""
        reading, parsed = _read(request.text)  # once: whether it is broad, and its search
        if self.lane is None:
            return self._search(snapshot, request, reading, parsed)
        if parsed is not None and bounds.broad(parsed):
            return self.lane.search(request, deadline)
        try:
            with self.lane.searching():
                return self._search(snapshot, request, reading, parsed)
        except bounds.HandOff:
            return self.lane.search(request, deadline)

    def similar(self, request: SimilarRequest) -> SimilarResult:
        """The articles most like ``request.path``'s (see :mod:`searchidx.similar`), with the
        same bounds as a search and answered from the same cache."""
        started = time.perf_counter()
        with self._using() as snapshot, bounds.budget(self.search_timeout):
            key = ("similar", request)
            found: SimilarResult = snapshot.results.get(
                key, lambda: self._similar(snapshot, request)
            )
        return dataclasses.replace(found, took_ms=(time.perf_counter() - started) * 1000)

    def _similar(self, snapshot: IndexSnapshot, request: SimilarRequest) -> SimilarResult:
        from searchidx.similar import SimilarResult, find

        found = find(snapshot, request.path, request.limit)
        terms = frozenset(found.terms)  # marked in the hits: what they share with the article
        asked, body = snapshot.shown(found.docnum), partial(snapshot.body, found.docnum)
        return SimilarResult(
            request=request,
            article=highlight.marked(asked, terms, body),
            hits=tuple(self._hit(snapshot, doc, score, terms, None) for doc, score in found.page),
            terms=found.terms,
            took_ms=0.0,
        )

    def _synonyms(self) -> synonyms.Synonyms:
        """The synonyms kept with the index searched (a sync may replace them), read again at
        most every :data:`REFRESH_INTERVAL` seconds, as the index is checked."""
        kept, now = self._kept_synonyms, time.monotonic()
        if kept is None or kept[0] != self._generation or now - kept[1] >= REFRESH_INTERVAL:
            rules = synonyms.parse(self.store.read_synonyms(self._generation))
            kept = self._kept_synonyms = (self._generation, now, rules)
        return kept[2]

    def _search(
        self,
        snapshot: IndexSnapshot,
        request: SearchRequest,
        reading: Reading | None,
        parsed: whoosh_query.Query | None,
    ) -> SearchResult:
        """What :meth:`search` answers, ``request.text`` read and parsed (:func:`_read`);
        ``took_ms`` is set by it. The query is matched among a required word's documents or
        the few the filters allow (:meth:`_among`), or over every document; a query that
        finds nothing is retried over every document (:meth:`_retry`)."""
        filters = self._filter_masks(snapshot, request)
        matched: _Matched | _MatchedAmong | _Dated | None = None
        if parsed is not None:
            matched = self._among(snapshot, request, parsed, filters)
        else:
            matched = _dated(snapshot, request, filters)
        if matched is None:
            matched = self._matched(snapshot, parsed, filters, _reads_scores(request), request)
        did_you_mean, retry = None, None
        if parsed is not None and matched.total < SUGGEST_BELOW:
            with snapshot.reading:
                did_you_mean = querylang.correct(
                    request.text,
                    snapshot.searcher,
                    snapshot.title_words[0],
                    snapshot.matcher.documents,
                )
            if matched.total == 0:
                retried = self._retry(snapshot, request, did_you_mean, filters)
                if retried is not None:
                    retry, matched = retried
        facets: tuple[Facet, ...] = ()
        page: Page
        explained: list[Explanation | None]
        if isinstance(matched, _Dated):  # never asked for explanations or facets
            start, end = request.offset, request.offset + request.per_page
            page = [(docnum, None) for docnum in matched.ordered[start:end].tolist()]
            explained = [None] * len(page)
        elif isinstance(matched, _MatchedAmong):  # nor are these
            page = self._ordered(snapshot, request, matched.parsed, matched.docs, matched.scores)
            explained = [None] * len(page)
        else:
            page = self._page(snapshot, request, matched)
            explained = self._explained(snapshot, request, matched, page)
            if request.facets:
                facets = self._facets(snapshot, request, matched.matches.mask, filters)
        terms: frozenset[str] = frozenset()  # none marked: each hit plain
        if matched.parsed is not None and request.highlight:
            terms = querylang.highlight_terms(matched.parsed, snapshot.matcher.expanded_terms)
        hits = tuple(
            self._hit(snapshot, docnum, score, terms, explain)
            for (docnum, score), explain in zip(page, explained, strict=True)
        )
        return SearchResult(
            request=request,
            total=matched.total,
            hits=hits,
            facets=facets,
            ran_query=request.text if retry is None else retry.text,
            retry=None if retry is None else retry.kind,
            did_you_mean=did_you_mean,
            took_ms=0.0,
            notes=(*(reading.notes if reading else ()), *[OUTDATED_NOTE] * self._outdated),
            relaxed=None if retry is None else retry.relaxed,
        )

    def suggest(self, prefix: str, limit: int = 8) -> tuple[Suggestion, ...]:
        """Completions for ``prefix``: topics and providers with a word starting with it (most
        articles first), then title words starting with it (most frequent first)."""
        needle = prefix.strip().casefold()
        if not needle:
            return ()
        with self._using() as snapshot:
            found: list[Suggestion] = []
            for facet in SEARCHABLE:
                table = snapshot.facet(facet.name)
                counts = snapshot.counts_of_all(facet.name)
                matching = [
                    Suggestion(value, facet.name, int(counts[number]))
                    for number, value in enumerate(table.values)
                    if _word_starts_with(value.casefold(), needle)
                ]
                matching.sort(key=lambda item: (-item.count, item.text.casefold()))
                found += matching[:SUGGEST_PER_KIND]
            words, counts = snapshot.title_words
            last_word = fold(needle.split()[-1])  # title words are indexed folded ("sao")
            first = bisect.bisect_left(words, last_word)
            end = bisect.bisect_left(words, last_word + "\U0010ffff", lo=first)
            wanted = max(0, limit - len(found))  # most frequent first; ties in word order
            for number in np.argsort(-counts[first:end], kind="stable")[:wanted]:
                found.append(Suggestion(words[first + number], "word", int(counts[first + number])))
        return tuple(found[:limit])

    def _matched(
        self,
        snapshot: IndexSnapshot,
        parsed: whoosh_query.Query | None,
        filters: Mapping[str, np.ndarray],
        scored: bool,
        request: SearchRequest | None = None,
    ) -> _Matched:
        """The query's matches over every document (all live ones for no text), with their
        scores when ``scored`` (see :meth:`IndexSnapshot.match`): only those within the
        ``filters``, which no page shows the others of (a week of a common word's matches is
        scored in a fraction of the time all of them take). A relevance ``request`` without
        filters or explanations for a lone word takes its page from the word's score order
        instead (:meth:`QueryMatcher.ranked`): its matches are not scored, and without facets
        are counted from its documents, their mask made only if read."""
        ranked = None
        if parsed is None:
            matches = Matches(snapshot.live, None)
        else:
            if request is not None and _reads_ranked(request, filters):
                deleted = snapshot.size - snapshot.live_count  # read past, see _top_of_ranked
                needed = request.offset + request.per_page + deleted
                ranked = snapshot.matcher.ranked(parsed, needed)
                every = None
                if ranked is not None and not request.facets:
                    return _ranked_matched(snapshot, parsed, ranked)
                if ranked is None and not request.facets:
                    every = snapshot.matcher.every_word(parsed)
                if every is not None:
                    return _every_word_matched(snapshot, request, parsed, every)
            within = _all(snapshot.live, filters.values()) if scored and filters else None
            matches = snapshot.match(parsed, scored and ranked is None, within)
        final = _all(matches.mask, filters.values())
        total = int(np.count_nonzero(final))  # 8 times faster than final.sum()
        return _Matched(parsed, matches, final, total, ranked)

    def _matched_among(
        self,
        snapshot: IndexSnapshot,
        parsed: whoosh_query.Query,
        allowed: np.ndarray,
        charged: bool = False,
    ) -> _MatchedAmong:
        """The query's matches among the few documents ``allowed`` (see :meth:`_among`);
        ``charged``: the query was charged to the request already."""
        at, scores = snapshot.match_at(parsed, allowed, charged)
        return _MatchedAmong(parsed, allowed[at], None if scores is None else scores[at])

    def _filter_masks(self, snapshot: IndexSnapshot, request: SearchRequest) -> _FilterMasks:
        """One mask per active filter, keyed by facet name (the month facet's for the date
        range, ``quality`` for the quality range), each made when first read."""
        masks: dict[str, Callable[[], np.ndarray]] = {
            name: partial(snapshot.facet(name).documents_with, values, snapshot.size)
            for name, values in request.filters.items()
            if values
        }
        if request.date_from or request.date_to:
            masks[MONTH.name] = partial(snapshot.date_range, request.date_from, request.date_to)
        if request.min_quality is not None or request.max_quality is not None:
            masks["quality"] = partial(
                snapshot.quality_range, request.min_quality, request.max_quality
            )
        return _FilterMasks(masks)

    def _retry(
        self,
        snapshot: IndexSnapshot,
        request: SearchRequest,
        correction: Correction | None,
        filters: Mapping[str, np.ndarray],
    ) -> tuple[relaxation.Retry, _Matched] | None:
        """Nothing matched: run the corrected query, else the query with fewer required words
        (:mod:`searchidx.relaxation`), else a fuzzy one, if any finds hits (its matches over
        every document)."""
        allowed = _all(snapshot.live, filters.values())
        if filters and not allowed.any():
            return None  # the filters alone match nothing, so no query text can
        attempts = relaxation.retries(
            request.text, correction, lambda text: self._relaxed(snapshot, text, filters)
        )
        for retry in attempts:
            if retry.kind == "fuzzy" and snapshot.matcher.finds_none(retry.parsed, allowed):
                continue  # what it would find the filters leave out: its walks are not needed
            try:
                matched = self._matched(
                    snapshot, retry.parsed, filters, _reads_scores(request), request
                )
            except bounds.QueryTooBroad:  # a retry the user did not ask for: skip it
                continue
            if matched.total:
                return retry, matched
        return None

    def _relaxed(
        self, snapshot: IndexSnapshot, text: str, filters: Mapping[str, np.ndarray]
    ) -> Relaxation | None:
        """Which required words of the query ``text`` to drop so that it finds something (if
        every word of it is required)."""
        parts = querylang.read(text).parts
        if not parts:
            return None

        def matching(text: str) -> np.ndarray:
            parsed = querylang.parse_reading(Reading(text))
            return self._matched(snapshot, parsed, filters, scored=False).final

        try:
            return relaxation.relax(parts, matching, snapshot.size)
        except bounds.QueryTooBroad:  # a retry the user did not ask for: skip it
            return None

    def _page(self, snapshot: IndexSnapshot, request: SearchRequest, matched: _Matched) -> Page:
        """(docnum, score) of the requested page of the matches over every document, in the
        requested order."""
        if matched.ranked is not None:
            return _top_of_ranked(snapshot, matched.ranked, request.offset, request.per_page)
        sort, parsed, final = request.effective_sort, matched.parsed, matched.final
        if sort is Sort.RELEVANCE and parsed is not None:
            docs = np.flatnonzero(final)
            scores = matched.matches.scores
            return self._ordered(
                snapshot, request, parsed, docs, None if scores is None else scores[docs]
            )
        if sort is Sort.BEST:  # worked out at the matches alone (all documents: ~1 ms)
            docs = np.flatnonzero(final)
            return self._ordered(
                snapshot, request, parsed, docs, self._best_scores(snapshot, request, matched, docs)
            )
        walked = _walked(snapshot, request, matched)
        if walked is not None:
            return walked
        return self._ordered(snapshot, request, parsed, np.flatnonzero(final), None)

    def _best_scores(
        self, snapshot: IndexSnapshot, request: SearchRequest, matched: _Matched, docs: np.ndarray
    ) -> np.ndarray:
        """The ``best`` scores of ``docs``: their text scores times freshness and quality
        (without query text, freshness and quality alone)."""
        freshness = snapshot.freshness_factors(request.half_life_days, docs)
        boosts: np.ndarray = freshness * snapshot.quality_factors[docs]
        if matched.parsed is not None:
            boosts = boosts * self._text_scores(snapshot, matched.parsed, matched.matches)[docs]
        return boosts

    def _ordered(
        self,
        snapshot: IndexSnapshot,
        request: SearchRequest,
        parsed: whoosh_query.Query | None,
        docs: np.ndarray,
        scores: np.ndarray | None,
    ) -> Page:
        """(docnum, score) of the requested page of the matches ``docs`` (ascending): by their
        ``scores`` in a scored order (relevance, best), by Whoosh's for relevance without
        them, else in the presorted order (relevance without query text: the newest)."""
        start, end = request.offset, request.offset + request.per_page
        sort = request.effective_sort
        if sort in _SCORED and scores is not None:
            return ranking.top_of(docs, scores, start, end)
        if sort is Sort.RELEVANCE and parsed is not None:
            return _ranked_by_whoosh(snapshot, parsed, set(docs.tolist()), start, end)
        return _by_rank(snapshot, Sort.NEWEST if sort is Sort.RELEVANCE else sort, docs, start, end)

    def _among(
        self,
        snapshot: IndexSnapshot,
        request: SearchRequest,
        parsed: whoosh_query.Query,
        filters: Mapping[str, np.ndarray],
    ) -> _MatchedAmong | None:
        """The query's matches within the filters, looked up among the documents of a word
        it requires (:meth:`QueryMatcher.required_word`) that the filters allow, or among
        the few documents the filters allow (:meth:`_few_allowed`), whichever are fewer; a
        lone word's are its own. None when the query is to be matched over every document:
        no filter, the search needs its matches there (facet counts, explained scores, the
        best sort's boosts), or the word's allowed documents are many (past
        :data:`~searchidx.matching.SPARSE_SHARE`, as a scored query's are)."""
        if not filters or request.facets or request.explain:
            return None
        if request.effective_sort is Sort.BEST:
            return None
        required = snapshot.matcher.required_word(parsed) if WORD_AMONG else None
        fewer = None if required is None else len(required[0].docs) // WORD_AMONG
        allowed = self._few_allowed(snapshot, request, parsed, filters, fewer)
        if allowed is not None:
            return self._matched_among(snapshot, parsed, allowed, required is not None)
        if required is None:
            return None
        (docs, scores), whole = required
        # Where they are, then taken: a few of a common word's documents masked out twice
        # cost three times more (170 us at 50,000 documents, 56).
        kept = np.flatnonzero(self._allowed_at(snapshot, request, filters, docs))
        if whole:
            assert scores is not None  # a required word has its scores
            return _MatchedAmong(parsed, docs.take(kept), scores.take(kept))
        docs = docs.take(kept)  # every match is among them: the query looked up there
        if len(docs) * SPARSE_SHARE > snapshot.size:
            return None
        return self._matched_among(snapshot, parsed, docs, charged=True)

    def _allowed_at(
        self,
        snapshot: IndexSnapshot,
        request: SearchRequest,
        filters: Mapping[str, np.ndarray],
        docs: np.ndarray,
    ) -> np.ndarray:
        """Which of ``docs`` are live (each, unless none is deleted) and within the filters
        (at least one): the date range's by their dates (its mask of every document not
        made)."""
        kept: np.ndarray | None = None
        if snapshot.live_count < snapshot.size:
            kept = snapshot.live[docs]
        for name in filters:
            if name == MONTH.name:
                allowed = snapshot.dated(docs, request.date_from, request.date_to)
            else:
                allowed = filters[name][docs]
            kept = allowed if kept is None else kept & allowed
        assert kept is not None  # there are filters (see _among)
        return kept

    def _few_allowed(
        self,
        snapshot: IndexSnapshot,
        request: SearchRequest,
        parsed: whoosh_query.Query,
        filters: Mapping[str, np.ndarray],
        fewer: int | None,
    ) -> np.ndarray | None:
        """The documents the filters allow (ascending), when there are few enough of them
        for the query's terms (a week's, a small outlet's) to look the query up at them alone
        instead of matching it over every document, and fewer than ``fewer`` (if given);
        None when not."""
        most = snapshot.size // (len(bounds.leaves(parsed)) * FEW_ALLOWED_SHARE or 1)
        if fewer is not None:
            most = min(most, fewer)
        if filters.keys() == {MONTH.name}:  # its mask unread: the range's slice of the dates
            first, last = snapshot.dated_span(Sort.OLDEST, request.date_from, request.date_to)
            if last - first > most:  # deleted ones too
                return None
            return snapshot.dated_docs(request.date_from, request.date_to)
        allowed = _all(snapshot.live, filters.values())
        if np.count_nonzero(allowed) > most:
            return None
        return np.flatnonzero(allowed)

    def _text_scores(
        self, snapshot: IndexSnapshot, parsed: whoosh_query.Query, matches: Matches
    ) -> np.ndarray:
        """Every document's text score: the snapshot's, else Whoosh's (zero where unmatched)."""
        if matches.scores is not None:
            return matches.scores
        scores = np.zeros(snapshot.size)
        with snapshot.reading:
            for hit in snapshot.searcher.search(parsed, limit=None):
                scores[hit.docnum] = hit.score
        return np.where(matches.mask, scores, 0.0)

    def _explained(
        self,
        snapshot: IndexSnapshot,
        request: SearchRequest,
        matched: _Matched,
        page: Page,
    ) -> list[Explanation | None]:
        """The parts of each page hit's ``best`` score, if the request asks for them."""
        if not request.explain or not page:
            return [None] * len(page)
        docs = np.array([docnum for docnum, _ in page], dtype=np.int64)
        freshness = snapshot.freshness_factors(request.half_life_days, docs)
        quality = snapshot.quality_factors[docs]
        text, fields, parsed = None, None, matched.parsed
        if parsed is not None:
            text = self._text_scores(snapshot, parsed, matched.matches)[docs]
            fields = snapshot.matcher.field_scores(parsed, tuple(FIELD_BOOSTS), docs)
        explained: list[Explanation | None] = []
        for number, docnum in enumerate(docs.tolist()):
            known = snapshot.qualities[docnum] != QUALITY_MISSING
            best = freshness[number] * quality[number]
            explained.append(
                Explanation(
                    text=None if text is None else float(text[number]),
                    fields=None
                    if fields is None
                    else {name: float(part[number]) for name, part in fields.items()},
                    freshness=float(freshness[number]),
                    quality=float(quality[number]),
                    age_days=float(snapshot.age_days(docnum)),
                    quality_percentile=float(snapshot.quality_percentiles[docnum])
                    if known
                    else None,
                    best=float(best if text is None else text[number] * best),
                )
            )
        return explained

    def _hit(
        self,
        snapshot: IndexSnapshot,
        docnum: int,
        score: float | None,
        terms: frozenset[str],
        explain: Explanation | None,
    ) -> Hit:
        article = snapshot.shown(docnum)
        return highlight.hit(article, terms, score, explain, partial(snapshot.body, docnum))

    def _facets(
        self,
        snapshot: IndexSnapshot,
        request: SearchRequest,
        matches: np.ndarray,
        filters: Mapping[str, np.ndarray],
    ) -> tuple[Facet, ...]:
        counts: dict[str, np.ndarray] = {}
        groups: list[tuple[np.ndarray, list[str]]] = []  # facets counted over the same mask
        unfiltered = _all(matches, filters.values())  # the facets with no filter of their own
        for facet in FACETS:
            others = unfiltered
            if facet.name in filters:
                others = _all(matches, (mask for key, mask in filters.items() if key != facet.name))
            if others is snapshot.live:  # no text, no other filter
                counts[facet.name] = snapshot.counts_of_all(facet.name)
                continue
            group = next((names for mask, names in groups if mask is others), None)
            if group is None:
                groups.append((others, [facet.name]))
            else:
                group.append(facet.name)
        for others, names in groups:
            counts.update(snapshot.facet_counts(names, others))
        facets = []
        for facet in FACETS:
            name = facet.name
            table = snapshot.facet(name)
            if facet.kind is Kind.MONTH:
                facets.append(_month_facet(name, table.values, counts[name], request))
                continue
            selected = {value.casefold(): value for value in request.filters.get(name, ())}
            facets.append(
                _top_values(
                    name,
                    table,
                    counts[name],
                    selected,
                    request.facet_size,
                    request.facet_search.get(name, ""),
                )
            )
        return tuple(facets)


class _FilterMasks(Mapping[str, np.ndarray]):
    """A request's filter masks by name, each made when first read and kept: a search that
    looks its query up at a date range's few documents alone never makes the range's mask
    (see :meth:`SearchService._few_allowed`)."""

    def __init__(self, makers: dict[str, Callable[[], np.ndarray]]) -> None:
        self._makers = makers
        self._made: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        mask = self._made.get(name)
        if mask is None:
            mask = self._made[name] = self._makers[name]()
        return mask

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)


def _read(text: str) -> tuple[Reading | None, whoosh_query.Query | None]:
    """How the query text is read, and its query (None, None for no text); raises
    :class:`QueryError` for a text that cannot be searched."""
    reading = querylang.read(text) if text.strip() else None
    return reading, querylang.parse_reading(reading) if reading else None


def _reads_scores(request: SearchRequest) -> bool:
    """Whether the request reads the text scores: its order, or its hits' explanations."""
    return request.effective_sort in _SCORED or request.explain


def _reads_ranked(request: SearchRequest, filters: Mapping[str, np.ndarray]) -> bool:
    """Whether the request's page can be read off a score order of every match: relevance,
    no filter, no explained scores."""
    return request.effective_sort is Sort.RELEVANCE and not filters and not request.explain


def _ranked_matched(
    snapshot: IndexSnapshot, parsed: whoosh_query.Query, ranked: Postings
) -> _Matched:
    """The matches of a lone word whose page is read off its score order (``ranked``),
    counted from its documents (charged to the request as :meth:`IndexSnapshot.match`
    charges them), their mask of every document made only if read (its page and total do
    not: some 30 us of a word's 120 kept from an earlier search at 100,000 articles)."""
    docs = snapshot.matcher.word_documents(parsed)
    assert docs is not None  # a lone word's, as ranked
    total = (
        len(docs) if snapshot.live_count == snapshot.size else np.count_nonzero(snapshot.live[docs])
    )
    return _Matched(parsed, lambda: snapshot.match(parsed, False), None, int(total), ranked)


def _every_word_matched(
    snapshot: IndexSnapshot, request: SearchRequest, parsed: whoosh_query.Query, every: Postings
) -> _Matched:
    """The matches of a query of words that must all match, given as its live documents and
    their scores (:meth:`QueryMatcher.every_word`), with the page's top in score order: the
    mask of those documents alone made if read (no facet counts read it, nor its page)."""

    def matches() -> Matches:
        mask = np.zeros(snapshot.size, dtype=bool)
        mask[every.docs] = True
        return Matches(mask, None)

    assert every.scores is not None  # see every_word
    ranked = Postings(
        *ranking.score_order(every.docs, every.scores, request.offset + request.per_page)
    )
    return _Matched(parsed, matches, None, len(every.docs), ranked)


def _top_of_ranked(snapshot: IndexSnapshot, ranked: Postings, start: int, count: int) -> Page:
    """The page of ``count`` from ``start`` of documents in score order, deleted ones
    skipped (as many more of its top are read as there are deleted documents)."""
    assert ranked.scores is not None  # a score order has its scores
    end, deleted = start + count, snapshot.size - snapshot.live_count
    docs, scores = ranked.docs[: end + deleted], ranked.scores[: end + deleted]
    if deleted:
        kept = snapshot.live[docs]
        docs, scores = docs[kept], scores[kept]
    return list(zip(docs[start:end].tolist(), scores[start:end].tolist(), strict=True))


def _schema_version(store: IndexStore, generation: str) -> int | None:
    """The schema version ``generation`` was written with (None if unknown)."""
    try:
        return store.read_meta(generation).schema_version
    except (OSError, ValueError, TypeError, IndexMissingError):
        return None


def _ranked_by_whoosh(
    snapshot: IndexSnapshot,
    parsed: whoosh_query.Query,
    docset: set[int],
    start: int,
    end: int,
) -> Page:
    """A page ranked by Whoosh, for a query part whose scores the snapshot does not reproduce:
    scoring every match (its top-N collector can miss the best ones: whoosh3 3.54, ANDMAYBE)
    of ``docset``."""
    if not docset:  # Whoosh reads an empty filter as none: every document
        return []
    with snapshot.reading:
        results = snapshot.searcher.search(parsed, filter=docset, limit=None)
        return [(hit.docnum, hit.score) for hit in results[start:end]]


def _dated(
    snapshot: IndexSnapshot, request: SearchRequest, filters: Mapping[str, np.ndarray]
) -> _Dated | None:
    """The documents of a search of no query text in a date order (relevance without text:
    the newest) within a date range alone, or no filter, asking for no facet counts or
    explanations: the range's slice of that order, its deleted documents left out (as FTS5
    reads its row ids in date order from the range's first). The page is read off it; no
    mask of every document is made and none scanned to count them (a tenth of such a
    search's CPU at 100,000 articles). None for any other search."""
    sort = request.effective_sort
    sort = Sort.NEWEST if sort is Sort.RELEVANCE else sort
    if sort not in (Sort.NEWEST, Sort.OLDEST) or request.facets or request.explain:
        return None
    if not filters.keys() <= {MONTH.name}:
        return None
    return _Dated(snapshot.dated_in_order(sort, request.date_from, request.date_to))


def _walked(snapshot: IndexSnapshot, request: SearchRequest, matched: _Matched) -> Page | None:
    """The requested page in a presorted order (relevance without query text: the newest),
    read off that order as far as the page likely ends; None when the matches are to be
    sorted instead.

    As SQLite's FTS5 walks its row ids in date order from a date range's first and stops at
    the page's end: the sort order from where the matches can start (the date range's slice
    of a date order) as far as the page is likely to end (the matches spread evenly), twice
    over. Reading that much of it costs less than finding every match (a scan of every
    document) unless the matches are few there; if they cluster further on, the matches are
    sorted."""
    sort = request.effective_sort
    sort = Sort.NEWEST if sort is Sort.RELEVANCE else sort
    start, end, total = request.offset, request.offset + request.per_page, matched.total
    first, last = snapshot.dated_span(sort, request.date_from, request.date_to)
    walk = min(last - first, 2 * end * (last - first) // max(total, 1) + PAGE_LOOKAHEAD)
    if walk * SMALL_RESULT_SHARE > snapshot.size and total * SMALL_RESULT_SHARE <= snapshot.size:
        return None
    walked = snapshot.order(sort)[first : first + walk]
    found = walked[matched.final[walked]]
    if len(found) < end and first + walk != last:
        return None
    return [(int(docnum), None) for docnum in found[start:end]]


def _by_rank(snapshot: IndexSnapshot, sort: Sort, docs: np.ndarray, start: int, end: int) -> Page:
    """The page of ``docs`` in ``sort``'s order (a presorted one)."""
    ranks = snapshot.rank(sort)[docs]
    if len(docs) > end:
        nearest = np.argpartition(ranks, end - 1)[:end]
        docs, ranks = docs[nearest], ranks[nearest]
    return [(int(docnum), None) for docnum in docs[np.argsort(ranks)][start:end]]


def _all(base: np.ndarray, masks: Iterable[np.ndarray]) -> np.ndarray:
    """``base`` AND every mask (a new array; ``base`` itself when there are none)."""
    result = base
    for mask in masks:
        result = result & mask
    return result


#: A facet of at most this many values (topics, categories, types) is ranked in Python:
#: numpy's five calls cost more than sorting a few dozen counts.
FEW_FACET_VALUES = 64


def _top_values(
    name: str,
    table: FacetTable,
    counts: np.ndarray,
    selected: dict[str, str],
    size: int,
    search: str,
) -> Facet:
    """The ``size`` values with most hits (ties by name), plus every selected value.

    ``selected`` maps the casefolded form of each selected value to the value as requested.
    """
    values = table.values
    needle = search.casefold()
    if len(values) <= FEW_FACET_VALUES:  # sorted in Python: no numpy call per facet
        found = counts.tolist()
        candidates = [i for i in table.name_order if found[i]]
        if needle:
            candidates = [i for i in candidates if _word_starts_with(values[i].casefold(), needle)]
        # Stable, reverse too: equal counts stay in name order.
        shown = sorted(candidates, key=found.__getitem__, reverse=True)[:size]
        unshown = len(candidates) - size
    else:
        nonzero = np.flatnonzero(counts)
        if needle:
            nonzero = np.array(
                [i for i in nonzero if _word_starts_with(values[i].casefold(), needle)],
                dtype=int,
            )
        shortlist = nonzero
        if len(nonzero) > size:  # only values that can make the top ``size`` need sorting
            cut = len(nonzero) - size
            shortlist = nonzero[counts[nonzero] >= np.partition(counts[nonzero], cut)[cut]]
        ranked = shortlist[np.lexsort((table.name_ranks[shortlist], -counts[shortlist]))]
        shown = ranked[:size].tolist()
        unshown = len(nonzero) - size
    shown_keys = {values[i].casefold() for i in shown}
    by_key = table.ids_by_key
    for key in sorted(selected.keys() - shown_keys):
        if key in by_key:
            shown.append(by_key[key])
    listed = [values[i] for i in shown]
    missing = [selected[key] for key in sorted(selected.keys() - by_key.keys())]
    return Facet(
        name,
        (*listed, *missing),
        (*counts[shown].tolist(), *[0] * len(missing)),
        (*[value.casefold() in selected for value in listed], *[True] * len(missing)),
        more=max(0, unshown),
    )


def _word_starts_with(value: str, needle: str) -> bool:
    return value.startswith(needle) or any(word.startswith(needle) for word in value.split())


def _month_facet(
    name: str, months: tuple[str, ...], counts: np.ndarray, request: SearchRequest
) -> Facet:
    """Every month with hits, in calendar order; months inside the date range are selected."""
    low = f"{request.date_from:%Y-%m}" if request.date_from else ""
    high = f"{request.date_to:%Y-%m}" if request.date_to else "9999-12"
    chosen = request.date_from is not None or request.date_to is not None
    shown = np.flatnonzero(counts)  # a search's months with hits, of every month's
    listed = tuple(months[number] for number in shown.tolist())
    return Facet(
        name,
        listed,
        tuple(counts[shown].tolist()),
        tuple(chosen and low <= month <= high for month in listed),
    )
