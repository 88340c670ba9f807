"""Searching an OpenSearch index: one :class:`SearchRequest` in, one :class:`SearchResult` out,
as :class:`searchidx.service.SearchService` answers it from a local index.

One search is one request to the cluster:

* the query text, translated from the project's own parse (:mod:`searchidx.cluster_query`);
* the filters as a ``post_filter`` (values OR-ed within a facet, facets AND-ed), so that each
  facet is counted by a ``filter`` aggregation holding every filter *but its own* (disjunctive
  facets, as locally); the month histogram is counted without the date range;
* the sort with the local tie-breaks (newest: date, then path; quality: quality, date, path;
  relevance: score, then path); ``best`` multiplies the text score by the freshness and quality
  factors of :mod:`searchidx.ranking` in a script, with the newest date and the quality
  percentiles of the index taken by one aggregation first;
* pages by ``from``/``size``, within :data:`~searchidx.request.MAX_RESULT_WINDOW`, the
  cluster's own default result window.

Hits are read from the stored display record and highlighted by :mod:`searchidx.highlight`, as
locally: the same marks (none when the request asks for none).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from whoosh import query as whoosh_query

from searchidx import highlight, querylang, ranking, relaxation, synonyms
from searchidx.bounds import SearchTimeout
from searchidx.cluster import ClusterIndex, cluster_errors
from searchidx.cluster_query import Dsl, text_query
from searchidx.cluster_sync import SYNONYMS_META, TITLE_WORDS
from searchidx.errors import QueryError
from searchidx.facets import BY_NAME, FACETS, SEARCHABLE, Kind
from searchidx.request import SearchRequest, Sort
from searchidx.result import (
    Correction,
    Explanation,
    Facet,
    Hit,
    Relaxation,
    SearchResult,
    Suggestion,
)
from searchidx.schema import ANALYZER, fold, from_record
from searchidx.service import (
    REFRESH_INTERVAL,
    SUGGEST_BELOW,
    SUGGEST_PER_KIND,
    _month_facet,
    _top_values,
    _word_starts_with,
)
from searchidx.similar import SimilarRequest, SimilarResult
from searchidx.snapshot import FacetTable

#: Distinct values a facet aggregation returns: all of them, so ``more`` is exact.
FACET_VALUES = 10_000
_EMPTY = np.zeros(0, dtype=np.int32)
#: Highlighting asked of the cluster for a query with wildcard or fuzzy words, in every text
#: field a hit shows (whatever field the word named, as locally), marked with private-use
#: characters (the cluster drops control characters from tags).
EXPANDED_HIGHLIGHT = {
    "pre_tags": ["\ue000"],
    "post_tags": ["\ue001"],
    "require_field_match": False,
    "fields": {
        "title": {"number_of_fragments": 0},
        "excerpt": {"number_of_fragments": 0},
        "body": {"fragment_size": 400, "number_of_fragments": 5},
    },
}
_MARKED = re.compile("\ue000([^\ue001]*)\ue001")
#: What a :class:`_Recent` reads and keeps (synonyms, ranking statistics).
_Read = TypeVar("_Read")

#: ``best`` = text score x freshness x quality (searchidx.ranking), in the cluster's script
#: language: a missing quality is neutral, and a known one's percentile is looked up in the
#: distinct qualities of the index.
_BEST_SCRIPT = """
double age = Math.max(params.newest - doc['date'].value.toInstant().toEpochMilli(), 0)
    / 86400000.0;
double fresh = 1.0 + params.fresh_weight * Math.pow(2.0, -age / params.half_life);
double percentile = 0.5;
if (doc['quality'].size() > 0) {
  long q = doc['quality'].value;
  int low = 0; int high = params.qualities.size() - 1;
  while (low <= high) {
    int middle = (low + high) >>> 1;
    long value = ((Number) params.qualities.get(middle)).longValue();
    if (value < q) { low = middle + 1; } else if (value > q) { high = middle - 1; }
    else { percentile = ((Number) params.percentiles.get(middle)).doubleValue(); break; }
  }
}
double quality = 1.0 + params.quality_weight * (2.0 * percentile - 1.0);
return _score * fresh * quality;
"""


class ClusterSearchService:
    """Answers searches from the index at a cluster URL; safe to share between threads (the
    client pools its connections)."""

    def __init__(self, index: ClusterIndex, search_timeout: float | None = None) -> None:
        #: Named as SearchService's, for the messages that name the index searched.
        self.store = index
        self.search_timeout = search_timeout
        self._client = index.client()
        #: What is read of the whole index, kept a while (see :class:`_Recent`).
        self._synonyms = _Recent(self._read_synonyms)
        self._ranking = _Recent(self._ranking_stats)

    def close(self) -> None:
        self._client.close()

    def search(self, request: SearchRequest) -> SearchResult:
        """The answer to ``request``, every query parsed (retries included) expanded by the
        synonyms kept with the index."""
        with cluster_errors(self.store):
            rules = synonyms.parse(self._synonyms.get())
        with synonyms.applied(rules):
            return self._search(request)

    def _read_synonyms(self) -> str:
        """The synonyms file's text kept with the index."""
        (mapping,) = self._client.indices.get_mapping(index=self.store.alias).values()
        return str(mapping["mappings"].get("_meta", {}).get(SYNONYMS_META, ""))

    def _search(self, request: SearchRequest) -> SearchResult:
        started = time.perf_counter()
        reading = querylang.read(request.text) if request.text.strip() else None
        parsed = querylang.parse_reading(reading) if reading else None  # the local checks
        query = None if parsed is None else text_query(request.text)
        ran_query, retry, relaxed, did_you_mean = request.text, None, None, None
        with cluster_errors(self.store):
            ranked = request.effective_sort is Sort.BEST or request.explain
            stats = self._ranking.get() if ranked else None
            response = self._run(request, query, _expands(parsed), stats)
            if parsed is not None and _total(response) < SUGGEST_BELOW:
                did_you_mean = self._correct(request.text)
            if parsed is not None and _total(response) == 0:
                attempts = relaxation.retries(
                    request.text, did_you_mean, lambda text: self._relaxed(request, text)
                )
                for attempt in attempts:
                    typed = request.text if attempt.relaxed else None  # its phrases' stop words
                    dsl = text_query(attempt.text, attempt.kind == "fuzzy", typed)
                    retried = self._run(request, dsl, _expands(attempt.parsed), stats)
                    if _total(retried):
                        response, ran_query, retry = retried, attempt.text, attempt.kind
                        parsed, relaxed = attempt.parsed, attempt.relaxed
                        break
        terms: frozenset[str] = frozenset()  # none marked: each hit plain
        if parsed is not None and request.highlight:
            terms = _highlight_terms(parsed)
        scored = request.effective_sort in (Sort.RELEVANCE, Sort.BEST) and parsed is not None
        hits = tuple(
            _hit(item, terms | _expanded_terms(item), scored, request, stats, parsed is not None)
            for item in response["hits"]["hits"]
        )
        facets = _facets(response["aggregations"], request) if request.facets else ()
        return SearchResult(
            request=request,
            total=_total(response),
            hits=hits,
            facets=facets,
            ran_query=ran_query,
            retry=retry,
            did_you_mean=did_you_mean,
            took_ms=(time.perf_counter() - started) * 1000,
            notes=reading.notes if reading else (),
            relaxed=relaxed,
        )

    def _correct(self, text: str) -> Correction | None:
        """Did-you-mean, as :func:`querylang.correct` decides it, with the cluster's answers:
        a word is known when some text field matches it, and the closest title word is the
        term suggester's on the titles' unstemmed words."""

        def known(word: str) -> bool:
            if not any(True for _ in ANALYZER(word)):
                return True  # a stop word: not searched, nothing to correct
            body = {"query": {"multi_match": {"query": word, "fields": querylang.TEXT_FIELDS}}}
            return int(self._client.count(index=self.store.alias, body=body)["count"]) > 0

        def closest(word: str) -> str | None:
            suggester = {
                "field": TITLE_WORDS,
                "max_edits": 2,
                "prefix_length": 1,
                "size": 1,
                "suggest_mode": "always",
                "min_word_length": 1,
            }
            body = {"size": 0, "suggest": {"word": {"text": word, "term": suggester}}}
            found = self._client.search(index=self.store.alias, body=body)["suggest"]["word"]
            options = found[0]["options"] if found else []
            return str(options[0]["text"]) if options else None

        return querylang.correct_with(text, known, closest)

    def _relaxed(self, request: SearchRequest, text: str) -> Relaxation | None:
        """Which required words of the query ``text`` to drop so that it finds something,
        decided by :func:`relaxation.relax` on counts the cluster makes (see
        :class:`_Matching`)."""
        parts = querylang.read(text).parts
        if not parts:
            return None
        filters = list(_filters(request).values())
        counted: dict[tuple[str, ...], int] = {}

        def count(texts: tuple[str, ...]) -> int:
            key = tuple(sorted(set(texts)))
            if key not in counted:
                musts = [text_query(text, typed=request.text) for text in key]
                body = {"query": {"bool": {"must": musts, "filter": filters}}}
                counted[key] = self._client.count(index=self.store.alias, body=body)["count"]
            return counted[key]

        size = self._client.count(index=self.store.alias)["count"]
        return relaxation.relax(parts, lambda text: _Matching(count, (text,)), size)

    def _run(
        self,
        request: SearchRequest,
        query: Dsl | None,
        expanded: bool,
        stats: _RankingStats | None,
    ) -> Any:
        """One search; ``expanded``: the query has wildcard or fuzzy words, whose matches
        the cluster highlights if the request asks (see :func:`_expanded_terms`); ``stats``:
        for the ``best`` sort and explanations."""
        filters = _filters(request)
        body: dict[str, Any] = {
            "query": query or {"match_all": {}},
            "from": request.offset,
            "size": request.per_page,
            "track_total_hits": True,
            "_source": ["record"],
            "sort": self._sort(request, query is not None),
        }
        if stats is not None and request.effective_sort is Sort.BEST:
            # text x freshness x quality (freshness x quality alone without text)
            scored = {"query": body["query"], "script": stats.script(request)}
            body["query"] = {"script_score": scored}
        if request.explain and query is not None:
            body["track_scores"] = True
        if filters:
            body["post_filter"] = _all(filters.values())
        if request.facets:
            body["aggs"] = _aggregations(filters)
        if expanded and request.highlight:
            body["highlight"] = EXPANDED_HIGHLIGHT
        from opensearchpy.exceptions import ConnectionTimeout

        options: dict[str, Any] = {}
        if self.search_timeout is not None:
            body["timeout"] = f"{int(self.search_timeout * 1000)}ms"
            options["request_timeout"] = self.search_timeout + 5
        try:
            response = self._client.search(index=self.store.alias, body=body, **options)
        except ConnectionTimeout:
            response = {"timed_out": True}
        if response.get("timed_out"):  # answered with what the shards found in time: partial
            raise SearchTimeout(
                f"the search took longer than its {self.search_timeout:g} s budget on the "
                "cluster and was stopped; narrow it (fewer or longer words, fewer wildcards) "
                "or try again"
            )
        return response

    def _sort(self, request: SearchRequest, text: bool) -> list[Any]:
        sort = request.effective_sort
        if sort in (Sort.RELEVANCE, Sort.BEST) and (text or sort is Sort.BEST):
            return ["_score", {"path": "asc"}]
        if sort is Sort.OLDEST:
            return [{"date": "asc"}, {"path": "asc"}]
        if sort is Sort.QUALITY:
            quality = {"quality": {"order": "desc", "missing": "_last"}}
            return [quality, {"date": "desc"}, {"path": "asc"}]
        return [{"date": "desc"}, {"path": "asc"}]  # newest, and relevance without text

    def _ranking_stats(self) -> _RankingStats:
        stats = self._client.search(
            index=self.store.alias,
            body={
                "size": 0,
                "aggs": {
                    "newest": {"max": {"field": "date"}},
                    "qualities": {"terms": {"field": "quality", "size": 65_536}},
                },
            },
        )["aggregations"]
        buckets = sorted(stats["qualities"]["buckets"], key=lambda bucket: bucket["key"])
        counts = np.array([bucket["doc_count"] for bucket in buckets], dtype=np.int64)
        return _RankingStats(
            newest=stats["newest"]["value"] or 0.0,
            qualities=[int(bucket["key"]) for bucket in buckets],
            percentiles=_percentiles(counts),
        )

    def similar(self, request: SimilarRequest) -> SimilarResult:
        """Not on a cluster yet (issue #10 left it for later): a clear refusal, never a 500."""
        raise QueryError(
            "similar articles are not available on an OpenSearch index yet; use a local index "
            "(a folder) for them",
            "path",
        )

    def suggest(self, prefix: str, limit: int = 8) -> tuple[Suggestion, ...]:
        """As :meth:`SearchService.suggest`: topics and providers with a word starting with
        ``prefix`` (most articles first), then title words starting with its last word (in
        most titles first, ties in word order)."""
        needle = prefix.strip().casefold()
        if not needle:
            return ()
        aggs: Dsl = {
            facet.name: {"terms": {"field": facet.column, "size": FACET_VALUES}}
            for facet in SEARCHABLE
        }
        last_word = fold(needle.split()[-1])  # title words are indexed folded ("sao")
        aggs["word"] = {
            "terms": {
                "field": TITLE_WORDS,
                "include": "".join(c if c.isalnum() else "\\" + c for c in last_word) + ".*",
                "size": limit,
                "order": [{"_count": "desc"}, {"_key": "asc"}],
            }
        }
        with cluster_errors(self.store):
            response = self._client.search(index=self.store.alias, body={"size": 0, "aggs": aggs})
        found: list[Suggestion] = []
        for name in ("topic", "provider"):
            matching = [
                Suggestion(bucket["key"], name, bucket["doc_count"])
                for bucket in response["aggregations"][name]["buckets"]
                if _word_starts_with(bucket["key"].casefold(), needle)
            ]
            matching.sort(key=lambda item: (-item.count, item.text.casefold()))
            found += matching[:SUGGEST_PER_KIND]
        for bucket in response["aggregations"]["word"]["buckets"][: max(0, limit - len(found))]:
            found.append(Suggestion(bucket["key"], "word", bucket["doc_count"]))
        return tuple(found[:limit])


@dataclass(frozen=True)
class _RankingStats:
    """What the ``best`` factors need of the whole index: its newest date (epoch ms) and its
    distinct qualities with their percentiles (:func:`ranking.percentiles`)."""

    newest: float
    qualities: list[int]
    percentiles: list[float]

    def script(self, request: SearchRequest) -> Dsl:
        return {
            "source": _BEST_SCRIPT,
            "params": {
                "newest": self.newest,
                "half_life": request.half_life_days,
                "fresh_weight": ranking.FRESHNESS_WEIGHT,
                "quality_weight": ranking.QUALITY_WEIGHT,
                "qualities": self.qualities,
                "percentiles": self.percentiles,
            },
        }

    def explain(self, item: Any, article: Any, request: SearchRequest, text: bool) -> Explanation:
        """A hit's score parts, as the script computed them (the text score is the cluster's
        BM25, whole: no split by field)."""
        published = article.published_at.timestamp() * 1000
        age = max(self.newest - published, 0.0) / 86_400_000
        freshness = 1.0 + ranking.FRESHNESS_WEIGHT * 2.0 ** (-age / request.half_life_days)
        percentile = None
        if article.quality is not None and article.quality in self.qualities:
            percentile = self.percentiles[self.qualities.index(article.quality)]
        quality = float(ranking.quality(np.array(0.5 if percentile is None else percentile)))
        score = item.get("_score")
        text_score = None
        if text and score is not None:
            best_sorted = request.effective_sort is Sort.BEST
            text_score = float(score) / (freshness * quality) if best_sorted else float(score)
        best = freshness * quality * (1.0 if text_score is None else text_score)
        return Explanation(text_score, None, freshness, quality, age, percentile, best)


class _Recent(Generic[_Read]):
    """What ``read()`` returns, read again at most every
    :data:`~searchidx.service.REFRESH_INTERVAL` seconds: what a sync changes shows within
    that, as locally."""

    def __init__(self, read: Callable[[], _Read]) -> None:
        self._read = read
        self._kept: tuple[float, _Read] | None = None  # (when, what)

    def get(self) -> _Read:
        now = time.monotonic()
        if self._kept is None or now - self._kept[0] >= REFRESH_INTERVAL:
            self._kept = (now, self._read())
        return self._kept[1]


class _Matching:
    """The articles some query texts match together, counted by the cluster when asked: what
    :func:`relaxation.relax` reads of a mask (``&``, ``any()``, ``sum()``), so the local
    choice of words to drop is made the same way without a mask of every article."""

    __array_ufunc__ = None  # ``numpy_array & matching`` comes to __rand__

    def __init__(self, count: Callable[[tuple[str, ...]], int], texts: tuple[str, ...]) -> None:
        self._count = count
        self.texts = texts

    def __and__(self, other: Any) -> _Matching:
        if isinstance(other, _Matching):
            return _Matching(self._count, self.texts + other.texts)
        assert np.all(other)  # relax's starting value, every article: narrows nothing
        return self

    __rand__ = __and__

    def sum(self) -> int:
        return self._count(self.texts)

    def any(self) -> bool:
        return self.sum() > 0


def _total(response: Any) -> int:
    return int(response["hits"]["total"]["value"])


def _percentiles(counts: np.ndarray) -> list[float]:
    """Each distinct quality's mid-rank percentile, as :func:`ranking.percentiles` gives it."""
    known = int(counts.sum())
    if known <= 1:
        return [0.5] * len(counts)
    below = np.cumsum(counts) - counts
    return [float(mid) for mid in (2 * below + counts - 1) / (2.0 * (known - 1))]


def _filters(request: SearchRequest) -> dict[str, Dsl]:
    """One clause per active filter, keyed as the facet it narrows (``month`` for the date
    range, ``quality`` for the quality range)."""
    clauses: dict[str, Dsl] = {}
    for name, values in request.filters.items():
        if values:
            any_of = {
                "should": [_value(name, value) for value in values],
                "minimum_should_match": 1,
            }
            clauses[name] = {"bool": any_of}
    if request.date_from or request.date_to:
        dates = {}
        if request.date_from:
            dates["gte"] = request.date_from.isoformat()
        if request.date_to:
            dates["lte"] = request.date_to.isoformat()
        clauses["month"] = {"range": {"date": dates}}
    if request.min_quality is not None or request.max_quality is not None:
        qualities = {}
        if request.min_quality is not None:
            qualities["gte"] = request.min_quality
        if request.max_quality is not None:
            qualities["lte"] = request.max_quality
        clauses["quality"] = {"range": {"quality": qualities}}
    return clauses


def _value(name: str, value: str) -> Dsl:
    spec = BY_NAME[name]
    field = spec.column
    if spec.kind is Kind.BOOLEAN:
        if value.casefold() not in ("true", "false"):
            return {"match_none": {}}
        return {"term": {field: value.casefold() == "true"}}
    return {"term": {field: {"value": value, "case_insensitive": True}}}


def _all(clauses: Any) -> Dsl:
    return {"bool": {"filter": list(clauses)}}


def _aggregations(filters: dict[str, Dsl]) -> Dsl:
    """Per facet: its values counted under every filter but its own."""
    aggs: Dsl = {}
    for facet in FACETS:
        counted: Dsl
        if facet.kind is Kind.MONTH:
            histogram = {"calendar_interval": "month", "format": "yyyy-MM", "min_doc_count": 1}
            counted = {"date_histogram": {"field": facet.column, **histogram}}
        else:
            counted = {"terms": {"field": facet.column, "size": FACET_VALUES}}
        others = [clause for key, clause in filters.items() if key != facet.name]
        aggs[facet.name] = {"filter": _all(others), "aggs": {"values": counted}}
    return aggs


def _facets(aggregations: Any, request: SearchRequest) -> tuple[Facet, ...]:
    """The facets as :class:`~searchidx.service.SearchService` lists them, from the counts."""
    facets = []
    for facet in FACETS:
        name = facet.name
        buckets = aggregations[name]["values"]["buckets"]
        values = tuple(bucket.get("key_as_string", bucket["key"]) for bucket in buckets)
        counts = np.array([bucket["doc_count"] for bucket in buckets], dtype=np.int64)
        if facet.kind is Kind.MONTH:
            facets.append(_month_facet(name, values, counts, request))
            continue
        selected = {value.casefold(): value for value in request.filters.get(name, ())}
        table = FacetTable.of(values, _EMPTY, _EMPTY)
        search = request.facet_search.get(name, "")
        facets.append(_top_values(name, table, counts, selected, request.facet_size, search))
    return tuple(facets)


def _expands(parsed: Any) -> bool:
    return parsed is not None and any(
        isinstance(leaf, querylang._EXPANDED) for leaf in parsed.leaves()
    )


def _expanded_terms(item: Any) -> frozenset[str]:
    """The stems of the words the cluster marked in a hit: what wildcard and fuzzy words
    matched in it (locally, the words the index's vocabulary expands them to)."""
    fragments = (text for texts in item.get("highlight", {}).values() for text in texts)
    words = (word for text in fragments for word in _MARKED.findall(text))
    return frozenset(token.text for word in words for token in ANALYZER(word))


def _highlight_terms(parsed: Any) -> frozenset[str]:
    """The stems to mark: the words and phrases the query searches in text fields."""
    terms: set[str] = set()
    for leaf in parsed.leaves():
        if getattr(leaf, "fieldname", None) not in querylang.TEXT_FIELDS:
            continue
        if type(leaf) is whoosh_query.Term:
            terms.add(str(leaf.text))
        elif type(leaf) is whoosh_query.Phrase:
            terms.update(str(word) for word in leaf.words)
    return frozenset(terms)


def _hit(
    item: Any,
    terms: frozenset[str],
    scored: bool,
    request: SearchRequest,
    stats: _RankingStats | None,
    text: bool,
) -> Hit:
    article = from_record(item["_source"]["record"])
    explain = None
    if request.explain and stats is not None:
        explain = stats.explain(item, article, request, text)
    score = float(item["_score"]) if scored and item.get("_score") is not None else None
    return highlight.hit(article, terms, score, explain)
