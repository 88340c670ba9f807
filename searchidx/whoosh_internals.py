"""Every read and write below Whoosh's public API, in one place, checked before it is trusted.

The fast paths read posting blocks, column files and field lengths straight from a segment's
files (:mod:`searchidx.matching`, :mod:`searchidx.snapshot`), and the indexer writes a segment
and its postings with Whoosh's own steps in another order (:mod:`searchidx.indexer`). What they
rely on is the whoosh3 3.54 layout: private attributes, block formats, posting value encodings,
column internals. A release may change any of it without notice, and a changed layout would give
wrong answers silently.

So :func:`layout_known` checks once per process, when the first snapshot is opened, that Whoosh
is a version whose layout this module knows and that its reads equal Whoosh's public API on a
small index built in memory. If not, it warns once; the reads then answer None ("read it the
public way") and the matcher hands every query to Whoosh's searcher: slower, never wrong.
The check takes 0.2 s, most of a one-shot ``searchidx query``: a process may instead
:func:`trust_layout` of the same Whoosh :func:`installation` checked by the indexer at commit
(:mod:`searchidx.arrays` notes it), and the self-test's verdict, passed or failed, is
remembered per installation in the user's cache folder until Whoosh's files or this module
change (:func:`_self_test_verdict`).

It also holds the casts where whoosh3's own annotations are narrower than what it takes
(:func:`sortable_column`) or than what it holds (:func:`boost`, :func:`analyzer`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import io
import itertools
import json
import operator
import os
import pickle
import re
import struct
import sys
import threading
import types
import warnings
import weakref
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate
from pathlib import Path
from pickle import loads
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    NamedTuple,
    ParamSpec,
    Protocol,
    TypeGuard,
    TypeVar,
    cast,
)

import numpy as np
import whoosh
from whoosh import columns, fields, formats, query
from whoosh.analysis import Analyzer, StemFilter
from whoosh.automata import lev
from whoosh.codec.base import Codec
from whoosh.codec.whoosh3 import (
    WHOOSH3_HEADER_MAGIC,
    W3Codec,
    W3FieldWriter,
    W3LeafMatcher,
    W3PostingsWriter,
    W3Segment,
    W3TermInfo,
    W3TermsReader,
)
from whoosh.filedb import compound
from whoosh.filedb.structfile import BufferFile
from whoosh.index import FileIndex
from whoosh.reading import CorruptIndexError, IndexReader, SegmentReader, TermNotFound
from whoosh.scoring import BM25F
from whoosh.support.charset import accent_map
from whoosh.support.levenshtein import levenshtein
from whoosh.system import pack_int
from whoosh.util.numeric import byte_to_length, length_to_byte

from searchidx import term_index
from searchidx.positions import (
    JoinedValues,
    VarintPositions,
    decoded_many,
    frequencies,
    joined,
    number_array,
    numbers_of,
    split,
    varints,
)
from searchidx.term_index import (
    CompactTermsReader,
    FieldTerms,
    TermIndexWriter,
    info_bytes,
    is_term_index,
    single_info,
)

if TYPE_CHECKING:
    from whoosh.writing import SegmentWriter

#: Whoosh releases (major, minor) whose layout this module reads; others go the public way.
KNOWN_VERSIONS = frozenset({(3, 54)})
#: Whoosh scores a constant-score Or (wildcards, fuzzy terms) as a sum of BM25F only above this
#: many documents in a segment (``Or._matcher``'s automatic choice); below it, 1.0 a match.
WHOOSH_UNION_ABOVE = 5000
#: Field length byte -> the length Whoosh scores with (``whoosh.util.numeric.length_to_byte``).
LENGTH_OF_BYTE = np.array([byte_to_length(code) or 0 for code in range(256)], dtype=np.float64)
#: Bytes of the count that starts a ``Positions`` posting value (``whoosh.formats``).
_COUNT_BYTES = 4
#: What a W3 codec posting matcher has that lets whole blocks be read at once.
_W3_BLOCKS = frozenset(
    {"_read_data", "_data", "_blocklength", "_byteids", "_next_block", "_postfile", "_baseoffset"}
)
#: Bytes of the length before each W3 block (``StructFile.write_int``).
_INT_BYTES = 4
#: Where a block's pickled bytes values start (protocol 2 pickles bytes as this call).
_VALUES_START = b"c_codecs\nencode\n"
#: The protocol byte of a pickle of protocol 2 (Whoosh's), after its PROTO opcode.
_PROTOCOL_2 = b"\x02"
_MARK = b"("
#: Closes a block's pickle cut before its values: None for them, a 3-tuple, the end.
_NO_VALUES = b"N\x87."
#: Bytes of a block's pickle before its values: at most 5 per id (``J`` and 4 bytes), 9 per
#: weight (``G`` and a double), and the protocol, marks, tuples and memo opcodes around them.
_MOST_BYTES_PER_POSTING = 14
_BLOCK_PICKLE_SLACK = 64

_P = ParamSpec("_P")
_R = TypeVar("_R")


class WhooshLayoutWarning(RuntimeWarning):
    """Whoosh's private layout is not the one searchidx reads: searches go through Whoosh."""


#: Installations whose layout another process checked (see :func:`trust_layout`).
_CHECKED_ELSEWHERE: set[str] = set()


@functools.cache
def layout_known() -> bool:
    """Whether Whoosh's layout is the one this module reads (checked once per process)."""
    version = tuple(whoosh.__version__[:2])
    problem: str | None
    if version not in KNOWN_VERSIONS:
        problem = f"whoosh3 {whoosh.versionstring()} is not a version whose layout it knows"
    elif installation() in _CHECKED_ELSEWHERE:
        problem = None
    else:
        problem = _self_test_verdict()
    if problem is None:
        return True
    warnings.warn(
        f"searchidx: {problem}; every search goes through Whoosh's own searcher (the same "
        "answers, slower). Install a whoosh3 release listed in "
        "searchidx/whoosh_internals.py (KNOWN_VERSIONS), or check the layout and add it there",
        WhooshLayoutWarning,
        stacklevel=2,
    )
    return False


def installation() -> str:
    """This process's Whoosh: its release and where it is installed."""
    return f"{whoosh.versionstring()} {os.path.dirname(whoosh.__file__)}"


def trust_layout(checked: str | None) -> None:
    """Skip the self-test if the installation ``checked`` (the indexer's, noted with the
    arrays it wrote at commit) is this process's: the same code gives the same result."""
    if checked == installation():
        _CHECKED_ELSEWHERE.add(checked)


def _self_test_verdict() -> str | None:
    """:func:`_self_test`'s answer for this installation: the one an earlier process
    remembered, if what it tested is unchanged (:func:`_tested`), else a new one, remembered.

    A process that cannot trust the indexer's check (arrays written by another installation:
    a copied index, a new virtual environment, an upgrade) would otherwise run the test every
    time, until a sync writes the arrays again. A cache folder it cannot read or write only
    means the test runs."""
    path = _verdict_path()
    if path is None:
        return _self_test()
    tested = _tested()
    with contextlib.suppress(OSError, ValueError, LookupError, TypeError):  # none, or unreadable
        remembered = json.loads(path.read_bytes())
        problem = remembered["problem"]
        if remembered["tested"] == tested and (problem is None or isinstance(problem, str)):
            return problem
    problem = _self_test()
    _write_atomically(path, json.dumps({"tested": tested, "problem": problem}).encode())
    return problem


def _verdict_path() -> Path | None:
    """Where this installation's verdict is kept: ``$XDG_CACHE_HOME/searchidx`` (by default
    ``~/.cache/searchidx``), a file per installation (its path is in it); None without a home."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    try:
        folder = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    except RuntimeError:  # no home folder to be found
        return None
    name = f"whoosh-layout-{zlib.crc32(installation().encode()):08x}.json"
    return folder / "searchidx" / name


def _tested() -> list[Any]:
    """What the self-test's verdict depends on: the installation, each of Whoosh's modules
    (path, size, modification time: an upgrade or an edit rewrites them), this module and
    :mod:`searchidx.term_index` (whose reads it tests too), and the Python and numpy its reads
    run on."""
    package = os.path.dirname(whoosh.__file__)
    files = []
    folders = [package]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                    folders.append(entry.path)
                elif entry.name.endswith(".py"):
                    files.append(_file_identity(entry.path, os.path.relpath(entry.path, package)))
    files.sort()
    ours = [_file_identity(__file__, "."), _file_identity(term_index.__file__, "term_index")]
    return [installation(), sys.version, np.__version__, *ours, files]


def _file_identity(path: str, name: str) -> list[Any]:
    stat = os.stat(path)
    return [name, stat.st_size, stat.st_mtime_ns]


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, so a reader sees all or none of
    it; give up silently where it cannot be written (the verdict is only a shortcut)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(data)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)


class _Trusted(Protocol, Generic[_P, _R]):
    """A read that answers None unless :func:`layout_known`; ``__wrapped__`` reads regardless
    (the self-test, which decides :func:`layout_known`)."""

    __wrapped__: Callable[_P, _R]

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R | None: ...


def _trusted(read: Callable[_P, _R]) -> _Trusted[_P, _R]:
    """``read``, answering None (read it the public way) unless :func:`layout_known`."""

    @functools.wraps(read)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R | None:
        return read(*args, **kwargs) if layout_known() else None

    return checked


# Opening segments --------------------------------------------------------------------------


#: Bytes a :meth:`_MappedPart.peek` gives at most: a posting block's header is some 30.
_PEEKED = 256


class _Position(threading.local):
    """A thread's position in a :class:`_MappedPart`."""

    at = 0


class _MappedPart:
    """A read-only file over one part (terms, postings, columns...) of a memory-mapped segment:
    what ``BytesIO`` is to Whoosh's :class:`BufferFile`, without copying the whole part into
    memory first. Whoosh's copy made every process that opened a 100,000-article index read
    and keep all of its postings: some 400 MB and most of a second, for a search that reads a
    few of them.

    Each thread keeps its own position in each open part. Whoosh's readers seek, then read (a
    posting block's header, a column's header): with one position, threads sharing a reader
    had to take turns for a whole posting list, and a search reading a long one held up the
    others of its process. The mapped bytes never change, so threads read them side by side
    (see :func:`reads_side_by_side`)."""

    def __init__(self, view: memoryview) -> None:
        self._view: memoryview | None = view
        self._position = _Position()

    def _part(self) -> memoryview:
        if self._view is None:
            raise ValueError("I/O operation on a closed file")
        return self._view

    def read(self, size: int | None = -1) -> bytes:
        # Called for every few bytes Whoosh reads (a posting block's header is a pickle read a
        # few bytes at a time): thousands of times a search, so kept to a slice.
        view, position = self._part(), self._position
        start = position.at
        data = view[start:] if size is None or size < 0 else view[start : start + size]
        position.at = start + len(data)
        return data.tobytes()

    def peek(self, size: int = 0) -> bytes:
        """Up to :data:`_PEEKED` bytes from the position on (whatever ``size`` asks), not
        read: the unpickler takes a pickle's opcodes from them and then reads past the ones it
        used, where it would read each one (Whoosh reads a posting block's header with
        ``pickle.load``: some 20 reads a header)."""
        view, start = self._part(), self._position.at
        return view[start : start + _PEEKED].tobytes()

    def readline(self, size: int | None = -1) -> bytes:
        view, position = self._part(), self._position
        start = stop = position.at
        end = len(view) if size is None or size < 0 else min(len(view), start + size)
        while stop < end and view[stop] != 0x0A:  # rarely used: no part is text
            stop += 1
        position.at = max(start, min(stop + 1, end))
        return view[start : position.at].tobytes()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        here = self._position.at
        base = {os.SEEK_SET: 0, os.SEEK_CUR: here, os.SEEK_END: len(self._part())}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position.at = base + offset
        return base + offset

    def tell(self) -> int:
        return self._position.at

    def close(self) -> None:
        self._view = None  # the BufferFile releases the view itself


class _UncopiedBufferFile(BufferFile):
    """Whoosh's :class:`BufferFile` over a :class:`_MappedPart` (see there)."""

    def __init__(self, buf: Any, name: str | None = None, onclose: Any = None) -> None:
        super().__init__(b"", name=name, onclose=onclose)
        self._buf = buf
        self.file = cast(Any, _MappedPart(memoryview(buf)))  # a file, as Whoosh reads it
        # StructFile.read passes each call on to its file: the file's own, one call less for
        # each of the thousands of small reads opening segments makes (0.5 ms of twelve).
        self.read = self.file.read  # type: ignore[method-assign]


if tuple(whoosh.__version__[:2]) in KNOWN_VERSIONS:  # a layout known to open parts this way
    compound.BufferFile = _UncopiedBufferFile  # type: ignore[misc]


def reads_side_by_side(leaves: Iterable[IndexReader]) -> bool:
    """Whether threads may read through these segments' readers at once, without a lock: each
    reads its files as :class:`_MappedPart` s (each thread at its own position). A segment's
    files are parts of its compound file, mapped whole (Whoosh reads a file it adds to a
    segment later from the folder instead: the segments written here have none)."""
    if compound.BufferFile is not _UncopiedBufferFile:
        return False
    for leaf in leaves:
        storage = leaf.storage() if isinstance(leaf, SegmentReader) else None
        parts = getattr(storage, "a", None)  # an OverlayStorage: the compound file first
        if not isinstance(parts, compound.CompoundStorage) or parts._source is None:
            return False
    return True


def column_place(leaf: IndexReader, fieldname: str) -> tuple[Path, int] | None:
    """The file holding a segment's column ``fieldname`` (its compound file) and where the
    column starts in it, for reading its values without the segment's map (see
    :mod:`searchidx.records`); None where it is not a part of a compound file."""
    storage = leaf.storage() if isinstance(leaf, SegmentReader) else None
    parts, folder = (
        getattr(storage, "a", None),
        getattr(getattr(storage, "b", None), "folder", None),
    )
    segment = leaf.segment()
    if not isinstance(parts, compound.CompoundStorage) or folder is None or segment is None:
        return None
    try:
        offset, _ = parts.range(W3Codec.column_filename(segment, fieldname))
    except NameError:
        return None
    return Path(folder) / segment.make_filename(segment.COMPOUND_EXT), offset


# Postings --------------------------------------------------------------------------------


def leaf_postings(
    leaf: IndexReader, fieldname: str, word: bytes, values: bool
) -> tuple[np.ndarray, np.ndarray, Sequence[Any]]:
    """One segment's postings of a term (docnums, weights, and raw values if ``values``); see
    :class:`TermPostings`, which gathers them over segments."""
    found = TermPostings(values)
    found.add(leaf, 0, fieldname, word)
    return found.arrays()


class TermPostings:
    """A term's postings gathered segment by segment (:meth:`add`), a block at a time where
    the codec allows it, and made arrays once (:meth:`arrays`): most terms have a block or a
    few postings in each segment, and numpy calls per segment cost more than reading them
    (the bench's 1,330 query words at 100,000 articles, 11 segments, read in 1.16 -> 1.02 s).

    Reads below Whoosh's deletion filter: the caller masks deleted documents itself."""

    def __init__(self, values: bool) -> None:
        self.values = values
        #: Postings per block; each block's ids delta-coded (its first from 0) as varints
        #: (:func:`mini_ids`), and its segment's first docnum (a list with absolute ids:
        #: blocks of one).
        self._counts: list[int] = []
        self._ids: list[bytes] = []
        self._bases: list[int] = []
        #: Each block's weights: its bytes where they are counts below 256 (schema 9's
        #: :func:`mini_weights`, or all 1.0), else a list; made one array by :meth:`_weights`
        #: without a Python number a posting where every chunk is bytes (most terms).
        self._weight_chunks: list[bytes | Sequence[float]] = []
        self._raw: list[Any] = []
        #: Blocks whose values are one string (see :func:`block_values`): where their values
        #: go among ``_raw``'s, the string, and their postings' weights (a weight chunk).
        self._joined: list[tuple[int, bytes, bytes | Sequence[float]]] = []

    def add(self, leaf: IndexReader, base: int, fieldname: str, word: bytes) -> None:
        """The postings of one segment whose first docnum is ``base`` (none if it lacks the
        term: its term index is looked up once)."""
        terms = getattr(leaf, "_terms", None)
        if isinstance(terms, W3TermsReader):  # Whoosh's, or a CompactTermsReader
            try:
                info = terms.term_info(fieldname, word)
            except TermNotFound:
                return
            self._add_info(leaf, base, fieldname, word, info)
            return
        if (fieldname, word) not in leaf:
            return
        if terms is not None:
            matcher = terms.matcher(fieldname, word, leaf.schema[fieldname].format, scorer=None)
        else:
            matcher = leaf.postings(fieldname, word)
        self._add_matched(base, matcher)

    def add_entry(
        self,
        leaf: IndexReader,
        base: int,
        fieldname: str,
        word: bytes,
        entry: tuple[FieldTerms, int],
    ) -> None:
        """:meth:`add`, from the term's place in the segment's term index (see
        :class:`TermIndexes`)."""
        self._add_info(leaf, base, fieldname, word, entry[0].info(entry[1]))

    def _add_info(
        self, leaf: IndexReader, base: int, fieldname: str, word: bytes, info: Any
    ) -> None:
        """The postings of a W3 segment's term, from its term information."""
        if info.is_inlined():  # a short list, in its term's entry (see INLINE_LIMIT)
            ids, found, inlined_values = info.inlined_postings()
            self._add_absolute(base, ids, found, inlined_values)
            return
        terms = cast(Any, leaf)._terms
        if not self.values:  # the blocks read from the file: no matcher, which reads one more
            offset, _ = info.extent()
            if (magic := terms._postfile.get(offset, len(WHOOSH3_HEADER_MAGIC))) != (
                WHOOSH3_HEADER_MAGIC
            ):
                raise CorruptIndexError(f"Bad postings block tag {magic!r} at offset {offset}")
            postings = _blocks_without_values(terms._postfile, offset + len(WHOOSH3_HEADER_MAGIC))
            self._add_blocks(base, postings)
            return
        matcher = terms._codec.postings_reader(  # W3TermsReader.matcher, the info read once
            terms._postfile, info, leaf.schema[fieldname].format, term=(fieldname, word)
        )
        self._add_matched(base, matcher)

    def _add_matched(self, base: int, matcher: Any) -> None:
        """The postings a Whoosh posting matcher reads, a block at a time where it can."""
        if not (all(hasattr(matcher, name) for name in _W3_BLOCKS) and not matcher._byteids):
            ids, weights, raw = [], [], []
            while matcher.is_active():
                ids.append(matcher.id())
                weights.append(matcher.weight())
                if self.values:
                    raw.append(matcher.value())
                matcher.next()
            self._add_absolute(base, ids, weights, raw)
            return
        if self.values:
            self._add_blocks(base, _blocks(matcher, joined=True))
        else:
            self._add_blocks(base, _blocks_without_values(matcher._postfile, matcher._baseoffset))

    def _add_blocks(self, base: int, blocks: Iterable[_Block]) -> None:
        counts, chunks = self._counts, self._weight_chunks
        for count, ids, block_weights, block_values in blocks:
            counts.append(count)
            self._ids.append(ids if type(ids) is bytes else varints(ids))
            self._bases.append(base)
            if block_weights is None:
                chunk: bytes | Sequence[float] = b"\x01" * count
            elif isinstance(block_weights, float):
                chunk = [block_weights] * count
            else:
                chunk = block_weights
            chunks.append(chunk)
            if type(block_values) is bytes:  # joined: the term's values are joined too
                self._joined.append((len(self._raw), block_values, chunk))
            else:
                self._raw.extend(block_values)

    def _add_absolute(self, base: int, ids: Any, weights: Any, raw: Any) -> None:
        self._counts.extend([1] * len(ids))
        self._ids.append(varints(ids))
        self._bases.extend([base] * len(ids))
        self._weight_chunks.append(list(weights))
        if self.values:
            self._raw.extend(raw)

    @property
    def count(self) -> int:
        """Postings gathered so far (several terms' may be gathered one after the other)."""
        return sum(self._counts)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, Sequence[Any]]:
        """Docnums, weights, and the raw values if asked for (else []): where any block kept
        its values joined (positions, schema 9 on), all of them as :class:`JoinedValues`,
        which :func:`decoded_positions` decodes without cutting a bytes object a value."""
        return (
            self._docs(),
            self._weights(),
            self._joined_values() if self._joined else self._raw,
        )

    def _weights(self) -> np.ndarray:
        """The postings' weights, one array: from their bytes at once where every block kept
        its weights as bytes (a list of 2.4 million numbers took 5% of the bench's relevance
        queries' time at 100,000 articles)."""
        chunks = self._weight_chunks
        if all(type(chunk) is bytes for chunk in chunks):
            return _weight_array(b"".join(cast(list[bytes], chunks)))
        return np.fromiter(itertools.chain.from_iterable(chunks), np.float64)

    def _docs(self) -> np.ndarray:
        """The docnums of the blocks' ids: their deltas decoded at once, each block's first
        from its segment's first docnum."""
        deltas = number_array(b"".join(self._ids))
        counts = np.array(self._counts, dtype=np.int64)
        if len(deltas) != counts.sum():
            raise CorruptIndexError("a block's ids are not as many as its postings")
        deltas[np.cumsum(counts) - counts] += np.array(self._bases, dtype=np.int64)
        return _block_docs(counts, deltas)

    def _joined_values(self) -> JoinedValues:
        """The values, each one's count of positions an array a block: a joined block's are
        its weights, taken as they are (as one list of numbers, a common word's body
        positions took half of their reading: 12 of 25 ms for ten words at 100,000 articles)."""
        pieces: list[bytes] = []
        counts: list[np.ndarray] = []
        taken = 0
        for at, block, weights in self._joined:
            pieces += self._raw[taken:at]  # values of blocks not joined (short lists)
            counts.append(np.array(frequencies(self._raw[taken:at]), dtype=np.float64))
            block_counts = _weight_array(weights)
            if frequencies((block,))[0] != block_counts.sum():
                raise CorruptIndexError("a block's positions do not match its weights")
            pieces.append(block)
            counts.append(block_counts)
            taken = at
        pieces += self._raw[taken:]
        counts.append(np.array(frequencies(self._raw[taken:]), dtype=np.float64))
        return JoinedValues(b"".join(pieces), np.concatenate(counts))


def _weight_array(chunk: bytes | Sequence[float]) -> np.ndarray:
    """A weight chunk (see ``TermPostings._weight_chunks``) as float64: bytes are counts."""
    if type(chunk) is bytes:
        return np.frombuffer(chunk, np.uint8).astype(np.float64)
    return np.array(chunk, dtype=np.float64)


#: A term's place in each segment's term index: the field's terms and its number there (None:
#: the segment lacks the term).
TermEntries = tuple[tuple[FieldTerms, int] | None, ...]


class TermIndexes:
    """The term indexes of a searcher's segments (:mod:`searchidx.term_index`), a term looked
    up in each one's field: a bisection in memory, where Whoosh's look-up through its
    reader's ``term_info`` was made twice for a word's first search, for its count and for its
    postings (80 look-ups for a word in five fields of 8 segments). Made by
    :func:`term_indexes`."""

    def __init__(self, schema: fields.Schema, readers: list[CompactTermsReader]):
        self._schema = schema
        self._readers = readers

    def entries(self, fieldname: str, word: bytes) -> TermEntries | None:
        """Each segment's place of a term (None: a field not indexed, asked of Whoosh); its
        info is read from there when its postings are (:meth:`TermPostings.add_entry`)."""
        field = self._schema[fieldname] if fieldname in self._schema else None  # noqa: SIM401
        if field is None or field.format is None:
            return None
        found: list[tuple[FieldTerms, int] | None] = []
        for reader in self._readers:
            terms = reader.field_terms(fieldname)
            number = -1 if terms is None else terms.find(word)
            found.append(None if terms is None or number < 0 else (terms, number))
        return tuple(found)


@_trusted
def term_indexes(leaves: Iterable[IndexReader], schema: fields.Schema) -> TermIndexes | None:
    """The term indexes of segments of schema 10 on, as :class:`TermIndexes`; None where a
    segment's is not one (ask Whoosh)."""
    readers = [getattr(leaf, "_terms", None) for leaf in leaves]
    if not all(type(reader) is CompactTermsReader for reader in readers):
        return None
    return TermIndexes(schema, cast(list[CompactTermsReader], readers))


def entries_doc_frequency(entries: TermEntries) -> int:
    """The documents a term is in over the segments of its entries (deleted ones included)."""
    return sum(terms.doc_frequency(number) for terms, number in filter(None, entries))


def _block_docs(counts: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """The docnums of W3 blocks of ``counts`` postings, whose ids are delta-coded within each
    block (its first one from 0): one running sum, less the sum before each block."""
    if len(counts) == len(deltas):  # blocks of one (short lists, absolute ids): as they are
        return deltas
    sums = np.cumsum(deltas)
    ends = np.cumsum(counts)
    before = np.concatenate(([0], sums[ends[:-1] - 1]))
    docs: np.ndarray = sums - np.repeat(before, counts)
    return docs


#: A W3 block: its number of postings, delta-coded ids (a tuple, or varints), weights (None:
#: all 1.0; a float: all the same) and values (a tuple; a block's values :func:`joined`:
#: their string).
_Block = tuple[int, Any, Any, Any]


def _blocks(matcher: Any, joined: bool = False) -> Iterator[_Block]:
    """A W3 posting matcher's blocks, as it reads them (a block's values :func:`joined` kept
    as their string if ``joined``)."""
    variable = matcher.format.fixed_value_size() in (None, -1)
    while matcher.is_active():
        matcher._read_data()
        ids, weights, values = matcher._data
        if not (joined and variable and type(values) is bytes):
            matcher._read_values()
            values = matcher._values
        yield matcher._blocklength, ids, weights, values
        matcher._next_block()


def _blocks_without_values(postfile: Any, position: int) -> Iterator[_Block]:
    """A W3 posting list's blocks from ``position`` on (after its header) without their values
    (an empty tuple), read from the file: about a fifth of the time of reading them whole (1.5
    us a body posting).

    Whoosh's matcher reads a block's header with ``pickle.load`` from the file, which the
    unpickler reads an opcode at a time (some 20 calls of Python code a block): here, from a
    copy of the block in memory. A block is the pickle (protocol 2) of ``(ids, weights,
    values)``; the values of a field with positions are bytes, which protocol 2 pickles as
    calls of ``_codecs.encode``, so unpickling them costs some 20 times the ids and weights
    (95 against 5 us for a block of 128 body postings): only the part before them is
    decompressed and unpickled. The values start at the first ``_codecs.encode``: no id,
    weight or memo opcode is followed by 16 bytes without an opcode byte, and none of those
    is in that name. A block of :func:`compact_pickle` (protocol 3), whose values are bytes
    as they are and unpickle as fast as its ids, is unpickled whole.
    """
    last = False
    while not last:
        length = postfile.get_int(position)
        last = length < 0
        block = io.BytesIO(postfile.get(position + _INT_BYTES, abs(length)))
        try:
            count, _, _, compression, _, _ = pickle.load(block)
            ids, weights = _ids_and_weights(block.read(), count, compression)
        except Exception as error:  # unpickling damaged bytes fails with any of a dozen types
            raise damaged_block(postfile, position, error) from error
        yield count, ids, weights, ()
        position += _INT_BYTES + abs(length)


def _ids_and_weights(stored: bytes, count: int, compression: int) -> tuple[Any, Any]:
    """The ids and weights of a block's (maybe compressed) pickle (see
    :func:`_blocks_without_values`)."""
    data, inflater = stored, zlib.decompressobj()
    if compression:
        data = inflater.decompress(stored, _BLOCK_PICKLE_SLACK + count * _MOST_BYTES_PER_POSTING)
    start = data.find(_VALUES_START) if data[1:2] == _PROTOCOL_2 else -1
    if start > 0:
        start -= data[start - 1 : start] == _MARK  # a tuple of more than 3 values
        with contextlib.suppress(pickle.UnpicklingError, ValueError, EOFError, TypeError):
            ids, weights, _ = loads(data[:start] + _NO_VALUES)
            return ids, weights
    if compression and not inflater.eof:  # the rest of the block
        data += inflater.decompress(inflater.unconsumed_tail)
    ids, weights, _ = loads(data)
    return ids, weights


@functools.lru_cache(maxsize=256)
def levenshtein_dfa(text: str, maxdist: int, prefix: int) -> Any:
    """Whoosh's automaton of the words within ``maxdist`` edits of ``text`` that keep its first
    ``prefix`` letters: built once per word, where Whoosh builds it for every segment and
    field it walks (27 ms each for a word of nine letters and two edits). It is only read
    once built (its lazily sorted labels are the same whoever sorts them first)."""
    return lev.levenshtein_automaton(text, maxdist, prefix).to_dfa()


def fuzzy_words(
    leaf: IndexReader, q: query.FuzzyTerm, visit: Callable[[], None]
) -> Iterator[str] | None:
    """The words of one segment within a fuzzy term's edits, as ``SegmentReader.terms_within``
    finds them (its automaton walked along the segment's sorted words), calling ``visit``
    before each word it looks up: the walk's cost, which grows with the vocabulary and the
    edits allowed, not with the words found (some 9,000 look-ups for ``eff~2`` in the body of
    100,000 articles, finding 4). None: not a segment walked this way."""
    if not _walked(leaf):
        return None
    spelling = leaf.schema[q.fieldname].spelling_fieldname(q.fieldname)
    words = _SortedWords.of(leaf, spelling)
    if words is None:
        cursor = leaf.cursor(spelling)
        find = cast(Callable[[str], str | None], cursor.find)
        first = cursor.text()
    else:
        find, first = words.first_from, words.first_from("")
    dfa = levenshtein_dfa(q.text, q.maxdist, q.prefixlength)

    def walk() -> Iterator[str]:  # whoosh.codec.base.Automata.find_matches, counting
        term = first
        match = None if term is None else dfa.next_valid_string(term)
        while match:
            visit()
            term = find(match)
            if term is None:
                return
            if match == term:
                yield match
                term += "\0"
            match = dfa.next_valid_string(term)

    return walk()


def fuzzy_words_near(leaf: IndexReader, q: query.FuzzyTerm) -> list[str] | None:
    """The words :func:`fuzzy_words` finds in one segment, in order, found without its walk: of
    the words that start with the term's fixed letters and are as long as its edits allow,
    those within its edits (a few C calls and a comparison a word: at 100,000 articles, about
    a tenth of a walk's time, which looks up 1,000-2,000 words at some 15 us each for a word in
    the five text fields). It does not count the words a walk looks up (a request's bound,
    :data:`~searchidx.bounds.MAX_WORDS_VISITED`). None: not a segment walked this way."""
    if not _walked(leaf) or not q.text or q.prefixlength > len(q.text):
        return None
    spelling = leaf.schema[q.fieldname].spelling_fieldname(q.fieldname)
    words = _SortedWords.of(leaf, spelling)
    if words is None:
        return None
    return words.near(q.text, q.prefixlength, q.maxdist)


def _walked(leaf: IndexReader) -> TypeGuard[SegmentReader]:
    """Whether a segment's fuzzy words are found by Whoosh's codec automata walk."""
    automata = getattr(type(getattr(leaf, "_codec", None)), "automata", None)
    return isinstance(leaf, SegmentReader) and automata is Codec.automata


@functools.lru_cache(maxsize=65536)
def _within_edits(word: str, text: str, edits: int) -> bool:
    """Whether ``word`` is at most ``edits`` Levenshtein edits (no transpositions: Whoosh's
    automaton has none) from ``text``; one edit is told by the first letter that differs.
    Kept: a field's words are much the same in every segment."""
    if edits != 1:
        return bool(levenshtein(word, text, edits) <= edits)
    if word == text or abs(len(word) - len(text)) > 1:
        return word == text
    first = next((n for n, (a, b) in enumerate(zip(word, text, strict=False)) if a != b), None)
    if first is None:  # one is the other and a letter more
        return True
    if len(word) == len(text):  # a letter replaced
        return word[first + 1 :] == text[first + 1 :]
    if len(word) > len(text):  # a letter added
        return word[first + 1 :] == text[first:]
    return word[first:] == text[first + 1 :]  # a letter left out


class _SortedWords:
    """One field's words in a segment's term index (:class:`FieldTerms`), read with numpy a
    few calls for many words: its words, frequencies, those near a misspelt word."""

    def __init__(self, terms: FieldTerms, field: fields.FieldType) -> None:
        self._terms = terms
        self._words = np.frombuffer(terms.words, dtype=np.uint8)
        self._field = field
        #: One letter -> the words that start with it (see :meth:`_starting_with`).
        self._started: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        #: (letter, length) -> the ASCII words of that length starting with it (see
        #: :meth:`_spelled`).
        self._spelled_by: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def of(cls, leaf: IndexReader, fieldname: str) -> _SortedWords | None:
        """The field's words of a segment of schema 10 on, else None (kept while its term
        index is open)."""
        terms = getattr(leaf, "_terms", None)
        if type(terms) is not CompactTermsReader or fieldname not in leaf.schema:
            return None
        found = terms.field_terms(fieldname)
        if found is None:  # no word: a field of none, as good as any
            found = FieldTerms.empty()
        known = _SORTED_WORDS.get(found)
        if known is None:
            known = _SORTED_WORDS[found] = cls(found, leaf.schema[fieldname])
        return known

    def frequencies(self) -> tuple[list[str], list[int]]:
        """Every word of the field, decoded from UTF-8, and its document frequency: Whoosh
        reads a ``W3TermInfo`` a word, unpickling the postings of a rare word kept in it
        (0.1 s for the title words of 100,000 articles)."""
        starts = self._terms.word_starts
        words = self._decoded(starts[:-1], np.diff(starts))
        return words, self._terms.doc_frequencies.tolist()

    def near(self, text: str, fixed: int, edits: int) -> list[str]:
        """The field's words that start with the first ``fixed`` letters of ``text`` and are
        within ``edits`` of it (see :func:`_within_edits`), in order. Those of the right
        length are told apart with numpy, a few calls a length (see :meth:`_spelled`), when
        they and ``text`` are ASCII and one edit is allowed (the fuzzy retry's words); the
        others one by one."""
        started = self._starting_with(text[:fixed])
        starts, sizes, letters = started
        kept = (letters >= max(len(text) - edits, 1)) & (letters <= len(text) + edits)
        chosen = np.zeros(len(starts), dtype=bool)
        plain = np.zeros(len(starts), dtype=bool)
        if edits == 1 and text.isascii():
            plain = kept & (letters == sizes)
            for length in range(max(len(text) - 1, 1), len(text) + 2):
                rows, spelled = self._spelled(text[:fixed], started, length)
                chosen[rows[_one_edit_apart(spelled, text.encode())]] = True
        unsure = np.flatnonzero(kept & ~plain)
        if len(unsure):
            checked = self._decoded(starts[unsure], sizes[unsure])
            near = [_within_edits(word, text, edits) for word in checked]
            chosen[unsure[np.array(near, dtype=bool)]] = True
        if not chosen.any():  # the retry's usual answer for a misspelt word, in most segments
            return []
        return self._decoded(starts[chosen], sizes[chosen])

    def _starting_with(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where the words that start with ``text`` start, and their sizes in bytes and in
        letters; kept for one letter, a fuzzy word's fixed start (where a fuzzy retry found a
        range each time in 0.1 ms or more)."""
        found = self._started.get(text)
        if found is None:
            word = self._field.to_bytes(text)
            low = self._terms.first_from(word)
            high = self._terms.first_from(word + b"\xff")  # UTF-8 has no 0xff byte
            bounds = self._terms.word_starts[low : high + 1]
            starts, sizes = bounds[:-1], np.diff(bounds)
            word_of, _, letter_bytes = self._letters(starts, sizes)
            # A letter is a byte that does not continue a UTF-8 sequence (0b10xxxxxx).
            letters = np.bincount(
                word_of, weights=(letter_bytes & 0xC0) != 0x80, minlength=len(starts)
            )
            found = starts, sizes.astype(np.int16), letters.astype(np.int16)
            if len(text) == 1:
                self._started[text] = found
        return found

    def _spelled(
        self, text: str, started: tuple[np.ndarray, np.ndarray, np.ndarray], length: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The words starting with ``text`` (``started``: :meth:`_starting_with`'s) that are
        ``length`` ASCII letters: where they are among those, and their letters, a row each;
        kept for one letter, as they are (one edit apart is told in a few numpy calls a
        length, where gathering the letters of the words of three lengths each time took most
        of a fuzzy retry's 0.2 ms a field and segment, 40 of them a word at 100,000)."""
        found = self._spelled_by.get((text, length))
        if found is None:
            starts, sizes, letters = started
            rows = np.flatnonzero((sizes == length) & (letters == length))
            found = rows, self._words[starts[rows][:, None] + np.arange(length)]
            if len(text) == 1:
                self._spelled_by[text, length] = found
        return found

    def _letters(
        self, starts: np.ndarray, sizes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The bytes of the words at ``starts`` (``sizes`` long), one after the other: each
        byte's word (numbered from 0), its place in the word, and the byte."""
        ends = np.cumsum(sizes, dtype=np.int64)
        word_of = np.repeat(np.arange(len(starts)), sizes)
        place = np.arange(ends[-1] if len(ends) else 0) - (ends - sizes)[word_of]
        return word_of, place, self._words[starts[word_of] + place]

    def _decoded(self, starts: np.ndarray, lengths: np.ndarray) -> list[str]:
        """The words at ``starts``, ``lengths`` bytes long, decoded from UTF-8."""
        # Every word's bytes gathered into one run, each followed by a newline, then decoded
        # and split once.
        spans = lengths + 1
        joined_starts = np.cumsum(spans) - spans
        joined = np.full(int(spans.sum()), ord("\n"), dtype=np.uint8)
        word_of, place, letter_bytes = self._letters(starts, lengths)
        joined[joined_starts[word_of] + place] = letter_bytes
        words: list[str] = joined.tobytes().decode().split("\n")[:-1]
        if len(words) != len(starts):  # a word with a newline in it
            data = self._terms.words
            words = [
                data[start : start + length].decode()
                for start, length in zip(starts.tolist(), lengths.tolist(), strict=True)
            ]
        return words

    def first_from(self, text: str) -> str | None:
        """The field's first word at or after ``text``, None past its last (as a cursor's
        ``find`` answers)."""
        found = self._terms.first_from(self._field.to_bytes(text))
        if found == self._terms.count:
            return None
        return self._field.from_bytes(self._terms.word(found))


#: Each term index's fields' :class:`_SortedWords`, while the field's terms are read.
_SORTED_WORDS: weakref.WeakKeyDictionary[FieldTerms, _SortedWords] = weakref.WeakKeyDictionary()


def _one_edit_apart(spelled: np.ndarray, text: bytes) -> np.ndarray:
    """Which words (``spelled``: the ASCII letters of words of one length, a row each) are at
    most one edit from ``text``: those whose common start and common end with it cover all
    but a letter of the longer of the two."""
    length = spelled.shape[1]
    wanted = np.frombuffer(text, dtype=np.uint8)
    common = min(length, len(wanted))
    start = (spelled[:, :common] == wanted[:common]).cumprod(axis=1).sum(axis=1)
    ends = spelled[:, length - common :][:, ::-1] == wanted[len(wanted) - common :][::-1]
    end = ends.cumprod(axis=1).sum(axis=1)
    near: np.ndarray = start + end >= max(length, len(wanted)) - 1
    return near


def _big_endian_at(data: np.ndarray, positions: np.ndarray, dtype: str) -> np.ndarray:
    """The 4-byte big-endian numbers at ``positions`` of ``data`` (bytes)."""
    found: np.ndarray = data[positions[:, None] + np.arange(4)].view(dtype).ravel()
    return found


def word_frequencies(leaf: IndexReader, fieldname: str) -> tuple[list[str], list[int]]:
    """A field's words in one segment, decoded from UTF-8, in order, and each one's document
    frequency: what ``leaf.iter_field`` gives, a hundred times as fast (see
    :meth:`_SortedWords.frequencies`)."""
    found = _word_frequencies(leaf, fieldname)
    if found is not None:
        return found
    pairs = [(word.decode(), info.doc_frequency()) for word, info in leaf.iter_field(fieldname)]
    return [word for word, _ in pairs], [frequency for _, frequency in pairs]


@_trusted
def _word_frequencies(leaf: IndexReader, fieldname: str) -> tuple[list[str], list[int]] | None:
    words = _SortedWords.of(leaf, fieldname)
    return None if words is None else words.frequencies()


def pattern_words(
    leaf: IndexReader, q: query.PatternQuery, visit: Callable[[], None]
) -> Iterator[bytes] | None:
    """The words of one segment a wildcard matches, as ``PatternQuery._btexts`` finds them
    (every word starting with its letters before the first ``*`` or ``?``, tested against its
    pattern), calling ``visit`` before each word tested: ``ne?a*`` tests every word starting
    with "ne", some 27,000 in a query's fields at 100,000 articles. None: a query that finds
    its words another way (a prefix lists only the words it matches)."""
    if type(q)._btexts is not query.PatternQuery._btexts:
        return None
    field = leaf.schema[q.fieldname]
    pattern = re.compile(q._get_pattern())
    prefix = q._find_prefix(q.text)
    candidates = leaf.expand_prefix(q.fieldname, prefix) if prefix else leaf.lexicon(q.fieldname)

    def test() -> Iterator[bytes]:
        for word in candidates:
            visit()
            if pattern.match(field.from_bytes(word)):
                yield word

    return test()


def positions_decoder(format_: Any) -> Callable[[bytes], list[int]]:
    """Decodes a posting value to its positions: Whoosh's ``Positions`` encoding (a count,
    then the pickled list of deltas: schema 7 and older) decoded in C where possible, else the
    format's own (:class:`VarintPositions`' is in C)."""
    if type(format_) is not formats.Positions:
        return cast(Callable[[bytes], list[int]], format_.decode_positions)

    def decode(value: bytes) -> list[int]:
        payload = value[_COUNT_BYTES:]
        return list(accumulate(loads(payload if payload[-1:] == b"." else payload + b".")))

    return decode


#: How ``pickle.dumps(deltas, 2)`` starts a ``Positions`` value's list: PROTO 2, EMPTY_LIST,
#: BINPUT 0. Deltas below 256 (nearly all) follow as BININT1, ``K`` and a byte: one then APPEND
#: (``a``), or several between MARK (``(``) and APPENDS (``e``); then STOP (``.``), kept or not.
_PICKLED_LIST = np.frombuffer(b"\x80\x02]q\x00", dtype=np.uint8)


def decoded_positions(format_: Any, values: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Each posting value's number of positions, and all their positions one after another,
    as :func:`positions_decoder` decodes them: read with numpy where every delta of a value
    is one byte, one by one for the others. A title word in 10,954 articles at 100,000 took
    9.4 ms one by one, 2.2 ms so: a multi-word query's first reading of its title phrase's
    positions (the title phrase bonus) was a third of the slow relevance queries' time.
    Varints (schema 8 on) are decoded by their own module's numpy."""
    if type(format_) is VarintPositions:
        return decoded_many(values)
    decode = positions_decoder(format_)
    fast = np.zeros(len(values), dtype=bool)
    counts = np.zeros(len(values), dtype=np.int64)
    # Zeros after the values: what is read of a value too short to be one (to be tested) is in.
    data = np.frombuffer(b"".join(values) + bytes(16), dtype=np.uint8)
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    starts = np.cumsum(lengths) - lengths
    first = starts
    if type(format_) is formats.Positions:
        fast, counts, first = _byte_deltas(data, starts, lengths)
    found = np.where(fast, counts, 0)
    begins = np.cumsum(found) - found  # each value's first delta among all
    within = np.arange(found.sum()) - np.repeat(begins, found)
    summed = np.cumsum(data[np.repeat(first, found) + 2 * within], dtype=np.int64)
    before = np.repeat(np.concatenate(([0], summed))[begins], found)
    slow = np.flatnonzero(~fast).tolist()
    lists = [decode(values[i]) for i in slow]
    counts[slow] = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    offsets = np.cumsum(counts) - counts
    positions = np.empty(counts.sum(), dtype=np.int64)
    positions[np.repeat(offsets, found) + within] = summed - before
    for i, decoded in zip(slow, lists, strict=True):
        positions[offsets[i] : offsets[i] + len(decoded)] = decoded
    return counts, positions


def _byte_deltas(
    data: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which ``Positions`` values (at ``starts`` in ``data``) pickle one-byte deltas alone
    (:data:`_PICKLED_LIST`), their counts, and where their first delta byte is."""
    head = _COUNT_BYTES + len(_PICKLED_LIST)
    fast = lengths >= head + 3  # at least a K, its byte and APPEND
    at = np.where(fast, starts, 0)
    counts = (data[at[:, None] + np.arange(_COUNT_BYTES)].astype(np.int64) << [24, 16, 8, 0]).sum(
        axis=1
    )
    several = counts > 1
    ends = head + several + 2 * counts + 1  # past APPEND or APPENDS
    stopped = data[at + np.maximum(lengths - 1, 0)] == ord(".")
    fast &= (counts > 0) & (lengths == ends + stopped)
    at = np.where(fast, starts, 0)
    fast &= (data[at[:, None] + _COUNT_BYTES + np.arange(len(_PICKLED_LIST))] == _PICKLED_LIST).all(
        axis=1
    )
    fast &= ~several | (data[at + head] == ord("("))
    fast &= data[at + np.where(fast, ends - 1, 0)] == np.where(several, ord("e"), ord("a"))
    first = starts + head + several + 1
    found = np.where(fast, counts, 0)
    within = np.arange(found.sum()) - np.repeat(np.cumsum(found) - found, found)
    opcodes = data[np.repeat(first - 1, found) + 2 * within]
    values = np.repeat(np.arange(len(starts)), found)
    fast &= np.bincount(values[opcodes != ord("K")], minlength=len(starts)) == 0
    return fast, counts, first


def bm25_b(weighting: BM25F, fieldname: str) -> float:
    """The B a BM25F weighting scores ``fieldname`` with (its ``<field>_B`` or its B)."""
    return weighting._field_B.get(fieldname, weighting.B)


def union_is_summed(words: int, segment_docs: int) -> bool:
    """Whether Whoosh scores a constant-score Or of ``words`` terms in a segment of
    ``segment_docs`` documents as the sum of their scores, as a search runs it (no current
    match needed); else it preloads the matches and scores each 1.0 (``Or._matcher``)."""
    return words <= 2 or (words < query.Or.TOO_MANY_CLAUSES and segment_docs > WHOOSH_UNION_ABOVE)


def boost(q: query.Query) -> float:
    """A query node's boost: every whoosh3 query has one, but ``Query`` does not declare it."""
    return cast(float, getattr(q, "boost", 1.0))


# Documents and columns ---------------------------------------------------------------------


@_trusted
def deleted_docs(leaf: IndexReader) -> frozenset[int]:
    """A segment's deleted docnums, as its reader keeps them."""
    return cast(SegmentReader, leaf).deleted_docs_set  # a leaf reader is a segment's


def deleted_set(leaf: IndexReader) -> frozenset[int]:
    """A segment's deleted docnums (its reader keeps them as a set; else: all minus live)."""
    deleted = deleted_docs(leaf)
    if deleted is not None:
        return deleted
    return frozenset(range(leaf.doc_count_all())) - frozenset(leaf.all_doc_ids())


@_trusted
def fixed_numbers(reader: Any, count: int) -> np.ndarray | None:
    """A fixed-width numeric column's values, straight from its file (None: read it slowly)."""
    if not isinstance(reader, columns.NumericColumn.Reader):
        return None
    stored = min(reader._count, count)
    raw = reader._dbfile.get(reader._basepos, stored * reader._fixedlen)
    values = np.frombuffer(raw, dtype=np.dtype(">" + reader._typecode)).astype(np.int64)
    if stored < count:
        values = np.concatenate([values, np.full(count - stored, reader._default, np.int64)])
    return values


@_trusted
def ref_codes(reader: Any, count: int) -> tuple[np.ndarray, list[bytes]] | None:
    """A reference column's per-document codes and its unique values (None: read slowly)."""
    if not isinstance(reader, columns.RefBytesColumn.Reader):
        return None
    raw = reader._dbfile.get(reader._basepos, count * reader._itemsize)
    codes = np.frombuffer(raw, dtype=np.dtype(">" + reader._typecode)).astype(np.int64)
    return codes, list(reader._uniques)


@_trusted
def var_bytes(leaf: IndexReader, fieldname: str) -> list[bytes] | None:
    """A segment's variable-length bytes column's values (paths, states), cut from its
    data read in one piece by its lengths read as one array: Whoosh's reader reads the values
    one by one, 3 us each, and even to start turns its lengths into offsets one by one (a
    fifth of the time a sync reads its paths and states in; None: read it so). ``leaf`` is
    a segment's reader."""
    read = _var_bytes_data(leaf, fieldname)
    if read is None:
        return None
    data, ends = read
    starts = (ends - np.diff(ends, prepend=0)).tolist()
    return [data[start:end] for start, end in zip(starts, ends.tolist(), strict=True)]


@_trusted
def docs_with_bytes(leaf: IndexReader, fieldname: str, value: bytes) -> list[int] | None:
    """The documents of a segment whose value in a variable-length bytes column is ``value``
    (the article at a path), ascending: found in the column's data, read in one piece, as
    ``bytes.find`` finds it (1-2 ms in 100,000 paths, where cutting out and comparing each took
    15; None: read the values). A find counts where it is a whole value, by the values' ends."""
    read = _var_bytes_data(leaf, fieldname)
    if read is None:
        return None
    data, ends = read
    if not value:
        return np.flatnonzero(np.diff(ends, prepend=0) == 0).tolist()
    found = []
    at = data.find(value)
    while at >= 0:
        doc = int(np.searchsorted(ends, at, side="right"))  # the value holding byte ``at``
        if (ends[doc - 1] if doc else 0) == at and ends[doc] == at + len(value):
            found.append(doc)
        at = data.find(value, at + 1)
    return found


@_trusted
def var_bytes_at(leaf: IndexReader, fieldname: str) -> Callable[[int], bytes] | None:
    """A segment's variable-length bytes column's value of one document at a time (a hit's
    path): where each ends read as one array, not offsets summed one by one as Whoosh's
    reader starts with (None: read it so)."""
    read = _var_bytes_data(leaf, fieldname)
    if read is None:
        return None
    data, ends = read
    starts = np.concatenate([[0], ends[:-1]])

    def value(docnum: int) -> bytes:
        return data[starts[docnum] : ends[docnum]]

    return value


def _var_bytes_data(leaf: IndexReader, fieldname: str) -> tuple[bytes, np.ndarray] | None:
    """A variable-length bytes column's data, and each document's value's end in it."""
    found = _var_bytes_place(leaf, fieldname)
    if found is None:
        return None
    dbfile, basepos, ends = found
    return dbfile.get(basepos, int(ends[-1]) if len(ends) else 0), ends


def _var_bytes_place(leaf: IndexReader, fieldname: str) -> tuple[Any, int, np.ndarray] | None:
    """A variable-length bytes column's file, where its data starts, and each document's
    value's end in the data."""
    perdoc = getattr(leaf, "_perdoc", None)
    if (
        perdoc is None
        or type(leaf.schema[fieldname].column_type) is not columns.VarBytesColumn
        or not perdoc.has_column(fieldname)
    ):
        return None
    if fieldname not in perdoc._colfiles:
        perdoc._colfiles[fieldname] = perdoc._get_column_file(fieldname)
    dbfile, basepos, length = perdoc._colfiles[fieldname]
    count = leaf.doc_count_all()
    last = basepos + length - 1  # the lengths' type code; "X" if their offsets come before it
    code = chr(dbfile.get_byte(last))
    if code == "X":
        code, offsets_code = chr(dbfile.get_byte(last - 2)), chr(dbfile.get_byte(last - 1))
        last -= 2 + count * struct.calcsize(offsets_code)
    lengths = np.asarray(dbfile.get_array(last - count * struct.calcsize(code), code, count))
    return dbfile, basepos, np.cumsum(lengths, dtype=np.int64)


def column_bytes(leaf: IndexReader, fieldname: str) -> list[bytes]:
    """Each document's bytes in a segment's column (untranslated), read in one piece when
    the column is of variable-length bytes."""
    values = var_bytes(leaf, fieldname)
    return list(leaf.column_reader(fieldname, translate=False)) if values is None else values


def column_texts(leaf: IndexReader, fieldname: str) -> list[str]:
    """Each document's value in a segment's column of UTF-8 text holding no NUL (paths),
    decoded in one piece: a NUL put at each value's end by numpy, then one decode and one
    split (10 ms for 100,000 paths, where cutting out each value and joining them took 25:
    a sync reads every path before it lists the folder)."""
    read = _var_bytes_data(leaf, fieldname) if layout_known() else None
    if read is None:
        joined = b"\0".join(leaf.column_reader(fieldname, translate=False))
    else:
        data, ends = read
        joined = np.insert(np.frombuffer(data, dtype=np.uint8), ends[:-1], 0).tobytes()
    return joined.decode().split("\0")


def column_joined(leaf: IndexReader, fieldname: str) -> tuple[bytes, list[int]]:
    """Every document's bytes in a segment's column (untranslated) in one piece, and where
    each document's ends in it: for reading a few of many values without cutting out each."""
    read = _var_bytes_data(leaf, fieldname) if layout_known() else None
    if read is not None:
        return read[0], read[1].tolist()
    values = list(leaf.column_reader(fieldname, translate=False))
    return b"".join(values), list(accumulate(map(len, values)))


@_trusted
def length_codes(reader: Any, fieldname: str, count: int) -> np.ndarray | None:
    """The length bytes of a field (the W3 codec's ``_<field>_len`` column), decoded by
    :data:`LENGTH_OF_BYTE`; ``reader`` is a segment's reader or its per-document reader."""
    perdoc = getattr(reader, "_perdoc", reader)
    try:
        from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield

        column = perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
    except (AttributeError, ImportError):
        return None
    if column is None:
        return np.zeros(count, dtype=np.int64)
    return fixed_numbers.__wrapped__(column, count)


# Schema ------------------------------------------------------------------------------------

#: whoosh3's accent folding table, keyed by code point (for ``str.translate``); mypy infers
#: character keys, from the first of the module's two definitions of it.
ACCENT_MAP = cast(dict[int, str], accent_map)


def sortable_column(column: columns.Column) -> bool:
    """``column`` as a field's ``sortable`` argument, which whoosh3 annotates ``bool`` but which
    takes a column type too (``FieldType.set_sortable(sortable: bool | Column)``)."""
    return cast(bool, column)


# Analysis ----------------------------------------------------------------------------------


def analyzer(field: fields.FieldType) -> Analyzer:
    """The analyzer of a field that has one, which whoosh3 declares None (its class default)."""
    return cast(Analyzer, field.analyzer)


def stem_function(stem: StemFilter) -> Callable[[str], str]:
    """The (cached) stemming function a :class:`StemFilter` applies to each word."""
    return cast(Callable[[str], str], stem._stem)


# Writing segments ---------------------------------------------------------------------------


#: Posting lists of fewer postings than this are written into their term's entry of the term
#: index (the segment's ``.trm``), not as a block of the postings file (``.pst``): one pickle
#: there instead of a block's pickle, header and term-info pointer. Whoosh's W3 codec has the
#: setting, but its default of 1 inlines nothing (``len(postings) < limit``). Measured at
#: 10,000 articles (README, "The build and the sync"), limits 1, 2, 3, 4, 8: writing a segment
#: 485, 463, 399, 419, 395 us an article; the index 43.5, 41.9, 41.7, 41.9, 42.9 MiB (an
#: inlined list is pickled whole, values and all, where a block is compressed); reading 3,000
#: body words of 1-3 documents 228, 183, 131, 110, 113 ms.
INLINE_LIMIT = 4


#: zlib's level for a block of postings (Whoosh's default is 3): the body's blocks of a
#: segment of 12,500 articles (100,000 in all) 7.05 MiB at 3, 6.66 at 6, 6.62 at 9, deflated
#: in about the same time (blocks are small); inflating does not depend on it.
BLOCK_COMPRESSION = 6


#: Postings a block of the postings file (Whoosh's default is 128): a common word's list is
#: read a block at a time in Python (:class:`TermPostings`), each block's header unpickled and
#: its data inflated on its own. At 100,000 articles, the bench's query words' postings read
#: in 0.59 -> 0.38 s at 1024 (0.35 at 4096), the index 98.8 -> 92.8 MiB (91.3 at 4096).
#: Whoosh's own matcher reads any size (a block's header holds its count).
POSTINGS_PER_BLOCK = 1024


def codec() -> W3Codec:
    """The codec every segment is written with: Whoosh's W3, inlining short posting lists,
    its pickles compact (:class:`_CompactCodec`).

    whoosh3 3.54's postings writer inlines a list by calling ``W3TermInfo.set_inline``, which
    its term info names ``set_inlined`` (no default limit ever reached the call): the name is
    given to it here. Its readers read inlined lists as they are; an unknown release gets
    Whoosh's own settings.
    """
    if tuple(whoosh.__version__[:2]) not in KNOWN_VERSIONS:
        return W3Codec()
    return _CompactCodec(  # type: ignore[no-untyped-call]
        blocklimit=POSTINGS_PER_BLOCK, compression=BLOCK_COMPRESSION, inlinelimit=INLINE_LIMIT
    )


def compact_pickle(value: Any) -> bytes:
    """``value`` pickled as W3 blocks and term infos are, but in half the bytes: protocol 3,
    which writes bytes as themselves where protocol 2 writes a call of ``_codecs.encode`` on
    their text, and no memo (the pickler's fast mode: a block's values are distinct objects,
    so a memo entry per value is never read). At 100,000 articles the body's positions were
    80 of its 104 MiB of postings, mostly those calls and memo entries; a block of protocol 2
    inflated 15.2 MiB of them in a segment, 7.1 so. ``pickle.loads`` reads either."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, 3)
    pickler.fast = True
    pickler.dump(value)
    return out.getvalue()


def _pickling_compactly(function: Callable[..., Any]) -> Callable[..., Any]:
    """A function of Whoosh's W3 codec whose ``dumps`` is :func:`compact_pickle`: the
    codec's own writing, to the byte but for the pickles."""
    names = {**function.__globals__, "dumps": lambda value, _protocol: compact_pickle(value)}
    return types.FunctionType(function.__code__, names, function.__name__, function.__defaults__)


class _CompactTermInfo(W3TermInfo):
    """``W3TermInfo``, an inlined list pickled by :func:`compact_pickle`."""

    to_bytes = _pickling_compactly(W3TermInfo.to_bytes)


class _CompactPostingsWriter(W3PostingsWriter):
    """``W3PostingsWriter``, its blocks and term infos pickled by :func:`compact_pickle`, a
    block's ids as varints (:func:`mini_ids`), its weights as bytes (:func:`mini_weights`)
    and its positions joined (:func:`block_values`)."""

    _write_block = _pickling_compactly(W3PostingsWriter._write_block)

    def start_postings(self, format_: Any, terminfo: Any) -> None:
        super().start_postings(format_, _CompactTermInfo())  # type: ignore[no-untyped-call]

    def _mini_ids(self) -> Any:
        if self._byteids:
            return super()._mini_ids()  # type: ignore[no-untyped-call]
        return mini_ids(map(operator.sub, self._ids, itertools.chain((0,), self._ids)))

    def _mini_weights(self) -> Any:
        return mini_weights(self._weights)

    def _mini_values(self) -> Any:
        values = block_values(self._format, self._values, self._weights.tolist())
        return super()._mini_values() if values is None else values  # type: ignore[no-untyped-call]


def mini_ids(deltas: Iterable[int]) -> bytes:
    """A block's ids, delta-coded (its first from 0), as varints, where pickled ints took 2
    to 5 bytes each: at 100,000 articles the index 128.34 -> 123.39 MiB."""
    return varints(deltas)


def mini_weights(weights: array[float]) -> Any:
    """A block's weights as ``W3PostingsWriter._mini_weights`` keeps them (None: all 1.0; a
    float: all the same; else one a posting), those that are whole numbers below 256 (a
    word's count in a document: nearly every block's) as bytes, a byte each where pickled
    floats took 9: the body's postings of 100,000 articles 27.0 -> 25.2 MiB deflated."""
    count = len(weights)
    if weights.count(1.0) == count:
        return None
    if weights.count(weights[0]) == count:
        return weights[0]
    try:
        counts = bytes(map(int, weights))
    except (ValueError, OverflowError):  # past a byte, or not a number
        return tuple(weights)
    return counts if list(counts) == weights.tolist() else tuple(weights)


def block_values(format_: Any, values: list[bytes], weights: list[float]) -> bytes | None:
    """A block's values as one string (:func:`searchidx.positions.joined`) where its format is
    :class:`VarintPositions` and they can be; None: as Whoosh keeps them."""
    return joined(values, weights) if type(format_) is VarintPositions else None


class _JoinedValuesMatcher(W3LeafMatcher):
    """Whoosh's W3 posting matcher, reading a block's values joined into one string
    (:func:`block_values`), its ids as varints (:func:`mini_ids`) and its weights as bytes
    (:func:`mini_weights`) as what they were. A block that does not read (a damaged file) is a
    ``CorruptIndexError`` saying so, as Whoosh's matcher says of a block's header, not the
    ``zlib``, ``pickle`` or ``ValueError`` its bytes first failed with."""

    def _read_data(self) -> None:
        try:
            super()._read_data()  # type: ignore[no-untyped-call]
        except Exception as error:  # unpickling damaged bytes fails with any of a dozen types
            raise self._damaged(error) from error
        if type(self._data) is not tuple or len(self._data) != 3:
            raise self._damaged(f"{type(self._data).__name__}, not ids, weights and values")

    def _block_data(self) -> Any:
        """The block's ids, weights and values as read (each decoded when first asked for)."""
        if self._data is None:
            self._read_data()
        return self._data

    def _read_ids(self) -> None:
        data = self._block_data()
        if type(data[0]) is bytes and not self._byteids:
            try:
                self._ids = tuple(accumulate(numbers_of(data[0])))
            except ValueError as error:
                raise self._damaged(error) from error
            if len(self._ids) != self._blocklength:
                raise self._damaged(f"{len(self._ids)} ids for {self._blocklength} postings")
        else:
            super()._read_ids()  # type: ignore[no-untyped-call]

    def _read_weights(self) -> None:
        data = self._block_data()
        if type(data[1]) is bytes:
            self._weights = array("f", list(data[1]))
        else:
            super()._read_weights()  # type: ignore[no-untyped-call]

    def _read_values(self) -> None:
        data = self._block_data()
        if type(data[2]) is bytes and self._fixedsize in (None, -1):
            try:
                self._values = split(data[2], data[1], cast(int, self._blocklength))
            except (ValueError, TypeError) as error:  # positions not as many as the weights
                raise self._damaged(error) from error
        else:
            super()._read_values()  # type: ignore[no-untyped-call]

    def _damaged(self, cause: object) -> CorruptIndexError:
        return damaged_block(self._postfile, self._dataoffset, cause)


def damaged_block(postfile: Any, offset: int, cause: object) -> CorruptIndexError:
    """The error of a posting block at ``offset`` of ``postfile`` that does not read, read by
    Whoosh's matcher or the fast paths (:func:`_blocks_without_values`) alike."""
    name = getattr(postfile, "_name", None) or "<postings file>"
    return CorruptIndexError(
        f"Damaged postings block at offset {offset} in {name!r} ({cause}): the index is "
        "corrupt (a disk error, or a file changed by hand); run 'searchidx rebuild' to build "
        "it again from the articles"
    )


class _CompactCodec(W3Codec):
    """Whoosh's W3 codec writing its pickles compactly (:func:`compact_pickle`) and its blocks
    as :class:`_CompactPostingsWriter` does, and reading them (:class:`_JoinedValuesMatcher`).
    Its segments (schema 9 on) name this class in their table of contents, so it stays here,
    under this name; those of schema 8 name Whoosh's own."""

    def postings_writer(self, dbfile: Any, byteids: bool = False) -> Any:
        return _CompactPostingsWriter(  # type: ignore[no-untyped-call]
            dbfile, self._blocklimit, byteids, self._compression, self._inlinelimit
        )

    def postings_reader(
        self, dbfile: Any, terminfo: Any, format_: Any, term: Any = None, scorer: Any = None
    ) -> Any:
        if terminfo.is_inlined():
            return super().postings_reader(dbfile, terminfo, format_, term, scorer)  # type: ignore[no-untyped-call]
        offset, length = terminfo.extent()
        return _JoinedValuesMatcher(  # type: ignore[abstract, no-untyped-call]
            dbfile, offset, length, format_, term=term, scorer=scorer
        )

    def new_segment(self, storage: Any, indexname: str) -> Any:
        return W3Segment(self, indexname)

    def field_writer(self, storage: Any, segment: Any) -> Any:
        return _CompactFieldWriter(self, storage, segment)

    def terms_reader(self, storage: Any, segment: Any) -> Any:
        """The segment's terms: of :mod:`searchidx.term_index` (schema 10 on), or Whoosh's
        hash file (an older segment, read by Whoosh)."""
        name = segment.make_filename(self.TERMS_EXT)
        length, dbfile = storage.file_length(name), storage.open_file(name)
        postfile = segment.open_file(storage, self.POSTS_EXT)
        if not is_term_index(dbfile):
            return W3TermsReader(self, dbfile, length, postfile)
        return CompactTermsReader(self, dbfile, length, postfile)


class _CompactFieldWriter(W3FieldWriter):
    """Whoosh's W3 field writer, its terms written to a :class:`TermIndexWriter`."""

    def __init__(self, codec: W3Codec, storage: Any, segment: Any) -> None:
        self._codec, self._storage, self._segment = codec, storage, segment
        self._fieldname = self._fieldid = self._btext = self._fieldobj = self._format = None
        terms = TermIndexWriter(self._create_file(W3Codec.TERMS_EXT))  # type: ignore[no-untyped-call]
        self._tindex, self._fieldmap = cast(Any, terms), terms.fieldmap
        self._postfile = self._create_file(W3Codec.POSTS_EXT)  # type: ignore[no-untyped-call]
        self._postwriter = None
        self._infield = False
        self.is_closed = False

    def finish_term(self) -> None:
        info = cast(Any, self._postwriter).finish_postings()
        terms = cast(Any, self._tindex)  # a TermIndexWriter
        terms.add(self._fieldid, self._btext, info.doc_frequency(), info_bytes(info))


if tuple(whoosh.__version__[:2]) in KNOWN_VERSIONS and not hasattr(W3TermInfo, "set_inline"):
    W3TermInfo.set_inline = W3TermInfo.set_inlined  # type: ignore[attr-defined]  # see codec


def unlocked_writer(index: FileIndex, limitmb: int) -> SegmentWriter:
    """A writer of ``index`` that takes no Whoosh lock (the caller holds its own)."""
    writer = index.writer(limitmb=limitmb, _lk=False, codec=codec())  # one process
    return cast("SegmentWriter", writer)


def unlocked_segment_writer(index: Any, limitmb: int) -> SegmentWriter:
    """A writer of one new segment of ``index`` that takes no Whoosh lock."""
    from whoosh.writing import SegmentWriter  # not at import: searching never writes

    return SegmentWriter(index, _lk=False, limitmb=limitmb, codec=codec())


def write_segment(writer: SegmentWriter) -> Any:
    """``SegmentWriter._finalize_segment``, but with each field's lengths read once into
    memory: Whoosh reads a document's length from the column file for every posting, a fifth
    of writing the postings. Returns the segment (not yet in any table of contents).

    Not ``SegmentWriter._finish``: it empties the temporary folder all writers of the index
    share (MAIN.tmp), where another worker's open writer keeps its column buffer, and that
    worker then fails; the caller's commit removes the folder.
    """
    try:
        writer.perdocwriter.close()
        lengths = writer.per_document_reader() if writer.codec.length_stats else None
        postings = writer.pool.iter_postings()
        writer.fieldwriter.add_postings(writer.schema, _Lengths(lengths), postings)
        return _closed_segment(writer, lengths)
    finally:
        writer.is_closed = True


def _closed_segment(writer: SegmentWriter, lengths: Any = None) -> Any:
    """Close a segment whose postings are written, assemble its files into one, return it."""
    writer.fieldwriter.close()
    if lengths is not None:
        lengths.close()
    writer._close_segment()
    writer._assemble_segment()
    return writer.get_segment()


def cancel_writer(writer: SegmentWriter) -> None:
    """Drop an unfinished commit, and the files of the segment it was writing: Whoosh's cancel
    writes them out (columns, terms, postings) and leaves them in the index folder until a
    later commit finds them unused. A commit that failed has already cleaned up and closed its
    writer; cancelling it again would hide the real error behind "This writer is closed"."""
    if not writer.is_closed:
        writer.cancel()
        delete_segment_files(writer.storage, writer.newsegment)


def delete_segment_files(storage: Any, segment: Any) -> None:
    """Remove the files of ``segment``, one in no table of contents, from ``storage``. Called
    on the way out of a failure: a file that will not go (a read-only disk) must not hide its
    error, and is left for the next commit to remove, as Whoosh does."""
    for name in segment.list_files(storage):
        with contextlib.suppress(OSError):
            storage.delete_file(name)


def merged_segment(index: FileIndex, segments: list[Any]) -> Any:
    """A new segment of ``index`` holding the live documents of ``segments``, in order, as
    Whoosh's writer merges them (``SegmentWriter.add_reader``), not yet in any table of
    contents. Written by a :class:`_BufferedSegment` where it knows the codec: Whoosh's
    posting pool took 11 s of CPU to merge twelve sync segments of 550 articles at 100,000."""
    writer = unlocked_segment_writer(index, 1 << 30)  # a pool limit never reached: no runs
    try:
        buffered = _BufferedSegment(writer) if _BufferedSegment.writes(writer) else None
        for segment in segments:
            reader = _MergedSegment(writer.storage, writer.schema, segment)
            try:
                if buffered is not None:
                    buffered.add_segment(reader)
                else:
                    writer.add_reader(reader)
            finally:
                reader.close()
        return write_segment(writer) if buffered is None else buffered.write()
    except BaseException:
        cancel_writer(writer)
        raise


class _MergedSegment(SegmentReader):
    """A segment's reader for a merge. Whoosh's matcher of an inlined posting list (see
    :data:`INLINE_LIMIT`) gives a posting without a value (an ``ID`` field's) the value "",
    which Whoosh's posting pool refuses (it takes bytes, or None as a block's matcher gives)."""

    def iter_postings(  # type: ignore[override]  # Whoosh's pool takes None, as it gives
        self,
    ) -> Iterator[tuple[str, bytes, int, float, bytes | None]]:
        for fieldname, text, docnum, weight, value in super().iter_postings():
            yield fieldname, text, docnum, weight, value if isinstance(value, bytes) else None


#: Documents between the collector's freezes while a segment is buffered (see
#: :meth:`SegmentBuilder.add`).
_FROZEN_EVERY = 1000


class SegmentBuilder:
    """Documents into new segments, a new one each time the buffer is full.

    Whoosh's own writer spills a full buffer as a sorted run and merges the runs at commit,
    pickling and heap-merging every posting once more; at 100,000 articles that merge is a
    fifth of the build. Writing each full buffer as a segment skips it; the index then has a
    few segments, which the search service reads as one (its arrays span segments). Each
    segment is written by a :class:`_BufferedSegment` where the codec is the W3 one this
    module knows, else by Whoosh's writer.
    """

    def __init__(
        self, index: FileIndex, limit_mb: int, dictionaries: dict[str, bytes] | None = None
    ) -> None:
        self.index = index
        self.limit = limit_mb * 1024 * 1024
        #: Column dictionaries for the new segments' columns to borrow, by column name.
        self.dictionaries = dictionaries or {}
        self.segments: list[Any] = []
        self.segment: _BufferedSegment | _WhooshSegment | None = None
        self.buffered_documents = 0

    def add(self, document: dict[str, Any]) -> None:
        """Buffer ``document``; write the segment once the buffer is full.

        The buffer (a list a term, growing for thousands of documents) is what the cyclic
        collector's full collections walk, again each time it grows by a quarter: 27 us an
        article at 10,000 in one segment. Every :data:`_FROZEN_EVERY` documents the objects
        alive so far are frozen (``gc.freeze``: out of every collection) until the segment is
        written; the documents' own garbage is freed by reference counts as before (parsing
        leaves no cycles), and anything cyclic among the frozen objects is collected after.
        """
        if self.segment is None:
            # The store's lock is the one lock; and a pool limit the buffer never reaches, so
            # Whoosh never spills runs into the temporary folder its writers share.
            writer = unlocked_segment_writer(self.index, 4 * self.limit)
            buffered = _BufferedSegment.writes(writer)
            self.segment = (
                _BufferedSegment(writer, self.dictionaries) if buffered else _WhooshSegment(writer)
            )
        self.segment.add(document)
        self.buffered_documents += 1
        if self.buffered_documents % _FROZEN_EVERY == 0:
            gc.freeze()
        if self.segment.size() >= self.limit:
            self._flush()

    def finish(self) -> list[Any]:
        """The segments written (not yet in the index: the caller's commit adds them)."""
        self._flush()
        return self.segments

    def cancel(self) -> None:
        """Drop the segment being buffered and the segments written: none is in the index."""
        self._thaw()
        if self.segment is not None:
            cancel_writer(self.segment.writer)
            self.segment = None
        for segment in self.segments:
            delete_segment_files(self.index.storage, segment)
        self.segments = []

    def _flush(self) -> None:
        segment, self.segment = self.segment, None
        try:
            if segment is not None:
                self.segments.append(segment.write())
        finally:
            self._thaw()

    def _thaw(self) -> None:
        """Give what :meth:`add` froze back to the collector."""
        if self.buffered_documents >= _FROZEN_EVERY:
            gc.unfreeze()
        self.buffered_documents = 0


class _WhooshSegment:
    """A segment written by Whoosh's own writer (a codec this module does not know)."""

    def __init__(self, writer: SegmentWriter) -> None:
        self.writer = writer

    def add(self, document: dict[str, Any]) -> None:
        self.writer.add_document(**document)

    def size(self) -> int:
        return self.writer.pool.currentsize

    def write(self) -> Any:
        return write_segment(self.writer)


class _FieldPlan(NamedTuple):
    """A field as :meth:`_BufferedSegment.add` writes it: the field, whether it is indexed
    and scorable, the name of its separate spelling field ("" for none), whether it is
    stored, its column type (None for none), and its values' ``index`` items by value when
    they repeat (None for a field whose values do not, or whose items are not the value's
    alone)."""

    field: Any
    indexed: bool
    scorable: bool
    spelling: str
    stored: bool
    column: Any
    known: dict[Any, list[Any]] | None


#: Exact field types whose ``index`` items depend on the value alone (a stateless analyzer, or
#: none): a category's, a type's, a quality's terms are made once per value, not per document.
_ITEMS_BY_VALUE = (fields.ID, fields.KEYWORD, fields.NUMERIC)
#: Values whose items a plan keeps before it starts again.
_KNOWN_VALUES = 4096


def _anew(value: bytes) -> bytes:
    """A new object of the bytes ``value``, as Whoosh's field makes anew for each document."""
    return bytes(bytearray(value))


#: Estimated bytes a buffered posting takes (a docnum, a weight and a short value, in its
#: term's list, with its share of the terms and lengths): what :class:`_BufferedSegment`
#: counts against the buffer's limit. Measured: 20,000 articles of the benchmark's collection
#: buffered 2.9 million postings in 124 MiB (43 bytes each; 75 before weights were shared).
_POSTING_BYTES = 48


class _BufferedSegment:
    """One new segment written without Whoosh's posting pool, to the same bytes.

    ``SegmentWriter.add_document`` puts each posting in a pool as a tuple, sorts the pool, and
    ``FieldWriter.add_postings`` hands the postings one by one to the W3 codec's postings
    writer, which checks and appends each to its block: 0.55 ms of the 1.3 ms an article
    took to index. Here each posting is appended to its term's list (documents come in
    docnum order, so each list is sorted already); at the end the terms are sorted, and each
    block of a term is handed to the codec's writer whole, which pickles, compresses and
    describes it as it does its own. Per-document values (stored fields, lengths, a
    column's first value) go through Whoosh's per-document writer as ``add_document`` sends
    them; a column's later values to the column's writer it made, as that writer would.
    tests/test_build_fastpaths.py builds one collection both ways and compares the files.
    """

    def __init__(self, writer: SegmentWriter, dictionaries: dict[str, bytes] | None = None) -> None:
        self.writer = writer
        self.schema = writer.schema
        #: Dictionaries its columns borrow by name (each column's writer has ``borrow``).
        self.dictionaries = dictionaries or {}
        #: field -> term -> its postings, each as three items: docnum, weight, value
        self.postings: dict[str, dict[bytes, list[Any]]] = {}
        #: scorable field -> docnum -> its length there (a document of none is not there)
        self.lengths: dict[str, dict[int, int]] = {}
        #: field -> what :meth:`add` does with its values
        self.plans: dict[str, _FieldPlan] = {}
        #: Fields of spelling words (one posting a document at docnum 0, see :meth:`add`).
        self.spelling: set[str] = set()
        self.buffered = 0

    @staticmethod
    def writes(writer: SegmentWriter) -> bool:
        """Whether this class writes the segments of ``writer``: the W3 codec, a known
        release."""
        from whoosh.codec.whoosh3 import W3PerDocWriter

        return (
            tuple(whoosh.__version__[:2]) in KNOWN_VERSIONS
            and type(writer.fieldwriter) is _CompactFieldWriter
            and type(writer.perdocwriter) is W3PerDocWriter
        )

    def size(self) -> int:
        return self.buffered

    def add(self, document: dict[str, Any]) -> None:
        """``SegmentWriter.add_document`` for documents without boosts or term vectors."""
        writer = self.writer
        perdoc = writer.perdocwriter
        docnum = writer.docnum
        perdoc.start_doc(docnum)
        for fieldname in sorted(document):
            value = document[fieldname]
            if value is None:
                continue
            plan = self.plans.get(fieldname) or self._plan(fieldname)
            field, indexed, scorable, spelling, stored, column, known = plan
            length = 0
            if indexed:
                items = self._items(field, known, value)
                if scorable:
                    length = sum([item[1] for item in items])
                self._add_postings(fieldname, docnum, items)
                if spelling and items:
                    self._add_spelling(field, spelling, value, items[-1][3])
            if length or stored:
                perdoc.add_field(fieldname, field, value if stored else None, length)
                if length:
                    self.lengths[fieldname][docnum] = length
            if column:
                value = field.to_column_value(value)
                writers = perdoc._colwriters
                if fieldname in writers:
                    writers[fieldname].add(docnum, value)
                else:  # its first value: the per-document writer makes the column
                    perdoc.add_column_value(fieldname, column, value)
                    if fieldname in self.dictionaries:
                        writers[fieldname].borrow(self.dictionaries[fieldname])
        perdoc.finish_doc()
        writer.docnum += 1

    def _plan(self, fieldname: str) -> _FieldPlan:
        """What :meth:`add` does with a field's values, read from the field once."""
        field = self.schema[fieldname]
        if field.vector:
            raise ValueError(f"field {fieldname!r} has term vectors, which it does not write")
        spelling = field.spelling_fieldname(fieldname) if field.separate_spelling() else ""
        column = field.column_type
        repeats = type(field) in _ITEMS_BY_VALUE and not field.unique  # a path is unique
        known: dict[Any, list[Any]] | None = {} if repeats else None
        plan = _FieldPlan(
            field, field.indexed, field.scorable, spelling, field.stored, column, known
        )
        self.plans[fieldname] = plan
        if plan.scorable:
            self.lengths[fieldname] = {}
        return plan

    @staticmethod
    def _items(field: Any, known: dict[Any, list[Any]] | None, value: Any) -> list[Any]:
        """``list(field.index(value))``, made once per value for a field that keeps them
        (text or an int: ``1``, ``1.0`` and ``True`` are one key of a dict, not one value).
        Encoded values (a keyword's frequency) are given as new objects each time: an
        inlined list pickles one bytes object met twice as a reference to the first, where
        Whoosh's writer, making them anew each document, pickles each (b"" is one object
        either way). A category's, a type's and a domain's items made by Whoosh's analyzer
        took 22-33 us an article, 4-5 so."""
        if known is None or (type(value) is not str and type(value) is not int):
            return list(field.index(value))
        items = known.get(value)
        if items is None:
            items = list(field.index(value))
            if len(known) >= _KNOWN_VALUES:
                known.clear()
            known[value] = items
        elif any(item[3] for item in items):
            return [(term, n, weight, _anew(encoded)) for term, n, weight, encoded in items]
        return items

    def _add_postings(self, fieldname: str, docnum: int, items: Any) -> None:
        """Append the postings of ``docnum`` (a field's ``index`` items) to their terms'."""
        terms = self.postings.get(fieldname)
        if terms is None:
            terms = self.postings[fieldname] = {}
        count = 0
        for term, _, weight, value in items:
            postings = terms.get(term)
            if postings is None:
                terms[term] = [docnum, float(weight), value]  # Whoosh applies a boost of 1.0
            else:
                postings += (docnum, float(weight), value)
            count += 1
        self.buffered += count * _POSTING_BYTES

    def add_segment(self, reader: SegmentReader) -> None:
        """``SegmentWriter.add_reader``: a segment's live documents after those added, each
        with every field's length (as decoded from its byte) and column values, and their
        postings, renumbered; a postings list is read a block at a time, not a posting at a
        time through Whoosh's matchers and deletion filter."""
        writer, schema = self.writer, self.schema
        perdoc = writer.perdocwriter
        indexed = {name for name in reader.indexed_field_names() if name in schema}
        names = sorted(set(schema.names()) | indexed)
        for name in names:
            if (plan := self.plans.get(name) or self._plan(name)).field.separate_spelling():
                self.spelling.add(plan.field.spelling_fieldname(name))
        lengths = {name: _field_lengths(reader, name) for name in names}
        columns_ = _raw_columns(reader, [schema[name] for name in names], names)
        docmap = [-1] * reader.doc_count_all()
        for docnum, stored in reader.iter_docs():
            new = docmap[docnum] = writer.docnum
            perdoc.start_doc(new)
            for name in names:
                length = lengths[name](docnum)
                perdoc.add_field(name, schema[name], stored.get(name), length)
                if length and name in self.lengths:
                    self.lengths[name][new] = length
                if name in columns_:
                    perdoc.add_column_value(name, schema[name].column_type, columns_[name][docnum])
            perdoc.finish_doc()
            writer.docnum += 1
        for (fieldname, term), info in reader._terms.items():  # in key order, once each
            if fieldname in schema:
                self._add_renumbered(reader, fieldname, term, info, docmap)

    def _add_renumbered(
        self, reader: SegmentReader, fieldname: str, term: bytes, info: Any, docmap: list[int]
    ) -> None:
        """Append a term's postings in ``reader`` to its list, numbered by ``docmap`` (-1:
        deleted, left out), each as Whoosh's matcher gives it (a value that is not bytes as
        None, see :class:`_MergedSegment`)."""
        blocks: Iterable[_Block]
        if info.is_inlined():  # ListMatcher: no weights are 1.0 each, no values ""
            ids, weights, values = info.inlined_postings()
            blocks, absolute = [(len(ids), ids, weights or None, values or None)], True
        else:
            terms = reader._terms
            format_ = reader.schema[fieldname].format
            matcher = terms._codec.postings_reader(terms._postfile, info, format_)
            if not all(hasattr(matcher, name) for name in _W3_BLOCKS):
                self._add_matched(fieldname, term, matcher, docmap)
                return
            blocks, absolute = _blocks(matcher), False  # ids delta-coded in each block
        found = None
        for count, ids, weights, values in blocks:
            docs = ids if absolute else accumulate(numbers_of(ids) if type(ids) is bytes else ids)
            if weights is None or isinstance(weights, float):
                weights = itertools.repeat(1.0 if weights is None else weights, count)
            if values is None:
                values = itertools.repeat(None, count)
            for doc, weight, value in zip(docs, weights, values, strict=False):
                if (new := docmap[doc]) >= 0:
                    if found is None:
                        found = self.postings.setdefault(fieldname, {}).setdefault(term, [])
                    found += (new, float(weight), value if isinstance(value, bytes) else None)

    def _add_matched(self, fieldname: str, term: bytes, matcher: Any, docmap: list[int]) -> None:
        """:meth:`_add_renumbered` through a matcher of a codec it does not read."""
        while matcher.is_active():
            if (new := docmap[matcher.id()]) >= 0:
                value = matcher.value()
                found = self.postings.setdefault(fieldname, {}).setdefault(term, [])
                found += (new, float(matcher.weight()), value if isinstance(value, bytes) else None)
            matcher.next()

    def _add_spelling(self, field: Any, spelling: str, value: Any, last: bytes) -> None:
        """Whoosh adds each spelling word of a document with docnum 0, weight 1 and the value
        of the field's last term (a leftover loop variable): kept, to the byte."""
        self.spelling.add(spelling)
        terms = self.postings.setdefault(spelling, {})
        for word in field.spellable_words(value):
            terms.setdefault(word.encode(), []).extend((0, 1, last))
            self.buffered += _POSTING_BYTES

    def write(self) -> Any:
        """Write the postings in field and term order, and close the segment."""
        writer = self.writer
        try:
            writer.perdocwriter.close()
            fieldwriter = writer.fieldwriter
            for fieldname in sorted(self.postings):
                fieldwriter.start_field(fieldname, self.schema[fieldname])
                codes = self._length_codes(fieldname)
                terms = self.postings[fieldname]
                spelling = fieldname in self.spelling
                field_terms = _FieldTerms(fieldwriter, codes)
                for term in sorted(terms):
                    postings = terms[term]
                    if len(postings) == 3:  # in one document, as most terms are
                        field_terms.add_one(term, *postings)
                        continue
                    if spelling:  # docnum 0 (a segment's first, merged), weight 1, as
                        postings = _pool_sorted(postings)  # Whoosh's pool sorts them
                    docs, weights, values = postings[::3], postings[1::3], postings[2::3]
                    field_terms.add(term, docs, weights, values)
                field_terms.finish()
                fieldwriter.finish_field()
            return _closed_segment(writer)
        finally:
            writer.is_closed = True

    def _length_codes(self, fieldname: str) -> list[int]:
        """Each document's length in ``fieldname`` as the length column's byte (0: none).

        Whoosh's postings writer gets the length the column gives back (the byte decoded,
        so rounded) and notes a block's shortest and longest as bytes again; the bytes are
        the decoded lengths' order and each decoded length's byte is its own, so the bytes'
        smallest and largest are what it notes, without decoding and encoding each length.
        """
        docs = self.writer.docnum
        lengths = self.lengths.get(fieldname)
        if not lengths:
            return [0] * max(docs, 1)
        codes = {n: length_to_byte(n) for n in set(lengths.values())}
        return [codes[lengths[docnum]] if docnum in lengths else 0 for docnum in range(docs)]


def _term_info(
    weight: float, frequency: int, shortest: int, longest: int, heaviest: float, docs: list[int]
) -> W3TermInfo:
    """A term info as ``finish_postings`` makes it (its lengths from their bytes)."""
    return W3TermInfo(
        weight,
        frequency,
        byte_to_length(shortest),
        byte_to_length(longest),
        heaviest,
        docs[0],
        docs[-1],
    )


def _code_range(codes: list[int], docs: list[int]) -> tuple[int, int]:
    """The length bytes of the shortest and the longest of ``docs`` in a field (0: none has
    a length), as the postings writer notes them for a block."""
    known = [code for code in map(codes.__getitem__, docs) if code]
    return (min(known) if known else 0), max(known, default=0)


def _pool_sorted(postings: list[Any]) -> list[Any]:
    """Postings (docnum, weight, value: flat) as Whoosh's pool sorts a term's: by docnum,
    weight, then value (a value None only among Nones, as the pool could not compare it)."""
    triples = sorted(zip(postings[::3], postings[1::3], postings[2::3], strict=True), key=_order)
    return [item for triple in triples for item in triple]


def _order(posting: tuple[int, float, bytes | None]) -> tuple[int, float, bytes]:
    return posting[0], posting[1], posting[2] or b""


def _field_lengths(reader: Any, fieldname: str) -> Callable[[int], Any]:
    """Each document's length in a field as ``reader.doc_field_length`` reads it (decoded
    from its byte, 0 for none), the field's column read in one piece where it can be."""
    lengths = _decoded_lengths(reader, fieldname)
    if lengths is None:
        return functools.partial(reader.doc_field_length, fieldname=fieldname)
    return [length or 0 for length in lengths].__getitem__


def _raw_columns(reader: Any, fields_: list[Any], names: list[str]) -> dict[str, Any]:
    """The readers of a segment's columns as ``SegmentWriter.write_per_doc`` copies them:
    untranslated."""
    found = {}
    for name, field in zip(names, fields_, strict=True):
        if field.column_type and reader.has_column(name):
            column = reader.column_reader(name, field.column_type)
            if isinstance(column, columns.TranslatingColumnReader):
                column = column.raw_column()
            found[name] = column
    return found


#: A posting's weight -> the weight as the codec keeps it (32 bits), for the few weights
#: there are (a term's count in a field).
_FLOAT32: dict[float, float] = {}

#: Bytes of posting blocks :class:`_FieldTerms` gathers before it writes them.
_PENDING_BLOCK_BYTES = 1 << 20


class _FieldTerms:
    """Writes a field's terms as the W3 field writer's ``start_term`` and ``finish_term`` and
    its postings writer do, to the byte, with less Python per term: 30 us a term were mostly
    theirs, and a segment has some 7 terms an article (a sync's small one some 30).

    A short list (under the codec's inline limit) goes into its term info, a longer one into
    blocks of the postings file; the blocks and the term index's terms are gathered and
    written a field at a time (:meth:`TermIndexWriter.add_field`).
    """

    def __init__(self, fieldwriter: Any, codes: list[int]) -> None:
        from whoosh.codec.whoosh3 import COMPRESSION_MIN_SIZE, WHOOSH3_HEADER_MAGIC

        postings = fieldwriter._postwriter
        self.magic, self.compressed_from = WHOOSH3_HEADER_MAGIC, COMPRESSION_MIN_SIZE
        self.fieldwriter = fieldwriter
        self.codes = codes  # each document's length byte (0: none)
        self.file = postings._postfile
        self.offset: int = self.file.tell()  # where the next block goes
        self.blocks: list[bytes] = []  # blocks not yet written (up to self.offset)
        self.pending = 0  # their bytes
        self.inlined_below: int = postings._inlinelimit  # finish_postings: len < the limit
        self.longest: int = postings._blocklimit  # postings a block
        self.compression = postings._compression
        self.fixed_size = fieldwriter._fieldobj.format.fixed_value_size()
        self.joined = functools.partial(block_values, fieldwriter._fieldobj.format)
        self.words: list[bytes] = []
        self.frequencies: list[int] = []
        self.infos: list[bytes] = []

    def add(self, term: bytes, docs: list[int], weights: list[Any], values: list[bytes]) -> None:
        """A term's postings (docnums ascending); its row of the term index waits for
        :meth:`finish`."""
        if len(docs) < self.inlined_below:
            info = self._inlined(docs, weights, values)
        else:
            info = self._listed(docs, weights, values)
        self.words.append(term)
        self.frequencies.append(len(docs))
        self.infos.append(info_bytes(info))

    def add_one(self, term: bytes, doc: int, weight: Any, value: bytes) -> None:
        """:meth:`add` for a term of one posting (most are): inlined as :meth:`_inlined`
        would, without its lists."""
        if self.inlined_below <= 1:
            self.add(term, [doc], [weight], [value])
            return
        stored = _FLOAT32.get(weight)
        if stored is None:
            stored = _FLOAT32[weight] = array("f", (weight,))[0]
        if not weight > 0:  # its maximum weight would not be its weight
            self.add(term, [doc], [weight], [value])
            return
        self.words.append(term)
        self.frequencies.append(1)
        self.infos.append(single_info(stored, self.codes[doc], doc, value))

    def finish(self) -> None:
        """Write the postings and the term index's terms gathered."""
        self._write_blocks()
        if self.words:
            fieldwriter = self.fieldwriter
            fieldwriter._tindex.add_field(
                fieldwriter._fieldid, self.words, self.frequencies, self.infos
            )

    def _inlined(self, docs: list[int], weights: list[Any], values: list[bytes]) -> W3TermInfo:
        """The term info of a list ``finish_postings`` inlines."""
        stored = array("f", weights)
        heaviest = max(weights)
        shortest, longest = _code_range(self.codes, docs)
        info = _term_info(
            sum(stored), len(docs), shortest, longest, heaviest if heaviest > 0 else 0, docs
        )
        info.set_inlined(docs, stored, filter(None, values))
        return info

    def _listed(self, docs: list[int], weights: list[Any], values: list[bytes]) -> W3TermInfo:
        """A list written as blocks of the postings file: ``start_postings``, the postings
        writer's ``_write_block`` for each block and ``finish_postings`` in one; the blocks
        wait for :meth:`_write_blocks`. Returns the term info."""
        start_offset, limit, codes = self.offset, self.longest, self.codes
        weight: float = 0  # W3TermInfo.add_block's sums and bounds, a block at a time
        shortest = longest = heaviest = 0  # length bytes (0: no length yet)
        for start in range(0, len(docs), limit):
            block_docs = docs[start : start + limit]
            block_weights = weights[start : start + limit]
            stored = array("f", block_weights)  # as the codec keeps them: 32-bit
            count = len(stored)
            mini_values = self._mini_values(values[start : start + limit], stored)
            ids = map(operator.sub, block_docs, itertools.chain((0,), block_docs))  # deltas
            data = compact_pickle((mini_ids(ids), mini_weights(stored), mini_values))
            compression = self.compression if len(data) >= self.compressed_from else 0
            if compression:
                data = zlib.compress(data, compression)
            block_heaviest = max(block_weights)
            block_heaviest = block_heaviest if block_heaviest > 0 else 0
            block_shortest, block_longest = _code_range(codes, block_docs)
            info = compact_pickle(
                (
                    count,
                    block_docs[-1],
                    block_heaviest,
                    compression,
                    block_shortest,
                    block_longest,
                )
            )
            size = len(info) + len(data)
            last = start + limit >= len(docs)
            head = self.magic if not start else b""  # before a term's first block
            block = head + pack_int(-size if last else size) + info + data
            self.blocks.append(block)
            self.offset += len(block)
            self.pending += len(block)
            if self.pending >= _PENDING_BLOCK_BYTES:
                self._write_blocks()
            weight += sum(stored)
            if not shortest or (block_shortest and block_shortest < shortest):
                shortest = block_shortest
            longest = max(longest, block_longest)
            heaviest = max(heaviest, block_heaviest)
        listed = _term_info(weight, len(docs), shortest, longest, heaviest, docs)
        listed.set_extent(start_offset, self.offset - start_offset)
        return listed

    def _mini_values(self, values: list[bytes], weights: array[float]) -> Any:
        """A block's values as ``W3PostingsWriter._mini_values`` keeps them (the positions of
        :class:`_CompactPostingsWriter` joined)."""
        found = self.joined(values, weights.tolist())
        if found is not None:
            return found
        kept = list(filter(None, values))
        if self.fixed_size is None or self.fixed_size < 0:
            return tuple(kept)
        return None if self.fixed_size == 0 else b"".join(kept)

    def _write_blocks(self) -> None:
        if self.blocks:
            self.file.write(b"".join(self.blocks))
            self.blocks, self.pending = [], 0


class _Lengths:
    """A segment's field lengths for ``FieldWriter.add_postings``, each field's column read in
    one piece (the same values ``PerDocumentReader.doc_field_length_reader`` gives)."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def __bool__(self) -> bool:
        return self.reader is not None

    def doc_field_length_reader(self, fieldname: str, default: int = 0) -> Callable[[int], Any]:
        lengths = _decoded_lengths(self.reader, fieldname)
        if lengths is None:
            return cast(
                Callable[[int], Any], self.reader.doc_field_length_reader(fieldname, default)
            )
        return lengths.__getitem__

    def doc_field_length(self, docnum: int, fieldname: str, default: int = 0) -> Any:
        return self.reader.doc_field_length(docnum, fieldname, default)


def _decoded_lengths(reader: Any, fieldname: str) -> list[int | None] | None:
    """Every document's decoded length in a field (None where it has none), from the W3
    codec's length column (None where the codec differs)."""
    codes = length_codes(reader, fieldname, reader.doc_count_all())
    if codes is None:
        return None
    decoded = [byte_to_length(code) if code else None for code in range(256)]
    return [decoded[code] for code in codes.tolist()]


# The self-test ------------------------------------------------------------------------------

#: Documents of the self-test's index: enough that a common word's postings span blocks.
_TEST_DOCS = 300


def _self_test() -> str | None:
    """What differs between this module's reads and Whoosh's public API on a small index of
    two segments with deletions, built in memory; None if nothing."""
    from whoosh.analysis import RegexTokenizer
    from whoosh.filedb.filestore import RamStorage

    schema = fields.Schema(
        text=fields.TEXT(phrase=True),
        tag=fields.KEYWORD(scorable=True, stored=True),
        ref=fields.ID(stored=True, sortable=sortable_column(columns.RefBytesColumn())),
        var=fields.ID(sortable=sortable_column(columns.VarBytesColumn())),
        number=fields.NUMERIC(int, bits=32, signed=True, sortable=True),
    )
    index = RamStorage().create_index(schema)
    words = ["alpha", "beta", "gamma", "delta", "running", "flies"]

    def document(n: int) -> dict[str, Any]:
        text = " ".join(words[(n * k) % len(words)] for k in range(1 + n % 7))
        once = f" once{n}" if n % 10 == 0 else ""  # a posting list inlined (INLINE_LIMIT)
        return {
            "text": f"common {text} common{once}",
            "tag": words[n % 4] * (1 + n % 3),
            "ref": f"r{n % 5}",
            "var": "v" * (n % 3) + words[n % 6][: n % 4],
            "number": n * 7919 % 1000 - 500,
        }

    try:
        # The first segment as Whoosh's own codec writes it (an older index's), the second as
        # this module's codec does.
        for part, written_by in enumerate((W3Codec(inlinelimit=INLINE_LIMIT), codec())):
            writer = index.writer(codec=written_by)
            for n in range(part * _TEST_DOCS // 2, (part + 1) * _TEST_DOCS // 2):
                writer.add_document(**document(n))
            writer.commit(merge=False)
        writer = index.writer()
        for n in range(0, _TEST_DOCS, 7):
            writer.delete_document(n)
        writer.commit(merge=False)
        with index.searcher(weighting=BM25F(B=0.5, text_B=0.25)) as searcher:
            if bm25_b(searcher.weighting, "text") != 0.25 or bm25_b(searcher.weighting, "x") != 0.5:
                return "the B of a BM25F field is not where it reads it"
            leaves = list(searcher.reader().leaf_readers())
            if len(leaves) != 2:
                return "the self-test index does not have the two segments it was given"
            for leaf, _base in leaves:
                problem = _leaf_differs(leaf)
                if problem is not None:
                    return problem
        stem = StemFilter()
        stemmed = [token.text for token in (RegexTokenizer() | stem)(" ".join(words))]
        if [stem_function(stem)(word) for word in words] != stemmed:
            return "a StemFilter's stemming function is not where it reads it"
    except Exception as error:  # any surprise is a layout it does not know
        return f"its self-test failed ({type(error).__name__}: {error})"
    return None


def _leaf_differs(leaf: IndexReader) -> str | None:
    """How one segment's fast reads differ from Whoosh's public ones, or None."""
    count = leaf.doc_count_all()
    live = set(leaf.all_doc_ids())
    if set(deleted_docs.__wrapped__(leaf)) != set(range(count)) - live:
        return "deleted documents differ"
    for fieldname in ("text", "tag", "number"):
        for word in leaf.lexicon(fieldname):
            docs, weights, raw = leaf_postings(leaf, fieldname, word, values=True)
            bare_docs, bare_weights, _ = leaf_postings(leaf, fieldname, word, values=False)
            if not (np.array_equal(docs, bare_docs) and np.array_equal(weights, bare_weights)):
                return f"the postings of {fieldname}:{word!r} differ without their values"
            kept = [i for i, doc in enumerate(docs.tolist()) if doc in live]
            public = leaf.postings(fieldname, word)
            items = list(public.items_as("weight"))
            if [int(docs[i]) for i in kept] != [doc for doc, _ in items]:
                return f"the postings of {fieldname}:{word!r} differ"
            if [float(weights[i]) for i in kept] != [weight for _, weight in items]:
                return f"the weights of {fieldname}:{word!r} differ"
            if fieldname == "text":
                decode = positions_decoder(leaf.schema[fieldname].format)
                positions = [
                    positions
                    for _, positions in leaf.postings(fieldname, word).items_as("positions")
                ]
                if [decode(raw[i]) for i in kept] != positions:
                    return f"the positions of {fieldname}:{word!r} differ"
    for fieldname in ("text", "tag"):
        terms = leaf.iter_field(fieldname)
        expected = [(word.decode(), info.doc_frequency()) for word, info in terms]
        found = _word_frequencies.__wrapped__(leaf, fieldname)
        if found is None and type(getattr(leaf, "_terms", None)) is CompactTermsReader:
            return f"the words of {fieldname} are not read from its term index"
        if found is not None and list(zip(*found, strict=True)) != expected:
            return f"the words of {fieldname} or their document frequencies differ"
    for text, maxdist, prefix in (("comon", 1, 0), ("alpa", 2, 0), ("gama", 2, 1)):
        fuzzy = query.FuzzyTerm("text", text, maxdist=maxdist, prefixlength=prefix)
        walked = fuzzy_words(leaf, fuzzy, lambda: None)
        if walked is None or list(walked) != list(leaf.terms_within("text", text, maxdist, prefix)):
            return f"the words within {maxdist} edits of {text!r} differ"
    for text in ("al?ha", "c*m?n", "ga*a"):
        wildcard = query.Wildcard("text", text)
        tested = pattern_words(leaf, wildcard, lambda: None)
        if tested is None or list(tested) != list(wildcard._btexts(leaf)):
            return f"the words matching {text!r} differ"
    lengths = length_codes.__wrapped__(leaf, "text", count)
    public_lengths = [leaf.doc_field_length(doc, "text", 0) for doc in range(count)]
    if lengths is None or LENGTH_OF_BYTE[lengths].tolist() != public_lengths:
        return "field lengths differ"
    numbers = fixed_numbers.__wrapped__(leaf.column_reader("number", translate=False), count)
    if numbers is None or numbers.tolist() != list(leaf.column_reader("number", translate=False)):
        return "numeric column values differ"
    coded = ref_codes.__wrapped__(leaf.column_reader("ref", translate=False), count)
    if coded is None or [coded[1][code] for code in coded[0].tolist()] != list(
        leaf.column_reader("ref", translate=False)
    ):
        return "reference column values differ"
    if var_bytes.__wrapped__(leaf, "var") != list(leaf.column_reader("var", translate=False)):
        return "variable-length column values differ"
    return None
