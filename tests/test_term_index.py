"""The term index of schema 10 (searchidx.term_index) answers as Whoosh's hash file does: the
same documents written once with Whoosh's W3 codec and once with the project's, every term,
term info, count and posting read back through each and compared."""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any

import pytest
from whoosh.codec.whoosh3 import W3Codec, W3TermInfo
from whoosh.filedb.structfile import BufferFile
from whoosh.reading import CorruptIndexError, SegmentReader, TermNotFound

from searchidx import term_index, whoosh_internals
from searchidx.store import IndexStore
from searchidx.whoosh_internals import _WhooshSegment, unlocked_segment_writer
from tests.test_build_fastpaths import segment_documents


def written(folder: Path, documents: list[dict[str, Any]]) -> SegmentReader:
    """The documents as one segment (Whoosh's writer, the codec of the day), read."""
    index = IndexStore(folder).create_generation()[1]
    segment = _WhooshSegment(unlocked_segment_writer(index, 64))
    for document in documents:
        segment.add(document)
    return SegmentReader(index.storage, index.schema, segment.write())


@pytest.fixture(scope="module")
def readers(
    sample_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SegmentReader, SegmentReader]:
    """(Whoosh's hash file, the term index) of the same documents."""
    documents = segment_documents(sample_dir)
    ours = written(tmp_path_factory.mktemp("ours"), documents)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            whoosh_internals, "codec", lambda: W3Codec(inlinelimit=whoosh_internals.INLINE_LIMIT)
        )
        whooshs = written(tmp_path_factory.mktemp("whooshs"), documents)
    assert type(ours._terms) is term_index.CompactTermsReader
    assert type(whooshs._terms) is not term_index.CompactTermsReader
    return whooshs, ours


def postings(reader: SegmentReader, fieldname: str, word: bytes) -> list[Any]:
    matcher = reader.postings(fieldname, word)
    found = []
    while matcher.is_active():
        found.append((matcher.id(), matcher.weight(), matcher.value()))
        matcher.next()
    return found


def placed(info: W3TermInfo) -> dict[str, Any]:
    """A term info but where its postings are in the postings file (the two codecs' files
    differ: their postings are compared instead)."""
    return {name: value for name, value in vars(info).items() if name not in {"_offset", "_length"}}


def test_compact_terms_reader_reads_every_term_as_whooshs(readers):
    whooshs, ours = readers
    terms = list(whooshs.all_terms())
    assert list(ours.all_terms()) == terms
    assert len(terms) > 1500
    assert {fieldname for fieldname, _ in terms} >= {"body", "title", "spell_title", "quality"}
    for (term, info), (our_term, our_info) in zip(iter(whooshs), iter(ours), strict=True):
        assert our_term == term
        assert placed(our_info) == placed(info), term
        assert ours.frequency(*term) == whooshs.frequency(*term)
        assert ours.doc_frequency(*term) == whooshs.doc_frequency(*term)
        assert term in ours
        assert postings(ours, *term) == postings(whooshs, *term), term
    assert sum(info.is_inlined() for _, info in ours) > 1000


@pytest.mark.parametrize("fieldname", ["body", "title", "spell_title", "excerpt", "quality"])
def test_compact_terms_reader_walks_a_field_as_whooshs(readers, fieldname: str):
    whooshs, ours = readers
    words = list(whooshs.lexicon(fieldname))
    assert list(ours.lexicon(fieldname)) == words
    for word in [words[0], words[len(words) // 2], b"", b"m", b"\xff"]:
        assert list(ours.terms_from(fieldname, word)) == list(whooshs.terms_from(fieldname, word))
        assert [(term, placed(info)) for term, info in ours.iter_prefix(fieldname, word[:1])] == [
            (term, placed(info)) for term, info in whooshs.iter_prefix(fieldname, word[:1])
        ]
    cursor, whoosh_cursor = ours.cursor(fieldname), whooshs.cursor(fieldname)
    texts = [cursor.text()] if fieldname == "quality" else ["", "m", "zzzz"]
    for text in texts:
        assert cursor.find(text) == whoosh_cursor.find(text)
        assert cursor.next() == whoosh_cursor.next()
        info, whoosh_info = cursor.term_info(), whoosh_cursor.term_info()
        assert (info and placed(info)) == (whoosh_info and placed(whoosh_info))


def test_compact_terms_reader_misses_as_whooshs(readers):
    whooshs, ours = readers
    for term in [("body", b"nosuchword"), ("body", b""), ("nosuchfield", b"chip")]:
        assert (term in ours) is (term in whooshs) is False
    for term in [("body", b"nosuchword"), ("body", b"")]:
        assert ours.frequency(*term) == whooshs.frequency(*term) == 0
        assert ours.doc_frequency(*term) == whooshs.doc_frequency(*term) == 0
    with pytest.raises(TermNotFound):
        ours.term_info("body", b"nosuchword")
    assert list(ours.terms_within("body", "chp", 1)) == list(whooshs.terms_within("body", "chp", 1))
    assert ours._terms.cursor("nosuchfield", None).text() is None


def whooshs_info(
    weights: list[float], values: list[bytes], inlined: bool, lengths: tuple[int, int] = (3, 9)
) -> W3TermInfo:
    docs = [7 + 5 * n for n in range(len(weights))]
    stored = array("f", weights)
    info = W3TermInfo(sum(stored), len(docs), *lengths, max(stored), docs[0], docs[-1])
    if inlined:
        info.set_inlined(docs, stored, values)
    else:
        info.set_extent(123_456_789, 4321)
    return info


def without_first_id() -> W3TermInfo:
    """A term info whose first id is None: kept as Whoosh's bytes."""
    info = W3TermInfo(1.0, 1, 3, 9, 1.0, None, 5)
    info.set_extent(0, 10)
    return info


@pytest.mark.parametrize(
    "info",
    [
        whooshs_info([1.0], [b"\x02"], inlined=True),
        whooshs_info([2.0], [], inlined=True),
        whooshs_info([0.1], [b"\x80\x01\x05"], inlined=True),  # a weight not whole
        whooshs_info([3.0], [b"\x01"], inlined=True, lengths=(3, 4)),
        whooshs_info([1.0, 2.5, 3e38], [b"a", b"", b"c"], inlined=True),
        whooshs_info([1.0, 1.0], [], inlined=True),
        whooshs_info([4.0] * 300, [], inlined=False),
        whooshs_info([0.5, 7.0], [], inlined=False),
        whooshs_info([1.0], [], inlined=False, lengths=(0, 0)),
        without_first_id(),
    ],
)
def test_term_info_reads_back_as_whooshs_bytes_do(info: W3TermInfo):
    data = term_index.info_bytes(info)

    assert vars(term_index.term_info(info.doc_frequency(), data)) == vars(
        W3TermInfo.from_bytes(info.to_bytes())
    )
    assert len(data) < len(info.to_bytes()) or info._minid is None


@pytest.mark.parametrize("doc", [0, 127, 128, 65536, 2**32 - 2])
@pytest.mark.parametrize("value", [None, b"\x00\x01", b"y" * 300])
def test_single_info_is_the_info_bytes_of_its_term_info(doc: int, value: bytes | None):
    for weight in (1.0, 2.0, 0.10000000149011612, 3.0e38):
        info = W3TermInfo(weight, 1, 10, 10, weight, doc, doc)
        info.set_inlined((doc,), (weight,), (value,) if value else ())

        assert term_index.single_info(weight, 10, doc, value) == term_index.info_bytes(info)


def test_term_index_cut_short_or_spoilt_is_a_corrupt_index(readers):
    whole = readers[1]._terms._dbfile.get(0, readers[1]._terms._dbfile._buf.__len__())
    for data in (whole[:-3], whole[:3], b"HSH3" + whole[4:], whole[:-9] + b"{" + whole[-8:]):
        with pytest.raises(CorruptIndexError):
            term_index.TermIndex(BufferFile(data), len(data))
    lengths_cut = bytearray(whole)
    index = term_index.TermIndex(BufferFile(bytes(lengths_cut)), len(whole))
    body = index.fieldmap["body"]
    words_end = index._parts[body][2]
    lengths_cut[words_end] = 0xFF  # a word's length runs past its words
    with pytest.raises(CorruptIndexError):
        term_index.TermIndex(BufferFile(bytes(lengths_cut)), len(whole)).field(body)
    with pytest.raises(CorruptIndexError):
        term_index.term_info(1, b"\x03\x80")


def test_term_index_writer_refuses_words_out_of_order(tmp_path: Path):
    writer = term_index.TermIndexWriter(open(tmp_path / "x.trm", "wb"))  # noqa: SIM115
    writer.add_field(1, [b"a", b"b"], [1, 1], [b"\x00", b"\x00"])
    with pytest.raises(ValueError, match="not ascending"):
        writer.add_field(2, [b"b", b"a"], [1, 1], [b"\x00", b"\x00"])
    with pytest.raises(ValueError, match="written after"):
        writer.add_field(0, [b"a"], [1], [b"\x00"])
