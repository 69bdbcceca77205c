"""The Azure Functions app as the host loads it: registered functions, auth levels, the health route."""
from __future__ import annotations

import json
from pathlib import Path

import azure.functions as func

import function_app
from functions.health import health

ROOT = Path(__file__).resolve().parents[1]


def test_registered_functions_and_auth_levels():
    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    assert set(functions) == {"health"}
    trigger = functions["health"].get_trigger().get_dict_repr()
    assert trigger["route"] == "health" and str(trigger["authLevel"]).lower().endswith("function")


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
