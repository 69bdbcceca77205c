"""The function app as the host calls it: real `func.HttpRequest` objects into the run routes, and
the chain's Azure queues left empty between tests (Azurite lives for the whole session). The
`app_env` fixture (tests/conftest.py) sets the app up over the sample API."""
from __future__ import annotations

import json

import azure.functions as func

from functions.runs import run_status, start_run
from shared.chain.names import FETCH, LOAD, PAGINATE, TRANSFORM
from shared.storage.queues import AzureQueueStore

MODELS = ["customers", "countries"]


def empty(queues: AzureQueueStore) -> None:
    """Azurite lives for the whole session: leave the chain's queues empty."""
    for queue in (PAGINATE, FETCH, LOAD, TRANSFORM):
        while batch := queues.receive(queue, 32, 30):
            for message in batch:
                queues.delete(queue, message)


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
