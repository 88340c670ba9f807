"""Similar articles: do an article's similar articles include the coverage its source linked?

    python -m bench.similar FOLDER [FOLDER ...]
    python -m bench.similar --generate 10000 [--stories 0.3] [--vocabulary 20000] [--queries N]

Indexes each collection into a temporary directory. An article's ``related`` entries are the
other coverage of its story chosen by its source; those that are also in the collection (matched
by ``webUrl``/``originalUrl``, else by normalised title) are the answers. Over every article with
such entries, recall@10 is the share of the entries found in its top 10 similar articles (all
entries counted together; the mean per article is printed beside it). It is measured for
``searchidx similar`` (:mod:`searchidx.similar`) and for the baseline, a plain BM25 OR query of
the title and excerpt words (as if typed joined by OR), and so are their latencies (p50, p95;
every request searched, nothing cached), over every such article or ``--queries`` of them
(a seeded choice). ``--generate`` measures on a sample written by ``searchidx sample
--stories`` (the real collections have no such pairs: it says so).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from whoosh import query

from searchidx import indexer
from searchidx.articles import Article
from searchidx.ranking import FIELD_BOOSTS, top_scored
from searchidx.sample import write_sample
from searchidx.schema import ANALYZER
from searchidx.service import SearchService
from searchidx.similar import SimilarRequest, document_number
from searchidx.snapshot import IndexSnapshot
from searchidx.store import IndexStore

TOP = 10
_WORD = re.compile(r"\w+")

Method = Callable[[SearchService, str], list[str]]


def normalised(title: str) -> str:
    return " ".join(_WORD.findall(title.casefold()))


def answers(articles: list[Article]) -> dict[str, set[str]]:
    """Path -> paths of the collection's articles its ``related`` entries name (itself not)."""
    by_url: dict[str, str] = {}
    by_title: dict[str, str] = {}
    for article in articles:
        for url in (article.web_url, article.original_url):
            if url:
                by_url.setdefault(url.strip(), article.path)
        by_title.setdefault(normalised(article.title), article.path)
    found: dict[str, set[str]] = {}
    for article in articles:
        paths = set()
        for item in article.related:
            path = by_url.get(item.url.strip()) if item.url else None
            path = path or by_title.get(normalised(item.title))
            if path is not None and path != article.path:
                paths.add(path)
        if paths:
            found[article.path] = paths
    return found


def ours(service: SearchService, path: str) -> list[str]:
    result = service.similar(SimilarRequest(path, TOP))
    return [hit.article.path for hit in result.hits]


def baseline(service: SearchService, path: str) -> list[str]:
    """A plain BM25 OR query of the article's title and excerpt words, in every field a typed
    query searches, with its boosts; the article itself left out."""
    snapshot = service.snapshot()
    docnum = document_number(snapshot, path)
    article = _article(snapshot, docnum)
    words = dict.fromkeys(token.text for token in ANALYZER(f"{article.title} {article.excerpt}"))
    if not words:
        return []
    parsed = query.Or(
        [
            query.Term(field, word, boost=boost)
            for word in words
            for field, boost in FIELD_BOOSTS.items()
        ]
    )
    matches = snapshot.match(parsed, scored=True)
    assert matches.scores is not None
    candidates = matches.mask.copy()
    candidates[docnum] = False
    page = top_scored(matches.scores, candidates, 0, TOP)
    return [_article(snapshot, doc).path for doc, _ in page]


def _article(snapshot: IndexSnapshot, docnum: int) -> Article:
    return snapshot.article(docnum)


def measure(service: SearchService, truth: dict[str, set[str]], method: Method) -> dict[str, float]:
    """recall@10 (entries found / entries), its mean per article, and latency percentiles."""
    found = total = 0
    per_article: list[float] = []
    latencies: list[float] = []
    for path, expected in sorted(truth.items()):
        started = time.perf_counter()
        top = method(service, path)
        latencies.append((time.perf_counter() - started) * 1000)
        hits = len(expected & set(top))
        found, total = found + hits, total + len(expected)
        per_article.append(hits / len(expected))
    percentiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "recall": found / total,
        "mean": statistics.fmean(per_article),
        "p50": percentiles[49],
        "p95": percentiles[94],
    }


def evaluate(folder: Path, workdir: Path, queries: int | None = None) -> None:
    store = IndexStore(workdir / "index")
    indexer.rebuild(store, folder)
    articles = store.articles()
    truth = answers(articles)
    entries = sum(len(article.related) for article in articles)
    pairs = sum(len(paths) for paths in truth.values())
    print(
        f"{folder}: {len(articles):,} articles, {entries:,} related entries, {pairs:,} of them "
        f"in the collection, for {len(truth):,} articles"
    )
    if not truth:
        print("  no article's related entries are in the collection: recall cannot be measured")
        return
    if queries is not None and queries < len(truth):
        chosen = random.Random(queries).sample(sorted(truth), queries)
        truth = {path: truth[path] for path in chosen}
        print(f"  measured on {queries:,} of them")
    service = SearchService(store, results_cached=0)
    try:
        service.snapshot()  # opened and its arrays read before anything is timed
        for name, method in (("similar", ours), ("baseline", baseline)):
            figures = measure(service, truth, method)
            print(
                f"  {name:<9} recall@{TOP} {figures['recall']:.3f} (per article "
                f"{figures['mean']:.3f})  p50 {figures['p50']:.1f} ms  "
                f"p95 {figures['p95']:.1f} ms"
            )
    finally:
        service.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="*", help="folders of articles (read only)")
    parser.add_argument("--generate", type=int, metavar="N", help="also a sample of N articles")
    parser.add_argument("--stories", type=float, default=0.3, help="its share in stories")
    parser.add_argument("--vocabulary", type=int, default=20_000, help="its made-up words")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--queries", type=int, help="measure on this many articles (all)")
    args = parser.parse_args(argv)
    if not args.folders and not args.generate:
        parser.error("give a folder of articles or --generate N")
    with tempfile.TemporaryDirectory(prefix="similar-") as temp:
        workdir = Path(temp)
        folders = list(args.folders)
        if args.generate:
            sample = workdir / "sample"
            write_sample(sample, args.generate, args.seed, args.vocabulary, args.stories)
            folders.append(sample)
        for number, folder in enumerate(folders):
            evaluate(folder, workdir / str(number), args.queries)


if __name__ == "__main__":
    main()
