"""The ``best`` sort: text relevance blended with freshness and quality, in one place.

    best = text * freshness * quality
    freshness = 1 + FRESHNESS_WEIGHT * 0.5 ** (age_days / half_life_days)
    quality   = 1 + QUALITY_WEIGHT * (2 * percentile - 1)

Why this shape:

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

#: How much the freshest article gains over a very old one (at most x1.10). Tuned on the
#: known-item benchmark (bench/known_item.py, powerapps): at 0.25 (with quality at 0.15)
#: MRR@10 fell from 0.690 (relevance) to 0.677; at 0.1 / 0.03 it is 0.686: near-ties only.
FRESHNESS_WEIGHT = 0.1
#: How far quality moves a score either way (x0.97 for the lowest, x1.03 for the highest):
#: less than freshness, as quality is the source's opinion, not the reader's.
QUALITY_WEIGHT = 0.03
#: Days after which an article's freshness bonus has halved (``--half-life``/``half_life``).
DEFAULT_HALF_LIFE_DAYS = 30.0
#: Shortest half-life accepted: a quarter of an hour, beyond which only the newest counts.
MIN_HALF_LIFE_DAYS = 0.01
#: Longest half-life accepted: a century, beyond which freshness no longer differs.
MAX_HALF_LIFE_DAYS = 36_500.0

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
    values = np.sort(qualities[known])
    if len(values) > 1:
        below = np.searchsorted(values, qualities[known], side="left")
        not_above = np.searchsorted(values, qualities[known], side="right")
        out[known] = (below + not_above - 1) / (2.0 * (len(values) - 1))
    return out
