"""Real OpenSearch clusters for the tests in this folder, started once per test session.

Every index created on them gets the shard layout of its cluster by default (an index template
matching every name): 1 shard and no replica on the single node, so its indexes turn green;
2 shards and 1 replica on the three nodes, so any one node can be lost without losing data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.opensearch.cluster import ClusterError, OpenSearchCluster

DEFAULTS_TEMPLATE = "searchidx-test-defaults"


def _cluster(home: Path, nodes: int, shards: int, replicas: int) -> Iterator[OpenSearchCluster]:
    try:
        cluster = OpenSearchCluster.start(home, nodes)
    except ClusterError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        cluster.client().indices.put_index_template(
            name=DEFAULTS_TEMPLATE,
            body={
                "index_patterns": ["*"],
                "template": {
                    "settings": {"number_of_shards": shards, "number_of_replicas": replicas}
                },
            },
        )
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def opensearch_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSearchCluster]:
    """One node: the cluster that searches are tested on."""
    yield from _cluster(tmp_path_factory.mktemp("opensearch-1"), nodes=1, shards=1, replicas=0)


@pytest.fixture(scope="session")
def opensearch_cluster3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSearchCluster]:
    """Three nodes, all cluster-manager eligible: the cluster that faults are tested on.

    A test that stops a node does it with ``node_down``, which brings it back afterwards.
    """
    yield from _cluster(tmp_path_factory.mktemp("opensearch-3"), nodes=3, shards=2, replicas=1)
