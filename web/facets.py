"""Facets as plain dicts for the one template partial that renders them all, and the month
histogram as bars that are links (how a reader without JavaScript narrows the date range).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from searchidx.facets import BY_NAME
from searchidx.result import Facet
from searchidx.web.links import Links


def facet_view(facet: Facet, links: Links, search: str = "") -> dict[str, Any]:
    """One facet: its values with counts, whether each is chosen, and the link that toggles it."""
    # Chosen values first, as shops list them: a chosen value outside the top ones (the
    # service appends those) would otherwise sit below values the reader did not choose.
    values = sorted(facet.values, key=lambda item: not item.selected)
    spec = BY_NAME[facet.name]
    return {
        "name": facet.name,
        "label": spec.heading,
        "values": [
            {
                "value": item.value,
                "label": spec.value_label(item.value),
                "count": item.count,
                "selected": item.selected,
                "toggle_url": links.toggle(facet.name, item.value),
            }
            for item in values
        ],
        "more": facet.more,
        "searchable": spec.searchable,
        "search_param": f"{facet.name}_q",
        "search": search,
    }


def month_histogram(facet: Facet | None, links: Links) -> dict[str, Any] | None:
    """Bars for every calendar month from the first with hits to the last (empty ones too, so
    time reads evenly), each linking to a date range of that month; years link to a year."""
    if facet is None or not facet.values:
        return None
    counts = {item.value: item.count for item in facet.values}
    selected = {item.value for item in facet.values if item.selected}
    first, last = _month(facet.values[0].value), _month(facet.values[-1].value)
    peak = max(counts.values())
    bars: list[dict[str, Any]] = []
    years: dict[int, dict[str, Any]] = {}
    month = first
    while month <= last:
        key = f"{month:%Y-%m}"
        count = counts.get(key, 0)
        bars.append(
            {
                "month": key,
                "label": f"{month:%B %Y}",
                "count": count,
                "height": round(100 * count / peak) if count else 0,
                "selected": key in selected,
                "url": links.url(changes={"from": key, "to": key}) if count else None,
            }
        )
        year = years.setdefault(
            month.year,
            {
                "year": month.year,
                "count": 0,
                "months": 0,
                "url": links.url(changes={"from": str(month.year), "to": str(month.year)}),
            },
        )
        year["count"] += count
        year["months"] += 1
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return {
        "bars": bars,
        "years": list(years.values()),
        "peak": peak,
        "chosen": bool(links.values("from") or links.values("to")),
        "clear_url": links.url(changes={"from": None, "to": None}),
    }


def _month(key: str) -> date:
    year, month = key.split("-")
    return date(int(year), int(month), 1)
