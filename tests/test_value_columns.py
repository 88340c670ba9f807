"""The coded column of several values a document (searchidx.value_columns): what is written is
read back, value by value and all at once, through Whoosh's writer and merges."""

from __future__ import annotations

from pathlib import Path

import pytest
from whoosh import fields
from whoosh.filedb.filestore import FileStorage

from searchidx.value_columns import SEPARATOR, CodedValuesColumn


def topics(count: int, distinct: int) -> list[bytes]:
    """Each document's values joined, of ``distinct`` values in all: some documents without
    any, some with an empty one, some with many."""
    return [
        SEPARATOR.join(f"topic {(n * 7 + k) % distinct}".encode() for k in range(n % 4))
        if n % 11
        else SEPARATOR
        for n in range(count)
    ]


def written(tmp_path: Path, documents: list[bytes], commits: int) -> Path:
    """``documents`` indexed in a Whoosh index of a coded column, in ``commits`` segments (a
    document with no value given none)."""
    schema = fields.Schema(id=fields.ID(stored=True), topics=fields.COLUMN(CodedValuesColumn()))
    index = FileStorage(str(tmp_path)).create_index(schema)
    per_commit = -(-len(documents) // commits)
    for start in range(0, len(documents), per_commit):
        writer = index.writer()
        for n, value in enumerate(documents[start : start + per_commit], start):
            writer.add_document(id=str(n), **({"topics": value} if value else {}))
        writer.commit(merge=False)
    return tmp_path


@pytest.mark.parametrize("distinct", [3, 300])  # codes of one byte, and of two
def test_coded_values_column_reads_back_each_documents_values(tmp_path: Path, distinct: int):
    documents = topics(1000, distinct)
    index = FileStorage(str(written(tmp_path, documents, 2))).open_index()
    with index.reader() as reader:
        read = reader.column_reader("topics", translate=False)
        assert [read[n] for n in range(len(documents))] == documents
        for leaf, base in reader.leaf_readers():
            column = leaf.column_reader("topics", translate=False)
            assert isinstance(column, CodedValuesColumn.Reader)
            expected = documents[base : base + leaf.doc_count_all()]
            assert list(column) == expected
            assert column.per_document() == [
                value.decode().split(SEPARATOR.decode()) if value else [] for value in expected
            ]


def test_coded_values_column_keeps_its_values_through_a_merge(tmp_path: Path):
    documents = topics(600, 40)
    index = FileStorage(str(written(tmp_path, documents, 3))).open_index()
    writer = index.writer()
    writer.delete_by_term("id", "5")
    writer.commit(optimize=True)
    with index.reader() as reader:
        assert len(list(reader.leaf_readers())) == 1
        read = reader.column_reader("topics", translate=False)
        kept = [value for n, value in enumerate(documents) if n != 5]
        assert [read[n] for n in range(reader.doc_count_all())] == kept
