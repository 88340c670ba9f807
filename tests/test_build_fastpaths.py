"""The fast build paths index exactly what the plain ones do.

A big build runs in worker processes and writes a segment whenever a writer's buffer is full
(searchidx/indexer.py); text fields are analysed in one pass (``schema.Text``) and the stored
record is written out by hand (``schema._record``). Each is checked against the plain path.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import random
import shutil
from array import array
from pathlib import Path
from typing import Any

import pytest
from whoosh import fields
from whoosh.analysis import (
    CharsetFilter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StemmingAnalyzer,
    StopFilter,
)
from whoosh.codec.whoosh3 import W3Codec
from whoosh.reading import SegmentReader

from searchidx import indexer, records, term_index, whoosh_internals, workers
from searchidx.articles import Article
from searchidx.content import FileState, scan_content
from searchidx.errors import IndexWriteError
from searchidx.parsing import read_article
from searchidx.positions import VarintPositions
from searchidx.records import JSON_ONLY, live_bodies, live_records
from searchidx.request import SearchRequest, Sort
from searchidx.schema import (
    ANALYZER,
    FOLDED,
    STORED_BODY_CHARS,
    WORD_PATTERN,
    Text,
    _record,
    display_record,
    encoded_record,
    from_record,
    stored_record,
    to_document,
)
from searchidx.service import SearchService
from searchidx.store import IndexStore
from searchidx.whoosh_internals import (
    SegmentBuilder,
    _BufferedSegment,
    _WhooshSegment,
    unlocked_segment_writer,
)
from searchidx.write_options import WriteOptions
from tests.conftest import real_shaped_articles, write_article

#: A file's state for documents written without a file (packed, its digest is 32 bytes).
A_STATE = FileState(1, 2, "3" * 64)

REQUESTS = [
    SearchRequest(),
    SearchRequest(text="microsoft", per_page=100),  # relevance: every hit, so ties are whole
    SearchRequest(text='"chip production" OR analysts', sort=Sort.QUALITY),
    SearchRequest(text="regul*", filters={"topic": ("AI",)}, per_page=100),
    SearchRequest(filters={"category": ("blog",)}, sort=Sort.OLDEST, page=2),
]


def answers(store: IndexStore) -> list:
    """What the service answers to REQUESTS: totals, pages and facet counts. Equal scores are
    ranked by docnum, which depends on the build's layout: ties are compared by path."""
    service = SearchService(store)
    try:
        found = []
        for request in REQUESTS:
            result = service.search(request)
            facets = {f.name: [(v.value, v.count) for v in f.values] for f in result.facets}
            page: list[Any] = sorted((-(hit.score or 0), hit.article.path) for hit in result.hits)
            if request.effective_sort not in (Sort.RELEVANCE, Sort.BEST):
                page = [hit.article.path for hit in result.hits]
            found.append((result.total, page, facets))
        return found
    finally:
        service.close()


def stored(store: IndexStore) -> dict[str, tuple[str, str]]:
    """Each document's display record and stored body, by path."""
    index = store.open_index()
    try:
        with index.reader() as reader:
            records = [record.decode() for record in live_records(reader)]
            documents = zip(records, live_bodies(reader), strict=True)
            return {from_record(record).path: (record, body) for record, body in documents}
    finally:
        index.close()


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    """The sample plus one broken file, which every build must skip the same way."""
    folder = tmp_path_factory.mktemp("collection") / "content"
    shutil.copytree(sample_dir, folder)
    write_article(folder, "broken.md", "title: [unclosed")
    return folder


@pytest.fixture(scope="module")
def plain(collection: Path, tmp_path_factory: pytest.TempPathFactory) -> IndexStore:
    store = IndexStore(tmp_path_factory.mktemp("plain"))
    indexer.rebuild(store, collection)
    return store


def test_a_build_in_worker_processes_indexes_the_same(
    collection: Path, plain: IndexStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(indexer, "BUILD_PROCESSES", 2)
    monkeypatch.setattr(indexer, "PARALLEL_FILES_PER_PROCESS", 50)
    monkeypatch.setattr(workers, "_CHUNK_FILES", 40)
    store = IndexStore(tmp_path / "parallel")
    seen: list[int] = []

    report = indexer.rebuild(
        store, collection, WriteOptions(progress=lambda done, total: seen.append(done))
    )

    expected = indexer.rebuild(IndexStore(tmp_path / "again"), collection)
    assert (report.added, report.documents) == (expected.added, expected.documents)
    assert report.skipped == expected.skipped and len(report.skipped) == 1
    assert seen[-1] == len(scan_content(collection)) and seen == sorted(seen)
    assert len(store.open_index()._segments()) >= 2
    assert stored(store) == stored(plain)
    assert answers(store) == answers(plain)


def test_a_sync_in_worker_processes_applies_the_same_changes(
    collection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = tmp_path / "content"
    shutil.copytree(collection, folder)
    stores = [IndexStore(tmp_path / "here"), IndexStore(tmp_path / "workers")]
    for store in stores:
        indexer.rebuild(store, folder)
    paths = sorted(scan_content(folder))
    for path in paths[:40]:  # edited
        text = (folder / path).read_text()
        (folder / path).write_text(text.replace("title:", "title: Edited", 1))
    for path in paths[40:50]:  # touched, not changed
        os.utime(folder / path, ns=(1, 1))
    for path in paths[50:60]:
        (folder / path).unlink()
    write_article(folder, paths[60], "title: [broken again")  # its last good version stays
    for number in range(30):
        front_matter = f"title: New {number}\npublishedDateTime: 2024-01-02"
        write_article(folder, f"new/{number}.md", front_matter)
    write_article(folder, "new/broken.md", "title: [unclosed")
    spawned = []
    original = workers.BuildWorkers.start
    monkeypatch.setattr(
        workers.BuildWorkers,
        "start",
        lambda self, processes: spawned.append(processes) or original(self, processes),
    )

    here = indexer.sync(stores[0], folder)
    monkeypatch.setattr(indexer, "BUILD_PROCESSES", 2)
    monkeypatch.setattr(indexer, "SYNC_FILES_PER_PROCESS", 10)
    monkeypatch.setattr(workers, "_CHUNK_FILES", 7)
    in_workers = indexer.sync(stores[1], folder)

    assert spawned == [1]  # the second sync: a worker, and this process once it listed
    counts = [(r.added, r.updated, r.removed, r.unchanged, r.skipped) for r in (here, in_workers)]
    assert counts[0] == counts[1]
    assert counts[0][:3] == (30, 40, 10) and len(counts[0][4]) == 3  # collection's broken too
    assert stored(stores[1]) == stored(stores[0])
    assert answers(stores[1]) == answers(stores[0])
    assert not list(stores[1].live_dir().glob("*.tmp"))  # the workers' temporary folder went


def test_segment_builders_of_one_index_finish_in_any_order(content: Path, tmp_path: Path):
    # Build workers write into one index folder and share Whoosh's temporary folder there:
    # one finishing its segment must not take away the buffers of another still writing.
    index = IndexStore(tmp_path / "ix").create_generation()[1]
    files = sorted(scan_content(content).items())[:2]
    articles = [read_article(content, path) for path, _ in files]
    first, second = (SegmentBuilder(index, indexer.WRITER_LIMIT_MB) for _ in range(2))
    first.add(to_document(articles[0], files[0][1]))
    second.add(to_document(articles[1], files[1][1]))

    segments = second.finish() + first.finish()
    indexer._publish(index, segments)

    with index.reader() as reader:
        paths = [from_record(record).path for record in live_records(reader)]
    assert sorted(paths) == [path for path, _ in files]


def test_a_cancelled_segment_builder_leaves_no_files_behind(tmp_path: Path):
    # Whoosh's cancel writes out the segment it was buffering (its columns, terms and
    # postings) and leaves it, and the segments written before it stay too, for the next
    # commit to find unused: a failed sync left them in the live index till then.
    index = IndexStore(tmp_path / "ix").create_generation()[1]
    before = set(index.storage.list())
    documents = [to_document(article, A_STATE) for article in real_shaped_articles()[:3]]
    builder = SegmentBuilder(index, 0)  # a buffer full at each document: a segment each
    builder.add(documents[0])
    builder.add(documents[1])
    builder.limit = 1 << 30  # the last one buffered
    builder.add(documents[2])
    assert len(builder.segments) == 2 and builder.segment is not None

    builder.cancel()

    assert set(index.storage.list()) == before


def test_a_sync_that_fails_while_indexing_leaves_the_index_folder_as_it_was(
    content: Path, store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    indexer.sync(store, content)
    files = set(os.listdir(store.live_dir()))
    for number in range(3):
        write_article(
            content, f"new/{number}.md", f"title: New {number}\npublishedDateTime: 2024-05-01"
        )
    loaded: list[str] = []

    def load_two(root: Path, path: str) -> workers.Loaded:
        if len(loaded) == 2:
            raise OSError("the disk went away")
        loaded.append(path)
        return load(root, path)

    load = workers.load
    monkeypatch.setattr(workers, "load", load_two)
    with pytest.raises(IndexWriteError, match="the disk went away"):
        indexer.sync(store)
    assert set(os.listdir(store.live_dir())) == files


def test_a_build_larger_than_the_buffer_writes_several_segments(
    collection: Path, plain: IndexStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(indexer, "WRITER_LIMIT_MB", 0.25)  # several segments of the sample
    store = IndexStore(tmp_path / "segments")

    indexer.rebuild(store, collection)

    assert len(store.open_index()._segments()) > 2
    assert stored(store) == stored(plain)
    assert answers(store) == answers(plain)
    (collection / "broken.md").write_text("---\ntitle: Fixed\npublishedDateTime: 2024-01-01\n---\n")
    try:
        report = indexer.sync(store)  # a sync on top of many segments
        assert (report.added, report.updated) == (1, 0)
    finally:
        write_article(collection, "broken.md", "title: [unclosed")


def test_a_segment_builder_freezes_its_buffer_until_the_segment_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """What the builder froze goes back to the collector when its segment is written, or
    dropped; the segment is the one a builder that never freezes writes."""
    monkeypatch.setattr(whoosh_internals, "_FROZEN_EVERY", 2)
    documents = [to_document(article, A_STATE) for article in real_shaped_articles()]
    assert len(documents) >= 5 and not gc.get_freeze_count()
    builders = [
        SegmentBuilder(IndexStore(tmp_path / name).create_generation()[1], 64)
        for name in ("frozen", "dropped")
    ]
    try:
        for builder in builders:
            for document in documents[:5]:
                builder.add(document)
            assert gc.get_freeze_count() > 0
        builders[1].cancel()
        assert not gc.get_freeze_count()
        for document in documents[5:]:
            builders[0].add(document)
        frozen = builders[0].finish()
        assert not gc.get_freeze_count()
    finally:
        gc.unfreeze()  # a failed check must not leave the test process frozen
    monkeypatch.setattr(whoosh_internals, "_FROZEN_EVERY", 10**9)
    files = segment_files(_BufferedSegment, tmp_path / "never", documents)[0]
    index = builders[0].index
    parts = frozen[0].open_compound_file(index.storage)
    assert {
        name.replace(frozen[0].segment_id(), ""): parts.open_file(name).read()
        for name in parts.list()
    } == files


def segment_files(kind: type[_BufferedSegment | _WhooshSegment], folder: Path, documents: list):
    """The documents written as one segment by ``kind``: what it holds (:func:`held`)."""
    index = IndexStore(folder).create_generation()[1]
    segment = kind(unlocked_segment_writer(index, 64))
    for document in documents:
        segment.add(document)
    return held(index, segment.write())


def held(index: Any, written: Any) -> tuple[dict[str, bytes], dict, int, int, list[str]]:
    """What a written segment holds: each of its files' bytes by name (the segment's random
    id left out), its field lengths, its document count, how many of its terms have their
    postings inlined in the term index, and its documents' paths."""
    parts = written.open_compound_file(index.storage)
    files = {
        name.replace(written.segment_id(), ""): parts.open_file(name).read()
        for name in parts.list()
    }
    reader = SegmentReader(index.storage, index.schema, written)
    inlined = sum(info.is_inlined() for _, info in reader._terms.items())
    paths = list(reader.column_reader("path"))
    reader.close()
    return files, dict(written._fieldlengths), written.doc_count_all(), inlined, paths


def segment_documents(sample_dir: Path) -> list[dict[str, Any]]:
    """The documents of real-shaped and sample articles, and of odd ones."""
    articles = real_shaped_articles()
    articles += [read_article(sample_dir, path) for path in sorted(scan_content(sample_dir))]
    odd = articles[0]
    articles += [  # a title of stop words only, a body of one word, no text at all
        dataclasses.replace(odd, path="stop.md", title="The And Of", quality=None),
        dataclasses.replace(odd, path="one.md", body="word", excerpt="", topics=()),
        dataclasses.replace(odd, path="empty.md", title="-", body="", excerpt=""),
    ]
    return [to_document(article, A_STATE) for article in articles]


def segment_postings(
    kind: type[_BufferedSegment | _WhooshSegment], folder: Path, documents: list[dict[str, Any]]
) -> tuple[int, list[Any]]:
    """The documents written as one segment by ``kind``: the bytes of its term index and
    postings, and every term's postings with their values and positions, as Whoosh's public
    API reads them."""
    index = IndexStore(folder).create_generation()[1]
    segment = kind(unlocked_segment_writer(index, 64))
    for document in documents:
        segment.add(document)
    written = segment.write()
    parts = written.open_compound_file(index.storage)
    size = sum(
        len(parts.open_file(name).read()) for name in parts.list() if name[-4:] in (".trm", ".pst")
    )
    reader = SegmentReader(index.storage, index.schema, written)
    postings = []
    for fieldname, word in reader.all_terms():
        matcher = reader.postings(fieldname, word)
        while matcher.is_active():
            postings.append((fieldname, word, matcher.id(), matcher.weight(), matcher.value()))
            if index.schema[fieldname].format.supports("positions"):
                postings.append(matcher.value_as("positions"))
            matcher.next()
    reader.close()
    return size, postings


def test_facet_columns_keep_a_code_a_document(plain: IndexStore):
    """Every facet of few values in a column of codes, the category and the type (keywords)
    too: Whoosh's keyword made them columns of each document's bytes."""
    with plain.open_index().reader() as reader:
        for leaf, _ in reader.leaf_readers():
            for name in ("category", "type", "provider_name", "published"):
                column = leaf.column_reader(name, translate=False)
                coded = whoosh_internals.ref_codes(column, leaf.doc_count_all())
                assert coded is not None, name
                codes, uniques = coded
                assert [uniques[code] for code in codes] == list(column)


@pytest.mark.parametrize("known", [True, False])  # False: read through Whoosh's reader
def test_column_joined_is_whooshs_column_values_in_one_piece(
    plain: IndexStore, monkeypatch: pytest.MonkeyPatch, known: bool
):
    monkeypatch.setattr(whoosh_internals, "layout_known", lambda: known)
    index = plain.open_index()
    with index.reader() as reader:
        for leaf, _base in reader.leaf_readers():
            for name in ("path", "state", "topics"):
                data, ends = whoosh_internals.column_joined(leaf, name)
                values = list(leaf.column_reader(name, translate=False))

                assert len(values) > 1
                starts = [0, *ends][:-1]
                assert [data[start:end] for start, end in zip(starts, ends, strict=True)] == values
    index.close()


@pytest.mark.parametrize("known", [True, False])  # False: read through Whoosh's reader
def test_column_texts_are_whooshs_column_values_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, known: bool
):
    content = tmp_path / "content"
    for name in ("a.md", "café/naïve.md", "日本/記事.md", "z.md"):
        write_article(content, name, "title: T\npublishedDateTime: 2022-05-01", "Words.")
    store = IndexStore(tmp_path / "index")
    assert indexer.rebuild(store, content).documents == 4
    monkeypatch.setattr(whoosh_internals, "layout_known", lambda: known)
    index = store.open_index()
    with index.reader() as reader:
        for leaf, _base in reader.leaf_readers():
            values = list(leaf.column_reader("path", translate=False))
            assert len(values) == 4
            texts = whoosh_internals.column_texts(leaf, "path")
            assert texts == [value.decode() for value in values]
    index.close()


def test_var_bytes_at_is_whooshs_column_value_of_each_document(plain: IndexStore):
    index = plain.open_index()
    with index.reader() as reader:
        for leaf, _base in reader.leaf_readers():
            for name in ("path", "state"):
                value_at = whoosh_internals.var_bytes_at(leaf, name)
                assert value_at is not None
                values = list(leaf.column_reader(name, translate=False))
                assert [value_at(docnum) for docnum in range(len(values))] == values
    index.close()


def test_the_codec_writes_postings_smaller_and_whoosh_reads_them_the_same(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    documents = segment_documents(sample_dir)
    compact = segment_postings(_BufferedSegment, tmp_path / "compact", documents)
    monkeypatch.setattr(
        whoosh_internals, "codec", lambda: W3Codec(inlinelimit=whoosh_internals.INLINE_LIMIT)
    )
    whooshs = segment_postings(_WhooshSegment, tmp_path / "whoosh", documents)

    assert compact[1] == whooshs[1]
    assert compact[0] < 0.8 * whooshs[0]  # 0.72 (the term index and postings files)


#: Postings a block where a segment is compared with Whoosh's writing: fewer than the
#: sample's common words have, so that their lists are written in several blocks.
SPLIT_BLOCKS = 100


#: Postings inlined: none (Whoosh's default), the index's, and lists up to a whole block.
@pytest.mark.parametrize("inline_limit", [1, whoosh_internals.INLINE_LIMIT, SPLIT_BLOCKS + 1])
def test_a_buffered_segment_is_whooshs_to_the_byte(
    sample_dir: Path, tmp_path: Path, inline_limit: int, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(whoosh_internals, "INLINE_LIMIT", inline_limit)
    monkeypatch.setattr(whoosh_internals, "POSTINGS_PER_BLOCK", SPLIT_BLOCKS)
    documents = segment_documents(sample_dir)

    whooshs = segment_files(_WhooshSegment, tmp_path / "whoosh", documents)
    buffered = segment_files(_BufferedSegment, tmp_path / "buffered", documents)

    assert whooshs[1:] == buffered[1:]
    assert (whooshs[3] > 0) == (inline_limit > 1)
    assert sorted(whooshs[0]) == sorted(buffered[0])
    assert any(name.endswith(".pst") for name in whooshs[0])
    assert whooshs[0][".trm"].startswith(term_index.MAGIC)  # not Whoosh's hash file
    for name, data in whooshs[0].items():
        assert buffered[0][name] == data, name


#: Docnums at each width a pickle gives an int (1, 2, 4 bytes, then beyond: long).
_DOCNUMS = [0, 255, 256, 65535, 65536, 2**31 - 1, 2**31]


def test_block_weights_are_whooshs_minified_with_counts_as_bytes():
    def mini(*weights: float) -> Any:
        return whoosh_internals.mini_weights(array("f", weights))

    assert mini(1.0, 1.0) is None
    assert mini(2.0, 2.0) == 2.0
    assert mini(1.0, 3.0, 255.0) == b"\x01\x03\xff"
    assert mini(1.0, 256.0) == (1.0, 256.0)
    assert mini(1.0, 1.5) == (1.0, 1.5)
    assert mini(1.0, float("inf")) == (1.0, float("inf"))


def texts() -> list[str]:
    rng = random.Random(3)
    alphabet = "abcdeé .-*_\n\tİ1Σ"
    words = ["the", "a", "of", "x", "chip", "production", "is", "in", "regulations", "U.S."]
    found = ["", "a", "the the a of", "İstanbul ÉCOLE straße naïve café 北京", "x*y foo.bar. 3.14"]
    for _ in range(2000):
        found.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))))
        found.append(" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))))
    for article in real_shaped_articles():
        found += [article.title, article.excerpt, article.body]
    return found


#: A chain whose charset map changes lowercase ASCII ("x" -> "ks"): its ASCII words are
#: translated too (the index's map leaves them as they are, and :func:`_unstemmed` skips them).
_ASCII_FOLDING = (
    RegexTokenizer(WORD_PATTERN)
    | LowercaseFilter()
    | CharsetFilter({**FOLDED, ord("x"): "ks"})
    | StopFilter()
    | StemFilter()
)


@pytest.mark.parametrize("phrase", [True, False])
@pytest.mark.parametrize("analyzer", [ANALYZER, StemmingAnalyzer(), _ASCII_FOLDING])
def test_text_fields_index_what_whoosh_text_indexes(phrase: bool, analyzer):
    mine = Text(analyzer=analyzer, phrase=phrase)
    whooshs = fields.TEXT(analyzer=analyzer, phrase=phrase)
    if phrase:  # positions as Text keeps them, encoded by Whoosh's loop
        whooshs.format = VarintPositions()
    for text in texts():
        assert list(mine.index(text)) == list(whooshs.index(text)), text  # order too
        assert list(mine.spellable_words(text)) == list(whooshs.spellable_words(text)), text


def test_the_stored_record_is_the_articles_dict(sample_dir: Path):
    sample = [read_article(sample_dir, path) for path in sorted(scan_content(sample_dir))]
    for article in real_shaped_articles() + sample:
        expected = {**article.to_dict(), "body": article.body[:STORED_BODY_CHARS]}
        assert json.dumps(_record(article)) == json.dumps(expected)


def test_the_encoded_record_is_the_standard_librarys_json(sample_dir: Path):
    """orjson writes what ``json.dumps`` wrote (every character below U+0800 and beyond, in
    text and body); what it refuses (an integer past 64 bits, a lone surrogate) goes through
    ``json.dumps`` as before, marked to be read back by it (orjson reads such an integer as a
    float)."""
    sample = [read_article(sample_dir, path) for path in sorted(scan_content(sample_dir))]
    articles = real_shaped_articles() + sample
    odd = articles[0]
    every_char = "".join(map(chr, range(0x800))) + "\u2028\u2029\ufeff\U0001f600"
    articles += [
        dataclasses.replace(odd, title=every_char, body=every_char * 3, quality=-(2**63)),
        dataclasses.replace(odd, quality=2**64, heat=-(2**70)),
        dataclasses.replace(odd, excerpt="\ud800"),
    ]
    for article in articles:
        standard = json.dumps(_record(article), ensure_ascii=False, separators=(",", ":"))
        if "\ud800" in standard:
            with pytest.raises(UnicodeEncodeError):
                encoded_record(_record(article))
            continue
        written = encoded_record(_record(article))
        assert written.removeprefix(JSON_ONLY) == standard.encode()
        assert written.startswith(JSON_ONLY) == _past_64_bits(article)
        assert stored_record(article) == written.decode()
        assert repr(records.decoded(written)) == repr(json.loads(standard))  # ints stay ints
        kept = records.with_path(display_record(article), article.path)  # path as read
        shown = from_record(kept, "")  # no body, web_url kept once
        assert repr(shown) == repr(Article.from_dict({**json.loads(standard), "body": ""}))


def _past_64_bits(article: Article) -> bool:
    return any(
        isinstance(number, int) and not -(2**63) <= number < 2**64
        for number in (article.quality, article.heat)
    )


def merged_files(folder: Path, documents: list, buffered: bool, monkeypatch: pytest.MonkeyPatch):
    """``documents`` written as three segments, some of each deleted (the first of the
    second: Whoosh then leaves out that segment's spelling words), merged by
    :func:`whoosh_internals.merged_segment`, fast (``buffered``) or through Whoosh's writer:
    what the merged segment holds (:func:`held`)."""
    index = IndexStore(folder).create_generation()[1]
    segments = []
    for part in (documents[:20], documents[20:21], documents[21:]):
        segment = _BufferedSegment(unlocked_segment_writer(index, 64))
        for document in part:
            segment.add(document)
        segments.append(segment.write())
    for segment, deleted in zip(segments, ([3, 7], [0], [0, 5, 6]), strict=True):
        for docnum in deleted:
            segment.delete_document(docnum)
    with monkeypatch.context() as patched:
        if not buffered:
            patched.setattr(_BufferedSegment, "writes", staticmethod(lambda writer: False))
        return held(index, whoosh_internals.merged_segment(index, segments))


@pytest.mark.parametrize("inline_limit", [1, whoosh_internals.INLINE_LIMIT, SPLIT_BLOCKS + 1])
def test_merged_segment_is_whooshs_merge_to_the_byte(
    sample_dir: Path, tmp_path: Path, inline_limit: int, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(whoosh_internals, "INLINE_LIMIT", inline_limit)
    monkeypatch.setattr(whoosh_internals, "POSTINGS_PER_BLOCK", SPLIT_BLOCKS)
    articles = real_shaped_articles()
    articles += [read_article(sample_dir, path) for path in sorted(scan_content(sample_dir))]
    documents = [to_document(article, A_STATE) for article in articles]
    assert len(documents) > 30

    whooshs = merged_files(tmp_path / "whoosh", documents, False, monkeypatch)
    fast = merged_files(tmp_path / "fast", documents, True, monkeypatch)

    assert fast[1:] == whooshs[1:]
    deleted = {documents[n]["path"] for n in (3, 7, 20, 21, 26, 27)}
    assert fast[4] == [d["path"] for d in documents if d["path"] not in deleted]
    assert sorted(fast[0]) == sorted(whooshs[0])
    for name, data in whooshs[0].items():
        assert fast[0][name] == data, name
