"""The numpy query paths give Whoosh's own answers, on generated queries (Hypothesis).

tests/test_search_fastpaths.py holds hand-picked queries to Whoosh on one small segment; here
generated query trees (words, phrases with slop, AND, OR, NOT, ANDNOT, ANDMAYBE, fields,
wildcards, fuzzy words, ranges, boosts) run on an index of more than 5,000 documents in several
segments, with deletions, built by several syncs: one segment above Whoosh's 5,000-document
union threshold (wildcards scored as a sum there) and small ones below it. Each query's
documents, total and scores must equal what Whoosh's searcher finds, and so must every sorted
page the search service cuts. Also: the fast paths are really taken, and when the layout check
fails, Whoosh answers every query (the same answers) after one warning.
"""

from __future__ import annotations

import gc
import random
import shutil
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from whoosh import formats, sorting
from whoosh import query as whoosh_query
from whoosh.reading import SegmentReader, TermNotFound

from searchidx import indexer, querylang, whoosh_internals
from searchidx.content import scan_content
from searchidx.errors import QueryError
from searchidx.marks import Mark
from searchidx.matching import QueryMatcher
from searchidx.positions import VarintPositions
from searchidx.querylang import parse_query
from searchidx.records import records_of
from searchidx.request import SearchRequest, Sort
from searchidx.sample import write_sample
from searchidx.schema import ANALYZER, _plain_chain, analysed, from_record
from searchidx.service import SearchService
from searchidx.snapshot import IndexSnapshot
from searchidx.store import IndexStore
from tests.conftest import write_article

#: Articles of the first build (one segment, above the union threshold), then added by syncs.
FIRST_BUILD = 5_600
ADDED_PER_SYNC = 400
#: Scores equal Whoosh's to this relative difference (sums may be added in another order).
RELATIVE = 1e-9
PER_PAGE = 20
#: Generated queries per test in the default run, and in the slow variant.
EXAMPLES = 150
SLOW_EXAMPLES = 500

#: Queries compared with Whoosh, by what was compared (printed at the end of the session).
COMPARED: Counter[str] = Counter()


@pytest.fixture(scope="session")
def segmented_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexStore]:
    """An index of more than 5,000 live documents in segments of both sides of Whoosh's
    union threshold, with deletions: a build in one process (one segment of 5,601), then
    syncs that add files, edit files and remove files (a small segment each)."""
    content = tmp_path_factory.mktemp("segmented-content")
    write_sample(content, FIRST_BUILD, seed=11)
    store = IndexStore(tmp_path_factory.mktemp("segmented-index"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(indexer, "BUILD_PROCESSES", 1)
        indexer.sync(store, content)
        for batch in range(2):
            write_sample(content / f"added-{batch}", ADDED_PER_SYNC, seed=20 + batch)
            indexer.sync(store)
        paths = sorted(scan_content(content))
        for path in paths[::9]:  # edited: deleted where they were, added in a new segment
            file = content / path
            file.write_text(file.read_text().replace('title: "', 'title: "Edited ', 1))
        indexer.sync(store)
        for path in paths[4::13]:
            (content / path).unlink(missing_ok=True)
        shutil.rmtree(content / "added-1" / "2019", ignore_errors=True)
        indexer.sync(store)
    yield store
    print(f"\nqueries compared with Whoosh: {dict(COMPARED)}")


@pytest.fixture(scope="session")
def service(segmented_store: IndexStore) -> Iterator[SearchService]:
    service = SearchService(segmented_store, results_cached=0)
    yield service
    service.close()


def test_the_index_has_segments_on_both_sides_of_the_union_threshold(service):
    snapshot = service.snapshot()
    sizes = [leaf.doc_count_all() for leaf, _ in snapshot._leaves]
    deleted = [leaf.has_deletions() for leaf, _ in snapshot._leaves]
    assert int(snapshot.live.sum()) > 5_000
    assert max(sizes) > whoosh_internals.WHOOSH_UNION_ABOVE >= min(sizes)
    assert len(sizes) >= 3 and any(deleted)


# Generated queries ---------------------------------------------------------------------------

WORDS = [
    "microsoft",
    "google",
    "quantum",
    "privacy",
    "regulators",
    "chip",
    "production",
    "cloud",
    "regions",
    "analysts",
    "announcement",
    "investors",
    "the",
    "edited",
    "startups",
    "robotics",
    "nosuchword",
    "machine",
    "learning",
    "security",
]
PHRASES = [
    "chip production",
    "cloud regions",
    "machine learning",
    "data privacy",
    "privacy advocates",
    "the company",
    "new customers",
    "analysts expect",
]
FIELDS = ["title", "excerpt", "body", "topic", "provider"]
EXACT = [
    "category:news",
    "category:blog",
    "type:video",
    "published:false",
    "domain:forbes.com",
    "domain:wired.com",
]
PATTERNS = ["micro*", "reg*", "c*", "pr*", "s*", "*ing", "chi?", "a*s", "quantu*", "zzz*"]
FUZZY = ["microsfot~", "quantom~", "privcy~2", "chp~1", "regulaton~"]
RANGES = [
    "quality:[50 TO 90]",
    "quality:[120 TO]",
    "date:[2020 TO 2021]",
    "date:2023",
    "title:[a TO c]",
    "topic:[p TO r]",
    "body:[x TO z]",
]

_fielded = st.builds(
    lambda field, word: f"{field}:{word}", st.sampled_from(FIELDS), st.sampled_from(WORDS)
)
_phrase = st.builds(
    lambda phrase, slop, field: f'{field}"{phrase}"{slop}',
    st.sampled_from(PHRASES),
    st.sampled_from(["", "", "~2", "~4"]),
    st.sampled_from(["", "", "title:", "body:"]),
)
_leaf = st.one_of(
    st.sampled_from(WORDS),
    _fielded,
    _phrase,
    st.sampled_from(EXACT),
    st.sampled_from(PATTERNS),
    st.builds(
        lambda field, pattern: f"{field}:{pattern}",
        st.sampled_from(FIELDS),
        st.sampled_from(PATTERNS),
    ),
    st.sampled_from(FUZZY),
    st.sampled_from(RANGES),
)
_boosted = st.builds(
    lambda leaf, boost: leaf + boost, _leaf, st.sampled_from(["", "", "", "^2", "^0.5", "^3.5"])
)


def _combined(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(children, children)
    return st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda parts: f"({' '.join(parts)})"),
        st.builds(
            lambda ab, op: f"({ab[0]} {op} {ab[1]})",
            pair,
            st.sampled_from(["OR", "AND", "ANDNOT", "ANDMAYBE", "NOT"]),
        ),
        children.map(lambda part: f"(microsoft NOT {part})"),
        children.map(lambda part: f"(NOT {part})"),
        st.builds(
            lambda part, boost: f"({part}){boost}", children, st.sampled_from(["^2", "^0.7"])
        ),
    )


_TREES = st.recursive(_boosted, _combined, max_leaves=5)
#: Whoosh's parser takes ``+word`` and ``-word`` at the top only ("x (y -z)": "cannot parse").
QUERY_TEXTS = st.one_of(
    _TREES,
    _TREES.map(lambda tree: f"NOT {tree}"),
    st.builds(lambda tree, leaf: f"{tree} -{leaf}", _TREES, _boosted),
    st.builds(lambda tree, leaf: f"+{leaf} {tree}", _TREES, _boosted),
)


def _parsed(text: str) -> whoosh_query.Query | None:
    try:
        return parse_query(text)
    except QueryError:  # too many fuzzy or wildcard words: the service refuses it too
        return None


def _whoosh_hits(searcher, parsed, **options) -> list | None:
    """Whoosh's hits for ``parsed``, every one, best first (or in ``sortedby`` order); None
    when Whoosh's matchers fail (whoosh3 3.54 raises IndexError on some nested NOTs)."""
    try:
        return list(searcher.search(parsed, limit=None, **options))
    except IndexError:
        COMPARED["Whoosh's searcher raised an error"] += 1
        return None


def _set_algebra(searcher, q: whoosh_query.Query) -> set[int]:
    """The live documents ``q`` matches, by set operations over what Whoosh matches for its
    leaves (words, phrases, wildcards, ranges): the judge of document sets where Whoosh's
    searcher is wrong (README, "The query fast paths": whoosh3 3.54 on segments with deletions)."""
    reader = searcher.reader()
    if isinstance(q, whoosh_query.Not):
        return set(reader.all_doc_ids()) - _set_algebra(searcher, q.query)
    if isinstance(q, whoosh_query.AndNot | whoosh_query.AndMaybe | whoosh_query.Require):
        a, b = _set_algebra(searcher, q.a), _set_algebra(searcher, q.b)
        return {whoosh_query.AndNot: a - b, whoosh_query.AndMaybe: a}.get(type(q), a & b)
    if (type(q) is whoosh_query.And or type(q) is whoosh_query.Or) and q.subqueries:
        parts = [_set_algebra(searcher, sub) for sub in q.subqueries]
        return set.intersection(*parts) if type(q) is whoosh_query.And else set.union(*parts)
    return {doc for doc in searcher.docs_for_query(q) if not reader.is_deleted(doc)}


@dataclass(frozen=True)
class Reference:
    """Whoosh's answer to one query text, worked out once for every check of it (a search
    with every hit is most of a generated example's time)."""

    text: str
    parsed: whoosh_query.Query
    #: Whoosh's searcher's documents with their scores, best first (none if it failed).
    theirs: dict[int, float]
    #: The live documents the query matches, by the set algebra.
    documents: set[int]
    #: Whether Whoosh's searcher found exactly those (else its scores and pages are no judge).
    right: bool


def _reference(searcher, text: str) -> Reference | None:
    """Whoosh's answer to ``text``; None if the service refuses the query."""
    try:
        parsed = parse_query(text)
    except QueryError:  # too many fuzzy or wildcard words: the service refuses it too
        return None
    assert parsed is not None  # no generated text is a bare *
    hits = _whoosh_hits(searcher, parsed)
    theirs = {hit.docnum: hit.score for hit in hits or []}
    documents = _set_algebra(searcher, parsed)
    right = hits is not None and set(theirs) == documents
    if not right:
        COMPARED["Whoosh's searcher found wrong documents"] += 1
    return Reference(text, parsed, theirs, documents, right)


def _check_matches(snapshot: IndexSnapshot, reference: Reference | None) -> None:
    if reference is None:
        return
    text, parsed, theirs = reference.text, reference.parsed, reference.theirs
    unscored, matches = snapshot.match(parsed, False), snapshot.match(parsed, True)
    mine = np.flatnonzero(matches.mask)
    for each in (unscored, matches):
        found = np.flatnonzero(each.mask).tolist()
        assert found == sorted(reference.documents), f"documents of {text!r} ({parsed!r})"
    COMPARED["documents"] += 1
    if matches.scores is None:
        COMPARED["ranked by Whoosh"] += 1
        return
    if not reference.right:
        return
    expected = np.array([theirs[doc] for doc in mine.tolist()])
    assert np.allclose(matches.scores[mine], expected, rtol=RELATIVE, atol=0), (
        f"scores of {text!r} ({parsed!r})"
    )
    COMPARED["scores"] += 1


def _check_text(snapshot: IndexSnapshot, text: str) -> None:
    _check_matches(snapshot, _reference(snapshot.searcher, text))


def _sortedby(sort: Sort) -> sorting.MultiFacet:
    """Whoosh's facets for a sort of the service: the key, then newest, then path."""
    by_path = sorting.FieldFacet("path")
    if sort is Sort.OLDEST:
        return sorting.MultiFacet([sorting.FieldFacet("date"), by_path])
    newest = sorting.FieldFacet("date", reverse=True)
    if sort is Sort.QUALITY:
        return sorting.MultiFacet([sorting.FieldFacet("quality", reverse=True), newest, by_path])
    return sorting.MultiFacet([newest, by_path])


def _check_pages(service: SearchService, reference: Reference | None, page: int) -> None:
    searcher = service.snapshot().searcher
    if reference is None or not reference.right:  # refused, or Whoosh's pages would be wrong
        return
    text, parsed, theirs = reference.text, reference.parsed, reference.theirs
    paths = [path.decode() for path in searcher.reader().column_reader("path")]
    start, end = (page - 1) * PER_PAGE, page * PER_PAGE
    for sort in Sort:
        request = SearchRequest(text=text, sort=sort, page=page, per_page=PER_PAGE, facets=False)
        result = service.search(request)
        if not theirs:  # the service then retries a corrected or fuzzy query
            assert result.total == 0 or result.retry is not None
            continue
        assert result.total == len(theirs), f"total of {text!r} sorted by {sort}"
        found = [(hit.article.path, hit.score) for hit in result.hits]
        if sort is Sort.RELEVANCE:  # Whoosh's hits, best first
            best_first = list(theirs.items())[start:end]
            expected = [(paths[docnum], score) for docnum, score in best_first]
            _assert_same_ranking(found, expected, f"{text!r} by relevance, page {page}")
        elif sort is Sort.BEST:  # Whoosh's scores times the snapshot's freshness and quality
            snapshot = service.snapshot()
            boosts = snapshot.freshness_factors(request.half_life_days) * snapshot.quality_factors
            blended = [(score * boosts[docnum], docnum) for docnum, score in theirs.items()]
            ranked = sorted(blended, key=lambda item: (-item[0], item[1]))[start:end]
            expected = [(paths[docnum], score) for score, docnum in ranked]
            _assert_same_ranking(found, expected, f"{text!r} by best, page {page}")
        else:
            hits = _whoosh_hits(searcher, parsed, sortedby=_sortedby(sort))
            if hits is None:
                continue
            in_order = [paths[hit.docnum] for hit in hits[start:end]]
            assert [path for path, _ in found] == in_order, f"{text!r} sorted by {sort}"
    COMPARED["sorted pages"] += 1


def _assert_same_ranking(found: list, expected: list, what: str) -> None:
    """The same documents in the same order with the same scores; documents whose scores are
    equal within :data:`RELATIVE` may trade places (sums added in another order)."""
    assert len(found) == len(expected), what
    assert np.allclose([s for _, s in found], [s for _, s in expected], rtol=RELATIVE, atol=0), what
    groups: list[list[int]] = []
    for i, (_, score) in enumerate(expected):
        if groups and np.isclose(score, expected[groups[-1][0]][1], rtol=RELATIVE, atol=0):
            groups[-1].append(i)
        else:
            groups.append([i])
    for number, group in enumerate(groups):
        if number == len(groups) - 1 and len(groups) > 1:
            break  # a tie cut by the page's end may keep other documents of equal score
        assert {found[i][0] for i in group} == {expected[i][0] for i in group}, what


#: Derandomized (the same queries every run); no shrinking: it takes minutes on this index.
_COMMON = settings(
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)


@settings(_COMMON, max_examples=EXAMPLES)
@given(text=QUERY_TEXTS)
def test_generated_queries_match_and_score_as_whoosh(service, text: str):
    _check_text(service.snapshot(), text)


@settings(_COMMON, max_examples=EXAMPLES // 2)
@given(text=QUERY_TEXTS, page=st.sampled_from([1, 1, 3]))
def test_generated_queries_give_whooshs_sorted_pages(service, text: str, page: int):
    _check_pages(service, _reference(service.snapshot().searcher, text), page)


@settings(_COMMON, max_examples=EXAMPLES)
@given(text=QUERY_TEXTS, seed=st.integers(0, 2**16))
def test_generated_queries_scored_at_some_documents_score_as_at_every_one(
    service, text: str, seed: int
):
    """A query evaluated at some documents (a search's matches: its scores then) gives the
    masks and scores of every document's evaluation there, to the last bit, whatever its
    nodes: phrases, NOT, wildcards, fuzzy words and ranges too."""
    parsed = _parsed(text)
    if parsed is None:
        return
    matcher = service.snapshot().matcher
    mask, scores = matcher._evaluate(parsed, scored=True)
    rng = np.random.default_rng(seed)
    matched = np.flatnonzero(mask)
    some = np.flatnonzero(rng.random(matcher.size) < 0.05)
    for docs in (matched, some, np.union1d(matched[::3], some), matched[:0]):
        mask_at, scores_at = matcher._evaluate(parsed, scored=True, at=docs)
        assert mask_at.tolist() == mask[docs].tolist(), text
        if scores is None:
            assert scores_at is None, text
        else:
            assert scores_at is not None and scores_at.tolist() == scores[docs].tolist(), text
        assert matcher._evaluate(parsed, scored=False, at=docs)[0].tolist() == mask[docs].tolist()


@pytest.mark.slow
@settings(_COMMON, max_examples=SLOW_EXAMPLES)
@given(text=QUERY_TEXTS, page=st.sampled_from([1, 2, 5]))
def test_many_generated_queries_equal_whooshs_answers(service, text: str, page: int):
    snapshot = service.snapshot()
    reference = _reference(snapshot.searcher, text)
    _check_matches(snapshot, reference)
    _check_pages(service, reference, page)


# Posting lists kept in their term info -------------------------------------------------------


def _inlined(snapshot: IndexSnapshot, fieldname: str) -> list[tuple[bytes, int]]:
    """(word, a document having it) of each word of ``fieldname`` whose posting list some
    segment keeps in the word's term info (shorter than ``INLINE_LIMIT``)."""
    found = {}
    for leaf, base in snapshot._leaves:
        assert isinstance(leaf, SegmentReader)
        for (name, word), info in leaf._terms.items():
            if name == fieldname and info.is_inlined():
                found[word] = base + info.inlined_postings()[0][0]
    return sorted(found.items())


def _written(record: dict, fieldname: str, word: bytes) -> list[str]:
    """The words of a record's ``fieldname`` (title or excerpt) as written, from the one
    indexed as ``word`` on: the words the index kept (no stop words)."""
    text = record[fieldname]
    chain = _plain_chain(ANALYZER)
    assert chain is not None
    kept = []
    for match in chain[0].finditer(text):
        term, stopped = analysed(chain, match.group(0))
        if not stopped:
            kept.append((match.group(0), term))
    start = [term.encode() for _, term in kept].index(word)
    return [written for written, _ in kept[start:]]


def test_words_of_inlined_posting_lists_are_found_as_whoosh_finds_them(service):
    snapshot = service.snapshot()
    assert whoosh_internals.INLINE_LIMIT > 1 and snapshot.matcher.fast
    rng = random.Random(12)
    checked = 0
    for fieldname in ("title", "excerpt"):
        words = _inlined(snapshot, fieldname)
        assert len(words) >= 3, fieldname  # the index has such words to check
        for word, docnum in rng.sample(words, 3):
            record = snapshot.article(docnum).to_dict()
            written = _written(record, fieldname, word)
            phrase = " ".join(written[:2])
            for text in (
                f"{fieldname}:{written[0]}",
                written[0],
                f'{fieldname}:"{phrase}"',
                f'"{phrase}"',
                f"{written[0]}~1",
                f"{fieldname}:{written[0][:-1].lower()}*",
            ):
                _check_text(snapshot, text)
                checked += 1
            result = service.search(SearchRequest(text=f'{fieldname}:"{phrase}"', per_page=100))
            hit = next(hit for hit in result.hits if hit.article.path == record["path"])
            marked = hit.marked_title if fieldname == "title" else hit.marked_excerpt
            assert Mark(written[0], 0) in marked
            typo = written[0].lower() + "q"
            with snapshot.reading:
                theirs = snapshot.searcher.reader().corrector("title").suggest(typo, 1, 2, 1)
                mine = querylang.correct(typo, snapshot.searcher, snapshot.title_words[0])
            assert (mine.text if mine else None) == (theirs[0] if theirs else None), typo
    assert checked == 36


# The fast paths are taken; the fallback gives the same answers --------------------------------

#: One query of each shape the arrays answer by themselves, scores included.
FAST_SHAPES = [
    "microsoft",
    "title:quantum^2",
    '"chip production"',
    'body:"cloud regions"^1.5',
    "microsoft quantum",
    "google OR privacy",
    "microsoft ANDNOT google",
    "microsoft ANDMAYBE privacy",
    "NOT microsoft",
    "(google OR privacy) -microsoft",
    "c*",
    "body:reg*",
    "chi?",
    "regulaton~",
    "title:[a TO c]",
]


def test_a_terms_postings_over_segments_are_whooshs_own_matchers(service):
    """A term's postings gathered over every segment (short lists in their term's entry,
    one block, many blocks; deleted documents included) are what Whoosh's own matcher of
    each segment reads, posting by posting, with their values."""
    snapshot = service.snapshot()
    matcher = snapshot.matcher
    read = 0
    for fieldname in ("title", "body", "topic", "provider"):
        words = sorted({word for leaf, _ in snapshot._leaves for word in leaf.lexicon(fieldname)})
        for word in [*words[:: max(1, len(words) // 60)], b"nosuchword"]:
            expected: tuple[list[int], list[float], list] = ([], [], [])
            for leaf, base in snapshot._leaves:
                if (fieldname, word) not in leaf:
                    continue
                format_ = leaf.schema[fieldname].format
                theirs = leaf._terms.matcher(fieldname, word, format_, scorer=None)
                while theirs.is_active():
                    expected[0].append(base + theirs.id())
                    expected[1].append(theirs.weight())
                    expected[2].append(theirs.value())
                    theirs.next()
            docs, weights, values = matcher._read_postings(fieldname, word, values=True)
            assert (docs.tolist(), weights.tolist(), list(values)) == expected, (fieldname, word)
            bare_docs, bare_weights, none = matcher._read_postings(fieldname, word, values=False)
            assert (bare_docs.tolist(), bare_weights.tolist(), none) == (*expected[:2], [])
            read += len(docs)
    assert read > 50_000


def test_term_entries_are_whooshs_term_infos_and_counts(service):
    """A term's entries looked up in each segment's term index are the term infos Whoosh's
    reader finds (None where a segment lacks the term), and the count read from them is the
    reader's document frequency; a field not indexed is left to Whoosh."""
    snapshot = service.snapshot()
    leaves = [leaf for leaf, _ in snapshot._leaves]
    reader = snapshot.searcher.reader()
    indexes = whoosh_internals.term_indexes(leaves, snapshot.searcher.schema)
    assert indexes is not None
    looked_up = 0
    for fieldname in ("title", "body", "topic", "provider"):
        words = sorted({word for leaf in leaves for word in leaf.lexicon(fieldname)})
        for word in [*words[:: max(1, len(words) // 200)], b"nosuchword", b""]:
            entries = indexes.entries(fieldname, word)
            assert entries is not None
            expected = []
            for leaf in leaves:
                try:
                    expected.append(vars(leaf.term_info(fieldname, word)))
                except TermNotFound:
                    expected.append(None)
            infos = [entry and vars(entry[0].info(entry[1])) for entry in entries]
            assert infos == expected, (fieldname, word)
            count = whoosh_internals.entries_doc_frequency(entries)
            assert count == reader.doc_frequency(fieldname, word), (fieldname, word)
            looked_up += sum(entry is not None for entry in entries)
    assert looked_up > 500
    assert indexes.entries("stored_body", b"chip") is None
    assert indexes.entries("nosuchfield", b"chip") is None


def test_corrections_from_the_matchers_counts_are_the_readers(service):
    """Did-you-mean told which words are known by the matcher's counts (those its search
    charged, looked up in the term entries) corrects as with the reader's own counts."""
    snapshot = service.snapshot()
    title_words = snapshot.title_words[0]
    typed = [w for w in title_words[:: max(1, len(title_words) // 40)] if w.isalpha()][:30]
    texts = [*typed, *(w + "q" for w in typed), *(w[:-1] for w in typed if len(w) > 3)]
    corrected = 0
    for text in [*texts, "microsft cloud", "qqqzz", "title:microsft"]:
        theirs = querylang.correct(text, snapshot.searcher, title_words)
        mine = querylang.correct(text, snapshot.searcher, title_words, snapshot.matcher.documents)
        assert mine == theirs, text
        corrected += theirs is not None
    assert corrected > 10


@pytest.mark.parametrize("format_", [formats.Positions(), VarintPositions()], ids=repr)
def test_positions_are_decoded_as_whoosh_decodes_them(service, format_):
    """The positions of every posting of the index's title and excerpt words (one-byte deltas:
    the fast path of Whoosh's pickles), and lists with deltas of two and four bytes, encoded
    by each format (Whoosh's pickles with and without their STOP), give the format's own
    decoding, in chunks as the matcher decodes them."""
    snapshot = service.snapshot()
    rng = random.Random(3)
    lists = [
        sorted(rng.sample(range(top), count))
        for top, count in [(200, 1), (200, 3), (70_000, 1), (70_000, 4), (300, 2)] * 20
    ]
    for leaf, _ in snapshot.reader.leaf_readers():
        for fieldname in ("title", "excerpt"):
            for word in list(leaf.lexicon(fieldname))[::50]:
                lists += [
                    found for _, found in leaf.postings(fieldname, word).items_as("positions")
                ]
    values = [format_.encode(found) for found in lists]
    if type(format_) is formats.Positions:
        values = [value[:-1] if rng.random() < 0.5 else value for value in values]
    rng.shuffle(values)
    assert len(values) > 1000
    for chunk in (values, values[:1], values[7:300], []):
        counts, positions = whoosh_internals.decoded_positions(format_, chunk)
        expected = [format_.decode_positions(value) for value in chunk]
        assert counts.tolist() == [len(found) for found in expected]
        assert positions.tolist() == [position for found in expected for position in found]


def test_fast_shapes_are_matched_and_scored_on_the_arrays(service):
    snapshot = service.snapshot()
    assert snapshot.matcher.fast
    before = snapshot.matcher.handed_to_whoosh
    for text in FAST_SHAPES:
        _check_text(snapshot, text)
        assert snapshot.match(parse_query(text), scored=True).scores is not None, text
    assert snapshot.matcher.handed_to_whoosh == before


def test_wildcards_sum_their_words_scores_in_segments_above_the_union_threshold(service):
    snapshot = service.snapshot()
    big_leaf, _ = snapshot._leaves[0]
    assert big_leaf.doc_count_all() > whoosh_internals.WHOOSH_UNION_ABOVE
    parsed = parse_query("body:co*")
    scores = snapshot.match(parsed, scored=True).scores
    theirs = {hit.docnum: hit.score for hit in snapshot.searcher.search(parsed, limit=None)}
    big = [doc for doc in theirs if doc < big_leaf.doc_count_all()]
    small = [doc for doc in theirs if doc >= big_leaf.doc_count_all()]
    assert big and small
    assert np.allclose(scores[big], [theirs[doc] for doc in big], rtol=RELATIVE, atol=0)
    assert len(set(scores[big].tolist())) > 10  # summed BM25F, not a constant
    assert set(scores[small].tolist()) == {1.0} == {theirs[doc] for doc in small}


def test_a_hits_record_is_its_segments_in_every_segment(service):
    """The snapshot finds a document's record and body in its own segment (deleted ones
    too)."""
    snapshot = service.snapshot()
    reader = snapshot.searcher.reader()
    assert len(reader.leaf_readers()) > 1
    column = records_of(reader)  # each record with its path, from the path column
    bodies = reader.column_reader("stored_body", translate=False)
    for docnum in range(0, reader.doc_count_all(), 7):
        whole = from_record(column[docnum], bodies[docnum].decode())
        assert snapshot.article(docnum) == whole
        assert snapshot.shown(docnum) == snapshot.article(docnum).without_body()


def test_shown_articles_are_kept_and_are_the_stored_ones(service):
    snapshot = service.snapshot()
    for docnum in range(0, snapshot.size, 97):
        shown = snapshot.shown(docnum)
        assert shown == snapshot.article(docnum).without_body()
        assert snapshot.shown(docnum) is shown  # made once


def test_word_frequencies_are_whooshs_read_from_the_term_index(segmented_store):
    index = segmented_store.open_index()
    try:
        with index.searcher() as searcher:
            for leaf, _ in searcher.reader().leaf_readers():
                for fieldname in ("spell_title", "title", "body"):
                    assert whoosh_internals._word_frequencies(leaf, fieldname) is not None
                    words, frequencies = whoosh_internals.word_frequencies(leaf, fieldname)
                    public = leaf.iter_field(fieldname)
                    expected = [(word.decode(), info.doc_frequency()) for word, info in public]
                    assert len(expected) > 100
                    assert list(zip(words, frequencies, strict=True)) == expected
    finally:
        index.close()


def test_a_segment_whose_words_were_read_is_unmapped_when_its_searcher_closes(
    sample_store, monkeypatch
):
    """The sorted words read from a segment's term index view its mapped bytes: closing the
    segment forgets them, so its mapping closes, with no garbage collection tried first."""
    collections: list[object] = []
    monkeypatch.setattr(gc, "collect", lambda *args: collections.append(args) or 0)
    index = sample_store.open_index()
    try:
        with index.searcher() as searcher:
            mappings = []
            for leaf, _ in searcher.reader().leaf_readers():
                assert whoosh_internals._word_frequencies(leaf, "spell_title") is not None
                mappings.append(leaf.storage().a._source)
    finally:
        index.close()
    assert mappings and all(mapping.closed for mapping in mappings)
    assert collections == []


def _near_words(rng: random.Random, vocabulary: list[str]) -> list[str]:
    """Words of ``vocabulary``, each also with a letter replaced, added and left out."""
    found = []
    for word in rng.sample(vocabulary, min(25, len(vocabulary))):
        at = rng.randrange(len(word))
        found += [word, word[:at] + "q" + word[at + 1 :], word[:at] + "e" + word[at:]]
        found.append(word[:at] + word[at + 1 :])
    return [word for word in found if word]


@pytest.mark.parametrize(("edits", "fixed"), [(1, 1), (2, 1), (1, 0), (1, 2)])
def test_fuzzy_words_found_without_a_walk_are_the_walks(segmented_store, edits, fixed):
    rng = random.Random(f"{edits}-{fixed}")
    index = segmented_store.open_index()
    try:
        with index.searcher() as searcher:
            for leaf, _ in searcher.reader().leaf_readers():
                for fieldname in ("title", "body", "provider"):
                    spelling = leaf.schema[fieldname].spelling_fieldname(fieldname)
                    vocabulary = whoosh_internals.word_frequencies(leaf, spelling)[0]
                    for word in [*_near_words(rng, vocabulary), "a", "zz", "café"]:
                        if fixed > len(word):  # Whoosh's automaton cannot be made
                            continue
                        fuzzy = whoosh_query.FuzzyTerm(fieldname, word, edits, prefixlength=fixed)
                        walked = whoosh_internals.fuzzy_words(leaf, fuzzy, lambda: None)
                        assert walked is not None
                        near = whoosh_internals.fuzzy_words_near(leaf, fuzzy)
                        assert near == list(walked), (fieldname, word)
    finally:
        index.close()


def test_fuzzy_words_of_other_scripts_found_without_a_walk_are_the_walks(tmp_path):
    words = [
        "\u03b1\u03b2\u03b3\u03b4",
        "\u0434\u043e\u043c",
        "\u6771\u4eac\u90fd",
        "caf\u0153",
        "ab\u03b3d",
    ]
    store = IndexStore(tmp_path / "index")
    for number, word in enumerate(words):  # one segment each
        front = f'title: "{word} abcd {word}x"\npublishedDateTime: 2024-01-0{number + 1}T00:00:00Z'
        write_article(tmp_path / "content", f"{number}.md", front)
        indexer.sync(store, tmp_path / "content")
    typed = [*words, "abcd", "abcδ", "αβγ", "αβγδε", "東京"]
    index = store.open_index()
    try:
        with index.searcher() as searcher:
            leaves = [leaf for leaf, _ in searcher.reader().leaf_readers()]
            assert len(leaves) > 1
            found: list[str] = []
            for leaf in leaves:
                for word in typed:
                    fuzzy = whoosh_query.FuzzyTerm("title", word)
                    walked = whoosh_internals.fuzzy_words(leaf, fuzzy, lambda: None)
                    assert walked is not None
                    near = whoosh_internals.fuzzy_words_near(leaf, fuzzy)
                    assert near == list(walked), word
                    found += near or []
            assert {word for word in found if not word.isascii()} >= {words[0], words[2]}
    finally:
        index.close()


def test_fuzzy_retries_answer_the_same_told_without_walks(service, monkeypatch):
    """A fuzzy retry that finds nothing the filters allow is told so without walking its words'
    lists; every answer is the one of the walks (filters, none, words found nowhere)."""
    snapshot = service.snapshot()
    rng = random.Random(5)
    vocabulary = sorted({word for leaf, _ in snapshot._leaves for word in leaf.lexicon("body")})
    topics, providers = snapshot.facet("topic").values, snapshot.facet("provider").values
    requests = []
    for _ in range(40):  # a field's words are not corrected: retried fuzzily
        words = [word.decode() for word in rng.sample(vocabulary, rng.choice([1, 2]))]
        mangled = " ".join(f"body:{word[:-1]}q" for word in words if len(word) > 3)
        filters = {"topic": (rng.choice(topics),), "provider": (rng.choice(providers),)}
        requests.append(SearchRequest(text=mangled, filters=filters))
        requests.append(SearchRequest(text=mangled, filters={"topic": (rng.choice(topics),)}))
    requests.append(SearchRequest(text=requests[0].text))
    requests.append(SearchRequest(text="zzqqxx"))

    def answers() -> list[tuple]:
        found = []
        for request in requests:
            result = service.search(request)
            hits = [hit.article.path for hit in result.hits]
            found.append((result.total, result.retry, result.ran_query, hits, result.facets))
        return found

    walks = 0
    walk = whoosh_internals.fuzzy_words

    def walking(*args):
        nonlocal walks
        walks += 1
        return walk(*args)

    monkeypatch.setattr(whoosh_internals, "fuzzy_words", walking)
    told = answers()
    walked_when_told = walks
    monkeypatch.setattr(QueryMatcher, "finds_none", lambda self, parsed, within: False)
    assert answers() == told
    assert sum(retry == "fuzzy" for _, retry, *_ in told) >= 3  # some are found
    assert 0 < walked_when_told < walks  # those found walked; the others only with no check


#: Queries whose answers Whoosh's own searcher gets right (no NOT on segments with deletions).
FALLBACK_QUERIES = [
    "microsoft",
    '"chip production"',
    "google OR privacy",
    "co*",
    "regulaton~",
    "microsoft ANDMAYBE privacy",
    '"machine learning"^2',
    "quality:[50 TO 90]",
    "microsoft OR date:2023",
    "privacy -date:[2020 TO 2021]",
]


@pytest.fixture
def unknown_layout(request, monkeypatch, tmp_path):
    """Whoosh's layout fails the check, by the way the parameter names (a verdict of its own,
    not remembered beyond the test); the check is made again afterwards."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if request.param == "version":
        monkeypatch.setattr(whoosh_internals, "KNOWN_VERSIONS", frozenset({(2, 7)}))
    else:  # a posting value encoding that changed: positions read from the wrong offset
        monkeypatch.setattr(whoosh_internals, "_COUNT_BYTES", 2)
    # Not the Whoosh whose layout the indexer checked (and noted with the arrays it wrote).
    monkeypatch.setattr(whoosh_internals, "installation", lambda: "whoosh3 changed in place")
    whoosh_internals.layout_known.cache_clear()
    yield request.param
    monkeypatch.undo()
    whoosh_internals.layout_known.cache_clear()


def _answers(service: SearchService) -> list:
    """Totals, pages (paths and scores) and facets of the fallback queries, every sort."""
    answers = []
    for text in FALLBACK_QUERIES:
        for sort in Sort:
            request = SearchRequest(text=text, sort=sort, per_page=PER_PAGE, page=2)
            result = service.search(request)
            hits = [(hit.article.path, hit.score) for hit in result.hits]
            answers.append((text, sort, result.total, hits, result.facets))
    return answers


@pytest.fixture(scope="session")
def fast_answers(service) -> list:
    """:func:`_answers` with the fast paths (session fixtures are made before the layout is
    made unknown)."""
    assert service.snapshot().matcher.fast
    return _answers(service)


@pytest.mark.parametrize("unknown_layout", ["version", "self-test"], indirect=True)
def test_an_unknown_layout_hands_every_query_to_whoosh_with_one_warning(
    segmented_store, fast_answers, unknown_layout
):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        slow_service = SearchService(segmented_store, results_cached=0)
        try:
            snapshot = slow_service.snapshot()
            slow = _answers(slow_service)
            microsoft = parse_query("microsoft")
            assert microsoft is not None
            IndexSnapshot(snapshot.searcher).match(microsoft, scored=True)
        finally:
            slow_service.close()
    layout = [w for w in caught if issubclass(w.category, whoosh_internals.WhooshLayoutWarning)]
    assert len(layout) == 1
    reason = "not a version whose layout" if unknown_layout == "version" else "self-test"
    assert reason in str(layout[0].message)
    assert not snapshot.matcher.fast
    assert snapshot.matcher.handed_to_whoosh >= len(FALLBACK_QUERIES) * len(Sort)  # and retries
    for (text, sort, total, hits, facets), (_, _, slow_total, slow_hits, slow_facets) in zip(
        fast_answers, slow, strict=True
    ):
        assert slow_total == total and slow_facets == facets, f"{text!r} sorted by {sort}"
        if sort in (Sort.RELEVANCE, Sort.BEST):
            _assert_same_ranking(slow_hits, hits, f"{text!r} by {sort}")
        else:
            assert slow_hits == hits, f"{text!r} sorted by {sort}"
