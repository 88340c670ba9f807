"""The app's one long-lived :class:`SearchService` (it keeps a searcher open and refreshes it
when the index changes; one per request would reopen the index every time)."""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app

from searchidx.service import SearchService

EXTENSION = "searchidx"


def init_app(app: Flask, service: SearchService) -> None:
    app.extensions[EXTENSION] = service


def get_service() -> SearchService:
    return cast(SearchService, current_app.extensions[EXTENSION])
