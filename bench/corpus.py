"""The benchmark collections, the records the peers index, and the edits a sync must follow.

Collections come from the project's own generator (:func:`searchidx.sample.write_sample`), so
every engine sees the same articles. The peers do not parse YAML themselves: the articles are
parsed once with searchidx's parser into :class:`Doc` records (a pickle stream), so all engines
index the same fields and filter on the same values. searchidx indexes from the folder, through
its indexer, as it does in real use.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import random
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from searchidx.content import scan_content
from searchidx.errors import ArticleError
from searchidx.parsing import decode_article, parse_article, read_bounded
from searchidx.sample import SEED_ARTICLE_NAME, write_sample
from searchidx.schema import QUALITY_MISSING

#: Present while a collection is exactly as generated; removed while a sync edit is applied.
_PRISTINE = ".bench-pristine"


@dataclass(frozen=True, slots=True)
class Doc:
    """What every engine indexes of one article, with the values searchidx filters on."""

    path: str
    title: str
    excerpt: str
    body: str
    topics: tuple[str, ...]
    provider_name: str
    provider_domain: str
    category: str
    type: str
    published: bool
    date: datetime
    quality: int
    size: int
    mtime_ns: int

    @property
    def topic_text(self) -> str:
        return "\n".join(self.topics)

    @property
    def provider_text(self) -> str:
        return " ".join(filter(None, [self.provider_name, self.provider_domain]))

    @property
    def month(self) -> str:
        return f"{self.date:%Y-%m}"

    @property
    def published_value(self) -> str:
        return "true" if self.published else "false"


def load_doc(root: Path, relpath: str) -> Doc | None:
    """One file as a :class:`Doc` (None when searchidx would skip it)."""
    try:
        data, info = read_bounded(root, relpath)
        article = parse_article(decode_article(data, relpath), relpath)
    except ArticleError:
        return None
    return Doc(
        path=article.path,
        title=article.title,
        excerpt=article.excerpt,
        body=article.body,
        topics=article.topics,
        provider_name=article.provider.name,
        provider_domain=article.provider.domain,
        category=article.category.lower(),
        type=article.type.lower(),
        published=article.published,
        date=article.published_at,
        quality=QUALITY_MISSING if article.quality is None else article.quality,
        size=info.st_size,
        mtime_ns=info.st_mtime_ns,
    )


def collection(workdir: Path, size: int, seed: int) -> Path:
    """The generated collection of ``size`` articles, made once and reused while pristine."""
    folder = workdir / f"articles-{size}-seed{seed}"
    if not (folder / _PRISTINE).is_file():
        shutil.rmtree(folder, ignore_errors=True)
        write_sample(folder, size, seed)
        (folder / _PRISTINE).write_text(json.dumps({"size": size, "seed": seed}))
    return folder


@dataclass
class ParseStats:
    seconds: float
    documents: int
    processes: int


def write_records(folder: Path, out: Path, processes: int | None = None) -> ParseStats:
    """Parse every file of ``folder`` once into a pickle stream of :class:`Doc` at ``out``."""
    processes = processes or os.cpu_count() or 1
    paths = sorted(scan_content(folder))
    started = time.perf_counter()
    count = 0
    temp = out.with_suffix(".tmp")
    chunks = [paths[i : i + 500] for i in range(0, len(paths), 500)]
    with open(temp, "wb") as file, multiprocessing.get_context("spawn").Pool(processes) as pool:
        for docs in pool.imap(_load_chunk, [(folder, chunk) for chunk in chunks]):
            for doc in docs:
                pickle.dump(doc, file, protocol=pickle.HIGHEST_PROTOCOL)
                count += 1
    os.replace(temp, out)
    return ParseStats(time.perf_counter() - started, count, processes)


def _load_chunk(job: tuple[Path, list[str]]) -> list[Doc]:
    folder, paths = job
    return [doc for path in paths if (doc := load_doc(folder, path)) is not None]


def read_records(path: Path) -> Iterator[Doc]:
    """The records of :func:`write_records`, one at a time (never all in memory)."""
    with open(path, "rb") as file:
        while True:
            try:
                yield pickle.load(file)
            except EOFError:
                return


# Edits for the incremental sync ------------------------------------------------------------


@dataclass
class Edit:
    """Files changed, deleted and added in a collection, with what is needed to undo it."""

    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    originals: dict[str, tuple[bytes, int, int]] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, int]:
        return {
            "changed": len(self.changed),
            "deleted": len(self.deleted),
            "added": len(self.added),
        }


def apply_edit(
    folder: Path, seed: int, change: float = 0.01, delete: float = 0.001, add: float = 0.001
) -> Edit:
    """Change, delete and add a fraction of the files (deterministic for ``seed``)."""
    (folder / _PRISTINE).unlink(missing_ok=True)
    paths = sorted(path for path in scan_content(folder) if path != SEED_ARTICLE_NAME)
    rng = random.Random(f"edit-{seed}")
    count = len(paths)
    picked = rng.sample(paths, max(1, round(count * change)) + max(1, round(count * delete)))
    edit = Edit(changed=picked[: max(1, round(count * change))])
    edit.deleted = picked[len(edit.changed) :]
    for path in picked:
        info = (folder / path).stat()
        edit.originals[path] = ((folder / path).read_bytes(), info.st_atime_ns, info.st_mtime_ns)
    for path in edit.changed:
        text = edit.originals[path][0].decode()
        text = text.replace('title: "', 'title: "Updated: ', 1)
        (folder / path).write_text(text + "\nThe story was updated with new details.\n")
    for path in edit.deleted:
        (folder / path).unlink()
    edit.added = _add_files(folder, max(1, round(count * add)), seed)
    return edit


def _add_files(folder: Path, count: int, seed: int) -> list[str]:
    """New articles from the generator with another seed, under ``added/``."""
    target = folder / "added"
    target.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as temp:
        write_sample(Path(temp), count, seed + 1)
        added = []
        for source in sorted(Path(temp).rglob("*.md")):
            shutil.move(source, target / source.name)
            added.append(f"added/{source.name}")
    return added


def revert_edit(folder: Path, edit: Edit) -> None:
    """Put the collection back as generated, mtimes included, and mark it pristine again."""
    for path, (data, atime_ns, mtime_ns) in edit.originals.items():
        (folder / path).write_bytes(data)
        os.utime(folder / path, ns=(atime_ns, mtime_ns))
    shutil.rmtree(folder / "added", ignore_errors=True)
    (folder / _PRISTINE).write_text("{}")


def changed_files(folder: Path, known: dict[str, tuple[int, int]]) -> tuple[list[str], list[str]]:
    """(new or stat-changed paths, removed paths) against the ``known`` (size, mtime_ns) of
    each path: the cheap first test every engine's sync starts with."""
    on_disk = scan_content(folder)
    upserts = sorted(
        path for path, state in on_disk.items() if known.get(path) != (state.size, state.mtime_ns)
    )
    removed = sorted(known.keys() - on_disk.keys())
    return upserts, removed


def load_docs(folder: Path, paths: Iterable[str]) -> list[Doc]:
    return [doc for path in paths if (doc := load_doc(folder, path)) is not None]
