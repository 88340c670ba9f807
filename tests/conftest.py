"""Shared fixtures: real collections on disk and real Whoosh indexes built from them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from searchidx import indexer
from searchidx.sample import write_sample
from searchidx.schema import from_record
from searchidx.store import IndexStore

SHARED = Path(__file__).resolve().parents[2] / "shared"
POWERAPPS = SHARED / "corpus" / "powerapps"
SEED_DIR = SHARED / "seed"
SAMPLE_COUNT = 400


def write_article(folder: Path, relpath: str, front_matter: str, body: str = "") -> Path:
    """Write one article file with the given front matter (YAML text, without delimiters)."""
    path = folder / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front_matter.strip()}\n---\n\n{body}\n", encoding="utf-8")
    return path


def stored_titles(store: IndexStore) -> dict[str, str]:
    """Path -> title of every live document, read back from the stored records."""
    index = store.open_index()
    try:
        with index.searcher() as searcher:
            articles = [from_record(fields["record"]) for fields in searcher.all_stored_fields()]
    finally:
        index.close()
    return {article.path: article.title for article in articles}


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated collection of SAMPLE_COUNT articles plus the seed (read-only by convention)."""
    folder = tmp_path_factory.mktemp("sample")
    write_sample(folder, SAMPLE_COUNT, seed=7)
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
def store(tmp_path: Path) -> IndexStore:
    """An empty index location."""
    return IndexStore(tmp_path / "index")
