"""The Azure Functions app as the host loads it: registered functions, their bindings against the
names the code uses (shared.chain.names), host.json and local settings, the health route."""
from __future__ import annotations

import functools
import json

import azure.functions as func
from azure.storage.queue import TextBase64EncodePolicy

import function_app
from functions import common
from functions.health import health
from shared.chain import names
from shared.storage.queues import AzureQueueStore
from tests.helpers.paths import ROOT

QUEUE_FUNCTIONS = {"paginate": names.PAGINATE, "fetch": names.FETCH, "load": names.LOAD,
                   "transform": names.TRANSFORM}
HTTP_FUNCTIONS = {"health": ("health", ["GET"]), "start_run": ("runs", ["POST"]),
                  "run_status": ("runs/{run_id}", ["GET"]), "schema_plan": ("schema/plan", ["GET"]),
                  "schema_apply": ("schema/apply", ["POST"]), "start_transform": ("transform", ["POST"])}
OTHER_FUNCTIONS = {"scheduled_runs", "inbox"}   # the timer and the blob drop


@functools.cache
def registered() -> dict:
    """`app.get_functions()` once: azure-functions 1.26 raises "does not have a unique function
    name" when the same app object is asked twice (the worker indexes it once)."""
    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def bindings() -> dict[str, list[dict]]:
    return {name: json.loads(f.get_function_json())["bindings"] for name, f in registered().items()}


def test_registered_functions_and_auth_levels():
    functions = registered()
    assert set(functions) == set(QUEUE_FUNCTIONS) | set(HTTP_FUNCTIONS) | OTHER_FUNCTIONS
    for name, (route, methods) in HTTP_FUNCTIONS.items():
        trigger = functions[name].get_trigger().get_dict_repr()
        assert trigger["type"] == "httpTrigger"
        assert trigger["route"] == route
        assert [str(m.value if hasattr(m, "value") else m) for m in trigger["methods"]] == methods
        assert str(trigger["authLevel"]).lower().endswith("function"), name


def test_queue_bindings_use_the_chain_names_and_the_declared_settings():
    declared = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    found = bindings()
    for name, queue in QUEUE_FUNCTIONS.items():
        [trigger] = [b for b in found[name] if b["direction"].lower() == "in"]
        assert trigger == {"direction": "IN", "type": "queueTrigger", "name": "msg", "queueName": queue,
                           "connection": names.STORAGE_SETTING}, name
    assert {b["queueName"] for bs in found.values() for b in bs if "queueName" in b} == set(names.QUEUES)
    for bs in found.values():   # every setting a binding names (connection, %SETTING%) is declared locally
        for binding in bs:
            if "connection" in binding:
                assert binding["connection"] in declared
            for value in binding.values():
                if isinstance(value, str) and value.startswith("%") and value.endswith("%"):
                    assert value.strip("%") in declared
    assert set(names.SETTINGS) <= set(declared)
    assert declared[names.STORAGE_SETTING] == "UseDevelopmentStorage=true"


def test_host_json_agrees_with_the_code():
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    assert queues["maxDequeueCount"] == common.MAX_DEQUEUE_COUNT
    assert queues["messageEncoding"] == common.MESSAGE_ENCODING == "base64"
    # what our code sends with the SDK must be what the host decodes: AzureQueueStore base64-encodes
    client = AzureQueueStore.from_connection_string("UseDevelopmentStorage=true")._queue(names.FETCH)
    assert isinstance(client._message_encode_policy, TextBase64EncodePolicy)
    assert set(queues) == {"maxDequeueCount", "visibilityTimeout", "batchSize", "newBatchThreshold",
                           "maxPollingInterval", "messageEncoding"}


def call_health() -> func.HttpResponse:
    request = func.HttpRequest(method="GET", url="http://localhost/api/health", body=b"")
    return health(request)


def test_health_reports_counts_for_valid_manifests(monkeypatch):
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(ROOT / "manifests"))
    monkeypatch.setenv("KSPYDER_PII_KEY", "k")
    response = call_health()
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ok", "sources": 2, "models": 8}


def test_health_lists_problems_without_secrets(monkeypatch, tmp_path):
    (tmp_path / "connector_models.yml").write_text(
        "sources:\n  erp:\n    type: sql\n    url: postgresql://u:${DB_PASSWORD}@h/db\n    models: 3\n")
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path))
    monkeypatch.setenv("DB_PASSWORD", "hunter2-secret")
    response = call_health()
    assert response.status_code == 500
    body = json.loads(response.get_body())
    assert body["status"] == "invalid manifests"
    assert body["problems"] == ["connector_models.yml:5 sources.erp.models: expected a valid dictionary, got 3"]
    assert "hunter2" not in response.get_body().decode()
