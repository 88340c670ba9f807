"""What a new search process reads from disk: the arrays written at commit (searchidx.arrays),
the same as the ones built from the columns and never those of another commit; the layout
check it may trust; segment parts read in place."""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from whoosh.fields import TEXT, Schema
from whoosh.filedb.filestore import RamStorage

from searchidx import arrays, indexer, merge_policy, whoosh_internals
from searchidx.arrays import open_arrays
from searchidx.request import SearchRequest, Sort
from searchidx.service import SearchService
from searchidx.snapshot import IndexSnapshot
from searchidx.store import IndexStore
from tests.conftest import write_article

REQUESTS = [
    SearchRequest(text="cloud", facets=True),
    SearchRequest(text="", sort=Sort.QUALITY, facets=True, page=2),
    SearchRequest(text="ai OR security", sort=Sort.OLDEST, filters={"topic": ("AI",)}),
    SearchRequest(text="the", sort=Sort.NEWEST, min_quality=50, facets=True),
]


def _edit(content: Path) -> None:
    """Delete one article and change another: the next sync deletes and adds."""
    files = sorted(content.rglob("*.md"))
    files[0].unlink()
    files[1].write_text(files[1].read_text().replace("title:", "title: Changed", 1))


def _arrays_files(store: IndexStore) -> list[Path]:
    return sorted(store.live_dir().glob("*arrays-*"))


def _answers(store: IndexStore) -> list:
    service = SearchService(store, results_cached=0)
    try:
        results = [service.search(request) for request in REQUESTS]
    finally:
        service.close()
    return [(r.total, [hit.article.path for hit in r.hits], r.facets) for r in results]


def test_arrays_written_at_commit_equal_the_ones_built_from_the_columns(content, store):
    indexer.sync(store, content)
    _edit(content)
    indexer.sync(store, content)  # deletions, and a second segment
    index = store.open_index()
    with index.searcher() as searcher:
        built, facet_values = IndexSnapshot(searcher).arrays_to_store()
        stored = open_arrays(store.live_dir(), searcher.reader())
        assert stored is not None
        snapshot = IndexSnapshot(searcher, stored=stored)
        for name, array in built.items():
            read = stored.array(name)
            if name.startswith("rank-"):  # not written: the inverse of the order written
                assert read is None, name
                read = snapshot.rank(Sort(name.removeprefix("rank-")))
            assert read is not None and read.dtype == array.dtype, name
            assert np.array_equal(read, array), name
        assert stored.facet_values == facet_values
        assert not stored.arrays["live"].all()  # the deleted article is in them
    index.close()
    mapped = _answers(store)
    _arrays_files(store)[0].unlink()
    assert _answers(store) == mapped  # built from the columns: the same answers


def test_arrays_are_written_compactly_and_read_back_as_built(content, store):
    """A field's lengths as their length bytes, a facet's value ids in a byte or two, its
    documents left out where they are the live ones: a quarter fewer bytes, read back as
    built (the test above)."""
    indexer.sync(store, content)
    index = store.open_index()
    with index.searcher() as searcher:
        built, _ = IndexSnapshot(searcher).arrays_to_store()
        stored = open_arrays(store.live_dir(), searcher.reader())
    index.close()
    assert stored is not None
    assert stored.arrays["length-codes-body"].dtype == np.uint8
    assert "lengths-body" not in stored.arrays and "facet-month-docs" not in stored.arrays
    assert f"order-{Sort.NEWEST}" in stored.arrays and f"rank-{Sort.NEWEST}" not in stored.arrays
    assert stored.arrays["facet-category-ids"].dtype == np.int8
    written = sum(array.nbytes for array in stored.arrays.values())
    assert written < 0.8 * sum(array.nbytes for array in built.values())


def test_arrays_hold_orders_ranks_and_qualities_as_int32_in_the_same_order(tmp_path, store):
    """Half the bytes of int64, the same answers: a missing quality (int32's least, which
    has no int32 opposite) still sorts after every known one, best first."""
    for name, quality in (("a.md", 10), ("b.md", None), ("c.md", 90), ("d.md", 50)):
        line = "" if quality is None else f"\nquality: {quality}"
        write_article(
            tmp_path, name, f'title: "Article {name}"\npublishedDateTime: 2024-01-01{line}'
        )
    indexer.sync(store, tmp_path)
    index = store.open_index()
    with index.searcher() as searcher:
        stored = open_arrays(store.live_dir(), searcher.reader())
        assert stored is not None
        for name, array in stored.arrays.items():
            if name.startswith(("order-", "rank-")) or name == "qualities":
                assert array.dtype == np.int32, name
        ((leaf, _base),) = searcher.reader().leaf_readers()  # one segment
        paths = whoosh_internals.column_bytes(leaf, "path")
        by_quality = [paths[docnum] for docnum in stored.arrays[f"order-{Sort.QUALITY}"]]
    index.close()
    assert by_quality == [b"c.md", b"d.md", b"a.md", b"b.md"]


def test_field_lengths_are_exact_as_float32():
    """Every length a field's length byte decodes to survives float32, as the arrays keep it."""
    lengths = whoosh_internals.LENGTH_OF_BYTE
    assert np.array_equal(lengths.astype(np.float32).astype(np.float64), lengths)


@pytest.mark.parametrize("other", [11.0, 10.5, 2e6, -1.0])  # no byte decodes to any
def test_compact_lengths_are_their_bytes_unless_a_length_is_no_bytes(other: float):
    lengths = whoosh_internals.LENGTH_OF_BYTE.astype(np.float32)
    live = np.ones(len(lengths), dtype=bool)
    compact = arrays._compact({"lengths-body": lengths, "live": live})
    assert np.array_equal(compact["length-codes-body"], np.arange(len(lengths)))
    unusual = lengths.copy()
    unusual[7] = other
    compact = arrays._compact({"lengths-body": unusual, "live": live})
    assert "length-codes-body" not in compact
    assert np.array_equal(compact["lengths-body"], unusual)


def test_arrays_of_an_earlier_commit_are_never_used(content, store):
    indexer.sync(store, content)
    (earlier,) = _arrays_files(store)
    kept = store.location / "earlier"
    shutil.copy(earlier, kept)
    _edit(content)
    indexer.sync(store, content)
    (current,) = _arrays_files(store)
    assert current != earlier  # written for the new commit, the earlier set removed
    expected = _answers(store)
    shutil.copy(kept, current)  # the earlier commit's arrays under the current name
    index = store.open_index()
    with index.searcher() as searcher:
        assert open_arrays(store.live_dir(), searcher.reader()) is None
    index.close()
    assert _answers(store) == expected  # the deleted article is not found again


def test_arrays_of_a_replaced_generation_are_never_used(content, store):
    indexer.sync(store, content)
    (earlier,) = _arrays_files(store)
    kept = store.location / "earlier"
    shutil.copy(earlier, kept)
    _edit(content)
    indexer.rebuild(store, content)
    (current,) = _arrays_files(store)
    assert current.name == earlier.name  # a new generation's commits count from 1 again
    shutil.copy(kept, current)
    index = store.open_index()
    with index.searcher() as searcher:
        assert open_arrays(store.live_dir(), searcher.reader()) is None
    index.close()


def test_arrays_of_another_format_or_cut_short_are_ignored(content, store, monkeypatch):
    indexer.sync(store, content)
    index = store.open_index()
    with index.searcher() as searcher:
        assert open_arrays(store.live_dir(), searcher.reader()) is not None
        monkeypatch.setattr(arrays, "FORMAT", arrays.FORMAT + 1)
        assert open_arrays(store.live_dir(), searcher.reader()) is None
        monkeypatch.undo()
        (path,) = _arrays_files(store)
        path.write_bytes(path.read_bytes()[:-100])
        assert open_arrays(store.live_dir(), searcher.reader()) is None
    index.close()


def test_arrays_of_an_empty_index_are_read(tmp_path, store):
    (tmp_path / "empty").mkdir()
    indexer.sync(store, tmp_path / "empty")
    index = store.open_index()
    with index.searcher() as searcher:
        stored = open_arrays(store.live_dir(), searcher.reader())
        assert stored is not None and len(stored.arrays["live"]) == 0
    index.close()
    assert all(total == 0 for total, _, _ in _answers(store))


def test_arrays_lost_are_written_again_by_the_next_sync(content, store):
    indexer.sync(store, content)
    (path,) = _arrays_files(store)
    path.unlink()  # a writer killed between its commit and its arrays
    (store.live_dir() / f".{path.name}.999.tmp").write_bytes(b"SIDX")  # and what it left
    report = indexer.sync(store, content)  # nothing changed
    assert not report.changed
    assert _arrays_files(store) == [path]
    index = store.open_index()
    with index.searcher() as searcher:
        assert open_arrays(store.live_dir(), searcher.reader()) is not None
    index.close()


# A sync's arrays, written from the last set ------------------------------------------------


def _change(content: Path, round_: int) -> None:
    """Change, delete and add articles, new facet values among them: a sync's 1%."""
    files = sorted(path for path in content.rglob("*.md") if "added" not in path.parts)
    for path in files[round_ * 7 : round_ * 7 + 5]:
        path.write_text(path.read_text().replace('title: "', 'title: "Updated: ', 1))
    files[round_ * 7 + 5].unlink()
    for number in range(3):
        write_article(
            content,
            f"added/{round_}-{number}.md",
            f"title: Added {round_} {number}\npublishedDateTime: 2021-0{number + 1}-02\n"
            f"quality: {40 + number}\ncategory: new-{round_}\ntype: brief\npublished: false\n"
            f"provider:\n  name: Newcomer {number}\ntopics:\n  - Fresh {round_}\n  - AI\n",
            "A body of new words.",
        )


def _rewritten(store: IndexStore, tmp_path: Path) -> tuple[bytes, bytes]:
    """The live generation's arrays file, and the one a full write of the same commit gives."""
    (path,) = _arrays_files(store)
    copy = tmp_path / "rewritten"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(store.live_dir(), copy)
    (copy / path.name).unlink()
    assert arrays.write_arrays(copy)
    return path.read_bytes(), (copy / path.name).read_bytes()


@pytest.mark.parametrize("files_per_process", [indexer.SYNC_FILES_PER_PROCESS, 4])
def test_arrays_of_a_sync_equal_a_full_write_of_its_commit(
    content, store, tmp_path, monkeypatch, files_per_process
):
    monkeypatch.setattr(indexer, "SYNC_FILES_PER_PROCESS", files_per_process)  # 4: workers
    monkeypatch.setattr(merge_policy, "FLOOR_DOCS", 2)  # the build's segment alone in its tier
    monkeypatch.setattr(merge_policy, "MERGE_FACTOR", 3)  # syncs merge their segments too
    extended = []

    def leading(*args):
        extended.append(found := spied(*args))
        return found

    spied = arrays._leading
    monkeypatch.setattr(arrays, "_leading", leading)
    indexer.sync(store, content)
    for round_ in range(4):
        _change(content, round_)
        report = indexer.sync(store, content)
        assert (report.added, report.updated, report.removed) == (3, 5, 1)
        incremental, full = _rewritten(store, tmp_path)
        assert incremental == full, f"sync {round_ + 1}"
    (content / "added" / "0-0.md").unlink()
    indexer.sync(store, content)  # only a deletion: the same segments
    incremental, full = _rewritten(store, tmp_path)
    assert incremental == full
    # Most syncs extended the last set; some merged the syncs' segments first, which numbers
    # the documents anew: their arrays were written whole.
    assert extended[0] is not None and None in extended


def test_arrays_of_a_sync_order_ties_by_path_as_a_full_write(tmp_path, store, monkeypatch):
    """Articles of the same date and quality as earlier ones go among them by path, and a
    changed one after its old version: the orders a sync extends are the ones a full write
    sorts."""
    monkeypatch.setattr(merge_policy, "FLOOR_DOCS", 1000)  # no merge: the orders extended
    content = tmp_path / "content"
    same = "publishedDateTime: 2022-05-01T10:00:00Z\nquality: 50\n"
    for name in ("b", "d", "f"):
        write_article(content, f"{name}.md", f"title: {name}\n{same}", "Words.")
    write_article(content, "z.md", "title: z\npublishedDateTime: 2021-01-01\n", "Words.")
    indexer.sync(store, content)
    for name in ("a", "c", "e", "g"):
        write_article(content, f"{name}.md", f"title: {name}\n{same}", "Words.")
    write_article(content, "d.md", f"title: d changed\n{same}", "Words.")
    assert indexer.sync(store, content).added == 4
    incremental, full = _rewritten(store, tmp_path)
    assert incremental == full
    newest = [hit.article.path for hit in _search(store, SearchRequest(sort=Sort.NEWEST))]
    assert newest == ["a.md", "b.md", "c.md", "d.md", "e.md", "f.md", "g.md", "z.md"]


def _search(store: IndexStore, request: SearchRequest) -> tuple:
    service = SearchService(store, results_cached=0)
    try:
        return service.search(request).hits
    finally:
        service.close()


def test_arrays_of_a_sync_through_whooshs_public_api_equal_the_fast_ones(
    content, store, tmp_path, monkeypatch
):
    indexer.sync(store, content)
    monkeypatch.setattr(whoosh_internals, "KNOWN_VERSIONS", frozenset({(2, 7)}))
    monkeypatch.setattr(whoosh_internals, "installation", lambda: "whoosh3 changed in place")
    whoosh_internals.layout_known.cache_clear()
    try:
        with pytest.warns(whoosh_internals.WhooshLayoutWarning):
            _change(content, 0)
            report = indexer.sync(store, content)  # files, deletions and arrays read slowly
        assert (report.added, report.updated, report.removed) == (3, 5, 1)
        assert not indexer.sync(store, content).changed
    finally:
        monkeypatch.undo()
        whoosh_internals.layout_known.cache_clear()
    slow, fast = (arrays._read(path) for path in _written_both_ways(store, tmp_path))
    assert slow is not None and fast is not None
    assert slow.layout_checked is None and fast.layout_checked is not None
    assert slow.facet_values == fast.facet_values
    assert slow.arrays.keys() == fast.arrays.keys()
    for name, array in fast.arrays.items():
        assert np.array_equal(slow.arrays[name], array) and slow.arrays[name].dtype == array.dtype


def _written_both_ways(store: IndexStore, tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the live arrays file, and of the one a full write of its commit gives."""
    (path,) = _arrays_files(store)
    slow, fast = tmp_path / "slow", tmp_path / "fast"
    shutil.copy(path, slow)
    path.unlink()
    assert arrays.write_arrays(store.live_dir())
    shutil.copy(path, fast)
    return slow, fast


# The layout check ------------------------------------------------------------------------


@pytest.fixture
def fresh_layout_check(monkeypatch, tmp_path):
    """Count the self-tests this process runs, with no verdict remembered; the check is made
    again afterwards."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runs = []
    self_test = whoosh_internals._self_test
    monkeypatch.setattr(whoosh_internals, "_self_test", lambda: runs.append(1) or self_test())
    monkeypatch.setattr(whoosh_internals, "_CHECKED_ELSEWHERE", set())
    whoosh_internals.layout_known.cache_clear()
    yield runs
    monkeypatch.undo()
    whoosh_internals.layout_known.cache_clear()


def test_layout_checked_by_the_indexer_is_trusted_with_the_same_whoosh(fresh_layout_check):
    whoosh_internals.trust_layout(whoosh_internals.installation())
    assert whoosh_internals.layout_known()
    assert fresh_layout_check == []


def test_layout_checked_with_another_whoosh_is_checked_again(fresh_layout_check):
    whoosh_internals.trust_layout("3.54.0 /somewhere/else/whoosh")
    whoosh_internals.trust_layout(None)  # the indexer found the layout unknown
    assert whoosh_internals.layout_known()
    assert fresh_layout_check == [1]


def test_arrays_name_the_whoosh_whose_layout_the_indexer_checked(content, store):
    indexer.sync(store, content)
    index = store.open_index()
    with index.searcher() as searcher:
        stored = open_arrays(store.live_dir(), searcher.reader())
        assert stored is not None
        assert stored.layout_checked == whoosh_internals.installation()
    index.close()


def test_a_sync_trusts_the_check_named_by_the_arrays_it_replaces(
    content: Path, store: IndexStore, fresh_layout_check
):
    indexer.sync(store, content)  # a build: nothing to trust yet, so it checks
    assert fresh_layout_check == [1]
    whoosh_internals.layout_known.cache_clear()  # as the next process would start
    write_article(content, "new.md", "title: New\npublishedDateTime: 2024-01-02")

    indexer.sync(store, content)

    assert fresh_layout_check == [1]
    assert whoosh_internals.layout_known()


#: A process that checks the layout: whether it is known, and how many self-tests it ran.
_CHECKING_PROCESS = """
import sys
from searchidx import whoosh_internals
runs = []
self_test = whoosh_internals._self_test
whoosh_internals._self_test = lambda: runs.append(1) or self_test()
if "--changed-layout" in sys.argv:  # read from the wrong offset: the self-test fails
    whoosh_internals._COUNT_BYTES = 2
print(whoosh_internals.layout_known(), len(runs))
"""


def _check_layout(cache: Path, *args: str, whoosh_at: Path | None = None) -> tuple[str, str]:
    """What a new process checking the layout prints, and its warnings (Whoosh from
    ``whoosh_at``'s copy if given), with the cache folder ``cache``."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    if whoosh_at is not None:
        env["PYTHONPATH"] = str(whoosh_at)
    done = subprocess.run(
        [sys.executable, "-c", _CHECKING_PROCESS, *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr


def test_layout_verdict_is_remembered_by_the_next_process(tmp_path):
    assert _check_layout(tmp_path / "cache") == ("True 1", "")
    assert _check_layout(tmp_path / "cache") == ("True 0", "")
    assert _check_layout(tmp_path / "other cache")[0] == "True 1"


def test_layout_verdict_of_a_changed_whoosh_is_made_again(tmp_path):
    import whoosh

    cache, site = tmp_path / "cache", tmp_path / "site"
    shutil.copytree(
        Path(whoosh.__file__).parent, site / "whoosh", ignore=shutil.ignore_patterns("*.pyc")
    )
    assert _check_layout(cache)[0] == "True 1"
    assert _check_layout(cache, whoosh_at=site)[0] == "True 1"  # another installation
    assert _check_layout(cache, whoosh_at=site)[0] == "True 0"
    assert _check_layout(cache)[0] == "True 0"  # each remembers its own
    with open(site / "whoosh" / "util" / "__init__.py", "a") as module:
        module.write("# changed in place\n")
    assert _check_layout(cache, whoosh_at=site)[0] == "True 1"


def test_layout_verdict_that_failed_is_remembered_and_warned_again(tmp_path):
    verdict, warned = _check_layout(tmp_path, "--changed-layout")
    assert verdict == "False 1" and "WhooshLayoutWarning: searchidx: its self-test" in warned
    assert _check_layout(tmp_path) == ("False 0", warned)


def test_layout_verdict_written_atomically_and_read_back(fresh_layout_check, tmp_path):
    assert whoosh_internals.layout_known()
    (written,) = (tmp_path / "cache" / "searchidx").iterdir()  # no temporary file left
    written.write_text('{"tested": ')  # cut short
    whoosh_internals.layout_known.cache_clear()
    assert whoosh_internals.layout_known()
    assert fresh_layout_check == [1, 1]
    whoosh_internals.layout_known.cache_clear()
    assert whoosh_internals.layout_known()
    assert fresh_layout_check == [1, 1]


def test_layout_verdict_without_a_writable_cache_is_made_each_time(
    fresh_layout_check, tmp_path, monkeypatch
):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    for runs in (1, 2):
        whoosh_internals.layout_known.cache_clear()
        assert whoosh_internals.layout_known()
        assert len(fresh_layout_check) == runs


# Segment parts -----------------------------------------------------------------------------


def test_mapped_part_reads_as_bytesio_does():
    data = bytes(random.Random(5).randrange(256) for _ in range(5000)).replace(b"\n", b"\n\n")
    part, copy = whoosh_internals._MappedPart(memoryview(data)), io.BytesIO(data)
    moves = random.Random(7)
    for _ in range(2000):
        kind = moves.choice(["read", "readline", "peek", "seek", "seek_cur", "seek_end"])
        if kind == "peek":  # what BytesIO lacks: the bytes ahead, not read
            where = copy.tell()
            ahead = part.peek(moves.choice([0, 1, 7, 6000]))
            assert ahead == data[where : where + len(ahead)]
            assert ahead or where >= len(data)
        elif kind == "read":
            size = moves.choice([-1, 0, 1, 7, 300, 6000])
            assert part.read(size) == copy.read(size)
        elif kind == "readline":
            assert part.readline() == copy.readline()
        elif kind == "seek":
            where = moves.randrange(0, 5200)
            assert part.seek(where) == copy.seek(where)
        elif kind == "seek_cur":
            by = moves.randrange(0, 100)
            assert part.seek(by, io.SEEK_CUR) == copy.seek(by, io.SEEK_CUR)
        else:
            by = -moves.randrange(0, 100)
            assert part.seek(by, io.SEEK_END) == copy.seek(by, io.SEEK_END)
        assert part.tell() == copy.tell()


def test_mapped_segments_are_read_by_threads_side_by_side(sample_store: IndexStore):
    """Threads read postings and positions through one snapshot's readers at once, without a
    lock, and each gets what it reads alone (a thread switch every few microseconds would
    move a shared file position between a seek and its read)."""
    snapshot = SearchService(sample_store, results_cached=0).snapshot()
    matcher = snapshot.matcher
    assert not isinstance(snapshot.reading, type(threading.RLock()))
    words = [word for word, _ in zip(snapshot.reader.lexicon("body"), range(150), strict=False)]

    def read_all() -> list[tuple[list[int], list[float], int]]:
        found = []
        for word in words:
            docs, weights, values = matcher._read_postings("body", word, values=True)
            found.append((docs.tolist(), weights.tolist(), len(values)))
        return found

    alone = read_all()
    together: list[list[tuple[list[int], list[float], int]]] = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=lambda: together.append(read_all())) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert len(together) == len(threads)
    assert all(found == alone for found in together)


def test_reads_side_by_side_only_through_mapped_segments(sample_store: IndexStore):
    """An index held in memory (no mapped file) keeps Whoosh's one position per file: its
    readers need the lock."""
    with sample_store.open_index().searcher() as searcher:
        assert whoosh_internals.reads_side_by_side(
            leaf for leaf, _ in searcher.reader().leaf_readers()
        )
    in_memory = RamStorage().create_index(Schema(text=TEXT))
    with in_memory.writer() as writer:
        writer.add_document(text="one two")
    with in_memory.searcher() as searcher:
        leaves = [leaf for leaf, _ in searcher.reader().leaf_readers()]
        assert leaves and not whoosh_internals.reads_side_by_side(leaves)
