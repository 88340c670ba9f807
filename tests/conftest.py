"""Shared fixtures: collections on disk and real Whoosh indexes built from them.

Every file a test reads is in the repository: the sample generator's articles, the seed
article bundled with searchidx, and ``tests/articles``: hand-written articles in the shape of
real ones (the seed's front matter: provider logos, images, related coverage with AMP links,
videos with ``featuredContent`` and no ``webUrl``, ``secured`` blobs; Markdown bodies with
lists, tables and non-ASCII text) about made-up companies, written for this project.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from searchidx import indexer
from searchidx.articles import Article
from searchidx.content import scan_content
from searchidx.parsing import read_article
from searchidx.sample import SEED_ARTICLE, write_sample
from searchidx.service import SearchService
from searchidx.store import IndexStore
from searchidx.web.app import create_app
from tests.web_helpers import STALL_PROOF_TIMEOUT

ARTICLES_DIR = Path(__file__).parent / "articles"
ARTICLES_COUNT = 10
SAMPLE_COUNT = 400


def write_article(folder: Path, relpath: str, front_matter: str, body: str = "") -> Path:
    """Write one article file with the given front matter (YAML text, without delimiters)."""
    path = folder / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front_matter.strip()}\n---\n\n{body}\n", encoding="utf-8")
    return path


def indexed(root: Path, articles: Iterable[tuple[str, str, str]]) -> IndexStore:
    """An index, at ``root``/index, of ``articles`` (path, front matter, body) written into
    ``root``/content: the few articles of a module whose answers it knows by heart."""
    folder = root / "content"
    folder.mkdir(parents=True, exist_ok=True)
    for relpath, front_matter, body in articles:
        write_article(folder, relpath, front_matter, body)
    store = IndexStore(root / "index")
    indexer.sync(store, folder)
    return store


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache folder of the test run's own (``XDG_CACHE_HOME``, inherited by the processes
    the tests start): the layout self-test's verdict is never the user's, nor the user's the
    tests'."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder))
        yield folder


def real_shaped_articles() -> list[Article]:
    """The hand-written articles and the bundled seed article, parsed."""
    articles = [read_article(ARTICLES_DIR, path) for path in sorted(scan_content(ARTICLES_DIR))]
    return [*articles, read_seed()]


def read_seed() -> Article:
    return read_article(SEED_ARTICLE.parent, SEED_ARTICLE.name)


def stored_titles(store: IndexStore) -> dict[str, str]:
    """Path -> title of every live document, read back from the stored records."""
    articles = store.articles()
    return {article.path: article.title for article in articles}


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated collection of SAMPLE_COUNT articles plus the seed (read-only by convention)."""
    folder = tmp_path_factory.mktemp("sample")
    write_sample(folder, SAMPLE_COUNT, seed=7)
    return folder


@pytest.fixture
def seed_dir(tmp_path: Path) -> Path:
    """A folder holding only the seed article, as the sample writes it."""
    folder = tmp_path / "seed"
    write_sample(folder, 0)
    return folder


@pytest.fixture(scope="session")
def sample_store(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> IndexStore:
    """An index of ``sample_dir`` (read-only by convention: copy it to change it)."""
    store = IndexStore(tmp_path_factory.mktemp("sample-index"))
    indexer.sync(store, sample_dir)
    return store


@pytest.fixture
def content(tmp_path: Path, sample_dir: Path) -> Path:
    """A private, writable copy of the sample collection."""
    folder = tmp_path / "content"
    shutil.copytree(sample_dir, folder)
    return folder


@pytest.fixture
def damaged_index(sample_store: IndexStore, tmp_path: Path) -> Path:
    """A copy of the sample index whose term indexes' tables do not read (a disk error, a file
    changed by hand)."""
    damaged = tmp_path / "damaged"
    shutil.copytree(sample_store.location, damaged)
    for segment in damaged.glob("gen-*/*.seg"):
        data = bytearray(segment.read_bytes())
        table_end = data.index(b"SXT1", data.index(b"SXT1") + 4)  # the term index's last magic
        data[table_end - 5] = ord("{")  # inside its table of fields (JSON)
        segment.write_bytes(bytes(data))
    return damaged


@pytest.fixture
def store(tmp_path: Path) -> IndexStore:
    """An empty index location."""
    return IndexStore(tmp_path / "index")


@pytest.fixture(scope="module")
def app_store(sample_store: IndexStore) -> IndexStore:
    """The index the module's web ``app`` serves; a module overrides it to serve another."""
    return sample_store


@pytest.fixture(scope="module")
def app(app_store: IndexStore) -> Iterator[Flask]:
    """The real web app over ``app_store``, its service closed at the end of the module."""
    search_service = SearchService(app_store, search_timeout=STALL_PROOF_TIMEOUT)
    app = create_app(search_service=search_service, config={"TESTING": True})
    yield app
    app.extensions["searchidx"].close()


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def service(app: Flask) -> SearchService:
    """The app's own search service."""
    return app.extensions["searchidx"]
