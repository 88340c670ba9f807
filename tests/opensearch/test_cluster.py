"""Smoke tests of the OpenSearch test cluster, and of the export against a real cluster.

``searchidx export --format elasticsearch`` writes a mapping and bulk files; until now nothing
had loaded them into a real engine. Here a real cluster takes the mapping, loads every document
and answers the searches searchidx will send it: a match on the query fields, term filters on
the facet fields, facet counts.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from searchidx import indexer
from searchidx.export import MAPPING_FILE, TEXT_ANALYZER, export_elasticsearch
from searchidx.parsing import MAX_FILE_BYTES
from searchidx.sample import write_sample
from searchidx.schema import ANALYZER
from searchidx.store import IndexStore
from tests.opensearch.cluster import ClusterError, OpenSearchCluster

ARTICLES = 300
#: Small bulk files, so loading goes through several of them as a large export does.
BULK_BYTES = 200_000
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Export:
    mapping: dict[str, Any]
    bulk_files: list[Path]
    #: _id -> document, as the bulk files hold them.
    documents: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    """A generated collection, indexed by searchidx and exported for Elasticsearch/OpenSearch."""
    folder = tmp_path_factory.mktemp("articles")
    write_sample(folder, ARTICLES, seed=11)
    store = IndexStore(tmp_path_factory.mktemp("index"))
    indexer.sync(store, folder)
    out = tmp_path_factory.mktemp("export") / "opensearch"
    report = export_elasticsearch(store, out, max_bytes=BULK_BYTES)
    bulk_files = [out / file.name for file in report.files]
    documents = {}
    for path in bulk_files:
        lines = path.read_text(encoding="utf-8").splitlines()
        for action, source in zip(lines[::2], lines[1::2], strict=True):
            documents[json.loads(action)["index"]["_id"]] = json.loads(source)
    assert len(bulk_files) > 1
    return Export(json.loads((out / MAPPING_FILE).read_text()), bulk_files, documents)


def load(client: OpenSearch, index: str, export: Export) -> list[dict[str, Any]]:
    """Create ``index`` with the export's mapping and send its bulk files as they are;
    returns the items the cluster refused."""
    client.indices.create(index=index, body=export.mapping)
    refused = []
    for path in export.bulk_files:
        response = client.bulk(body=path.read_bytes(), index=index)
        refused += [item for item in response["items"] if item["index"].get("error")]
    client.indices.refresh(index=index)
    return refused


@pytest.fixture(scope="module")
def loaded(opensearch_cluster: OpenSearchCluster, export: Export) -> Iterator[str]:
    """The export loaded into the single-node cluster; the index name."""
    client = opensearch_cluster.client()
    index = f"articles-{uuid.uuid4().hex[:8]}"
    assert load(client, index, export) == []
    yield index
    client.indices.delete(index=index)


def test_cluster_answers_with_the_modules_searchidx_needs(opensearch_cluster: OpenSearchCluster):
    client = opensearch_cluster.client()
    assert client.info()["version"]["number"].startswith("2.19.")
    assert client.cluster.health()["status"] == "green"
    english = client.indices.analyze(body={"analyzer": "english", "text": "The Running Cats"})
    assert [token["token"] for token in english["tokens"]] == ["run", "cat"]
    folded = client.indices.analyze(
        body={"tokenizer": "standard", "filter": ["lowercase", "asciifolding"], "text": "Café"}
    )
    assert [token["token"] for token in folded["tokens"]] == ["cafe"]


def test_export_mapping_is_accepted_and_every_document_loads(
    opensearch_cluster: OpenSearchCluster, export: Export, loaded: str
):
    client = opensearch_cluster.client()
    assert client.count(index=loaded)["count"] == len(export.documents) >= ARTICLES
    mapping = client.indices.get_mapping(index=loaded)[loaded]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"]["body"] == {"type": "text", "analyzer": TEXT_ANALYZER}
    assert mapping["properties"]["date"]["type"] == "date"


def test_export_text_analyzer_makes_the_tokens_whoosh_makes(
    opensearch_cluster: OpenSearchCluster, loaded: str
):
    text = (
        "The U.S. economy can't grow 3.5% in Zürich; a b, you may say: 東京 wins* "
        "São Paulo SÃO ÆRØ Straße Łódź AT&T t-mobile"
    )
    assert _tokens(opensearch_cluster.client(), loaded, text) == [t.text for t in ANALYZER(text)]


def test_export_text_analyzer_stems_nearly_every_body_token_as_whoosh(
    opensearch_cluster: OpenSearchCluster, export: Export, loaded: str
):
    """Only the stemmers differ (Whoosh's Porter leaves "runn" where Lucene's says "run")."""
    client = opensearch_cluster.client()
    same = total = 0
    for document in list(export.documents.values())[:50]:
        whoosh = [token.text for token in ANALYZER(document["body"])]
        cluster = _tokens(client, loaded, document["body"])
        assert len(cluster) == len(whoosh)
        same += sum(ours == theirs for ours, theirs in zip(whoosh, cluster, strict=True))
        total += len(whoosh)
    print(f"tokens the same in Whoosh and OpenSearch: {same / total:.2%} of {total}")
    assert same / total >= 0.98


def test_export_documents_are_found_by_a_match_on_the_query_fields(
    opensearch_cluster: OpenSearchCluster, export: Export, loaded: str
):
    client = opensearch_cluster.client()
    fields = export.mapping["mappings"]["_meta"]["query_fields"]
    for path, document in list(export.documents.items())[:: len(export.documents) // 5]:
        query = {"multi_match": {"query": document["title"], "fields": fields}}
        hits = client.search(index=loaded, body={"query": query, "size": 10})["hits"]["hits"]
        assert path in [hit["_id"] for hit in hits], document["title"]


@pytest.mark.parametrize("facet", ["category", "type", "topics", "provider_name", "domain"])
def test_export_facet_fields_filter_and_count_like_the_documents(
    opensearch_cluster: OpenSearchCluster, export: Export, loaded: str, facet: str
):
    expected = Counter(value for doc in export.documents.values() for value in _values(doc, facet))
    client = opensearch_cluster.client()
    body = {"size": 0, "aggs": {"facet": {"terms": {"field": facet, "size": 1000}}}}
    buckets = client.search(index=loaded, body=body)["aggregations"]["facet"]["buckets"]
    assert {bucket["key"]: bucket["doc_count"] for bucket in buckets} == _normalised(
        facet, expected, export
    )
    value, count = expected.most_common(1)[0]
    query = {"bool": {"filter": {"term": {facet: value}}}}
    assert client.count(index=loaded, body={"query": query})["count"] == count


def test_export_lowercased_keyword_matches_a_term_in_any_case(
    opensearch_cluster: OpenSearchCluster, export: Export, loaded: str
):
    domains = Counter(doc["domain"] for doc in export.documents.values() if doc["domain"])
    domain, count = domains.most_common(1)[0]
    query = {"bool": {"filter": {"term": {"domain": domain.upper()}}}}
    assert opensearch_cluster.client().count(index=loaded, body={"query": query})["count"] == count


def test_export_mapping_highlights_the_longest_body_a_file_can_hold(
    opensearch_cluster: OpenSearchCluster, export: Export
):
    client = opensearch_cluster.client()
    index = f"articles-{uuid.uuid4().hex[:8]}"
    body = "filler " * ((MAX_FILE_BYTES - 2000) // 7) + "needle"
    try:
        client.indices.create(index=index, body=export.mapping)
        client.index(
            index=index, id="long.md", body={"path": "long.md", "body": body}, refresh=True
        )
        search = {"query": {"match": {"body": "needle"}}, "highlight": {"fields": {"body": {}}}}
        hit = client.search(index=index, body=search)["hits"]["hits"][0]
        assert hit["highlight"]["body"][0].endswith(" <em>needle</em>")
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)


def test_three_nodes_keep_serving_every_document_when_one_is_lost(
    opensearch_cluster3: OpenSearchCluster, export: Export
):
    client = opensearch_cluster3.client()
    index = f"articles-{uuid.uuid4().hex[:8]}"
    try:
        assert load(client, index, export) == []
        settings = client.indices.get_settings(index=index)[index]["settings"]["index"]
        assert (settings["number_of_shards"], settings["number_of_replicas"]) == ("2", "1")
        assert (
            client.cluster.health(
                index=index, wait_for_status="green", timeout="120s", request_timeout=150
            )["status"]
            == "green"
        )
        manager = next(
            node["name"]
            for node in client.cat.nodes(format="json")
            if node["cluster_manager"] == "*"
        )
        with opensearch_cluster3.node_down(manager):
            survivors = opensearch_cluster3.client()
            health = survivors.cluster.health(
                index=index,
                wait_for_status="yellow",
                wait_for_nodes=2,
                timeout="120s",
                request_timeout=150,
            )
            assert not health["timed_out"]
            assert health["status"] in ("yellow", "green")
            assert survivors.count(index=index)["count"] == len(export.documents)
            survivors.index(index=index, id="written-while-down", body=_extra(export), refresh=True)
            assert survivors.count(index=index)["count"] == len(export.documents) + 1
        assert client.count(index=index)["count"] == len(export.documents) + 1
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)


def test_cluster_refuses_to_stop_a_node_it_does_not_have(opensearch_cluster3: OpenSearchCluster):
    with pytest.raises(ClusterError, match="node-9 is not running"):
        opensearch_cluster3.stop_node("node-9")
    assert len(opensearch_cluster3.http_ports) == 3


def test_cluster_jvm_ends_when_the_test_process_is_killed(tmp_path: Path):
    """The guarantee behind the session fixtures: a killed test run leaves no JVM behind."""
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(tmp_path / "cluster")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        jvm = int(owner.stdout.readline())
        assert _alive(jvm)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 60
        while _alive(jvm) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(jvm)
    finally:
        owner.kill()
        owner.wait()


#: A test process that starts a cluster, says its JVM's pid, and waits to be killed.
_OWNER = """
import sys, time
from pathlib import Path
from tests.opensearch.cluster import OpenSearchCluster
cluster = OpenSearchCluster.start(Path(sys.argv[1]), 1)
print(cluster.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def _tokens(client: OpenSearch, index: str, text: str) -> list[str]:
    body = {"analyzer": TEXT_ANALYZER, "text": text}
    return [token["token"] for token in client.indices.analyze(index=index, body=body)["tokens"]]


def _values(document: dict[str, Any], facet: str) -> list[str]:
    value = document.get(facet)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _normalised(facet: str, counts: Counter[str], export: Export) -> dict[str, int]:
    """The counts as the cluster keys them: lowercased where the mapping has a normalizer."""
    if "normalizer" not in export.mapping["mappings"]["properties"][facet]:
        return dict(counts)
    lowered: Counter[str] = Counter()
    for value, count in counts.items():
        lowered[value.lower()] += count
    return dict(lowered)


def _extra(export: Export) -> dict[str, Any]:
    """A new document shaped like the exported ones."""
    return {**next(iter(export.documents.values())), "path": "written-while-down.md"}
