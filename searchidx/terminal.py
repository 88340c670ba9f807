"""Rendering for people at a terminal: a :class:`SearchResult` (``searchidx query``), a
:class:`SimilarResult` (``searchidx similar``) and the query log's :class:`QueryStats`
(``searchidx stats``).

Marked words (matched terms, a did-you-mean's corrections) are bold yellow. Colour is the
caller's decision (terminal, ``NO_COLOR``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from searchidx.articles import Article
from searchidx.marks import Highlighted
from searchidx.result import Explanation, Facet, Hit, SearchResult

if TYPE_CHECKING:
    from searchidx.querylog import QueryStats
    from searchidx.similar import SimilarResult


def marked_text(text: Highlighted) -> str:
    """``text`` for a terminal: the marked words styled, the rest as it is."""
    return "".join(
        piece if isinstance(piece, str) else click.style(piece.text, fg="yellow", bold=True)
        for piece in text
    )


def render_result(result: SearchResult, show_facets: bool) -> list[str]:
    request = result.request
    lines = [f"Note: {note}." for note in result.notes]
    if result.relaxed:
        lines.append(result.relaxed.message)
    elif result.retry:
        lines.append(
            f"No results for {request.text!r}; showing results for {result.ran_query!r} "
            f"({'spelling corrected' if result.retry == 'corrected' else 'fuzzy match'})."
        )
    elif result.did_you_mean:
        lines.append(f"Did you mean: {marked_text(result.did_you_mean.marked)}?")
    what = f" for {result.ran_query!r}" if result.ran_query.strip() else ""
    lines.append(
        click.style(f"{result.total:,} result{'s' * (result.total != 1)}{what}", bold=True)
        + f" ({result.took_ms:.1f} ms) - page {request.page} of {result.pages}, "
        f"sorted by {request.effective_sort.value}"
    )
    for number, hit in enumerate(result.hits, request.offset + 1):
        lines += ["", *_hit_lines(number, hit)]
    if show_facets:
        lines += ["", *(_facet_line(facet) for facet in result.facets)]
    return lines


def render_similar(result: SimilarResult) -> list[str]:
    """The article, then its similar articles as ``render_result`` lists hits (shared key
    terms marked)."""
    count, asked = len(result.hits), result.article
    lines = [
        click.style(f"{count:,} article{'s' * (count != 1)} similar to ", bold=True)
        + f"{marked_text(asked.marked_title)} ({result.took_ms:.1f} ms)",
        "   " + click.style(_details(asked.article), dim=True),
    ]
    for number, hit in enumerate(result.hits, 1):
        lines += ["", *_hit_lines(number, hit)]
    return lines


def _hit_lines(number: int, hit: Hit) -> list[str]:
    lines = [
        f"{number}. {marked_text(hit.marked_title)}",
        "   " + click.style(_details(hit.article), dim=True),
    ]
    if hit.article.url:
        lines.append("   " + click.style(hit.article.url, fg="blue"))
    if hit.marked_excerpt:
        lines.append("   " + marked_text(hit.marked_excerpt))
    if hit.explain:
        lines.append("   " + click.style(explain_text(hit.explain), fg="cyan"))
    return lines


def _details(article: Article) -> str:
    """Provider · date · quality · topics."""
    details = [
        article.provider.name or article.provider.domain or "unknown provider",
        f"{article.published_at:%Y-%m-%d %H:%M} UTC",
        f"quality {article.quality}" if article.quality is not None else "no quality",
    ]
    if article.topics:
        details.append(", ".join(article.topics))
    return " · ".join(details)


def explain_text(explain: Explanation) -> str:
    """``best 12.3 = text 11.0 (title 9.0 + body 2.0) x freshness 1.05 x quality 1.01``."""
    factors = f"freshness {explain.freshness:.3f} x quality {explain.quality:.3f}"
    if explain.text is None:
        return f"best {explain.best:.3f} = {factors}"
    parts = ""
    if explain.fields is not None:
        shown = [f"{name} {part:.3f}" for name, part in explain.fields.items() if part]
        parts = f" ({' + '.join(shown)})" if shown else ""
    return f"best {explain.best:.3f} = text {explain.text:.3f}{parts} x {factors}"


def _facet_line(facet: Facet) -> str:
    values = ", ".join(
        f"{'[x] ' if value.selected else ''}{value.value} ({value.count:,})"
        for value in facet.values
    )
    more = f", +{facet.more} more" if facet.more else ""
    return f"{click.style(facet.name, bold=True)}: {values or '-'}{more}"


def render_stats(stats: QueryStats) -> list[str]:
    def when(moment: object) -> str:
        return "the start" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"

    until = "now" if stats.until is None else when(stats.until)
    lines = [
        click.style(f"{stats.searches:,} searches", bold=True)
        + f" ({stats.requests:,} requests with later pages) from {when(stats.since)} to {until}; "
        f"{stats.zero_results:,} found nothing",
    ]
    if stats.unreadable:
        lines.append(f"({stats.unreadable:,} unreadable log lines skipped)")
    if stats.latency_ms:
        lines.append(
            "search time: " + ", ".join(f"{p} {ms:.1f} ms" for p, ms in stats.latency_ms.items())
        )
    for title, rows in (
        ("Most frequent searches", stats.top),
        ("Most frequent searches with no results", stats.top_zero),
    ):
        lines += ["", click.style(title, bold=True)]
        lines += [f"{count:>8,}  {query}" for query, count in rows] or ["       -"]
    return lines
