"""Highlighted text as data: plain text and marked words, rendered only where it is shown.

The search builds a :data:`Highlighted` (a hit's title and excerpt, a did-you-mean); the JSON
and the page render it as HTML with :func:`to_html`, the terminal in colour
(:func:`searchidx.terminal.marked_text`). No HTML is parsed back.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # imported by the HTML it makes: a search in the terminal makes none
    from markupsafe import Markup


class Mark(NamedTuple):
    """A marked run of text: with a ``term``, a match of a query term (numbered 0-4 in order of
    first appearance, so each term can have its own colour); with None, a word marked for
    another reason (a did-you-mean's correction)."""

    text: str
    term: int | None = None


#: Text with some words marked: plain ``str`` runs and :class:`Mark` runs, in order; empty
#: when there is nothing to show.
Highlighted = tuple[str | Mark, ...]


def highlighted(pieces: Iterable[str | Mark]) -> Highlighted:
    """``pieces`` as a :data:`Highlighted`: empty plain runs dropped, neighbouring ones joined
    (the same text always has the same value)."""
    joined: list[str | Mark] = []
    for piece in pieces:
        last = joined[-1] if joined else None
        if isinstance(piece, str) and isinstance(last, str):
            joined[-1] = last + piece
        elif isinstance(piece, Mark) or piece:
            joined.append(piece)
    return tuple(joined)


def to_html(text: Highlighted, *, quote: bool = False) -> Markup:
    """Escaped HTML, a query term's match as ``<mark class="match term0">`` (as Whoosh's
    ``HtmlFormatter`` writes it), another mark as ``<mark>``; ``quote`` escapes quotes too (as
    the did-you-mean always has). ``Markup``: a ``str`` that templates insert as it is."""
    from markupsafe import Markup

    parts = []
    for piece in text:
        if isinstance(piece, str):
            parts.append(html.escape(piece, quote=quote))
        else:
            tag = "<mark>" if piece.term is None else f'<mark class="match term{piece.term}">'
            parts.append(f"{tag}{html.escape(piece.text, quote=quote)}</mark>")
    return Markup("".join(parts))
