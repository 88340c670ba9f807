"""Positions as varints (schema 8) answer as Whoosh's pickled positions (schema 7) did.

The same collection is built twice in one process (the same docnums): once with the schema's
``VarintPositions``, once with Whoosh's ``Positions`` (the text fields made as Whoosh's TEXT
makes them, indexed by Whoosh's own loop). Every way positions are read gives the same
answers on both: Whoosh's matchers and phrase, slop and span queries, the numpy decoding of
the phrase paths, and the search service's pages, scores and highlights.
"""

from __future__ import annotations

import random
import re
import zlib
from typing import Any

import numpy as np
import pytest
from whoosh import fields, formats, query
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC
from whoosh.filedb.structfile import BufferFile
from whoosh.reading import CorruptIndexError
from whoosh.system import _INT_SIZE, pack_int

from searchidx import indexer, schema, whoosh_internals
from searchidx.positions import (
    JoinedValues,
    VarintPositions,
    decoded_many,
    encoded,
    joined,
    number_array,
    numbers_of,
    split,
    varints,
    varints_at,
)
from searchidx.request import SearchRequest, Sort
from searchidx.sample import write_sample
from searchidx.service import SearchService
from searchidx.store import IndexStore
from tests.conftest import write_article

#: Words of a long body: a phrase repeated past 128 and 16,384 words (gaps of 2 and 3 bytes).
LONG_BODY = " ".join(
    ["chip production"] + ["filler"] * 300 + ["chip production"] + ["other"] * 17_000 + ["chip"]
)
REQUESTS = [
    SearchRequest(text='"chip production"', per_page=50),
    SearchRequest(text='"chip production" OR analysts', sort=Sort.RELEVANCE, per_page=50),
    SearchRequest(text='title:"demand grows"', per_page=50),
    SearchRequest(text="apple restricts chip", per_page=50),  # the title phrase bonus
    SearchRequest(text='body:"filler chip"', per_page=50),
    SearchRequest(text='"chip production" -"across asia"', sort=Sort.NEWEST, per_page=50),
]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[IndexStore, IndexStore]:
    """The collection built with varints, and built with Whoosh's pickled positions."""
    content = tmp_path_factory.mktemp("positions-content")
    write_sample(content, 300, seed=5, vocabulary=300)
    write_article(
        content, "long.md", 'title: "Chip production"\npublishedDateTime: 2024-01-01', LONG_BODY
    )
    built = []
    for name, text_init in (("varint", schema.Text.__init__), ("pickled", fields.TEXT.__init__)):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(indexer, "BUILD_PROCESSES", 1)
            patch.setattr(schema.Text, "__init__", text_init)
            store = IndexStore(tmp_path_factory.mktemp(name))
            indexer.sync(store, content)
        built.append(store)
    return built[0], built[1]


def _text_fields(store: IndexStore) -> list[str]:
    with store.open_index().searcher() as searcher:
        return [name for name, field in searcher.schema.items() if type(field) is schema.Text]


def test_text_fields_keep_their_positions_as_varints_and_spelling_words_no_value(stores):
    varint, pickled = stores
    for store, kind, spelling in (
        (varint, VarintPositions, formats.Existence),
        (pickled, formats.Positions, formats.Frequency),
    ):
        with store.open_index().searcher() as searcher:
            for name in _text_fields(store):
                assert type(searcher.schema[name].format) is kind, name
            assert type(searcher.schema["spell_title"].format) is spelling
    assert len(_text_fields(varint)) == 5


def test_varint_positions_are_whooshs_positions_per_posting(stores):
    """Every posting of every text word: the same documents, positions, frequencies and
    weights through Whoosh's matchers, and the same positions from the numpy decoding."""
    readers = [store.open_index().reader() for store in stores]
    postings = 0
    for fieldname in _text_fields(stores[0]):
        words = list(readers[0].lexicon(fieldname))
        assert words == list(readers[1].lexicon(fieldname))
        for word in words:
            found = []
            for reader in readers:
                items = list(reader.postings(fieldname, word).items_as("positions"))
                frequencies = list(reader.postings(fieldname, word).items_as("frequency"))
                weights = list(reader.postings(fieldname, word).items_as("weight"))
                format_ = reader.schema[fieldname].format
                values = _values(reader.postings(fieldname, word))
                counts, flat = whoosh_internals.decoded_positions(format_, values)
                assert counts.tolist() == [len(positions) for _, positions in items]
                assert flat.tolist() == [p for _, positions in items for p in positions]
                found.append((items, frequencies, weights))
            assert found[0] == found[1], (fieldname, word)
            postings += len(found[0][0])
    assert postings > 30_000
    for reader in readers:
        reader.close()


def _values(matcher: Any) -> list[bytes]:
    """A matcher's raw posting values."""
    values = []
    while matcher.is_active():
        values.append(matcher.value())
        matcher.next()
    return values


def test_varint_blocks_keep_their_positions_joined(stores):
    """A posting list in blocks keeps each block's values as one string (schema 9): the
    comparisons above read them."""
    with stores[0].open_index().reader() as reader:
        blocks = [
            type(_block_values(matcher))
            for fieldname in _text_fields(stores[0])
            for word in reader.lexicon(fieldname)
            if hasattr(matcher := reader.postings(fieldname, word), "_data")
        ]
    assert blocks.count(bytes) > 100
    assert set(blocks) == {bytes}


def _first_block(stores: tuple[IndexStore, IndexStore]) -> tuple[Any, bytes, bytes]:
    """A body word's posting matcher whose first block keeps its values joined, the bytes of
    that block's header (its pickled info) and of its data as the index has them."""
    with stores[0].open_index().reader() as reader:
        for word in reader.lexicon("body"):
            matcher = reader.postings("body", word)
            if type(_block_values(matcher)) is bytes and type(matcher._data[0]) is bytes:
                start = matcher._baseoffset + _INT_SIZE
                postings = matcher._postfile
                info = postings.get(start, matcher._dataoffset - start)
                data = postings.get(matcher._dataoffset, matcher._nextoffset - matcher._dataoffset)
                return matcher, info, data
    raise AssertionError("no joined block")


def _block_data(matcher: Any, block: Any) -> bytes:
    """A block's data as the index writes it: pickled as its matcher's block was."""
    data = whoosh_internals.compact_pickle(block)
    return zlib.compress(data) if matcher._compression else data


@pytest.mark.parametrize(
    ("damage", "cause"),
    [
        (lambda data: b"\xff" * len(data), "invalid load key"),  # not a pickle
        (lambda data: data[: len(data) // 2], ""),  # cut short
    ],
)
def test_joined_values_matcher_of_damaged_bytes_is_a_corrupt_index(stores, damage, cause: str):
    matcher, info, data = _first_block(stores)
    _read_block(matcher, info, data)  # as the index has it: read
    with pytest.raises(CorruptIndexError, match=f"Damaged postings block.*{cause}.*rebuild"):
        _read_block(matcher, info, damage(data))


@pytest.mark.parametrize("damaged_part", ["header", "data"])
def test_fast_path_blocks_of_damaged_bytes_are_a_corrupt_index(stores, damaged_part: str):
    """The fast paths read a list's ids and weights without Whoosh's matcher: a block that
    does not read says so as the matcher does, not as its bytes first failed."""
    _, info, data = _first_block(stores)
    if damaged_part == "header":
        info = b"\xff" * len(info)
    else:
        data = b"\xff" * len(data)
    postings = BufferFile(pack_int(-(len(info) + len(data))) + info + data)
    with pytest.raises(CorruptIndexError, match=r"Damaged postings block at offset 0.*rebuild"):
        list(whoosh_internals._blocks_without_values(postings, 0))


def test_joined_values_matcher_of_a_block_not_as_written_is_a_corrupt_index(stores):
    """Blocks that unpickle but do not hold what their header says: not a tuple; ids cut
    inside a number, or fewer than its postings; positions not as many as its weights."""
    matcher, info, _ = _first_block(stores)
    ids, weights, values = matcher._data
    count = matcher._blocklength
    _read_block(matcher, info, _block_data(matcher, (ids, weights, values)))  # as written: read
    for block, cause in [
        (["not", "a", "block"], "list, not ids"),
        ((ids + b"\x80", weights, values), "inside a number"),
        ((ids[:-1], weights, values), f"{count - 1} ids for {count} postings"),
        ((ids, weights, values[:-1]), "do not match"),
    ]:
        with pytest.raises(CorruptIndexError, match=re.escape(cause)):
            _read_block(matcher, info, _block_data(matcher, block))


def _read_block(matcher: Any, info: bytes, data: bytes) -> None:
    """Read every posting of a one-block list of ``info`` and ``data``, as the codec reads it."""
    postings = WHOOSH3_HEADER_MAGIC + pack_int(-(len(info) + len(data))) + info + data
    reread = type(matcher)(BufferFile(postings), 0, len(postings), matcher.format)
    while reread.is_active():
        reread.id(), reread.weight(), reread.value()
        reread.next()


def _block_values(matcher: Any) -> Any:
    """The values of a W3 matcher's first block, as stored."""
    matcher._read_data()
    return matcher._data[2]


def test_whoosh_phrase_and_span_queries_find_the_same_on_varints(stores):
    queries: list[query.Query] = [
        query.Phrase("body", ["chip", "product"]),
        query.Phrase("body", ["filler", "chip"], slop=2),
        query.Phrase("title", ["chip", "product"]),
        query.Phrase("title", ["demand", "grow"], slop=3),
        query.Phrase("excerpt", ["new", "featur"], slop=3),
        query.SpanNear2([query.Term("body", "chip"), query.Term("body", "other")], slop=20),
        query.Ordered([query.Term("body", "power"), query.Term("body", "app")]),
    ]
    found = []
    for store in stores:
        with store.open_index().searcher() as searcher:
            hits = [
                [(hit.docnum, hit.score) for hit in searcher.search(q, limit=None)] for q in queries
            ]
            found.append(hits)
    assert found[0] == found[1]
    assert all(found[0]), "every query finds documents"


def test_the_service_answers_the_same_on_varints(stores):
    answers = []
    for store in stores:
        service = SearchService(store, results_cached=0)
        try:
            answers.append([_answer(service.search(request)) for request in REQUESTS])
        finally:
            service.close()
    assert answers[0] == answers[1]
    assert all(answer["total"] for answer in answers[0])


def _answer(result: Any) -> dict[str, Any]:
    found: dict[str, Any] = result.to_dict()
    del found["took_ms"]
    return found


def test_varint_values_are_a_byte_a_small_gap():
    assert encoded([5]) == b"\x05"
    assert encoded([0, 127, 128]) == b"\x00\x7f\x01"
    assert encoded([200]) == b"\xc8\x01"
    assert encoded([]) == b""
    assert len(encoded([0, 1, 300, 20_000])) == 1 + 1 + 2 + 3
    with pytest.raises(ValueError, match="ascend"):
        encoded([3, 2])


def test_varint_values_decode_one_by_one_and_in_batches_as_encoded():
    rng = random.Random(4)
    format_ = VarintPositions()
    lists = [
        sorted(rng.sample(range(top), count))
        for top in (5, 130, 20_000, 3_000_000)
        for count in (0, 1, 2, 5)
    ] * 5
    rng.shuffle(lists)
    values = [format_.encode(positions) for positions in lists]
    for positions, value in zip(lists, values, strict=True):
        assert format_.decode_positions(value) == positions
        assert format_.decode_frequency(value) == len(positions)
        assert format_.decode_weight(value) == len(positions)
    for chunk in (values, values[:1], values[3:9], [], [b""]):
        counts, flat = decoded_many(chunk)
        expected = [format_.decode_positions(value) for value in chunk]
        assert counts.tolist() == [len(positions) for positions in expected]
        assert flat.tolist() == [position for positions in expected for position in positions]


def test_a_value_cut_inside_a_gap_is_refused_in_batches():
    with pytest.raises(ValueError, match="inside a gap"):
        decoded_many([b"\x05", encoded([300])[:1]])


def test_joined_values_split_by_their_weights_as_they_were():
    rng = random.Random(9)
    for top in (5, 130, 20_000):
        lists = [sorted(rng.sample(range(top), rng.randint(1, 4))) for _ in range(40)]
        values = [encoded(positions) for positions in lists]
        weights = [float(len(positions)) for positions in lists]
        data = joined(values, weights)
        assert data == b"".join(values)
        assert split(data, tuple(weights), len(values)) == values
    ones = [encoded([position]) for position in (3, 300, 0, 70_000)]
    assert split(b"".join(ones), None, 4) == ones
    twos = [encoded([1, position]) for position in (3, 300, 2)]
    assert split(b"".join(twos), 2.0, 3) == twos


def test_values_not_counted_by_their_weights_are_not_joined():
    values = [encoded([1, 2]), encoded([300])]
    assert joined(values, [2.0, 1.0]) is not None
    assert joined(values, [1.0, 2.0]) is None  # the same sum, counted otherwise
    assert joined(values, [4.0, 2.0]) is None  # a field boost of 2
    assert joined([b"", b"\x01"], [0.0, 1.0]) is None


def test_joined_values_that_do_not_match_their_weights_are_refused():
    with pytest.raises(ValueError, match="do not match"):
        split(encoded([1, 2, 3]), (1.0, 1.0), 2)
    with pytest.raises(ValueError, match="do not match"):
        split(encoded([300])[:1] + encoded([300]), None, 2)
    with pytest.raises(ValueError, match="do not match"):
        split(b"\x01\x02", None, 3)
    with pytest.raises(ValueError, match="do not match"):
        split(b"\x01\x02", (1.5, 0.5), 2)


def test_joined_values_read_and_decode_as_their_values():
    rng = random.Random(11)
    lists = [sorted(rng.sample(range(top), rng.randint(1, 3))) for top in (9, 400, 90_000)] * 7
    rng.shuffle(lists)
    values = [encoded(positions) for positions in lists]
    together = JoinedValues(b"".join(values), np.array([len(found) for found in lists]))
    assert len(together) == len(values)
    assert list(together) == values
    assert together[-1] == values[-1]
    for start, stop, step in (
        (0, 21, 1),
        (3, 9, 1),
        (5, 5, 1),
        (9, 3, 1),
        (1, 20, 3),
        (-4, None, 1),
    ):
        part = together[start:stop:step]
        assert list(part) == values[start:stop:step]
        counts, flat = decoded_many(part)
        expected_counts, expected = decoded_many(values[start:stop:step])
        assert counts.tolist() == expected_counts.tolist()
        assert flat.tolist() == expected.tolist()
    with pytest.raises(IndexError):
        together[len(values)]


def test_varint_numbers_decode_one_by_one_and_at_once_as_encoded():
    for numbers in ([], [0, 5, 127], [300, 5, 127], [128, 0, 300, 20_000, 3_000_000], [2**40]):
        data = varints(numbers)
        assert numbers_of(data) == numbers
        assert number_array(data).tolist() == numbers
    for negative in ([-1], [5, -1], [300, 200, -1]):
        with pytest.raises(ValueError, match=r"ascend|below 0"):
            varints(negative)
    for cut in (varints([300])[:1], varints([1, 20_000])[:-1]):
        with pytest.raises(ValueError, match="inside a number"):
            numbers_of(cut)
        with pytest.raises(ValueError, match="inside a number"):
            number_array(cut)


def test_varints_at_reads_a_count_from_an_offset_and_says_where_it_ended():
    numbers = [300, 5, 2**40, 127]  # varints of 2, 1, 6 and 1 bytes
    data = b"\x03" + varints(numbers) + b"\xfftail"  # a kind byte before, a value after
    assert varints_at(data, 1, 1) == ([300], 3)
    assert varints_at(data, 3, 2) == ([5, 2**40], 10)
    assert varints_at(data, 10, 1) == ([127], 11)
    assert varints_at(data, 1, 4) == (numbers, 11)
    assert varints_at(varints([300, 5])) == ([300, 5], 3)
    assert varints_at(data, 3, 0) == ([], 3)  # none asked for: none read
    for cut, count in ((b"\x03\xac", 1), (b"\x03\x05", 2), (b"\x03", 1)):
        with pytest.raises(ValueError, match="inside a number"):
            varints_at(cut, 1, count)


def test_varint_value_cut_inside_a_gap_is_refused_one_by_one():
    """As in batches (:func:`decoded_many`): a cut value's last gap is not dropped silently."""
    with pytest.raises(ValueError, match="inside a number"):
        VarintPositions().decode_positions(encoded([5, 300])[:-1])


def test_text_takes_varints_only_for_whooshs_positions():
    assert type(schema.Text().format) is VarintPositions
    assert schema.Text(field_boost=2.0).format == VarintPositions(field_boost=2.0)
    assert type(schema.Text(phrase=False).format) is formats.Frequency
    assert type(schema.Text(chars=True).format) is formats.Characters
