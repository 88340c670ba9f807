"""The snapshot's vectorised search answers exactly what Whoosh answers, on a real index.

:meth:`IndexSnapshot.match` evaluates queries on cached posting arrays instead of Whoosh's
matchers (see searchidx/matching.py); these tests hold it to Whoosh: the same documents for
every query shape, and the same scores as Whoosh's matchers give when run to the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from whoosh import highlight as whoosh_highlight
from whoosh import query as whoosh_query
from whoosh.lang import porter
from whoosh.util.times import datetime_to_long, long_to_datetime

from searchidx import highlight, indexer, matching
from searchidx import service as service_module
from searchidx.content import scan_content
from searchidx.facets import FACETS
from searchidx.marks import Mark, to_html
from searchidx.querylang import parse_query
from searchidx.ranking import top_scored
from searchidx.request import SearchRequest, Sort
from searchidx.sample import ZipfWords
from searchidx.schema import ANALYZER, analysed
from searchidx.service import SearchService
from searchidx.snapshot import FacetRows, FacetTable, IndexSnapshot, _unique_months, date_key
from searchidx.store import IndexStore
from tests.conftest import real_shaped_articles

QUERIES = [
    "microsoft",
    "Microsoft quantum",
    "analysts regulators",
    "privacy",
    '"chip production"',
    '"machine learning" Google',
    'title:"cloud regions"',
    "microsoft -quantum",
    "microsoft NOT quantum",
    "+microsoft quantum",
    "quantum OR robotics",
    "(quantum OR robotics) microsoft",
    "micro*",
    "regul*",
    "microsfot~",
    "title:microsoft",
    "excerpt:analysts",
    "category:news",
    "domain:forbes.com",
    "date:2022",
    "date:[2021 TO 2022-06]",
    "quality:[60 TO 90]",
    "quality:{60 TO 90]",
    "NOT microsoft",
    "nosuchword",
    # Typed text (issue #16): joined words as phrases, a question, an address, folded accents.
    "machine-learning microsoft",
    "what is microsoft's cloud?",
    "AT&T 5G",
    "são paulo",
    "https://www.forbes.com/cloud",
    "“machine learning” «google»",
    '"unclosed (cloud',
    '"microsoft cloud"^2 azure',
]


@pytest.fixture(scope="module")
def searcher(sample_store: IndexStore):
    index = sample_store.open_index()
    with index.searcher() as searcher:
        yield searcher
    index.close()


def whoosh_ranking(query, searcher, limit: int) -> list[tuple[int, float]]:
    """Every match scored by Whoosh's own matcher, best first, ties by docnum."""
    matcher = query.matcher(searcher, searcher.context())
    scored = []
    while matcher.is_active():
        scored.append((matcher.id(), matcher.score()))
        matcher.next()
    return sorted(scored, key=lambda item: (-item[1], item[0]))[:limit]


@pytest.mark.parametrize("text", QUERIES)
def test_matches_and_scores_are_whooshs(text: str, searcher):
    query = parse_query(text)
    assert query is not None
    snapshot = IndexSnapshot(searcher)

    matches = snapshot.match(query, scored=True)

    assert set(np.flatnonzero(matches.mask).tolist()) == set(searcher.docs_for_query(query))
    if matches.scores is not None:  # else the service ranks with Whoosh itself
        mine = top_scored(matches.scores, matches.mask, 0, 30)
        theirs = whoosh_ranking(query, searcher, 30)
        assert [doc for doc, _ in mine] == [doc for doc, _ in theirs]
        # _top_scored's scores are floats (its type allows None for the hits it pages).
        assert np.allclose([s for _, s in mine], [s for _, s in theirs], rtol=1e-12, atol=0)  # type: ignore[arg-type]


def test_plain_words_and_phrases_are_scored_without_whoosh(searcher):
    snapshot = IndexSnapshot(searcher)
    for text in ("microsoft quantum", '"chip production"', "microsoft -quantum"):
        query = parse_query(text)
        assert query is not None
        assert snapshot.match(query, scored=True).scores is not None


def test_query_matcher_keeps_a_words_union_and_its_title_postings_alone(searcher):
    """A word's union of its fields is kept, which its queries read again; its fields'
    postings, as many bytes again, are not, but the title's (the title phrase bonus reads
    them); the same word in one field, read again, is kept then."""
    snapshot = IndexSnapshot(searcher)
    query = parse_query("microsoft")
    assert query is not None
    snapshot.match(query, scored=True)
    kept = {key[:2] for key in snapshot.matcher._cache._items}  # (kind, terms or field)
    assert {kind for kind, _ in kept} == {"union", "postings"}
    assert {field for kind, field in kept if kind == "postings"} == {"title"}
    body = parse_query("body:microsoft")
    assert body is not None
    snapshot.match(body, scored=True)
    assert ("postings", "body") in {key[:2] for key in snapshot.matcher._cache._items}


def test_a_title_phrase_bonus_of_words_no_title_shares_reads_no_positions(searcher, monkeypatch):
    """Words of the title that no one title has together: the title phrase bonus of the
    words typed is no one's, and a quoted title phrase of them matches nothing, as Whoosh
    finds; the bonus is told so from their postings, without reading their positions."""
    snapshot = IndexSnapshot(searcher)
    matcher = snapshot.matcher
    with snapshot.reading:
        words = [word.decode() for word in searcher.lexicon("title") if word.isalpha()]
    words = [word for word in words if [token.text for token in ANALYZER(word)] == [word]][:200]
    titled = {word: set(matcher.postings("title", word).docs.tolist()) for word in words}
    bodies = {word: set(matcher.postings("body", word).docs.tolist()) for word in words}
    first, second = next(
        (one, other)
        for one, other in itertools.combinations(words, 2)
        if not titled[one] & titled[other] and bodies[one] & bodies[other]
    )
    read: list[bytes] = []
    positions = matcher.positions
    monkeypatch.setattr(
        matcher, "positions", lambda field, word: read.append(word) or positions(field, word)
    )
    for text, finds in ((f"{first} {second}", True), (f'title:"{first} {second}"', False)):
        query = parse_query(text)
        assert query is not None
        matches = snapshot.match(query, scored=True)
        assert set(np.flatnonzero(matches.mask).tolist()) == set(searcher.docs_for_query(query))
        assert matches.mask.any() == finds  # the words in one body; never in one title
        if finds:
            assert matches.scores is not None
            mine = top_scored(matches.scores, matches.mask, 0, 30)
            theirs = whoosh_ranking(query, searcher, 30)
            assert [doc for doc, _ in mine] == [doc for doc, _ in theirs]
            assert not read  # the bonus: no positions


@pytest.mark.parametrize(("first", "second"), [(5, 4000), (4000, 5), (900, 1200), (1, 1)])
def test_shared_documents_are_found_by_search_and_by_table_alike(first: int, second: int):
    """Both ways of matching up two ascending docnum arrays (binary search of the much
    shorter, a table for similar lengths) give numpy's intersection and its indexes."""
    rng = np.random.default_rng(first * 7 + second)
    ones = np.sort(rng.choice(5000, first, replace=False))
    others = np.sort(rng.choice(5000, second, replace=False))

    into_first, into_second = matching._shared(ones, others)

    _, expected_first, expected_second = np.intersect1d(ones, others, return_indices=True)
    assert into_first.tolist() == expected_first.tolist()
    assert into_second.tolist() == expected_second.tolist()


@pytest.mark.parametrize("sizes", [(), (0, 0), (7,), (3000, 500, 0, 100, 50), (40, 40, 40)])
def test_distinct_of_ascending_runs_is_numpys_unique(sizes: tuple[int, ...]):
    """The distinct docnums of posting lists one after the other, and each posting's slot
    among them: numpy's sorted unique values and inverse."""
    rng = np.random.default_rng(sum(sizes) + len(sizes))
    runs = [np.sort(rng.choice(5000, size, replace=False)).astype(np.int32) for size in sizes]
    joined = np.concatenate(runs) if runs else np.array([], dtype=np.int32)

    docs, slots = matching._distinct(joined)

    expected_docs, expected_slots = np.unique(joined, return_inverse=True)
    assert docs.tolist() == expected_docs.tolist()
    assert slots.tolist() == expected_slots.tolist()


def test_facet_table_numbers_values_in_order_of_first_appearance_extended_or_not():
    rng = np.random.default_rng(11)
    for _ in range(200):
        size, start = int(rng.integers(1, 60)), int(rng.integers(0, 30))
        values = [
            [f"v{x}" for x in rng.choice(12, rng.integers(0, 3), replace=False)]
            for _ in range(size)
        ]
        live = rng.random(size) > 0.3
        first_seen = dict.fromkeys(v for d in range(size) if live[d] for v in values[d])
        whole = FacetTable.build(values, live)
        assert whole.values == tuple(first_seen)
        start = min(start, size)
        earlier = FacetTable.build(values[:start], np.ones(start, bool))
        extended = FacetTable.build(values[start:], live, earlier, start)
        assert extended.values == whole.values
        assert extended.doc_ids.tolist() == whole.doc_ids.tolist()
        assert extended.value_ids.tolist() == whole.value_ids.tolist()


def test_unique_months_are_numpys():
    rng = np.random.default_rng(5)
    for size in (0, 1, 50, 5000):
        months = rng.integers(-20_000, 100_000, size).astype("datetime64[M]")
        if size > 1:
            months[: size // 2] = months[size // 2]  # many of one month
        unique, ids = _unique_months(months)
        expected_unique, expected_ids = np.unique(months, return_inverse=True)
        assert unique.dtype == expected_unique.dtype
        assert unique.tolist() == expected_unique.tolist()
        assert ids.tolist() == expected_ids.tolist()


@pytest.mark.parametrize("most", [1, 3], ids=["single-valued", "multi-valued"])
def test_facet_counts_by_document_equal_a_brute_force_count(most: int):
    rng = np.random.default_rng(7)
    for _ in range(300):
        size = int(rng.integers(1, 80))
        values = [
            [f"v{x}" for x in rng.choice(9, rng.integers(0, most + 1), replace=False)]
            for _ in range(size)
        ]
        live = rng.random(size) > 0.2
        table = FacetTable.build(values, live)
        assert most > 1 or table._value_of is not None  # a value id per document
        mask = rng.random(size) > rng.random()
        docs = np.flatnonzero(mask)
        brute = [sum(value in values[d] for d in docs if live[d]) for value in table.values]
        assert table.counts(mask).tolist() == brute
        assert table.counts(mask, docs).tolist() == brute  # by document when few


def test_facet_rows_count_each_facet_as_a_brute_force_count_does():
    """Facets of one, a few and too many values to a document for a row (counted from
    their tables instead), counted together and a few at a time."""
    rng = np.random.default_rng(11)
    for _ in range(100):
        size = int(rng.integers(1, 80))
        live = rng.random(size) > 0.2
        per_facet = {
            name: [
                [f"v{x}" for x in rng.choice(12, rng.integers(0, most + 1), replace=False)]
                for _ in range(size)
            ]
            for name, most in (("one", 1), ("few", 3), ("many", 12))
        }
        tables = {name: FacetTable.build(values, live) for name, values in per_facet.items()}
        rows = FacetRows.of(tables, size)
        mask = rng.random(size) > rng.random()
        docs = np.flatnonzero(mask)
        for names in (["one", "few", "many"], ["few"], ["many", "one"], ["many"]):
            counts = rows.counts(names, docs)
            for name in names:
                values = per_facet[name]
                brute = [sum(v in values[d] for d in docs if live[d]) for v in tables[name].values]
                if name in counts:
                    assert counts[name].tolist() == brute
                else:
                    assert tables[name].counts(mask, docs).tolist() == brute
        widest = max(
            (len(v) for v, kept in zip(per_facet["many"], live, strict=True) if kept), default=0
        )
        assert ("many" in rows.spans) == (widest <= 8)


def test_rank_is_the_inverse_of_the_sort_order(searcher):
    snapshot = IndexSnapshot(searcher)
    for sort in (Sort.NEWEST, Sort.OLDEST, Sort.QUALITY):
        order = snapshot.order(sort)
        assert (order[snapshot.rank(sort)] == np.arange(snapshot.size)).all()


def test_after_edits_and_deletions_deleted_documents_never_match(sample_dir: Path, tmp_path: Path):
    content = tmp_path / "content"
    shutil.copytree(sample_dir, content)
    store = IndexStore(tmp_path / "index")
    indexer.sync(store, content)
    paths = sorted(scan_content(content))
    for path in paths[:30]:
        (content / path).unlink()
    for path in paths[30:40]:
        text = (content / path).read_text().replace('title: "', 'title: "Microsoft edit ', 1)
        (content / path).write_text(text)
    indexer.sync(store)
    index = store.open_index()
    try:
        with index.searcher() as searcher:
            snapshot = IndexSnapshot(searcher)
            assert set(np.flatnonzero(snapshot.live).tolist()) == set(
                searcher.reader().all_doc_ids()
            )
            assert len(list(searcher.reader().leaf_readers())) > 1  # fuzzy: per segment
            for text in (
                "microsoft",
                "Microsoft edit",
                '"chip production"',
                "regul*",
                "NOT cloud",
                "microsuft~",
                "regulatoin~2",
            ):
                query = parse_query(text)
                assert query is not None
                found = snapshot.match(query, scored=True).mask
                assert set(np.flatnonzero(found).tolist()) == set(searcher.docs_for_query(query))
    finally:
        index.close()


def _store_with_deletions(sample_dir: Path, tmp_path: Path, deleted: slice) -> IndexStore:
    """The sample indexed, then synced after the ``deleted`` of its sorted files were
    removed: an index whose deleted documents a fast path must leave out."""
    content = tmp_path / "content"
    shutil.copytree(sample_dir, content)
    store = IndexStore(tmp_path / "index")
    indexer.sync(store, content)
    for path in sorted(scan_content(content))[deleted]:
        (content / path).unlink()
    indexer.sync(store)
    return store


@contextlib.contextmanager
def _snapshot_with_deletions(
    sample_dir: Path, tmp_path: Path, deleted: slice
) -> Iterator[IndexSnapshot]:
    """A snapshot of :func:`_store_with_deletions`."""
    index = _store_with_deletions(sample_dir, tmp_path, deleted).open_index()
    try:
        with index.searcher() as searcher:
            snapshot = IndexSnapshot(searcher)
            assert snapshot.live_count < snapshot.size  # some deleted
            yield snapshot
    finally:
        index.close()


@pytest.mark.parametrize("text", ["microsoft", "cloud", "regulators", "title:microsoft^2"])
def test_a_lone_words_pages_read_off_its_score_order_are_whooshs(
    sample_dir: Path, tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch
):
    """A lone word's relevance pages, read off the top of its score order sorted only as far
    as each page needs past the deleted documents, are those of every match scored, to the
    bit, and Whoosh's."""
    monkeypatch.setattr(matching, "RANKED_TOP", 1)  # sorted no further than a page needs
    with _snapshot_with_deletions(sample_dir, tmp_path, slice(None, None, 20)) as snapshot:
        query = parse_query(text)
        assert query is not None
        matches = snapshot.match(query, scored=True)
        assert matches.scores is not None
        theirs = whoosh_ranking(query, snapshot.searcher, 60)
        deleted = snapshot.size - snapshot.live_count
        for start in (0, 5, 30, 50):
            needed = start + 10 + deleted
            ranked = snapshot.matcher.ranked(query, needed)
            assert ranked is not None
            assert len(ranked.docs) <= 1 << (needed - 1).bit_length()  # "regulators": 64 of 227
            mine = service_module._top_of_ranked(snapshot, ranked, start, 10)
            assert mine == top_scored(matches.scores, matches.mask, start, start + 10)
            assert [doc for doc, _ in mine] == [doc for doc, _ in theirs[start : start + 10]]
            mine_scores = np.array([score for _, score in mine], dtype=np.float64)
            their_scores = [score for _, score in theirs[start : start + 10]]
            assert np.allclose(mine_scores, their_scores, rtol=1e-12, atol=0)


def test_search_of_a_lone_word_counts_its_live_matches_without_a_mask(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A lone word's relevance page is read off its score order and its total counted from
    its documents, deleted ones left out: the same answer as with facets, which read the
    mask of its matches, and no mask made."""
    service = SearchService(_store_with_deletions(sample_dir, tmp_path, slice(None, None, 7)))
    try:
        for text in ("microsoft", "cloud", "regulators"):
            request = SearchRequest(text=text, sort=Sort.RELEVANCE, page=2, per_page=5)
            with_facets = service.search(request)
            monkeypatch.setattr(IndexSnapshot, "match", lambda *_: pytest.fail("a mask made"))
            alone = service.search(dataclasses.replace(request, facets=False))
            monkeypatch.undo()
            assert alone.total == with_facets.total
            assert [(hit.article.path, hit.score) for hit in alone.hits] == [
                (hit.article.path, hit.score) for hit in with_facets.hits
            ]
            assert alone.hits
    finally:
        service.close()


@pytest.mark.parametrize(
    "text",
    [
        "microsoft cloud",
        "analysts regulators investors",
        "cloud regions",
        "microsoft nosuchword",
        "Microsoft^2 quantum",
        "title:microsoft cloud",
        "machine-learning microsoft",
    ],
)
@pytest.mark.parametrize("tabled", [10**9, 0], ids=["through-tables", "searched"])
def test_a_queries_every_word_matches_are_those_of_every_document_scored(
    sample_dir: Path, tmp_path: Path, text: str, tabled: int, monkeypatch: pytest.MonkeyPatch
):
    """A query of words that must all match, intersected from the words' postings (looked
    up in a table of each union's documents, or searched), has the live matches of every
    document scored, to the bit, and the same relevance page."""
    monkeypatch.setattr(matching, "_TABLED_SHARE", tabled)
    with _snapshot_with_deletions(sample_dir, tmp_path, slice(None, None, 7)) as snapshot:
        query = parse_query(text)
        assert query is not None
        every = snapshot.matcher.every_word(query)
        matches = snapshot.match(query, scored=True)
        if text.startswith("machine-learning"):  # a joined word is a phrase: not this path
            assert every is None
            return
        assert every is not None and every.scores is not None and matches.scores is not None
        assert every.docs.tolist() == np.flatnonzero(matches.mask).tolist()
        assert every.scores.tolist() == matches.scores[every.docs].tolist()
        request = SearchRequest(text=text, sort=Sort.RELEVANCE, page=2, per_page=5)
        matched = service_module._every_word_matched(snapshot, request, query, every)
        assert matched.total == np.count_nonzero(matches.mask) and matched.ranked is not None
        assert matched.final.tolist() == matches.mask.tolist()  # made when read
        assert service_module._top_of_ranked(snapshot, matched.ranked, 5, 5) == top_scored(
            matches.scores, matches.mask, 5, 10
        )


@pytest.mark.parametrize("share", [1, 10**9], ids=["few-postings", "every-document"])
def test_a_words_union_is_the_same_summed_at_its_documents_or_over_every_one(
    sample_store: IndexStore, share: int, monkeypatch: pytest.MonkeyPatch
):
    """A word's union (its term in each field, boosted), its fields read together and summed
    at its own documents or over every document, or read and summed a field at a time: the
    same documents and the same scores, to the bit."""
    index = sample_store.open_index()
    try:
        with index.searcher() as searcher:
            for text in ("microsoft", "cloud", "regulators", "quantum", "analysts"):
                snapshot = IndexSnapshot(searcher)
                query = parse_query(text)
                word = matching._lone_word(query) if query is not None else None
                assert word is not None
                mask, scores = snapshot.matcher._sum_of(
                    snapshot.matcher._boosted_postings(word[0]), scored=True
                )
                assert scores is not None
                monkeypatch.setattr(matching, "SPARSE_SHARE", share)
                union = snapshot.matcher._merged(word[0])
                monkeypatch.undo()
                assert union.scores is not None
                assert union.docs.tolist() == np.flatnonzero(mask).tolist()
                assert union.scores.tolist() == scores[union.docs].tolist()
    finally:
        index.close()


def test_snapshot_facet_counts_of_most_documents_equal_each_tables_count(
    sample_dir: Path, tmp_path: Path
):
    """More than half of the live documents are counted as all of them less the others: the
    same counts as each facet's table gives, deleted documents counted by neither."""
    with _snapshot_with_deletions(sample_dir, tmp_path, slice(None, 30)) as snapshot:
        names = [facet.name for facet in FACETS]
        rng = np.random.default_rng(5)
        for share in (0.0, 0.1, 0.5, 0.6, 0.95, 1.0):
            mask = snapshot.live & (rng.random(snapshot.size) < share)
            counts = snapshot.facet_counts(names, mask)
            for name in names:
                assert counts[name].tolist() == snapshot.facet(name).counts(mask).tolist()
            assert snapshot.facet_counts(["provider"], mask)["provider"].tolist() == (
                counts["provider"].tolist()
            )


def _date_ranges(snapshot: IndexSnapshot) -> list[tuple[datetime | None, datetime | None]]:
    """Open and closed ranges, some of them starting or ending at an article's very moment
    or a microsecond either side of it."""
    days = [datetime(year, month, 1, tzinfo=UTC) for year in (2022, 2024) for month in (1, 7)]
    moments = sorted(set(snapshot.dates.tolist()))
    at = [long_to_datetime(moments[n]).replace(tzinfo=UTC) for n in (5, len(moments) // 2)]
    tick = timedelta(microseconds=1)
    return [
        (None, None),
        (days[0], None),
        (None, days[2]),
        *itertools.pairwise(days),
        (at[0], at[1]),
        (at[0] + tick, at[1] - tick),
        (at[0] - tick, at[0]),
        (at[1], None),
    ]


def test_snapshot_dated_docs_are_the_date_ranges_live_documents_ascending(
    sample_dir: Path, tmp_path: Path
):
    """The few-documents path's sorted slice of the date order gives what scanning the date
    range's mask gives: the live documents only, ascending, with the same integer type."""
    with _snapshot_with_deletions(sample_dir, tmp_path, slice(None, None, 3)) as snapshot:
        for start, end in _date_ranges(snapshot):
            docs = snapshot.dated_docs(start, end)
            expected = np.flatnonzero(snapshot.date_range(start, end))
            assert docs.dtype == expected.dtype
            assert docs.tolist() == expected.tolist()


def test_date_key_is_whooshs_long_of_the_utc_time():
    zones = [UTC, timezone(timedelta(hours=-2)), timezone(timedelta(hours=5, minutes=30))]
    moments = [
        datetime(2021, 6, 7, 23, 30, 0, 999999),
        datetime(1970, 1, 1),
        datetime(1, 1, 2),
        datetime(9999, 12, 30, 23, 59, 59, 999999),
    ]
    for moment in moments:
        assert date_key(moment) == datetime_to_long(moment)  # naive: UTC
        for zone in zones:
            utc = moment.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
            assert date_key(moment.replace(tzinfo=zone)) == datetime_to_long(utc)


def test_snapshot_dated_and_dated_in_order_are_what_the_date_ranges_mask_holds(
    sample_dir: Path, tmp_path: Path
):
    """Which documents are dated within a range, told by their places in the date order, are
    those whose dates are (deleted or not); and a date order's slice of the range holds the
    live documents the range's mask holds, in that order."""
    with _snapshot_with_deletions(sample_dir, tmp_path, slice(None, None, 3)) as snapshot:
        every = np.arange(snapshot.size)
        for start, end in _date_ranges(snapshot):
            low = -(2**63) if start is None else date_key(start)
            high = 2**63 - 1 if end is None else date_key(end)
            within = (snapshot.dates >= low) & (snapshot.dates <= high)
            assert snapshot.dated(every, start, end).tolist() == within.tolist()
            assert snapshot.dated(every[::7], start, end).tolist() == within[::7].tolist()
            mask = snapshot.date_range(start, end)
            for sort in (Sort.NEWEST, Sort.OLDEST):
                order = snapshot.order(sort)
                expected = order[mask[order]]
                assert snapshot.dated_in_order(sort, start, end).tolist() == expected.tolist()


def test_search_of_a_date_range_alone_reads_its_slice_of_the_date_order(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Without query text or another filter, a date-ordered page is read off the range's
    slice of the date order, deleted documents left out: the answer of the search over every
    document (the range's mask), which is not made."""
    store = _store_with_deletions(sample_dir, tmp_path, slice(1, None, 4))
    service = SearchService(store, results_cached=0)
    snapshot = service.snapshot()
    masks: list[int] = []
    date_range = snapshot.date_range
    monkeypatch.setattr(snapshot, "date_range", lambda *a: masks.append(1) or date_range(*a))

    def answer(request: SearchRequest) -> tuple:
        result = service.search(request)
        return result.total, [hit.article.path for hit in result.hits]

    try:
        for start, end in _date_ranges(snapshot):
            for sort in (Sort.NEWEST, Sort.OLDEST, Sort.RELEVANCE, None):
                for page in (1, 3):
                    request = SearchRequest(
                        sort=sort, date_from=start, date_to=end, page=page, per_page=7, facets=False
                    )
                    masks.clear()
                    sliced = answer(request)
                    assert masks == []
                    with monkeypatch.context() as every:
                        every.setattr(service_module, "_dated", lambda *a: None)
                        assert sliced == answer(request), request
    finally:
        service.close()


FRAGMENTERS = [
    whoosh_highlight.WholeFragmenter,
    lambda: whoosh_highlight.WholeFragmenter(charlimit=50),
    lambda: whoosh_highlight.ContextFragmenter(highlight.EXCERPT_CHARS, 80),
    lambda: whoosh_highlight.ContextFragmenter(40, 10, charlimit=300),
]


def _assert_marked_as_whoosh_marks(text: str, terms: frozenset[str], fragmenter) -> None:
    for top in (1, 2):
        formatter = whoosh_highlight.HtmlFormatter(
            tagname="mark", classname="match", between=highlight.BETWEEN_FRAGMENTS
        )
        whooshs = whoosh_highlight.highlight(
            text, terms, ANALYZER, fragmenter(), formatter, top=top
        )
        assert to_html(highlight._marked(text, terms, fragmenter(), top)) == whooshs, (text, terms)


@pytest.mark.parametrize("fragmenter", FRAGMENTERS)
def test_highlighting_is_whooshs(fragmenter):
    rng = random.Random(5)
    texts = []
    for article in real_shaped_articles():
        texts += [article.title, article.excerpt, article.body[:2000]]
    words = ["the", "a", "Microsoft", "microsoft", "chip", "production", "is", "AI", "<b>", "&amp;"]
    for _ in range(1000):
        texts.append("".join(rng.choice('abcé .-*_\n<>&"İ1') for _ in range(rng.randint(0, 300))))
        texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(0, 120))))
    stems = ["microsoft", "chip", "product", "ai", "the", "a", "ab", "b", "é", "power", "app", "1"]
    for text in texts:
        terms = frozenset(rng.sample(stems, rng.randint(1, 5)))
        _assert_marked_as_whoosh_marks(text, terms, fragmenter)


@pytest.mark.parametrize("fragmenter", FRAGMENTERS)
def test_highlighting_is_whooshs_for_the_terms_of_a_texts_own_words(monkeypatch, fragmenter):
    """Highlighting analyses only the words that may match (those whose first letter begins a
    query term), each once across queries: the same marks as Whoosh's, for terms of the
    text's own words and words of the same first letters, over the bench's made-up words and
    letters that lowercase or fold to more, fewer or other letters."""
    chain = highlight._CHAIN
    assert chain is not None and highlight._SCANNED  # the schema's words, Porter's stemmer
    monkeypatch.setattr(highlight, "_TERMS", {})
    rng = random.Random(11)
    made_up = ZipfWords(2000)
    texts = [text for article in real_shaped_articles() for text in (article.title, article.body)]
    texts += [
        " ".join(made_up.sentence(rng) for _ in range(rng.randint(1, 12))) for _ in range(300)
    ]
    letters = "aAyYsSiIeé Éİıßæ Œ ΣσςﬁĲ\u0301·.&*_-'\u20191 ᾈ"
    texts += ["".join(rng.choices(letters, k=rng.randint(1, 80))) for _ in range(300)]
    for text in texts:
        own = [token.text for token in ANALYZER(text, mode="query", removestops=False)]
        for _ in range(3):  # the same text again, for terms of other first letters
            chosen = rng.sample(own, min(len(own), rng.randint(1, 2)))
            chosen.append(rng.choice(made_up.words))
            terms = frozenset(analysed(chain, word)[0] for word in chosen)
            _assert_marked_as_whoosh_marks(text, terms, fragmenter)


def test_porter_stem_keeps_a_words_first_letter():
    """What highlighting relies on to leave unstemmed the words of other first letters than
    a query's terms (highlight._SCANNED): the bench's made-up words, the articles' words, and
    strings of the letters Porter's rules turn on."""
    rng = random.Random(3)
    words = list(ZipfWords(20_000).words)
    for article in real_shaped_articles():
        words += [token.text for token in ANALYZER(article.body, mode="query", removestops=False)]
    words += ["".join(rng.choices("yaeiouslzbtdcgn", k=rng.randint(1, 12))) for _ in range(50_000)]
    words += ["ies", "sses", "yes", "eed", "ying", "ed", "ing", "y", "ys", "yies", "abilit"]
    assert [word for word in words if porter.stem(word)[:1] != word[:1]] == []


@pytest.mark.parametrize("sort", [Sort.RELEVANCE, Sort.NEWEST, Sort.OLDEST, Sort.QUALITY])
def test_search_within_few_allowed_documents_answers_as_over_every_document(
    sample_store: IndexStore, monkeypatch: pytest.MonkeyPatch, sort: Sort
):
    """A text search within filters that allow few documents looks its query up at them
    alone (IndexSnapshot.match_at): the same totals, pages, scores and retries as its query
    matched over every document (the same marks too), for every query shape."""
    service = SearchService(sample_store, results_cached=0)
    snapshot = service.snapshot()
    looked_up = []
    match_at = snapshot.match_at
    monkeypatch.setattr(snapshot, "match_at", lambda *a: looked_up.append(1) or match_at(*a))
    within: list[dict[str, Any]] = [
        {
            "date_from": datetime(2020, 3, 1, tzinfo=UTC),
            "date_to": datetime(2020, 9, 1, tzinfo=UTC),
        },
        {
            "date_from": datetime(2023, 1, 1, tzinfo=UTC),
            "date_to": datetime(2024, 1, 1, tzinfo=UTC),
        },
        {"filters": {"topic": (snapshot.facet("topic").values[0],)}},
        {"filters": {"provider": (snapshot.facet("provider").values[1],)}, "min_quality": 50},
    ]

    def answer(request: SearchRequest) -> tuple:
        result = service.search(request)
        hits = [
            (hit.article.path, hit.score, hit.marked_title, hit.marked_excerpt)
            for hit in result.hits
        ]
        return result.total, hits, result.retry, result.ran_query

    monkeypatch.setattr(service_module, "WORD_AMONG", 0)  # a lone word too: at the few
    try:
        for text in QUERIES:
            for fields in within:
                request = SearchRequest(text=text, sort=sort, per_page=5, facets=False, **fields)
                monkeypatch.setattr(service_module, "FEW_ALLOWED_SHARE", 0)  # always few
                few = answer(request)
                monkeypatch.setattr(service_module, "FEW_ALLOWED_SHARE", snapshot.size + 1)
                assert few == answer(request), (text, fields)
    finally:
        service.close()
    assert len(looked_up) == len(QUERIES) * len(within)


def test_search_among_a_required_words_documents_answers_as_over_every_document(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A text search within filters looked up among the documents of a word it requires (a
    lone word's matches taken as they are; the filters' dates compared, no date mask)
    answers seeded requests (words, date ranges, filters, sorts, pages) as its query
    matched over every document does, to the score, deleted documents left out."""
    content = tmp_path / "content"
    shutil.copytree(sample_dir, content)
    store = IndexStore(tmp_path / "index")
    indexer.sync(store, content)
    for path in sorted(scan_content(content))[::3]:
        (content / path).unlink()
    indexer.sync(store)
    service = SearchService(store, results_cached=0)
    snapshot = service.snapshot()
    assert snapshot.live_count < snapshot.size  # some deleted
    taken: list[bool | None] = []  # whether each request's required word is its query
    required_word = snapshot.matcher.required_word

    def counted(parsed: whoosh_query.Query) -> tuple[matching.Postings, bool] | None:
        found = required_word(parsed)
        taken.append(None if found is None else found[1])
        return found

    monkeypatch.setattr(snapshot.matcher, "required_word", counted)
    monkeypatch.setattr(service_module, "FEW_ALLOWED_SHARE", snapshot.size + 1)  # never few
    rng = random.Random(12)
    words = [*snapshot.title_words[0], "microsoft", "Analysts", "title:cloud", "topic:ai^2"]
    common = ["microsoft", "cloud", "analysts", "regulators", '"chip production"', "-quantum"]
    topics, providers = snapshot.facet("topic").values, snapshot.facet("provider").values
    days = np.sort(snapshot.dates[snapshot.live])

    def moment() -> datetime:  # an article's date, or a second either side of it
        date = long_to_datetime(int(rng.choice(days))).replace(tzinfo=UTC)
        return date + timedelta(seconds=rng.choice((-1, 0, 1)))

    def answer(request: SearchRequest) -> tuple:
        result = service.search(request)
        return result.total, [(hit.article.path, hit.score) for hit in result.hits], result.retry

    found = 0
    try:
        for number in range(400):
            start, end = sorted((moment(), moment()))
            fields: dict[str, Any] = rng.choice(
                [
                    {"date_from": start, "date_to": end},
                    {"date_from": start},
                    {"date_to": end, "filters": {"topic": (rng.choice(topics),)}},
                    {"filters": {"provider": (rng.choice(providers),)}, "min_quality": 40},
                ]
            )
            text = rng.choice(words)
            if number % 2:  # and another word or two, a phrase, a word left out
                text = " ".join([text, *rng.sample(common, rng.randint(1, 2))])
            request = SearchRequest(
                text=text,
                sort=rng.choice([Sort.RELEVANCE, Sort.NEWEST, Sort.OLDEST, Sort.QUALITY]),
                page=rng.randint(1, 3),
                per_page=5,
                facets=False,
                **fields,
            )
            monkeypatch.setattr(service_module, "WORD_AMONG", 1)  # always its documents
            among = answer(request)
            monkeypatch.setattr(service_module, "WORD_AMONG", 0)  # never
            assert among == answer(request), request
            found += among[0] > 0
    finally:
        service.close()
    assert taken.count(True) == 200  # each lone word its own matches
    assert taken.count(False) > 120  # most others looked up among a word's documents
    assert found > 200  # most requests find something


def test_search_within_a_date_range_of_few_documents_makes_no_date_mask(
    sample_store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    """A date range's few documents are its slice of the date order: its mask, which only
    the search over every document reads, is not made; the answer is that search's."""
    service = SearchService(sample_store, results_cached=0)
    snapshot = service.snapshot()
    masks: list[int] = []
    date_range = snapshot.date_range
    monkeypatch.setattr(snapshot, "date_range", lambda *a: masks.append(1) or date_range(*a))
    request = SearchRequest(
        text="microsoft",
        date_from=datetime(2023, 1, 1, tzinfo=UTC),
        date_to=datetime(2024, 1, 1, tzinfo=UTC),
        sort=Sort.RELEVANCE,
        per_page=5,
        facets=False,
    )
    monkeypatch.setattr(service_module, "WORD_AMONG", 0)  # not the word's documents
    try:
        monkeypatch.setattr(service_module, "FEW_ALLOWED_SHARE", 0)  # always few
        few = service.search(request)
        assert masks == []
        monkeypatch.setattr(service_module, "FEW_ALLOWED_SHARE", snapshot.size + 1)
        every = service.search(request)
        assert masks == [1]
    finally:
        service.close()
    assert few.total == every.total > 0
    assert [hit.article.path for hit in few.hits] == [hit.article.path for hit in every.hits]


def test_search_looks_up_few_documents_weighed_by_the_query_terms(
    sample_store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    """Each term is looked up at each allowed document: a query of more words is looked up
    at fewer documents before it is matched over every document instead."""
    monkeypatch.setattr(service_module, "FEW_ALLOWED_SHARE", 1)
    monkeypatch.setattr(service_module, "WORD_AMONG", 0)  # a lone word too: at the few
    service = SearchService(sample_store, results_cached=0)
    snapshot = service.snapshot()
    looked_up: list[int] = []
    match_at = snapshot.match_at
    monkeypatch.setattr(snapshot, "match_at", lambda *a: looked_up.append(1) or match_at(*a))
    year: dict[str, Any] = {
        "date_from": datetime(2023, 1, 1, tzinfo=UTC),
        "date_to": datetime(2024, 1, 1, tzinfo=UTC),
    }
    allowed = int(np.count_nonzero(snapshot.date_range(year["date_from"], year["date_to"])))
    try:
        for text, terms in (("microsoft", 5), ("microsoft cloud analysts", 16)):
            assert len(list(parse_query(text).leaves())) == terms
            looked_up.clear()
            service.search(SearchRequest(text=text, sort=Sort.RELEVANCE, facets=False, **year))
            assert looked_up == ([1] if allowed * terms <= snapshot.size else [])
    finally:
        service.close()
    assert allowed * 5 <= snapshot.size < allowed * 16  # the two sides of the bound


def test_highlighting_analyses_a_word_once_and_only_for_terms_of_its_first_letter(monkeypatch):
    monkeypatch.setattr(highlight, "_TERMS", {})
    asked: list[str] = []

    def counted(chain: tuple, word: str) -> tuple[str, bool]:
        asked.append(word)
        return analysed(chain, word)

    monkeypatch.setattr(highlight, "analysed", counted)
    text = "Quorbling quorbles, and quorbling: Quorbling quorbles."
    marked = highlight._marked(text, frozenset({"quorbl"}), whoosh_highlight.WholeFragmenter(), 1)
    assert sorted(asked) == ["Quorbling", "quorbles", "quorbling"]
    assert [piece.text for piece in marked if isinstance(piece, Mark)] == [
        "Quorbling",
        "quorbles",
        "quorbling",
        "Quorbling",
        "quorbles",
    ]
    asked.clear()
    highlight._marked(text, frozenset({"quorbl", "and"}), whoosh_highlight.WholeFragmenter(), 1)
    assert asked == ["and"]


def test_top_values_ranked_in_python_as_by_numpy(monkeypatch):
    """A short facet's values ranked in Python list as numpy ranks a long one's: most hits
    first, ties by name, the selected ones after, the search's prefix kept."""
    rng = np.random.default_rng(3)
    names = ["AI", "ai", "Cloud", "cloud computing", "Chips", "Zeta", "beta", "Beta two", "x"]
    for _ in range(300):
        values = tuple(rng.choice(names, int(rng.integers(1, len(names))), replace=False))
        table = FacetTable.of(values, np.zeros(0, np.int32), np.zeros(0, np.int32))
        counts = rng.integers(0, 4, len(values)).astype(np.int64)
        chosen = rng.choice([*values, "unknown"], int(rng.integers(0, 3)), replace=False)
        selected = {str(value).casefold(): str(value) for value in chosen}
        size = int(rng.integers(1, 6))
        search = str(rng.choice(["", "c", "b", "two", "zz"]))
        in_python = service_module._top_values("topic", table, counts, selected, size, search)
        monkeypatch.setattr(service_module, "FEW_FACET_VALUES", 0)
        by_numpy = service_module._top_values("topic", table, counts, selected, size, search)
        monkeypatch.undo()
        assert in_python == by_numpy


def test_ranked_by_whoosh_within_no_documents_is_an_empty_page(sample_store: IndexStore):
    """Whoosh's searcher reads an empty filter as no filter: a page it ranks within no
    documents is empty, not the first of every document."""
    service = SearchService(sample_store, results_cached=0)
    try:
        snapshot = service.snapshot()
        every = whoosh_query.Every()
        assert service_module._ranked_by_whoosh(snapshot, every, set(), 0, 10) == []
        assert [
            doc for doc, _ in service_module._ranked_by_whoosh(snapshot, every, {3}, 0, 10)
        ] == [3]
    finally:
        service.close()
