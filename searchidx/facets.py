"""The facets, defined once: what a search can narrow by and count.

Everything else follows from a facet's line in :data:`FACETS`: its URL parameter and CLI option,
the values a request may give it, how the index stores and counts it, and how the page and the
feed label it. The table says what a facet is, not how an engine holds it: the Whoosh snapshot
reads it to build its arrays, and a second engine's mapping and aggregations follow from it too
(a keyword field and a terms aggregation; a date histogram by month).
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Kind(StrEnum):
    """How a facet's values are held, which says how they are stored, filtered and counted."""

    #: One exact value per article (a provider's name).
    KEYWORD = "keyword"
    #: Any number of exact values per article (topics); a filter matches any of them.
    KEYWORDS = "keywords"
    #: ``true`` or ``false``; the CLI spells it as a pair of flags (``--published/--unpublished``).
    BOOLEAN = "boolean"
    #: The calendar month ("2022-06") of a date: counted for the histogram, in calendar order;
    #: a request narrows by it with its date range, not with values.
    MONTH = "month"


class FacetSpec(NamedTuple):
    """One facet. ``name`` is its filter's key, URL parameter (``?topic=AI``), CLI option
    (``--topic AI``) and name in results; ``column`` is the stored field its values are read
    from. ``label`` names one chosen value ("Topic: AI"), ``heading`` the facet's list on the
    page ("Topics"). ``searchable`` facets are long (hundreds of values): the page gives them a
    box that filters their values, and autocomplete offers their values.
    """

    name: str
    column: str
    kind: Kind
    label: str
    heading: str
    #: The CLI option's help ("" for a facet that is not a filter).
    help: str = ""
    searchable: bool = False
    #: Display names of some values ("true" -> "Published"); other values show as they are.
    value_labels: tuple[tuple[str, str], ...] = ()

    @property
    def multi_valued(self) -> bool:
        return self.kind is Kind.KEYWORDS

    @property
    def is_filter(self) -> bool:
        """Whether a request can filter on it by value (``?topic=AI``)."""
        return self.kind is not Kind.MONTH

    @property
    def allowed_values(self) -> tuple[str, ...] | None:
        """The only values a filter may give, or None for any (unknown ones match nothing)."""
        return ("true", "false") if self.kind is Kind.BOOLEAN else None

    def value_label(self, value: str) -> str:
        return dict(self.value_labels).get(value, value)


#: The publication-month histogram: narrowed by the request's date range, not by values.
MONTH = FacetSpec("month", "date", Kind.MONTH, "Month", "Published")
FACETS = (
    FacetSpec(
        "topic",
        "topics",
        Kind.KEYWORDS,
        "Topic",
        "Topics",
        help="Only these topics (repeatable; OR).",
        searchable=True,
    ),
    FacetSpec(
        "provider",
        "provider_name",
        Kind.KEYWORD,
        "Provider",
        "Providers",
        help="Only these providers (repeatable).",
        searchable=True,
    ),
    FacetSpec(
        "category", "category", Kind.KEYWORD, "Category", "Category", "Only these categories."
    ),
    FacetSpec(
        "type", "type", Kind.KEYWORD, "Type", "Type", "Only these types (article, video, ...)."
    ),
    FacetSpec(
        "published",
        "published",
        Kind.BOOLEAN,
        "Status",
        "Status",
        help="Only (un)published articles.",
        value_labels=(("true", "Published"), ("false", "Unpublished")),
    ),
    MONTH,
)
BY_NAME = {facet.name: facet for facet in FACETS}
#: The facets a request can filter on by value, in the order links and options list them.
#: Values within one facet are OR-ed; facets are AND-ed.
FILTERS = tuple(facet for facet in FACETS if facet.is_filter)
#: The facets whose values autocomplete offers and the page lets a reader search.
SEARCHABLE = tuple(facet for facet in FACETS if facet.searchable)
