"""The tiered merge policy on segment sizes, and over many syncs of a 100,000-article index."""

from __future__ import annotations

import random

import pytest

from searchidx.merge_policy import FLOOR_DOCS, MERGE_FACTOR, MERGED_MOST_DOCS, to_merge

#: The segments of a build of 100,000 articles: one a worker (two cores).
BUILT = [50000, 50000]
#: The same build where each worker's buffer filled three times and then once in part.
BUFFERED = [15524, 15447, 15450, 3130, 15486, 15526, 15525, 3913]


def _merged(live_counts: list[int]) -> list[int]:
    """What :func:`to_merge` takes of segments none of whose documents are deleted."""
    return to_merge(live_counts, live_counts)


def test_to_merge_merges_nothing_until_a_tier_is_full():
    assert _merged([*BUILT, *[550] * (MERGE_FACTOR - 1)]) == []


def test_to_merge_merges_a_full_tier_in_the_index_s_order():
    sizes = [*BUILT, 550, 6000, *[540] * (MERGE_FACTOR - 1)]
    assert _merged(sizes) == [2, *range(4, 4 + MERGE_FACTOR - 1)]


def test_to_merge_takes_a_full_tier_smallest_first_up_to_the_most_a_merge_writes():
    sizes = [9000, 1000, 8000, *[5000] * (MERGE_FACTOR - 3)]
    chosen = _merged(sizes)
    assert chosen == [1, 3, 4, 5]  # 1,000 + 3 x 5,000; another 5,000 would pass the most
    assert sum(sizes[n] for n in chosen) <= MERGED_MOST_DOCS


def test_to_merge_leaves_segments_at_rest_until_deletions_take_them_below_half():
    rest = MERGED_MOST_DOCS // 2
    small = [FLOOR_DOCS] * (MERGE_FACTOR - 1)
    assert _merged([rest, *small]) == []
    assert _merged([rest - 1, *small]) == list(range(MERGE_FACTOR))


def test_to_merge_rewrites_a_segment_at_rest_alone_once_more_than_half_of_it_is_deleted():
    half = [25000, 25000, 30000]  # of documents 50,000, 50,001 and 50,000
    assert to_merge(half, [50000, 50001, 50000]) == [1]
    assert to_merge([25000, 24000], [50000, 50000]) == [1]  # the most deleted first
    assert to_merge([25000, 30000], [50000, 50000]) == []  # half deleted: not more
    small = [FLOOR_DOCS] * MERGE_FACTOR
    assert to_merge([24000, *small], [50000, *small]) == list(range(1, MERGE_FACTOR + 1))


@pytest.mark.parametrize("built", [BUILT, BUFFERED], ids=["a segment a worker", "buffered"])
def test_to_merge_bounds_segments_deletions_and_rewrites_over_many_syncs(built: list[int]):
    """600 syncs of 1% each (two segments of 550, 1,100 old versions deleted at random) turn
    the collection over six times: the segments stay few, never more than half of the
    documents wait deleted, and each document is written about three times (indexed, then
    merged twice)."""
    rng = random.Random(7)
    live, every = list(built), list(built)
    added = written = 0
    for _ in range(600):
        for segment in rng.choices(range(len(live)), weights=live, k=1100):
            live[segment] -= 1
        live += [550, 550]
        every += [550, 550]
        added += 1100
        chosen = to_merge(live, every)
        merged = sum(live[n] for n in chosen)
        assert merged <= max(MERGED_MOST_DOCS, max(built) / 2)  # a rewrite: under half
        written += merged
        live = [size for n, size in enumerate(live) if n not in chosen] + [merged] * bool(chosen)
        every = [size for n, size in enumerate(every) if n not in chosen] + [merged] * bool(chosen)
        assert len(live) <= 24
        assert sum(live) >= sum(every) / 2
    assert (added + written) / added < 3.5
