"""Keeping an OpenSearch index in line with a folder, and the commands on a cluster URL."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from opensearchpy import TransportError

from searchidx import cluster_sync, indexer
from searchidx.cli import cli
from searchidx.cluster import ClusterError, ClusterIndex
from searchidx.cluster_search import ClusterSearchService
from searchidx.errors import IndexBusyError
from searchidx.export import elasticsearch_mapping
from searchidx.indexer import SyncReport
from searchidx.request import SearchRequest, Sort
from searchidx.sample import write_sample
from searchidx.schema import build_schema
from searchidx.service import REFRESH_INTERVAL, SearchService
from searchidx.store import IndexStore
from searchidx.watch import watch
from searchidx.web.app import create_app
from searchidx.write_options import WriteOptions
from tests.opensearch.cluster import OpenSearchCluster
from tests.paused_run import PAUSE_AT, PAUSE_READY

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def index(opensearch_cluster: OpenSearchCluster) -> Iterator[ClusterIndex]:
    """A new alias on the one-node cluster; its physical indexes are deleted afterwards."""
    found = ClusterIndex.parse(f"{opensearch_cluster.url}/sync-{uuid.uuid4().hex[:8]}")
    yield found
    opensearch_cluster.client().indices.delete(
        index=f"{found.alias}-*", ignore_unavailable=True, allow_no_indices=True
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    write_sample(folder, 40, seed=3)
    return folder


def paths_in(index: ClusterIndex) -> set[str]:
    client = index.client()
    client.indices.refresh(index=index.alias)
    hits = client.search(index=index.alias, body={"size": 10_000, "_source": False})
    return {hit["_id"] for hit in hits["hits"]["hits"]}


def files_in(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def indexing_total(index: ClusterIndex) -> int:
    """Index and delete operations the cluster has taken for the alias's index."""
    stats = index.client().indices.stats(index=index.alias, metric="indexing")["_all"]
    totals = stats["primaries"]["indexing"]
    return totals["index_total"] + totals["delete_total"]


def test_sync_sends_edits_adds_deletes_and_renames(index: ClusterIndex, folder: Path):
    first = cluster_sync.sync(index, folder)
    assert (first.added, first.documents) == (41, 41)
    names = sorted(files_in(folder))
    edited, deleted, renamed = folder / names[1], folder / names[2], folder / names[3]
    edited.write_text(
        edited.read_text().replace("title: ", "title: Zeppelinquartz ", 1), encoding="utf-8"
    )
    shutil.copy(folder / names[4], folder / "new-one.md")
    deleted.unlink()
    renamed.rename(folder / "renamed.md")

    report = cluster_sync.sync(index, folder)

    assert (report.added, report.updated, report.removed) == (2, 1, 2)
    assert report.unchanged == 41 - 3
    assert paths_in(index) == files_in(folder)
    service = ClusterSearchService(index)
    found = service.search(SearchRequest(text="zeppelinquartz"))
    assert [hit.article.path for hit in found.hits] == [names[1]]


def test_sync_with_no_change_sends_nothing(index: ClusterIndex, folder: Path):
    cluster_sync.sync(index, folder)
    os.utime(next(folder.rglob("*.md")))  # touched, not changed: read again, not sent
    before = indexing_total(index)
    report = cluster_sync.sync(index, folder)
    assert not report.changed
    assert report.unchanged == 41
    assert indexing_total(index) == before


def test_sync_reports_a_document_the_cluster_refuses_and_indexes_the_rest(
    index: ClusterIndex, folder: Path
):
    """A keyword longer than Lucene's 32,766-byte term limit is refused by the cluster."""
    source = next(folder.rglob("*.md"))
    text = source.read_text(encoding="utf-8")
    giant = "Q" * 40_000
    start = text.index("provider:")
    name_at = text.index("name:", start)
    line_end = text.index("\n", name_at)
    (folder / "giant.md").write_text(
        text[:name_at] + f"name: {giant}" + text[line_end:], encoding="utf-8"
    )
    report = cluster_sync.sync(index, folder)
    assert [problem.path for problem in report.skipped] == ["giant.md"]
    assert "the cluster refused it" in report.skipped[0].reason
    assert paths_in(index) == files_in(folder) - {"giant.md"}


def test_sync_cut_short_is_finished_by_the_next(
    index: ClusterIndex, folder: Path, monkeypatch: pytest.MonkeyPatch
):
    cluster_sync.sync(index, folder)
    changed = sorted(folder.rglob("*.md"))
    for path in changed:
        path.write_text(path.read_text().replace("title: ", "title: Zeppelinquartz ", 1))
    monkeypatch.setattr(cluster_sync, "BULK_DOCUMENTS", 5)
    real, sent = cluster_sync.document, []

    def interrupted(*args: Any) -> dict[str, Any]:
        sent.append(args)
        if len(sent) > 17:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(cluster_sync, "document", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cluster_sync.sync(index, folder)
    monkeypatch.setattr(cluster_sync, "document", real)

    report = cluster_sync.sync(index, folder)

    assert 0 < report.updated < len(changed)  # only what the cut-short run did not send
    found = ClusterSearchService(index).search(SearchRequest(text="title:zeppelinquartz"))
    assert found.total == len(changed)
    assert paths_in(index) == files_in(folder)


def test_rebuild_moves_the_alias_and_removes_the_old_index(index: ClusterIndex, folder: Path):
    client = index.client()
    cluster_sync.sync(index, folder)
    (old,) = client.indices.get_alias(name=index.alias)
    killed = f"{index.alias}-00000000000000000001"  # as an interrupted rebuild leaves one
    client.indices.create(index=killed)

    report = cluster_sync.rebuild(index)

    (new,) = client.indices.get_alias(name=index.alias)
    assert report.rebuilt and report.documents == 41
    assert new not in (old, killed)
    assert not client.indices.exists(index=old)
    assert not client.indices.exists(index=killed)
    assert paths_in(index) == files_in(folder)


def test_rebuild_that_fails_midway_leaves_the_alias_on_the_old_index(
    index: ClusterIndex, folder: Path, monkeypatch: pytest.MonkeyPatch
):
    client = index.client()
    cluster_sync.sync(index, folder)
    (old,) = client.indices.get_alias(name=index.alias)
    sent = 0
    real = cluster_sync.document

    def interrupted(*args: Any) -> dict[str, Any]:
        nonlocal sent
        sent += 1
        if sent > 20:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(cluster_sync, "document", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cluster_sync.rebuild(index)
    assert list(client.indices.get_alias(name=index.alias)) == [old]
    assert sorted(client.indices.get(index=f"{index.alias}-*")) == [old]
    assert paths_in(index) == files_in(folder)


def test_secured_is_never_sent_to_the_cluster(index: ClusterIndex, tmp_path: Path):
    folder = tmp_path / "articles"
    shutil.copytree(REPO / "tests" / "articles", folder)
    blobs = [
        found.group(1)
        for path in folder.rglob("*.md")
        if (found := re.search(r'^secured: "([^"]+)"', path.read_text(), re.MULTILINE))
    ]
    assert blobs  # the fixtures carry secured blobs
    cluster_sync.sync(index, folder)
    hits = index.client().search(index=index.alias, body={"size": 100})["hits"]["hits"]
    assert len(hits) == len(files_in(folder))
    sent = json.dumps([hit["_source"] for hit in hits])
    assert '"secured"' not in sent
    assert not [blob for blob in blobs if blob[:40] in sent]


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env)


def test_cli_index_status_query_on_a_cluster_url(index: ClusterIndex, folder: Path):
    indexed = run("index", str(folder), "--index", index.location)
    assert indexed.exit_code == 0, indexed.output
    assert "41 added" in indexed.output
    assert run("index", env={"SEARCHIDX_INDEX": index.location}).exit_code == 0
    status = run("status", "--index", index.location)
    assert status.exit_code == 0
    assert "documents:      41" in status.output
    assert f"content folder: {folder.resolve()}" in status.output
    answer = run("query", "data", "--json", "--sort", "newest", "--index", index.location)
    assert answer.exit_code == 0
    result = json.loads(answer.output)
    assert result["total"] > 0 and result["hits"][0]["title_html"]


def test_cli_unreachable_cluster_is_a_one_line_error(tmp_path: Path):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    url = f"http://127.0.0.1:{port}/articles"
    for command in (["status"], ["query", "data"], ["index", str(tmp_path)]):
        result = run(*command, "--index", url)
        assert result.exit_code == 1, result.output
        assert result.output == (
            f"Error: cannot reach the OpenSearch cluster at http://127.0.0.1:{port}: "
            "connection refused\n"
        )


def test_cli_refuses_credentials_in_the_url():
    result = run("status", "--index", "https://admin:secret@search.example.org:9200/articles")
    assert result.exit_code == 2
    assert "credentials do not belong in the index URL" in result.output
    assert "secret" not in result.output


def test_watch_keeps_the_cluster_in_sync(index: ClusterIndex, folder: Path):
    reports: queue.Queue[SyncReport] = queue.Queue()
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch, args=(index, folder), kwargs={"stop_event": stop, "on_sync": reports.put}
    )
    watcher.start()
    try:
        assert reports.get(timeout=60).added == 41
        shutil.copy(next(folder.rglob("*.md")), folder / "new-one.md")
        deadline = time.monotonic() + 60
        while "new-one.md" not in paths_in(index) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert paths_in(index) == files_in(folder)
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert not watcher.is_alive()


def test_credentials_from_the_environment_then_netrc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    index = ClusterIndex.parse("https://search.example.org:9200/articles")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SEARCHIDX_OPENSEARCH_USER", raising=False)
    assert index.credentials() is None
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine search.example.org login reader password from-netrc\n")
    netrc.chmod(0o600)
    assert index.credentials() == ("reader", "from-netrc")
    monkeypatch.setenv("SEARCHIDX_OPENSEARCH_USER", "writer")
    monkeypatch.setenv("SEARCHIDX_OPENSEARCH_PASSWORD", "from-env")
    assert index.credentials() == ("writer", "from-env")


def test_tls_verification_is_turned_off_only_by_name(monkeypatch: pytest.MonkeyPatch):
    index = ClusterIndex.parse("https://search.example.org:9200/articles")
    monkeypatch.delenv("SEARCHIDX_OPENSEARCH_VERIFY_TLS", raising=False)
    assert index.client().transport.kwargs["verify_certs"] is True
    monkeypatch.setenv("SEARCHIDX_OPENSEARCH_VERIFY_TLS", "false")
    assert index.client().transport.kwargs["verify_certs"] is False
    monkeypatch.setenv("SEARCHIDX_OPENSEARCH_VERIFY_TLS", "no")
    with pytest.raises(ClusterError, match="must be true or false"):
        index.client()


@pytest.mark.parametrize(
    "location",
    ["http://host:9200/", "http://host:9200/Articles", "http://host:9200/a/b", "http://:9200/a"],
)
def test_location_that_names_no_index_is_refused(location: str):
    with pytest.raises(ClusterError, match="does not name an index"):
        ClusterIndex.parse(location)


def test_web_api_served_from_the_cluster(index: ClusterIndex, folder: Path):
    cluster_sync.sync(index, folder)
    app = create_app(search_service=ClusterSearchService(index))
    client = app.test_client()
    answer = client.get("/api/search?q=data&sort=newest&per_page=5")
    assert answer.status_code == 200
    found = answer.get_json()
    assert found["total"] > 0 and len(found["hits"]) == 5
    bad = client.get("/api/search?q=data&sort=sideways")
    assert bad.status_code == 400
    page = client.get("/?q=data&sort=oldest")
    assert page.status_code == 200 and b"data" in page.data


def test_sync_finishes_when_a_node_is_lost_midway(
    opensearch_cluster3: OpenSearchCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Three nodes, 2 shards and 1 replica: one node (not the one searchidx talks to) is lost
    while the documents are being sent, bulk requests before it and after it. The sync
    finishes, or reports what the cluster refused and the next one finishes it; no document is
    lost or doubled."""
    monkeypatch.setattr(cluster_sync, "BULK_DOCUMENTS", 20)  # 120 changed: 2 before, 4 after
    folder = tmp_path / "articles"
    write_sample(folder, 240, seed=8)
    first, *others = opensearch_cluster3.http_ports.items()
    index = ClusterIndex.parse(f"http://127.0.0.1:{first[1]}/faults-{uuid.uuid4().hex[:8]}")
    client = index.client()
    cluster_sync.sync(index, folder)  # the index exists, green
    health = client.cluster.health(
        index=index.alias, wait_for_status="green", timeout="120s", request_timeout=150
    )
    assert health["status"] == "green"
    for path in sorted(folder.rglob("*.md"))[::2]:
        path.write_text(path.read_text().replace("title: ", "title: Changed ", 1))
    manager = next(
        n["name"] for n in client.cat.nodes(format="json") if n["cluster_manager"] == "*"
    )
    victim = next(name for name, _ in others if name != manager)
    lost: list[str] = []

    def lose_a_node(done: int, total: int) -> None:
        if done == total // 2 and not lost:
            opensearch_cluster3.stop_node(victim)
            lost.append(victim)

    try:
        try:
            report = cluster_sync.sync(index, folder, WriteOptions(progress=lose_a_node))
        except ClusterError as error:  # a run cut short: the next one finishes it
            print(f"sync with a node lost: {error}")
        else:
            refused = len(report.skipped)
            print(f"sync with a node lost: {report.updated} updated, {refused} refused")
        assert lost == [victim]
        again = cluster_sync.sync(index, folder)
        assert again.skipped == []
        assert paths_in(index) == files_in(folder)
        assert client.count(index=index.alias)["count"] == len(files_in(folder))
        changed = ClusterSearchService(index).search(SearchRequest(text="title:changed"))
        assert changed.total == len(sorted(folder.rglob("*.md"))[::2])
    finally:
        if lost:
            opensearch_cluster3.start_node(victim)
        client.indices.delete(index=f"{index.alias}-*", ignore_unavailable=True)


def test_rebuild_killed_midway_leaves_the_alias_on_the_old_index(
    index: ClusterIndex, folder: Path, tmp_path: Path
):
    """``searchidx rebuild`` in its own process, killed (SIGKILL) once its new index holds
    documents (tests/paused_run.py: it pauses there, after its first bulk request): searches
    still see the old index, whole; the next rebuild removes the unfinished one."""
    client = index.client()
    cluster_sync.sync(index, folder)
    (old,) = client.indices.get_alias(name=index.alias)
    paused = tmp_path / "paused"
    rebuild = subprocess.Popen(
        [sys.executable, "-m", "tests.paused_run", "rebuild", "--index", index.location],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), PAUSE_AT: "sending", PAUSE_READY: str(paused)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not paused.exists() and rebuild.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        physical = client.indices.get(index=f"{index.alias}-*")
        unfinished = [name for name in physical if name != old]
        assert unfinished, "the rebuild made no new index"
        client.indices.refresh(index=unfinished[0])
        assert _documents(client, unfinished[0]) > 0
        assert rebuild.poll() is None, "the rebuild ended before it could be killed"
        rebuild.send_signal(signal.SIGKILL)
    finally:
        rebuild.kill()
        rebuild.wait()
    assert list(client.indices.get_alias(name=index.alias)) == [old]
    assert client.count(index=index.alias)["count"] == len(files_in(folder))

    cluster_sync.rebuild(index)

    assert sorted(client.indices.get(index=f"{index.alias}-*")) == list(
        client.indices.get_alias(name=index.alias)
    )
    assert unfinished[0] not in client.indices.get(index=f"{index.alias}-*")
    assert paths_in(index) == files_in(folder)


def _documents(client: Any, name: str) -> int:
    """Documents in an index; 0 while its shards are still being started."""
    try:
        return client.count(index=name)["count"]
    except TransportError:
        return 0


def test_one_writer_at_a_time(index: ClusterIndex, folder: Path):
    client = index.client()
    lock = {"holder": "elsewhere.example:4242", "since": "2026-12-01T10:00:00+00:00"}
    client.index(index=cluster_sync.LOCK_INDEX, id=index.alias, body=lock, refresh=True)
    try:
        with pytest.raises(IndexBusyError, match=r"another searchidx process \(elsewhere"):
            cluster_sync.sync(index, folder)
        result = run("index", str(folder), "--index", index.location)
        assert result.exit_code == 1
        assert result.output.count("\n") == 1 and "pass --wait SECONDS" in result.output
    finally:
        client.delete(index=cluster_sync.LOCK_INDEX, id=index.alias, refresh=True)
    assert cluster_sync.sync(index, folder).added == 41
    assert not client.exists(index=cluster_sync.LOCK_INDEX, id=index.alias)


def test_lock_of_a_killed_writer_on_this_host_is_cleared(index: ClusterIndex, folder: Path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    holder = f"{socket.gethostname()}:{ended.pid}"
    index.client().index(
        index=cluster_sync.LOCK_INDEX,
        id=index.alias,
        body={"holder": holder, "since": "2026-12-01T10:00:00+00:00"},
        refresh=True,
    )
    report = cluster_sync.sync(index, folder)
    assert report.added == 41
    assert report.notes == [f"cleared a stale lock left by {holder}, which stopped while writing"]


def test_cli_without_the_client_names_the_extra_to_install(tmp_path: Path):
    """Run as a user without ``searchidx[opensearch]``: the client cannot be imported."""
    script = (
        "import sys; sys.modules['opensearchpy'] = None\n"
        "from searchidx.cli import cli\n"
        "cli(['status', '--index', 'http://127.0.0.1:9/articles'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr == (
        "Error: http://127.0.0.1:9/articles is an OpenSearch index, and the OpenSearch client "
        "is not installed: pip install 'searchidx[opensearch]'\n"
    )


def test_web_says_when_the_cluster_has_no_index_or_cannot_be_reached(
    opensearch_cluster: OpenSearchCluster,
):
    missing = ClusterIndex.parse(f"{opensearch_cluster.url}/never-built")
    client = create_app(search_service=ClusterSearchService(missing)).test_client()
    answer = client.get("/api/search?q=data")
    assert answer.status_code == 503
    assert answer.get_json()["error"].startswith(f"no index at {missing.location}")
    page = client.get("/?q=data")
    assert page.status_code == 503 and b"searchidx index CONTENT_DIR" in page.data
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    gone = ClusterIndex.parse(f"http://127.0.0.1:{port}/articles")
    client = create_app(search_service=ClusterSearchService(gone)).test_client()
    answer = client.get("/api/search?q=data")
    assert answer.status_code == 503
    assert "cannot reach the OpenSearch cluster" in answer.get_json()["error"]
    assert client.get("/?q=data").status_code == 503


def test_synonyms_kept_with_the_cluster_index_expand_queries_as_locally(
    index: ClusterIndex, folder: Path, tmp_path: Path
):
    rules = "zeppelinquartz, cloud\nserverfarm => data center\n"
    store = IndexStore(tmp_path / "index")
    indexer.sync(store, folder, WriteOptions(synonyms=rules))
    cluster_sync.sync(index, folder, WriteOptions(synonyms=rules))
    local, cluster = SearchService(store), ClusterSearchService(index)
    for text in ("zeppelinquartz", "serverfarm", "title:zeppelinquartz -data", "data"):
        request = SearchRequest(text=text, sort=Sort.NEWEST, per_page=50)
        mine, theirs = local.search(request), cluster.search(request)
        assert theirs.total == mine.total > 0, text
        assert [hit.article.path for hit in theirs.hits] == [
            hit.article.path for hit in mine.hits
        ], text
        assert [hit.marked_title for hit in theirs.hits] == [hit.marked_title for hit in mine.hits]
    cluster_sync.rebuild(index)  # keeps them
    assert cluster.search(SearchRequest(text="serverfarm")).total > 0
    cluster_sync.sync(index, options=WriteOptions(synonyms=""))  # --no-synonyms
    time.sleep(REFRESH_INTERVAL)
    assert cluster.search(SearchRequest(text="serverfarm")).total == 0


def test_sync_rebuilds_an_index_another_version_wrote(index: ClusterIndex, folder: Path):
    """An alias on an index without the fields this version keeps (the export's mapping, an
    older schema version): the sync builds a new one, as a local index of another version."""
    client = index.client()
    older = f"{index.alias}-00000000000000000001"
    mapping = elasticsearch_mapping(build_schema())
    older_meta = {"content_dir": str(folder), "schema_version": 2}
    mapping["mappings"]["_meta"]["searchidx_sync"] = older_meta
    client.indices.create(index=older, body=mapping)
    client.indices.put_alias(index=older, name=index.alias)
    report = cluster_sync.sync(index)
    assert report.rebuilt and report.added == 41
    assert older not in client.indices.get(index=f"{index.alias}-*")
    assert not cluster_sync.sync(index).rebuilt
