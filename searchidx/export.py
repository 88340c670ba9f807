"""Export the index for Elasticsearch or OpenSearch: a mapping, and the articles as bulk NDJSON.

What is exported is what is indexed. Articles are read from the live index's stored records, not
from the files, so an export taken while the folder is being edited still matches the index the
web page answers from. One exception keeps the search text whole: the stored record holds only
the first :data:`~searchidx.schema.STORED_BODY_CHARS` of a body. For a body that long, the file
is read again and used only if its content hash (SHA-256, cut) equals the one the index recorded,
which proves it is the very text that was indexed; otherwise the stored prefix is exported and
counted in the report.

The mapping is derived from the index's Whoosh schema field by field (text, keyword, date,
numeric), so a schema change the exporter does not know fails loudly instead of exporting
fields Elasticsearch would reject (``dynamic: strict``).

An export is written into a hidden folder beside ``out_dir`` and renamed into place when
complete: a failed export leaves no partial set behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from whoosh import fields
from whoosh.analysis import (
    CharsetFilter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.lang import porter
from whoosh.reading import IndexReader

from searchidx import whoosh_internals
from searchidx.articles import Article
from searchidx.cluster import ClusterIndex
from searchidx.content import FileState, content_hash
from searchidx.defaults import DEFAULT_MAX_BYTES
from searchidx.errors import ArticleError, SearchidxError
from searchidx.parsing import MAX_FILE_BYTES, decode_article, parse_article, read_bounded
from searchidx.ranking import FIELD_BOOSTS
from searchidx.records import bodies_of, records_of
from searchidx.schema import SCHEMA_VERSION, STORED_BODY_CHARS, build_schema, from_record
from searchidx.store import IndexStore

#: Marks a folder as written by this exporter; ``--force`` replaces only such folders.
EXPORT_FORMAT = "searchidx-elasticsearch-export"
MAPPING_FILE = "mapping.json"
MANIFEST_FILE = "manifest.json"
BULK_FILE = "bulk-{:05d}.ndjson"

#: Elasticsearch refuses a document ``_id`` longer than this (in UTF-8 bytes).
MAX_ID_BYTES = 512

#: The analyzer of the text fields: Whoosh's, translated step by step (see _text_analysis).
TEXT_ANALYZER = "searchidx_text"
FOLD_CHAR_FILTER = "searchidx_fold"
LOWERCASE_NORMALIZER = "searchidx_lowercase"

#: Whoosh fields that are bookkeeping, not article data: the file's sync state, the stored
#: display record and body (exported as DISPLAY_PROPERTIES and ``body``) and the spelling
#: words of ``title`` (a suggester on ``title`` does that in Elasticsearch).
INTERNAL_FIELDS = frozenset({"state", "record", "stored_body", "spell_title"})

#: Fields whose values also feed a text field, as :func:`searchidx.schema.to_document` builds
#: ``topic`` from the topics and ``provider`` from the provider's name and domain.
COPY_TO = {"topics": "topic", "provider_name": "provider", "domain": "provider"}

#: Where the Whoosh type alone does not say it: ``published`` is "true"/"false" text in Whoosh.
TYPE_OVERRIDES: dict[str, dict[str, Any]] = {"published": {"type": "boolean"}}

_NOT_SEARCHED = {"index": False, "doc_values": False}

#: Stored for display only (in the Whoosh record, never searched): kept in ``_source``, not
#: indexed, so they cost no index space and cannot match a query.
DISPLAY_PROPERTIES: dict[str, dict[str, Any]] = {
    "tags": {"type": "keyword", **_NOT_SEARCHED},
    "heat": {"type": "long", **_NOT_SEARCHED},
    "url": {"type": "keyword", **_NOT_SEARCHED},
    "original_url": {"type": "keyword", **_NOT_SEARCHED},
    "web_url": {"type": "keyword", **_NOT_SEARCHED},
    "images": {"type": "object", "enabled": False},
    "related": {"type": "object", "enabled": False},
}


class ExportError(SearchidxError):
    """An export that cannot be written as asked (target folder, size bound, schema)."""


@dataclass(frozen=True, slots=True)
class BulkFile:
    name: str
    documents: int
    bytes: int


@dataclass
class ExportReport:
    """What an export wrote."""

    out_dir: str
    documents: int = 0
    files: list[BulkFile] = field(default_factory=list)
    #: Articles whose body is exported cut to STORED_BODY_CHARS: their file changed (or went
    #: away) since it was indexed. ``searchidx index`` then export again to get them whole.
    bodies_cut: list[str] = field(default_factory=list)
    seconds: float = 0.0


def export_elasticsearch(
    store: IndexStore,
    out_dir: Path | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    force: bool = False,
) -> ExportReport:
    """Write the live index to ``out_dir`` as a mapping and bulk files for Elasticsearch.

    ``out_dir`` must be new or empty; with ``force`` it may also hold a previous export, which
    is replaced in one rename. Files: ``mapping.json`` (body of ``PUT /<index>``),
    ``bulk-00001.ndjson``... (bodies of ``POST /<index>/_bulk``, each under ``max_bytes``, each
    action line followed by its document) and ``manifest.json`` (counts and file list).
    """
    started = time.perf_counter()
    target = Path(out_dir)
    _check_target(target, force)
    content_root = Path(store.read_meta().content_dir)
    report = ExportReport(str(target))
    index = store.open_index()
    try:
        mapping = elasticsearch_mapping(index.schema)
        with _staging(target) as staging, index.reader() as reader:
            bulk = _BulkWriter(staging, max_bytes)
            try:
                for article in _indexed_articles(reader, content_root, report):
                    bulk.add(article.path, bulk_pair(article))
            finally:
                bulk.close()
            report.files = bulk.files
            report.documents = sum(file.documents for file in bulk.files)
            _write_json(staging / MAPPING_FILE, mapping)
            manifest = _manifest(str(store.location), store.generation(), report, max_bytes)
            _write_json(staging / MANIFEST_FILE, manifest)
            _publish(staging, target)
    finally:
        index.close()
    report.seconds = time.perf_counter() - started
    return report


def export_cluster(
    index: ClusterIndex,
    out_dir: Path | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    force: bool = False,
) -> ExportReport:
    """:func:`export_elasticsearch` of an index on an OpenSearch cluster: the same mapping,
    and each document as the cluster holds it (the whole body), less what searchidx keeps for
    itself there; in path order, so the files are those a local index of the same folder
    gives."""
    from searchidx import cluster_sync
    from searchidx.cluster import cluster_errors

    started = time.perf_counter()
    target = Path(out_dir)
    _check_target(target, force)
    report = ExportReport(str(target))
    client = index.client()
    with cluster_errors(index), _staging(target) as staging:
        physical = cluster_sync.status(index).physical_index
        bulk = _BulkWriter(staging, max_bytes)
        try:
            for source in cluster_sync.documents(client, physical):
                path = source["path"]
                pair = _json_line({"index": {"_id": path}}) + _json_line(source)
                bulk.add(path, pair.encode())
        finally:
            bulk.close()
        report.files = bulk.files
        report.documents = sum(file.documents for file in bulk.files)
        _write_json(staging / MAPPING_FILE, elasticsearch_mapping(build_schema()))
        manifest = _manifest(index.location, physical, report, max_bytes)
        _write_json(staging / MANIFEST_FILE, manifest)
        _publish(staging, target)
    report.seconds = time.perf_counter() - started
    return report


# The mapping ------------------------------------------------------------------------------------


def elasticsearch_mapping(schema: fields.Schema) -> dict[str, Any]:
    """Index settings and mappings mirroring a Whoosh schema (the body of ``PUT /<index>``).

    Field boosts go in ``_meta`` and into queries (``"title^3"``): Elasticsearch 8 refuses
    ``boost`` in a mapping.
    """
    properties = {
        name: _property(name, field_type)
        for name, field_type in schema.items()
        if name not in INTERNAL_FIELDS
    }
    properties.update(DISPLAY_PROPERTIES)
    analysis = _text_analysis(schema)
    analysis["normalizer"] = {LOWERCASE_NORMALIZER: {"type": "custom", "filter": ["lowercase"]}}
    return {
        "settings": {
            "analysis": analysis,
            # Highlighting refuses the whole search when a hit's body is longer than this (by
            # default 1,000,000 characters); a body is never longer than its file's bytes.
            "index": {"highlight": {"max_analyzed_offset": MAX_FILE_BYTES}},
        },
        "mappings": {
            "dynamic": "strict",
            "_meta": {
                "searchidx_schema_version": SCHEMA_VERSION,
                "field_boosts": dict(FIELD_BOOSTS),
                "query_fields": query_fields(),
            },
            "properties": dict(sorted(properties.items())),
        },
    }


def query_fields() -> list[str]:
    """The text fields a query searches, with their boosts, as ``query_string`` takes them."""
    return [f"{name}^{boost:g}" for name, boost in FIELD_BOOSTS.items()]


def _text_analysis(schema: fields.Schema) -> dict[str, Any]:
    """Analysis settings that do what the text fields' Whoosh analyzer does, step by step: its
    regular expression makes the tokens, then lowercase, its minimum length and stop words, and
    the Porter stemmer.

    Built-in analyzers do not: OpenSearch's "english" has another tokenizer and stop list, and
    made the terms of 199 of 200 real articles differ from Whoosh's. This chain leaves only the
    stemmers' differences (Whoosh stems "running" to "runn", Lucene to "run"): 99.4% of the
    tokens agree. An analyzer step it cannot translate fails the export loudly.
    """
    analyzers = [
        field_type.analyzer for field_type in schema if isinstance(field_type, fields.TEXT)
    ]
    if any(analyzer != analyzers[0] for analyzer in analyzers):
        raise ExportError("the index's text fields have different analyzers; the export has one")
    tokenizer, *steps = getattr(analyzers[0], "items", analyzers[0:1])
    if (
        not isinstance(tokenizer, RegexTokenizer)
        or tokenizer.gaps
        or tokenizer.expression.flags & ~re.UNICODE
    ):
        raise _untranslatable(tokenizer)
    token_filters: dict[str, dict[str, Any]] = {}
    char_filters: dict[str, dict[str, Any]] = {}
    chain = []
    for step in steps:
        if isinstance(step, LowercaseFilter):
            chain.append("lowercase")
        elif isinstance(step, CharsetFilter) and chain == ["lowercase"]:
            char_filters[FOLD_CHAR_FILTER] = _folding(step.charmap, tokenizer.expression)
        elif isinstance(step, StopFilter):
            length = {"type": "length", "min": step.min}
            if step.max is not None:
                length["max"] = step.max
            token_filters["searchidx_length"] = length
            token_filters["searchidx_stop"] = {"type": "stop", "stopwords": sorted(step.stops)}
            chain += ["searchidx_length", "searchidx_stop"]
        elif isinstance(step, StemFilter) and step.stemfn is porter.stem and not step.ignore:
            chain.append("porter_stem")
        else:
            raise _untranslatable(step)
    return {
        "char_filter": char_filters,
        "tokenizer": {
            TEXT_ANALYZER: {
                "type": "pattern",
                "pattern": tokenizer.expression.pattern,
                "group": 0,  # the matches are the tokens (not the separators)
                "flags": "UNICODE_CHARACTER_CLASS",  # \w as Python's re has it
            }
        },
        "filter": token_filters,
        "analyzer": {
            TEXT_ANALYZER: {
                "type": "custom",
                "char_filter": list(char_filters),
                "tokenizer": TEXT_ANALYZER,
                "filter": chain,
            }
        },
    }


def _folding(charmap: dict[int, str], word: re.Pattern[str]) -> dict[str, Any]:
    """Whoosh folds each lowercased token's characters; OpenSearch has no token filter that
    maps characters, so a ``mapping`` character filter does it before the tokenizer. That is the
    same as long as it maps only characters that can be inside a word to word characters (so the
    tokens stay the same), and maps every case of each: an upper-case letter is mapped to what
    its lower case folds to (Whoosh lowercases first)."""
    mappings = {}
    for code, folded in charmap.items():
        lower = chr(code)
        if lower != lower.lower() or not (word.fullmatch(lower) and word.fullmatch(folded)):
            continue  # upper case, or never inside a token: Whoosh never folds it
        for variant in {lower, lower.upper()}:
            if len(variant) == 1 and variant.lower() == lower:
                mappings[variant] = folded
    return {
        "type": "mapping",
        "mappings": [f"{key} => {value}" for key, value in sorted(mappings.items())],
    }


def _untranslatable(step: object) -> ExportError:
    return ExportError(
        f"the index's text analyzer has a step ({step!r}) that the Elasticsearch export cannot "
        "translate; add it to searchidx/export.py"
    )


def _property(name: str, field_type: fields.FieldType) -> dict[str, Any]:
    """One Elasticsearch field for one Whoosh field."""
    if name in TYPE_OVERRIDES:
        prop = dict(TYPE_OVERRIDES[name])
    elif isinstance(field_type, fields.TEXT):
        prop = {"type": "text", "analyzer": TEXT_ANALYZER}
    elif isinstance(field_type, fields.DATETIME):  # before NUMERIC: DATETIME is one
        prop = {"type": "date"}
    elif isinstance(field_type, fields.NUMERIC):
        prop = {"type": _numeric_type(field_type)}
    elif isinstance(field_type, fields.BOOLEAN):
        prop = {"type": "boolean"}
    elif isinstance(field_type, fields.KEYWORD | fields.ID):
        prop = {"type": "keyword"}
        if _lowercases(field_type):
            prop["normalizer"] = LOWERCASE_NORMALIZER
    elif isinstance(field_type, fields.COLUMN):  # a column of exact values, such as topics
        prop = {"type": "keyword"}
    else:
        raise ExportError(
            f"the index has a field {name!r} of type {type(field_type).__name__} that the "
            "Elasticsearch export does not know; add it to searchidx/export.py"
        )
    if name in COPY_TO:
        prop["copy_to"] = COPY_TO[name]
    return prop


def _numeric_type(field_type: fields.NUMERIC) -> str:
    if field_type.numtype is float:
        return "double" if field_type.bits == 64 else "float"
    return "long" if field_type.bits == 64 else "integer"


def _lowercases(field_type: fields.KEYWORD | fields.ID) -> bool:
    return [token.text for token in whoosh_internals.analyzer(field_type)("Ab")] == ["ab"]


# The documents ----------------------------------------------------------------------------------


def to_source(article: Article) -> dict[str, Any]:
    """The Elasticsearch document of an article: the values the Whoosh document indexes, under
    the same names, plus the display fields. Empty facet values are left out (null), as they
    are not facet values in searchidx either.
    """
    record = article.to_dict()
    return {
        "path": article.path,
        "title": article.title,
        "excerpt": article.excerpt,
        "body": article.body,
        "topics": list(article.topics),
        "provider_name": article.provider.name or None,
        "domain": article.provider.domain.lower() or None,
        "category": article.category or None,
        "type": article.type or None,
        "published": article.published,
        "date": article.published_at.isoformat(),
        "quality": None if article.quality is None else _clamp(article.quality, 32),
        "tags": list(article.tags),
        "heat": None if article.heat is None else _clamp(article.heat, 64),
        "url": article.url or None,
        "original_url": article.original_url or None,
        "web_url": article.web_url or None,
        "images": record["images"],
        "related": record["related"],
    }


def bulk_pair(article: Article) -> bytes:
    """The two NDJSON lines that index one article: the action (with its id), the document."""
    action = {"index": {"_id": article.path}}
    return (_json_line(action) + _json_line(to_source(article))).encode()


def _json_line(value: Any) -> str:
    # json.dumps escapes newlines inside strings, so each value is exactly one line.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


def _clamp(value: int, bits: int) -> int:
    """Keep a number inside the signed range of the field, as the Whoosh index does."""
    limit: int = 2 ** (bits - 1)
    return max(-limit + 1, min(value, limit - 1))


def _indexed_articles(
    reader: IndexReader, content_root: Path, report: ExportReport
) -> Iterator[Article]:
    """Every live article in the index, in path order, with its whole body where provable."""
    if not reader.doc_count_all():
        return  # built from an empty folder: no segment, so no columns to read
    paths = reader.column_reader("path")
    states = reader.column_reader("state")
    records, bodies = records_of(reader), bodies_of(reader)
    for docnum in sorted(reader.all_doc_ids(), key=lambda docnum: paths[docnum]):
        article = from_record(records[docnum], bodies[docnum])
        if len(article.path.encode()) > MAX_ID_BYTES:
            raise ExportError(
                f"{article.path}: the path is over {MAX_ID_BYTES} bytes, too long for an "
                "Elasticsearch _id; move the file to a shorter path and sync"
            )
        if len(article.body) >= STORED_BODY_CHARS:
            state = FileState.unpacked(states[docnum])
            body = _indexed_body(content_root, article.path, state)
            if body is None:
                report.bodies_cut.append(article.path)
            else:
                article = dataclasses.replace(article, body=body)
        yield article


def _indexed_body(root: Path, path: str, state: FileState) -> str | None:
    """The whole body of a file, if the file is still exactly what was indexed."""
    try:
        data, _ = read_bounded(root, path)
        if content_hash(data) != state.digest:
            return None
        return parse_article(decode_article(data, path), path).body
    except ArticleError:
        return None


# Files --------------------------------------------------------------------------------------------


class _BulkWriter:
    """Bulk files of at most ``max_bytes``, split only between one action and the next."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.files: list[BulkFile] = []
        self._out: Any = None
        self._documents = 0
        self._bytes = 0

    def add(self, path: str, pair: bytes) -> None:
        if len(pair) > self.max_bytes:
            raise ExportError(
                f"{path}: its bulk entry is {len(pair):,} bytes, over the {self.max_bytes:,}-byte "
                "file size; raise --max-bytes"
            )
        if self._out is None or self._bytes + len(pair) > self.max_bytes:
            self._next_file()
        self._out.write(pair)
        self._documents += 1
        self._bytes += len(pair)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self.files.append(BulkFile(Path(self._out.name).name, self._documents, self._bytes))
            self._out = None

    def _next_file(self) -> None:
        self.close()
        self._out = open(self.folder / BULK_FILE.format(len(self.files) + 1), "wb")  # noqa: SIM115
        self._documents = 0
        self._bytes = 0


def _manifest(
    location: str, generation: str, report: ExportReport, max_bytes: int
) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "index": location,
        "generation": generation,
        "schema_version": SCHEMA_VERSION,
        "documents": report.documents,
        "max_bytes": max_bytes,
        "mapping": MAPPING_FILE,
        "bulk_files": [
            {"name": file.name, "documents": file.documents, "bytes": file.bytes}
            for file in report.files
        ],
        "bodies_cut": report.bodies_cut,
    }


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _check_target(target: Path, force: bool) -> None:
    """Refuse, before any work, a target that is a file, or holds something we would hide."""
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target} is a file; give the export a folder")
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not force:
        raise ExportError(
            f"{target}/ is not empty; choose a new or empty folder, or pass --force to replace "
            "a previous export"
        )
    if not _is_export(target):
        raise ExportError(
            f"{target}/ is not a searchidx export (no {MANIFEST_FILE} of ours); "
            "--force replaces only a previous export"
        )


def _is_export(folder: Path) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == EXPORT_FORMAT


@contextlib.contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A hidden folder beside the target that the export is written into; gone on failure."""
    path = target.parent / f".{target.name}.export-{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)  # already renamed away after success


def _publish(staging: Path, target: Path) -> None:
    """Rename the finished export into place; a previous export is swapped out, then deleted."""
    previous: Path | None = None
    if target.is_dir() and any(target.iterdir()):
        previous = target.with_name(f".{target.name}.previous-{os.getpid()}")
        os.rename(target, previous)
    elif target.is_dir():
        target.rmdir()
    os.rename(staging, target)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
