"""Export to Elasticsearch/OpenSearch files, from a real index on disk, checked line by line."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from whoosh import analysis, fields

from searchidx import export, indexer
from searchidx.cli import cli
from searchidx.export import (
    DISPLAY_PROPERTIES,
    INTERNAL_FIELDS,
    MANIFEST_FILE,
    MAPPING_FILE,
    TEXT_ANALYZER,
    ExportError,
    elasticsearch_mapping,
    export_elasticsearch,
)
from searchidx.ranking import FIELD_BOOSTS
from searchidx.records import live_bodies, live_records
from searchidx.schema import STORED_BODY_CHARS, build_schema, from_record
from searchidx.store import IndexStore
from tests.conftest import SAMPLE_COUNT, indexed, write_article


def indexed_records(store: IndexStore) -> dict[str, dict[str, Any]]:
    """Path -> stored record of every live document, with its stored body."""
    index = store.open_index()
    try:
        with index.reader() as reader:
            stored = zip(live_records(reader), live_bodies(reader), strict=True)
            records = [from_record(record, body).to_dict() for record, body in stored]
    finally:
        index.close()
    return {record["path"]: record for record in records}


def bulk_files(out_dir: Path) -> list[Path]:
    return sorted(out_dir.glob("bulk-*.ndjson"))


def read_bulk(out_dir: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every (action, source) pair of an export, checking the NDJSON shape on the way."""
    pairs = []
    for path in bulk_files(out_dir):
        data = path.read_bytes()
        assert data.endswith(b"\n"), f"{path.name}: the bulk API needs a final newline"
        lines = data.decode("utf-8").split("\n")[:-1]
        assert len(lines) % 2 == 0, f"{path.name}: an action without its document"
        for action_line, source_line in zip(lines[::2], lines[1::2], strict=True):
            action, source = json.loads(action_line), json.loads(source_line)
            assert isinstance(source, dict)
            pairs.append((action, source))
    return pairs


def mapping_of(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / MAPPING_FILE).read_text())


@pytest.fixture(scope="module")
def sample_export(sample_store: IndexStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample index exported with the default settings (read-only by convention)."""
    out_dir = tmp_path_factory.mktemp("export") / "es"
    export_elasticsearch(sample_store, out_dir)
    return out_dir


def test_export_writes_an_index_action_and_source_for_every_indexed_article(
    sample_export: Path, sample_store: IndexStore
):
    pairs = read_bulk(sample_export)
    records = indexed_records(sample_store)
    ids = [action["index"]["_id"] for action, _ in pairs]

    assert all(
        list(action) == ["index"] and list(action["index"]) == ["_id"] for action, _ in pairs
    )
    assert len(ids) == len(set(ids)) == SAMPLE_COUNT + 1
    assert set(ids) == set(records)
    for action, source in pairs:
        record = records[action["index"]["_id"]]
        assert source["path"] == record["path"]
        assert source["title"] == record["title"]
        assert source["topics"] == record["topics"]
        assert source["body"] == record["body"]  # kept (short bodies are stored whole)
        assert datetime.fromisoformat(source["date"]) == datetime.fromisoformat(
            record["published_at"]
        )
    manifest = json.loads((sample_export / MANIFEST_FILE).read_text())
    assert manifest["documents"] == SAMPLE_COUNT + 1
    assert [file["name"] for file in manifest["bulk_files"]] == [
        path.name for path in bulk_files(sample_export)
    ]


def test_export_never_contains_secured(sample_export: Path, sample_dir: Path):
    secrets = [
        match.group(1)
        for path in sample_dir.rglob("*.*")
        for match in re.finditer(r'^secured: "(.+)"$', path.read_text(), re.MULTILINE)
    ]
    assert len(secrets) >= SAMPLE_COUNT  # the sample files do carry them

    exported = b"".join(path.read_bytes() for path in sample_export.iterdir())
    assert b"secured" not in exported
    assert not [secret for secret in secrets if secret.encode() in exported]


def test_export_mapping_mirrors_the_whoosh_schema(sample_export: Path):
    mapping = mapping_of(sample_export)["mappings"]
    properties = mapping["properties"]
    schema = build_schema()

    assert mapping["dynamic"] == "strict"
    for name, field_type in schema.items():
        if name in INTERNAL_FIELDS:
            assert name not in properties
            continue
        prop = properties[name]
        if isinstance(field_type, fields.TEXT):
            assert prop == {"type": "text", "analyzer": TEXT_ANALYZER}, name
        elif isinstance(field_type, fields.DATETIME):
            assert prop["type"] == "date", name
        elif isinstance(field_type, fields.NUMERIC):
            assert prop["type"] == "integer", name  # quality: 32-bit signed in Whoosh too
        elif name == "published":
            assert prop["type"] == "boolean"
        else:  # ID, KEYWORD and the topics column: exact values for facets and filters
            assert prop["type"] == "keyword", name
    assert {name for name, prop in properties.items() if prop["type"] == "keyword"} >= {
        "topics",
        "provider_name",
        "category",
        "type",
    }
    assert mapping["_meta"]["field_boosts"] == FIELD_BOOSTS
    assert "title^3" in mapping["_meta"]["query_fields"]
    assert not any("boost" in prop for prop in properties.values())  # refused by ES 8


def test_export_mapping_keeps_display_fields_out_of_search(sample_export: Path):
    properties = mapping_of(sample_export)["mappings"]["properties"]
    for name in DISPLAY_PROPERTIES:
        prop = properties[name]
        if prop["type"] == "object":
            assert prop["enabled"] is False, name
        else:
            assert prop["index"] is False and prop["doc_values"] is False, name


def test_export_mapping_feeds_topic_and_provider_text_from_their_facets(sample_export: Path):
    """As to_document builds ``topic`` and ``provider`` from the facet values."""
    settings = mapping_of(sample_export)
    properties = settings["mappings"]["properties"]
    assert properties["topics"]["copy_to"] == "topic"
    assert properties["provider_name"]["copy_to"] == "provider"
    assert properties["domain"]["copy_to"] == "provider"
    normalizer = properties["category"]["normalizer"]
    assert settings["settings"]["analysis"]["normalizer"][normalizer]["filter"] == ["lowercase"]
    assert properties["type"]["normalizer"] == normalizer  # lowercase=True in Whoosh
    assert "normalizer" not in properties["provider_name"]  # an exact ID in Whoosh


def test_export_sources_fit_the_strict_mapping(sample_export: Path):
    """Every document would be accepted with ``dynamic: strict``: known fields, right types."""
    properties = mapping_of(sample_export)["mappings"]["properties"]
    copy_targets = {prop["copy_to"] for prop in properties.values() if "copy_to" in prop}
    for _, source in read_bulk(sample_export):
        assert set(source) <= set(properties) - copy_targets, set(source) - set(properties)
        for name, value in source.items():
            if value is None:
                continue
            kind = properties[name]["type"]
            values = value if isinstance(value, list) and kind != "object" else [value]
            for item in values:
                if kind in ("text", "keyword"):
                    assert isinstance(item, str), (name, item)
                elif kind == "integer":
                    assert isinstance(item, int) and -(2**31) <= item < 2**31, (name, item)
                elif kind == "long":
                    assert isinstance(item, int) and -(2**63) <= item < 2**63, (name, item)
                elif kind == "boolean":
                    assert isinstance(item, bool), (name, item)
                elif kind == "date":
                    assert datetime.fromisoformat(item).utcoffset() is not None, (name, item)
                else:
                    assert kind == "object" and all(isinstance(x, dict) for x in item), name


def test_export_mapping_refuses_a_field_it_does_not_know():
    schema = build_schema()
    schema.add("summary_ngrams", fields.NGRAM())
    with pytest.raises(ExportError, match="summary_ngrams"):
        elasticsearch_mapping(schema)


def test_export_mapping_translates_the_whoosh_text_analyzer_step_by_step():
    analysis = elasticsearch_mapping(build_schema())["settings"]["analysis"]
    chain = analysis["analyzer"][TEXT_ANALYZER]
    assert chain["filter"] == ["lowercase", "searchidx_length", "searchidx_stop", "porter_stem"]
    assert "the" in analysis["filter"]["searchidx_stop"]["stopwords"]
    assert analysis["tokenizer"][chain["tokenizer"]]["type"] == "pattern"


def test_export_mapping_refuses_a_text_analyzer_it_cannot_translate():
    schema = fields.Schema(title=fields.TEXT(analyzer=analysis.StemmingAnalyzer(stemfn=str.lower)))
    with pytest.raises(ExportError, match=r"StemFilter.* cannot translate"):
        elasticsearch_mapping(schema)


def test_export_mapping_refuses_text_fields_with_different_analyzers():
    schema = build_schema()
    schema.add("summary", fields.TEXT(analyzer=analysis.StandardAnalyzer()))
    with pytest.raises(ExportError, match="different analyzers"):
        elasticsearch_mapping(schema)


def test_export_splits_bulk_files_between_documents_under_max_bytes(
    sample_store: IndexStore, sample_export: Path, tmp_path: Path
):
    max_bytes = 50_000
    report = export_elasticsearch(sample_store, tmp_path / "small", max_bytes=max_bytes)

    files = bulk_files(tmp_path / "small")
    assert len(files) == len(report.files) > 3
    assert all(path.stat().st_size <= max_bytes for path in files)
    assert [file.bytes for file in report.files] == [path.stat().st_size for path in files]
    assert read_bulk(tmp_path / "small") == read_bulk(sample_export)  # same pairs, same order
    whole = b"".join(path.read_bytes() for path in files)
    assert whole == b"".join(path.read_bytes() for path in bulk_files(sample_export))


def test_export_refuses_a_document_larger_than_max_bytes(sample_store: IndexStore, tmp_path: Path):
    with pytest.raises(ExportError, match="raise --max-bytes"):
        export_elasticsearch(sample_store, tmp_path / "tiny", max_bytes=1024)
    assert not (tmp_path / "tiny").exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left behind


def test_export_failure_leaves_no_partial_export(
    sample_store: IndexStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    written: list[str] = []
    real_pair = export.bulk_pair

    def fail_halfway(article):
        if len(written) == SAMPLE_COUNT // 2:
            raise OSError(28, "No space left on device")
        written.append(article.path)
        return real_pair(article)

    monkeypatch.setattr(export, "bulk_pair", fail_halfway)
    with pytest.raises(OSError, match="No space left"):
        export_elasticsearch(sample_store, tmp_path / "out", max_bytes=20_000)
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_a_folder_that_is_not_empty(sample_store: IndexStore, tmp_path: Path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export_elasticsearch(sample_store, target)
    with pytest.raises(ExportError, match="not a searchidx export"):
        export_elasticsearch(sample_store, target, force=True)
    assert [path.name for path in target.iterdir()] == ["notes.txt"]


def test_export_force_replaces_a_previous_export_whole(sample_store: IndexStore, tmp_path: Path):
    target = tmp_path / "out"
    export_elasticsearch(sample_store, target, max_bytes=50_000)
    assert len(bulk_files(target)) > 3
    with pytest.raises(ExportError, match="--force"):
        export_elasticsearch(sample_store, target)

    export_elasticsearch(sample_store, target, force=True)

    assert len(bulk_files(target)) == 1  # no stale files from the first export
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_export_takes_an_empty_folder(sample_store: IndexStore, tmp_path: Path):
    (tmp_path / "out").mkdir()
    report = export_elasticsearch(sample_store, tmp_path / "out")
    assert report.documents == SAMPLE_COUNT + 1
    assert (tmp_path / "out" / MAPPING_FILE).is_file()


def test_export_is_what_is_indexed_not_what_is_on_disk(tmp_path: Path):
    store = indexed(
        tmp_path, [("a.md", 'title: "Indexed title"\npublishedDateTime: 2024-01-01', "")]
    )
    folder = tmp_path / "content"
    write_article(folder, "a.md", 'title: "Edited since"\npublishedDateTime: 2024-01-01')
    write_article(folder, "b.md", 'title: "Not indexed yet"\npublishedDateTime: 2024-01-01')

    export_elasticsearch(store, tmp_path / "out")

    [(action, source)] = read_bulk(tmp_path / "out")
    assert action == {"index": {"_id": "a.md"}}
    assert source["title"] == "Indexed title"


def test_export_keeps_long_bodies_whole_while_the_file_is_unchanged(tmp_path: Path):
    body = " ".join(f"word{number}" for number in range(2_000))
    assert len(body) > 2 * STORED_BODY_CHARS
    matter = 'title: "Long read"\npublishedDateTime: 2024-01-01'
    store, folder = indexed(tmp_path, [("long.md", matter, body)]), tmp_path / "content"
    assert len(from_record(json.dumps(indexed_records(store)["long.md"])).body) == (
        STORED_BODY_CHARS
    )

    report = export_elasticsearch(store, tmp_path / "whole")
    [(_, source)] = read_bulk(tmp_path / "whole")
    assert source["body"] == body and report.bodies_cut == []

    write_article(folder, "long.md", matter, body + " an edit not synced yet")
    report = export_elasticsearch(store, tmp_path / "cut")
    [(_, source)] = read_bulk(tmp_path / "cut")
    assert source["body"] == body[:STORED_BODY_CHARS]  # as indexed, never the unsynced edit
    assert report.bodies_cut == ["long.md"]


def test_export_command_writes_the_files(sample_store: IndexStore, tmp_path: Path):
    out_dir = tmp_path / "es"
    args = ["export", "--format", "elasticsearch", str(out_dir)]
    result = CliRunner().invoke(cli, [*args, "--index", str(sample_store.location)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"exported {SAMPLE_COUNT + 1:,} articles to {out_dir}/")
    assert len(read_bulk(out_dir)) == SAMPLE_COUNT + 1

    again = CliRunner().invoke(cli, [*args, "--index", str(sample_store.location)])
    assert again.exit_code == 1 and "pass --force" in again.output
    assert "Traceback" not in again.output


def test_export_command_without_an_index_says_how_to_build_one(tmp_path: Path):
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "es"), "--index", str(tmp_path)])
    assert result.exit_code == 1
    assert "searchidx index CONTENT_DIR" in result.output
    assert not (tmp_path / "es").exists()


def test_export_of_an_index_of_an_empty_folder_has_no_articles(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    store = IndexStore(tmp_path / "ix")
    indexer.sync(store, tmp_path / "empty")
    report = export.export_elasticsearch(store, tmp_path / "out")
    assert (report.documents, report.files) == (0, [])
    assert json.loads((tmp_path / "out" / "mapping.json").read_text())["mappings"]
