"""Fewer required words for a query that found nothing: which words to drop.

A query whose every word is required finds nothing when one word is missing from the article
looked for (a typo the corrector did not know, a word the article does not use). The retry
keeps as many words as it can: first the typed phrases (``"facial recognition"``, ``covid-19``)
as separate words, then all but one word, all but two, and so on; of the sets of words that
find articles, the one whose words are rarest (most informative) wins. Words named with a field
(``title:covid``, ``date:2022``) are conditions the user set, and are never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from itertools import combinations

import numpy as np

from searchidx.result import Relaxation
from searchidx.typedtext import Part

#: Sets of words tried per number of words kept, times that number (each set is that many
#: masks combined): beyond, the rarest words are dropped first.
MAX_COMBINED = 2048


def relax(
    parts: tuple[Part, ...], matching: Callable[[str], np.ndarray], size: int
) -> Relaxation | None:
    """The fewest words to drop from ``parts`` so that some article matches the rest, or None.

    ``matching(text)`` is the mask of the articles a query text matches (filters applied);
    ``size`` is the number of articles (for how informative a word is).
    """
    fixed = [part.text for part in parts if part.fixed]
    words = list(dict.fromkeys(word for part in parts if not part.fixed for word in part.words))
    loosened = any(len(part.words) > 1 for part in parts if not part.fixed)
    if not words:
        return None
    required = _every((matching(text) for text in fixed), size)
    masks = {word: matching(word) for word in words}
    counts = {word: int(mask.sum()) for word, mask in masks.items()}
    found = {}
    if loosened:
        found[len(words)] = [tuple(words)]
    for kept in range(len(words) - 1, 0, -1):
        if math.comb(len(words), kept) * kept <= MAX_COMBINED:
            found[kept] = list(combinations(words, kept))
        else:  # too many sets to try: keep the commonest words
            commonest = set(sorted(words, key=lambda word: -counts[word])[:kept])
            found[kept] = [tuple(word for word in words if word in commonest)]
    for candidates in found.values():
        matched = [
            subset
            for subset in candidates
            if (required & _every((masks[word] for word in subset), size)).any()
        ]
        if matched:
            best = max(matched, key=lambda subset: sum(_information(counts[w], size)
                                                       for w in subset))  # fmt: skip
            dropped = tuple(word for word in words if word not in best)
            return Relaxation(len(words) + len(fixed), (*fixed, *best), dropped, loosened)
    return None


def _every(masks: Iterable[np.ndarray], size: int) -> np.ndarray:
    result = np.ones(size, dtype=bool)
    for mask in masks:
        result = result & mask
    return result


def _information(count: int, size: int) -> float:
    """How much a word with ``count`` articles narrows ``size`` (an idf)."""
    return math.log((size + 1) / (count + 1))
