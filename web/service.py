"""The app's one long-lived search service (it keeps a searcher open and refreshes it when the
index changes; one per request would reopen the index every time): a
:class:`~searchidx.service.SearchService`, or the OpenSearch engine's for a cluster location."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from flask import Flask, current_app

if TYPE_CHECKING:
    from searchidx.engine import Service

EXTENSION = "searchidx"


def init_app(app: Flask, service: Service) -> None:
    app.extensions[EXTENSION] = service


def get_service() -> Service:
    return cast("Service", current_app.extensions[EXTENSION])
