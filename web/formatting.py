"""Jinja filters: readable dates, numbers, and links that can only go where links should.

Article files are written by others, so a ``webUrl`` of ``javascript:alert(1)`` is possible:
escaping does not make that safe in an ``href``; only allowing http(s) does.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from flask import Flask


def _moment(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def readable_date(value: str | datetime | None) -> str:
    """``24 Jun 2022``: what a reader scans for in a list."""
    moment = _moment(value)
    return f"{moment.day} {moment:%b %Y}" if moment else ""


def exact_time(value: str | datetime | None) -> str:
    """``Friday 24 June 2022, 14:08 UTC``: the hover text of a date."""
    moment = _moment(value)
    return f"{moment:%A} {moment.day} {moment:%B %Y, %H:%M} UTC" if moment else ""


def link_url(value: str | None) -> str:
    """``value`` if it is an absolute http(s) URL, else an empty string (no link)."""
    if not value:
        return ""
    url = value.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def image_url(value: str | None) -> str:
    """Only https images: the content security policy allows nothing else from outside."""
    url = link_url(value)
    return url if url.lower().startswith("https://") else ""


def number(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def init_app(app: Flask) -> None:
    app.add_template_filter(readable_date)
    app.add_template_filter(exact_time)
    app.add_template_filter(link_url)
    app.add_template_filter(image_url)
    app.add_template_filter(number)
