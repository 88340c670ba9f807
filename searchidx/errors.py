"""The errors searchidx raises on purpose: each says what went wrong, where, and how to fix it.

The CLI turns a :class:`SearchidxError` into a one-line message and a non-zero exit; the web
app turns a :class:`QueryError` into a 400 page. Anything else is a bug.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


class SearchidxError(Exception):
    """Base class: a problem a user can act on, with a message written for them."""


@dataclass(frozen=True)
class ArticleProblem:
    """Why one content file could not be indexed; the indexer reports it and carries on."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


class ArticleError(SearchidxError):
    """An article file that cannot be used; carries the :class:`ArticleProblem`."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.problem = ArticleProblem(path, line, reason)
        super().__init__(str(self.problem))


class IndexMissingError(SearchidxError):
    """No index at the given location yet."""


class IndexBusyError(SearchidxError):
    """Another process is writing to the index."""


class ContentFolderError(SearchidxError):
    """The content folder is missing, unreadable or not known."""


class QueryError(SearchidxError):
    """A search request that cannot run: bad query syntax, bad filter value, bad paging."""

    def __init__(self, message: str, parameter: str | None = None) -> None:
        self.parameter = parameter
        super().__init__(message)


class IndexWriteError(SearchidxError, OSError):
    """Writing the index failed (disk full, permissions, I/O error); the index keeps its last
    complete state. Still an :class:`OSError`, so callers catching those keep working."""


def damaged_index_message(error: BaseException) -> str | None:
    """What to tell of Whoosh's ``CorruptIndexError`` (a damaged segment, term index or
    posting block), on the command line and the page alike: its message, and to rebuild
    where it does not say so already; None for any other error. Whoosh is looked up, not
    imported: a process that never loaded it cannot have met its error (``searchidx --help``
    imports no Whoosh)."""
    reading = sys.modules.get("whoosh.reading")
    if reading is None or not isinstance(error, reading.CorruptIndexError):
        return None
    message = f"the index is damaged: {error}"
    if "rebuild" in message.lower():
        return message
    return f"{message}; run 'searchidx rebuild' to build it again from the articles"
