"""Similar articles: the rest of an article's story, from the index alone (no embeddings).

``SearchService.similar(SimilarRequest(path))`` answers with a :class:`SimilarResult`; the CLI
(``searchidx similar``), the API (``/api/similar``) and the page render it. How the articles are
found and ranked (:func:`find`):

1. **Key terms.** The article's title, excerpt and stored body are analysed as the index
   analyses them (stems, stop words dropped). Each term weighs its count in each field times
   the field's boost (title 3, excerpt 1, body 0.5, as in searching) times its rarity (idf), so
   names, places and figures of the story outweigh the words of every article. Terms in more
   than :data:`MAX_DOCUMENT_SHARE` of the articles say nothing and are skipped, as are terms
   of this article alone (they cannot match another); the heaviest
   :data:`MAX_TERMS` are kept while their documents, summed over the fields, stay within
   :data:`MAX_POSTINGS` (bounded work at any index size).
2. **Text score.** Those terms as one BM25 OR query over the title, excerpt and body (each
   term boosted by its weight, in the fields that have it), scored from the cached posting
   lists like any search.
3. **The story's signals.** The same story is usually covered within days, under the same
   topics: the text score is multiplied by a date factor (up to 1 + :data:`DATE_WEIGHT` for the
   same moment, halving every :data:`DATE_HALF_LIFE_DAYS` apart) and a topic factor (up to
   1 + :data:`TOPIC_WEIGHT` when every topic of the article is shared). Another outlet is not
   favoured over the same one: the provider changes nothing (a sister outlet's copy of the same
   story is as similar as any). ``bench/similar.py`` measures the blend against the plain OR
   query of the title and excerpt words.

The article itself is never among the results.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from whoosh import query

from searchidx.articles import Article
from searchidx.defaults import DEFAULT_SIMILAR, MAX_SIMILAR
from searchidx.errors import QueryError
from searchidx.ranking import FIELD_BOOSTS, Page, top_scored
from searchidx.result import RESULT_BYTES, Hit, MarkedArticle
from searchidx.schema import ANALYZER
from searchidx.snapshot import IndexSnapshot

#: Longest path accepted (a path is an index key; longer ones cannot exist).
MAX_PATH_CHARS = 4096
#: The fields an article's words are read from and searched in, with their weights.
TEXT_FIELDS = {name: FIELD_BOOSTS[name] for name in ("title", "excerpt", "body")}
#: Key terms kept (as a search's distinct words are capped).
MAX_TERMS = 32
#: A term in more than this share of the articles is not a key term.
MAX_DOCUMENT_SHARE = 0.1
#: Documents the key terms' posting lists may hold, summed over the fields searched.
MAX_POSTINGS = 150_000
#: How much the same publication moment multiplies the text score (at most x2)...
DATE_WEIGHT = 1.0
#: ... halving for every this many days between the two articles.
DATE_HALF_LIFE_DAYS = 2.0
#: How much sharing every topic of the article multiplies the text score (at most x1.5).
TOPIC_WEIGHT = 0.5

_MICROSECONDS_PER_DAY = 86_400 * 1_000_000


class UnknownArticle(QueryError):
    """No article at that path in the index (the web answers 404)."""


@dataclass(frozen=True)
class SimilarRequest:
    """Articles similar to the one at ``path`` (relative to the content folder, as search
    hits give it); ``limit`` of them, most similar first."""

    path: str
    limit: int = DEFAULT_SIMILAR

    def __post_init__(self) -> None:
        if not self.path.strip():
            raise QueryError(
                "name the article: path is the 'path' of a search hit, such as 2022/000123_9f1c.md",
                "path",
            )
        if len(self.path) > MAX_PATH_CHARS:
            raise QueryError(f"path is longer than {MAX_PATH_CHARS:,} characters", "path")
        if not 1 <= self.limit <= MAX_SIMILAR:
            message = f"limit must be between 1 and {MAX_SIMILAR}, not {self.limit}"
            raise QueryError(message, "limit")


@dataclass(frozen=True)
class SimilarResult:
    """The article asked about and its most similar articles (``hits``), the key terms marked
    in both."""

    request: SimilarRequest
    article: MarkedArticle
    hits: tuple[Hit, ...]
    #: The key terms searched for (stems), heaviest first.
    terms: tuple[str, ...]
    took_ms: float

    def kept_bytes(self) -> int:
        """About the bytes it holds (see :meth:`SearchResult.kept_bytes`)."""
        hits = sum(hit.kept_bytes() for hit in self.hits)
        return RESULT_BYTES + self.article.kept_bytes() + hits

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``searchidx similar --json`` and ``GET /api/similar``; hits
        are the same objects as a search's."""
        return {
            "path": self.request.path,
            "limit": self.request.limit,
            "article": self.article.to_dict(),
            "terms": list(self.terms),
            "total": len(self.hits),
            "took_ms": round(self.took_ms, 2),
            "hits": [hit.to_dict() for hit in self.hits],
        }


@dataclass(frozen=True)
class Found:
    """What :func:`find` found: the article's docnum, the page of (docnum, score), the terms."""

    docnum: int
    page: Page
    terms: tuple[str, ...]


def find(snapshot: IndexSnapshot, path: str, limit: int) -> Found:
    """The ``limit`` articles most similar to the one at ``path`` (see the module's
    description); raises :class:`UnknownArticle` if there is none."""
    docnum = document_number(snapshot, path)
    terms = key_terms(snapshot, snapshot.article(docnum))
    if not terms:
        return Found(docnum, [], ())
    matches = snapshot.match(terms_query(snapshot, terms), scored=True)
    assert matches.scores is not None  # a plain OR of terms is always scored here
    scores = matches.scores * _date_factors(snapshot, docnum) * _topic_factors(snapshot, docnum)
    candidates = matches.mask.copy()
    candidates[docnum] = False
    return Found(docnum, top_scored(scores, candidates, 0, limit), tuple(terms))


def document_number(snapshot: IndexSnapshot, path: str) -> int:
    """The live docnum of the article at ``path``."""
    docs = [docnum for docnum in snapshot.documents_at(path) if snapshot.live[docnum]]
    if not docs:
        raise UnknownArticle(
            f"no article at {path!r} in the index; give the path of a search hit (the 'path' "
            "of searchidx query --json or /api/search), relative to the content folder",
            "path",
        )
    return docs[-1]


def key_terms(snapshot: IndexSnapshot, article: Article) -> dict[str, float]:
    """The article's key terms (stems) and their weights, heaviest first, within the caps."""
    counts: dict[str, float] = defaultdict(float)
    for field, boost in TEXT_FIELDS.items():
        for token in ANALYZER(getattr(article, field)):
            counts[token.text] += boost
    size = max(1, int(snapshot.live.sum()))
    weighted: list[tuple[float, str, int]] = []
    for term, count in counts.items():
        found = snapshot.document_frequencies(tuple(TEXT_FIELDS), term)
        documents = max(found)
        if documents <= 1 or documents > MAX_DOCUMENT_SHARE * size:
            continue  # in this article alone, or in too many to tell articles apart
        idf = math.log(1 + size / (1 + documents))
        weighted.append((count * idf, term, sum(found)))
    weighted.sort(key=lambda item: (-item[0], item[1]))
    kept: dict[str, float] = {}
    postings = 0
    for weight, term, documents in weighted:
        if len(kept) == MAX_TERMS:
            break
        if postings + documents > MAX_POSTINGS:
            continue
        postings += documents
        kept[term] = weight
    return kept


def terms_query(snapshot: IndexSnapshot, terms: dict[str, float]) -> query.Query:
    """The OR of the terms in each text field having them, each boosted by its weight (the
    heaviest 1)."""
    heaviest, fields = max(terms.values()), tuple(TEXT_FIELDS)
    parts: list[query.Query] = []
    for term, weight in terms.items():
        counts = snapshot.document_frequencies(fields, term)
        parts += [
            query.Term(field, term, boost=TEXT_FIELDS[field] * weight / heaviest)
            for field, found in zip(fields, counts, strict=True)
            if found
        ]
    return query.Or(parts)


def _date_factors(snapshot: IndexSnapshot, docnum: int) -> np.ndarray:
    """1 + DATE_WEIGHT for the same moment, halving every DATE_HALF_LIFE_DAYS apart."""
    apart = np.abs(snapshot.dates - snapshot.dates[docnum]) / _MICROSECONDS_PER_DAY
    factors: np.ndarray = 1.0 + DATE_WEIGHT * np.exp2(-apart / DATE_HALF_LIFE_DAYS)
    return factors


def _topic_factors(snapshot: IndexSnapshot, docnum: int) -> np.ndarray:
    """1 + TOPIC_WEIGHT x the share of the article's topics each document has too."""
    table = snapshot.facet("topic")
    own = table.value_ids[table.doc_ids == docnum]
    factors = np.ones(snapshot.size)
    if not len(own):
        return factors
    shared = np.isin(table.value_ids, own)
    counts = np.bincount(table.doc_ids[shared], minlength=snapshot.size)
    return factors + TOPIC_WEIGHT * counts / len(own)
