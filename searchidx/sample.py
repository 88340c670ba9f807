"""A deterministic sample collection in the exact shape of real article files.

Used by ``make demo``, the tests and the benchmarks (at 100,000 articles, so it writes text with
string templates rather than a YAML dumper). The same ``count`` and ``seed`` always give the
same files, byte for byte. The real seed article is included as it was published.

The templates use about a hundred distinct words, so every word's posting list is long; the
benchmarks add a vocabulary of made-up words drawn by Zipf's law (:class:`ZipfWords`), whose
lists are as skewed as a real collection's.

With ``stories`` (a share of the articles, 0 by default), some articles are the coverage of one
story by several providers, as in real collections: each outlet words the title and text its
own way (synonymous verbs, other templates), mentions the story's place, figure and people
only sometimes, publishes within a few days of the others, and lists the others (most of them)
under ``related``. Some stories have a follow-up a week or two later about the same company and
product but another event (not related): what similar-article search must tell apart. The
other articles are written exactly as without stories (``bench/similar.py`` measures on these).
"""

from __future__ import annotations

import base64
import itertools
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED_ARTICLE_NAME = "000_dbfeb7893265a28a.txt"
SEED_ARTICLE = Path(__file__).parent / "data" / "seed-article.txt"

COMPANIES = [
    "Microsoft",
    "Google",
    "Apple",
    "Amazon",
    "Meta",
    "OpenAI",
    "Nvidia",
    "IBM",
    "Salesforce",
    "Oracle",
    "Intel",
    "AMD",
    "Tesla",
    "Samsung",
    "Adobe",
    "SAP",
    "Netflix",
    "Spotify",
    "Anthropic",
    "DeepMind",
    "Siemens",
    "Cisco",
    "Dell",
    "Qualcomm",
    "Uber",
]

TOPICS = [
    "AI",
    "Machine Learning",
    "Computer Vision",
    "Cloud Computing",
    "Cybersecurity",
    "Data Privacy",
    "Regulation",
    "Semiconductors",
    "Quantum Computing",
    "Robotics",
    "Electric Vehicles",
    "Climate Tech",
    "Open Source",
    "Developer Tools",
    "Power Apps",
    "Low-Code",
    "Microsoft AI",
    "AI in Sales",
    "Generative AI",
    "Chatbots",
    "Healthcare AI",
    "Fintech",
    "Cryptocurrency",
    "Blockchain",
    "Startups",
    "Venture Capital",
    "Mergers",
    "Antitrust",
    "Smartphones",
    "Wearables",
    "Gaming",
    "Streaming",
    "Social Media",
    "Search Engines",
    "Advertising",
    "E-commerce",
    "Supply Chain",
    "5G",
    "Edge Computing",
    "Data Centers",
    "Energy",
    "Space",
    "Education Technology",
    "Remote Work",
    "Labor",
]

PROVIDER_WORDS = [
    "Tech",
    "Daily",
    "Wire",
    "Times",
    "Post",
    "Journal",
    "Herald",
    "Review",
    "Insider",
    "Observer",
    "Chronicle",
    "Gazette",
    "Digest",
    "Report",
    "Ledger",
    "Monitor",
    "Signal",
    "Beacon",
    "Dispatch",
    "Bulletin",
]

PROVIDER_PREFIXES = [
    "Silicon",
    "Cloud",
    "Data",
    "Future",
    "Global",
    "Pacific",
    "Northern",
    "Metro",
    "Digital",
    "Open",
    "Bright",
    "Quantum",
    "Urban",
    "Capital",
    "Atlantic",
    "Summit",
    "Harbor",
    "Prairie",
    "Golden",
    "Iron",
    "Coastal",
    "Valley",
    "Frontier",
    "Pioneer",
    "Evergreen",
]

MAJOR_PROVIDERS = [
    ("Forbes", "forbes.com"),
    ("NBC News", "nbcnews.com"),
    ("ExtremeTech", "extremetech.com"),
    ("Popular Science", "popsci.com"),
    ("The Verge", "theverge.com"),
    ("Wired", "wired.com"),
    ("TechCrunch", "techcrunch.com"),
    ("Reuters", "reuters.com"),
    ("ZDNet", "zdnet.com"),
    ("Ars Technica", "arstechnica.com"),
    ("Engadget", "engadget.com"),
    ("CNBC", "cnbc.com"),
]

VERBS = [
    "launches",
    "halts",
    "expands",
    "acquires",
    "unveils",
    "delays",
    "restricts",
    "opens",
    "retires",
    "invests in",
    "partners on",
    "cuts",
    "tests",
    "rolls out",
    "pauses",
    "doubles",
]

OBJECTS = [
    "facial recognition tools",
    "cloud regions",
    "chip production",
    "AI assistant",
    "privacy controls",
    "developer platform",
    "data center",
    "robotaxi service",
    "quantum processor",
    "security program",
    "low-code apps",
    "search features",
    "ad business",
    "battery plant",
    "open source model",
    "payments service",
    "emotion-reading tech",
    "translation engine",
    "smart glasses",
    "analytics suite",
]

QUALIFIERS = [
    "amid regulations",
    "after criticism",
    "ahead of earnings",
    "in Europe",
    "for startups",
    "for enterprises",
    "as demand grows",
    "under new rules",
    "in a surprise move",
    "to rival competitors",
    "despite shortages",
    "for healthcare",
    "across Asia",
    "",
]

SENTENCES = [
    "{company} said the change takes effect immediately and applies to new customers.",
    "Analysts expect the {object} to reshape how businesses approach {topic}.",
    "The announcement follows months of scrutiny from regulators and privacy advocates.",
    "In a blog post published {weekday}, the company outlined its plans for {topic}.",
    "Critics argue the move does little to address concerns about {topic}.",
    "The company declined to share figures but said adoption of the {object} was strong.",
    "Competitors are expected to respond with {object} of their own within months.",
    "Investors welcomed the news, sending shares up in early trading.",
    "Researchers have long warned that {topic} needs clearer standards.",
    "The rollout starts in the United States before expanding to other markets.",
]

#: A story's event, as each outlet may word it (the first is also the plain template's verb).
ACTIONS = [
    ("halts", "pauses", "stops", "suspends"),
    ("launches", "unveils", "rolls out", "debuts"),
    ("expands", "extends", "scales up", "grows"),
    ("acquires", "buys", "takes over", "snaps up"),
    ("delays", "postpones", "pushes back", "holds off on"),
    ("restricts", "limits", "curbs", "tightens access to"),
    ("cuts", "trims", "scales back"),
    ("retires", "shuts down", "winds down", "ends"),
    ("tests", "trials", "pilots"),
    ("invests in", "pours money into", "backs", "funds"),
]

#: How outlets title the same story: {company}, {verb}, {object}, {qualifier}, {place}, {topic}.
STORY_TITLES = [
    "{company} {verb} {object} {qualifier}",
    "{company} {verb} its {object}",
    "Why {company} {verb} {object}",
    "Report: {company} {verb} {object} in {place}",
    "{company} {verb} {object}: what it means for {topic}",
    "{company}'s {object} news: the company {verb} them {qualifier}",
]

#: Sentences about the story's details: {company}, {object}, {place}, {figure}, {person}.
STORY_SENTENCES = [
    "The decision affects the {object} in {place}, according to {person}.",
    "{person} said the move is worth about {figure} to {company}.",
    "{company} confirmed the plans for {place} on a call with analysts.",
    "The deal, valued at {figure}, was first reported by local media in {place}.",
    "{person}, who leads the {object} effort, called it a turning point.",
    "People familiar with the matter put the figure at {figure}.",
    "Staff in {place} were told of the change this week.",
]

PLACES = [
    "Lagos",
    "Dublin",
    "Austin",
    "Bangalore",
    "Seoul",
    "Warsaw",
    "Nairobi",
    "Lisbon",
    "Toronto",
    "Osaka",
    "Monterrey",
    "Tallinn",
    "Brisbane",
    "Cape Town",
    "Krakow",
    "Hanoi",
    "Bogota",
    "Helsinki",
    "Leipzig",
    "Porto",
    "Denver",
    "Lyon",
    "Taipei",
    "Jakarta",
]
FIRST_NAMES = [
    "Maria",
    "James",
    "Aiko",
    "Tunde",
    "Elena",
    "Rahul",
    "Sofia",
    "Lukas",
    "Amara",
    "Diego",
    "Hana",
    "Omar",
    "Greta",
    "Kwame",
    "Ines",
    "Pavel",
    "Lena",
    "Mateo",
    "Yara",
    "Nils",
]
LAST_NAMES = [
    "Okafor",
    "Lindqvist",
    "Tanaka",
    "Moreau",
    "Novak",
    "Castillo",
    "Brennan",
    "Haddad",
    "Kowalski",
    "Adeyemi",
    "Fischer",
    "Romero",
    "Nakamura",
    "Ivanova",
    "Mensah",
    "Duarte",
]

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
CATEGORIES = ["news"] * 8 + ["blog", "research"]
TYPES = ["article"] * 9 + ["video"]
START = datetime(2018, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int((datetime(2026, 6, 30, tzinfo=UTC) - START).total_seconds())


@dataclass(frozen=True)
class _Provider:
    name: str
    domain: str


def providers(count: int = 1300) -> list[_Provider]:
    """A long tail of outlets, like the 1,300 of a real collection; the majors come first."""
    result = [_Provider(name, domain) for name, domain in MAJOR_PROVIDERS]
    for prefix in PROVIDER_PREFIXES:
        for word in PROVIDER_WORDS:
            for suffix in ("", " Online", " Weekly"):
                name = f"{prefix} {word}{suffix}"
                domain = name.lower().replace(" ", "") + ".com"
                result.append(_Provider(name, domain))
    return result[:count]


_ONSETS = [
    "b",
    "br",
    "c",
    "ch",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "pl",
    "qu",
    "r",
    "s",
    "st",
    "t",
    "tr",
    "v",
    "w",
    "z",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou"]
_CODAS = ["", "", "n", "r", "l", "m", "t", "k", "nd", "rt"]


class ZipfWords:
    """``size`` made-up words (the same ones every time), drawn with the odds of Zipf's law:
    the word of rank r as often as 1 / (r + 10), so the commonest are in about half of the
    articles and most in a handful."""

    #: Flattens the head of the curve, as the stop words a real analyzer drops would.
    OFFSET = 10

    def __init__(self, size: int) -> None:
        from whoosh.analysis import STOP_WORDS

        rng = random.Random("zipf-words")
        found: dict[str, None] = {}
        while len(found) < size:
            syllables = rng.choice((2, 2, 3, 3, 4))
            word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
            word += rng.choice(_CODAS)
            if word not in STOP_WORDS:
                found[word] = None
        self.words = list(found)
        self.cumulative = list(
            itertools.accumulate(1.0 / (rank + self.OFFSET) for rank in range(size))
        )

    def draw(self, rng: random.Random, count: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cumulative, k=count)

    def sentence(self, rng: random.Random) -> str:
        return " ".join(self.draw(rng, rng.randint(8, 18))).capitalize() + "."


def write_sample(
    folder: Path, count: int, seed: int = 42, vocabulary: int = 0, stories: float = 0.0
) -> int:
    """Write ``count`` generated articles plus the real seed article; returns files written.

    ``vocabulary``: that many made-up words besides the templates' (see :class:`ZipfWords`),
    in titles, excerpts and bodies; 0 (the default) writes the template text only.
    ``stories``: the share of the ``count`` articles that are several outlets' coverage of one
    story, with ``related`` links between them (see the module's description); the others
    are the same as the first ones written without stories.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SEED_ARTICLE_NAME).write_bytes(SEED_ARTICLE.read_bytes())
    words = ZipfWords(vocabulary) if vocabulary else None
    rng = random.Random(seed)
    outlets = providers()
    weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(outlets))]  # Zipf-like reach
    in_stories = round(count * min(max(stories, 0.0), 1.0))
    made_dirs: set[Path] = set()

    def write(number: int, published: datetime, text: str, name: str) -> None:
        subfolder = folder / str(published.year)
        if subfolder not in made_dirs:
            subfolder.mkdir(exist_ok=True)
            made_dirs.add(subfolder)
        (subfolder / f"{number:06d}_{name}.md").write_text(text, encoding="utf-8")

    for number in range(1, count - in_stories + 1):
        published = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
        name = f"{rng.getrandbits(64):016x}"
        write(number, published, _article(rng, outlets, weights, published, words), name)
    story_rng = random.Random(f"stories-{seed}")  # the other articles stay as they were
    number = count - in_stories
    for coverage in _stories(story_rng, outlets, weights, in_stories, words):
        for published, text in coverage:
            number += 1
            write(number, published, text, f"{story_rng.getrandbits(64):016x}")
    return count + 1


def _article(
    rng: random.Random,
    outlets: list[_Provider],
    weights: list[float],
    published: datetime,
    words: ZipfWords | None,
) -> str:
    company = rng.choice(COMPANIES)
    topics = rng.sample(TOPICS, rng.choice((1, 2, 2, 3, 3, 4)))
    obj = rng.choice(OBJECTS)
    verb = rng.choice(VERBS)
    if words:
        verb += " " + words.draw(rng, 1)[0]
    title = f"{company} {verb} {obj} {rng.choice(QUALIFIERS)}".strip()
    title = title[0].upper() + title[1:]
    provider = rng.choices(outlets, weights)[0]
    excerpt = " ".join(_sentence(rng, company, obj, topics) for _ in range(2))
    paragraphs = [
        [_sentence(rng, company, obj, topics) for _ in range(rng.randint(2, 4))]
        for _ in range(rng.randint(1, 3))
    ]
    if words:
        excerpt += " " + words.sentence(rng)
        for sentences in paragraphs:
            sentences += [words.sentence(rng) for _ in range(rng.randint(1, 3))]
    body = "\n\n".join(" ".join(sentences) for sentences in paragraphs)
    slug = "-".join(title.lower().split())[:80]
    url = f"https://www.{provider.domain}/{published:%Y/%m/%d}/{slug}"
    quality = max(0, min(200, int(rng.gauss(80, 35))))
    lines = [
        "---",
        f"category: {rng.choice(CATEGORIES)}",
        f"title: {_q(title)}",
        f"excerpt: {_q(excerpt)}",
        f"publishedDateTime: {published:%Y-%m-%dT%H:%M:%SZ}",
        f"originalUrl: {_q(url)}",
        f"webUrl: {_q(url)}",
        f"type: {rng.choice(TYPES)}",
        f"quality: {quality}",
        f"heat: {rng.choice((-1, quality))}",
        f"published: {'true' if rng.random() < 0.85 else 'false'}",
        "",
        "provider:",
        f"  name: {_q(provider.name)}",
        f"  domain: {provider.domain}",
        "",
        "topics:",
        *(f"  - {topic}" for topic in topics),
    ]
    if rng.random() < 0.7:
        width, height = rng.choice(((640, 427), (1200, 800), (1280, 720)))
        lines += [
            "",
            "images:",
            f'  - url: "https://img.{provider.domain}/{rng.getrandbits(40):x}.jpg"',
            f"    width: {width}",
            f"    height: {height}",
            "    isCached: true",
        ]
    related = [_related(rng, outlets, weights, company, topics, published)]
    related += [
        _related(rng, outlets, weights, company, topics, published)
        for _ in range(rng.choice((0, 0, 1, 2, 4)))
    ]
    if rng.random() < 0.8:
        lines += ["", "related:", *[line for item in related for line in item]]
    blob = base64.b64encode(rng.randbytes(96)).decode()
    lines += ["", f'secured: "{blob}"', "---", "", body, ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class _Story:
    """One event several outlets cover: what they share, whatever their wording."""

    company: str
    action: tuple[str, ...]
    obj: str
    topics: list[str]
    place: str
    figure: str
    person: str
    words: list[str]  # rare words of the story (with a vocabulary): names, terms
    start: datetime


def _stories(
    rng: random.Random,
    outlets: list[_Provider],
    weights: list[float],
    total: int,
    words: ZipfWords | None,
) -> list[list[tuple[datetime, str]]]:
    """``total`` articles as stories of 2 to 5 outlets' coverage, some followed up (the same
    company and product, another event, 5 to 20 days later)."""
    found: list[list[tuple[datetime, str]]] = []
    left, previous = total, None
    while left >= 2:
        if previous is not None and rng.random() < 0.3:
            story = _new_story(rng, words, previous)
            previous = None
        else:
            story = previous = _new_story(rng, words)
        size = min(left, rng.choice((2, 2, 3, 3, 4, 5)))
        if left - size == 1:
            size += 1
        found.append(_coverage(rng, outlets, weights, story, size, words))
        left -= size
    return found


def _new_story(rng: random.Random, words: ZipfWords | None, after: _Story | None = None) -> _Story:
    if after is None:
        company, obj = rng.choice(COMPANIES), rng.choice(OBJECTS)
        start = START + timedelta(seconds=rng.randrange(SPAN_SECONDS - 30 * 86_400))
        topics = rng.sample(TOPICS, rng.choice((2, 3, 3, 4)))
    else:  # a follow-up: the same company and product, another event
        company, obj, topics = after.company, after.obj, after.topics
        start = after.start + timedelta(days=rng.uniform(5, 20))
    rare = words.words[len(words.words) // 10 :] if words else []
    actions = [action for action in ACTIONS if after is None or action != after.action]
    amount = f"${rng.randint(2, 950)}{rng.choice(('', '.5'))}"
    return _Story(
        company=company,
        action=rng.choice(actions),
        obj=obj,
        topics=topics,
        place=rng.choice(PLACES),
        figure=f"{amount} {rng.choice(('million', 'billion'))}",
        person=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        words=rng.sample(rare, 4) if rare else [],
        start=start,
    )


def _coverage(
    rng: random.Random,
    outlets: list[_Provider],
    weights: list[float],
    story: _Story,
    size: int,
    words: ZipfWords | None,
) -> list[tuple[datetime, str]]:
    """The story's articles by ``size`` different outlets, each listing most of the others."""
    chosen: list[_Provider] = []
    while len(chosen) < size:
        outlet = rng.choices(outlets, weights)[0]
        if outlet not in chosen:
            chosen.append(outlet)
    items = []
    for outlet in chosen:
        published = story.start + timedelta(seconds=rng.randrange(4 * 86_400))
        topics = rng.sample(story.topics, rng.randint(1, len(story.topics)))
        title = (
            rng.choice(STORY_TITLES)
            .format(
                company=story.company,
                verb=rng.choice(story.action),
                object=story.obj,
                qualifier=rng.choice(QUALIFIERS),
                place=story.place,
                topic=rng.choice(topics),
            )
            .strip()
        )
        title = title[0].upper() + title[1:]
        url = f"https://www.{outlet.domain}/{published:%Y/%m/%d}/{rng.getrandbits(48):x}"
        items.append((outlet, published, topics, title, url))
    coverage = []
    for number, (outlet, published, topics, title, url) in enumerate(items):
        others = [item for other, item in enumerate(items) if other != number]
        listed = [item for item in others if rng.random() < 0.9] or others[:1]
        related = [_related_entry(rng, story, *item) for item in listed]
        text = _story_article(rng, story, outlet, published, topics, title, url, words, related)
        coverage.append((published, text))
    return coverage


def _story_sentence(rng: random.Random, story: _Story, topics: list[str]) -> str:
    """A template sentence, or one about the story's details, or its rare words."""
    kind = rng.random()
    if kind < 0.45:
        return _sentence(rng, story.company, story.obj, topics)
    if kind < 0.85 or not story.words:
        return rng.choice(STORY_SENTENCES).format(
            company=story.company,
            object=story.obj,
            place=story.place,
            figure=story.figure,
            person=story.person,
        )
    chosen = rng.sample(story.words, rng.randint(1, 2))
    return f"{story.company} and {' and '.join(chosen)} are part of the {story.obj} plan."


def _story_article(
    rng: random.Random,
    story: _Story,
    outlet: _Provider,
    published: datetime,
    topics: list[str],
    title: str,
    url: str,
    words: ZipfWords | None,
    related: list[list[str]],
) -> str:
    excerpt = " ".join(_story_sentence(rng, story, topics) for _ in range(2))
    paragraphs = [
        [_story_sentence(rng, story, topics) for _ in range(rng.randint(2, 4))]
        for _ in range(rng.randint(1, 3))
    ]
    if words:
        excerpt += " " + words.sentence(rng)
        for sentences in paragraphs:
            sentences += [words.sentence(rng) for _ in range(rng.randint(1, 3))]
    body = "\n\n".join(" ".join(sentences) for sentences in paragraphs)
    quality = max(0, min(200, int(rng.gauss(80, 35))))
    extra = [
        _related(rng, [outlet], [1.0], story.company, topics, published)
        for _ in range(rng.choice((0, 0, 1)))
    ]
    lines = [
        "---",
        "category: news",
        f"title: {_q(title)}",
        f"excerpt: {_q(excerpt)}",
        f"publishedDateTime: {published:%Y-%m-%dT%H:%M:%SZ}",
        f"originalUrl: {_q(url)}",
        f"webUrl: {_q(url)}",
        "type: article",
        f"quality: {quality}",
        f"heat: {quality}",
        "published: true",
        "",
        "provider:",
        f"  name: {_q(outlet.name)}",
        f"  domain: {outlet.domain}",
        "",
        "topics:",
        *(f"  - {topic}" for topic in topics),
        "",
        "related:",
        *[line for item in [*related, *extra] for line in item],
        "---",
        "",
        body,
        "",
    ]
    return "\n".join(lines)


def _related_entry(
    rng: random.Random,
    story: _Story,
    outlet: _Provider,
    published: datetime,
    topics: list[str],
    title: str,
    url: str,
) -> list[str]:
    """A ``related`` entry pointing at another article of the collection (by its webUrl)."""
    return [
        f"  - title: {_q(title)}",
        f"    excerpt: {_q(_sentence(rng, story.company, story.obj, topics))}",
        f"    publishedDateTime: {published:%Y-%m-%dT%H:%M:%SZ}",
        f"    webUrl: {_q(url)}",
        "    type: article",
        "    provider:",
        f"      name: {_q(outlet.name)}",
        f"      domain: {outlet.domain}",
        f"    quality: {max(0, min(200, int(rng.gauss(80, 30))))}",
    ]


def _related(
    rng: random.Random,
    outlets: list[_Provider],
    weights: list[float],
    company: str,
    topics: list[str],
    published: datetime,
) -> list[str]:
    obj = rng.choice(OBJECTS)
    provider = rng.choices(outlets, weights)[0]
    title = f"Why {company} {rng.choice(VERBS)} its {obj}"
    when = published + timedelta(minutes=rng.randint(-3000, 3000))
    url = f"https://www.{provider.domain}/{when:%Y/%m}/{rng.getrandbits(32):x}"
    return [
        f"  - title: {_q(title)}",
        f"    excerpt: {_q(_sentence(rng, company, obj, topics))}",
        f"    publishedDateTime: {when:%Y-%m-%dT%H:%M:%SZ}",
        f"    webUrl: {_q(url)}",
        "    type: article",
        "    provider:",
        f"      name: {_q(provider.name)}",
        f"      domain: {provider.domain}",
        f"    quality: {max(0, min(200, int(rng.gauss(80, 30))))}",
    ]


def _sentence(rng: random.Random, company: str, obj: str, topics: list[str]) -> str:
    return rng.choice(SENTENCES).format(
        company=company, object=obj, topic=rng.choice(topics), weekday=rng.choice(WEEKDAYS)
    )


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's escaping is a subset of YAML's)."""
    return json.dumps(text)
