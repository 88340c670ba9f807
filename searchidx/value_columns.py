"""A column of a few values per document, each value coded once per segment (``topics``).

Whoosh's ``RefBytesColumn`` codes a single value a document. Topics are several a document
(2.5 on average at 100,000 articles of the benchmark's collection, 45 distinct a segment),
and their bytes joined were 29 bytes a document (2.8 MiB); coded, a document takes a count and
a code a value (3.5 bytes).

Layout of a segment's column: each value's code (uint8, or wider past 256 distinct values),
each document's count of values (uint8, or wider past 255), the distinct values in code order
joined by :data:`SEPARATOR`, and a trailer: the number of codes, the table's length and the two
arrays' NumPy type codes. A value holds no :data:`SEPARATOR` (it joins a document's values).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
from whoosh import columns

#: Joins a document's values in what the column is given and gives back.
SEPARATOR = b"\x1f"
_TRAILER = struct.Struct(">QI2s2s")


def _narrowest(largest: int) -> np.dtype[Any]:
    """The smallest unsigned type holding ``largest``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if largest <= np.iinfo(dtype).max:
            return np.dtype(dtype).newbyteorder(">")
    return np.dtype(">u8")


class CodedValuesColumn(columns.Column):
    """A column of :data:`SEPARATOR`-joined values, each distinct value kept once a segment
    and each document's values as codes into them."""

    _default = b""

    def writer(self, dbfile: Any) -> CodedValuesColumn.Writer:
        return self.Writer(dbfile)

    def reader(self, dbfile: Any, basepos: int, length: int, doccount: int) -> Any:
        return self.Reader(dbfile, basepos, length, doccount)

    class Writer(columns.ColumnWriter):
        def __init__(self, dbfile: Any) -> None:
            self._dbfile = dbfile
            self._codes_of: dict[bytes, int] = {}
            self._codes: list[int] = []
            self._counts: list[int] = []

        def fill(self, docnum: int) -> None:
            self._counts += [0] * (docnum - len(self._counts))

        def add(self, docnum: int, value: bytes) -> None:
            self.fill(docnum)
            values = value.split(SEPARATOR) if value else []
            codes_of = self._codes_of
            self._codes += [codes_of.setdefault(part, len(codes_of)) for part in values]
            self._counts.append(len(values))

        def finish(self, doccount: int) -> None:
            self.fill(doccount)
            codes = np.asarray(self._codes, dtype=_narrowest(max(len(self._codes_of) - 1, 0)))
            counts = np.asarray(self._counts, dtype=_narrowest(max(self._counts, default=0)))
            table = SEPARATOR.join(self._codes_of)
            trailer = _TRAILER.pack(
                len(codes), len(table), codes.dtype.str[1:].encode(), counts.dtype.str[1:].encode()
            )
            self._dbfile.write(codes.tobytes() + counts.tobytes() + table + trailer)

    class Reader(columns.ColumnReader):
        """Gives each document's values joined, as written; :meth:`per_document` gives every
        document's values at once."""

        def __init__(self, dbfile: Any, basepos: int, length: int, doccount: int) -> None:
            super().__init__(dbfile, basepos, length, doccount)
            end = basepos + length - _TRAILER.size
            coded, table_length, code_type, count_type = _TRAILER.unpack(
                dbfile.get(end, _TRAILER.size)
            )
            code_dtype, count_dtype = (
                np.dtype(">" + code_type.decode()),
                np.dtype(">" + count_type.decode()),
            )
            data = dbfile.get(basepos, end - basepos)
            counts_at = coded * code_dtype.itemsize
            table_at = counts_at + doccount * count_dtype.itemsize
            self._codes = np.frombuffer(data, code_dtype, coded).tolist()
            counts = np.frombuffer(data, count_dtype, doccount, counts_at)
            self._ends = np.cumsum(counts, dtype=np.int64).tolist()
            table = data[table_at : table_at + table_length]
            self._values = table.split(SEPARATOR) if coded else []

        def __getitem__(self, docnum: int) -> bytes:
            start = self._ends[docnum - 1] if docnum else 0
            values = self._values
            return SEPARATOR.join(
                [values[code] for code in self._codes[start : self._ends[docnum]]]
            )

        def __iter__(self) -> Iterator[bytes]:
            return map(self.__getitem__, range(self._doccount))

        def per_document(self) -> list[list[str]]:
            """Every document's values, as text."""
            values = [value.decode() for value in self._values]
            named = [values[code] for code in self._codes]
            starts = [0, *self._ends[:-1]]
            return [named[start:end] for start, end in zip(starts, self._ends, strict=True)]
