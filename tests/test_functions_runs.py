"""The run HTTP routes as the host calls them: real `func.HttpRequest` objects into the decorated
functions, against Azurite (ledger and queues) and a SQLite target, with manifests over the sample API."""
from __future__ import annotations

import json

import azure.functions as func
import pytest

from functions import common
from functions.runs import run_status, start_run
from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain.messages import RunModel, decode
from shared.chain.names import FETCH, LOAD, PAGINATE, STORAGE_SETTING, TRANSFORM
from shared.storage.queues import AzureQueueStore
from tests.flow_helpers import TEST_KEY
from tests.test_chain_helpers import applied_target, build_project

MODELS = ["customers", "countries"]


def empty(queues: AzureQueueStore) -> None:
    """Azurite lives for the whole session: leave the chain's queues empty."""
    for queue in (PAGINATE, FETCH, LOAD, TRANSFORM):
        while batch := queues.receive(queue, 32, 30):
            for message in batch:
                queues.delete(queue, message)


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(customers=60)) as server:
        yield server


@pytest.fixture
def app_env(azurite, api, tmp_path, monkeypatch):
    """The settings the app reads (as local.settings.json gives them), manifests for `shop` over the
    sample API without a rate limit, and a SQLite target with the plan applied. Yields (project, queues)."""
    project = build_project(tmp_path, api.base_url, shop=MODELS, erp=[], throttle={})
    target = tmp_path / "target.db"
    applied_target(project, target).dispose()
    monkeypatch.setenv(STORAGE_SETTING, azurite.connection_string)
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path / "manifests"))
    monkeypatch.setenv("KSPYDER_PII_KEY", TEST_KEY)
    monkeypatch.setenv("KSPYDER_SCHEDULE", "0 */5 * * * *")   # the timer binding reads it, as in Azure
    monkeypatch.setenv("KSPYDER_TARGET_URL", f"sqlite:///{target}")
    queues = AzureQueueStore.from_connection_string(azurite.connection_string)
    empty(queues)
    yield project, queues
    common.dispose_engines()
    empty(queues)


def post(body) -> func.HttpResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return start_run(func.HttpRequest("POST", "http://localhost/api/runs", body=data,
                                      headers={"Content-Type": "application/json"}))


def get(run_id: str) -> func.HttpResponse:
    return run_status(func.HttpRequest("GET", f"http://localhost/api/runs/{run_id}", body=b"",
                                       route_params={"run_id": run_id}))


def as_json(response: func.HttpResponse) -> dict:
    assert response.mimetype == "application/json"
    return json.loads(response.get_body())


def test_post_starts_a_run_and_get_reports_it(app_env):
    _, queues = app_env
    response = post({"models": ["shop.customers", "shop", "shop.customers"], "trigger": "manual"})
    assert response.status_code == 202, response.get_body()
    body = as_json(response)
    run_id = body["run_id"]
    assert body == {"run_id": run_id, "status_url": f"/api/runs/{run_id}"}
    assert response.headers["Location"] == body["status_url"]

    messages = queues.receive(PAGINATE, 32, 5)
    for message in messages:   # received messages stay hidden; leave the queue empty for the next test
        queues.delete(PAGINATE, message)
    jobs = sorted((decode(m.body) for m in messages), key=lambda j: j.model)
    assert all(isinstance(j, RunModel) and j.run_id == run_id for j in jobs)
    assert [j.model for j in jobs] == ["shop.countries", "shop.customers"]

    response = get(run_id)
    assert response.status_code == 200
    status = as_json(response)
    assert status["run_id"] == run_id and status["trigger"] == "manual" and status["done"] is False
    assert set(status["models"]) == {"shop.customers", "shop.countries"}
    assert status["errors"] == [] and status["poison"]["run"] == 0


@pytest.mark.parametrize("body, field", [
    (b"{not json", "body"),
    ([], "body"),
    ({}, "models"),
    ({"models": []}, "models"),
    ({"models": "shop"}, "models"),
    ({"models": ["shop", 3]}, "models"),
    ({"models": ["shop; DROP TABLE x"]}, "models"),
    ({"models": ["a.b.c"]}, "models"),
    ({"models": ["shop"], "trigger": 7}, "trigger"),
    ({"models": ["shop"], "trigger": "x" * 41}, "trigger"),
    ({"models": ["shop"], "sources": ["shop"]}, "sources"),
])
def test_bad_bodies_are_400_naming_the_field(app_env, body, field):
    _, queues = app_env
    response = post(body)
    assert response.status_code == 400
    result = as_json(response)
    assert result["field"] == field and result["error"]
    assert "DROP" not in result["error"]      # values that fail their check are never echoed
    assert queues.peek_count(PAGINATE) == 0


@pytest.mark.parametrize("selector, named", [("nope", "unknown source 'nope'"),
                                             ("shop.nope", "unknown model 'shop.nope'")])
def test_unknown_source_or_model_is_400_naming_it(app_env, selector, named):
    _, queues = app_env
    response = post({"models": ["shop.customers", selector]})
    assert response.status_code == 400
    result = as_json(response)
    assert result["field"] == "models" and named in result["error"]
    assert queues.peek_count(PAGINATE) == 0


def test_target_out_of_date_is_409_before_anything_is_queued(app_env, tmp_path, monkeypatch):
    _, queues = app_env
    monkeypatch.setenv("KSPYDER_TARGET_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    response = post({"models": ["shop"]})
    assert response.status_code == 409
    assert as_json(response)["field"] == "models"
    assert queues.peek_count(PAGINATE) == 0


def test_status_of_unknown_and_malformed_run_ids(app_env):
    response = get("20990101T000000Z-abcdef")
    assert response.status_code == 404 and as_json(response)["field"] == "run_id"
    for bad in ("../etc", "x" * 37, "", "-leading"):
        response = get(bad)
        assert response.status_code == 400 and as_json(response)["field"] == "run_id", bad
