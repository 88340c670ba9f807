"""The Whoosh schema, and how an :class:`Article` becomes an index document.

Two kinds of fields, on purpose:

* text fields (``title``, ``excerpt``, ``body``, ``topic``, ``provider``) are analysed with a
  stemming analyzer and scored; they are what the query language searches;
* facet fields (``topics``, ``provider_name``, ``category``, ``type``, ``published``, ``date``,
  ``quality``) are exact values kept in Whoosh columns. Facet counts, filters and sorts read
  the columns once per searcher into arrays (see :mod:`searchidx.catalog`) instead of
  expanding terms on every search, which is where naive Whoosh spends its time.

The display record (everything but ``secured``) is one stored JSON blob, so a hit is one read.
"""

from __future__ import annotations

import json
from typing import Any

from whoosh import columns, fields
from whoosh.analysis import StemmingAnalyzer

from searchidx.articles import Article
from searchidx.content import FileState

#: Bump when the schema or the document mapping changes; an index of another version must be
#: rebuilt (``searchidx rebuild``) and says so.
SCHEMA_VERSION = 1

#: Separates the values of the multi-valued ``topics`` column; cannot occur in YAML text.
VALUE_SEPARATOR = "\x1f"

#: Column value for an article without a quality: below every real one, so it sorts last.
QUALITY_MISSING = -(2**31)

#: Body text kept in the stored record for snippets; the whole body is still indexed.
STORED_BODY_CHARS = 4000

#: The analyzer of every text field. An unbounded stem cache: news vocabulary is small.
ANALYZER = StemmingAnalyzer(cachesize=-1)

#: How much a match in each text field counts; titles weigh most (used by the query parser).
FIELD_BOOSTS = {"title": 3.0, "topic": 2.0, "provider": 1.5, "excerpt": 1.0, "body": 0.5}


def build_schema() -> fields.Schema:
    return fields.Schema(
        # Identity and sync state.
        path=fields.ID(unique=True, sortable=True),
        state=fields.COLUMN(columns.VarBytesColumn()),
        record=fields.STORED(),
        # Searched text.
        title=fields.TEXT(analyzer=ANALYZER, spelling=True),
        excerpt=fields.TEXT(analyzer=ANALYZER),
        body=fields.TEXT(analyzer=ANALYZER),
        topic=fields.TEXT(analyzer=ANALYZER),
        provider=fields.TEXT(analyzer=ANALYZER),
        domain=fields.KEYWORD(lowercase=True),
        # Facets, filters and sorts: exact values in columns.
        topics=fields.COLUMN(columns.VarBytesColumn()),
        provider_name=fields.ID(sortable=columns.RefBytesColumn()),
        category=fields.KEYWORD(lowercase=True, sortable=columns.RefBytesColumn()),
        type=fields.KEYWORD(lowercase=True, sortable=columns.RefBytesColumn()),
        published=fields.ID(sortable=columns.RefBytesColumn()),
        date=fields.DATETIME(sortable=True),
        quality=fields.NUMERIC(int, bits=32, signed=True, sortable=True),
    )


def to_document(article: Article, state: FileState) -> dict[str, Any]:
    """The fields Whoosh indexes for one article."""
    record = article.to_dict()
    record["body"] = article.body[:STORED_BODY_CHARS]
    return {
        "path": article.path,
        "state": state.encode().encode(),
        "record": json.dumps(record, ensure_ascii=False, separators=(",", ":")),
        "title": article.title,
        "excerpt": article.excerpt,
        "body": article.body,
        "topic": "\n".join(article.topics),
        "provider": " ".join(filter(None, [article.provider.name, article.provider.domain])),
        "domain": article.provider.domain.lower(),
        "topics": VALUE_SEPARATOR.join(article.topics).encode(),
        "provider_name": article.provider.name,
        "category": article.category.lower(),
        "type": article.type.lower(),
        "published": "true" if article.published else "false",
        "date": article.published_at.replace(tzinfo=None),
        "quality": QUALITY_MISSING if article.quality is None else _clamp(article.quality),
    }


def from_record(stored: str) -> Article:
    """The article as stored (body cut to :data:`STORED_BODY_CHARS`)."""
    return Article.from_dict(json.loads(stored))


def _clamp(quality: int) -> int:
    return max(QUALITY_MISSING + 1, min(quality, 2**31 - 1))
