"""The display records' column (searchidx.records): what is written is read back, through
Whoosh's writer and merges, it is smaller than Whoosh's stored fields, and an index of the
stored fields (schema 5) is still read until rebuilt."""

from __future__ import annotations

import json
import pickle
import zlib
from pathlib import Path
from typing import Any

import pytest
from whoosh import fields
from whoosh.filedb.filestore import FileStorage

from searchidx import highlight, indexer, records, workers
from searchidx.articles import Article
from searchidx.content import FileState
from searchidx.records import RecordColumn, live_records
from searchidx.request import SearchRequest
from searchidx.schema import build_schema, stored_record, to_document
from searchidx.service import OUTDATED_NOTE, SearchService
from searchidx.store import IndexStore
from tests.conftest import real_shaped_articles


def values(count: int) -> list[bytes]:
    """Records of varied lengths, some empty (a document without a record)."""
    return [
        b"" if n % 7 == 3 else f'{{"n":{n},"text":"{"word " * (n % 50)}"}}'.encode()
        for n in range(count)
    ]


def written(tmp_path: Path, documents: list[bytes], commits: int = 1) -> Path:
    """``documents`` indexed in a Whoosh index of a record column, in ``commits`` segments."""
    schema = fields.Schema(id=fields.ID(stored=True), record=fields.COLUMN(RecordColumn()))
    index = FileStorage(str(tmp_path)).create_index(schema)
    per_commit = -(-len(documents) // commits)
    for start in range(0, len(documents), per_commit):
        writer = index.writer()
        for n, value in enumerate(documents[start : start + per_commit], start):
            writer.add_document(id=str(n), **({"record": value} if value else {}))
        writer.commit(merge=False)
    return tmp_path


def test_record_column_reads_back_every_record_past_the_dictionary(tmp_path: Path):
    documents = values(2000)  # some 60 KB: past the dictionary's 32
    assert sum(map(len, documents)) > 2 * records.DICTIONARY_BYTES
    index = FileStorage(str(written(tmp_path, documents))).open_index()
    with index.reader() as reader:
        column = reader.column_reader("record", translate=False)
        assert [column[n] for n in range(len(documents))] == documents
        assert list(live_records(reader)) == documents


def test_record_column_of_a_segment_smaller_than_the_dictionary(tmp_path: Path):
    documents = values(5)
    index = FileStorage(str(written(tmp_path, documents))).open_index()
    with index.reader() as reader:
        assert list(live_records(reader)) == documents


def test_records_of_an_index_built_from_an_empty_folder_are_none(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    store = IndexStore(tmp_path / "index")
    indexer.sync(store, tmp_path / "empty")
    assert store.articles() == []


def test_record_column_survives_a_merge_and_deletions(tmp_path: Path):
    documents = values(900)
    index = FileStorage(str(written(tmp_path, documents, commits=3))).open_index()
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


def test_an_index_of_schema_5_is_searched_from_its_stored_records_until_rebuilt(
    content: Path, store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    """An index built before the record column (its record a Whoosh stored field) still
    shows its hits, saying to rebuild it; the next sync rebuilds it."""

    def schema_5() -> fields.Schema:
        schema = build_schema()
        schema.remove("record")
        schema.add("record", fields.STORED())
        return schema

    def document_5(article: Article, state: FileState) -> dict[str, Any]:
        return {**to_document(article, state), "record": stored_record(article)}

    with monkeypatch.context() as patch:
        patch.setattr("searchidx.store.build_schema", schema_5)
        patch.setattr(workers, "to_document", document_5)
        indexer.sync(store, content)
    meta = store.read_meta()
    meta.schema_version = 5
    store.write_meta(store.live_dir(), meta)
    assert store.open_index().schema["record"].column_type is None
    articles = {article.path: article for article in store.articles()}

    service = SearchService(store)
    try:
        result = service.search(SearchRequest(text="", per_page=20))
        assert OUTDATED_NOTE in result.notes
        assert result.hits
        for hit in result.hits:
            assert hit.article == articles[hit.article.path].without_body()
    finally:
        service.close()

    assert indexer.sync(store).rebuilt
    assert store.open_index().schema["record"].column_type is not None
    assert {article.path: article for article in store.articles()} == articles


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


def test_snapshot_article_and_body_make_the_hit_of_the_whole_article(sample_store: IndexStore):
    """The article without its body and the body, read once, are the stored article's, and
    the hit made of them is the one made of the whole article (a body snippet included)."""
    service = SearchService(sample_store, prepare=False)
    try:
        snapshot = service.snapshot()
        terms = frozenset({"the", "market", "chip"})  # in some excerpts, some bodies only
        snippets = 0
        for docnum in range(snapshot.size):
            article, body = snapshot.article_and_body(docnum)
            whole = snapshot.article(docnum)
            assert (article, body) == (whole.without_body(), whole.body)
            made = highlight.hit(article, terms, 1.5, None, body)
            assert made == highlight.hit(whole, terms, 1.5, None)
            snippets += (
                made.marked_excerpt != highlight.hit(article, terms, 1.5, None).marked_excerpt
            )
        assert snippets  # some hits show a snippet of the body
    finally:
        service.close()
