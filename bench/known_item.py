"""Known-item search: does three words of an article's title find that article?

    python -m bench.known_item FOLDER [--queries N] [--seed S]

Indexes FOLDER into a temporary directory, then for each article (or a sample of N) with a
title of three words or more searches three consecutive title words (chosen at random, the
same ones for the same seed), and prints the mean reciprocal rank of the article within the
top 10 (MRR@10) with ``sort=relevance`` and with ``sort=best``: blending in freshness and
quality (:mod:`searchidx.ranking`) must not bury the article a reader is looking for.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
from pathlib import Path

from searchidx import indexer
from searchidx.request import SearchRequest, Sort
from searchidx.schema import from_record
from searchidx.service import SearchService
from searchidx.store import IndexStore

#: Words as the query language reads them; lowercase, so a title's "OR" is not an operator.
_WORD = re.compile(r"\w+")
TOP = 10


def known_item_queries(store: IndexStore, count: int | None, seed: int) -> list[tuple[str, str]]:
    """(query, path) pairs: three consecutive words of each title (of three words or more)."""
    index = store.open_index()
    try:
        with index.searcher() as searcher:
            articles = [from_record(fields["record"]) for fields in searcher.all_stored_fields()]
    finally:
        index.close()
    chooser = random.Random(seed)
    queries = []
    for article in sorted(articles, key=lambda article: article.path):
        words = _WORD.findall(article.title.lower())
        if len(words) >= 3:
            start = chooser.randrange(len(words) - 2)
            queries.append((" ".join(words[start : start + 3]), article.path))
    if count is not None and count < len(queries):
        queries = chooser.sample(queries, count)
    return queries


def mrr_at_10(service: SearchService, queries: list[tuple[str, str]], sort: Sort) -> float:
    """The mean of 1/rank of each query's article within the top 10 (0 when not in it)."""
    total = 0.0
    for text, path in queries:
        result = service.search(SearchRequest(text=text, sort=sort, per_page=TOP, facets=False))
        paths = [hit.path for hit in result.hits]
        total += 1 / (paths.index(path) + 1) if path in paths else 0.0
    return total / len(queries) if queries else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder of articles (read only)")
    parser.add_argument("--queries", type=int, default=None, help="sample this many titles")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="known-item-") as workdir:
        store = IndexStore(Path(workdir) / "index")
        indexer.rebuild(store, args.folder)
        queries = known_item_queries(store, args.queries, args.seed)
        service = SearchService(store, results_cached=0)
        try:
            print(f"{len(queries)} known-item queries (three title words) over {args.folder}")
            for sort in (Sort.RELEVANCE, Sort.BEST):
                print(f"MRR@{TOP} {sort.value:<9} {mrr_at_10(service, queries, sort):.4f}")
        finally:
            service.close()


if __name__ == "__main__":
    main()
