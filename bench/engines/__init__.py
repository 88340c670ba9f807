"""The engine adapters, by name; each implements :class:`bench.engines.base.Engine`."""

from __future__ import annotations

from bench.engines.base import Engine
from bench.engines.fts5 import Fts5Engine
from bench.engines.opensearch_engine import OpenSearchEngine
from bench.engines.searchidx_engine import SearchidxEngine
from bench.engines.tantivy_engine import TantivyEngine

ENGINES: dict[str, type[Engine]] = {
    engine.name: engine for engine in (SearchidxEngine, Fts5Engine, TantivyEngine, OpenSearchEngine)
}
