"""The ``date`` field without terms: every date query of the query language answered from the
column, in every path (the fast paths, Whoosh's own searcher, the service with the fast paths
off), finding the articles dated so, as the date terms found them."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from whoosh import fields, qparser, query
from whoosh.filedb.filestore import FileStorage
from whoosh.index import Index
from whoosh.reading import SegmentReader

from searchidx import indexer, querylang, whoosh_internals
from searchidx.date_column import DateColumn
from searchidx.request import SearchRequest
from searchidx.service import SearchService
from searchidx.snapshot import date_key
from searchidx.store import IndexStore
from tests.conftest import write_article

#: path -> (publishedDateTime as written, title): dates alone, times, zones, microseconds.
DATED = {
    "a.md": ("2021-06-07", "Cloud deal"),
    "b.md": ("2021-06-07T10:30:05Z", "Chip plant"),
    "c.md": ("2021-06-07T23:30:00-02:00", "Cloud outage"),  # 2021-06-08 01:30 in UTC
    "d.md": ("2021-06-30T23:59:59.999999Z", "Budget talks"),
    "e.md": ("2021-07-01T00:00:00Z", "Cloud pricing"),
    "f.md": ("2020-12-31T23:59:59Z", "Year in review"),
    "g.md": ("2022-01-15T08:00:00+01:00", "Cloud forecast"),
    "h.md": ("2019-03-03", "Old news"),
}
#: The UTC publication time of each article.
UTC_TIMES = {
    "a.md": datetime(2021, 6, 7, tzinfo=UTC),
    "b.md": datetime(2021, 6, 7, 10, 30, 5, tzinfo=UTC),
    "c.md": datetime(2021, 6, 8, 1, 30, tzinfo=UTC),
    "d.md": datetime(2021, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
    "e.md": datetime(2021, 7, 1, tzinfo=UTC),
    "f.md": datetime(2020, 12, 31, 23, 59, 59, tzinfo=UTC),
    "g.md": datetime(2022, 1, 15, 7, tzinfo=UTC),
    "h.md": datetime(2019, 3, 3, tzinfo=UTC),
}


def _cloud(path: str) -> bool:
    return "Cloud" in DATED[path][1]


#: Query text -> whether an article (by path) is found, told from its UTC time alone.
QUERIES: dict[str, Callable[[str], bool]] = {
    "date:2021-06-07": lambda p: UTC_TIMES[p].date() == date(2021, 6, 7),
    "date:2021-06": lambda p: (UTC_TIMES[p].year, UTC_TIMES[p].month) == (2021, 6),
    "date:2021": lambda p: UTC_TIMES[p].year == 2021,
    "date:20210607103005": lambda p: p == "b.md",  # an exact second
    "date:20210630235959999999": lambda p: p == "d.md",  # an exact microsecond
    "date:[2021-06-08 TO 2021-07]": lambda p: (
        date(2021, 6, 8) <= UTC_TIMES[p].date() <= date(2021, 7, 31)
    ),
    "date:[2021 TO]": lambda p: UTC_TIMES[p].year >= 2021,
    "date:[TO 2020]": lambda p: UTC_TIMES[p].year <= 2020,
    "date:2021 date:2021-06": lambda p: (UTC_TIMES[p].year, UTC_TIMES[p].month) == (2021, 6),
    "cloud OR date:2019": lambda p: _cloud(p) or UTC_TIMES[p].year == 2019,
    "cloud -date:2021": lambda p: _cloud(p) and UTC_TIMES[p].year != 2021,
    "NOT date:2021": lambda p: UTC_TIMES[p].year != 2021,
    "NOT (date:2021 OR date:2019) OR date:2021-07": lambda p: (
        UTC_TIMES[p].year in (2020, 2022) or UTC_TIMES[p].month == 7
    ),
    "cloud date:[TO]": _cloud,
    "cloud OR NOT date:[TO]": _cloud,
    "date:1999": lambda p: False,
}


@pytest.fixture(scope="module")
def dated_store(tmp_path_factory: pytest.TempPathFactory) -> IndexStore:
    """The articles of :data:`DATED` in three segments, one with a deleted document (``c.md``
    edited: its new version in the last segment)."""
    folder = tmp_path_factory.mktemp("dated")
    store = IndexStore(tmp_path_factory.mktemp("dated-index"))
    for batch in (("a.md", "b.md", "c.md", "d.md"), ("e.md", "f.md", "g.md", "h.md")):
        for path in batch:
            written, title = DATED[path]
            write_article(folder, path, f'title: "{title}"\npublishedDateTime: {written}')
        indexer.sync(store, folder)
    written, title = DATED["c.md"]
    write_article(folder, "c.md", f'title: "{title}"\npublishedDateTime: {written}', "edited")
    indexer.sync(store, folder)
    return store


@pytest.fixture(scope="module")
def dated(dated_store: IndexStore) -> Iterator[SearchService]:
    service = SearchService(dated_store, results_cached=0)
    yield service
    service.close()


def _expected(text: str) -> set[str]:
    return {path for path in DATED if QUERIES[text](path)}


def _service_paths(service: SearchService, text: str) -> set[str]:
    result = service.search(SearchRequest(text=text, per_page=100))
    assert result.total == len(result.hits)
    return {hit.article.path for hit in result.hits}


def _whooshs_paths(service: SearchService, text: str) -> set[str]:
    """The live documents Whoosh's own searcher finds for ``text`` (``date:[TO]`` alone is a
    browse: no query)."""
    searcher = service.snapshot().searcher
    reader = searcher.reader()
    paths = list(reader.column_reader("path"))
    parsed = querylang.parse_query(text) or query.Every()
    found = searcher.docs_for_query(parsed)
    return {paths[doc].decode() for doc in found if not reader.is_deleted(doc)}


def test_date_column_indexes_no_date_term_and_keeps_every_date(dated: SearchService):
    snapshot = dated.snapshot()
    reader = snapshot.searcher.reader()
    assert "date" not in reader.indexed_field_names()
    assert not list(reader.lexicon("date"))
    live = {
        hit.article.path: hit.article.published_at
        for hit in dated.search(SearchRequest(per_page=100)).hits
    }
    assert live == UTC_TIMES
    paths = [path.decode() for path in reader.column_reader("path")]
    for docnum, path in enumerate(paths):
        assert snapshot.dates[docnum] == date_key(UTC_TIMES[path])


@pytest.mark.parametrize("text", QUERIES)
def test_date_column_queries_find_the_articles_dated_so_in_every_path(
    dated: SearchService, text: str
):
    expected = _expected(text)
    assert _service_paths(dated, text) == expected
    assert _whooshs_paths(dated, text) == expected


@pytest.fixture
def fast_paths_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Whoosh's layout unknown (a version not checked): every query is handed to Whoosh."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(whoosh_internals, "KNOWN_VERSIONS", frozenset({(2, 7)}))
    monkeypatch.setattr(whoosh_internals, "installation", lambda: "whoosh3 changed in place")
    whoosh_internals.layout_known.cache_clear()
    yield
    monkeypatch.undo()
    whoosh_internals.layout_known.cache_clear()


@pytest.mark.filterwarnings("ignore::searchidx.whoosh_internals.WhooshLayoutWarning")
def test_date_column_queries_find_the_same_with_the_fast_paths_off(
    dated_store: IndexStore, fast_paths_off: None
):
    service = SearchService(dated_store, results_cached=0)
    try:
        assert not service.snapshot().matcher.fast
        for text in QUERIES:
            assert _service_paths(service, text) == _expected(text), text
        assert service.snapshot().matcher.handed_to_whoosh
    finally:
        service.close()


def _both_dated(folder: Path) -> Index:
    """The same dates as Whoosh's ``DATETIME`` (terms) and as a :class:`DateColumn`, in two
    segments, one with a deletion (``c.md``), the titles of :data:`DATED` searchable."""
    schema = fields.Schema(
        path=fields.ID(stored=True, unique=True),
        title=fields.TEXT(),
        terms=fields.DATETIME(),
        date=DateColumn(),
    )
    index = FileStorage(str(folder)).create_index(schema)
    for batch in (list(UTC_TIMES)[:5], list(UTC_TIMES)[5:]):
        with index.writer() as writer:
            for path in batch:
                moment = UTC_TIMES[path].replace(tzinfo=None)
                writer.add_document(path=path, title=DATED[path][1], terms=moment, date=moment)
    with index.writer() as writer:
        writer.delete_by_term("path", "c.md")
    return index


def test_column_date_range_reads_each_segments_column_once_a_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Whoosh asks an AND's range for its size and then its matcher, at each segment: the
    column is read once there, a search of the same query again reads none, and a copy of
    the query reads it for itself."""
    index = _both_dated(tmp_path)
    reads: Counter[int] = Counter()
    read_column = SegmentReader.column_reader

    def counted(reader: SegmentReader, fieldname: str, *args: Any, **kwargs: Any) -> Any:
        if fieldname == "date":
            reads[id(reader)] += 1
        return read_column(reader, fieldname, *args, **kwargs)

    monkeypatch.setattr(SegmentReader, "column_reader", counted)
    schema = index.schema  # type: ignore[attr-defined]
    parsed = qparser.QueryParser("title", schema).parse("cloud date:2021")
    assert isinstance(parsed, query.And)
    with index.searcher() as searcher:
        found = {hit["path"] for hit in searcher.search(parsed, limit=None)}
        assert found == {"a.md", "e.md"}  # c.md's cloud of 2021 deleted
        assert sorted(reads.values()) == [1, 1]
        assert {hit["path"] for hit in searcher.search(parsed, limit=None)} == found
        assert sorted(reads.values()) == [1, 1]
        copied = copy.deepcopy(parsed)  # its own documents, read again; not its readers
        assert {hit["path"] for hit in searcher.search(copied, limit=None)} == found
        assert sorted(reads.values()) == [2, 2]


def test_date_column_finds_what_whooshs_date_terms_find(tmp_path: Path):
    """Each query finds the same documents in both fields of :func:`_both_dated`."""
    index = _both_dated(tmp_path)
    parser = qparser.QueryParser("path", index.schema)  # type: ignore[attr-defined]
    with index.searcher() as searcher:
        for text in QUERIES:
            if text.startswith("cloud"):
                continue
            columned = parser.parse(text)
            termed = parser.parse(text.replace("date:", "terms:"))
            found = {searcher.stored_fields(doc)["path"] for doc in columned.docs(searcher)}
            assert found == {searcher.stored_fields(d)["path"] for d in termed.docs(searcher)}
            assert found == _expected(text) - {"c.md"}, text


def test_date_column_dates_that_do_not_parse_are_left_out_with_a_note(dated: SearchService):
    for text in ("date:garbage", "date:[2021 TO garbage]"):
        result = dated.search(SearchRequest(text=text))
        assert result.total == 0 and "'garbage' is not a date" in result.notes[0], text
