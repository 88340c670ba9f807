"""The display records (JSON, see :func:`~searchidx.schema.display_record`) and the stored
bodies in columns of their own, each value compressed alone with a dictionary of its segment:
by zstd, with a dictionary trained on the segment's first values (:class:`TrainedColumn`, from
schema 8: a fifth fewer bytes, 59 -> 48 MiB at 100,000 articles, written in 24 us an article
where zlib took 58, a record inflated in 2.2 us where zlib took 5.1); or, in an index of
schema 6 or 7, deflated with the segment's first values as zlib's preset dictionary
(:class:`RecordColumn`), as the rest of these notes tell.

Whoosh's stored fields are a pickle per document, each compressed alone: a record of 2.6 KB
took 1.2 KB, a third of the index (115 MiB at 100,000 articles). Records share their keys and
most of their words, so with 32 KB of other records as the dictionary one takes 0.62 KB and is
still read alone: a hit decompresses its own record (10 us; Whoosh's pickled one took 15).
Batching records into compressed blocks saves as much only at 64 records a block, each hit
then decompressing 64. The column keeps each record's end, so finding a record is two reads.

The body (its first :data:`~searchidx.schema.STORED_BODY_CHARS`) is in a column of its own: a
hit shows its title and excerpt, and reads the body only for a snippet where the excerpt does
not show the query's words (or there is no excerpt). A display record without it is 1.6 KB
of JSON: 340 bytes deflated as before and inflated in 7.4 us, 339 bytes and 5.1 us deflated
with zlib's fixed codes at level 5 (:data:`DISPLAY`): a record's dynamic codes are a table
inflating builds first, for a record of some 1.5 KB; 331 bytes without its web address where
that is the original's. A body kept the dynamic codes at level 3 (268 bytes for
1 KB of text); both with zlib's memory level 8, as small and 15% faster to write than 9
(measured on 4,000 records of the benchmark's collection; a hit's record read, 11.5 us a
hit with the body in it, is 5.9 us). Writing two values an article costs a build 10-17 us
more an article than one (68-73 us, 56-58 with the body in the record): each deflates from a
copy of its primed compressor.

Layout of a segment's column: the values' raw deflate streams (zstd's frames), the dictionary,
each document's end offset (big-endian uint32; a document without a value ends where the one
before does, so a segment's values take at most 4 GiB), then the dictionary's length (uint32).
"""

from __future__ import annotations

import json
import os
import struct
import weakref
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import orjson
import zstandard as zstd
from whoosh import columns
from whoosh.index import FileIndex
from whoosh.reading import IndexReader

from searchidx import whoosh_internals

#: The dictionary: a segment's first records, up to this many bytes (zlib's window).
DICTIONARY_BYTES = 32 * 1024
#: zlib's level and strategy for a display record, read by every hit: fixed codes, inflated
#: in 5.1 us where dynamic ones took 7.4, at the size level 3's dynamic codes gave (339 bytes
#: a record, deflated in 34 us; level 6: 331 bytes in 39 us, level 3: 361 bytes in 27 us).
DISPLAY = (5, zlib.Z_FIXED)
#: zstd's level for a display record and a body (:class:`TrainedColumn`), with a
#: dictionary of :data:`TRAINED_BYTES` trained on a segment's first :data:`TRAINING_BYTES`:
#: records 263 bytes in 12.9 us, bodies 225 in 11.0 (zlib above: 333 in 34, 268 in 24);
#: inflated in 2.2 us where zlib took 5.1 (measured on 12,000 of the 100,000 articles' first
#: segment; level 3: 295 and 241 bytes in 5 us, level 9: 253 and 221 in 35).
TRAINED_LEVEL = 5
#: Bytes of a segment's first values a zstd dictionary is trained on (some 2,800 records).
TRAINING_BYTES = 4 << 20
#: Bytes of a trained dictionary at most (one a column a segment): 65,536 made records 4%
#: larger. A segment of fewer values has a dictionary of a 32nd of their bytes (a larger one
#: costs more bytes than it saves: 100 records took 1.77 times zlib's bytes with 128 KB, 0.66
#: with 4.6 KB); too few values to train on (some ten), none.
TRAINED_BYTES = 128 * 1024
_SAMPLES_PER_DICTIONARY_BYTE = 32
#: zstd's COVER trainer's segment and d-mer sizes, fixed: left to zstd (0), it tries some
#: forty pairs on a split of the samples, 3-4 times the time (a sync's 550 records: 51 ms,
#: here 19; 4 MiB of them: 254 ms, here 75) for values 1-5% larger than these give, with its
#: entropy tables tuned for level 5 as the values are written (measured on the benchmark's
#: records and bodies: 1.55 -> 1.51 MB, 1.30 -> 1.24 for 6,000 of each).
_TRAINING = {"k": 200, "d": 6, "level": TRAINED_LEVEL}
#: zlib's memory level: 8 deflates 15% faster than 9 to the same size (the window is the
#: dictionary's, 32 KB, either way).
_MEMORY_LEVEL = 8
_WINDOW_BITS = -15  # a raw deflate stream: no header, no checksum (the file has neither)
_LENGTH = struct.Struct("!I")
_ENDS = np.dtype(">u4")


class RecordColumn(columns.Column):
    """A column of bytes, each value deflated with the dictionary of its segment, at zlib's
    ``level`` with its ``strategy`` (how it reads them back does not depend on either)."""

    _default = b""

    def __init__(self, level: int = DISPLAY[0], strategy: int = DISPLAY[1]) -> None:
        self.level, self.strategy = level, strategy

    def writer(self, dbfile: Any) -> RecordColumn.Writer:
        return self.Writer(dbfile, self.level, self.strategy)

    def reader(self, dbfile: Any, basepos: int, length: int, doccount: int) -> Any:
        return self.Reader(dbfile, basepos, length, doccount)

    class Writer(columns.ColumnWriter):
        """Keeps the first records until they fill the dictionary, then writes each."""

        def __init__(self, dbfile: Any, level: int, strategy: int) -> None:
            self._dbfile = dbfile
            self._settings = (level, zlib.DEFLATED, _WINDOW_BITS, _MEMORY_LEVEL, strategy)
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

        #: Bytes of the segment's first records gathered before the dictionary is made.
        _gathered = DICTIONARY_BYTES

        def _take(self, value: bytes) -> None:
            if self._dictionary is not None:
                self._write(value)
                return
            self._waiting.append(value)
            self._waiting_bytes += len(value)
            if self._waiting_bytes >= self._gathered:
                self._start()

        def _start(self) -> None:
            """Make the dictionary of the records so far, and write them with it."""
            self._dictionary = self._primed(self._waiting)
            waiting, self._waiting = self._waiting, []
            for value in waiting:
                self._write(value)

        def _primed(self, first: list[bytes]) -> bytes:
            """The dictionary of the segment's ``first`` records, the compressor primed."""
            dictionary = b"".join(first)[:DICTIONARY_BYTES]
            self._compressor = zlib.compressobj(*self._settings, dictionary)
            return dictionary

        def _compressed(self, value: bytes) -> bytes:
            compressor = self._compressor.copy()  # primed with the dictionary once
            return cast(bytes, compressor.compress(value) + compressor.flush())

        def _write(self, value: bytes) -> None:
            if value:
                data = self._compressed(value)
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
            #: Reads ``length`` bytes of the column's file at ``position`` (see :meth:`read_from`).
            self._get: Callable[[int, int], bytes] = dbfile.get

        def read_from(self, path: Path, start: int) -> None:
            """Read the values from ``path``, where the column starts at ``start``, by
            ``os.pread`` instead of through the segment's map (a record is some 260 bytes
            anywhere in 25 MB of a segment's records and bodies: each read through the map left
            its page, and the 15 the kernel maps around a fault, counted in the process's
            resident memory: 45 of the 104 MiB of segments a web worker had mapped after the
            bench's load at 100,000 articles). Left as it was if the file is gone (a rebuild
            removed its generation: the map still reads it)."""
            try:
                descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return
            weakref.finalize(self, os.close, descriptor)
            self._get = lambda position, length: os.pread(descriptor, length, start + position)

        @property
        def dictionary(self) -> bytes:
            """The segment's dictionary of this column (empty for none)."""
            return bytes(self._dictionary)

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
            return self._inflated(self._get(self._basepos + start, end - start))

        def _inflated(self, data: bytes) -> bytes:
            return zlib.decompressobj(_WINDOW_BITS, self._dictionary).decompress(data)


class TrainedColumn(RecordColumn):
    """A column of bytes, each value compressed by zstd at ``level`` with a dictionary trained
    on its segment's first values (:data:`TRAINING_BYTES` of them), or, in a segment of fewer
    values, one borrowed (:meth:`Writer.borrow`). The layout is :class:`RecordColumn`'s, the
    dictionary zstd's (empty where there was none), always the segment's own copy."""

    def __init__(self, level: int = TRAINED_LEVEL) -> None:
        self.level = level

    def writer(self, dbfile: Any) -> TrainedColumn.Writer:
        return self.Writer(dbfile, self.level)

    def reader(self, dbfile: Any, basepos: int, length: int, doccount: int) -> Any:
        return self.Reader(dbfile, basepos, length, doccount)

    class Writer(RecordColumn.Writer):
        _gathered = TRAINING_BYTES

        def __init__(self, dbfile: Any, level: int) -> None:
            super().__init__(dbfile, level, zlib.Z_DEFAULT_STRATEGY)
            self._level = level
            self._borrowed = b""

        def borrow(self, dictionary: bytes) -> None:
            """Write the values with ``dictionary`` (another segment's, copied into this one)
            if they are too few to fill :data:`TRAINING_BYTES`, instead of training one on
            them: a sync's segment of 750 articles trained its two in 38 ms, a seventh of
            writing it. With the largest segment's two (trained on 4 MiB) its values take
            70 KB less, the segment 190 KB more (1.39 MB): each holds its 128 KB copy."""
            self._borrowed = dictionary

        def _primed(self, first: list[bytes]) -> bytes:
            if self._borrowed and self._waiting_bytes < self._gathered:
                dictionary = self._borrowed
            else:
                dictionary = _trained(first)
            self._compressor = zstd.ZstdCompressor(
                level=self._level,
                dict_data=_dictionary(dictionary),
                write_checksum=False,
                write_dict_id=False,
            )
            return dictionary

        def _compressed(self, value: bytes) -> bytes:
            compressed: bytes = self._compressor.compress(value)
            return compressed

    class Reader(RecordColumn.Reader):
        """Reads with decompressors of its own, one a thread reading at the same time: one
        shared by the web server's threads failed ("Data corruption detected",
        tests/test_web_load.py), and one made a value took 30 us (one reused: 2-3)."""

        def __init__(self, dbfile: Any, basepos: int, length: int, doccount: int) -> None:
            super().__init__(dbfile, basepos, length, doccount)
            self._idle: list[zstd.ZstdDecompressor] = []

        def _inflated(self, data: bytes) -> bytes:
            idle = self._idle
            try:
                decompressor = idle.pop()  # atomic: no two threads take the same one
            except IndexError:
                decompressor = zstd.ZstdDecompressor(dict_data=_dictionary(self._dictionary))
            try:
                inflated: bytes = decompressor.decompress(data)
            finally:
                idle.append(decompressor)
            return inflated


def _trained(first: list[bytes]) -> bytes:
    """A zstd dictionary trained on a segment's ``first`` values; empty for too few."""
    samples: list[bytes | bytearray | memoryview] = [value for value in first if value]
    size = min(TRAINED_BYTES, sum(map(len, samples)) // _SAMPLES_PER_DICTIONARY_BYTE)
    try:
        return zstd.train_dictionary(size, samples, **_TRAINING).as_bytes()
    except zstd.ZstdError:  # too few to train on: none
        return b""


def largest_dictionaries(index: FileIndex) -> dict[str, bytes]:
    """The trained dictionaries of ``index``'s largest segment by column name, for the
    columns of new segments to borrow (:meth:`TrainedColumn.Writer.borrow`); none for an
    empty index, or a column without one."""
    dictionaries: dict[str, bytes] = {}
    with index.reader() as reader:
        leaves = [leaf for leaf, _ in reader.leaf_readers() if leaf.doc_count_all()]
        if not leaves:
            return dictionaries
        largest = max(leaves, key=lambda leaf: leaf.doc_count_all())
        for name, field in largest.schema.items():
            if isinstance(field.column_type, TrainedColumn) and largest.has_column(name):
                column = largest.column_reader(name, translate=False)
                if isinstance(column, TrainedColumn.Reader) and column.dictionary:
                    dictionaries[name] = column.dictionary
    return dictionaries


def _dictionary(data: bytes) -> zstd.ZstdCompressionDict | None:
    """A segment's trained zstd dictionary; None where it has none."""
    return zstd.ZstdCompressionDict(data) if data else None


def records_of(reader: IndexReader) -> Any:
    """The records of ``reader``'s documents, by docnum, each with its path: its record
    column with its path column (:class:`_PathedRecords`) or, in an index of schema 5 or
    older (the record a Whoosh stored field), its stored fields, read so until the index is
    rebuilt (searching it says to)."""
    if reader.schema["record"].column_type is None:
        return _StoredRecords(reader)
    column = _unmapped(reader, "record")
    if "path" not in reader.schema or not reader.has_column("path"):
        return column
    path_at = whoosh_internals.var_bytes_at(reader, "path")
    if path_at is None:
        path_at = reader.column_reader("path", translate=False).__getitem__
    return _PathedRecords(column, path_at)


def bodies_of(reader: IndexReader) -> Any:
    """The stored bodies of ``reader``'s documents, by docnum: its body column or, in an index
    of schema 6 or older (the body inside the display record), its records' bodies, read so
    until the index is rebuilt."""
    if "stored_body" not in reader.schema:
        return _RecordBodies(records_of(reader))
    return _ColumnBodies(_unmapped(reader, "stored_body"))


def _unmapped(reader: IndexReader, name: str) -> Any:
    """``reader``'s column ``name``, a column of this module's read by ``os.pread`` where its
    file is known (see :meth:`RecordColumn.Reader.read_from`)."""
    column = reader.column_reader(name, translate=False)
    place = whoosh_internals.column_place(reader, name)
    if isinstance(column, RecordColumn.Reader) and place is not None:
        column.read_from(*place)
    return column


class _PathedRecords:
    """Display records with their paths put back. A display record leaves out the path (its
    row's first value, null; an older record's first key, see
    :func:`~searchidx.schema.display_record`), which the path column holds: 12 bytes a record
    compressed, 1.2 MiB at 100,000 articles. Put back in front as JSON, an object is the
    record written before schema 10, byte for byte, and reads as it did; a record of an older
    index, which holds its path, then has it twice, the same, and reads so too."""

    def __init__(self, column: Any, path_at: Callable[[int], bytes]) -> None:
        self.column = column
        self.path_at = path_at

    def __getitem__(self, docnum: int) -> bytes:
        record: bytes = self.column[docnum]
        if not record:  # a document without a record
            return record
        return with_path(record, self.path_at(docnum).decode())


def record_and_path(records: Any, docnum: int) -> tuple[str | bytes, str | None]:
    """Document ``docnum``'s record in ``records`` (of :func:`records_of`) and its path, read
    apart: a hit's article takes the path as it is (0.7 us a hit less than the path spliced
    into the record's JSON and read back). None: the record holds its path (an index of
    schema 9 or older)."""
    if isinstance(records, _PathedRecords):
        return records.column[docnum], records.path_at(docnum).decode()
    return records[docnum], None


def with_path(record: bytes, path: str) -> bytes:
    """A display record (as orjson writes it, maybe marked :data:`JSON_ONLY`) with ``path``:
    a row's first value (null there, see :func:`~searchidx.schema.display_record`); an
    object's first key (its only one in ``{}``: no comma before the brace)."""
    start = len(JSON_ONLY) if record[:1] == JSON_ONLY else 0
    if record[start : start + 1] == b"[":
        return record[: start + 1] + orjson.dumps(path) + record[start + 1 + len(b"null") :]
    rest = record[start + 1 :]
    key = b'{"path":' + orjson.dumps(path) + (b"" if rest == b"}" else b",")
    return record[:start] + key + rest


class _ColumnBodies:
    def __init__(self, column: Any) -> None:
        self.column = column

    def __getitem__(self, docnum: int) -> str:
        return cast(bytes, self.column[docnum]).decode()


class _RecordBodies:
    def __init__(self, records: Any) -> None:
        self.records = records

    def __getitem__(self, docnum: int) -> str:
        return cast(str, decoded(self.records[docnum]).get("body", ""))


class _StoredRecords:
    def __init__(self, reader: IndexReader) -> None:
        self.reader = reader

    def __getitem__(self, docnum: int) -> str:
        return cast(str, self.reader.stored_fields(docnum)["record"])


#: What starts a record that only ``json`` reads as written: an integer past 64 bits, which
#: orjson writes not at all and reads as a float. JSON allows the space before a value.
JSON_ONLY = b" "


def decoded(record: str | bytes) -> Any:
    """A record's JSON value (an object; a display record's row, an array), read by orjson (a
    hit's 8 us by ``json.loads``, 3.5 by it); what orjson refuses (a lone surrogate, a byte
    order mark) or would misread (a record starting with :data:`JSON_ONLY`) by ``json``, so
    that every record reads as ``json.loads`` reads it."""
    if record[:1] in (JSON_ONLY, JSON_ONLY.decode()):
        return json.loads(record)
    try:
        found = orjson.loads(record)
    except orjson.JSONDecodeError:
        found = json.loads(record)
    return found


def live_records(reader: IndexReader) -> Iterator[bytes | str]:
    """Every live document's record, in docnum order (a whole index read back)."""
    return _live(reader, records_of)


def live_bodies(reader: IndexReader) -> Iterator[str]:
    """Every live document's stored body, in docnum order (beside :func:`live_records`)."""
    return _live(reader, bodies_of)


def _live(reader: IndexReader, values_of: Callable[[IndexReader], Any]) -> Iterator[Any]:
    for leaf, _ in reader.leaf_readers():
        if not leaf.doc_count_all():  # an index built from an empty folder: no columns
            continue
        values = values_of(leaf)
        for docnum in leaf.all_doc_ids():
            yield values[docnum]
