"""tantivy through its Python bindings (the optional ``bench`` extra), set up fairly.

Text fields use the ``en_stem`` tokenizer (Snowball English stemmer; searchidx uses Porter, so
multi-word counts may differ slightly); facets, sorts and filters are fast fields with the
``raw`` tokenizer, counted with a terms aggregation. The quality sort uses one precomputed
fast field (quality, then date) because tantivy orders by a single field. The writer gets two
threads: this machine has two cores, and searchidx's build uses both too.

A page needs the path of each hit, and the highlighted kind its title and excerpt: only those
are stored, so a hit's fetch decompresses a block of small records, not of whole bodies.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import UTC
from pathlib import Path
from typing import Any

from bench.corpus import Doc
from bench.engines.base import FACET_SIZE, FIELD_BOOSTS, Outcome, PeerEngine
from bench.queries import BenchQuery

try:
    import tantivy
except ImportError:  # the optional "bench" extra
    _INSTALLED = False
else:
    _INSTALLED = True

_TEXT_FIELDS = ("title", "excerpt", "body", "topic", "provider")
_HIGHLIGHTED = ("title", "excerpt")
_FACET_FIELDS = {
    "topic": "topics",
    "provider": "provider_name",
    "category": "category",
    "type": "type",
    "published": "published",
    "month": "month",
}
_WRITER_HEAP = 256 * 1024 * 1024
_THREADS = 2
#: The quality sort key: quality in the high bits, seconds since 1970 in the low ones.
_SECONDS_BITS = 34


def _schema() -> Any:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("path", stored=True, tokenizer_name="raw")
    for name in _TEXT_FIELDS:
        builder.add_text_field(name, stored=name in _HIGHLIGHTED, tokenizer_name="en_stem")
    for name in _FACET_FIELDS.values():
        builder.add_text_field(name, tokenizer_name="raw", fast=True)
    builder.add_date_field("date", indexed=True, fast=True)
    builder.add_integer_field("quality_rank", fast=True)
    return builder.build()


class TantivyEngine(PeerEngine):
    name = "tantivy"

    def __init__(self, index_dir: Path) -> None:
        super().__init__(index_dir)
        self.path = index_dir / "tantivy"
        self.index: Any = None
        self.searcher: Any = None
        self.schema: Any = None

    @classmethod
    def available(cls) -> bool:
        return _INSTALLED

    def _create(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        tantivy.Index(_schema(), path=str(self.path))

    def _write(self, upserts: Iterable[Doc], removed: list[str], fresh: bool) -> int:
        index = tantivy.Index(_schema(), path=str(self.path), reuse=True)
        writer = index.writer(_WRITER_HEAP, _THREADS)
        for path in removed:
            writer.delete_documents_by_term("path", path)
        for doc in upserts:
            if not fresh:
                writer.delete_documents_by_term("path", doc.path)
            writer.add_document(_document(doc))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        return index.searcher().num_docs

    def open(self) -> None:
        self.index = tantivy.Index.open(str(self.path))
        self.schema = self.index.schema
        self.searcher = self.index.searcher()

    def close(self) -> None:
        self.searcher = self.index = None

    def search(self, query: BenchQuery) -> Outcome:
        searcher = self.searcher
        parsed = self._query(query)
        sort = query.effective_sort
        options: dict[str, Any] = {"limit": query.per_page, "offset": query.offset, "count": True}
        if sort == "newest":
            options.update(order_by_field="date", order=tantivy.Order.Desc)
        elif sort == "quality":
            options.update(order_by_field="quality_rank", order=tantivy.Order.Desc)
        result = searcher.search(parsed, **options)
        docs = [searcher.doc(address) for _, address in result.hits]
        highlighted = 0
        if query.highlight:
            for field in _HIGHLIGHTED:
                generator = tantivy.SnippetGenerator.create(searcher, parsed, self.schema, field)
                highlighted += sum(
                    "<b>" in generator.snippet_from_doc(doc).to_html() for doc in docs
                )
        facets = self._facets(parsed) if query.facets else None
        return Outcome(result.count, [doc["path"][0] for doc in docs], facets, highlighted)

    def _query(self, query: BenchQuery) -> Any:
        Query = tantivy.Query
        clauses = []
        if query.terms:
            clauses.append(
                self.index.parse_query(
                    query.text,
                    list(_TEXT_FIELDS),
                    field_boosts=FIELD_BOOSTS,
                    conjunction_by_default=True,
                )
            )
        if query.date_from is not None or query.date_to is not None:
            clauses.append(
                Query.range_query(
                    self.schema, "date", tantivy.FieldType.Date, query.date_from, query.date_to
                )
            )
        if query.topics:
            clauses.append(Query.term_set_query(self.schema, "topics", list(query.topics)))
        if query.providers:
            clauses.append(
                Query.term_set_query(self.schema, "provider_name", list(query.providers))
            )
        if not clauses:
            return Query.all_query()
        if len(clauses) == 1:
            return clauses[0]
        return Query.boolean_query([(tantivy.Occur.Must, clause) for clause in clauses])

    def _facets(self, parsed: Any) -> dict[str, list[tuple[str, int]]]:
        aggregations = {
            name: {"terms": {"field": field, "size": 1000 if name == "month" else FACET_SIZE}}
            for name, field in _FACET_FIELDS.items()
        }
        answer = self.searcher.aggregate(parsed, aggregations)
        facets = {
            name: [(bucket["key"], bucket["doc_count"]) for bucket in answer[name]["buckets"]]
            for name in _FACET_FIELDS
        }
        facets["month"].sort()
        return facets


def _document(doc: Doc) -> Any:
    seconds = int(doc.date.timestamp())
    quality = min(max(doc.quality, -1), 2**28)  # a missing quality sorts last
    return tantivy.Document(
        path=doc.path,
        title=doc.title,
        excerpt=doc.excerpt,
        body=doc.body,
        topic=doc.topic_text,
        provider=doc.provider_text,
        topics=list(doc.topics),
        provider_name=doc.provider_name,
        category=doc.category,
        type=doc.type,
        published=doc.published_value,
        month=doc.month,
        date=doc.date.astimezone(UTC),
        quality_rank=(quality << _SECONDS_BITS) + seconds,
    )
