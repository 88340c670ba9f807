"""Links that change one thing about the current search: toggle a facet value, go to a page,
set a date range. All state lives in the URL, so every control is also a plain link.

Links keep only the parameters the page knows (tracking parameters are dropped), spelled in one
order, without empty values: the same search always has the same URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

from searchidx.request import FILTER_FACETS, distinct_values
from searchidx.web.params import FLAG_PARAMS, KNOWN_PARAMS, Args

#: Parameters that describe which articles match; the others only present them.
MATCH_PARAMS = tuple(
    name
    for name in KNOWN_PARAMS
    if name not in ("sort", "half_life", "explain", *FLAG_PARAMS, "per_page", "page")
)


class Links:
    """The current search's parameters, and URLs for variations of it."""

    def __init__(self, args: Args, base: str = "/") -> None:
        self.base = base
        self.pairs = [
            (name, value) for name in KNOWN_PARAMS for value in distinct_values(args.getlist(name))
        ]

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def url(
        self,
        *,
        changes: Mapping[str, str | Iterable[str] | None] | None = None,
        keep_page: bool = False,
        only: Iterable[str] | None = None,
        base: str | None = None,
    ) -> str:
        """This search with ``changes`` (None removes a parameter); back to page 1 unless
        ``keep_page``; with ``only`` the listed parameters kept."""
        changes = dict(changes or {})
        if not keep_page and "page" not in changes:
            changes["page"] = None
        kept = set(only) if only is not None else None
        pairs: list[tuple[str, str]] = []
        for name in KNOWN_PARAMS:
            if kept is not None and name not in kept and name not in changes:
                continue
            if name in changes:
                change = changes[name]
                if change is None:
                    continue
                values = [change] if isinstance(change, str) else list(change)
                pairs += [(name, value) for value in values if value]
            else:
                pairs += [(key, value) for key, value in self.pairs if key == name]
        query = urlencode(pairs)
        return f"{base or self.base}?{query}" if query else (base or self.base)

    def toggle(self, name: str, value: str) -> str:
        """Add ``value`` to the facet ``name``, or remove it when it is already chosen."""
        current = self.values(name)
        key = value.casefold()
        if any(item.casefold() == key for item in current):
            return self.url(changes={name: [item for item in current if item.casefold() != key]})
        return self.url(changes={name: [*current, value]})

    def page(self, number: int) -> str:
        return self.url(changes={"page": str(number) if number > 1 else None})

    def without_filters(self) -> str:
        """The same words, no filters, dates or quality bounds."""
        return self.url(only=("q", "sort", "half_life", "explain", *FLAG_PARAMS, "per_page"))

    @property
    def has_filters(self) -> bool:
        ranges = ("from", "to", "min_quality", "max_quality")
        return any(name in (*FILTER_FACETS, *ranges) for name, _ in self.pairs)
