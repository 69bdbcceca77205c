"""The queue functions as the host calls them: messages received from Azurite's queues, wrapped in
real `func.QueueMessage` objects (the body the host hands over after base64-decoding), passed to
the decorated functions, deleted on success: a run started over HTTP lands every record in the
SQLite target and sends exactly one transform event."""
from __future__ import annotations

import json
import logging
import os
import threading
import time

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

from functions import queues as queue_functions
from functions.runs import start_run
from functions.transform import transform
from shared.chain.messages import MessageError, RunModel, TransformEvent, decode, encode
from shared.chain.names import FETCH, LOAD, PAGINATE, TRANSFORM
from shared.target.dialects import create_target_engine
from tests.helpers.app import MODELS
from tests.helpers.chain import reference_snapshot, snapshot

STEPS = {PAGINATE: queue_functions.paginate, FETCH: queue_functions.fetch, LOAD: queue_functions.load}


def host_message(message) -> QueueMessage:
    """What the worker builds from a queue message: id, dequeue count, and the decoded JSON text."""
    return QueueMessage(id=message.id, body=json.dumps(message.body).encode(), dequeue_count=message.dequeue_count,
                        pop_receipt=message.pop_receipt)


def drive(queues, timeout: float = 20.0) -> dict[str, int]:
    """Receive from each step queue, call its function, delete; until every step queue is empty
    (hidden messages included). A failure leaves the message for the next round, as the host does."""
    calls = {q: 0 for q in STEPS}
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while any(queues.peek_count(q) for q in STEPS):
        assert time.monotonic() < deadline, f"the chain did not finish within {timeout}s: {calls}"
        moved = 0
        for queue, function in STEPS.items():
            for message in queues.receive(queue, 16, 2):
                function(host_message(message))
                queues.delete(queue, message)
                calls[queue] += 1
                moved += 1
        if not moved:
            pause.wait(0.05)
    return calls


def test_a_run_through_the_queue_functions_lands_every_record(app_env, tmp_path, monkeypatch, caplog):
    project, queues = app_env
    response = start_run(func.HttpRequest("POST", "http://localhost/api/runs", body=b'{"models": ["shop"]}'))
    assert response.status_code == 202
    run_id = json.loads(response.get_body())["run_id"]

    calls = drive(queues)
    assert calls[PAGINATE] == len(MODELS) and calls[FETCH] >= 2 and calls[LOAD] >= 3

    expected = reference_snapshot(project, tmp_path)
    engine = create_target_engine(os.environ["KSPYDER_TARGET_URL"], project.sources)
    try:
        assert snapshot(engine, project) == expected
        assert len(expected["shop.customers"]) == 60
    finally:
        engine.dispose()

    [event] = queues.receive(TRANSFORM, 32, 5)
    assert decode(event.body) == TransformEvent(run_id, ("shop",), ("shop.customers", "shop.countries"))
    assert queues.peek_count(TRANSFORM) == 1
    with caplog.at_level(logging.INFO, logger="kspyder.functions"):
        transform(host_message(event))   # the documented no-op: validates and logs
    queues.delete(TRANSFORM, event)
    assert f"run {run_id} loaded" in caplog.text


def test_failures_propagate_for_the_host_to_retry(app_env):
    """No swallowing: the host retries a failed message and, after maxDequeueCount, poisons it."""
    with pytest.raises(MessageError, match="expected a PageJob"):
        queue_functions.fetch(QueueMessage(id="1", body=json.dumps(encode(RunModel("r1", "shop.customers"))).encode(),
                                           dequeue_count=1))
    with pytest.raises(MessageError, match="message.kind"):
        queue_functions.load(QueueMessage(id="2", body=b'{"kind": "Nope"}', dequeue_count=2))
    with pytest.raises(ValueError):
        queue_functions.paginate(QueueMessage(id="3", body=b"not json", dequeue_count=1))
    with pytest.raises(MessageError, match="expected a TransformEvent"):
        transform(QueueMessage(id="4", body=json.dumps(encode(RunModel("r1", "shop.customers"))).encode()))
