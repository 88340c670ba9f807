"""The posting value of a word's positions in a text field: its position gaps as varints.

Whoosh's ``formats.Positions`` writes a count (4 bytes) and the gaps pickled (some 9 bytes
of pickle, 2 a small gap): 13 bytes for a word found once, as most are. Here each gap is an
unsigned LEB128 varint (7 bits a byte, the high bit set on all bytes but a gap's last), the
count being the number of last bytes: 1 byte for a word found once in the first 128 words,
1.3 bytes a body posting on average. Every byte says whether it ends a gap, so a batch of
values is decoded with numpy (:func:`decoded_many`), and one value by Python's C loops
(:meth:`VarintPositions.decode_positions`). The schema pickles this class by name in the
index: it stays here, under this name, for the indexes written with it.

A block of postings keeps its values as one string (:func:`joined`, schema 9 on), split again
by the block's weights (:func:`split`): a word's weight in a field of boost 1.0 is the number
of its positions, so the lengths Whoosh frames each value with (2 bytes a value, some 1.3 of
positions) are redundant. At 100,000 articles the body's postings were 34.0 MiB, 27.0 so.
A block's ids (delta-coded) are varints too (:func:`varints`, read by :func:`number_array`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from itertools import accumulate, repeat
from operator import length_hint
from typing import Any, overload

import numpy as np
from whoosh import formats

#: The bits of a gap each byte holds, and the mark of a byte that is not a gap's last.
_BITS = 7
_MORE = 1 << _BITS
#: The bytes that end a gap (deleted from a value, the bytes that do not are left).
_LAST_BYTES = bytes(range(_MORE))
#: The bytes that do not end a gap (deleted from a value, its last bytes are left).
_MORE_BYTES = bytes(range(_MORE, 256))


class VarintPositions(formats.Positions):
    """``formats.Positions`` (frequency, weight, positions, position boosts of 1.0), each
    posting value its positions' gaps as varints: the same answers from a fifth of the bytes."""

    def encode(self, poslist: Iterable[int]) -> bytes:
        return encoded(list(poslist))

    def decode_positions(self, valuestring: bytes) -> list[int]:
        if valuestring.isascii():  # every gap below 128: each byte is one
            return list(accumulate(valuestring))
        gaps = varints_at(valuestring)[0]
        return gaps if len(gaps) == 1 else list(accumulate(gaps))  # most: a word found once

    def decode_frequency(self, valuestring: bytes) -> int:
        return len(valuestring) - len(valuestring.translate(None, _LAST_BYTES))


def encoded(positions: list[int]) -> bytes:
    """The value of ``positions`` (ascending): a word found once is one cached value."""
    if len(positions) == 1:
        return _varint(positions[0])
    gaps = [positions[0], *map(operator.sub, positions[1:], positions)] if positions else []
    return b"".join(map(_varint, gaps))


@functools.cache
def _varint(number: int) -> bytes:
    """``number`` (>= 0) as a varint, made once: gaps are below a text's length."""
    if number < 0:
        raise ValueError(f"positions must ascend: a gap of {number}")
    out = bytearray()
    while number >= _MORE:
        out.append(number & (_MORE - 1) | _MORE)
        number >>= _BITS
    out.append(number)
    return bytes(out)


def varints_at(data: bytes, at: int = 0, count: int = -1) -> tuple[list[int], int]:
    """The first ``count`` (-1: all) varints of ``data`` from ``at``, and where they end: the
    one Python decoder of varints (a value's gaps, a block's ids, a term info's numbers), a
    loop over the bytes without indexing them; ValueError when ``data`` ends inside them."""
    if not count:
        return [], at
    found: list[int] = []
    number = shift = 0
    left = iter(data[at:] if at else data)
    for byte in left:
        if byte < _MORE:
            found.append(number | byte << shift)
            count -= 1
            if not count:
                return found, len(data) - length_hint(left)
            number = shift = 0
        else:
            number |= (byte & (_MORE - 1)) << shift
            shift += _BITS
    if shift or count > 0:
        raise ValueError("varints end inside a number")
    return found, len(data)


def varints(numbers: Iterable[int]) -> bytes:
    """``numbers`` (>= 0) as varints, one after another: a block's ids delta-coded, each but
    its first (from 0) below 128 where the word is common, made by C loops."""
    listed = numbers if type(numbers) is list else list(numbers)
    if not listed:
        return b""
    try:
        rest = bytes(listed[1:])
    except ValueError:  # a number past a byte, or below 0
        rest = bytes([_MORE])
    if rest.isascii():
        return _varint(listed[0]) + rest
    if min(listed) < 0:
        raise ValueError(f"varints of numbers below 0: {min(listed)}")
    try:
        return b"".join(map(_two_bytes().__getitem__, listed))
    except IndexError:  # a number of three bytes or more
        return b"".join(map(_varint, listed))


@functools.cache
def _two_bytes() -> tuple[bytes, ...]:
    """The varints of one and two bytes, made once: a rare word's ids (sparse, some 120 us a
    block through :func:`_varint`'s cache, twice pickling them), looked up in a tuple."""
    return tuple(map(_varint, range(_MORE * _MORE)))


def numbers_of(data: bytes) -> list[int]:
    """The numbers of :func:`varints` (in C where each is a byte)."""
    return list(data) if data.isascii() else varints_at(data)[0]


def number_array(data: bytes) -> np.ndarray:
    """:func:`numbers_of`, decoded by numpy (int64)."""
    bytes_ = np.frombuffer(data, dtype=np.uint8)
    last = bytes_ < _MORE
    if len(data) and not last[-1]:
        raise ValueError("varints end inside a number")
    return _numbers(bytes_, last)


def _numbers(data: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The varints of ``data`` (bytes as uint8; ``last``: which end a number) as int64: each
    from its last byte, the bytes before it shifted in a round a byte, for the numbers that
    have one (few: most gaps take a byte). Every byte shifted by its place and the bytes added
    up by number (``np.add.reduceat``) took 2-3.5 times as long."""
    if last.all():
        return data.astype(np.int64)
    ends = np.flatnonzero(last)
    numbers = data[ends].astype(np.int64)
    ended = np.concatenate(([True], last))  # whether the byte before each ends a number
    more = np.flatnonzero(~ended[ends])  # the numbers with a byte before their last
    at = ends[more] - 1
    while len(more):
        numbers[more] = (numbers[more] << _BITS) | (data[at] & (_MORE - 1))
        going = ~ended[at]
        more, at = more[going], at[going] - 1
    return numbers


def joined(values: Sequence[bytes], weights: Sequence[float]) -> bytes | None:
    """A block's values as one string, which :func:`split` splits again by ``weights``: when
    each value's number of positions is its weight (a field boost of 1.0, no token boosts)
    and none is empty; else None (the values are kept one by one)."""
    if not all(values):  # an empty value, or None
        return None
    data = b"".join(values)
    counted = list(map(len, values)) if data.isascii() else frequencies(values)
    return data if counted == list(weights) else None


def frequencies(values: Iterable[bytes]) -> list[int]:
    """Each value's number of positions (its bytes that end a gap)."""
    return list(map(len, map(bytes.translate, values, repeat(None), repeat(_MORE_BYTES))))


def split(data: bytes, weights: Any, count: int) -> list[bytes]:
    """The ``count`` values of a block's :func:`joined` string, by the block's weights as the
    W3 codec keeps them (None: all 1.0; a float: all the same; else one a posting): the gaps
    found by numpy, the values cut by C loops."""
    if weights is None or isinstance(weights, float):
        weights = repeat(1.0 if weights is None else weights, count)
    values = JoinedValues(data, np.fromiter(weights, dtype=np.float64, count=count))
    ends = values.ends().tolist()
    return list(map(data.__getitem__, map(slice, [0, *ends[:-1]], ends)))


class JoinedValues(Sequence[bytes]):
    """Values one after another (``data``) and each one's number of positions (``counts``):
    a term's values as its joined blocks keep them, decoded at once by :func:`decoded_many`
    without a bytes object a value (cutting them took longer than decoding them)."""

    def __init__(self, data: bytes, counts: np.ndarray) -> None:
        whole = counts.astype(np.int64)
        gaps = len(data.translate(None, _MORE_BYTES))
        if not (
            np.array_equal(whole, counts)
            and (whole > 0).all()
            and gaps == whole.sum()
            and (not data or data[-1] < _MORE)
        ):
            raise ValueError("joined positions do not match their counts")
        self.data = data
        self.counts = whole
        self._ends: np.ndarray | None = None

    def ends(self) -> np.ndarray:
        """Where each value ends in ``data``."""
        if self._ends is None:
            value_ends = np.cumsum(self.counts)
            if not self.data.isascii():  # after the last byte of the value's last gap
                gap_ends = np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) < _MORE) + 1
                value_ends = gap_ends[value_ends - 1]
            self._ends = value_ends
        return self._ends

    def __len__(self) -> int:
        return len(self.counts)

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> JoinedValues: ...

    def __getitem__(self, index: int | slice) -> bytes | JoinedValues:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                picked = [self[at] for at in range(start, stop, step)]
                return JoinedValues(b"".join(picked), np.array(frequencies(picked)))
            if (start, stop) == (0, len(self)):
                return self
            stop = max(start, stop)
            ends = self.ends()
            first = int(ends[start - 1]) if start else 0
            last = int(ends[stop - 1]) if stop > start else first
            return JoinedValues(self.data[first:last], self.counts[start:stop])
        at = range(len(self))[index]  # IndexError out of range
        ends = self.ends()
        return self.data[int(ends[at - 1]) if at else 0 : int(ends[at])]


def decoded_many(values: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Each value's number of positions, and all their positions one after another, as
    :meth:`VarintPositions.decode_positions` gives them, without a Python loop per position."""
    if isinstance(values, JoinedValues):
        counts = values.counts
        data = np.frombuffer(values.data, dtype=np.uint8)
        last = data < _MORE
    else:
        data = np.frombuffer(b"".join(values), dtype=np.uint8)
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        ends = np.cumsum(lengths)
        last = data < _MORE
        if lengths.any() and not last[ends[lengths > 0] - 1].all():
            raise ValueError("a positions value ends inside a gap")
        ended = np.concatenate(([0], np.cumsum(last)))
        counts = ended[ends] - ended[ends - lengths]
    summed = np.cumsum(_numbers(data, last))
    before = np.concatenate(([0], summed))[np.cumsum(counts) - counts]
    return counts, summed - np.repeat(before, counts)
