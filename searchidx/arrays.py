"""The per-document arrays a search needs, written beside the index at commit and mapped from
disk by every later reader.

A snapshot's arrays (live documents, dates, qualities, sort orders, facet values, field
lengths: :mod:`searchidx.snapshot`) are the same for every process reading one commit, but
building them from Whoosh's columns cost each new process a large part of a one-shot
``searchidx query``. So the indexer writes them once, after each commit, into one file,
``<generation>/arrays-<Whoosh generation>.bin`` (a JSON header naming each array's type, shape
and place, then the arrays; written beside, synced, then renamed into place), and a reader
maps it (only the pages a search touches are read, and they are shared between processes).

A reader uses them only when the header names exactly the segments it reads (their ids,
document counts and deletions) and was written by this format: arrays of an older commit, of
a rebuilt generation or of a killed writer are never used. Missing or stale, the snapshot
builds its arrays from the columns as before: slower, the same answers.

A sync writes its arrays from the last set when that set's segments lead the new commit's
unchanged (a sync adds its segments after them, and deletes by marking documents): their
rows are copied, only the new segments' rows are read from the columns, and what depends on
every document (which are live, sort orders, quality percentiles, the facets' value ids) is
derived again, as a full write derives it, to the byte. Once small segments were merged
(or the leading segments differ in any other way), the documents are numbered anew, and
everything is read from the columns again.

The writer also notes the Whoosh installation whose layout it checked
(:func:`searchidx.whoosh_internals.layout_known`): a reader running the same one trusts that
check instead of repeating it (the check builds a small index: 0.2 s per process).
"""

from __future__ import annotations

import json
import math
import mmap
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from whoosh import index as whoosh_index
from whoosh.reading import IndexReader

from searchidx import whoosh_internals
from searchidx.snapshot import IndexSnapshot, Leading

#: What the arrays hold and how they are named: change it whenever either changes, and older
#: arrays are ignored (rebuilt from the columns until the next sync writes new ones). 2: the
#: orders, ranks and qualities as int32, the field lengths as float32. 3: written compactly
#: (:func:`_compact`).
FORMAT = 3
_PREFIX = "arrays-"
_SUFFIX = ".bin"
_MAGIC = b"SIDXARRS"
#: Each array starts at a multiple of this many bytes of the file.
_ALIGN = 64


class StoredArrays(NamedTuple):
    """The arrays written at commit for the segments a reader reads, mapped from disk."""

    arrays: dict[str, np.ndarray]
    #: Each facet's values, in value-id order.
    facet_values: dict[str, tuple[str, ...]]
    #: The Whoosh installation whose layout the writer checked (None: it found it unknown).
    layout_checked: str | None
    #: What identifies the documents they were written for (see :func:`_segments`).
    segments: list[list[Any]]

    def array(self, name: str) -> np.ndarray | None:
        """The array a snapshot reads under ``name``, as it built it (:func:`_compact` undone:
        a field's lengths decoded from their bytes, a facet's value ids widened to int32, its
        documents the live ones where they were left out)."""
        found = self.arrays.get(name)
        if name.startswith(_LENGTHS):
            codes = self.arrays.get(name.replace(_LENGTHS, _LENGTH_CODES, 1))
            return found if codes is None else _LENGTH_OF_CODE[codes]
        if not name.startswith(_FACET):
            return found
        if name.endswith(_IDS):
            return None if found is None else found.astype(np.int32, copy=False)
        live = self.arrays.get("live")
        if found is None and name.endswith(_DOCS) and live is not None:
            return _live_docs(live) if name.replace(_DOCS, _IDS) in self.arrays else None
        return found

    def facet(self, name: str) -> tuple[tuple[str, ...], np.ndarray, np.ndarray] | None:
        """A facet's values, and its (document, value id) pairs."""
        values = self.facet_values.get(name)
        docs, ids = self.array(f"facet-{name}-docs"), self.array(f"facet-{name}-ids")
        if values is None or docs is None or ids is None:
            return None
        return values, docs, ids


def open_arrays(index_dir: Path, reader: IndexReader) -> StoredArrays | None:
    """The arrays written for exactly what ``reader`` reads, mapped; None if there are none.

    The file is mapped now: a sync may remove it later, and a mapped file stays readable
    once removed (POSIX)."""
    stored = _read(index_dir / f"{_PREFIX}{reader.generation()}{_SUFFIX}")
    return stored if stored is not None and stored.segments == _segments(reader) else None


def _read(path: Path) -> StoredArrays | None:
    """The arrays in ``path``, mapped; None if there are none, damaged, or of another format."""
    try:
        with open(path, "rb") as file:
            mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        header, header_end = _header(mapped)
        if header.get("format") != FORMAT:
            return None
        start = _aligned(header_end)
        arrays = {}
        for name, (dtype, shape, offset) in header["arrays"].items():
            count = math.prod(shape)
            if start + offset + count * np.dtype(dtype).itemsize > len(mapped):
                return None  # cut short
            array = np.frombuffer(mapped, dtype=dtype, count=count, offset=start + offset)
            arrays[name] = array.reshape(shape)
        return StoredArrays(
            arrays=arrays,
            facet_values={name: tuple(values) for name, values in header["facets"].items()},
            layout_checked=header.get("whoosh"),
            segments=header["segments"],
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # none, or damaged
        return None


def _header(mapped: mmap.mmap) -> tuple[dict[str, Any], int]:
    """An arrays file's header, and where it ends; ValueError if it is not one."""
    if mapped[: len(_MAGIC)] != _MAGIC:
        raise ValueError("not an arrays file")
    header_end = 16 + int.from_bytes(mapped[8:16], "little")
    header = json.loads(mapped[16:header_end])
    if not isinstance(header, dict):
        raise ValueError("not an arrays header")
    return header, header_end


def write_arrays(index_dir: Path) -> bool:
    """Write the arrays of the index in ``index_dir`` as last committed, unless written
    already, and remove every older set. Whether they were written now.

    The last set an earlier commit left here gives the rows of the segments it was written
    for, when they lead this commit's (see the module's notes), and names the Whoosh
    installation whose layout its writer checked: a sync in the same installation trusts
    that check instead of repeating it (0.2 s of every ``searchidx index``)."""
    last = trust_layout_checked(index_dir)
    index = whoosh_index.open_dir(str(index_dir))
    try:
        with index.searcher() as searcher:
            reader = searcher.reader()
            leading = None if last is None else _leading(last, reader)
            return _write(index_dir, reader, IndexSnapshot(searcher, 0, leading=leading))
    finally:
        index.close()


def trust_layout_checked(index_dir: Path) -> StoredArrays | None:
    """Trust the layout check the writer of the last set of arrays in ``index_dir`` made,
    before reading the index the fast way (a sync reads the files it indexed); that set."""
    last = _last_set(index_dir)
    whoosh_internals.trust_layout(None if last is None else last.layout_checked)
    return last


def _leading(last: StoredArrays, reader: IndexReader) -> Leading | None:
    """``last`` as the arrays of ``reader``'s leading segments, if its segments are those,
    with the same documents (deletions may differ); None if not (merged)."""
    earlier, now = last.segments, _segments(reader)
    if len(earlier) > len(now) or any(
        was[:2] != segment[:2] for was, segment in zip(earlier, now, strict=False)
    ):
        return None
    documents = sum(count for _id, count, _live in earlier)
    live = last.array("live")
    return Leading(last, documents) if live is not None and len(live) == documents else None


def _write(index_dir: Path, reader: IndexReader, snapshot: IndexSnapshot) -> bool:
    path = index_dir / f"{_PREFIX}{reader.generation()}{_SUFFIX}"
    written = open_arrays(index_dir, reader) is None
    if written:
        built, facet_values = snapshot.arrays_to_store()
        arrays = _compact(built)
        places, offset = {}, 0
        for name, array in arrays.items():
            places[name] = (array.dtype.str, list(array.shape), offset)
            offset = _aligned(offset + array.nbytes)
        checked = whoosh_internals.layout_known()
        header = json.dumps(
            {
                "format": FORMAT,
                "segments": _segments(reader),
                "whoosh": whoosh_internals.installation() if checked else None,
                "arrays": places,
                "facets": {name: list(values) for name, values in facet_values.items()},
            }
        ).encode()
        temp = index_dir / f".{path.name}.{os.getpid()}.tmp"
        try:
            with open(temp, "wb") as out:
                out.write(_MAGIC + len(header).to_bytes(8, "little") + header)
                start = _aligned(out.tell())
                for name, array in arrays.items():
                    out.seek(start + places[name][2])
                    out.write(np.ascontiguousarray(array).tobytes())
                out.truncate(start + offset)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    for other in index_dir.glob(f"*{_PREFIX}*"):  # older sets, and a killed writer's
        if other != path:
            other.unlink(missing_ok=True)
    return written


_LENGTHS, _LENGTH_CODES = "lengths-", "length-codes-"
_FACET, _DOCS, _IDS = "facet-", "-docs", "-ids"
_RANK = "rank-"
#: A field's length byte -> the length the snapshot scores with (float32, exact).
_LENGTH_OF_CODE = whoosh_internals.LENGTH_OF_BYTE.astype(np.float32)
#: A whole length (each a byte decodes to is one, at most 106,374) -> its byte, 0 for a length
#: no byte decodes to: looked up in 0.3 ms for 100,000 lengths, where a binary search of the
#: bytes' lengths took 4 (a 1% sync's arrays encode five fields' at 100,000 articles).
_CODE_OF_LENGTH = np.zeros(int(_LENGTH_OF_CODE[-1]) + 1, dtype=np.uint8)
_CODE_OF_LENGTH[_LENGTH_OF_CODE.astype(np.int64)] = np.arange(len(_LENGTH_OF_CODE))


def _compact(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays as written (:meth:`StoredArrays.array` reads them back as built): a field's
    lengths as their length bytes (the column's, which they decode), not float32; a facet's
    value ids in the fewest bytes that hold them; its documents left out where they are the
    live ones (the month facet's always, another's where every live document has a value).
    At 100,000 articles: 6.5 MiB where 11.9 were, each decoded once per process reading it
    (0.1-0.2 ms a field or facet, where the one-shot query it serves takes 100). A sort's
    ranks are left out too: the snapshot inverts its stored order (1.1 MiB for 0.4 ms a
    sort)."""
    live_docs = _live_docs(arrays["live"])
    compact = {}
    for name, array in arrays.items():
        if name.startswith(_RANK):
            continue
        if name.startswith(_LENGTHS):
            codes = _CODE_OF_LENGTH[np.clip(array, 0, len(_CODE_OF_LENGTH) - 1).astype(np.int64)]
            if np.array_equal(_LENGTH_OF_CODE[codes], array):
                compact[name.replace(_LENGTHS, _LENGTH_CODES, 1)] = codes
                continue
        elif name.startswith(_FACET) and name.endswith(_DOCS):
            if array.dtype == live_docs.dtype and np.array_equal(array, live_docs):
                continue
        elif name.startswith(_FACET) and name.endswith(_IDS) and len(array):
            array = array.astype(_fewest_bytes(int(array.min()), int(array.max())), copy=False)
        compact[name] = array
    return compact


def _fewest_bytes(least: int, most: int) -> type[np.signedinteger]:
    """The narrowest signed integer type holding ``least`` to ``most``."""
    for kind in (np.int8, np.int16):
        if np.iinfo(kind).min <= least and most <= np.iinfo(kind).max:
            return kind
    return np.int32


def _live_docs(live: np.ndarray) -> np.ndarray:
    """The live docnums, as a facet's table holds its documents."""
    return np.flatnonzero(live).astype(np.int32)


def _last_set(index_dir: Path) -> StoredArrays | None:
    """The arrays of the latest commit that has them in ``index_dir``, if any (a sync
    removes the older sets once it wrote its own)."""
    numbered = []
    for path in index_dir.glob(f"{_PREFIX}*{_SUFFIX}"):
        number = path.name.removeprefix(_PREFIX).removesuffix(_SUFFIX)
        if number.isdigit():
            numbered.append((int(number), path))
    return _read(max(numbered)[1]) if numbered else None


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


def _segments(reader: IndexReader) -> list[list[Any]]:
    """What identifies the documents a reader reads: each segment's id, documents and
    deletions (a sync that deletes changes the last, one that adds adds a segment)."""
    return [
        [segment.segment_id(), leaf.doc_count_all(), leaf.doc_count()]
        for leaf, _base in reader.leaf_readers()
        if (segment := leaf.segment()) is not None
    ]
