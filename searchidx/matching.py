"""Matching and scoring a parsed query over one searcher's postings, as numpy arrays.

Whoosh matches and scores document by document in Python: tens to hundreds of milliseconds per
query at 100,000 articles (measured at 20,000 on 2 cores with whoosh3 3.54: a relevance top 10
took 4.8 ms at p50 and 29 ms at p95, with facet counts 14 / 243 ms). A term's posting list is
read once per searcher into an array of docnums and an array of its BM25F scores, computed with
Whoosh's own formula, statistics and field lengths, so scores (and so rankings) are the ones
Whoosh computes; queries are then evaluated as boolean masks and score sums, and phrases are
checked on cached positions. Query shapes this does not reproduce exactly are handed to Whoosh
(tests/test_search_fastpaths.py and tests/test_fastpaths_equal_whoosh.py hold the two to the
same answers). What is read below Whoosh's API is read by :mod:`searchidx.whoosh_internals`.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, NamedTuple, TypeGuard, cast

import numpy as np
from whoosh import query
from whoosh.reading import IndexReader
from whoosh.scoring import BM25F
from whoosh.searching import Searcher

from searchidx import bounds, ranking, whoosh_internals
from searchidx.lru import LruCache

#: Memory for decoded posting lists and positions, per snapshot (least recently used go first):
#: as many words as 192 MiB held while each word's fields were kept beside its union (see
#: :meth:`QueryMatcher._merged`: the same words in two thirds of the bytes), and with the rest
#: of a server's worker (Python, arrays, kept results and articles, mapped pages) within its
#: 300 MB at 100,000 articles, where 192 MiB filled up did not keep it so.
POSTINGS_CACHE_BYTES = 128 * 1024 * 1024
#: Expanded wildcard, prefix and fuzzy terms kept per snapshot (per query and segment).
EXPANSIONS_CACHED = 4096
#: Words' document counts kept per snapshot (what each request is charged for them).
FREQUENCIES_CACHED = 65536
#: Words' term index entries kept per snapshot: a word's count and postings are read from
#: them, in one search (a few hundred bytes a word).
ENTRIES_CACHED = 1024
#: Positions are packed with their docnum into one integer: ``docnum << _POSITION_BITS | pos``.
_POSITION_BITS = 24
#: Posting values decoded to positions between two checks of the request's budget (0.2 us
#: each with one-byte deltas, 0.7 us otherwise: 2-6 ms).
_DECODED_PER_CHECK = 8192
#: A query's scores are summed at its documents alone (looked up in each posting list) when
#: they are fewer than all documents / this; past that, over every document.
SPARSE_SHARE = 8
#: Two ascending docnum arrays are matched up by binary search when one is this many times
#: shorter than the other, else through a table of every document (9,000 against 9,000
#: documents: 40 us against 170).
_SEARCHED_SHARE = 16
#: A word's union of this share of all documents or more is intersected with a query's other
#: words through a table of every document (see :meth:`QueryMatcher._shared_with_union`):
#: 0.4 MB at 100,000 articles, kept beside a union of at least 0.2 MB.
_TABLED_SHARE = 8
#: A lone word's score order is sorted this far at least (see :meth:`QueryMatcher.ranked`):
#: the first pages of any search, six pages of ten with few documents deleted; a deeper page
#: sorts its own top, once. Sorted to 1024, a word's first search took 65 us more for 4,000
#: documents (the bench's companies, at 100,000 articles), 80 for 30,000.
RANKED_TOP = 64
#: A lone word's (field, text, boost) terms.
_Terms = tuple[tuple[str, str | bytes, float], ...]
#: A cache key: ("postings" or "positions", field, word), ("union", its terms) or ("ranked",
#: its terms, the boost of their Or, how far it is sorted).
_CacheKey = tuple[Hashable, ...]


class Postings(NamedTuple):
    """One term's documents (ascending docnums, deleted ones included) and its score in each:
    Whoosh's BM25F for scored fields, the posting weight for the others; None when the
    searcher's weighting is not one reproduced here."""

    docs: np.ndarray
    scores: np.ndarray | None

    @property
    def nbytes(self) -> int:
        return self.docs.nbytes + (0 if self.scores is None else self.scores.nbytes)


class Matches(NamedTuple):
    """The documents a query matches (deleted ones excluded) and, when asked for and
    reproducible, their scores (zero elsewhere, and outside the documents scored ``within``)."""

    mask: np.ndarray
    scores: np.ndarray | None


class _CannotTell(Exception):
    """A :meth:`QueryMatcher.finds_none` check that cannot tell (the query is matched)."""


class _Expansion:
    """How a query's fuzzy words and wildcards are expanded as it is evaluated: as a search
    expands them (:data:`_WALKED`: each segment's words walked, the walks charged to the request
    before, by :meth:`QueryMatcher.match`), or :class:`_Unwalked`."""

    def read(self, postings: int) -> None:
        """``postings`` of an expanded word are read."""


#: A search's expansion: fuzzy words and wildcards walked.
_WALKED = _Expansion()


class _Unwalked(_Expansion):
    """A :meth:`QueryMatcher.finds_none` check's expansion: fuzzy words found without a walk
    (:func:`~searchidx.whoosh_internals.fuzzy_words_near`), the words and postings they
    expand to counted, which stops the check past a request's caps on them (the query,
    matched, is refused there or not)."""

    def __init__(self) -> None:
        self.words = 0
        self.postings = 0

    def expanded(self, words: int) -> None:
        self.words += words
        if self.words > bounds.MAX_EXPANDED_TERMS:
            raise _CannotTell

    def read(self, postings: int) -> None:
        self.postings += postings
        if self.postings > bounds.MAX_EXPANDED_POSTINGS:
            raise _CannotTell


class QueryMatcher:
    """Evaluates parsed queries over one searcher's documents; keeps the postings it reads
    (the least recently used go past :data:`POSTINGS_CACHE_BYTES`). Owned by an
    :class:`~searchidx.snapshot.IndexSnapshot`, which gives it the live documents and the field
    lengths (columns are its business), and the documents of a numeric range of the query text
    (``quality:[0 TO 100]``, ``date:2022``) from the arrays the filters use.

    Safe to share between threads: every read through Whoosh's readers holds :attr:`reading`
    (one term at a time), a lock only where they keep one file position for all threads (see
    :func:`~searchidx.whoosh_internals.reads_side_by_side`); the arrays are shared."""

    def __init__(
        self,
        searcher: Searcher,
        leaves: Sequence[tuple[IndexReader, int]],
        live: np.ndarray,
        field_lengths: Callable[[str], np.ndarray],
        numeric_range: Callable[[query.NumericRange], np.ndarray | None] = lambda q: None,
    ) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()
        self.schema = searcher.schema
        self.size = len(live)
        self.live = live
        self._deleted = np.flatnonzero(~live)
        self._leaves = leaves
        self._field_lengths = field_lengths
        self._numeric_range = numeric_range
        #: Whether postings may be read below Whoosh's API; if not, Whoosh matches every query.
        self.fast = whoosh_internals.layout_known()
        side_by_side = self.fast and whoosh_internals.reads_side_by_side(
            leaf for leaf, _ in self.reader.leaf_readers()
        )
        # Without a lock, a search reading a long posting list (a phrase's common word, cold:
        # up to 100 ms) shares the process's time with the others instead of holding them up.
        self.reading: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if side_by_side else threading.RLock()
        )
        weighting = searcher.weighting
        self._bm25 = weighting if type(weighting) is BM25F else None
        #: A term's postings or its positions, weighed by their bytes.
        self._cache: LruCache[_CacheKey, Any] = LruCache(
            POSTINGS_CACHE_BYTES, weight=lambda value: int(value.nbytes)
        )
        #: (field, word) -> its documents.
        self._frequencies: LruCache[tuple[str, str | bytes], int] = LruCache(FREQUENCIES_CACHED)
        self._term_indexes = whoosh_internals.term_indexes(
            (leaf for leaf, _ in leaves), self.schema
        )
        #: (field, word) -> its entry in each segment's term index.
        self._term_entries: LruCache[tuple[str, bytes], whoosh_internals.TermEntries | None] = (
            LruCache(ENTRIES_CACHED)
        )
        #: (query, segment base, words needed) -> (words, index words tested).
        self._expansions: LruCache[tuple[str, int, int | None], tuple[list[bytes], int]] = LruCache(
            EXPANSIONS_CACHED
        )
        #: (query, caps) -> (words, their documents, index words tested).
        self._charges: LruCache[tuple[str, int | None, int, int], tuple[list[bytes], int, int]] = (
            LruCache(EXPANSIONS_CACHED)
        )
        self._doc_count = self.reader.doc_count_all()
        #: A scored field -> each document's part of its BM25 from its length there.
        self._length_parts: dict[str, np.ndarray] = {}
        #: Query nodes handed to Whoosh to match (tests check the fast paths are taken).
        self.handed_to_whoosh = 0
        self._scoring = threading.local()  # ``field``: score only this field (field_scores)

    def match(self, parsed: query.Query, scored: bool, within: np.ndarray | None = None) -> Matches:
        """The documents ``parsed`` matches and, if ``scored``, their Whoosh scores (None when
        the query has a part whose score is not reproduced: rank with Whoosh then), scored only
        ``within`` a mask if given (a search's filters: no page shows the others' scores).

        Every word, expansion and phrase is charged to the request first, so a query past the
        caps is refused before any of its postings are read."""
        self._charge_query(parsed)
        return self._matched(parsed, scored, within)

    def match_at(
        self, parsed: query.Query, docs: np.ndarray, charged: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Which of ``docs`` (ascending docnums of live documents: a filter's few) ``parsed``
        matches, and their scores as :meth:`match` gives them (None: none it gives). Each
        word's postings are looked up at ``docs`` alone where the query's parts allow: no
        array of every document is made (a week's documents in a fraction of the time).
        ``charged``: the query was charged to the request already (:meth:`required_word`;
        charging looks each word up again, some 20 us for three words)."""
        if not charged:
            self._charge_query(parsed)
        if self.fast:
            return self._evaluate(parsed, scored=True, at=docs)
        matches = self._matched(parsed, True, None)
        return matches.mask[docs], None if matches.scores is None else matches.scores[docs]

    def _charge_query(self, parsed: query.Query) -> None:
        """Charge every word, expansion and phrase of ``parsed`` to the request."""
        for leaf in bounds.leaves(parsed):
            if type(leaf) is query.Term:
                bounds.charge_word(leaf, self.documents(leaf.fieldname, leaf.text))
            elif isinstance(leaf, query.MultiTerm):
                expanded, postings, unpaid = self._charge(leaf)
                bounds.visit(leaf, unpaid)
                bounds.charge(leaf, expanded, postings)
            elif isinstance(leaf, query.Phrase) and not isinstance(leaf, ranking.TitlePhrase):
                words = self._phrase_words(leaf)
                bounds.charge_phrase(leaf, sum(found for _, _, found in words or ()))

    def _matched(self, parsed: query.Query, scored: bool, within: np.ndarray | None) -> Matches:
        """:meth:`match`, its query charged."""
        if not self.fast:
            return Matches(self._evaluate_with_whoosh(parsed)[0] & self.live, None)
        if scored:
            mask, scores = self._scored(parsed, within)
        else:
            mask, scores = self._evaluate(parsed, scored=False)
        if not len(self._deleted):  # scores are zero where the mask is False (see _evaluate)
            return Matches(mask, scores if scored else None)
        mask = mask & self.live
        if not scored or scores is None:
            return Matches(mask, None)
        # Zeroed at the deleted documents alone, in place (each evaluation's scores are its
        # own): a np.where over every document took 0.1-0.4 ms at 100,000.
        scores[self._deleted] = 0.0
        return Matches(mask, scores)

    def field_scores(
        self, parsed: query.Query, fieldnames: Sequence[str], docnums: np.ndarray
    ) -> dict[str, np.ndarray] | None:
        """Each field's part of the scores of ``docnums``, and ``other``: what no field
        accounts for (``NOT x`` scores 1 a match); None where :meth:`match` gives no scores.

        A score is a sum of postings' scores (times boosts) and of such constants, so the
        query evaluated with every posting but one field's scoring 0 (still matching) is
        that field's part plus the constants, and with every posting scoring 0 the constants.
        """
        if not self.fast:
            return None
        evaluated = {}
        try:
            for name in ("", *fieldnames):  # "": no field scores
                self._scoring.field = name
                scores = self._evaluate(parsed, scored=True)[1]
                if scores is None:
                    return None
                evaluated[name] = scores[docnums]
        finally:
            self._scoring.field = None
        other = evaluated.pop("")
        return {**{name: part - other for name, part in evaluated.items()}, "other": other}

    def finds_none(self, parsed: query.Query, within: np.ndarray) -> bool:
        """Whether ``parsed`` surely matches no document of ``within``, told for a query of
        words, phrases and fuzzy words without walking the fuzzy words' word lists (see
        :func:`~searchidx.whoosh_internals.fuzzy_words_near`): a walk counts the index words it
        looks up, a request's bound, but a query that finds nothing there needs no bound,
        whether or not it would pass it. False when that cannot be told so: :meth:`match` it.
        """
        if not self.fast or not all(map(_unwalked_leaf, bounds.leaves(parsed))):
            return False
        try:
            mask = self._evaluate(parsed, scored=False, expansion=_Unwalked())[0]
        except _CannotTell:
            return False
        return not (mask & within).any()

    def _evaluate(
        self,
        q: query.Query,
        scored: bool,
        expansion: _Expansion = _WALKED,
        at: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(mask, scores) of one query node; scores are zero where the mask is False. Its
        fuzzy words and wildcards expanded as ``expansion`` says; of the (sorted) documents
        ``at`` alone if given (masks and scores as long as it: the same sums in the same
        order), else of every document."""
        if type(q) is query.Term:
            return self._term(q.fieldname, q.text, q.boost, scored, at)
        if isinstance(q, query.Phrase):
            return self._phrase(q, scored, at)
        if isinstance(q, query.MultiTerm):
            return _at(self._multiterm(q, scored, expansion), at)
        if isinstance(q, query.Every):  # a bare *: every article, whatever its fields
            live = self.live if at is None else self.live[at]
            return live.copy(), live * q.boost if scored else None
        if isinstance(q, query.NumericRange):
            mask = self._numeric_range(q)
            if mask is not None:  # Whoosh scores a range with its boost
                return _at((mask, mask * q.boost if scored else None), at)
        if _plain_or(q) and q.subqueries and all(type(sub) is query.Term for sub in q.subqueries):
            # A word in each field: the commonest node. Summed straight from the postings.
            words = cast(list[query.Term], q.subqueries)
            terms = [(sub.fieldname, sub.text, sub.boost) for sub in words]
            mask, scores = self._union(terms, scored, at)
            return mask, _boosted(scores, q.boost)
        if type(q) is query.And or _plain_or(q):
            parts = [self._evaluate(sub, scored, expansion, at) for sub in q.subqueries]
            if not parts:
                return self._nothing(scored, at)
            combine = np.logical_and if type(q) is query.And else np.logical_or
            mask = functools.reduce(combine, (part[0] for part in parts))
            return mask, _boosted(_sum(parts, mask, scored), q.boost)
        if isinstance(q, query.AndMaybe) and not scored:  # the maybe part only scores
            return self._evaluate(q.a, scored, expansion, at)
        if isinstance(q, query.AndNot | query.AndMaybe | query.Require):
            a_mask, a_scores = self._evaluate(q.a, scored, expansion, at)
            b_mask, b_scores = self._evaluate(q.b, scored, expansion, at)
            if isinstance(q, query.AndNot):
                mask, parts = a_mask & ~b_mask, [(a_mask, a_scores)]
            elif isinstance(q, query.Require):
                mask, parts = a_mask & b_mask, [(a_mask, a_scores)]
            else:
                mask, parts = a_mask, [(a_mask, a_scores), (b_mask, b_scores)]
            return mask, _boosted(_sum(parts, mask, scored), q.boost)
        if type(q) is query.Not:
            live = self.live if at is None else self.live[at]
            mask = live & ~self._evaluate(q.query, False, expansion, at)[0]
            return mask, mask.astype(np.float64) if scored else None  # Whoosh: 1.0 each
        if q is query.NullQuery or isinstance(q, type(query.NullQuery)):
            return self._nothing(scored, at)
        if isinstance(q, query.NumericRange) and q.constantscore:  # dates, qualities
            mask = self._evaluate_with_whoosh(q)[0]  # Whoosh: its boost each match
            return _at((mask, mask * float(q.boost) if scored else None), at)
        return _at(self._evaluate_with_whoosh(q), at)  # anything else: Whoosh matches it, unscored

    def _scored(
        self, parsed: query.Query, within: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`_evaluate`'s (mask, scores) of a scored query: the mask first, then the
        scores of its documents alone (those ``within`` the mask given), not of every document
        (a dozen arrays of them per word), unless they are too many."""
        fewest = self._fewest(parsed)
        if within is not None:  # as many within as its share of all documents, if spread
            fewest = fewest * int(np.count_nonzero(within)) // max(self.size, 1)
        if fewest * SPARSE_SHARE > self.size:  # surely too many: no mask first
            return self._evaluate(parsed, scored=True)
        mask = self._evaluate(parsed, scored=False)[0]
        docs = np.flatnonzero(mask if within is None else mask & within)
        if len(docs) * SPARSE_SHARE > self.size:
            return self._evaluate(parsed, scored=True)
        found = self._evaluate(parsed, scored=True, at=docs)[1]
        if found is None:
            return mask, None
        scores = np.zeros(self.size)
        scores[docs] = found
        return mask, scores

    def _fewest(self, q: query.Query) -> int:
        """How many documents ``q`` matches at least (deleted ones included), from its words'
        counts: a word's documents, the most of an OR's parts; 0 where not known so."""
        if type(q) is query.Term:
            return self.documents(q.fieldname, q.text)
        if _plain_or(q):
            return max((self._fewest(sub) for sub in q.subqueries), default=0)
        if isinstance(q, query.AndMaybe):
            return self._fewest(q.a)
        return 0

    def _nothing(
        self, scored: bool, at: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        size = self.size if at is None else len(at)
        return np.zeros(size, dtype=bool), np.zeros(size) if scored else None

    def _term(
        self, fieldname: str, text: str | bytes, boost: float, scored: bool, at: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        return self._union([(fieldname, text, boost)], scored, at)

    def _union(
        self,
        terms: Sequence[tuple[str, str | bytes, float]],
        scored: bool,
        at: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The Or of (field, text, boost) terms, with the sum of their scores (at ``at``)."""
        if len(terms) > 1 and getattr(self._scoring, "field", None) is None:
            found = [(self._merged(tuple(terms)), 1.0)]
        else:
            found = self._boosted_postings(terms)
        return self._sum_of(found, scored) if at is None else self._sum_at(found, scored, at)

    def _merged(self, terms: tuple[tuple[str, str | bytes, float], ...]) -> Postings:
        """The Or of (field, text, boost) terms as one posting list (cached): each document
        once, its score the sum of the terms' (boosted) scores, added in the terms' order as
        :meth:`_sum_of` adds them, so the same floats. A word typed is the same Or of five
        fields in every query with it: its union is made once, not in each query (five lists
        concatenated and summed over every document, or looked up at a query's documents).
        Few postings (fewer than all documents / :data:`SPARSE_SHARE`: a rare word) are
        summed by :func:`_few_summed`, at their documents alone.

        The terms' postings are not kept for it, only the union, which every query of the
        word reads: kept too, they held as many bytes again (64 of the cache's 125 MiB after
        the bench's 4,096 requests a worker at 100,000 articles). But the title's, small,
        which the title phrase bonus of the word's queries of several words reads again.

        The terms are read together where they can be (:meth:`_read_together`)."""

        def merge() -> Postings:
            together = self._read_together(terms)
            if together is None:
                found = [
                    (self.postings(name, text, keep=name == ranking.TITLE_FIELD), boost)
                    for name, text, boost in bounds.checked(terms)
                ]
                boosted = _boosted_scores(found)
                together = Postings(
                    _joined([postings.docs for postings, _ in found]),
                    None if boosted is None else _joined(boosted),
                )
            docs, weights = together
            if len(docs) * SPARSE_SHARE < self.size:
                return _few_summed(docs, weights)
            mask, scores = self._summed(docs, weights)
            united = np.flatnonzero(mask)
            return Postings(united, None if scores is None else scores[united])

        merged: Postings = self._cache.get(("union", terms), merge)
        return merged

    def _read_together(self, terms: _Terms) -> Postings | None:
        """The postings of a word's (field, text, boost) terms one term's after another, with
        their BM25F scores times their boosts (None: a field not scored so; read each term
        then): their blocks gathered into one list and its arrays made and scored once, where
        a term read alone makes its own (some 20 array operations each: most of the time a
        rare word's five fields took to read). The title's are kept, as :meth:`_merged` keeps
        them."""
        if self._bm25 is None or self._term_indexes is None:
            return None
        found = whoosh_internals.TermPostings(values=False)
        read: list[tuple[str, bytes, float, int]] = []  # (field, word, boost, postings before)
        for name, text, boost in terms:
            if name in self.schema and not self.schema[name].scorable:
                return None
            word = self._word(name, text)
            if word is not None:
                read.append((name, word, boost, found.count))
                with self.reading:
                    self._gather(found, name, word)
        docs, weights, _ = found.arrays()
        ends = [start for _, _, _, start in read[1:]] + [len(docs)] * bool(read)
        counts = np.diff([0, *ends])
        k1: float = self._bm25.K1
        idfs = [  # as _scores: none for no postings (nor on an empty index)
            math.log(self._doc_count / (self.documents(name, word) + 1)) + 1 if count else 0.0
            for (name, word, _, _), count in zip(read, counts.tolist(), strict=True)
        ]
        parts = _joined(
            [
                self._length_part(name)[docs[start:end]]
                for (name, _, _, start), end in zip(read, ends, strict=True)
            ]
            or [np.zeros(0)]
        )
        # scoring.bm25, as _scores computes it a term at a time: the same floats.
        scores = np.repeat(idfs, counts) * ((weights * (k1 + 1)) / (weights + parts))
        for (name, word, _, start), end in zip(read, ends, strict=True):
            if name == ranking.TITLE_FIELD:
                title = functools.partial(
                    Postings, docs[start:end].copy(), scores[start:end].copy()
                )
                self._cache.get(("postings", name, word), title)
        return Postings(docs, scores * np.repeat([boost for _, _, boost, _ in read], counts))

    def ranked(self, parsed: query.Query, needed: int) -> Postings | None:
        """The top ``needed`` or more of a lone word's documents in its score order (a word,
        or the same word in each field: most plain queries), highest first, ties by docnum as
        :func:`~searchidx.ranking.top_of` orders them, deleted ones included (all of them when
        fewer; cached): a page of it is read off its top, not sorted out of every match. Only
        a top of :data:`RANKED_TOP` or the next power of two past ``needed`` is sorted: a
        word's first page sorted whole cost 1.2 ms at 100,000 articles (one of 30,000
        documents: 3 ms), most of a lone word's first search. None for any other query, or
        where :meth:`match` gives no scores."""
        word = _lone_word(parsed) if self.fast else None
        if word is None:
            return None
        top = max(RANKED_TOP, 1 << max(needed - 1, 0).bit_length())

        def rank() -> Postings:
            docs, scores = self._word_union(*word)
            if scores is None:
                return Postings(docs, None)
            return Postings(*ranking.score_order(docs, scores, top))

        found: Postings = self._cache.get(("ranked", *word, top), rank)
        return None if found.scores is None else found

    def word_documents(self, parsed: query.Query) -> np.ndarray | None:
        """The documents of a lone word (ascending, deleted ones included), the query charged
        to the request first as :meth:`match` charges it; None for any other query."""
        word = _lone_word(parsed) if self.fast else None
        if word is None:
            return None
        self._charge_query(parsed)
        return self._merged(word[0]).docs

    def required_word(self, parsed: query.Query) -> tuple[Postings, bool] | None:
        """The documents of a lone word every match of ``parsed`` has (ascending, deleted ones
        included), with their scores as :meth:`match` gives that word's, and whether it is
        the whole query: the query's own if it is a lone word, else the rarest of the words
        an And of them requires (its optional parts aside: AndMaybe, the title phrase of
        typed words). The query is charged to the request first. None for any other query,
        or where :meth:`match` gives no scores."""
        if not self.fast:
            return None
        node = parsed.a if type(parsed) is query.AndMaybe else parsed
        nodes = node.subqueries if type(node) is query.And else [node]
        words = [(sub, word) for sub in nodes if (word := _lone_word(sub)) is not None]
        if not words:
            return None
        self._charge_query(parsed)
        sub, word = min(words, key=lambda found: self._fewest(found[0]))
        postings = self._word_union(*word)
        return None if postings.scores is None else (postings, sub is parsed)

    def every_word(self, parsed: query.Query) -> Postings | None:
        """The live documents (ascending) of a query of lone words that must all match (an
        And of them, with or without the title phrase bonus of typed words: most queries of
        several words), with their scores as :meth:`match` gives them: the words' documents
        intersected from their postings, the sums at those documents alone in the same order,
        where :meth:`match` makes a mask of every document per word, their And and its
        documents twice over (some 0.2 ms of a 1 ms search at 100,000 articles). The query is
        charged to the request first. None for any other query, or where :meth:`match` gives
        no scores."""
        node = parsed.a if type(parsed) is query.AndMaybe else parsed
        if not self.fast or self._bm25 is None or type(node) is not query.And:
            return None
        words = [_lone_word(sub) for sub in node.subqueries]
        if not words or None in words:
            return None
        self._charge_query(parsed)
        lone = cast(list[tuple[_Terms, float]], words)
        unions = [self._word_union(*word) for word in lone]
        order = sorted(range(len(unions)), key=lambda number: len(unions[number].docs))
        docs = unions[order[0]].docs
        where = {order[0]: np.arange(len(docs))}  # each union's postings at ``docs``
        for number in order[1:]:
            if not len(docs):
                break
            kept, taken = self._shared_with_union(docs, lone[number][0], unions[number])
            docs = docs[kept]
            where = {known: at[kept] for known, at in where.items()} | {number: taken}
        live = self.live[docs]
        if not live.all():
            docs, where = docs[live], {known: at[live] for known, at in where.items()}
        if not len(docs):
            return Postings(docs, np.zeros(0))
        # Added up in the query's order, as _evaluate's And (then AndMaybe) adds its parts.
        parts: list[np.ndarray] = []
        for number, union in enumerate(unions):
            if union.scores is None:
                return None
            parts.append(union.scores[where[number]])
        scores = _boosted(functools.reduce(np.add, parts), node.boost)
        if type(parsed) is query.AndMaybe:
            bonus = self._evaluate(parsed.b, scored=True, at=docs)[1]
            if scores is None or bonus is None:
                return None
            scores = _boosted(scores + bonus, parsed.boost)
        return Postings(docs, scores)

    def _shared_with_union(
        self, docs: np.ndarray, terms: _Terms, union: Postings
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_shared` of ``docs`` and the union of a word's ``terms``: through a table of
        each document's place in the union (-1: not in it), made once and kept beside it,
        where the union has a :data:`_TABLED_SHARE` of all documents or more (a common
        word's), whose other words' documents are then looked up at their own count, not
        at the union's (some 130 us for a company's 4,000 documents against an
        analysts' 55,000 at 100,000 articles, through a table of every document made each
        time)."""
        if len(union.docs) * _TABLED_SHARE < self.size:
            return _shared(docs, union.docs)

        def table() -> np.ndarray:
            places = np.full(self.size, -1, dtype=np.int32)
            places[union.docs] = np.arange(len(union.docs), dtype=np.int32)
            return places

        places: np.ndarray = self._cache.get(("places", terms), table)[docs]
        kept = np.flatnonzero(places >= 0)
        return kept, places[kept]

    def _word_union(self, terms: _Terms, boost: float) -> Postings:
        """The union of a lone word's ``terms``, scored as :meth:`_evaluate` scores its node:
        the (boosted) terms' sum, times the node's ``boost``."""
        docs, scores = self._merged(terms)
        return Postings(docs, _boosted(scores, boost))

    def _boosted_postings(
        self, terms: Sequence[tuple[str, str | bytes, float]]
    ) -> list[tuple[Postings, float]]:
        """Each (field, text, boost) term's postings, with its boost."""
        return [(self.postings(name, text), boost) for name, text, boost in bounds.checked(terms)]

    def _sum_of(
        self, found: Sequence[tuple[Postings, float]], scored: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The Or of postings (each with its boost), with the sum of their scores: one pass
        over them, rather than two full-size arrays per term added up. Each document's scores
        are added in the postings' order, as the sum of the terms' arrays would be. One list
        (a word's union, cached) is read as it is, not copied."""
        docs = _joined([postings.docs for postings, _ in found])
        weights = _boosted_scores(found) if scored else None
        return self._summed(docs, None if weights is None else _joined(weights))

    def _summed(
        self, docs: np.ndarray, weights: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`_sum_of` of posting lists one after the other: their docnums and (boosted)
        scores (None: unscored)."""
        mask = np.zeros(self.size, dtype=bool)
        mask[docs] = True
        if weights is None:
            return mask, None
        return mask, np.bincount(docs, weights=weights, minlength=self.size)

    @staticmethod
    def _sum_at(
        found: Sequence[tuple[Postings, float]], scored: bool, at: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`_sum_of` at the sorted documents ``at``: each posting list's score added
        where it has the document, in the postings' order (see :func:`_shared`)."""
        mask = np.zeros(len(at), dtype=bool)
        scores = np.zeros(len(at)) if scored else None
        for postings, boost in found:
            docs = postings.docs
            if not len(docs) or not len(at):
                continue
            into, taken = _shared(at, docs)
            mask[into] = True
            if postings.scores is None:  # not reproduced: no scores (still every match)
                scores = None
            elif scores is not None:
                weights = postings.scores[taken]
                scores[into] += weights * boost if boost != 1.0 else weights
        return mask, scores

    def _multiterm(
        self, q: query.MultiTerm, scored: bool, expansion: _Expansion
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Wildcards, prefixes, fuzzy terms, ranges: the Or of the terms they expand to.

        As Whoosh's searcher does, segment by segment: a segment's reader finds fuzzy words
        with its own automaton (not as the whole index's reader does), and the union's scores
        depend on the segment's size and on how many words the query expands to in it.
        """
        fieldname = q.field()
        if fieldname is None or fieldname not in self.schema:
            return self._nothing(scored)
        boost = whoosh_internals.boost(q)
        found: list[tuple[Postings, float]] = []
        unscored: list[slice] = []  # segments where Whoosh scores each match 1.0
        for leaf, base in self._leaves:
            words = self._expanded(q, leaf, base, expansion)
            span = slice(base, base + leaf.doc_count_all())
            for word in words:
                postings = self.postings(fieldname, word)
                low, high = np.searchsorted(postings.docs, (span.start, span.stop))
                expansion.read(high - low)
                scores = None if postings.scores is None else postings.scores[low:high]
                found.append((Postings(postings.docs[low:high], scores), boost))
            summed = whoosh_internals.union_is_summed(len(words), leaf.doc_count_all())
            if q.constantscore and not summed:
                unscored.append(span)
        if not found:
            return self._nothing(scored)
        mask, scores = self._sum_of(found, scored)
        if scores is not None:
            for span in unscored:
                scores[span] = mask[span]
        return mask, scores

    def expanded_terms(self, leaf: query.Query) -> list[tuple[str | None, Any]]:
        """The (field, word) terms a leaf of a query looks for; for a wildcard, fuzzy word
        or range, the words it was matched with (expanded once)."""
        if isinstance(leaf, query.MultiTerm):
            return [(leaf.field(), word) for word in self._charge(leaf)[0]]
        with self.reading:
            return list(leaf.expanded_terms(self.reader, phrases=True))

    def _charge(self, q: query.MultiTerm) -> tuple[list[bytes], int, int]:
        """The words ``q`` matches in any segment, their documents summed, and the index words
        its fuzzy and wildcard words tested that are not charged to the request yet (cached).
        A walk charges each word as it tests it; one kept from an earlier search is charged what
        it cost (:meth:`match` does), so a query is refused or answered the same whatever is
        kept."""
        walked = None  # the index words tested by walks of this call

        def charge() -> tuple[list[bytes], int, int]:
            nonlocal walked
            fieldname = q.field()
            if fieldname is None:  # Whoosh expands it to no word
                return [], 0, 0
            before = bounds.visits()
            found = [self._expansion(q, leaf, base) for leaf, base in self._leaves]
            visits = sum(visited for _, visited in found)
            walked = bounds.visits() - before
            words = sorted({word for segment, _ in found for word in segment})
            if len(words) > bounds.MAX_EXPANDED_TERMS:
                return words, 0, visits  # refused for its words alone: counting their
                # documents could take seconds (14,000 words of title:[a TO z] at 100,000
                # articles: 2 s)
            postings = 0
            with self.reading:
                for word in words:
                    postings += self.reader.doc_frequency(fieldname, word)
                    if postings > bounds.MAX_EXPANDED_POSTINGS:
                        break  # refused for its documents alone: the rest need not be counted
            return words, postings, visits

        caps = (bounds.words_needed(), bounds.MAX_EXPANDED_TERMS, bounds.MAX_EXPANDED_POSTINGS)
        words, postings, visits = self._charges.get((repr(q), *caps), charge)
        return words, postings, visits - (walked or 0)

    def _expanded(
        self, q: query.MultiTerm, leaf: IndexReader, base: int, expansion: _Expansion
    ) -> list[bytes]:
        """The words ``q`` expands to in one segment (cached; see :meth:`_expansion`), for a
        query already charged (:meth:`_charge`): a walk made again, once forgotten, is not
        charged twice. Unwalked (a :meth:`finds_none` check), a fuzzy word's found without a
        walk."""
        if not isinstance(expansion, _Unwalked):
            return self._expansion(q, leaf, base, charged=False)[0]
        words = None
        if isinstance(q, query.FuzzyTerm):
            with self.reading:
                words = whoosh_internals.fuzzy_words_near(leaf, q)
        if words is None:
            raise _CannotTell
        expansion.expanded(len(words))
        return [word.encode() for word in words]

    def _expansion(
        self, q: query.MultiTerm, leaf: IndexReader, base: int, charged: bool = True
    ) -> tuple[list[bytes], int]:
        """The words ``q`` expands to in one segment, and how many index words a fuzzy word
        or wildcard tested to find them, each charged to the request as it is if ``charged``
        (cached). Segment by segment, as Whoosh's searcher expands: a fuzzy word then walks
        each segment's word graph, where the whole index's reader tests every word it has
        (8 s for one fuzzy word over 450,000 words)."""

        needed = bounds.words_needed()

        def expand() -> tuple[list[bytes], int]:
            visits = 0

            def visit() -> None:
                nonlocal visits
                visits += 1
                if charged:
                    bounds.visit(q)

            with self.reading:
                walked: Iterator[Any] | None = None
                if isinstance(q, query.FuzzyTerm):
                    walked = whoosh_internals.fuzzy_words(leaf, q, visit)
                elif isinstance(q, query.PatternQuery):
                    walked = whoosh_internals.pattern_words(leaf, q, visit)
                if walked is None:
                    walked = (word for _, word in q.expanded_terms(leaf))
                found = (word for word in bounds.checked(walked) if word)
                return list(itertools.islice(found, needed)), visits

        return self._expansions.get((repr(q), base, needed), expand)

    def documents(self, fieldname: str, text: str | bytes) -> int:
        """How many documents have a term, deleted ones included: the postings reading it
        reads, and its idf's count (cached by the term as given, text or bytes: a search
        asks for a dozen, some twice, most kept from earlier searches)."""

        def count() -> int:
            word = self._word(fieldname, text)
            if word is None:
                return 0
            entries = self._entries(fieldname, word)
            if entries is not None:
                return whoosh_internals.entries_doc_frequency(entries)
            with self.reading:
                return int(self.reader.doc_frequency(fieldname, word))

        return self._frequencies.get((fieldname, text), count)

    def _entries(self, fieldname: str, word: bytes) -> whoosh_internals.TermEntries | None:
        """A term's entry in each segment's term index (None: not read so), kept a while: a
        word's first search looks it up for its count, then for its postings."""
        indexes = self._term_indexes
        if indexes is None:
            return None
        return self._term_entries.get((fieldname, word), lambda: indexes.entries(fieldname, word))

    def _word(self, fieldname: str, text: str | bytes) -> bytes | None:
        """A term's word as the index holds it (None: no such field, or not a word of it)."""
        field = self.schema[fieldname] if fieldname in self.schema else None  # noqa: SIM401
        if field is None:
            return None
        try:
            return text if isinstance(text, bytes) else field.to_bytes(text)
        except ValueError:
            return None

    def _phrase(
        self, q: query.Phrase, scored: bool, at: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Words at consecutive positions (Whoosh's ``SpanNear2``, slop 1, ordered), scored
        as Whoosh does: the sum of the words' scores, times the phrase's boost (at ``at``)."""
        field = self.schema[q.fieldname] if q.fieldname in self.schema else None  # noqa: SIM401
        if field is None or not q.words:
            return self._nothing(scored, at)
        if q.slop != 1 or not field.format or not field.format.supports("positions"):
            return _at(self._evaluate_with_whoosh(q), at)
        words = self._phrase_words(q)
        if words is None:
            return self._nothing(scored, at)
        if isinstance(q, ranking.TitlePhrase) and not self._together(q.fieldname, words, at):
            return self._nothing(scored, at)
        keys = self._phrase_starts(q, words, at)
        if not len(keys):
            return self._nothing(scored, at)
        mask = np.zeros(self.size, dtype=bool)
        mask[keys >> _POSITION_BITS] = True
        if at is not None:
            mask = mask[at]
        if not scored:  # the words' own matches need not be read again
            return mask, None
        parts = [self._term(q.fieldname, word, 1.0, scored, at) for _, word, _ in words]
        return mask, _boosted(_sum(parts, mask, scored), q.boost)

    def _phrase_starts(
        self, q: query.Phrase, words: list[tuple[int, bytes, int]], docs: np.ndarray | None = None
    ) -> np.ndarray:
        """The position keys where the phrase starts (in ``docs`` alone, if given).

        Word by word, the rarest first: a phrase whose words never line up stops reading
        positions as soon as none are left. Each word's keys are sorted, so the starts left
        are looked up in the next word's by binary search (a few of them in a common word's:
        a tenth of the time ``np.isin`` takes sorting both)."""
        keys: np.ndarray | None = None
        for offset, word, _ in bounds.checked(sorted(words, key=lambda item: item[2]), every=1):
            starts = self.positions(q.fieldname, word) - offset  # a borrow never matches
            if keys is None:
                keys = starts if docs is None else starts[self._among(starts, docs)]
            elif len(starts):
                at = np.minimum(np.searchsorted(starts, keys), len(starts) - 1)
                keys = keys[starts[at] == keys]
            else:
                keys = starts
            if not len(keys):
                break
        assert keys is not None  # a phrase has words
        return keys

    def _among(self, keys: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Which position keys are in ``docs``: a borrow from document 0 (-1) is looked up
        in an extra last entry, never among them."""
        wanted = np.zeros(self.size + 1, dtype=bool)
        wanted[docs] = True
        found: np.ndarray = wanted[keys >> _POSITION_BITS]
        return found

    def _together(
        self, fieldname: str, words: list[tuple[int, bytes, int]], docs: np.ndarray | None
    ) -> bool:
        """Whether a document (of ``docs``, if given) has every one of a phrase's words, told
        from their postings, the rarest first: where none has, their positions need not be
        read. Asked of the title phrase bonus alone, whose words' title postings are the
        query's, read already (69 of the bench's 100 bonuses at 100,000 articles, 19 of their
        54 ms), not of a quoted phrase, whose postings are read only where it matches."""
        shared = docs
        for _, word, _ in sorted(words, key=lambda item: item[2]):
            found = self.postings(fieldname, word).docs
            if shared is None or not len(found):
                shared = found
            elif len(shared):
                shared = shared[_shared(shared, found)[0]]
            if not len(shared):
                return False
        return True

    def _phrase_words(self, q: query.Phrase) -> list[tuple[int, bytes, int]] | None:
        """(offset, word, documents) of each word of a phrase; None when one is not in its
        field (the phrase matches nothing)."""
        words = [word for text in q.words if (word := self._word(q.fieldname, text)) is not None]
        if not words or len(words) < len(q.words):
            return None
        found = [self.documents(q.fieldname, word) for word in words]
        if not all(found):
            return None
        return list(zip(range(len(words)), words, found, strict=True))

    def _evaluate_with_whoosh(self, q: query.Query) -> tuple[np.ndarray, np.ndarray | None]:
        """Matches of one node straight from Whoosh's searcher (unscored)."""
        self.handed_to_whoosh += 1
        mask = np.zeros(self.size, dtype=bool)
        with self.reading:
            mask[np.fromiter(self.searcher.docs_for_query(q), dtype=np.int64)] = True
        return mask, None

    # Posting lists -------------------------------------------------------------------------

    def postings(self, fieldname: str, text: str | bytes, keep: bool = True) -> Postings:
        """The docnums and scores of one term (cached, unless not to ``keep`` it: see
        :meth:`_merged`)."""
        word = self._word(fieldname, text)
        if word is None:
            return _NO_POSTINGS

        def read() -> Postings:
            with self.reading:
                docs, weights, _ = self._read_postings(fieldname, word, values=False)
                return Postings(docs, self._scores(fieldname, word, docs, weights))

        found: Postings = self._cache.get(("postings", fieldname, word), read, keep)
        only = getattr(self._scoring, "field", None)
        if only is not None and only != fieldname and found.scores is not None:
            return Postings(found.docs, np.zeros(len(found.docs)))
        return found

    def positions(self, fieldname: str, word: bytes) -> np.ndarray:
        """Every position of a term, as sorted ``docnum << 24 | position`` keys (cached)."""

        def read() -> np.ndarray:
            with self.reading:
                docs, _, values = self._read_postings(fieldname, word, values=True)
            format_ = self.schema[fieldname].format
            counts: list[np.ndarray] = []
            flat: list[np.ndarray] = []
            for start in range(0, len(values), _DECODED_PER_CHECK):
                bounds.check()
                chunk = values[start : start + _DECODED_PER_CHECK]
                decoded = whoosh_internals.decoded_positions(format_, chunk)
                counts.append(decoded[0])
                flat.append(decoded[1])
            if not counts:
                return np.zeros(0, np.int64)
            keys: np.ndarray = np.repeat(docs, np.concatenate(counts)) << _POSITION_BITS
            keys |= np.concatenate(flat)
            return keys

        found: np.ndarray = self._cache.get(("positions", fieldname, word), read)
        return found

    def _read_postings(
        self, fieldname: str, word: bytes, values: bool
    ) -> tuple[np.ndarray, np.ndarray, Sequence[Any]]:
        """Docnums, weights and (if asked) raw values of a term, segment by segment, the
        request's budget checked before each: a common word's list at 100,000 articles is read
        in up to 100 ms with its positions, a tenth of that a segment."""
        found = whoosh_internals.TermPostings(values)
        self._gather(found, fieldname, word)
        return found.arrays()

    def _gather(self, found: whoosh_internals.TermPostings, fieldname: str, word: bytes) -> None:
        """Add a term's postings to ``found`` (see :meth:`_read_postings`)."""
        entries = self._entries(fieldname, word)
        if entries is None:
            for leaf, base in bounds.checked(self._leaves, every=1):
                found.add(leaf, base, fieldname, word)
            return
        for (leaf, base), entry in bounds.checked(zip(self._leaves, entries, strict=True), every=1):
            if entry is not None:
                found.add_entry(leaf, base, fieldname, word, entry)

    def _scores(
        self, fieldname: str, word: bytes, docs: np.ndarray, weights: np.ndarray
    ) -> np.ndarray | None:
        """Each posting's score, as Whoosh's scorer for the searcher's weighting gives it."""
        if not self.schema[fieldname].scorable:
            return weights  # WeightScorer: the posting weight
        if self._bm25 is None:
            return None
        if not len(docs):  # no postings, nothing to score (and no idf on an empty index)
            return np.zeros(0)
        k1: float = self._bm25.K1
        # WeightingModel.idf, from the count charged (Whoosh's looks it up in each segment again)
        idf = math.log(self._doc_count / (self.documents(fieldname, word) + 1)) + 1
        # scoring.bm25, operation for operation, so the floats are Whoosh's.
        scores: np.ndarray = idf * (
            (weights * (k1 + 1)) / (weights + self._length_part(fieldname)[docs])
        )
        return scores

    def _length_part(self, fieldname: str) -> np.ndarray:
        """Each document's ``k1 * ((1 - b) + b * length / average)`` in a scored field: the
        part of Whoosh's BM25 its length makes, the same in every posting list, so computed
        once for every document (as float64, operation for operation: the same floats),
        where each list read computed it at its postings (5 of its score's 9 array
        operations: 0.8 MB a field at 100,000 articles)."""
        part = self._length_parts.get(fieldname)
        if part is None:
            assert self._bm25 is not None  # asked by _scores alone
            b = whoosh_internals.bm25_b(self._bm25, fieldname)
            # The searcher's average (it sums the field's length over segments each time).
            average = self.searcher.avg_field_length(fieldname) or 1
            # Kept as float32 (exact), computed with as float64: Whoosh's floats.
            lengths = self._field_lengths(fieldname).astype(np.float64)
            part = self._length_parts[fieldname] = self._bm25.K1 * ((1 - b) + b * lengths / average)
        return part


_NO_POSTINGS = Postings(np.zeros(0, np.int64), np.zeros(0))


def _unwalked_leaf(leaf: query.Query) -> bool:
    """Whether :meth:`QueryMatcher.finds_none` evaluates a query leaf: a word, a fuzzy word
    or a phrase (whose postings the query's first search read)."""
    return type(leaf) in (query.Term, query.FuzzyTerm) or isinstance(leaf, query.Phrase)


def _lone_word(parsed: query.Query) -> tuple[_Terms, float] | None:
    """The (field, text, boost) terms of a lone word (a word, or the same word in each field:
    most plain queries) and the boost of their Or (1.0 for a word: its own is its term's);
    None for any other query."""
    if type(parsed) is query.Term:
        return ((parsed.fieldname, parsed.text, parsed.boost),), 1.0
    if not (_plain_or(parsed) and parsed.subqueries):
        return None
    words = cast(list[query.Term], parsed.subqueries)
    if not all(type(sub) is query.Term for sub in words):
        return None
    return tuple((sub.fieldname, sub.text, sub.boost) for sub in words), parsed.boost


def _plain_or(q: query.Query) -> TypeGuard[query.Or]:
    """Whether ``q`` is an Or that matches any part and sums their scores."""
    return isinstance(q, query.Or) and not q.scale and not q.minmatch


def _sum(
    parts: list[tuple[np.ndarray, np.ndarray | None]], mask: np.ndarray, scored: bool
) -> np.ndarray | None:
    """The sum of the parts' scores where ``mask`` is set (None if any part has none)."""
    summed = [scores for _, scores in parts if scores is not None]
    if not scored or len(summed) < len(parts):
        return None
    total = functools.reduce(np.add, summed)
    return np.where(mask, total, 0.0)


def _boosted(scores: np.ndarray | None, boost: float) -> np.ndarray | None:
    return scores if scores is None or boost == 1.0 else scores * boost


def _few_summed(runs: np.ndarray, weights: np.ndarray | None) -> Postings:
    """:meth:`QueryMatcher._summed`'s union of posting lists one after the other (docnums
    ``runs``, boosted scores ``weights``) as one posting list, worked out at their documents
    alone: the documents sorted once, each one's scores added in the postings' order into
    its slot (as ``bincount`` adds them over every document, so the same floats), where the
    arrays of every document (a mask, the sums, their documents found: 60 us at 100,000
    articles) cost more than a rare word has."""
    docs, slots = _distinct(runs)
    if weights is None:
        return Postings(docs, None)
    return Postings(docs, np.bincount(slots, weights=weights, minlength=len(docs)))


def _distinct(runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(runs, return_inverse=True)`` of ascending runs (posting lists one after the
    other): sorted by a stable sort, which merges the runs (timsort), where ``np.unique``'s
    quicksort sorts them anew (a word's four fields' 3,650 postings: 25 us, not 109)."""
    order = np.argsort(runs, kind="stable")
    ordered = runs[order]
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    slots = np.empty(len(ordered), dtype=np.intp)
    slots[order] = np.cumsum(first) - 1
    return ordered[first], slots


def _boosted_scores(found: Sequence[tuple[Postings, float]]) -> list[np.ndarray] | None:
    """Each posting list's scores times its boost; None when one has no scores."""
    weights = []
    for postings, boost in found:
        if postings.scores is None:
            return None
        weights.append(postings.scores * boost if boost != 1.0 else postings.scores)
    return weights


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The arrays one after the other: a lone one itself (read only), not a copy of it."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _shared(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of two ascending arrays of distinct docnums has the documents both have:
    (their indexes in ``first``, their indexes in ``second``), both ascending. The shorter is
    looked up in the other by binary search when much shorter (a rare word's few postings
    among thousands of documents, or a few documents in a common word's list); else each
    finds the other's in a table of every document up to its last."""
    if len(first) * _SEARCHED_SHARE < len(second):
        where = np.minimum(np.searchsorted(second, first), len(second) - 1)
        has = second[where] == first
        return np.flatnonzero(has), where[has]
    if len(second) * _SEARCHED_SHARE < len(first):
        where = np.minimum(np.searchsorted(first, second), len(first) - 1)
        has = first[where] == second
        return where[has], np.flatnonzero(has)
    size = int(max(first[-1], second[-1])) + 1
    in_first = np.zeros(size, dtype=bool)
    in_first[first] = True
    taken = np.flatnonzero(in_first[second])
    slots = np.empty(size, dtype=np.int64)
    slots[first] = np.arange(len(first))
    return slots[second[taken]], taken


def _at(
    evaluated: tuple[np.ndarray, np.ndarray | None], at: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A node's (mask, scores) of every document at the documents ``at`` (if given)."""
    if at is None:
        return evaluated
    mask, scores = evaluated
    return mask[at], None if scores is None else scores[at]
