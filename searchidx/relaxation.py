"""What runs instead of a query that found nothing (:func:`retries`, the same for both
engines), and fewer required words for it: which words to drop.

A query whose every word is required finds nothing when one word is missing from the article
looked for (a typo the corrector did not know, a word the article does not use), or when its
phrases (``"toll death"``, ``covid-19``) are not side by side in it. The retry keeps as much of
the query as it can, and tries in turn: every word, the phrases as separate words; all but the
fewest parts, the phrases kept; all but the fewest words. Among the sets of the same size that
find articles, the one whose words are rarest (most informative) wins. Parts named with a field
(``title:covid``, ``date:2022``) are conditions the user set, and are never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import combinations
from typing import Any, NamedTuple, Protocol

import numpy as np
from whoosh import query

from searchidx import querylang
from searchidx.result import Correction, Relaxation
from searchidx.typedtext import Part, Reading

#: Sets tried per number of parts or words kept, times that number (each set is that many
#: masks combined): beyond it, the rarest are dropped first.
MAX_COMBINED = 2048


class Mask(Protocol):
    """The articles a query text matches, as :func:`relax` reads them (``&``, ``any()``,
    ``sum()``): a numpy bool array, or a stand-in that has them counted elsewhere (the
    OpenSearch engine's :class:`~searchidx.cluster_search._Matching`)."""

    def __and__(self, other: Any, /) -> Mask: ...
    def __rand__(self, other: Any, /) -> Mask: ...
    def any(self) -> Any: ...
    def sum(self) -> Any: ...


class Retry(NamedTuple):
    """A query run in place of one that found nothing: its ``text`` (the result's
    ``ran_query``), ``kind`` (its ``retry``: corrected, relaxed or fuzzy), the query parsed,
    and for a relaxed one what was dropped."""

    text: str
    kind: str
    parsed: query.Query
    relaxed: Relaxation | None = None


def retries(
    text: str, correction: Correction | None, relaxed: Callable[[str], Relaxation | None]
) -> Iterator[Retry]:
    """The retries of the query ``text`` in order, each worked out only when those before it
    found nothing: the corrected query, it relaxed (a correction inside a joined word,
    "gover-nor", is still a phrase), the query relaxed, and the fuzzy query.
    ``relaxed(text)``: :func:`relax` of a query text, as the engine counts its matches."""
    if correction is not None:
        parsed = querylang.parse_query(correction.text)
        if parsed is not None:
            yield Retry(correction.text, "corrected", parsed)
    for tried in (*([correction.text] if correction else []), text):
        relaxation = relaxed(tried)
        if relaxation is not None:
            kept = " ".join(relaxation.kept)
            parsed = querylang.parse_reading(Reading(kept))
            if parsed is not None:
                yield Retry(kept, "relaxed", parsed, relaxation)
    fuzzy = querylang.parse_query(text, fuzzy=True)
    if fuzzy is not None and querylang.expanded_words(fuzzy) <= querylang.MAX_EXPANDED_WORDS:
        yield Retry(text, "fuzzy", fuzzy)  # each word fuzzy: a few words only


def relax(parts: tuple[Part, ...], matching: Callable[[str], Mask], size: int) -> Relaxation | None:
    """The least to drop from ``parts`` so that some article matches the rest, or None.

    ``matching(text)`` is the mask of the articles a query text matches (filters applied);
    ``size`` is the number of articles (for how informative a word is).
    """
    fixed = tuple(part.text for part in parts if part.fixed)
    free = [part for part in parts if not part.fixed]
    words = list(dict.fromkeys(word for part in free for word in part.words))
    if not words:
        return None
    masks: dict[str, Mask] = {}

    def mask(text: str) -> Mask:
        if text not in masks:
            masks[text] = matching(text)
        return masks[text]

    required = _every(map(mask, fixed), size)
    found = _every(map(mask, words), size)
    loosened = any(len(part.words) > 1 for part in free)
    if loosened and (required & found).any():
        return Relaxation(len(words) + len(fixed), (*fixed, *words), (), True)
    texts = [part.text for part in free]
    kept = _most_kept(texts, mask, required, size)
    if kept is not None:
        dropped = [word for part in free if part.text not in kept for word in part.words]
        return Relaxation(len(words) + len(fixed), (*fixed, *kept), tuple(dropped), False)
    kept = _most_kept(words, mask, required, size) if loosened else None
    if kept is not None:
        dropped = [word for word in words if word not in kept]
        return Relaxation(len(words) + len(fixed), (*fixed, *kept), tuple(dropped), True)
    return None


def _most_kept(
    units: Sequence[str], mask: Callable[[str], Mask], required: Mask, size: int
) -> tuple[str, ...] | None:
    """The largest subset of ``units`` (in their order) whose articles, with ``required``,
    are not none; of those of one size, the rarest."""
    counts = {unit: _count(mask(unit)) for unit in units}
    for kept in range(len(units) - 1, 0, -1):
        matched = [
            subset
            for subset in _subsets(units, kept, counts)
            if (required & _every(map(mask, subset), size)).any()
        ]
        if matched:
            return max(
                matched, key=lambda subset: sum(_information(counts[u], size) for u in subset)
            )
    return None


def _subsets(units: Sequence[str], kept: int, counts: dict[str, int]) -> Iterator[tuple[str, ...]]:
    if math.comb(len(units), kept) * kept <= MAX_COMBINED:
        # A unit found nowhere is in no set that finds something: its sets are not combined
        # (32 unknown words were some 600 sets of full-size masks, 70 ms at 100,000 articles).
        yield from combinations([unit for unit in units if counts[unit]], kept)
    else:  # too many to try: keep the commonest
        commonest = set(sorted(units, key=lambda unit: -counts[unit])[:kept])
        yield tuple(unit for unit in units if unit in commonest)


def _count(mask: Mask) -> int:
    """How many articles ``mask`` has: a numpy mask's counted by ``count_nonzero`` (4 us at
    100,000 articles; its ``sum()``, 31)."""
    return int(np.count_nonzero(mask) if isinstance(mask, np.ndarray) else mask.sum())


def _every(masks: Iterable[Mask], size: int) -> Mask:
    """The articles every mask has (every article for none): from the first mask itself,
    not from a mask of every article anded with it (relaxing two words that find nothing
    together took 48 us so, 31 this way, at 100,000 articles)."""
    result: Mask | None = None
    for mask in masks:
        result = mask if result is None else result & mask
    return np.ones(size, dtype=bool) if result is None else result


def _information(count: int, size: int) -> float:
    """How much a word with ``count`` articles narrows ``size`` (an idf)."""
    return math.log((size + 1) / (count + 1))
