"""How a sync or rebuild goes about its work, the same for both engines: one definition that
the CLI and the watch build and :mod:`searchidx.engine`, :mod:`searchidx.indexer` and
:mod:`searchidx.cluster_sync` pass on whole."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # the workers' module imports Whoosh; the engine is chosen first
    from searchidx.workers import Progress


class WriteOptions(NamedTuple):
    """A write's options beyond the content folder it reads: ``progress`` hears (files done,
    files in all) as they are read; ``wait``: seconds to wait for another writer to finish
    (0: fail at once); ``synonyms``: the text of a synonyms file to keep with the index (""
    removes them, None keeps the ones it has)."""

    progress: Progress | None = None
    wait: float = 0.0
    synonyms: str | None = None


#: The options of a write told nothing more (the signatures' default: one frozen instance).
DEFAULT_OPTIONS = WriteOptions()
