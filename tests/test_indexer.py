"""Sync and rebuild against real folders and a real Whoosh index on disk."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from whoosh import columns, fields

from searchidx import indexer, merge_policy, whoosh_internals, workers
from searchidx.articles import Article
from searchidx.content import FileState, content_hash, packed_stat, scan_content, walk_content
from searchidx.errors import ContentFolderError, IndexBusyError
from searchidx.export import export_elasticsearch
from searchidx.parsing import read_article
from searchidx.request import SearchRequest, Sort
from searchidx.schema import build_schema, to_document
from searchidx.service import OUTDATED_NOTE, SearchService
from searchidx.similar import SimilarRequest
from searchidx.store import IndexStore
from searchidx.write_options import WriteOptions
from tests.conftest import (
    ARTICLES_COUNT,
    ARTICLES_DIR,
    SAMPLE_COUNT,
    stored_titles,
    write_article,
)


def folder_titles(folder: Path) -> dict[str, str]:
    return {path: read_article(folder, path).title for path in scan_content(folder)}


def test_sync_builds_an_index_of_every_file(content: Path, store: IndexStore):
    report = indexer.sync(store, content)
    assert report.rebuilt and report.added == SAMPLE_COUNT + 1 and not report.skipped
    assert stored_titles(store) == folder_titles(content)


def test_sync_indexes_the_seed_and_real_shaped_articles(
    store: IndexStore, tmp_path: Path, seed_dir: Path
):
    report = indexer.sync(store, ARTICLES_DIR)
    assert (report.documents, report.skipped) == (ARTICLES_COUNT, [])
    assert stored_titles(store) == folder_titles(ARTICLES_DIR)
    seed_store = IndexStore(tmp_path / "seed-index")
    assert indexer.sync(seed_store, seed_dir).documents == 1


def test_sync_follows_edits_additions_and_deletions(content: Path, store: IndexStore):
    indexer.sync(store, content)
    files = sorted(scan_content(content))
    for path in files[:10]:
        text = (content / path).read_text()
        (content / path).write_text(
            text.replace("title: ", 'title: "Edited" ', 1).replace('"Edited" "', '"Edited ', 1)
        )
    for path in files[10:13]:
        (content / path).unlink()
    write_article(content, "new/one.md", 'title: "Brand new"\npublishedDateTime: 2024-01-01')
    write_article(content, "new/two.markdown", 'title: "Also new"\npublishedDateTime: 2024-01-02')

    report = indexer.sync(store)  # the content folder is remembered

    assert (report.added, report.updated, report.removed) == (2, 10, 3)
    assert report.unchanged == SAMPLE_COUNT + 1 - 13
    titles = stored_titles(store)
    assert titles == folder_titles(content)
    assert all(titles[path].startswith("Edited ") for path in files[:10])


def test_sync_leaves_unchanged_and_touched_files_alone(content: Path, store: IndexStore):
    indexer.sync(store, content)
    generation_files = set(os.listdir(store.live_dir()))
    touched = sorted(scan_content(content))[0]
    os.utime(content / touched, ns=(1, 1))

    report = indexer.sync(store)

    assert not report.changed and report.unchanged == SAMPLE_COUNT + 1
    assert set(os.listdir(store.live_dir())) == generation_files  # no new commit


def test_sync_reports_bad_files_and_indexes_the_rest(content: Path, store: IndexStore):
    write_article(content, "bad/no-title.md", "publishedDateTime: 2024-01-01")
    (content / "bad" / "latin1.txt").write_bytes(b"---\ntitle: caf\xe9\n---\n")
    (content / "bad" / "notes.pdf").write_bytes(b"not an article")  # not an article suffix

    report = indexer.sync(store, content)

    assert sorted(str(problem) for problem in report.skipped) == [
        "bad/latin1.txt:2: not UTF-8 text (byte 0xe9 at offset 14); save the file as UTF-8",
        "bad/no-title.md: title: missing or empty; every article needs a title",
    ]
    assert report.documents == SAMPLE_COUNT + 1
    assert store.read_meta().skipped == report.skipped


def test_sync_keeps_the_last_good_version_of_a_file_broken_by_an_edit(
    content: Path, store: IndexStore
):
    indexer.sync(store, content)
    path = sorted(scan_content(content))[5]
    title = folder_titles(content)[path]
    (content / path).write_text("---\ntitle: [unclosed\n---\n")

    report = indexer.sync(store)

    assert [problem.path for problem in report.skipped] == [path]
    assert "last good version stays indexed" in report.skipped[0].reason
    assert stored_titles(store)[path] == title


def test_sync_needs_a_content_folder(store: IndexStore, tmp_path: Path):
    with pytest.raises(ContentFolderError, match="no content folder is known"):
        indexer.sync(store)
    with pytest.raises(ContentFolderError, match="does not exist"):
        indexer.sync(store, tmp_path / "missing")


def test_sync_does_not_follow_links_out_of_the_folder(tmp_path: Path, store: IndexStore):
    content = tmp_path / "content"
    outside = tmp_path / "outside"
    write_article(content, "in.md", 'title: "Inside"\npublishedDateTime: 2024-01-01')
    write_article(outside, "out.md", 'title: "Outside"\npublishedDateTime: 2024-01-01')
    (content / "link-out").symlink_to(outside, target_is_directory=True)
    (content / "loop").symlink_to(content, target_is_directory=True)
    (content / "alias.md").symlink_to(content / "in.md")

    indexer.sync(store, content)

    assert set(stored_titles(store)) == {"in.md", "alias.md"}


def test_sync_keeps_few_segments_and_drops_deleted_documents_through_many_syncs(
    content: Path, store: IndexStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Thirty syncs, each editing 3 of the same 30 files again (their old versions are
    deleted from earlier syncs' and merges' segments), adding one and deleting one: the
    segments stay as few as the tiers allow, merges drop the deleted documents, and the
    answers are a rebuild's."""
    monkeypatch.setattr(merge_policy, "FLOOR_DOCS", 2)  # tiers: below 2, 2-5, 6-17
    monkeypatch.setattr(merge_policy, "MERGE_FACTOR", 3)
    monkeypatch.setattr(merge_policy, "MERGED_MOST_DOCS", 24)  # at rest from 12 on
    indexer.sync(store, content)
    files = sorted(scan_content(content))
    (built,) = [segment.segment_id() for segment in store.open_index()._segments()]
    counts, deleted = [], []
    for round_ in range(30):
        for path in files[round_ % 10 * 3 : round_ % 10 * 3 + 3]:
            with open(content / path, "a") as article:
                article.write(f"\nEdited in round {round_}.\n")
        front_matter = f"title: Late {round_}\npublishedDateTime: 2024-05-02"
        write_article(content, f"late/{round_}.md", front_matter)
        (content / files[-1 - round_]).unlink()
        indexer.sync(store)
        segments = store.open_index()._segments()
        assert built in {segment.segment_id() for segment in segments}  # at rest: not merged
        counts.append(len(segments))
        deleted.append(sum(s.deleted_count() for s in segments if s.segment_id() != built))
    # Each sync writes a segment of 4 documents and deletes 3 of the syncs' before: some
    # merged segments of 12 to 24 documents at rest beside the build's, a few below them, and
    # no more deleted documents waiting than a merge takes (merged segments merged again).
    assert max(counts) <= 8
    assert max(deleted) <= merge_policy.MERGED_MOST_DOCS
    rebuilt = IndexStore(tmp_path / "rebuilt")
    indexer.rebuild(rebuilt, content)
    assert sorted(map(repr, store.articles())) == sorted(map(repr, rebuilt.articles()))
    assert _answers(store) == _answers(rebuilt)


def test_sync_rewrites_a_segment_at_rest_once_more_than_half_of_it_is_deleted(
    content: Path, store: IndexStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A build's segment rests while deletions take up to half of it; one more deleted, the
    sync rewrites it alone without them, and the answers are a rebuild's."""
    monkeypatch.setattr(merge_policy, "MERGED_MOST_DOCS", 4)  # at rest from 2 live on
    indexer.sync(store, content)
    (built,) = store.open_index()._segments()
    files = sorted(scan_content(content))
    half = built.doc_count_all() // 2
    for path in files[:half]:
        (content / path).unlink()
    indexer.sync(store)
    assert [s.segment_id() for s in store.open_index()._segments()] == [built.segment_id()]

    (content / files[half]).unlink()
    indexer.sync(store)

    (rewritten,) = store.open_index()._segments()
    assert rewritten.segment_id() != built.segment_id()
    assert rewritten.deleted_count() == 0
    assert rewritten.doc_count() == len(files) - half - 1
    rebuilt = IndexStore(tmp_path / "rebuilt")
    indexer.rebuild(rebuilt, content)
    assert sorted(map(repr, store.articles())) == sorted(map(repr, rebuilt.articles()))
    assert _answers(store) == _answers(rebuilt)


def test_sync_refuses_a_second_writer_with_a_clear_message(content: Path, store: IndexStore):
    indexer.sync(store, content)
    with store.writing(), pytest.raises(IndexBusyError, match=r"another searchidx process \(pid"):
        indexer.sync(store)


def test_sync_waits_for_a_writer_that_finishes(content: Path, store: IndexStore):
    indexer.sync(store, content)
    holding = threading.Event()

    def hold_briefly() -> None:
        with store.writing():
            holding.set()
            threading.Event().wait(0.5)

    thread = threading.Thread(target=hold_briefly)
    thread.start()
    holding.wait()
    assert not indexer.sync(store, options=WriteOptions(wait=10)).changed
    thread.join()


def test_sync_takes_the_lock_from_a_holder_that_is_just_leaving(content: Path, store: IndexStore):
    # The lock is held but names no one, as in the instant its holder releases it: a sync that
    # was not asked to wait still gets it, rather than refusing with "pid unknown".
    indexer.sync(store, content)
    lock_file = open(store.location / ".writer.lock", "a+")  # noqa: SIM115 - closed by timer
    fcntl.flock(lock_file, fcntl.LOCK_EX)
    releasing = threading.Timer(0.3, lock_file.close)
    releasing.start()
    try:
        assert not indexer.sync(store).changed
    finally:
        releasing.join()


def test_sync_clears_a_stale_lock_with_a_note(content: Path, store: IndexStore):
    indexer.sync(store, content)
    (store.location / ".writer.lock").write_text("999999999\n")  # a pid that cannot exist
    report = indexer.sync(store)
    assert report.notes == [
        "cleared a stale lock left by pid 999999999, which stopped while writing"
    ]


def test_rebuild_is_atomic_for_a_reader_holding_the_index(content: Path, store: IndexStore):
    indexer.sync(store, content)
    old = store.open_index().searcher()
    old_generation = store.generation()
    seen_mid_build: list[int] = []

    def look_mid_build(done: int, total: int) -> None:
        if done == total // 2:  # half of the new index is written: readers still see all
            seen_mid_build.append(store.open_index().doc_count())

    (content / sorted(scan_content(content))[0]).unlink()
    report = indexer.rebuild(store, options=WriteOptions(progress=look_mid_build))

    assert seen_mid_build == [SAMPLE_COUNT + 1]
    assert report.documents == SAMPLE_COUNT
    assert store.generation() != old_generation
    assert not (store.location / old_generation).exists()
    assert old.doc_count() == SAMPLE_COUNT + 1  # the open reader still answers from the old
    assert len(list(old.documents())) == SAMPLE_COUNT + 1
    old.close()
    assert store.open_index().doc_count() == SAMPLE_COUNT


def test_rebuild_that_fails_leaves_the_live_index_alone(
    content: Path, store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    indexer.sync(store, content)
    generation = store.generation()

    def fail(done: int, total: int) -> None:
        if done == 10:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        indexer.rebuild(store, options=WriteOptions(progress=fail))
    assert store.generation() == generation
    assert [path.name for path in store.location.glob("gen-*")] == [generation]
    assert store.open_index().doc_count() == SAMPLE_COUNT + 1


def test_sync_rebuilds_an_index_of_an_older_schema(content: Path, store: IndexStore):
    indexer.sync(store, content)
    meta = store.read_meta()
    meta.schema_version = 0
    store.write_meta(store.live_dir(), meta)
    assert indexer.sync(store).rebuilt


def test_sync_keeps_paths_and_states_in_columns_alone(content: Path, store: IndexStore):
    """No term per path (a document's own, 110 bytes of term index): a path is in its
    column; each file's state packed in 32 bytes, read back as it was."""
    indexer.sync(store, content)
    assert not paths_indexed(store)
    index = store.open_index()
    try:
        with index.searcher() as searcher:
            reader = searcher.reader()
            paths, states = reader.column_reader("path"), reader.column_reader("state")
            for docnum in reader.all_doc_ids():
                path = content / paths[docnum].decode()
                info = path.stat()
                known = FileState(info.st_size, info.st_mtime_ns, content_hash(path.read_bytes()))
                assert len(states[docnum]) == 32
                assert FileState.unpacked(states[docnum]) == known
    finally:
        index.close()


def test_file_state_reads_the_text_of_schema_7():
    state = FileState(1_234, -5_678_000_000_000, content_hash(b"an article"))
    assert FileState.unpacked(state.packed()) == state
    assert FileState.unpacked(state.encode().encode()) == state


def test_file_state_reads_a_whole_sha256_as_the_digest_cut():
    """A state of a whole SHA-256 (an index or cluster before schema 10) has the digest the
    same file has now: a touched, unchanged file is still unchanged."""
    data = b"an article"
    whole = hashlib.sha256(data).hexdigest()
    assert content_hash(data) == whole[:32]
    packed = packed_stat(1_234, 5_678) + bytes.fromhex(whole)
    assert FileState.unpacked(packed) == FileState(1_234, 5_678, content_hash(data))
    assert FileState.decode(f"1234:5678:{whole}") == FileState(1_234, 5_678, content_hash(data))


def schema_7() -> fields.Schema:
    """The schema before paths were columns alone: a path a term too."""
    schema = build_schema()
    schema.remove("path")
    column = columns.VarBytesColumn(allow_offsets=False)
    schema.add("path", fields.ID(unique=True, sortable=whoosh_internals.sortable_column(column)))
    return schema


def document_7(article: Article, state: FileState) -> dict[str, Any]:
    """The document of schema 7: the path as text (indexed), the state as text."""
    return {**to_document(article, state), "path": article.path, "state": state.encode().encode()}


def test_an_index_of_schema_7_is_searched_and_exported_until_rebuilt(
    content: Path, store: IndexStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Paths as terms and states as text: searched (saying to rebuild), an article's similar
    ones found by its path, exported with its whole body (its text state matching the file);
    the next sync rebuilds it."""
    body = " ".join(f"word{number}" for number in range(2_000))
    write_article(content, "long.md", "title: Long read\npublishedDateTime: 2024-01-01", body)
    with monkeypatch.context() as patch:
        patch.setattr("searchidx.store.build_schema", schema_7)
        patch.setattr(workers, "to_document", document_7)
        indexer.sync(store, content)
    meta = store.read_meta()
    meta.schema_version = 7
    store.write_meta(store.live_dir(), meta)
    assert paths_indexed(store)
    service = SearchService(store)
    try:
        assert OUTDATED_NOTE in service.search(SearchRequest(text="", per_page=1)).notes
        assert service.similar(SimilarRequest("long.md")).article.article.title == "Long read"
    finally:
        service.close()
    report = export_elasticsearch(store, tmp_path / "export")
    assert report.bodies_cut == []
    assert indexer.sync(store).rebuilt
    assert not paths_indexed(store)


def paths_indexed(store: IndexStore) -> bool:
    """Whether the index keeps a term per path."""
    index = store.open_index()
    try:
        with index.reader() as reader:
            return "path" in reader.indexed_field_names()
    finally:
        index.close()


def test_sync_removes_everything_when_the_folder_is_emptied(content: Path, store: IndexStore):
    indexer.sync(store, content)
    shutil.rmtree(content)
    content.mkdir()
    report = indexer.sync(store)
    assert report.removed == SAMPLE_COUNT + 1 and report.documents == 0


def test_sync_indexes_one_term_per_quality_and_none_per_date(content: Path, store: IndexStore):
    """No numeric tiers: quality ranges are answered from arrays, or by Whoosh over the exact
    terms; dates, from their column alone (:mod:`searchidx.date_column`)."""
    indexer.sync(store, content)
    index = store.open_index()
    try:
        with index.searcher() as searcher:
            reader = searcher.reader()
            for name, terms_per_value in (("date", 0), ("quality", 1)):
                column = reader.column_reader(name, translate=False)
                values = {column[docnum] for docnum in reader.all_doc_ids()}
                assert len(values) > 1
                assert len(list(reader.lexicon(name))) == terms_per_value * len(values)
    finally:
        index.close()


def _edit_many(content: Path) -> tuple[int, int]:
    """Change, add and delete files spread over the folder, and touch some without a change;
    how many files were changed and deleted."""
    files = sorted(scan_content(content))
    for path in files[::9]:
        text = (content / path).read_text()
        (content / path).write_text(text.replace('title: "', 'title: "Edited ', 1))
    for path in files[4::31]:
        (content / path).unlink()
    for path in files[7::50]:
        os.utime(content / path, ns=(1, 1))  # touched, not changed
    for number in range(12):
        write_article(
            content, f"late/{number}.md", f"title: Late {number}\npublishedDateTime: 2024-05-02"
        )
    return len(set(files[::9]) - set(files[4::31])), len(files[4::31])


def _answers(store: IndexStore) -> list[object]:
    """Sorted pages (ties broken by date, then path) and a relevance search's total and facets:
    its scores count deleted documents (Whoosh's statistics) until they are merged away, and
    equal scores go by docnum, so a synced index ranks as a rebuilt one only nearly."""
    service = SearchService(store, results_cached=0)
    try:
        results = [service.search(request) for request in SYNC_REQUESTS]
        relevance = service.search(SearchRequest(text="edited OR cloud", facets=True))
    finally:
        service.close()
    pages = [(r.total, [hit.article.path for hit in r.hits], r.facets) for r in results]
    return [*pages, (relevance.total, relevance.facets)]


SYNC_REQUESTS = [
    SearchRequest(text="edited", sort=Sort.NEWEST, facets=True),
    SearchRequest(text="", sort=Sort.QUALITY, facets=True, page=2),
    SearchRequest(text="cloud OR late", sort=Sort.OLDEST, filters={"category": ("news",)}),
]


@pytest.mark.parametrize("files_per_process", [100_000, 3])  # here; a worker from 3 files on
def test_sync_gives_the_index_and_answers_of_a_rebuild(
    content: Path,
    store: IndexStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files_per_process: int,
):
    monkeypatch.setattr(indexer, "BUILD_PROCESSES", 2)
    monkeypatch.setattr(indexer, "SYNC_FILES_PER_PROCESS", files_per_process)
    indexer.sync(store, content)
    changed, deleted = _edit_many(content)

    report = indexer.sync(store)

    rebuilt = IndexStore(tmp_path / "rebuilt")
    indexer.rebuild(rebuilt, content)
    assert (report.added, report.updated, report.removed) == (12, changed, deleted)
    assert sorted(map(repr, store.articles())) == sorted(map(repr, rebuilt.articles()))
    assert _answers(store) == _answers(rebuilt)
    assert indexer.sync(store).changed is False


def test_sync_starts_its_workers_while_it_lists_the_folder(
    content: Path, store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(indexer, "BUILD_PROCESSES", 2)
    monkeypatch.setattr(indexer, "SYNC_FILES_PER_PROCESS", 3)
    indexer.sync(store, content)
    _edit_many(content)
    listed, listed_at_start = 0, []

    def listing(root: Path):
        nonlocal listed
        for found in walk_content(root):
            listed += 1
            yield found

    def start(self: workers.BuildWorkers, processes: int) -> None:
        listed_at_start.append(listed)
        starting(self, processes)

    starting = workers.BuildWorkers.start
    monkeypatch.setattr(indexer, "walk_content", listing)
    monkeypatch.setattr(workers.BuildWorkers, "start", start)

    indexer.sync(store)

    # A worker starts once 3 changed files are found, about a tenth into the listing.
    assert listed_at_start and listed_at_start[0] < listed / 2
    assert stored_titles(store) == folder_titles(content)


def test_build_workers_leave_no_thread_behind_once_finished(content: Path, store: IndexStore):
    # A thread left running would have the next sync of this process spawn its workers
    # (re-importing everything) instead of forking them.
    indexer.sync(store, content)
    index = store.open_index()
    threads = threading.active_count()
    with workers.BuildWorkers(index, content, indexer.WRITER_LIMIT_MB) as building:
        building.start(2)
        for path in sorted(scan_content(content))[:60]:
            building.hand(path, None)
        built = building.finish(None)

        assert threading.active_count() == threads
    assert built.added == 60
    index.close()


def test_build_workers_indexing_here_too_take_their_share_of_the_files_left(
    content: Path, store: IndexStore, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(workers, "_CHUNK_FILES", 10)
    indexer.sync(store, content)
    index = store.open_index()
    paths = sorted(scan_content(content))[:60]
    with workers.BuildWorkers(index, content, indexer.WRITER_LIMIT_MB, index_here=True) as building:
        for path in paths:
            building.hand(path, None)
        building.start(1)  # two chunks on the queue for it; four wait, half of them or more ours
        built = building.finish(None)
    index.close()

    assert built.added == 60 and not built.problems
    assert len(built.segments) == 2  # the worker's and this process's
    assert sum(segment.doc_count_all() for segment in built.segments) == 60
