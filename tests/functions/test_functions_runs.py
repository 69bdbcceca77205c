"""The run HTTP routes as the host calls them: real `func.HttpRequest` objects into the decorated
functions, against Azurite (ledger and queues) and a SQLite target, with manifests over the sample API."""
from __future__ import annotations

import pytest

from shared.chain.messages import RunModel, decode
from shared.chain.names import PAGINATE
from tests.helpers.app import as_json, get, post


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
