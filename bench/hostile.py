"""Hostile requests: the ones of issue #15 that held a server for seconds, and a seeded set
built the same way (wildcards, fuzzy words, ranges, long phrases, many terms, every field,
1,000 characters, every parameter at its limits), drawn from the sample generator's words so
they hit the index as hard as such requests can.

Every one must be answered quickly with any status but a 5xx: refused (400) when it asks for
more than a request may read, answered (200) when it does not.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from urllib.parse import urlencode

from searchidx import sample
from searchidx.querylang import QUERY_FIELDS
from searchidx.request import MAX_FACET_SIZE, MAX_PER_PAGE, MAX_QUERY_CHARS, MAX_RESULT_WINDOW

#: The issue's table, in its order.
ISSUE_URLS = (
    "/api/search?q=*",
    "/?q=*&per_page=100",
    "/feed.atom?q=*",
    "/api/search?q=a*+b*+c*+d*+e*+f*+g*+h*+i*+j*",
    "/api/search?q=*e*",
    "/api/search?q=title:*",
    "/api/search?q=a*",
    "/api/search?q=quality:%5B0+TO+1000%5D",
    "/api/search?q=title:%5Ba+TO+z%5D",
    "/api/suggest?q=a",
    "/api/search?q=a~2+b~2",
    "/api/search?topic_q=a&facet_size=200",
)
#: Where a hostile text is sent.
ENDPOINTS = ("/api/search", "/", "/feed.atom")


def vocabulary() -> list[str]:
    """The generator's words (the index's commonest), lower-cased."""
    texts = sample.OBJECTS + sample.TOPICS + sample.COMPANIES + sample.SENTENCES
    words = {word.strip(".,;:'\"()").lower() for text in texts for word in text.split()}
    return sorted(word for word in words if word.isalpha())


def hostile_text(rng: random.Random, words: list[str]) -> str:
    """One query text of the kinds that cost most, up to the 1,000 characters allowed."""
    pieces: list[Callable[[], str]] = [
        lambda: rng.choice(words)[: rng.randint(1, 3)] + "*",
        lambda: "*" + rng.choice(words)[1:3] + "*",
        lambda: rng.choice(words)[:2] + "?" + rng.choice(words)[:1] + "*",
        lambda: rng.choice(words)[:3] + "~" + rng.choice(("", "2")),
        lambda: (
            f"{rng.choice(('title', 'body', 'excerpt'))}:[{rng.choice(words)[:1]} TO "
            f"{rng.choice(words)[:1]}]"
        ),
        lambda: f"quality:[{rng.randint(-(10**6), 50)} TO {rng.randint(50, 10**6)}]",
        lambda: f"date:[{rng.randint(1900, 2022)} TO {rng.randint(2022, 2100)}]",
        lambda: '"' + " ".join(rng.choices(words, k=rng.randint(2, 40))) + '"',
        lambda: f'"{rng.choice(words)} {rng.choice(words)}"~{rng.randint(2, 20)}',
        lambda: f'{rng.choice(list(QUERY_FIELDS))}:"{rng.choice(words)} {rng.choice(words)}"',
        lambda: " ".join(rng.choices(words, k=rng.randint(5, 150))),
        lambda: " OR ".join(rng.choices(words, k=rng.randint(5, 80))),
        lambda: f"{rng.choice(list(QUERY_FIELDS))}:{rng.choice(words)}{rng.choice(('', '*'))}",
        lambda: "*",
        lambda: f"{rng.choice(list(QUERY_FIELDS))}:*",
    ]
    text = " ".join(rng.choice(pieces)() for _ in range(rng.randint(1, 12)))
    if rng.random() < 0.3:  # as long as allowed
        while len(text) < MAX_QUERY_CHARS:
            text += " " + rng.choice(pieces)()
    return text[:MAX_QUERY_CHARS]


def hostile_urls(count: int, seed: int = 15) -> list[str]:
    """``count`` hostile requests (after the issue's own), the same for the same seed."""
    rng = random.Random(seed)
    words = vocabulary()
    urls = list(ISSUE_URLS)
    while len(urls) < len(ISSUE_URLS) + count:
        text = hostile_text(rng, words)
        if rng.random() < 0.15:
            urls.append("/api/suggest?" + urlencode({"q": text[:200], "limit": 20}))
            continue
        params = [("q", text)]
        if rng.random() < 0.5:  # every parameter at its limits
            per_page = MAX_PER_PAGE if rng.random() < 0.5 else 1
            params += [
                ("per_page", str(per_page)),
                ("page", str(rng.choice((1, MAX_RESULT_WINDOW // per_page)))),
                ("facet_size", str(MAX_FACET_SIZE)),
                ("topic_q", rng.choice(words)[:1]),
                ("provider_q", rng.choice(words)[:1]),
                ("sort", rng.choice(("relevance", "newest", "oldest", "quality"))),
                ("from", "0001"),
                ("to", "9999"),
            ]
        urls.append(rng.choice(ENDPOINTS) + "?" + urlencode(params))
    return urls
