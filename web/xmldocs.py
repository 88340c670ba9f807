"""Atom and OpenSearch documents, built with ElementTree so every text and attribute is escaped.

ElementTree escapes ``<`` and ``&`` but passes through characters XML forbids (most control
characters), which a query typed into a URL may contain; :func:`clean` drops them, so the
document always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from searchidx.timestamps import iso_timestamp

ATOM = "http://www.w3.org/2005/Atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {key: clean(value) for key, value in attributes.items()})
    if text is not None:
        element.text = clean(text)
    return element


def _serialize(root: ET.Element) -> bytes:
    return cast(bytes, ET.tostring(root, encoding="utf-8", xml_declaration=True))


@dataclass(frozen=True)
class FeedEntry:
    id: str
    title: str
    url: str
    published: datetime
    author: str
    summary_html: str
    categories: tuple[str, ...]


def atom_feed(
    *,
    feed_id: str,
    title: str,
    subtitle: str,
    self_url: str,
    page_url: str,
    updated: datetime,
    entries: list[FeedEntry],
) -> bytes:
    """An Atom 1.0 feed (RFC 4287); ``summary_html`` is HTML, sent escaped as ``type="html"``."""
    feed = ET.Element("feed", {"xmlns": ATOM})
    _add(feed, "id", feed_id)
    _add(feed, "title", title)
    _add(feed, "subtitle", subtitle)
    _add(feed, "updated", iso_timestamp(updated))
    _add(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    _add(feed, "link", rel="alternate", type="text/html", href=page_url)
    _add(feed, "generator", "searchidx")
    _add(_add(feed, "author"), "name", "searchidx")
    for item in entries:
        entry = _add(feed, "entry")
        _add(entry, "id", item.id)
        _add(entry, "title", item.title, type="text")
        if item.url:
            _add(entry, "link", rel="alternate", type="text/html", href=item.url)
        _add(entry, "published", iso_timestamp(item.published))
        _add(entry, "updated", iso_timestamp(item.published))
        if item.author:
            _add(_add(entry, "author"), "name", item.author)
        for category in item.categories:
            _add(entry, "category", term=category)
        _add(entry, "summary", item.summary_html, type="html")
    return _serialize(feed)


def opensearch_description(
    *, search: str, suggest: str, feed: str, self_url: str, icon: str
) -> bytes:
    """An OpenSearch 1.1 description; the URLs keep ``{searchTerms}`` unescaped, as required."""
    root = ET.Element("OpenSearchDescription", {"xmlns": OPENSEARCH})
    _add(root, "ShortName", "searchidx")
    _add(root, "Description", "Search the news articles of this searchidx index")
    _add(root, "InputEncoding", "UTF-8")
    _add(root, "Image", icon, width="32", height="32", type="image/png")
    _add(root, "Url", type="text/html", method="get", template=search)
    _add(root, "Url", type="application/x-suggestions+json", method="get", template=suggest)
    _add(root, "Url", type="application/atom+xml", method="get", template=feed)
    _add(root, "Url", type="application/opensearchdescription+xml", rel="self", template=self_url)
    return _serialize(root)
