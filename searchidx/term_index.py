"""A segment's term index (its ``.trm`` file, schema 10 on): each field's words sorted, with
their document frequencies and term infos, in a few columns, where Whoosh's ordered hash file
took some 84 bytes a word (two hash table slots, two lengths and a position for each, and a
``W3TermInfo`` of 35-48 bytes: 9.8 MiB a segment of 50,000 articles).

A field's part of the file is five columns: its words one after another, their lengths, their
document frequencies and their infos' lengths (varints), and the infos (:func:`info_bytes`).
The file ends with a table of the fields' parts (JSON), its length and the magic again. A
field's columns are read when first asked for (:class:`FieldTerms`), and a word found by a
bisection over every 16th word, then over those 16: no hash.

:class:`CompactTermsReader` is Whoosh's ``W3TermsReader`` over it; :class:`TermIndexWriter`
writes it, a field at a time (:meth:`TermIndexWriter.add_field`) or a term at a time as
Whoosh's field writer does (:meth:`TermIndexWriter.add`).
"""

from __future__ import annotations

import bisect
import itertools
import json
import struct
from array import array
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from whoosh.codec import base
from whoosh.codec.whoosh3 import W3TermInfo, W3TermsReader
from whoosh.reading import CorruptIndexError, TermNotFound
from whoosh.util.numeric import byte_to_length, length_to_byte

from searchidx.positions import number_array, varints, varints_at

#: Starts and ends a term index of this format.
MAGIC = b"SXT1"
#: Every this many words of a field, one is kept in memory to bisect (the rest in 16's).
SAMPLED_EVERY = 16
#: The table's length and the magic, at the file's end.
_TAIL = struct.Struct("!I4s")
#: An info's first byte: its kind, or from :data:`_WEIGHED` on a list of one posting whose
#: weight's code (:func:`weight_code`) is the byte less that (most lists: a byte a term less).
_WHOOSH, _SINGLE, _INLINED, _LISTED, _WEIGHED = range(5)
#: A length byte -> the length Whoosh reads (``W3TermInfo.from_bytes``).
_LENGTHS = [byte_to_length(code) for code in range(256)]
_FLOAT32 = struct.Struct("!f")
_FLOAT32_BITS = struct.Struct("!I")
_NO_ID = 0xFFFFFFFF
_MAX_WHOLE = 1 << 53


def weight_code(weight: float) -> int:
    """A weight as the codec keeps it (32 bits) as a number: twice a whole one (nearly all
    are: a word's count), else twice its bits and one."""
    stored: float = _FLOAT32.unpack(_FLOAT32.pack(weight))[0]
    if stored.is_integer() and 0 <= stored < _MAX_WHOLE:
        return int(stored) * 2
    return int(_FLOAT32_BITS.unpack(_FLOAT32.pack(stored))[0]) * 2 + 1


def _weight(code: int) -> float:
    if code & 1:
        found: float = _FLOAT32.unpack(_FLOAT32_BITS.pack(code >> 1))[0]
        return found
    return float(code >> 1)


def single_info(weight: float, code: int, doc: int, value: bytes | None) -> bytes:
    """:func:`info_bytes` of a list of one posting (most words'): its weight, length byte and
    docnum, then its value."""
    weighed = weight_code(weight) + _WEIGHED
    if weighed <= 0xFF:
        return bytes((weighed,)) + varints((code, doc)) + (value or b"")
    return bytes((_SINGLE,)) + varints((weighed - _WEIGHED, code, doc)) + (value or b"")


def info_bytes(info: W3TermInfo) -> bytes:
    """A term info without its document frequency (a column of its own): its kind, then
    varints, then an inlined list's values; ``W3TermInfo.to_bytes`` where none fits."""
    weight, maxweight = weight_code(info._weight), weight_code(info._maxweight)
    minid, maxid = info._minid, info._maxid
    mincode = 0 if info._minlength is None else _code(info._minlength)
    maxcode = _code(info._maxlength)
    if minid is None or maxid is None or not 0 <= minid <= maxid < _NO_ID:
        return bytes((_WHOOSH,)) + bytes(W3TermInfo.to_bytes(info))
    head = [weight, maxweight, mincode, maxcode, minid, maxid - minid]
    if not info.is_inlined():
        offset, length = info.extent()
        length = length[0] if isinstance(length, tuple) else length  # read back by Whoosh
        return bytes((_LISTED,)) + varints([*head, offset, length])
    ids, weights, values = info.inlined_postings()
    if (
        info._df == 1
        and ids == (minid,)
        and maxid == minid
        and weights == (info._weight,)
        and weight == maxweight
        and mincode == maxcode
        and (values == () or (len(values) == 1 and type(values[0]) is bytes and values[0]))
    ):
        return single_info(info._weight, mincode, minid, values[0] if values else None)
    gaps = [b - a for a, b in zip((minid, *ids), ids, strict=False)]
    if (
        len(weights) != len(ids)
        or min(gaps, default=0) < 0
        or not all(type(value) is bytes for value in values)
    ):
        return bytes((_WHOOSH,)) + bytes(W3TermInfo.to_bytes(info))
    numbers = [*head, len(ids), *gaps, *map(weight_code, weights), len(values)]
    numbers += map(len, values)
    return bytes((_INLINED,)) + varints(numbers) + b"".join(values)


def _code(length: int) -> int:
    return int(length_to_byte(length))


def term_info(doc_frequency: int, data: bytes) -> W3TermInfo:
    """The ``W3TermInfo`` of :func:`info_bytes`, as ``W3TermInfo.from_bytes`` reads the
    codec's own."""
    try:
        kind = data[0]
        if kind == _WHOOSH:
            found: W3TermInfo = W3TermInfo.from_bytes(data[1:])
            return found
        info = W3TermInfo.__new__(W3TermInfo)
        info._df, info._offset, info._length, info._inlined = doc_frequency, None, None, None
        if kind >= _WEIGHED:
            (code, doc), at = varints_at(data, 1, 2)
            return _single(info, kind - _WEIGHED, code, doc, data[at:])
        if kind == _SINGLE:
            (weight, code, doc), at = varints_at(data, 1, 3)
            return _single(info, weight, code, doc, data[at:])
        # listed or inlined (every kind else is read above): the head, then the list's extent
        # or the inlined list's count, read in one go
        head, at = varints_at(data, 1, 8 if kind == _LISTED else 7)
        info._weight, info._maxweight = _weight(head[0]), _weight(head[1])
        info._minlength, info._maxlength = _LENGTHS[head[2]], _LENGTHS[head[3]]
        info._minid = minid = head[4]
        info._maxid = minid + head[5]
        if kind == _LISTED:
            info._offset, info._length = head[6], (head[7],)  # as Whoosh reads it: a tuple
            return info
        count = head[6]
        listed, at = varints_at(data, at, 2 * count + 1)  # the gaps, weights, many values
        gaps, weights, many = listed[:count], listed[count:-1], listed[-1]
        lengths, at = varints_at(data, at, many)
        values = []
        for length in lengths:
            values.append(data[at : at + length])
            at += length
        if at != len(data):
            raise CorruptIndexError("a term info's values are not as long as its lengths")
        ids = []
        for gap in gaps:
            minid += gap
            ids.append(minid)
        info._inlined = (tuple(ids), tuple(map(_weight, weights)), tuple(values))
        return info
    except (IndexError, struct.error, ValueError) as error:
        raise CorruptIndexError(f"a term info cannot be read: {error}") from error


def _single(info: W3TermInfo, weight: int, code: int, doc: int, value: bytes) -> W3TermInfo:
    """``info`` (its document frequency set), of a list of one posting."""
    info._weight = info._maxweight = _weight(weight)
    info._minlength = info._maxlength = _LENGTHS[code]
    info._minid = info._maxid = doc
    info._inlined = ((doc,), (info._weight,), (value,) if value else ())
    return info


class TermIndexWriter:
    """Writes a term index: each field's terms in order, a field at a time."""

    def __init__(self, dbfile: Any) -> None:
        self.dbfile = dbfile
        self.fieldmap: dict[str, int] = {}
        self._parts: list[list[int]] = []  # each field's number, words, where its columns end
        self._at = len(MAGIC)
        self._field: int | None = None  # the field whose terms :meth:`add` gathers
        self._words: list[bytes] = []
        self._frequencies: list[int] = []
        self._infos: list[bytes] = []
        dbfile.write(MAGIC)

    def add(self, number: int, word: bytes, doc_frequency: int, info: bytes) -> None:
        """A term (after those of its field before it), written with its field's."""
        if number != self._field:
            self._flush()
            self._field = number
        self._words.append(word)
        self._frequencies.append(doc_frequency)
        self._infos.append(info)

    def add_field(
        self, number: int, words: Sequence[bytes], frequencies: Sequence[int], infos: list[bytes]
    ) -> None:
        """A field's terms, its words ascending, and each one's document frequency and info
        (:func:`info_bytes`)."""
        self._flush()
        if self._parts and number <= self._parts[-1][0]:
            raise ValueError(f"field {number} written after field {self._parts[-1][0]}")
        if any(a >= b for a, b in itertools.pairwise(words)):
            raise ValueError(f"the words of field {number} are not ascending")
        columns = (
            b"".join(words),
            varints(list(map(len, words))),
            varints(frequencies),
            varints(list(map(len, infos))),
            b"".join(infos),
        )
        self.dbfile.write(b"".join(columns))
        ends = []
        for column in columns:
            self._at += len(column)
            ends.append(self._at)
        self._parts.append([number, len(words), *ends])

    def _flush(self) -> None:
        if self._field is not None and self._words:
            words, frequencies, infos = self._words, self._frequencies, self._infos
            self._words, self._frequencies, self._infos = [], [], []
            self.add_field(self._field, words, frequencies, infos)
        self._field = None

    def close(self) -> None:
        self._flush()
        table = json.dumps({"fields": self.fieldmap, "parts": self._parts}).encode()
        self.dbfile.write(table + _TAIL.pack(len(table), MAGIC))
        self.dbfile.close()


def is_term_index(dbfile: Any) -> bool:
    """Whether a terms file is of this format (else Whoosh's hash file, schema 9 and older)."""
    return bool(dbfile.get(0, len(MAGIC)) == MAGIC)


class TermIndex:
    """A segment's term index, read: its table when opened, a field's columns when first
    asked for (:meth:`field`)."""

    def __init__(self, dbfile: Any, length: int) -> None:
        self.dbfile = dbfile
        if length < len(MAGIC) + _TAIL.size or dbfile.get(0, len(MAGIC)) != MAGIC:
            raise CorruptIndexError("not a term index (too short, or no magic)")
        size, magic = _TAIL.unpack(dbfile.get(length - _TAIL.size, _TAIL.size))
        table_at = length - _TAIL.size - size
        if magic != MAGIC or table_at < len(MAGIC):
            raise CorruptIndexError("a term index cut short (no table at its end)")
        try:
            table = json.loads(dbfile.get(table_at, size))
            self.fieldmap: dict[str, int] = dict(table["fields"])
            self._parts = {part[0]: tuple(part) for part in table["parts"]}
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise CorruptIndexError(f"a term index's table cannot be read: {error}") from error
        start = len(MAGIC)
        for number in sorted(self._parts):
            part = self._parts[number]
            if len(part) != 7 or not start <= part[2] <= part[3] <= part[4] <= part[5] <= part[6]:
                raise CorruptIndexError(f"a term index's field {number} is out of place")
            start = part[6]
        if start > table_at:
            raise CorruptIndexError("a term index's fields run past its table")
        self._fields: dict[int, FieldTerms] = {}

    def numbers(self) -> list[int]:
        """The numbers of the fields with terms, ascending."""
        return sorted(self._parts)

    def field(self, number: int) -> FieldTerms | None:
        """A field's terms (None: it has none)."""
        found = self._fields.get(number)
        if found is None:
            part = self._parts.get(number)
            if part is None:
                return None
            start = self._parts_start(number)
            found = self._fields[number] = FieldTerms(self.dbfile.get(start, part[6] - start), part)
        return found

    def _parts_start(self, number: int) -> int:
        before = [part[6] for other, part in self._parts.items() if other < number]
        return max(before, default=len(MAGIC))

    def close(self) -> None:
        self._fields.clear()
        self.dbfile.close()


class FieldTerms:
    """One field's terms in a segment: its words (one string, and where each starts), their
    document frequencies and infos, and every 16th word to bisect."""

    def __init__(self, data: bytes, part: tuple[int, ...]) -> None:
        count, ends = part[1], [end - part[6] + len(data) for end in part[2:]]
        self.words = data[: ends[0]]
        try:
            lengths = number_array(data[ends[0] : ends[1]])
            frequencies = number_array(data[ends[1] : ends[2]])
            info_lengths = number_array(data[ends[2] : ends[3]])
        except ValueError as error:
            raise CorruptIndexError(f"a term index's lengths cannot be read: {error}") from error
        self.infos = data[ends[3] :]
        if not len(lengths) == len(frequencies) == len(info_lengths) == count or (
            lengths.sum() != len(self.words) or info_lengths.sum() != len(self.infos)
        ):
            raise CorruptIndexError("a term index's columns do not agree")
        self.count = count
        #: Where each word starts in :attr:`words` (and where the last ends), as numpy and as
        #: an array read a number at a time.
        self.word_starts = np.concatenate(([0], np.cumsum(lengths)))
        self.doc_frequencies = frequencies
        self._starts = _numbers_read_one_by_one(self.word_starts)
        self._frequencies = _numbers_read_one_by_one(frequencies)
        self._info_starts = _numbers_read_one_by_one(np.concatenate(([0], np.cumsum(info_lengths))))
        self._sampled = [self.word(n) for n in range(0, count, SAMPLED_EVERY)]

    @classmethod
    def empty(cls) -> FieldTerms:
        """The terms of a field without any."""
        return cls(b"", (0, 0, 0, 0, 0, 0, 0))

    def word(self, number: int) -> bytes:
        starts = self._starts
        return self.words[starts[number] : starts[number + 1]]

    def first_from(self, word: bytes) -> int:
        """The number of the first word at or after ``word`` (:attr:`count`: past the last)."""
        block = bisect.bisect_right(self._sampled, word) - 1
        if block < 0:
            return 0
        low = block * SAMPLED_EVERY
        if self._sampled[block] == word:
            return low
        low, high = low + 1, min(low + SAMPLED_EVERY, self.count)
        words, starts = self.words, self._starts
        while low < high:
            middle = (low + high) // 2
            if words[starts[middle] : starts[middle + 1]] < word:
                low = middle + 1
            else:
                high = middle
        return low

    def find(self, word: bytes) -> int:
        """The number of ``word``, -1 if the field lacks it."""
        number = self.first_from(word)
        return number if number < self.count and self.word(number) == word else -1

    def doc_frequency(self, number: int) -> int:
        return self._frequencies[number]

    def info(self, number: int) -> W3TermInfo:
        starts = self._info_starts
        data = self.infos[starts[number] : starts[number + 1]]
        return term_info(self._frequencies[number], data)


def _numbers_read_one_by_one(numbers: np.ndarray) -> array[int]:
    """``numbers`` (below 2**31: a field's bytes) as an array of 4-byte ints, read a number at
    a time faster than numpy's, in half the memory of Python's ints."""
    return array("i", numbers.astype(np.int32).tobytes())


class CompactTermsReader(W3TermsReader):
    """Whoosh's W3 terms reader over a :class:`TermIndex`: the same answers."""

    def __init__(self, codec: Any, dbfile: Any, length: int, postfile: Any) -> None:
        self._codec = codec
        self._dbfile = dbfile
        self._index = TermIndex(dbfile, length)
        self._fieldmap = self._index.fieldmap
        self._postfile = postfile
        self._names = {number: name for name, number in self._fieldmap.items()}

    def field_terms(self, fieldname: str) -> FieldTerms | None:
        """A field's terms (None: the segment has none)."""
        number = self._fieldmap.get(fieldname)
        return None if number is None else self._index.field(number)

    def _found(self, fieldname: str, tbytes: bytes) -> tuple[FieldTerms, int] | None:
        terms = self.field_terms(fieldname)
        if terms is None:
            return None
        number = terms.find(tbytes)
        return None if number < 0 else (terms, number)

    def __contains__(self, term: Any) -> bool:
        return self._found(*term) is not None

    def cursor(self, fieldname: str, fieldobj: Any) -> FieldCursor:
        return FieldCursor(self.field_terms(fieldname), fieldobj)

    def _walk(self, fieldname: str | None, prefix: bytes) -> Iterator[tuple[str, FieldTerms, int]]:
        """Each term from ``prefix`` of ``fieldname`` on (from the first, if None), in order
        through the fields after it, as Whoosh's keys are (a field by its number)."""
        first = -1 if fieldname is None else self._fieldmap.get(fieldname, 65535)
        for number in self._index.numbers():
            if number < first:
                continue
            terms = self._index.field(number)
            assert terms is not None
            start = terms.first_from(prefix) if number == first else 0
            name = self._names[number]
            for at in range(start, terms.count):
                yield name, terms, at

    def terms(self) -> Iterator[tuple[str, bytes]]:
        return ((name, terms.word(at)) for name, terms, at in self._walk(None, b""))

    def terms_from(self, fieldname: str, prefix: bytes) -> Iterator[tuple[str, bytes]]:
        return ((name, terms.word(at)) for name, terms, at in self._walk(fieldname, prefix))

    def items(self) -> Iterator[tuple[tuple[str, bytes], W3TermInfo]]:
        return (
            ((name, terms.word(at)), terms.info(at)) for name, terms, at in self._walk(None, b"")
        )

    def items_from(
        self, fieldname: str, prefix: bytes
    ) -> Iterator[tuple[tuple[str, bytes], W3TermInfo]]:
        return (
            ((name, terms.word(at)), terms.info(at))
            for name, terms, at in self._walk(fieldname, prefix)
        )

    def term_info(self, fieldname: str, tbytes: bytes) -> W3TermInfo:
        found = self._found(fieldname, tbytes)
        if found is None:
            raise TermNotFound(f"No term {fieldname}:{tbytes!r}")
        return found[0].info(found[1])

    def frequency(self, fieldname: str, tbytes: bytes) -> float:
        found = self._found(fieldname, tbytes)
        if found is None:
            raise KeyError(tbytes)
        weight: float = found[0].info(found[1]).weight()
        return weight

    def doc_frequency(self, fieldname: str, tbytes: bytes) -> int:
        found = self._found(fieldname, tbytes)
        if found is None:
            raise KeyError(tbytes)
        return found[0].doc_frequency(found[1])

    def close(self) -> None:
        self._index.close()
        self._postfile.close()


class FieldCursor(base.FieldCursor):
    """Whoosh's ``W3FieldCursor`` over a field's terms (None: a field without any)."""

    def __init__(self, terms: FieldTerms | None, fieldobj: Any) -> None:
        self._terms = terms
        self._fieldobj = fieldobj
        self._at = 0
        self.first()

    def first(self) -> str | None:
        self._at = 0
        return self.text()

    def find(self, term: Any) -> str | None:
        if self._terms is not None:
            word = term if isinstance(term, bytes) else self._fieldobj.to_bytes(term)
            self._at = self._terms.first_from(word)
        return self.text()

    def next(self) -> str | None:
        self._at += 1
        return self.text()

    def is_valid(self) -> bool:
        return self._terms is not None and self._at < self._terms.count

    def text(self) -> str | None:
        if not self.is_valid():
            return None
        assert self._terms is not None
        text: str = self._fieldobj.from_bytes(self._terms.word(self._at))
        return text

    def term_info(self) -> W3TermInfo | None:
        if not self.is_valid():
            return None
        assert self._terms is not None
        return self._terms.info(self._at)
