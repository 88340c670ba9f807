"""The display records (JSON, see :func:`~searchidx.schema.stored_record`) in a column of
their own, each deflated with its segment's first records as zlib's preset dictionary.

Whoosh's stored fields are a pickle per document, each compressed alone: a record of 2.6 KB
took 1.2 KB, a third of the index (115 MiB at 100,000 articles). Records share their keys and
most of their words, so with 32 KB of other records as the dictionary one takes 0.62 KB and is
still read alone: a hit decompresses its own record (10 us; Whoosh's pickled one took 15).
Batching records into compressed blocks saves as much only at 64 records a block, each hit
then decompressing 64. The column keeps each record's end, so finding a record is two reads.

Layout of a segment's column: the records' raw deflate streams, the dictionary, each
document's end offset (big-endian uint32; a document without a record ends where the one
before does, so a segment's records take at most 4 GiB), then the dictionary's length (uint32).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import orjson
from whoosh import columns
from whoosh.reading import IndexReader

#: The dictionary: a segment's first records, up to this many bytes (zlib's window).
DICTIONARY_BYTES = 32 * 1024
#: zlib's level. On 5,000 records of the benchmark's collection, writing and size a record:
#: 1 38 us 719 B, 3 46 us 636 B, 6 79 us 602 B (Whoosh's stored field: 44 us, 1.2 KB); 3 keeps
#: the build as fast as it was, 6 would save 3.3 MiB at 100,000 articles for 3.5 s of CPU.
LEVEL = 3
_WINDOW_BITS = -15  # a raw deflate stream: no header, no checksum (the file has neither)
_LENGTH = struct.Struct("!I")
_ENDS = np.dtype(">u4")


class RecordColumn(columns.Column):
    """A column of bytes, each value deflated with the dictionary of its segment."""

    _default = b""

    def writer(self, dbfile: Any) -> RecordColumn.Writer:
        return self.Writer(dbfile)

    def reader(self, dbfile: Any, basepos: int, length: int, doccount: int) -> Any:
        return self.Reader(dbfile, basepos, length, doccount)

    class Writer(columns.ColumnWriter):
        """Keeps the first records until they fill the dictionary, then writes each."""

        def __init__(self, dbfile: Any) -> None:
            self._dbfile = dbfile
            self._count = 0
            self._waiting: list[bytes] = []  # the records before the dictionary is known
            self._waiting_bytes = 0
            self._dictionary: bytes | None = None
            self._compressor: Any = None
            self._ends: list[int] = []
            self._written = 0

        def fill(self, docnum: int) -> None:
            while self._count < docnum:
                self._take(b"")
                self._count += 1

        def add(self, docnum: int, value: bytes) -> None:
            self.fill(docnum)
            self._take(value)
            self._count = docnum + 1

        def finish(self, doccount: int) -> None:
            self.fill(doccount)
            if self._dictionary is None:
                self._start()
            assert self._dictionary is not None  # set by _start
            ends = np.asarray(self._ends, dtype=_ENDS).tobytes()
            self._dbfile.write(self._dictionary + ends + _LENGTH.pack(len(self._dictionary)))

        def _take(self, value: bytes) -> None:
            if self._dictionary is not None:
                self._write(value)
                return
            self._waiting.append(value)
            self._waiting_bytes += len(value)
            if self._waiting_bytes >= DICTIONARY_BYTES:
                self._start()

        def _start(self) -> None:
            """Make the dictionary of the records so far, and write them with it."""
            self._dictionary = b"".join(self._waiting)[:DICTIONARY_BYTES]
            self._compressor = zlib.compressobj(
                LEVEL, zlib.DEFLATED, _WINDOW_BITS, 9, zlib.Z_DEFAULT_STRATEGY, self._dictionary
            )
            waiting, self._waiting = self._waiting, []
            for value in waiting:
                self._write(value)

        def _write(self, value: bytes) -> None:
            if value:
                compressor = self._compressor.copy()  # primed with the dictionary once
                data = compressor.compress(value) + compressor.flush()
                self._dbfile.write(data)
                self._written += len(data)
            self._ends.append(self._written)

    class Reader(columns.ColumnReader):
        def __init__(self, dbfile: Any, basepos: int, length: int, doccount: int) -> None:
            self._dbfile = dbfile
            self._basepos = basepos
            self._doccount = doccount
            end = basepos + length - _LENGTH.size
            (dictionary_length,) = _LENGTH.unpack(dbfile.get(end, _LENGTH.size))
            ends_at = end - _ENDS.itemsize * doccount
            # Read where a hit's record is, not turned into a list: a one-shot query reads
            # ten records, maybe from as many segments.
            self._ends = np.frombuffer(dbfile.get(ends_at, end - ends_at), _ENDS)
            self._dictionary = dbfile.get(ends_at - dictionary_length, dictionary_length)

        def __len__(self) -> int:
            return self._doccount

        def __getitem__(self, docnum: int) -> bytes:
            end = int(self._ends[docnum])
            return self._record(int(self._ends[docnum - 1]) if docnum else 0, end)

        def __iter__(self) -> Iterator[bytes]:
            ends = self._ends.tolist()
            return map(self._record, [0, *ends[:-1]], ends)

        def _record(self, start: int, end: int) -> bytes:
            if start == end:
                return b""
            data = self._dbfile.get(self._basepos + start, end - start)
            return zlib.decompressobj(_WINDOW_BITS, self._dictionary).decompress(data)


def records_of(reader: IndexReader) -> Any:
    """The records of ``reader``'s documents, by docnum: its record column or, in an index of
    schema 5 or older (the record a Whoosh stored field), its stored fields, read so until
    the index is rebuilt (searching it says to)."""
    if reader.schema["record"].column_type is None:
        return _StoredRecords(reader)
    return reader.column_reader("record", translate=False)


class _StoredRecords:
    def __init__(self, reader: IndexReader) -> None:
        self.reader = reader

    def __getitem__(self, docnum: int) -> str:
        return cast(str, self.reader.stored_fields(docnum)["record"])


#: What starts a record that only ``json`` reads as written: an integer past 64 bits, which
#: orjson writes not at all and reads as a float. JSON allows the space before a value.
JSON_ONLY = b" "


def decoded(record: str | bytes) -> dict[str, Any]:
    """A record's JSON object, read by orjson (a hit's 8 us by ``json.loads``, 3.5 by it);
    what orjson refuses (a lone surrogate, a byte order mark) or would misread (a record
    starting with :data:`JSON_ONLY`) by ``json``, so that every record reads as ``json.loads``
    reads it."""
    if record[:1] in (JSON_ONLY, JSON_ONLY.decode()):
        return cast(dict[str, Any], json.loads(record))
    try:
        found: dict[str, Any] = orjson.loads(record)
    except orjson.JSONDecodeError:
        found = json.loads(record)
    return found


def live_records(reader: IndexReader) -> Iterator[bytes | str]:
    """Every live document's record, in docnum order (a whole index read back)."""
    for leaf, _ in reader.leaf_readers():
        if not leaf.doc_count_all():  # an index built from an empty folder: no columns
            continue
        records = records_of(leaf)
        for docnum in leaf.all_doc_ids():
            yield records[docnum]
