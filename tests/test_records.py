"""The display records' and bodies' columns (searchidx.records): what is written is read back,
through Whoosh's writer and merges, it is smaller than Whoosh's stored fields, a hit reads its
body only where it shows it, and an index of the stored fields (schema 5) or of the body in the
record (schema 6) is still read until rebuilt."""

from __future__ import annotations

import io
import json
import pickle
import zlib
from collections.abc import Callable
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from whoosh import fields
from whoosh.codec.whoosh3 import W3Codec
from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import BufferFile, StructFile

from searchidx import (
    highlight,
    indexer,
    merge_policy,
    records,
    schema,
    whoosh_internals,
    workers,
)
from searchidx.articles import Article
from searchidx.content import FileState, scan_content
from searchidx.marks import to_html
from searchidx.parsing import read_article
from searchidx.records import RecordColumn, TrainedColumn, bodies_of, live_records
from searchidx.request import SearchRequest, Sort
from searchidx.schema import (
    STORED_BODY_CHARS,
    build_schema,
    display_record,
    stored_record,
    to_document,
)
from searchidx.service import OUTDATED_NOTE, SearchService
from searchidx.store import IndexStore
from tests.conftest import real_shaped_articles, write_article

#: A row's values' names (:meth:`Article.to_row`).
ARTICLE_FIELDS = [field.name for field in dataclass_fields(Article)]


def values(count: int) -> list[bytes]:
    """Records of varied lengths, some empty (a document without a record)."""
    return [
        b"" if n % 7 == 3 else f'{{"n":{n},"text":"{"word " * (n % 50)}"}}'.encode()
        for n in range(count)
    ]


#: The column of schema 8 (zstd's, trained), and of schemas 6 and 7 (deflated), still read.
COLUMNS = [TrainedColumn, RecordColumn]


@pytest.fixture
def small_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """A zstd dictionary trained on a segment's first 16 KB, not 1 MiB: written past it."""
    monkeypatch.setattr(TrainedColumn.Writer, "_gathered", 16 * 1024)


def written(
    tmp_path: Path,
    documents: list[bytes],
    commits: int = 1,
    column: type[RecordColumn] = TrainedColumn,
) -> Path:
    """``documents`` indexed in a Whoosh index of a record column, in ``commits`` segments."""
    schema = fields.Schema(id=fields.ID(stored=True), record=fields.COLUMN(column()))
    index = FileStorage(str(tmp_path)).create_index(schema)
    per_commit = -(-len(documents) // commits)
    for start in range(0, len(documents), per_commit):
        writer = index.writer()
        for n, value in enumerate(documents[start : start + per_commit], start):
            writer.add_document(id=str(n), **({"record": value} if value else {}))
        writer.commit(merge=False)
    return tmp_path


@pytest.mark.parametrize(
    "record", [b"{}", records.JSON_ONLY + b"{}", b'{"title":"t"}', records.JSON_ONLY + b'{"n":1}']
)
def test_records_with_path_puts_the_path_first_in_any_object(record: bytes):
    pathed = records.with_path(record, 'a "b".md')
    assert list(json.loads(pathed).items()) == [("path", 'a "b".md'), *json.loads(record).items()]
    assert pathed.startswith(records.JSON_ONLY) == record.startswith(records.JSON_ONLY)


@pytest.mark.parametrize(
    "record",
    [b"[null]", b'[null,"t",[1,null]]', records.JSON_ONLY + b"[null,1180591620717411303424]"],
)
def test_records_with_path_puts_the_path_in_a_rows_first_value(record: bytes):
    pathed = records.with_path(record, 'a "b".md')
    assert json.loads(pathed) == ['a "b".md', *json.loads(record)[1:]]
    assert pathed.startswith(records.JSON_ONLY) == record.startswith(records.JSON_ONLY)


def object_record(article: Article) -> bytes:
    """The display record of schema 10 before rows: an object without the body, the path,
    and the web address where it is the original's."""
    record = article.to_dict()
    del record["body"], record["path"]
    if record["web_url"] == record["original_url"]:
        del record["web_url"]
    return orjson.dumps(record)


def test_an_index_of_object_records_and_rows_shows_every_article_as_written(
    content: Path, store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    """Display records written as objects (before rows) are read as they were, beside the
    rows of later syncs, by the snapshot's hits and by the whole articles read back."""
    with monkeypatch.context() as patch:
        patch.setattr(schema, "display_record", object_record)
        indexer.sync(store, content)
    for number in range(2):
        front_matter = f"title: Late {number}\npublishedDateTime: 2024-01-02\nexcerpt: e{number}"
        write_article(content, f"zz/{number}.md", front_matter, f"The late body {number}.")
    indexer.sync(store)
    with store.open_index().reader() as reader:
        kinds = {record[:1] for record in live_records(reader)}
    assert kinds == {b"{", b"["}
    expected = {}
    for path in scan_content(content):
        article = read_article(content, path)
        expected[path] = replace(article, body=article.body[:STORED_BODY_CHARS])
    assert {article.path: article for article in store.articles()} == expected
    service = SearchService(store, prepare=False)
    try:
        snapshot = service.snapshot()
        shown = [snapshot.shown(docnum) for docnum in range(snapshot.size)]
        assert {article.path: article for article in shown} == {
            path: article.without_body() for path, article in expected.items()
        }
    finally:
        service.close()


@pytest.mark.usefixtures("small_training")
@pytest.mark.parametrize("column", COLUMNS)
def test_record_column_reads_back_every_record_past_the_dictionary(
    tmp_path: Path, column: type[RecordColumn]
):
    documents = values(2000)  # some 60 KB: past the dictionary's 32, and zstd's training
    assert sum(map(len, documents)) > 2 * records.DICTIONARY_BYTES
    index = FileStorage(str(written(tmp_path, documents, column=column))).open_index()
    with index.reader() as reader:
        read = reader.column_reader("record", translate=False)
        assert [read[n] for n in range(len(documents))] == documents
        assert list(live_records(reader)) == documents


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("count", [1, 5])  # too few values for zstd to train on
def test_record_column_of_a_segment_smaller_than_the_dictionary(
    tmp_path: Path, column: type[RecordColumn], count: int
):
    documents = values(count)
    index = FileStorage(str(written(tmp_path, documents, column=column))).open_index()
    with index.reader() as reader:
        assert list(live_records(reader)) == documents


@pytest.mark.usefixtures("small_training")
@pytest.mark.parametrize("column", COLUMNS)
def test_records_of_reads_each_segments_records_from_its_file_as_its_map_has_them(
    tmp_path: Path, column: type[RecordColumn]
):
    documents = values(2000)
    index = FileStorage(str(written(tmp_path, documents, 2, column))).open_index()
    with index.reader() as reader:
        for leaf, base in reader.leaf_readers():
            path, start = whoosh_internals.column_place(leaf, "record") or (tmp_path, -1)
            name = W3Codec.column_filename(leaf.segment(), "record")
            length = leaf.storage().file_length(name)
            with open(path, "rb") as file:  # the place: where Whoosh's part of the file is
                file.seek(start)
                assert file.read(length) == leaf.storage().open_file(name).read(length)
            read = records.records_of(leaf)
            assert [read[n] for n in range(leaf.doc_count_all())] == documents[base:][
                : leaf.doc_count_all()
            ]


def test_record_column_reads_through_the_map_when_its_file_is_gone(tmp_path: Path):
    documents = values(50)
    (tmp_path / "index").mkdir()
    index = FileStorage(str(written(tmp_path / "index", documents))).open_index()
    with index.reader() as reader:
        read = reader.column_reader("record", translate=False)
        read.read_from(tmp_path / "removed.seg", 0)
        assert [read[n] for n in range(len(documents))] == documents


def test_records_of_an_index_built_from_an_empty_folder_are_none(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    store = IndexStore(tmp_path / "index")
    indexer.sync(store, tmp_path / "empty")
    assert store.articles() == []


@pytest.mark.usefixtures("small_training")
@pytest.mark.parametrize("column", COLUMNS)
def test_record_column_survives_a_merge_and_deletions(tmp_path: Path, column: type[RecordColumn]):
    documents = values(900)
    index = FileStorage(str(written(tmp_path, documents, 3, column))).open_index()
    writer = index.writer()
    for n in range(0, 900, 5):
        writer.delete_by_term("id", str(n))
    writer.commit(optimize=True)  # one segment: every record read and written again
    with index.reader() as reader:
        assert len(reader.leaf_readers()) == 1
        assert list(live_records(reader)) == [d for n, d in enumerate(documents) if n % 5]


def test_record_column_is_half_of_whooshs_stored_records(tmp_path: Path):
    """Records share their keys and words: the dictionary makes each about half of what
    Whoosh's stored field takes (a pickle compressed alone)."""
    documents = [stored_record(article).encode() for article in real_shaped_articles()] * 20
    index = FileStorage(str(written(tmp_path, documents))).open_index()
    with index.reader() as reader:
        assert list(live_records(reader)) == documents
        (leaf, _), *_ = reader.leaf_readers()
        _, _, column_bytes = leaf._perdoc._get_column_file("record")
    whooshs = sum(len(zlib.compress(pickle.dumps({"record": d.decode()}, 2))) for d in documents)
    assert column_bytes < whooshs / 2


def test_trained_column_is_smaller_than_the_deflated_one(tmp_path: Path, sample_dir: Path):
    """zstd with a dictionary trained on a segment's first records (schema 8) takes fewer
    bytes than zlib with those records as its dictionary (schemas 6, 7), dictionary and
    all."""
    paths = sorted(scan_content(sample_dir))
    documents = [display_record(read_article(sample_dir, path)) for path in paths]
    sizes = []
    for column in COLUMNS:
        folder = tmp_path / column.__name__
        folder.mkdir()
        index = FileStorage(str(written(folder, documents, column=column))).open_index()
        with index.reader() as reader:
            assert list(live_records(reader)) == documents
            (leaf, _), *_ = reader.leaf_readers()
            sizes.append(leaf._perdoc._get_column_file("record")[2])  # dictionary and all
    trained, deflated = sizes
    assert trained < 0.9 * deflated


def schema_5() -> fields.Schema:
    """The schema before the record column: the whole record a Whoosh stored field."""
    schema = schema_6()
    schema.remove("record")
    schema.add("record", fields.STORED())
    return schema


def schema_6() -> fields.Schema:
    """The schema before the body column: the whole record in the record column."""
    schema = build_schema()
    schema.remove("stored_body")
    return schema


def document_5(article: Article, state: FileState) -> dict[str, Any]:
    """The document of schema 5: the whole record as text, no body column."""
    document = {**to_document(article, state), "record": stored_record(article)}
    del document["stored_body"]
    return document


def document_6(article: Article, state: FileState) -> dict[str, Any]:
    """The document of schema 6: the whole record in UTF-8, no body column."""
    document = document_5(article, state)
    document["record"] = document["record"].encode()
    return document


@pytest.mark.parametrize(
    ("version", "old_schema", "old_document"),
    [(5, schema_5, document_5), (6, schema_6, document_6)],
)
def test_an_index_of_an_older_schema_is_searched_from_its_records_until_rebuilt(
    content: Path,
    store: IndexStore,
    monkeypatch: pytest.MonkeyPatch,
    version: int,
    old_schema: Callable[[], fields.Schema],
    old_document: Callable[[Article, FileState], dict[str, Any]],
):
    """An index built before the record column (its record a Whoosh stored field) or before
    the body column (the body inside the record) still shows its hits and their body
    snippets, saying to rebuild it; the next sync rebuilds it."""
    with monkeypatch.context() as patch:
        patch.setattr("searchidx.store.build_schema", old_schema)
        patch.setattr(workers, "to_document", old_document)
        indexer.sync(store, content)
    meta = store.read_meta()
    meta.schema_version = version
    store.write_meta(store.live_dir(), meta)
    assert "stored_body" not in store.open_index().schema
    articles = {article.path: article for article in store.articles()}
    assert any(article.body for article in articles.values())

    service = SearchService(store)
    try:
        result = service.search(SearchRequest(text="", per_page=20))
        assert OUTDATED_NOTE in result.notes
        assert result.hits
        for hit in result.hits:
            assert hit.article == articles[hit.article.path].without_body()
        snapshot = service.snapshot()
        for docnum in range(snapshot.size):
            assert snapshot.article(docnum) == articles[snapshot.shown(docnum).path]
    finally:
        service.close()

    assert indexer.sync(store).rebuilt
    schema = store.open_index().schema
    assert schema["record"].column_type is not None and "stored_body" in schema
    assert {article.path: article for article in store.articles()} == articles


def test_a_syncs_merge_keeps_every_record_and_body(
    content: Path, store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    """Segments merged by a sync (``whoosh_internals.merged_segment``) keep each document's
    display record and body, as the files have them."""
    monkeypatch.setattr(merge_policy, "FLOOR_DOCS", 5)
    monkeypatch.setattr(merge_policy, "MERGE_FACTOR", 3)
    indexer.sync(store, content)
    for number in range(3):  # one-document segments: the third merges them (3, one tier)
        front_matter = f"title: Late {number}\npublishedDateTime: 2024-01-02"
        write_article(content, f"zz/{number}.md", front_matter, f"The late body {number}.")
        indexer.sync(store)
    assert len(store.open_index()._segments()) == 2
    found = {article.path: article for article in store.articles()}
    assert found["zz/0.md"].body == "The late body 0."
    for path in scan_content(content):
        article = read_article(content, path)
        assert found.pop(path) == replace(article, body=article.body[:STORED_BODY_CHARS])
    assert found == {}


def segment_dictionaries(store: IndexStore) -> list[tuple[bytes, bytes]]:
    """Each segment's dictionaries of its record and body columns, in segment order."""
    with store.open_index().reader() as reader:
        return [
            tuple(leaf.column_reader(name, translate=False).dictionary for name in COLUMN_NAMES)
            for leaf, _base in reader.leaf_readers()
        ]


COLUMN_NAMES = ("record", "stored_body")


def test_a_syncs_small_segment_borrows_the_largest_segments_dictionaries(
    content: Path, store: IndexStore
):
    indexer.sync(store, content)
    write_article(content, "zz/late.md", "title: Late\npublishedDateTime: 2024-01-02", "Late.")
    indexer.sync(store)
    first, added = segment_dictionaries(store)
    assert all(first) and added == first  # one value alone: too few to train on
    found = {article.path: article for article in store.articles()}
    for path in scan_content(content):
        article = read_article(content, path)
        assert found.pop(path) == replace(article, body=article.body[:STORED_BODY_CHARS])


@pytest.mark.usefixtures("small_training")
def test_trained_column_trains_its_own_dictionary_when_its_values_fill_the_training(
    tmp_path: Path,
):
    borrowed = segment_column_dictionary(written(tmp_path, values(2000)))
    for documents, borrows in [(values(20), True), (values(2000)[::-1], False)]:
        data = io.BytesIO()
        writer = TrainedColumn().writer(StructFile(data))
        writer.borrow(borrowed)
        for docnum, value in enumerate(documents):
            writer.add(docnum, value)
        writer.finish(len(documents))
        read = TrainedColumn().reader(
            BufferFile(data.getvalue()), 0, len(data.getvalue()), len(documents)
        )
        assert list(read) == documents
        assert (read.dictionary == borrowed) is borrows


def segment_column_dictionary(folder: Path) -> bytes:
    """The dictionary of the record column of the index in ``folder`` (one segment)."""
    with FileStorage(str(folder)).open_index().reader() as reader:
        return reader.column_reader("record", translate=False).dictionary


def test_the_record_column_holds_no_body_nor_path_and_the_body_column_the_cut_body(
    sample_store: IndexStore,
):
    index = sample_store.open_index()
    try:
        with index.reader() as reader:
            bodies = reader.column_reader("stored_body", translate=False)
            paths = reader.column_reader("path", translate=False)
            read = records.records_of(reader)
            for docnum, record in enumerate(reader.column_reader("record", translate=False)):
                row = dict(zip(ARTICLE_FIELDS, json.loads(record), strict=True))
                assert row["body"] is None and row["path"] is None
                pathed = dict(zip(ARTICLE_FIELDS, json.loads(read[docnum]), strict=True))
                assert pathed == {**row, "path": paths[docnum].decode()}
                assert bodies[docnum].decode() == bodies_of(reader)[docnum]
            assert any(bodies[docnum] for docnum in range(reader.doc_count_all()))
    finally:
        index.close()
    assert any(article.body for article in sample_store.articles())


@pytest.mark.parametrize(
    "record",
    [
        b'{"title":"caf\xc3\xa9","quality":7,"related":[]}',
        '{"title":"\\ud800 alone"}',  # a lone surrogate: orjson refuses it
        b' {"heat":1180591620717411303424}',  # past 64 bits, marked as the writer marks it
        b' {"quality":-9223372036854775809}',  # past 64 bits, marked (orjson: a float)
        b'\xef\xbb\xbf{"title":"after a byte order mark"}',
    ],
)
def test_records_decoded_reads_every_record_as_json_does(record: str | bytes):
    assert repr(records.decoded(record)) == repr(json.loads(record))  # an int stays an int


def test_snapshot_shown_and_body_make_the_hit_of_the_whole_article(sample_store: IndexStore):
    """The article without its body and the body, read apart, are the stored article's, and
    the hit made of them (the body read only if needed) is the one made of the whole article
    (a body snippet included)."""
    service = SearchService(sample_store, prepare=False)
    try:
        snapshot = service.snapshot()
        terms = frozenset({"the", "market", "chip"})  # in some excerpts, some bodies only
        snippets = 0
        for docnum in range(snapshot.size):
            article, body = snapshot.shown(docnum), snapshot.body(docnum)
            whole = snapshot.article(docnum)
            assert (article, body) == (whole.without_body(), whole.body)
            made = highlight.hit(article, terms, 1.5, None, partial(snapshot.body, docnum))
            assert (
                made
                == highlight.hit(whole, terms, 1.5, None)
                == (highlight.hit(article, terms, 1.5, None, body))
            )
            snippets += (
                made.marked_excerpt != highlight.hit(article, terms, 1.5, None).marked_excerpt
            )
        assert snippets  # some hits show a snippet of the body
    finally:
        service.close()


@pytest.fixture
def body_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The documents whose body column is read, in a segment, as they are read."""
    read: list[int] = []
    column_read = records._ColumnBodies.__getitem__

    def counted(self: Any, docnum: int) -> str:
        read.append(docnum)
        return column_read(self, docnum)

    monkeypatch.setattr(records._ColumnBodies, "__getitem__", counted)
    return read


@pytest.mark.parametrize(
    "request_",
    [
        SearchRequest(text="", sort=Sort.NEWEST, per_page=20),
        SearchRequest(text="market", sort=Sort.NEWEST, per_page=20, highlight=False),
        SearchRequest(text="", date_from=datetime(2000, 1, 1, tzinfo=UTC), per_page=20),
    ],
)
def test_a_page_of_hits_with_excerpts_and_no_highlighting_reads_no_body(
    sample_store: IndexStore, body_reads: list[int], request_: SearchRequest
):
    service = SearchService(sample_store, results_cached=0)
    try:
        result = service.search(request_)
        assert len(result.hits) == 20
        assert all(hit.article.excerpt for hit in result.hits)
        assert body_reads == []
    finally:
        service.close()


def test_a_hit_reads_its_body_for_a_snippet_or_when_it_has_no_excerpt(
    content: Path, store: IndexStore, body_reads: list[int]
):
    """The body is read where a hit shows it: a snippet of the words the excerpt lacks, or
    its start in place of a missing excerpt."""
    (content / "no-excerpt.md").write_text(
        "---\ntitle: Quiet harbour\npublishedDateTime: 2099-01-01T00:00:00Z\n---\n"
        "The harbour of Quillonby reopened.\n"
    )
    (content / "body-word.md").write_text(
        "---\ntitle: Ferry news\nexcerpt: A short note.\npublishedDateTime: 2098-01-01T00:00:00Z\n"
        "---\nThe ferry to Zanterwick sails again.\n"
    )
    indexer.sync(store, content)
    service = SearchService(store, results_cached=0)
    try:
        newest = service.search(SearchRequest(text="", sort=Sort.NEWEST, per_page=1))
        assert newest.hits[0].article.path == "no-excerpt.md"
        assert "Quillonby" in to_html(newest.hits[0].marked_excerpt)
        assert len(body_reads) == 1
        found = service.search(SearchRequest(text="zanterwick"))
        assert [hit.article.path for hit in found.hits] == ["body-word.md"]
        assert "<mark" in to_html(found.hits[0].marked_excerpt)
        assert len(body_reads) == 2
    finally:
        service.close()
