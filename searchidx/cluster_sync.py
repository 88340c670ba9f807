"""Keeping an OpenSearch index in line with the content folder: ``sync`` and ``rebuild``.

Changes are decided as locally (:mod:`searchidx.indexer`): each document carries the state of
its file (size, mtime, SHA-256) in a ``state`` field, a sync compares the folder's sizes and
mtimes with those, reads and hashes only the files whose stat changed, and sends only the
files whose hash changed, and deletions. A second sync with no change sends nothing. A file's
state travels with its document, so a sync cut short is finished by the next one.

The location's name is an *alias*. A rebuild fills a new physical index
(``<alias>-<stamp>``) and then moves the alias to it in one ``_aliases`` call: searches see the
old index until the new one is complete, and the old one is then deleted. A rebuild killed
midway leaves the alias where it was; its unfinished index is deleted by the next rebuild.

What a sync remembers beside the documents (content folder, last sync, skipped files, and the
synonyms file's text, see :mod:`searchidx.synonyms`) is kept in the index mapping's ``_meta``.
One writer at a time: a sync or rebuild holds a lock document (:data:`LOCK_INDEX`, one per
alias), which names its host and process so that a lock left by a killed writer on the same
host is cleared by the next one.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from searchidx.articles import Article
from searchidx.cluster import ClusterError, ClusterIndex, cluster_errors
from searchidx.content import FileState, scan_content
from searchidx.errors import ArticleProblem, ContentFolderError, IndexBusyError
from searchidx.export import TEXT_ANALYZER, elasticsearch_mapping, to_source
from searchidx.indexer import Progress, SyncReport, _skipped, content_folder
from searchidx.schema import SCHEMA_VERSION, build_schema, stored_record
from searchidx.store import IndexMeta, _gone
from searchidx.workers import read_file
from searchidx.write_options import DEFAULT_OPTIONS, WriteOptions

#: Kept with each document for searchidx itself, never searched: the display record (a hit is
#: one read, as locally) and the file's sync state.
BOOKKEEPING_PROPERTIES: dict[str, dict[str, Any]] = {
    "record": {"type": "keyword", "index": False, "doc_values": False},
    "state": {"type": "keyword", "index": False, "doc_values": False},
}
BOOKKEEPING = frozenset(BOOKKEEPING_PROPERTIES)
#: Documents per bulk request, and its size bound (OpenSearch refuses requests over 100 MB).
BULK_DOCUMENTS = 500
BULK_BYTES = 10_000_000
#: The ``_meta`` key of the synonyms file's text.
SYNONYMS_META = "searchidx_synonyms"
#: Where the writer locks are, one document per alias.
LOCK_INDEX = "searchidx-locks"
#: Documents read per page when listing what the index holds.
SCAN_PAGE = 2000


#: The unstemmed words of titles, which did-you-mean corrects to and autocomplete completes
#: (Whoosh's ``spell_title``); counted by a terms aggregation, so kept in fielddata.
TITLE_WORDS = "title.words"
WORDS_ANALYZER = "searchidx_words"


def engine_mapping() -> dict[str, Any]:
    """The export's mapping (:func:`searchidx.export.elasticsearch_mapping`: same analyzer,
    weights and types), plus the bookkeeping fields a live index needs and the title's words
    unstemmed (the text analyzer without its stemmer, as Whoosh keeps spelling words)."""
    mapping = elasticsearch_mapping(build_schema())
    analyzers = mapping["settings"]["analysis"]["analyzer"]
    words = dict(analyzers[TEXT_ANALYZER])
    words["filter"] = [step for step in words["filter"] if step != "porter_stem"]
    analyzers[WORDS_ANALYZER] = words
    properties = mapping["mappings"]["properties"]
    properties["title"] = {
        **properties["title"],
        "fields": {"words": {"type": "text", "analyzer": WORDS_ANALYZER, "fielddata": True}},
    }
    properties.update(BOOKKEEPING_PROPERTIES)
    mapping["mappings"]["properties"] = dict(sorted(properties.items()))
    return mapping


def document(article: Article, state: FileState) -> dict[str, Any]:
    """What the cluster stores for one article (``secured`` is not in an Article at all)."""
    return {**to_source(article), "record": stored_record(article), "state": state.encode()}


@dataclass(frozen=True)
class ClusterStatus:
    """What ``searchidx status`` shows of a cluster index."""

    physical_index: str
    meta: IndexMeta
    documents: int
    size_bytes: int


def sync(
    index: ClusterIndex,
    content_dir: Path | str | None = None,
    options: WriteOptions = DEFAULT_OPTIONS,
) -> SyncReport:
    """Bring the cluster index in line with ``content_dir`` (default: the one it knows); build
    it when there is none yet, or when another schema version wrote it."""
    client = index.client()
    with cluster_errors(index), _writing(client, index, options.wait) as note:
        live = _live_index(client, index)
        meta = _read_meta(client, live) if live else None
        root = _content_root(index, content_dir, meta)
        kept = _synonyms_of(client, live, options.synonyms)
        if live is None or meta is None or not _current(client, live, meta):
            report = _build(client, index, root, options.progress, kept)
        else:
            report = _sync(client, index, live, root, options.progress, kept)
        report.notes.extend(filter(None, [note]))
        return report


def rebuild(
    index: ClusterIndex,
    content_dir: Path | str | None = None,
    options: WriteOptions = DEFAULT_OPTIONS,
) -> SyncReport:
    """Index everything into a new physical index and move the alias to it atomically."""
    client = index.client()
    with cluster_errors(index), _writing(client, index, options.wait) as note:
        live = _live_index(client, index)
        meta = _read_meta(client, live) if live else None
        root = _content_root(index, content_dir, meta)
        kept = _synonyms_of(client, live, options.synonyms)
        report = _build(client, index, root, options.progress, kept)
        report.notes.extend(filter(None, [note]))
        return report


@contextlib.contextmanager
def _writing(client: Any, index: ClusterIndex, wait: float) -> Iterator[str]:
    """Hold the alias's writer lock for a sync or rebuild; yields a note about a stale lock."""
    from opensearchpy.exceptions import ConflictError

    me = f"{socket.gethostname()}:{os.getpid()}"
    since = datetime.now(UTC).isoformat(timespec="seconds")
    deadline = time.monotonic() + wait
    note = ""
    while True:
        try:
            body = {"holder": me, "since": since}
            client.create(index=LOCK_INDEX, id=index.alias, body=body, refresh="true")
            break
        except ConflictError:
            found = client.get(index=LOCK_INDEX, id=index.alias, ignore=404)
            if not found.get("found"):
                continue  # released meanwhile
            holder = found["_source"].get("holder", "")
            host, _, pid = holder.rpartition(":")
            if host == socket.gethostname() and _gone(pid):
                client.delete(
                    index=LOCK_INDEX,
                    id=index.alias,
                    ignore=[404, 409],
                    if_seq_no=found["_seq_no"],
                    if_primary_term=found["_primary_term"],
                )
                note = f"cleared a stale lock left by {holder}, which stopped while writing"
                continue
            if time.monotonic() >= deadline:
                raise IndexBusyError(
                    f"another searchidx process ({holder}, since "
                    f"{found['_source'].get('since', '?')}) is writing to {index.location}; wait "
                    "for it to finish, or pass --wait SECONDS (if it is gone, delete "
                    f"{index.base_url}/{LOCK_INDEX}/_doc/{index.alias})"
                ) from None
            time.sleep(0.2)
    try:
        yield note
    finally:
        client.delete(index=LOCK_INDEX, id=index.alias, ignore=404, refresh="true")


def status(index: ClusterIndex) -> ClusterStatus:
    client = index.client()
    with cluster_errors(index):
        live = _live_index(client, index)
        meta = _read_meta(client, live) if live else None
        if live is None or meta is None:
            raise ClusterError(
                f"no searchidx index at {index.location}: build one with "
                f"'searchidx index CONTENT_DIR --index {index.location}'"
            )
        stats = client.indices.stats(index=live, metric="docs,store")["indices"][live]
        return ClusterStatus(
            physical_index=live,
            meta=meta,
            documents=stats["primaries"]["docs"]["count"],
            size_bytes=stats["total"]["store"]["size_in_bytes"],
        )


def _content_root(
    index: ClusterIndex, content_dir: Path | str | None, meta: IndexMeta | None
) -> Path:
    if content_dir is None:
        if meta is None:
            raise ContentFolderError(
                f"no index at {index.location} yet, so no content folder is known; "
                f"run 'searchidx index CONTENT_DIR --index {index.location}'"
            )
        content_dir = meta.content_dir
    return content_folder(content_dir)


def _live_index(client: Any, index: ClusterIndex) -> str | None:
    """The physical index the alias points at (None: no alias yet)."""
    if client.indices.exists(index=index.alias) and not client.indices.exists_alias(
        name=index.alias
    ):
        raise ClusterError(
            f"{index.location} is an index, not an alias that searchidx manages: give another "
            "name, or delete that index"
        )
    if not client.indices.exists_alias(name=index.alias):
        return None
    targets = list(client.indices.get_alias(name=index.alias))
    if len(targets) != 1:
        raise ClusterError(
            f"the alias {index.alias} at {index.base_url} points at {len(targets)} indexes "
            f"({', '.join(sorted(targets))}); run 'searchidx rebuild' to make it one"
        )
    return str(targets[0])


def _current(client: Any, physical: str, meta: IndexMeta) -> bool:
    """Whether this version of searchidx wrote the index: its schema version, and the fields
    of its mapping (as locally, an index of another version is rebuilt, not synced)."""
    mapping = client.indices.get_mapping(index=physical)[physical]["mappings"]
    wanted = engine_mapping()["mappings"]["properties"]
    have = mapping.get("properties", {})
    return (
        meta.schema_version == SCHEMA_VERSION
        and have.keys() == wanted.keys()
        and all(
            have[name].get("fields", {}).keys() == wanted[name].get("fields", {}).keys()
            for name in wanted
        )
    )


def _read_meta(client: Any, physical: str) -> IndexMeta | None:
    mapping = client.indices.get_mapping(index=physical)[physical]["mappings"]
    stored = mapping.get("_meta", {}).get("searchidx_sync")
    if stored is None:
        return None
    stored["skipped"] = [ArticleProblem(**item) for item in stored.get("skipped", [])]
    return IndexMeta(**stored)


def read_synonyms(client: Any, physical: str) -> str:
    """The synonyms file's text kept with the index ("" for none)."""
    mapping = client.indices.get_mapping(index=physical)[physical]["mappings"]
    return str(mapping.get("_meta", {}).get(SYNONYMS_META, ""))


def _synonyms_of(client: Any, live: str | None, given: str | None) -> str:
    """The synonyms to keep: those given, else those the live index has."""
    if given is not None:
        return given
    return read_synonyms(client, live) if live else ""


def _write_meta(client: Any, physical: str, report: SyncReport, synonyms: str) -> None:
    """Record the sync in ``_meta`` (replaced whole, so the mapping's own keys go with it)."""
    meta = client.indices.get_mapping(index=physical)[physical]["mappings"].get("_meta", {})
    meta[SYNONYMS_META] = synonyms
    state = IndexMeta(
        content_dir=report.content_dir,
        last_sync=datetime.now(UTC).isoformat(timespec="seconds"),
        documents=report.documents,
        skipped=report.skipped,
    )
    meta["searchidx_sync"] = asdict(state)
    client.indices.put_mapping(index=physical, body={"_meta": meta})


def _build(
    client: Any, index: ClusterIndex, root: Path, progress: Progress | None, synonyms: str
) -> SyncReport:
    started = time.perf_counter()
    report = SyncReport(str(root), rebuilt=True)
    physical = f"{index.alias}-{datetime.now(UTC):%Y%m%d%H%M%S%f}"
    previous = _physical_indexes(client, index)
    client.indices.create(index=physical, body=engine_mapping())
    try:
        paths = sorted(scan_content(root))
        loaded = _load(root, paths, {}, report, progress)
        _send(client, physical, _index_actions(loaded), {}, report)
        client.indices.refresh(index=physical)
        report.documents = client.count(index=physical)["count"]
        report.seconds = time.perf_counter() - started
        _write_meta(client, physical, report, synonyms)
        aliased = _aliased(client, index)
        actions: list[dict[str, Any]] = [
            {"remove": {"index": old, "alias": index.alias}} for old in previous if old in aliased
        ]
        actions.append({"add": {"index": physical, "alias": index.alias}})
        client.indices.update_aliases(body={"actions": actions})
    except BaseException:
        client.indices.delete(index=physical, ignore_unavailable=True)
        raise
    for old in previous:  # the one replaced, and any left by an interrupted rebuild
        client.indices.delete(index=old, ignore_unavailable=True)
    return report


def _physical_indexes(client: Any, index: ClusterIndex) -> list[str]:
    """The physical indexes rebuilds made for the alias (the live one, and unfinished ones)."""
    ours = re.compile(re.escape(index.alias) + r"-[0-9]{20}")
    found = client.indices.get(index=f"{index.alias}-*", expand_wildcards="open,closed")
    return sorted(name for name in found if ours.fullmatch(name))


def _aliased(client: Any, index: ClusterIndex) -> set[str]:
    if not client.indices.exists_alias(name=index.alias):
        return set()
    return set(client.indices.get_alias(name=index.alias))


def _sync(
    client: Any,
    index: ClusterIndex,
    physical: str,
    root: Path,
    progress: Progress | None,
    synonyms: str,
) -> SyncReport:
    started = time.perf_counter()
    report = SyncReport(str(root))
    on_disk = scan_content(root)
    client.indices.refresh(index=physical)  # what a sync cut short sent is read back too
    indexed = _indexed_states(client, physical)
    stat_changed = sorted(
        path for path, state in on_disk.items() if not _same_stat(indexed.get(path), state)
    )
    report.unchanged = len(on_disk) - len(stat_changed)
    removed = sorted(indexed.keys() - on_disk.keys())
    loaded = _load(root, stat_changed, indexed, report, progress)
    deletions = ({"_op_type": "delete", "_id": path} for path in removed)
    _send(client, physical, _chain(_index_actions(loaded), deletions), indexed, report)
    if report.changed or report.skipped:
        client.indices.refresh(index=physical)
    report.documents = client.count(index=physical)["count"]
    report.seconds = time.perf_counter() - started
    _write_meta(client, physical, report, synonyms)
    return report


def _indexed_states(client: Any, physical: str) -> dict[str, str]:
    """Every document's path and file state."""
    hits = _scan(client, physical, {"_source": ["state"]})
    return {hit["_id"]: hit["_source"].get("state", "") for hit in hits}


def documents(client: Any, physical: str) -> Iterator[dict[str, Any]]:
    """Every document as the export writes it (without the bookkeeping fields), in path
    order, its fields in the order sent (a filtered ``_source`` would come back reordered)."""
    for hit in _scan(client, physical, {}):
        source = hit["_source"]
        yield {name: value for name, value in source.items() if name not in BOOKKEEPING}


def _scan(client: Any, physical: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every document's hit, paged in path order (search_after: no scroll context to leak)."""
    body = {**body, "size": SCAN_PAGE, "sort": [{"path": "asc"}]}
    while True:
        hits = client.search(index=physical, body=body)["hits"]["hits"]
        yield from hits
        if len(hits) < SCAN_PAGE:
            return
        body["search_after"] = hits[-1]["sort"]


def _same_stat(known: str | None, state: FileState) -> bool:
    return known is not None and known.startswith(f"{state.size}:{state.mtime_ns}:")


def _load(
    root: Path,
    paths: list[str],
    indexed: dict[str, str],
    report: SyncReport,
    progress: Progress | None,
) -> Iterator[tuple[Article, FileState]]:
    """The articles of ``paths`` whose content changed; unusable files go to the report."""
    for done, path in enumerate(paths, 1):
        state, article, problem = read_file(root, path)
        previous = indexed.get(path)
        if previous is not None and FileState.decode(previous).digest == state.digest:
            report.unchanged += 1  # touched, not changed
        elif problem is not None:
            report.skipped.append(_skipped(problem, previous is not None))
        elif article is not None:
            yield article, state
        if progress is not None:
            progress(done, len(paths))


def _index_actions(loaded: Iterator[tuple[Article, FileState]]) -> Iterator[dict[str, Any]]:
    for article, state in loaded:
        yield {"_op_type": "index", "_id": article.path, "_source": document(article, state)}


def _send(
    client: Any,
    physical: str,
    actions: Iterator[dict[str, Any]],
    indexed: dict[str, str],
    report: SyncReport,
) -> None:
    """Send the actions in bulk requests and count what the cluster took; an action it
    refuses is reported by file and reason, like a file that cannot be read, and the others
    go on."""
    from opensearchpy.helpers import streaming_bulk

    for ok, item in streaming_bulk(
        client,
        actions,
        index=physical,
        chunk_size=BULK_DOCUMENTS,
        max_chunk_bytes=BULK_BYTES,
        raise_on_error=False,
        max_retries=3,
    ):
        operation, result = next(iter(item.items()))
        path = result["_id"]
        if operation == "delete" and (ok or result.get("status") == 404):
            report.removed += 1  # a 404: already gone, what the delete wants
        elif ok:
            report.updated += path in indexed
            report.added += path not in indexed
        else:
            error = result.get("error", {})
            reason = error.get("reason", str(error)) if isinstance(error, dict) else str(error)
            problem = ArticleProblem(path, None, f"the cluster refused it: {reason}")
            report.skipped.append(_skipped(problem, path in indexed and operation == "index"))


def _chain(*parts: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for part in parts:
        yield from part
