"""The tiered merge policy on segment sizes, and over many syncs of a 100,000-article index."""

from __future__ import annotations

import random

from searchidx.merge_policy import FLOOR_DOCS, MERGE_FACTOR, MERGED_MOST_DOCS, to_merge

#: The segments of a build of 100,000 articles: one per full buffer of each of two workers.
BUILT = [15524, 15447, 15450, 3130, 15486, 15526, 15525, 3913]


def test_to_merge_merges_nothing_until_a_tier_is_full():
    assert to_merge([*BUILT, *[550] * (MERGE_FACTOR - 1)]) == []


def test_to_merge_merges_a_full_tier_in_the_index_s_order():
    sizes = [*BUILT, 550, 6000, *[540] * (MERGE_FACTOR - 1)]
    assert to_merge(sizes) == [8, *range(10, 10 + MERGE_FACTOR - 1)]


def test_to_merge_takes_a_full_tier_smallest_first_up_to_the_most_a_merge_writes():
    sizes = [9000, 1000, 8000, *[5000] * (MERGE_FACTOR - 3)]
    chosen = to_merge(sizes)
    assert chosen == [1, 3, 4, 5]  # 1,000 + 3 x 5,000; another 5,000 would pass the most
    assert sum(sizes[n] for n in chosen) <= MERGED_MOST_DOCS


def test_to_merge_leaves_segments_at_rest_until_deletions_take_them_below_half():
    rest = MERGED_MOST_DOCS // 2
    small = [FLOOR_DOCS] * (MERGE_FACTOR - 1)
    assert to_merge([rest, *small]) == []
    assert to_merge([rest - 1, *small]) == list(range(MERGE_FACTOR))


def test_to_merge_bounds_segments_deletions_and_rewrites_over_many_syncs():
    """600 syncs of 1% each (two segments of 550, 1,100 old versions deleted at random) turn
    the collection over six times: the segments stay few, deleted documents wait in merged
    segments at most until half of one is deleted, and each document is written about three
    times (indexed, then merged twice)."""
    rng = random.Random(7)
    live, every = list(BUILT), list(BUILT)
    added = written = 0
    for _ in range(600):
        for segment in rng.choices(range(len(live)), weights=live, k=1100):
            live[segment] -= 1
        live += [550, 550]
        every += [550, 550]
        added += 1100
        chosen = to_merge(live)
        merged = sum(live[n] for n in chosen)
        assert merged <= MERGED_MOST_DOCS
        written += merged
        live = [size for n, size in enumerate(live) if n not in chosen] + [merged] * bool(chosen)
        every = [size for n, size in enumerate(every) if n not in chosen] + [merged] * bool(chosen)
        assert len(live) <= 24
        assert sum(live) >= sum(every) / 2
    assert (added + written) / added < 3.5
