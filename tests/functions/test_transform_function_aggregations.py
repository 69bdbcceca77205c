"""The Transform queue function refreshes the aggregations reading the event's sources (after the
pipelines), through the embedded document store the settings name, and a failing aggregation fails
the message after the others ran."""
from __future__ import annotations

import json

import pytest
from azure.functions.queue import QueueMessage

from functions import transform as transform_module
from shared.chain.messages import TransformEvent, encode
from shared.mongo.client import open_documents
from tests.helpers.aggregate import manifests, routes_aggregation, seed


def message(event) -> QueueMessage:
    return QueueMessage(id="m1", body=json.dumps(encode(event)).encode(), dequeue_count=1, pop_receipt="r")


@pytest.fixture
def project(tmp_path, monkeypatch):
    def make(aggregations):
        project = manifests(tmp_path, "net", aggregations)
        monkeypatch.setenv("KSPYDER_MANIFESTS", str(project.root))
        monkeypatch.setenv("KSPYDER_TARGET_URL", f"sqlite:///{tmp_path / 'target.db'}")
        client = open_documents(project.settings)
        try:
            seed(client, "net")
        finally:
            client.close()
        return project
    return make


def test_an_event_refreshes_the_aggregations_of_its_sources(project, tmp_path):
    project({"routes": routes_aggregation("net", files=["json"])})
    transform_module.transform(message(TransformEvent("run-1", ("net",))))
    written = json.loads((tmp_path / "out" / "aggregations" / "routes.json").read_text())
    assert [d["route"]["prefix"] for d in written] == ["0.0.0.0/0", "10.1.0.0/16", "10.2.0.0/16"]


def test_an_event_of_other_sources_leaves_them_alone(project, tmp_path):
    project({"routes": routes_aggregation("net", files=["json"])})
    transform_module.transform(message(TransformEvent("run-2", ("shop",))))
    assert not (tmp_path / "out" / "aggregations" / "routes.json").exists()


def test_a_failing_aggregation_fails_the_message_after_the_others_ran(project, tmp_path):
    broken = routes_aggregation("net", files=["json"])
    broken["pipeline"] = [{"$project": {"x": {"$divide": [1, "$no_such_field_is_text"]}}},
                          {"$addFields": {"y": {"$substr": 1}}}]
    project({"a_broken": broken, "routes": routes_aggregation("net", files=["json"])})
    with pytest.raises(transform_module.AggregationFailed, match="run run-3: aggregation\\(s\\) failed: a_broken"):
        transform_module.transform(message(TransformEvent("run-3", ("net",))))
    assert (tmp_path / "out" / "aggregations" / "routes.json").exists()
