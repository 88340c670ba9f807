"""Known-item search: do three words of an article's title find that article?

    python -m bench.known_item FOLDER [--queries N] [--seed S]

Indexes FOLDER into a temporary directory, then for each article (or a sample of N) with a
title of three words or more searches three consecutive words of it (chosen at random, the
same ones for the same seed), and prints the mean reciprocal rank of the article within the
top 10 (MRR@10) with ``sort=relevance`` and with ``sort=best``: blending in freshness and
quality (:mod:`searchidx.ranking`) must not bury the article a reader is looking for.

Words are the title's words as the index reads them (:data:`~searchidx.schema.WORD_PATTERN`:
"web.powerapps.com" and "9.1" are one word each), lowercased, so a title's "OR" is not an
operator. The three are chosen two ways:

- **as written**: any three consecutive words, such as "apps and power" or "to a data". The
  index drops stop words, so such a query searches two words, or one;
- **stop words skipped**: three consecutive words of the title without its stop words, what
  someone who remembers a headline types ("apps power automate").

Some queries cannot single out their article: another title has the same words, next to each
other (two providers' headlines of one story, the monthly "... community call"). For each way
the script prints how many queries are so *ambiguous*, and the *ceiling*: the MRR@10 the best
ranking can expect. An article whose title has the words gave them with the chance that its
title's windows of three words have them (a title of n words has n - 2 windows), so the best
ranking puts the likeliest first and ranks the equally likely at random.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from searchidx import indexer
from searchidx.request import SearchRequest, Sort
from searchidx.schema import ANALYZER, WORD_PATTERN
from searchidx.service import SearchService
from searchidx.store import IndexStore

_WORD = re.compile(WORD_PATTERN)
TOP = 10
SIZE = 3
#: The two ways of choosing words: their names, and whether stop words are skipped.
WAYS = {"as written": False, "stop words skipped": True}


def stored_titles(store: IndexStore) -> dict[str, str]:
    """Path -> title of every article of the index."""
    articles = store.articles()
    return {article.path: article.title for article in articles}


def searched(text: str) -> tuple[str, ...]:
    """The words of ``text`` the index searches (stemmed, without stop words)."""
    return tuple(token.text for token in ANALYZER(text))


def windows(title: str, skip_stop_words: bool) -> list[str]:
    """Every run of three consecutive words of ``title``."""
    words = _WORD.findall(title.lower())
    if skip_stop_words:
        words = [word for word in words if searched(word)]
    return [" ".join(words[start : start + SIZE]) for start in range(len(words) - SIZE + 1)]


def known_item_queries(
    titles: dict[str, str], count: int | None, seed: int, skip_stop_words: bool
) -> list[tuple[str, str]]:
    """(query, path) pairs: three consecutive words of each title of three words or more."""
    chooser = random.Random(seed)
    queries = []
    for path in sorted(titles):
        choices = windows(titles[path], skip_stop_words)
        if choices:
            queries.append((chooser.choice(choices), path))
    if count is not None and count < len(queries):
        queries = chooser.sample(queries, count)
    return queries


def ceiling(
    queries: list[tuple[str, str]], titles: dict[str, str], skip_stop_words: bool
) -> tuple[float, int]:
    """The MRR@10 the best ranking can expect for ``queries``, and how many are ambiguous
    (another title has the same searched words next to each other)."""
    having: defaultdict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    sizes = {}
    for path, title in titles.items():
        choices = windows(title, skip_stop_words)
        sizes[path] = len(choices)
        for window in choices:
            having[searched(window)][path] += 1
    total, ambiguous = 0.0, 0
    for text, path in queries:
        chances = [found / sizes[other] for other, found in having[searched(text)].items()]
        mine = having[searched(text)][path] / sizes[path]
        above = sum(chance > mine for chance in chances)
        tied = sum(chance == mine for chance in chances)
        ranks = range(above + 1, min(above + tied, TOP) + 1)
        total += sum(1 / rank for rank in ranks) / tied
        ambiguous += len(chances) > 1
    return (total / len(queries) if queries else 0.0), ambiguous


def shared_titles(titles: dict[str, str]) -> int:
    """How many articles have a title another article has too (as searched)."""
    counts = Counter(searched(title) for title in titles.values())
    return sum(count for count in counts.values() if count > 1)


def mrr_at_10(service: SearchService, queries: list[tuple[str, str]], sort: Sort) -> float:
    """The mean of 1/rank of each query's article within the top 10 (0 when not in it)."""
    total = 0.0
    for text, path in queries:
        result = service.search(SearchRequest(text=text, sort=sort, per_page=TOP, facets=False))
        paths = [hit.article.path for hit in result.hits]
        total += 1 / (paths.index(path) + 1) if path in paths else 0.0
    return total / len(queries) if queries else 0.0


def report(store: IndexStore, folder: Path, count: int | None, seed: int) -> list[str]:
    """The lines the script prints."""
    titles = stored_titles(store)
    lines = [
        f"{len(titles)} articles in {folder}; {shared_titles(titles)} share their title "
        "(as searched) with another",
        f"{'three title words':<20}{'queries':>8}{'ambiguous':>10}{'ceiling':>9}"
        f"{'relevance':>10}{'best':>8}   (MRR@{TOP})",
    ]
    service = SearchService(store, results_cached=0)
    try:
        for way, skip_stop_words in WAYS.items():
            queries = known_item_queries(titles, count, seed, skip_stop_words)
            best_possible, ambiguous = ceiling(queries, titles, skip_stop_words)
            relevance = mrr_at_10(service, queries, Sort.RELEVANCE)
            best = mrr_at_10(service, queries, Sort.BEST)
            lines.append(
                f"{way:<20}{len(queries):>8}{ambiguous:>10}{best_possible:>9.4f}"
                f"{relevance:>10.4f}{best:>8.4f}"
            )
    finally:
        service.close()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder of articles (read only)")
    parser.add_argument("--queries", type=int, default=None, help="sample this many titles")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="known-item-") as workdir:
        store = IndexStore(Path(workdir) / "index")
        indexer.rebuild(store, args.folder)
        print("\n".join(report(store, args.folder, args.queries, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
