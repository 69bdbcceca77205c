"""The schema routes (`GET /api/schema/plan`, `POST /api/schema/apply`) against a SQLite target, and
`POST /api/transform` against Azurite: real `func.HttpRequest` objects into the decorated
functions, good and bad bodies, a stale plan hash refused, auth level FUNCTION from the blueprints."""
from __future__ import annotations

import json

import azure.functions as func
import pytest

from functions import common, schema_routes, transform_route
from functions.schema_routes import schema_apply, schema_plan
from functions.transform_route import start_transform
from shared.chain.messages import TransformEvent, decode
from shared.chain.names import STORAGE_SETTING, TRANSFORM
from shared.ledger import RunLedger
from shared.storage.azure import AzureBlobStore
from shared.storage.queues import AzureQueueStore
from tests.helpers.chain import build_project
from tests.helpers.flow import TEST_KEY

API = "http://127.0.0.1:1"   # the routes never call the API


def as_json(response: func.HttpResponse) -> dict:
    assert response.mimetype == "application/json"
    return json.loads(response.get_body())


def get_plan() -> func.HttpResponse:
    return schema_plan(func.HttpRequest("GET", "http://localhost/api/schema/plan", body=b""))


def post(function, route: str, body) -> func.HttpResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return function(func.HttpRequest("POST", f"http://localhost/api/{route}", body=data,
                                     headers={"Content-Type": "application/json"}))


def test_routes_are_function_level():
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)   # the blueprints must say FUNCTION themselves
    app.register_functions(schema_routes.bp)
    app.register_functions(transform_route.bp)
    found = {f.get_function_name(): f.get_trigger().get_dict_repr() for f in app.get_functions()}
    assert {name: (t["route"], [str(getattr(m, "value", m)) for m in t["methods"]]) for name, t in found.items()} == {
        "schema_plan": ("schema/plan", ["GET"]), "schema_apply": ("schema/apply", ["POST"]),
        "start_transform": ("transform", ["POST"])}
    for name, trigger in found.items():
        assert str(trigger["authLevel"]).lower().endswith("function"), name


# ------------------------------------------------------------------ schema plan / apply

@pytest.fixture
def schema_env(tmp_path, monkeypatch):
    """Manifests with shop.countries and shop.products, an empty SQLite target. Yields the target's path."""
    build_project(tmp_path, API, shop=["countries", "products"], erp=[], throttle={})
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path / "manifests"))
    monkeypatch.setenv("KSPYDER_PII_KEY", TEST_KEY)
    target = tmp_path / "target.db"
    monkeypatch.setenv("KSPYDER_TARGET_URL", f"sqlite:///{target}")
    yield target
    common.dispose_engines()


def nothing_applied() -> bool:
    """The target is still empty: the plan still creates every table."""
    return sorted(as_json(get_plan())["reextract"]) == ["shop.countries", "shop.products"]


def test_plan_then_apply_with_its_hash(schema_env):
    response = get_plan()
    assert response.status_code == 200, response.get_body()
    plan = as_json(response)
    assert set(plan) >= {"changes", "plan_hash", "text", "reextract"}
    assert [c["kind"] for c in plan["changes"]][:1] == ["create_schema"]
    assert sorted(plan["reextract"]) == ["shop.countries", "shop.products"]
    assert "create table shop.countries" in plan["text"] and plan["text"].splitlines()[-1].startswith("Plan:")
    assert get_plan().get_body() and as_json(get_plan())["plan_hash"] == plan["plan_hash"]   # deterministic

    response = post(schema_apply, "schema/apply", {"plan_hash": plan["plan_hash"]})
    assert response.status_code == 200, response.get_body()
    applied = as_json(response)
    assert applied["applied"] == plan["changes"] and applied["text"].startswith("Apply complete:")
    assert sorted(applied["reextract"]) == ["shop.countries", "shop.products"]

    after = as_json(get_plan())
    assert after["changes"] == [] and after["reextract"] == [] and after["text"].startswith("No changes.")
    response = post(schema_apply, "schema/apply", {"plan_hash": after["plan_hash"]})   # nothing to do is fine
    assert response.status_code == 200 and as_json(response)["applied"] == []


def test_a_stale_plan_hash_is_refused(schema_env, tmp_path):
    old = as_json(get_plan())["plan_hash"]
    build_project(tmp_path, API, shop=["countries"], erp=[], throttle={})   # the manifests change after the read
    response = post(schema_apply, "schema/apply", {"plan_hash": old})
    assert response.status_code == 409
    result = as_json(response)
    assert result["error"].startswith("plan is stale:") and result["field"] == "plan_hash"
    build_project(schema_env.parent, API, shop=["countries", "products"], erp=[], throttle={})
    assert nothing_applied()

    response = post(schema_apply, "schema/apply", {"plan_hash": "0" * 64})
    assert response.status_code == 409 and as_json(response)["error"].startswith("plan is stale:")


@pytest.mark.parametrize("body, field", [
    (b"{not json", "body"),
    (b"", "body"),
    ([], "body"),
    ({}, "plan_hash"),
    ({"plan_hash": 5}, "plan_hash"),
    ({"plan_hash": "abc"}, "plan_hash"),
    ({"plan_hash": "A" * 64}, "plan_hash"),
    ({"plan_hash": "'; DROP TABLE x; --"}, "plan_hash"),
    ({"plan_hash": "0" * 64, "prune": True}, "prune"),
    ({"plan_hash": "0" * 64, "bad key!": 1}, None),
])
def test_apply_bad_bodies_are_400_naming_the_field(schema_env, body, field):
    response = post(schema_apply, "schema/apply", body)
    assert response.status_code == 400
    result = as_json(response)
    assert result["field"] == field and result["error"]
    assert "DROP" not in result["error"]
    assert nothing_applied()


def test_invalid_manifests_are_500_with_the_problems(schema_env, tmp_path):
    (tmp_path / "manifests" / "connector_models.yml").write_text("sources: {shop: {type: nope}}\n")
    response = get_plan()
    assert response.status_code == 500 and as_json(response)["problems"]


# ------------------------------------------------------------------ POST /api/transform

@pytest.fixture
def transform_env(azurite, tmp_path, monkeypatch):
    build_project(tmp_path, API, shop=["countries", "products"], erp=["orders"], throttle={})
    monkeypatch.setenv(STORAGE_SETTING, azurite.connection_string)
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path / "manifests"))
    monkeypatch.setenv("KSPYDER_PII_KEY", TEST_KEY)
    monkeypatch.setenv("KSPYDER_TARGET_URL", f"sqlite:///{tmp_path / 'target.db'}")
    blobs = AzureBlobStore.from_connection_string(azurite.connection_string)
    queues = AzureQueueStore.from_connection_string(azurite.connection_string)
    drain(queues)
    yield blobs, queues
    drain(queues)


def drain(queues: AzureQueueStore) -> list:
    events = []
    while batch := queues.receive(TRANSFORM, 32, 30):
        for message in batch:
            events.append(decode(message.body))
            queues.delete(TRANSFORM, message)
    return events


def test_transform_enqueues_one_event(transform_env):
    _, queues = transform_env
    response = post(start_transform, "transform", {"sources": ["shop", "erp", "shop"]})
    assert response.status_code == 202, response.get_body()
    body = as_json(response)
    assert body["sources"] == ["shop", "erp"] and body["queue"] == TRANSFORM
    assert sorted(body["models"]) == ["erp.orders", "shop.countries", "shop.products"]
    [event] = drain(queues)
    assert isinstance(event, TransformEvent)
    assert (event.run_id, list(event.sources), sorted(event.models)) == (body["run_id"], ["shop", "erp"],
                                                                         sorted(body["models"]))


def test_transform_for_a_run_uses_that_runs_models(transform_env):
    blobs, queues = transform_env
    RunLedger(blobs).start("20240101T000000Z-transform", ["shop.countries", "erp.orders"], "manual")
    response = post(start_transform, "transform", {"run_id": "20240101T000000Z-transform", "sources": ["shop"]})
    assert response.status_code == 202, response.get_body()
    [event] = drain(queues)
    assert (event.run_id, event.sources, event.models) == ("20240101T000000Z-transform", ("shop",), ("shop.countries",))

    response = post(start_transform, "transform", {"run_id": "20990101T000000Z-nope", "sources": ["shop"]})
    assert response.status_code == 404 and as_json(response)["field"] == "run_id"
    assert drain(queues) == []


@pytest.mark.parametrize("body, field", [
    (b"{not json", "body"),
    ("a string", "body"),
    ({}, "sources"),
    ({"sources": []}, "sources"),
    ({"sources": "shop"}, "sources"),
    ({"sources": ["shop", 1]}, "sources"),
    ({"sources": ["shop.countries"]}, "sources"),
    ({"sources": ["x; DROP TABLE y"]}, "sources"),
    ({"sources": ["nope"]}, "sources"),
    ({"sources": ["shop"], "run_id": 5}, "run_id"),
    ({"sources": ["shop"], "run_id": "../etc"}, "run_id"),
    ({"sources": ["shop"], "models": ["shop.countries"]}, "models"),
])
def test_transform_bad_bodies_are_400_naming_the_field(transform_env, body, field):
    _, queues = transform_env
    response = post(start_transform, "transform", body)
    assert response.status_code == 400
    result = as_json(response)
    assert result["field"] == field and result["error"]
    assert "DROP" not in result["error"]
    assert drain(queues) == []
