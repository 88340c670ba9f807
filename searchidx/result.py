"""The typed search result, and its JSON form (the same for ``query --json`` and the web API)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from searchidx.articles import Article, provider_dict, related_dict
from searchidx.marks import Highlighted, to_html
from searchidx.request import SearchRequest
from searchidx.timestamps import iso_timestamp

if TYPE_CHECKING:
    from markupsafe import Markup


class Explanation(NamedTuple):
    """The parts of a hit's score (see :mod:`searchidx.ranking`): ``best = text * freshness x
    quality``. ``fields`` splits the text score by field (title, excerpt, body, topic,
    provider; ``other`` for parts of a query not tied to a field, such as ``NOT x``); it is
    None when the query's scores come from Whoosh whole (then only ``text`` is known). Without
    query text, ``text`` is None and ``best`` is freshness * quality."""

    text: float | None
    fields: Mapping[str, float] | None
    freshness: float
    quality: float
    age_days: float
    quality_percentile: float | None
    best: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": _rounded(self.text),
            "fields": None
            if self.fields is None
            else {name: _rounded(part) for name, part in self.fields.items()},
            "freshness": _rounded(self.freshness),
            "quality": _rounded(self.quality),
            "age_days": round(self.age_days, 2),
            "quality_percentile": _rounded(self.quality_percentile),
            "best": _rounded(self.best),
        }


#: What a kept result weighs, about (the bytes its result cache counts, see
#: :meth:`SearchResult.kept_bytes`), from the deep sizes of the bench's results at 100,000
#: articles: a hit some 3.5 KB with its article (held by the hit once the snapshot's cache of
#: shown articles has let it go), plus its title and excerpt three times over (the article's,
#: marked, as HTML); a facet's listed value (its count and whether it is chosen; the value
#: itself is the index's) 40 bytes; the request and the rest 2 KB.
HIT_BYTES = 3500
HIT_TEXT_COPIES = 3
FACET_VALUE_BYTES = 40
RESULT_BYTES = 2000


@dataclass(frozen=True)
class MarkedArticle:
    """An article as a page shows it, its title and excerpt with words marked (the excerpt a
    body snippet when only the body has them): a hit, or the article the similar ones are
    like. ``article`` has no body: what a page shows of it is in ``marked_excerpt``."""

    article: Article
    marked_title: Highlighted
    marked_excerpt: Highlighted

    # Rendered once an article: a cached result's JSON is written again for every request of it.
    @functools.cached_property
    def title_html(self) -> Markup:
        return to_html(self.marked_title)

    @functools.cached_property
    def excerpt_html(self) -> Markup:
        return to_html(self.marked_excerpt)

    def kept_bytes(self) -> int:
        """About the bytes it holds (see :data:`HIT_BYTES`)."""
        return HIT_BYTES + HIT_TEXT_COPIES * (len(self.article.title) + len(self.article.excerpt))

    def to_dict(self) -> dict[str, Any]:
        """Its JSON object: a hit's (the same in every document that lists articles), its
        score null."""
        article, image = self.article, self.article.image
        return {
            "path": article.path,
            "title": article.title,
            "url": article.url,
            "provider": provider_dict(article.provider),
            "published_at": iso_timestamp(article.published_at),
            "quality": article.quality,
            "topics": list(article.topics),
            "category": article.category,
            "type": article.type,
            "published": article.published,
            "image": None
            if image is None
            else {"url": image.url, "width": image.width, "height": image.height},
            "related": [related_dict(item) for item in article.related],
            "score": None,
            "title_html": self.title_html,
            "excerpt_html": self.excerpt_html,
        }


@dataclass(frozen=True)
class Hit(MarkedArticle):
    """One article on the result page: the query's matches marked, its score (None in an
    order without one) and, if asked for, how the score was made."""

    score: float | None
    explain: Explanation | None = None

    @classmethod
    def made(
        cls,
        article: Article,
        marked_title: Highlighted,
        marked_excerpt: Highlighted,
        score: float | None,
        explain: Explanation | None,
    ) -> Hit:
        """The hit of these fields, set in its ``__dict__`` at once, not one by one through
        ``object.__setattr__`` as the frozen ``__init__`` sets them (every hit of a page is
        made: 1.9 us so, 0.9 this way)."""
        hit = object.__new__(cls)
        hit.__dict__.update(
            article=article,
            marked_title=marked_title,
            marked_excerpt=marked_excerpt,
            score=score,
            explain=explain,
        )
        return hit

    def to_dict(self) -> dict[str, Any]:
        found = super().to_dict()
        found["score"] = _rounded(self.score)
        return found | ({"explain": self.explain.to_dict()} if self.explain else {})


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int
    selected: bool


class Facet(NamedTuple):
    """Counts for one facet: the values ``listed``, in order, each one's count and whether the
    request chose it, as three tuples, not a :class:`FacetValue` each: a kept result holds a
    hundred values or so (the months' most), which as objects weighed 19 KB of its 28 at
    100,000 articles. ``more`` is how many other values have hits but are not listed."""

    name: str
    listed: tuple[str, ...]
    counts: tuple[int, ...]
    chosen: tuple[bool, ...]
    more: int = 0

    @property
    def values(self) -> tuple[FacetValue, ...]:
        """Each listed value, made when asked for (the page, the terminal)."""
        return tuple(map(FacetValue, self.listed, self.counts, self.chosen))

    def to_dict(self) -> dict[str, Any]:
        """Its JSON object, made from the tuples (no :class:`FacetValue` made)."""
        return {
            "values": [
                {"value": value, "count": count, "selected": chosen}
                for value, count, chosen in zip(self.listed, self.counts, self.chosen, strict=True)
            ],
            "more": self.more,
        }


class Correction(NamedTuple):
    """A query rewritten from the index's own vocabulary (did-you-mean): ``text`` is the new
    query, ``marked`` the same text with the corrected words marked."""

    text: str
    marked: Highlighted


class Relaxation(NamedTuple):
    """A query of required words that found nothing, run with fewer of them: ``kept`` are the
    query texts run (words, phrases, ``field:value``), ``dropped`` the words left out of the
    query's ``words``; ``loosened`` when its phrases and joined words (``covid-19``) were
    searched as separate words."""

    words: int
    kept: tuple[str, ...]
    dropped: tuple[str, ...]
    loosened: bool

    @property
    def message(self) -> str:
        if not self.dropped:
            return (
                f"No article has these words side by side as typed; showing articles with "
                f"all {self.words} of them."
            )
        kept, dropped = self.words - len(self.dropped), ", ".join(self.dropped)
        return (
            f"No article has all {self.words} words; showing articles with {kept} of them "
            f"(without {dropped})."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "words": self.words,
            "kept": list(self.kept),
            "dropped": list(self.dropped),
            "loosened": self.loosened,
            "message": self.message,
        }


@dataclass(frozen=True)
class Suggestion:
    """An autocomplete completion: a topic, a provider, or a word from titles."""

    text: str
    kind: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "kind": self.kind, "count": self.count}


@dataclass(frozen=True)
class SearchResult:
    request: SearchRequest
    total: int
    hits: tuple[Hit, ...]
    facets: tuple[Facet, ...]
    #: The query text that produced the hits: the request's, or a retry's (see ``retry``).
    ran_query: str
    #: ``"corrected"``, ``"relaxed"`` (see ``relaxed``) or ``"fuzzy"`` when the request's own
    #: query found nothing.
    retry: str | None
    did_you_mean: Correction | None
    took_ms: float
    #: How stray syntax in the query text was read (an unclosed quote ignored, ...).
    notes: tuple[str, ...] = ()
    relaxed: Relaxation | None = None

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.request.per_page))

    def facet(self, name: str) -> Facet | None:
        return next((facet for facet in self.facets if facet.name == name), None)

    def kept_bytes(self) -> int:
        """About the bytes it holds, told from its hits' texts and its facets' values, not
        walked (see :data:`HIT_BYTES`): a page of 100 hits with 200 values a facet weighs some
        ten times the 10 hits and hundred values of most."""
        listed = sum(len(facet.listed) for facet in self.facets)
        hits = sum(hit.kept_bytes() for hit in self.hits)
        return RESULT_BYTES + hits + FACET_VALUE_BYTES * listed

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``searchidx query --json`` and ``GET /api/search``."""
        request = self.request
        return {
            "query": request.text,
            "ran_query": self.ran_query,
            "retry": self.retry,
            "did_you_mean": self.did_you_mean.text if self.did_you_mean else None,
            "notes": list(self.notes),
            "relaxed": self.relaxed.to_dict() if self.relaxed else None,
            "sort": request.effective_sort.value,
            "half_life_days": request.half_life_days,
            "filters": {name: list(values) for name, values in request.filters.items()},
            "from": iso_timestamp(request.date_from),
            "to": iso_timestamp(request.date_to),
            "min_quality": request.min_quality,
            "max_quality": request.max_quality,
            "page": request.page,
            "per_page": request.per_page,
            "pages": self.pages,
            "total": self.total,
            "took_ms": round(self.took_ms, 2),
            "hits": [hit.to_dict() for hit in self.hits],
            "facets": {facet.name: facet.to_dict() for facet in self.facets},
        }


def _rounded(number: float | None) -> float | None:
    return None if number is None else round(number, 4)
