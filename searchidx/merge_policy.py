"""Which segments a commit merges: tiers of similar size, so that however many syncs run, the
index keeps a bounded number of segments, its deleted documents are dropped, and no document
is rewritten more than a few times.

A sync adds a segment of its changed files (or one per worker); a build writes one segment a
worker (50,000 articles each at 100,000 on 2 cores) unless a worker's buffer fills first. A
segment is sized by its live documents, and sizes fall in tiers: tier 0 below
:data:`FLOOR_DOCS`, each tier above spanning a factor of :data:`MERGE_FACTOR`. Once a tier
holds :data:`MERGE_FACTOR` segments, they are merged into one of a higher tier, the smallest
first, as many as make at most :data:`MERGED_MOST_DOCS` documents. A segment of half that many
live documents or more is at rest: no tier merge takes it (it would pass the most a merge
writes), but once more than half of its own documents are deleted and no tier is full, it is
rewritten alone without them (the one with the most deleted first): a build's segments are
large (50,000 articles each at 100,000), and resting until only 10,000 of them lived kept up
to 60% of the index's documents deleted, in a simulation of 600 syncs of 1%.

So a commit merges at most once; a tier merge writes at most :data:`MERGED_MOST_DOCS`
documents (some 13 s of CPU), a rewrite less than half of a segment at rest; each document is
rewritten once per tier it climbs (twice up to rest) and once more each time its segment at
rest loses half; after a commit each tier holds fewer than :data:`MERGE_FACTOR` segments (a
commit adding to two tiers at once leaves the higher one full until the next); and fewer than
half of the documents of a segment at rest wait deleted for long.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Segments of fewer live documents than this are of the lowest tier (a 1% sync at 100,000
#: articles writes two of some 550).
FLOOR_DOCS = 1_000
#: A tier's segments are merged once it holds this many; each tier spans this factor of sizes.
MERGE_FACTOR = 10
#: No merge writes more documents than this (the fast merge writes about 1,000 a second of
#: CPU); a segment of half as many live documents or more rests (rewritten alone only once
#: more than half of it is deleted).
MERGED_MOST_DOCS = 20_000


def to_merge(live_counts: Sequence[int], document_counts: Sequence[int]) -> list[int]:
    """The positions of the segments (of ``live_counts`` live documents each, of
    ``document_counts`` with the deleted ones, in the index's order) that a commit merges into
    one, in that order: a full tier's, else a segment at rest more than half deleted; none if
    neither."""
    tiers: dict[int, list[int]] = {}
    for position, live in enumerate(live_counts):
        if 2 * live < MERGED_MOST_DOCS:
            tiers.setdefault(_tier(live), []).append(position)
    full = [tier for tier, members in tiers.items() if len(members) >= MERGE_FACTOR]
    if not full:
        return _half_deleted(live_counts, document_counts)
    chosen, documents = [], 0
    for position in sorted(tiers[min(full)], key=lambda position: live_counts[position]):
        if documents + live_counts[position] > MERGED_MOST_DOCS:
            break
        chosen.append(position)
        documents += live_counts[position]
    return sorted(chosen)


def _half_deleted(live_counts: Sequence[int], document_counts: Sequence[int]) -> list[int]:
    """The segment at rest with the most deleted documents, if more than half of its are."""
    candidates = [
        (documents - live, position)
        for position, (live, documents) in enumerate(zip(live_counts, document_counts, strict=True))
        if 2 * live >= MERGED_MOST_DOCS and 2 * live < documents
    ]
    return [max(candidates)[1]] if candidates else []


def _tier(live: int) -> int:
    tier, bound = 0, FLOOR_DOCS
    while live >= bound:
        tier, bound = tier + 1, bound * MERGE_FACTOR
    return tier
