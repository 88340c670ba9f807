"""How results are ranked, with every weight in one place: the text score (``relevance``) and
the ``best`` sort that blends it with freshness and quality.

    text      = BM25F over title, topic, provider, excerpt and body, times FIELD_BOOSTS
                + TITLE_PHRASE_BOOST x the title's BM25F when the words typed stand together in it
    best      = text * freshness * quality
    freshness = 1 + FRESHNESS_WEIGHT * 0.5 ** (age_days / half_life_days)
    quality   = 1 + QUALITY_WEIGHT * (2 * percentile - 1)

Why this shape:

- **Titles weigh most, and a title that holds the words typed, next to each other and in the
  order typed, more still.** Someone who remembers a few words of a headline types them in
  its order; an article that only has the words apart (a long title, the excerpt, the topics)
  is a weaker answer. The bonus is an optional part of the query (:func:`with_title_phrase`:
  Whoosh's ``AndMaybe`` of a title phrase), so Whoosh and the fast paths of
  :mod:`searchidx.matching` score it alike, and it never changes which articles match. On the
  known-item benchmark (``bench/known_item.py``, powerapps) it lifts MRR@10 from 0.79 to 0.86
  (three title words, stop words skipped), next to the 0.86 no ranking can beat there.
- **Multiplied, and bounded.** Both factors stay within a few tens of percent of 1 (freshness
  in [1, 1 + FRESHNESS_WEIGHT], quality in [1 - QUALITY_WEIGHT, 1 + QUALITY_WEIGHT]), so they
  reorder articles of about the same text score (the same story from several sources) but
  never lift an article that barely matches over one that matches well: known-item search
  (three words of a title) must not get worse (``bench/known_item.py`` measures it).
- **Freshness halves every** ``half_life_days`` **of age**, measured from the newest article
  in the index, not from the clock: a collection that stopped being updated (an archive, a
  benchmark copy) still prefers its recent coverage, and the same index gives the same
  ranking tomorrow (answers are cached per index snapshot).
- **Quality as a percentile** of the index's own quality values (ties share their middle
  rank): the raw numbers have no fixed scale (one collection's quality runs to 137, another's
  to 100), and a few very high values must not dwarf the rest. An article without a quality
  is neutral (factor 1), as is the median one.
- ``relevance`` stays the text score alone.
"""

from __future__ import annotations

import numpy as np
from whoosh import query

#: How much a match in each text field counts (the query parser's field boosts): titles most.
FIELD_BOOSTS = {"title": 3.0, "topic": 2.0, "provider": 1.5, "excerpt": 1.0, "body": 0.5}
#: The title phrase bonus: the title's BM25F of the words, times this, added when the title has
#: them together. Tuned on bench/known_item.py (powerapps, MRR@10 with stop words skipped):
#: 0.789 without; 0.857 at 2, 0.860 at 4, 0.859 at 6 to 8: a plateau, so the lowest of it.
TITLE_PHRASE_BOOST = 4.0
#: Queries of more words than this get no title phrase bonus. Its positions are not counted
#: against the phrase cap of :mod:`searchidx.bounds` (a bonus must not make a query of plain
#: words too broad to run), so this bounds its cost: a title has each word about once, so each
#: word reads about one position per article with it in its title (cached per index snapshot).
TITLE_PHRASE_MAX_WORDS = 8
#: The field of the title phrase bonus.
TITLE_FIELD = "title"

#: How much the freshest article gains over a very old one (at most x1.10). Tuned on the
#: known-item benchmark (bench/known_item.py, powerapps; words as written / stop words
#: skipped): at 0.25 (with quality at 0.15) MRR@10 falls from 0.760 / 0.860 (relevance) to
#: 0.756 / 0.858; at 0.1 / 0.03 it is 0.760 / 0.860: near-ties only.
FRESHNESS_WEIGHT = 0.1
#: How far quality moves a score either way (x0.97 for the lowest, x1.03 for the highest):
#: less than freshness, as quality is the source's opinion, not the reader's.
QUALITY_WEIGHT = 0.03

_MICROSECONDS_PER_DAY = 86_400 * 1_000_000


def age_days(dates: np.ndarray, newest: int) -> np.ndarray:
    """Days between each date and the newest one (both in microseconds, the ``date``
    column's unit)."""
    elapsed: np.ndarray = np.maximum(newest - dates, 0)
    return elapsed / _MICROSECONDS_PER_DAY


def freshness(dates: np.ndarray, newest: int, half_life_days: float) -> np.ndarray:
    """Each article's freshness factor from its date and the newest date."""
    return 1.0 + FRESHNESS_WEIGHT * np.exp2(-age_days(dates, newest) / half_life_days)


def quality(percentiles: np.ndarray) -> np.ndarray:
    """Each article's quality factor from its quality percentile (0.5: none, or the median)."""
    return 1.0 + QUALITY_WEIGHT * (2.0 * percentiles - 1.0)


def percentiles(qualities: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Each quality's mid-rank among the ``known`` ones, in [0, 1]; 0.5 where unknown."""
    out = np.full(len(qualities), 0.5)
    values = qualities[known]
    if len(values) > 1 and _few_distinct(values):
        # Counted, not sorted: each quality's documents below it and up to it, from the
        # counts of every quality between the least and the greatest (5 ms -> 1 at 100,000).
        least = int(values.min())
        offsets = values.astype(np.int64) - least
        counts = np.bincount(offsets)
        not_above = np.cumsum(counts)
        below = not_above - counts
        each = (below + not_above - 1) / (2.0 * (len(values) - 1))
        out[known] = each[offsets]
        return out
    values = np.sort(values)
    if len(values) > 1:
        # Computed once for each distinct quality (a hundred or so), then given to each
        # document: a search among them, not two among every document's (3x less CPU).
        distinct = values[np.r_[True, values[1:] != values[:-1]]]
        below = np.searchsorted(values, distinct, side="left")
        not_above = np.searchsorted(values, distinct, side="right")
        each = (below + not_above - 1) / (2.0 * (len(values) - 1))
        out[known] = each[np.searchsorted(distinct, qualities[known])]
    return out


def _few_distinct(values: np.ndarray) -> bool:
    """Whether the span of ``values`` is small enough to count each value in it."""
    return int(values.max()) - int(values.min()) <= 4 * len(values)


class TitlePhrase(query.Phrase):
    """A query's words together in the title: a bonus in :func:`with_title_phrase`, never a
    condition (so it is not counted against the cap on what phrases may read)."""


def with_title_phrase(parsed: query.Query) -> query.Query:
    """``parsed`` with the title phrase bonus, when it is plain words (and joined words, quoted
    phrases) that must all match, at most :data:`TITLE_PHRASE_MAX_WORDS`: the same articles
    match, and those whose title has the words next to each other, in the order typed, score
    the title's part of the score again times :data:`TITLE_PHRASE_BOOST`. The words of
    ``field:value`` and NOT parts do not count; with an OR, a wildcard or a fuzzy word among
    them, the words were not typed together, and there is no bonus."""
    required = parsed.a if type(parsed) is query.AndNot else parsed
    if type(required) is not query.And:
        return parsed
    words: list[str] = []
    for part in required.subqueries:
        typed = _typed_words(part)
        if not typed and part.field() is None and not isinstance(part, query.Not):
            return parsed  # an OR, a wildcard: the words around it were not typed together
        words += typed
    if not 2 <= len(words) <= TITLE_PHRASE_MAX_WORDS:
        return parsed
    return query.AndMaybe(parsed, TitlePhrase(TITLE_FIELD, words, boost=TITLE_PHRASE_BOOST))


def _typed_words(group: query.Query) -> list[str]:
    """The words of one typed word, joined word or quoted phrase as the parser reads it: the
    same term (or phrase) in every text field, each with its field's boost; [] otherwise."""
    if type(group) is not query.Or or group.scale or group.minmatch:
        return []
    spelled: set[tuple[str, ...]] = set()
    weights: list[tuple[str, float]] = []
    for part in group.subqueries:
        if type(part) is query.Term:
            spelled.add((str(part.text),))
        elif type(part) is query.Phrase and part.slop == 1:
            spelled.add(tuple(str(word) for word in part.words))
        else:
            return []
        weights.append((part.fieldname, part.boost))
    kinds = {type(part) for part in group.subqueries}
    if len(kinds) != 1 or weights != list(FIELD_BOOSTS.items()) or len(spelled) != 1:
        return []
    return list(spelled.pop())


#: A page of hits in order: (docnum, score), the score None in an order without one.
Page = list[tuple[int, float | None]]


def top_scored(scores: np.ndarray, final: np.ndarray, start: int, end: int) -> Page:
    """The page of the ``final`` documents by score (see :func:`top_of`)."""
    docs = np.flatnonzero(final)
    return top_of(docs, scores[docs], start, end)


def top_of(docs: np.ndarray, scores: np.ndarray, start: int, end: int) -> Page:
    """The page of ``docs`` (ascending) by their ``scores``, highest first, ties by docnum
    (as Whoosh's collector orders them)."""
    docs, scores = score_order(docs, scores, end)
    return list(zip(docs[start:].tolist(), scores[start:].tolist(), strict=True))


#: :func:`score_order` selects among the scores at or above the ``end``-th highest of a
#: sample of this many times ``end`` of them (every n-th), where there are more.
SAMPLED_PER_KEPT = 8


def score_order(docs: np.ndarray, scores: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``end`` of ``docs`` (ascending) by their ``scores``, highest first, ties by
    docnum, with their scores (all of them when fewer): only those scoring the ``end``-th
    highest score or more are sorted (that score's ties all among them).

    That score is selected among those at or above the ``end``-th highest of a sample of
    the scores (no higher than the ``end``-th of all): a comparison over every score, then
    a selection over some eighth of them (a lone word's 29,000 at 100,000 articles: 0.1 ms
    where one selection over every score took 0.3, its top 10)."""
    if len(docs) > end:
        step = len(scores) // (SAMPLED_PER_KEPT * end)
        if step > 1:
            sample = scores[::step]
            cut = len(sample) - end
            kept = scores >= np.partition(sample, cut)[cut]
            docs, scores = docs[kept], scores[kept]
    if len(docs) > end:
        cut = len(scores) - end
        kept = scores >= np.partition(scores, cut)[cut]  # the top ``end``, and ties
        docs, scores = docs[kept], scores[kept]
    ranked = np.lexsort((docs, -scores))[:end]
    return docs[ranked], scores[ranked]
