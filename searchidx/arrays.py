"""The per-document arrays a search needs, written beside the index at commit and mapped from
disk by every later reader.

A snapshot's arrays (live documents, dates, qualities, sort orders, facet values, field
lengths: :mod:`searchidx.snapshot`) are the same for every process reading one commit, but
building them from Whoosh's columns took each new process most of a second and some 400 MB at
100,000 articles: the whole of a one-shot ``searchidx query``. So the indexer writes them once,
after each commit, into ``<generation>/arrays-<Whoosh generation>/`` (one ``.npy`` file each
and a ``manifest.json``, written last, then the folder renamed into place), and a reader maps
them with numpy (only the pages a search touches are read, and they are shared between
processes).

A reader uses them only when the manifest names exactly the segments it reads (their ids,
document counts and deletions) and was written by this format: arrays of an older commit, of
a rebuilt generation or of a killed writer are never used. Missing or stale, the snapshot
builds its arrays from the columns as before: slower, the same answers.

The writer also notes the Whoosh installation whose layout it checked
(:func:`searchidx.whoosh_internals.layout_known`): a reader running the same one trusts that
check instead of repeating it (the check builds a small index: 0.2 s per process).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from whoosh import index as whoosh_index
from whoosh.reading import IndexReader

from searchidx import whoosh_internals
from searchidx.snapshot import IndexSnapshot

#: What the arrays hold and how they are named: change it whenever either changes, and older
#: arrays are ignored (rebuilt from the columns until the next sync writes new ones).
FORMAT = 1
_PREFIX = "arrays-"
_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StoredArrays:
    """The arrays written at commit for the segments a reader reads, mapped from disk."""

    arrays: dict[str, np.ndarray]
    #: Each facet's values, in value-id order.
    facet_values: dict[str, tuple[str, ...]]
    #: The Whoosh installation whose layout the writer checked (None: it found it unknown).
    layout_checked: str | None

    def array(self, name: str) -> np.ndarray | None:
        return self.arrays.get(name)

    def facet(self, name: str) -> tuple[tuple[str, ...], np.ndarray, np.ndarray] | None:
        """A facet's values, and its (document, value id) pairs."""
        values = self.facet_values.get(name)
        docs, ids = self.arrays.get(f"facet-{name}-docs"), self.arrays.get(f"facet-{name}-ids")
        if values is None or docs is None or ids is None:
            return None
        return values, docs, ids


def open_arrays(index_dir: Path, reader: IndexReader) -> StoredArrays | None:
    """The arrays written for exactly what ``reader`` reads, mapped; None if there are none.

    Every file is mapped now: a sync may remove the folder later, and a mapped file stays
    readable once removed (POSIX), so a snapshot never finds half of its arrays gone."""
    folder = index_dir / f"{_PREFIX}{reader.generation()}"
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
        if manifest.get("format") != FORMAT or manifest.get("segments") != _segments(reader):
            return None
        arrays = {}
        for name, shape in manifest["arrays"].items():
            mapped = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            if list(mapped.shape) != shape:
                return None
            arrays[name] = mapped.view(np.ndarray)  # results of operations are plain arrays
    except (OSError, ValueError, KeyError, TypeError):  # none, being replaced, or damaged
        return None
    return StoredArrays(
        arrays=arrays,
        facet_values={name: tuple(values) for name, values in manifest["facets"].items()},
        layout_checked=manifest.get("whoosh"),
    )


def write_arrays(index_dir: Path) -> bool:
    """Write the arrays of the index in ``index_dir`` as last committed, unless written
    already, and remove every older set. Whether they were written now."""
    index = whoosh_index.open_dir(str(index_dir))
    try:
        with index.searcher() as searcher:
            return _write(index_dir, searcher.reader(), IndexSnapshot(searcher, 0))
    finally:
        index.close()


def _write(index_dir: Path, reader: IndexReader, snapshot: IndexSnapshot) -> bool:
    folder = index_dir / f"{_PREFIX}{reader.generation()}"
    written = open_arrays(index_dir, reader) is None
    if written:
        arrays, facet_values = snapshot.arrays_to_store()
        temp = index_dir / f".{folder.name}.{os.getpid()}.tmp"
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
        try:
            for name, array in arrays.items():
                _write_synced(temp / f"{name}.npy", lambda out, a=array: np.save(out, a))
            checked = whoosh_internals.layout_known()
            manifest = {
                "format": FORMAT,
                "segments": _segments(reader),
                "whoosh": whoosh_internals.installation() if checked else None,
                "arrays": {name: list(array.shape) for name, array in arrays.items()},
                "facets": {name: list(values) for name, values in facet_values.items()},
            }
            _write_synced(temp / _MANIFEST, lambda out: out.write(json.dumps(manifest).encode()))
            shutil.rmtree(folder, ignore_errors=True)  # a set the manifest did not match
            os.replace(temp, folder)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
    for path in index_dir.glob(f"*{_PREFIX}*"):  # older sets, and a killed writer's
        if path != folder:
            shutil.rmtree(path, ignore_errors=True)
    return written


def _write_synced(path: Path, write: Any) -> None:
    with open(path, "wb") as out:
        write(out)
        out.flush()
        os.fsync(out.fileno())


def _segments(reader: IndexReader) -> list[list[Any]]:
    """What identifies the documents a reader reads: each segment's id, documents and
    deletions (a sync that deletes changes the last, one that adds adds a segment)."""
    return [
        [segment.segment_id(), leaf.doc_count_all(), leaf.doc_count()]
        for leaf, _base in reader.leaf_readers()
        if (segment := leaf.segment()) is not None
    ]
