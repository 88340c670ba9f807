"""Typed records for news articles, as parsed from their files and as stored in the index.

Everything downstream (indexer, search service, CLI, web page) works on these records, never on
raw YAML. The ``secured`` blob of the source files has no field here on purpose: it is dropped
at parse time, so nothing can index, store, print or return it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar, cast

_Record = TypeVar("_Record")


def _builder(cls: type[_Record]) -> Callable[..., _Record]:
    """A function making a ``cls`` (a frozen dataclass with slots) of its fields' values, all
    given in order, without the ``object.__setattr__`` call a field of a frozen dataclass's
    ``__init__``: the values go on a plain object of the same slots, which then becomes a
    ``cls`` (every hit builds its article, 2.2 us so, 0.4 this way). Generated as dataclasses
    generates ``__init__``, from ``cls``'s own fields: nothing here names them."""
    names = cast(tuple[str, ...], cls.__slots__)  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {"_Values": type("_Values", (), {"__slots__": names}), "cls": cls}
    settings = "".join(f"    made.{name} = {name}\n" for name in names)
    exec(  # source made here of the dataclass's own field names
        f"def build({', '.join(names)}):\n    made = _Values()\n{settings}"
        "    made.__class__ = cls\n    return made\n",
        namespace,
    )
    return cast(Callable[..., _Record], namespace["build"])


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

    def without_body(self) -> Article:
        """The article as a hit keeps it, once its snippet is made (see :func:`highlight.hit`)."""
        return replace(self, body="")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (dates as ISO 8601 strings), written out: ``dataclasses.asdict``
        deep-copies every value (0.08 ms per article; this, 0.006)."""
        return {
            "path": self.path,
            "title": self.title,
            "published_at": self.published_at.isoformat(),
            "excerpt": self.excerpt,
            "body": self.body,
            "provider": provider_dict(self.provider),
            "topics": list(self.topics),
            "tags": list(self.tags),
            "category": self.category,
            "type": self.type,
            "quality": self.quality,
            "heat": self.heat,
            "published": self.published,
            "original_url": self.original_url,
            "web_url": self.web_url,
            "images": [
                {
                    "url": image.url,
                    "width": image.width,
                    "height": image.height,
                    "title": image.title,
                }
                for image in self.images
            ],
            "related": [related_dict(item) for item in self.related],
        }

    def to_row(self) -> list[Any]:
        """Its fields' JSON values in the fields' order, without their names: a provider as
        ``[name, domain]``, an image as ``[url, width, height, title]``, a related article as
        its fields' values in order (the display record's form, see
        :func:`~searchidx.schema.display_record`; read back by :meth:`from_row`)."""
        return [
            self.path,
            self.title,
            self.published_at.isoformat(),
            self.excerpt,
            self.body,
            _provider_row(self.provider),
            list(self.topics),
            list(self.tags),
            self.category,
            self.type,
            self.quality,
            self.heat,
            self.published,
            self.original_url,
            self.web_url,
            [[image.url, image.width, image.height, image.title] for image in self.images],
            [
                [
                    item.title,
                    item.url,
                    item.excerpt,
                    item.published_at.isoformat() if item.published_at else None,
                    _provider_row(item.provider),
                    item.quality,
                ]
                for item in self.related
            ],
        ]

    @classmethod
    def from_row(cls, row: list[Any]) -> Article:
        """The inverse of :meth:`to_row`: every hit not yet shown builds its article of its
        record, 3.5 us so where :meth:`from_dict` took 4.6 (nothing looked up by name), of
        JSON orjson reads in 1.6 us where the object took 2.9."""
        (path, title, published_at, excerpt, body, provider, topics, tags) = row[:8]
        return _build_article(
            path,
            title,
            datetime.fromisoformat(published_at),
            excerpt,
            body,
            _provider(*provider),
            tuple(topics),
            tuple(tags),
            *row[8:15],  # category, type, quality, heat, published, original_url, web_url
            tuple([_build_image(*image) for image in row[15]]) if row[15] else (),
            tuple(map(_related_from_row, row[16])) if row[16] else (),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Article:
        """The inverse of :meth:`to_dict`, used to rebuild hits from the stored record; its
        fields given in order, not by name (every hit builds one: 5.9 us, 6.6 by name)."""
        get = data.get
        return _build_article(
            data["path"],
            data["title"],
            datetime.fromisoformat(data["published_at"]),
            get("excerpt", ""),
            get("body", ""),
            _provider_from_dict(get("provider", _NO_PROVIDER)),
            tuple(get("topics", ())),
            tuple(get("tags", ())),
            get("category", ""),
            get("type", "article"),
            get("quality"),
            get("heat"),
            get("published", True),
            get("original_url", ""),
            get("web_url", ""),
            tuple(map(_image_from_dict, get("images", ()))),
            tuple(map(_related_from_dict, get("related", ()))),
        )


def _image_from_dict(data: dict[str, Any]) -> Image:
    return _build_image(data["url"], data.get("width"), data.get("height"), data.get("title", ""))


def _related_from_dict(data: dict[str, Any]) -> RelatedArticle:
    get = data.get
    published_at = get("published_at")
    return _build_related(
        data["title"],
        get("url", ""),
        get("excerpt", ""),
        datetime.fromisoformat(published_at) if published_at else None,
        _provider_from_dict(get("provider", _NO_PROVIDER)),
        get("quality"),
    )


def _related_from_row(row: list[Any]) -> RelatedArticle:
    title, url, excerpt, published_at, provider, quality = row
    published = datetime.fromisoformat(published_at) if published_at else None
    return _build_related(title, url, excerpt, published, _provider(*provider), quality)


def _provider_row(provider: Provider) -> list[str]:
    return [provider.name, provider.domain]


_build_article = _builder(Article)
_build_image = _builder(Image)
_build_related = _builder(RelatedArticle)
_NO_PROVIDER: dict[str, str] = {}


def _provider_from_dict(data: dict[str, str]) -> Provider:
    return _provider(data.get("name", ""), data.get("domain", ""))


@functools.lru_cache(maxsize=4096)
def _provider(name: str, domain: str) -> Provider:
    """One object per provider, built once: a collection has few providers, and a hit's
    article and its related items name three on average (a lookup is a third of a build)."""
    return Provider(name, domain)


def provider_dict(provider: Provider) -> dict[str, str]:
    """A provider's JSON object, the same wherever an article or a hit is written."""
    return {"name": provider.name, "domain": provider.domain}


def related_dict(item: RelatedArticle) -> dict[str, Any]:
    """A related article's JSON object, the same wherever an article or a hit is written."""
    return {
        "title": item.title,
        "url": item.url,
        "excerpt": item.excerpt,
        "published_at": item.published_at.isoformat() if item.published_at else None,
        "provider": provider_dict(item.provider),
        "quality": item.quality,
    }
