"""Known-item search as people type it: title windows as written versus with punctuation removed.

For up to ``--queries`` articles of FOLDER (indexed into a temporary index), the query is 3 to 6
consecutive words of the title exactly as written (hyphens, apostrophes, colons, quotes), half
of them lowercased and some ending with ``?``; the "cleaned" query is the same text with every
punctuation character replaced by a space. Printed for both: MRR@10 (the target article's
reciprocal rank in the first 10 hits), the share of queries with no result, and errors.

    python -m bench.typed_queries FOLDER [--queries 300] [--seed 16]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from searchidx import indexer
from searchidx.errors import SearchidxError
from searchidx.request import SearchRequest
from searchidx.service import SearchService
from searchidx.store import IndexStore

#: Words of a title window, and the share of queries lowercased and ending with "?".
WINDOW = (3, 6)
LOWERCASED = 0.5
QUESTIONS = 0.25
TOP = 10
_PUNCTUATION = re.compile(r"[^\w\s]|_")


@dataclass
class Score:
    """MRR@10, zero-result and error counts of one kind of query."""

    reciprocal_ranks: list[float] = field(default_factory=list)
    zero: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, service: SearchService, text: str, target: str) -> None:
        try:
            result = service.search(SearchRequest(text=text, per_page=TOP, facets=False))
        except SearchidxError as error:
            self.errors.append(f"{text!r}: {error}")
            self.reciprocal_ranks.append(0.0)
            return
        self.zero += result.total == 0
        paths = [hit.article.path for hit in result.hits]
        self.reciprocal_ranks.append(1 / (paths.index(target) + 1) if target in paths else 0.0)

    def line(self, name: str) -> str:
        count = len(self.reciprocal_ranks) or 1
        return (
            f"{name:<8} MRR@{TOP} {sum(self.reciprocal_ranks) / count:.3f}   zero results "
            f"{self.zero / count:6.1%}   errors {len(self.errors)}"
        )


def stored_titles(store: IndexStore) -> dict[str, str]:
    """Path -> title of every article in the index."""
    articles = store.articles()
    return {article.path: article.title for article in articles}


def known_items(
    titles: dict[str, str], count: int, seed: int, windows: int = 1
) -> list[tuple[str, str, str]]:
    """(path, typed query, cleaned query): ``windows`` for each of up to ``count`` articles with
    3 or more title words; the same folder and seed give the same queries."""
    rng = random.Random(seed)
    candidates = sorted(path for path, title in titles.items() if len(title.split()) >= WINDOW[0])
    chosen = rng.sample(candidates, min(count, len(candidates)))
    queries = []
    for path in [path for path in chosen for _ in range(windows)]:
        words = titles[path].split()
        size = rng.randint(WINDOW[0], min(WINDOW[1], len(words)))
        start = rng.randint(0, len(words) - size)
        typed = " ".join(words[start : start + size])
        if rng.random() < LOWERCASED:
            typed = typed.lower()
        if rng.random() < QUESTIONS and not typed.endswith("?"):
            typed += "?"
        cleaned = " ".join(_PUNCTUATION.sub(" ", typed).split())
        queries.append((path, typed, cleaned))
    return queries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder of articles (read only)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--windows", type=int, default=1, help="queries per article")
    parser.add_argument("--show-errors", type=int, default=5, help="errors listed per kind")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="typed-queries-") as workdir:
        store = IndexStore(Path(workdir) / "index")
        try:
            indexer.sync(store, args.folder)
        except SearchidxError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        titles = stored_titles(store)
        items = known_items(titles, args.queries, args.seed, args.windows)
        typed, cleaned = Score(), Score()
        service = SearchService(store, results_cached=0)
        try:
            for path, typed_text, cleaned_text in items:
                typed.add(service, typed_text, path)
                cleaned.add(service, cleaned_text, path)
        finally:
            service.close()
    print(f"{args.folder}: {len(titles):,} articles, {len(items)} known-item queries")
    for name, score in (("typed", typed), ("cleaned", cleaned)):
        print(score.line(name))
        for problem in score.errors[: args.show_errors]:
            print(f"  error: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
