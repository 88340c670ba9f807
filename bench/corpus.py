"""The benchmark collections, how the peers read them, and the edits a sync must follow.

Collections come from the project's own generator (:func:`searchidx.sample.write_sample`) with
its Zipf vocabulary, so every engine sees the same articles and realistic posting lists. Each
peer reads the files itself, inside its timed build, the way its own expert would: a plain
read, the YAML front matter through libyaml's C loader, and only the fields it indexes
(:func:`read_doc`), in as many processes as searchidx's indexer uses for the same files.
searchidx indexes from the folder, through its indexer, as it does in real use.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

import yaml

from searchidx.content import scan_content
from searchidx.sample import SEED_ARTICLE_NAME, write_sample
from searchidx.schema import QUALITY_MISSING

#: Present while a collection is exactly as generated; removed while a sync edit is applied.
_PRISTINE = ".bench-pristine"
#: Distinct words of the generated collections' Zipf vocabulary.
VOCABULARY = 20_000
#: Files a peer's reading process takes at a time.
CHUNK = 250

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FENCE = re.compile(r"^---[ \t]*\r?$", re.MULTILINE)


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


def read_doc(root: Path, relpath: str) -> Doc | None:
    """One file as a peer reads it: the fields it indexes, None for a file without a title or
    a date. No validation beyond that (searchidx's parser checks much more, and pays for it)."""
    try:
        with open(root / relpath, "rb") as file:
            info = os.fstat(file.fileno())
            text = file.read().decode("utf-8")
        if not text.startswith("---"):
            return None
        start = text.index("\n") + 1
        fence = _FENCE.search(text, start)
        if fence is None:
            return None
        fields = yaml.load(text[start : fence.start()], Loader=_Loader)
        title = _text(fields.get("title"))
        published_at = _utc(fields["publishedDateTime"])
        quality = fields.get("quality")
        quality = QUALITY_MISSING if quality is None else int(quality)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError, KeyError, ValueError):
        return None
    if not title:
        return None
    provider = fields.get("provider") or {}
    return Doc(
        path=relpath,
        title=title,
        excerpt=_text(fields.get("excerpt")),
        body=text[fence.end() :].removeprefix("\n").strip(),
        topics=tuple(dict.fromkeys(t for t in map(_text, fields.get("topics") or ()) if t)),
        provider_name=_text(provider.get("name")),
        provider_domain=_text(provider.get("domain")),
        category=_text(fields.get("category")).lower(),
        type=(_text(fields.get("type")) or "article").lower(),
        published=fields.get("published", True) is not False,
        date=published_at,
        quality=quality,
        size=info.st_size,
        mtime_ns=info.st_mtime_ns,
    )


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _utc(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    raise ValueError(value)


@contextmanager
def read_docs(folder: Path, paths: list[str], processes: int) -> Iterator[Iterator[Doc]]:
    """The files ``paths`` as :class:`Doc`, in order, read by ``processes`` processes.

    The processes start on entry, before the caller opens its index: a writer's threads must
    not exist when they fork.
    """
    if processes <= 1:
        yield (doc for path in paths if (doc := read_doc(folder, path)) is not None)
        return
    chunks = [(folder, paths[i : i + CHUNK]) for i in range(0, len(paths), CHUNK)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        yield (doc for docs in pool.imap(_read_chunk, chunks) for doc in docs)


def _read_chunk(job: tuple[Path, list[str]]) -> list[Doc]:
    folder, paths = job
    return [doc for path in paths if (doc := read_doc(folder, path)) is not None]


def collection(workdir: Path, size: int, seed: int) -> Path:
    """The generated collection of ``size`` articles, made once and reused while pristine."""
    folder = workdir / f"articles-{size}-seed{seed}-words{VOCABULARY}"
    if not (folder / _PRISTINE).is_file():
        shutil.rmtree(folder, ignore_errors=True)
        write_sample(folder, size, seed, vocabulary=VOCABULARY)
        (folder / _PRISTINE).write_text(json.dumps({"size": size, "seed": seed}))
    return folder


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
        write_sample(Path(temp), count, seed + 1, vocabulary=VOCABULARY)
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
