"""The fixed, seeded query set: the same requests for every engine, drawn from the vocabulary
of the sample generator so they hit the way real ones do (some broad, most narrow): its
template words, and its Zipf words with log-uniform ranks (as many common words as rare ones).

A :class:`BenchQuery` is engine-neutral: words and phrases, filters, a date range, a sort and a
page. Each adapter turns it into its own query; :attr:`BenchQuery.exact` says when the engines
must agree on the hit count (no text, or one plain word: stemming and tokenising differ in the
details between engines, filters must not).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from whoosh.analysis import STOP_WORDS

from bench.corpus import VOCABULARY
from searchidx import sample

#: The query kinds of the issue, in table order.
KINDS = (
    "relevance",
    "facets",
    "newest",
    "quality",
    "date_range",
    "two_filters",
    "highlight",
    "deep_page",
)

#: Words that occur in a large share of the articles (the generator's sentence templates).
BROAD_WORDS = (
    "analysts",
    "announcement",
    "regulators",
    "investors",
    "competitors",
    "researchers",
    "customers",
    "scrutiny",
    "rollout",
    "standards",
    "adoption",
    "critics",
    "markets",
    "shares",
    "businesses",
    "trading",
)

_WORD = re.compile(r"^[A-Za-z][a-z]+$|^[A-Z]+$")
DEEP_PAGE = 50


@dataclass(frozen=True)
class BenchQuery:
    kind: str
    #: Words and phrases ("chip production" is a phrase), all of which must match.
    terms: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    date_from: datetime | None = None
    date_to: datetime | None = None
    #: ``relevance``, ``newest`` or ``quality``; relevance without text means newest.
    sort: str = "relevance"
    page: int = 1
    per_page: int = 10
    facets: bool = False
    highlight: bool = False

    @property
    def text(self) -> str:
        """The query in searchidx's (and tantivy's and FTS5's) syntax: words, quoted phrases."""
        return " ".join(f'"{term}"' if " " in term else term for term in self.terms)

    @property
    def effective_sort(self) -> str:
        return "newest" if self.sort == "relevance" and not self.terms else self.sort

    @property
    def exact(self) -> bool:
        """Whether every engine must find exactly the same documents."""
        return not self.terms

    @property
    def single_word(self) -> bool:
        return len(self.terms) == 1 and " " not in self.terms[0]

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "text": self.text,
            "topics": list(self.topics),
            "providers": list(self.providers),
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "sort": self.sort,
            "page": self.page,
        }


class _Vocabulary:
    """Words, phrases, topics and providers of the generator, with realistic odds."""

    def __init__(self) -> None:
        def words(texts: list[str]) -> list[str]:
            found = {w for text in texts for w in text.split() if _WORD.match(w)}
            return sorted(w for w in found if w.lower() not in STOP_WORDS)

        self.zipf_words = sample.ZipfWords(VOCABULARY).words
        self.companies = list(sample.COMPANIES)
        self.object_words = words(sample.OBJECTS)
        self.topic_words = words(sample.TOPICS)
        self.phrases = sorted(
            {t for t in sample.OBJECTS + sample.TOPICS if len(t.split()) == 2 and "-" not in t}
        )
        self.topics = list(sample.TOPICS)
        outlets = sample.providers()
        self.providers = [outlet.name for outlet in outlets]
        self.provider_weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(outlets))]

    def word(self, rng: random.Random) -> str:
        pool = rng.choices(
            [self.companies, self.object_words, self.topic_words, list(BROAD_WORDS), None],
            [30, 20, 15, 10, 25],
        )[0]
        if pool is None:
            rank = int(math.exp(rng.uniform(0, math.log(len(self.zipf_words)))))
            return self.zipf_words[rank - 1]
        return rng.choice(pool)

    def terms(self, rng: random.Random, most: int = 3) -> tuple[str, ...]:
        """One to ``most`` words, sometimes a phrase; distinct words."""
        if rng.random() < 0.08:
            return (rng.choice(self.phrases),)
        count = rng.choices([1, 2, 3][:most], [55, 35, 10][:most])[0]
        chosen: list[str] = []
        while len(chosen) < count:
            word = self.word(rng)
            if word.lower() not in {c.lower() for c in chosen}:
                chosen.append(word)
        return tuple(chosen)

    def provider(self, rng: random.Random) -> str:
        return rng.choices(self.providers, self.provider_weights)[0]

    def date_range(self, rng: random.Random) -> tuple[datetime, datetime]:
        """Whole days, inclusive: from midnight to the last second of the end day."""
        days = rng.choice((7, 30, 90, 365, 730))
        span_days = sample.SPAN_SECONDS // 86400
        start = sample.START + timedelta(days=rng.randrange(max(1, span_days - days)))
        end = start + timedelta(days=days) - timedelta(seconds=1)
        return start.astimezone(UTC), end.astimezone(UTC)


def make_queries(count: int, seed: int) -> dict[str, list[BenchQuery]]:
    """``count`` queries of each kind; the same ``count`` and ``seed`` give the same set."""
    vocabulary = _Vocabulary()
    return {
        kind: [_query(kind, random.Random(f"{seed}-{kind}-{i}"), vocabulary) for i in range(count)]
        for kind in KINDS
    }


def _query(kind: str, rng: random.Random, vocabulary: _Vocabulary) -> BenchQuery:
    v = vocabulary
    if kind == "relevance":
        return BenchQuery(kind, v.terms(rng))
    if kind == "facets":
        return BenchQuery(kind, v.terms(rng), facets=True)
    if kind in ("newest", "quality"):
        terms = v.terms(rng) if rng.random() < 0.8 else ()
        return BenchQuery(kind, terms, sort=kind)
    if kind == "date_range":
        start, end = v.date_range(rng)
        terms = v.terms(rng) if rng.random() < 0.7 else ()
        return BenchQuery(kind, terms, date_from=start, date_to=end)
    if kind == "two_filters":
        terms = v.terms(rng, most=2) if rng.random() < 0.5 else ()
        return BenchQuery(kind, terms, topics=(rng.choice(v.topics),), providers=(v.provider(rng),))
    if kind == "highlight":
        return BenchQuery(kind, v.terms(rng, most=2), highlight=True)
    if kind == "deep_page":
        return BenchQuery(kind, (rng.choice(BROAD_WORDS),), page=DEEP_PAGE)
    raise ValueError(kind)
