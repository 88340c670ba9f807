"""Typed records for news articles, as parsed from their files and as stored in the index.

Everything downstream (indexer, search service, CLI, web page) works on these records, never on
raw YAML. The ``secured`` blob of the source files has no field here on purpose: it is dropped
at parse time, so nothing can index, store, print or return it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, cast


@dataclass(frozen=True, slots=True)
class Provider:
    name: str = ""
    domain: str = ""


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    width: int | None = None
    height: int | None = None
    title: str = ""


@dataclass(frozen=True, slots=True)
class RelatedArticle:
    """Another outlet's coverage of the same story, listed under an article."""

    title: str
    url: str = ""
    excerpt: str = ""
    published_at: datetime | None = None
    provider: Provider = field(default_factory=Provider)
    quality: int | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """One article file: its front matter, its Markdown body and where it lives.

    ``path`` is relative to the content folder, with forward slashes; it is the article's
    identity in the index.
    """

    path: str
    title: str
    published_at: datetime
    excerpt: str = ""
    body: str = ""
    provider: Provider = field(default_factory=Provider)
    topics: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    category: str = ""
    type: str = "article"
    quality: int | None = None
    heat: int | None = None
    published: bool = True
    original_url: str = ""
    web_url: str = ""
    images: tuple[Image, ...] = ()
    related: tuple[RelatedArticle, ...] = ()

    @property
    def url(self) -> str:
        """The link a reader follows: the web page if there is one, else the original."""
        return self.web_url or self.original_url

    @property
    def image(self) -> Image | None:
        return self.images[0] if self.images else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (dates as ISO 8601 strings)."""
        return cast(dict[str, Any], _jsonable(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Article:
        """The inverse of :meth:`to_dict`, used to rebuild hits from the stored record."""
        return cls(
            path=data["path"],
            title=data["title"],
            published_at=datetime.fromisoformat(data["published_at"]),
            excerpt=data.get("excerpt", ""),
            body=data.get("body", ""),
            provider=Provider(**data.get("provider", {})),
            topics=tuple(data.get("topics", ())),
            tags=tuple(data.get("tags", ())),
            category=data.get("category", ""),
            type=data.get("type", "article"),
            quality=data.get("quality"),
            heat=data.get("heat"),
            published=data.get("published", True),
            original_url=data.get("original_url", ""),
            web_url=data.get("web_url", ""),
            images=tuple(Image(**image) for image in data.get("images", ())),
            related=tuple(_related_from_dict(item) for item in data.get("related", ())),
        )


def _related_from_dict(data: dict[str, Any]) -> RelatedArticle:
    published_at = data.get("published_at")
    return RelatedArticle(
        title=data["title"],
        url=data.get("url", ""),
        excerpt=data.get("excerpt", ""),
        published_at=datetime.fromisoformat(published_at) if published_at else None,
        provider=Provider(**data.get("provider", {})),
        quality=data.get("quality"),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value
