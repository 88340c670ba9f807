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
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from itertools import accumulate, compress, repeat
from typing import Any

import numpy as np
from whoosh import formats

#: The bits of a gap each byte holds, and the mark of a byte that is not a gap's last.
_BITS = 7
_MORE = 1 << _BITS
#: The bytes that end a gap (deleted from a value, the bytes that do not are left).
_LAST_BYTES = bytes(range(_MORE))
#: The bytes that do not end a gap (deleted from a value, its last bytes are left).
_MORE_BYTES = bytes(range(_MORE, 256))
#: Byte -> whether it ends a gap.
_ENDS_GAP = tuple(byte < _MORE for byte in range(256))


class VarintPositions(formats.Positions):
    """``formats.Positions`` (frequency, weight, positions, position boosts of 1.0), each
    posting value its positions' gaps as varints: the same answers from a fifth of the bytes."""

    def encode(self, poslist: Iterable[int]) -> bytes:
        return encoded(list(poslist))

    def decode_positions(self, valuestring: bytes) -> list[int]:
        if valuestring.isascii():  # every gap below 128: each byte is one
            return list(accumulate(valuestring))
        return list(accumulate(_gaps(valuestring)))

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


def _gaps(value: bytes) -> list[int]:
    """The gaps of a value with varints longer than a byte."""
    gaps: list[int] = []
    number = shift = 0
    for byte in value:
        number |= (byte & (_MORE - 1)) << shift
        shift += _BITS
        if byte < _MORE:
            gaps.append(number)
            number = shift = 0
    return gaps


def joined(values: Sequence[bytes], weights: Sequence[float]) -> bytes | None:
    """A block's values as one string, which :func:`split` splits again by ``weights``: when
    each value's number of positions is its weight (a field boost of 1.0, no token boosts)
    and none is empty; else None (the values are kept one by one)."""
    if not all(values):  # an empty value, or None
        return None
    data = b"".join(values)
    if data.isascii():  # every gap one byte
        frequencies = list(map(len, values))
    else:
        ends_only = map(bytes.translate, values, repeat(None), repeat(_MORE_BYTES))
        frequencies = list(map(len, ends_only))
    return data if frequencies == list(weights) else None


def split(data: bytes, weights: Any, count: int) -> tuple[bytes, ...]:
    """The ``count`` values of a block's :func:`joined` string, by the block's weights as the
    W3 codec keeps them (None: all 1.0; a float: all the same; else one a posting)."""
    if weights is None:
        ends = list(range(1, count + 1))
    elif isinstance(weights, float):
        ends = list(range(int(weights), int(weights) * count + 1, int(weights) or 1))
    else:
        ends = list(accumulate(map(int, weights)))
    if not data.isascii():  # each value's end is after its last gap's last byte
        gap_ends = list(compress(range(1, len(data) + 1), map(_ENDS_GAP.__getitem__, data)))
        if len(ends) != count or not ends or ends[-1] != len(gap_ends) or not data[-1] < _MORE:
            raise ValueError("a block's positions do not match its weights")
        ends = [gap_ends[end - 1] for end in ends]
    elif len(ends) != count or not ends or ends[-1] != len(data):
        raise ValueError("a block's positions do not match its weights")
    return tuple(map(data.__getitem__, map(slice, [0, *ends[:-1]], ends)))


def decoded_many(values: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Each value's number of positions, and all their positions one after another, as
    :meth:`VarintPositions.decode_positions` gives them, without a Python loop per position."""
    data = np.frombuffer(b"".join(values), dtype=np.uint8)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    ends = np.cumsum(lengths)
    last = data < _MORE
    if lengths.any() and not last[ends[lengths > 0] - 1].all():
        raise ValueError("a positions value ends inside a gap")
    gaps = data.astype(np.int64)
    if not last.all():  # add each varint's bytes up, shifted, into its first
        starts = np.flatnonzero(np.concatenate(([True], last[:-1])))
        within = np.arange(len(data)) - np.repeat(starts, np.diff(np.append(starts, len(data))))
        gaps = np.add.reduceat((gaps & (_MORE - 1)) << (_BITS * within), starts)
    ended = np.concatenate(([0], np.cumsum(last)))
    counts = ended[ends] - ended[ends - lengths]
    summed = np.cumsum(gaps)
    before = np.concatenate(([0], summed))[np.cumsum(counts) - counts]
    return counts, summed - np.repeat(before, counts)
