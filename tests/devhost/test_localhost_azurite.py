"""The local host against Azurite: a run started over HTTP through the host lands every record
(real functions, real func objects), poison after maxDequeueCount, base64 encoding enforced, blob
triggers by polling."""
from __future__ import annotations

import base64
import json
import os
import secrets

import azure.functions as func
import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost import LocalHost, load_app
from devhost.blobs import BLOB_POISON
from shared.chain.messages import TransformEvent, decode
from shared.chain.names import STORAGE_SETTING, TRANSFORM
from shared.target.dialects import create_target_engine
from tests.helpers.chain import reference_snapshot, snapshot
from tests.helpers.devhost import FAST, call, raw_messages


def test_a_run_through_the_local_host_lands_every_record(app_env, tmp_path, monkeypatch, caplog):
    project, queues = app_env
    monkeypatch.setenv("KSPYDER_HOST_KEY", "test-host-key")
    host = LocalHost(load_app(), settings=FAST, workers=3)
    port = host.start_http(port=0)
    base = f"http://127.0.0.1:{port}/api"
    try:
        assert call(f"{base}/runs", "POST", b'{"models": ["shop"]}')[0] == 401
        status, headers, body = call(f"{base}/runs", "POST", b'{"models": ["shop"]}',
                                     {"x-functions-key": "test-host-key", "Content-Type": "application/json"})
        assert status == 202, body
        run_id = json.loads(body)["run_id"]
        assert headers["Location"] == f"/api/runs/{run_id}"

        transform_calls = []
        original = host.queue_triggers[0].functions[TRANSFORM]
        real = original.function

        def spy(msg: func.QueueMessage) -> None:
            assert isinstance(msg, func.QueueMessage) and msg.dequeue_count >= 1
            transform_calls.append(decode(msg.get_json()))
            real(msg)

        object.__setattr__(original, "function", spy)
        host.run_queues(once=True, timeout=30)

        stats = host.queue_triggers[0].stats
        assert stats.failed == {} and stats.poisoned == {}
        assert transform_calls == [TransformEvent(run_id, ("shop",), ("shop.customers", "shop.countries"))]
        expected = reference_snapshot(project, tmp_path)
        engine = create_target_engine(os.environ["KSPYDER_TARGET_URL"], project.sources)
        try:
            assert snapshot(engine, project) == expected
            assert len(expected["shop.customers"]) == 60
        finally:
            engine.dispose()

        status, _, body = call(f"{base}/runs/{run_id}?code=test-host-key")
        assert status == 200 and json.loads(body)["done"] is True
        assert call(f"{base}/runs/{run_id}")[0] == 401
        assert call(f"{base}/health", headers={"x-functions-key": "test-host-key"})[0] == 200
    finally:
        host.stop()


def failing_app(queue: str, calls: list) -> func.FunctionApp:
    app = func.FunctionApp()

    @app.function_name("always_fails")
    @app.queue_trigger(arg_name="msg", queue_name=queue, connection=STORAGE_SETTING)
    def always_fails(msg: func.QueueMessage) -> None:
        calls.append((msg.id, msg.dequeue_count, msg.get_body()))
        raise RuntimeError("never works")

    return app


@pytest.fixture
def storage(azurite, monkeypatch):
    monkeypatch.setenv(STORAGE_SETTING, azurite.connection_string)
    return QueueServiceClient.from_connection_string(azurite.connection_string)


def test_a_message_that_always_fails_ends_in_the_poison_queue(storage, caplog):
    queue, calls = f"lh-fail-{secrets.token_hex(4)}", []
    client = storage.get_queue_client(queue)
    client.create_queue()
    sent = base64.b64encode(b'{"secret": "do-not-log"}').decode()
    client.send_message(sent)
    host = LocalHost(failing_app(queue, calls), settings=FAST, workers=2)
    host.run_queues(once=True, timeout=20)
    assert [count for _, count, _ in calls] == [1, 2, 3]
    assert {body for _, _, body in calls} == {b'{"secret": "do-not-log"}'}
    assert raw_messages(storage, queue) == []
    assert raw_messages(storage, queue + "-poison") == [sent]          # unchanged, as the host copies it
    assert host.queue_triggers[0].stats.poisoned == {queue: 1}
    assert "RuntimeError" in caplog.text and "do-not-log" not in caplog.text


def test_a_message_received_too_often_is_poisoned_without_running(storage, caplog):
    """Deliveries that died without failing (a killed worker) still count: the next receive past
    maxDequeueCount poisons the message, and no log says "delivery 4 of 3"."""
    queue, calls = f"lh-died-{secrets.token_hex(4)}", []
    client = storage.get_queue_client(queue)
    client.create_queue()
    sent = base64.b64encode(b'{"kind": "x"}').decode()
    client.send_message(sent)
    for _ in range(FAST.max_dequeue_count):   # received and never settled, as by a worker that died
        [message] = list(client.receive_messages(messages_per_page=1, visibility_timeout=1))
        client.update_message(message.id, message.pop_receipt, visibility_timeout=0)
    host = LocalHost(failing_app(queue, calls), settings=FAST)
    host.run_queues(once=True, timeout=20)
    assert calls == []
    assert raw_messages(storage, queue + "-poison") == [sent]
    assert host.queue_triggers[0].stats.poisoned == {queue: 1}
    assert "received 4 times, more than 3" in caplog.text and "of 3" not in caplog.text


def test_unencoded_messages_are_not_decodable_by_the_host(storage):
    """A plain QueueClient (no base64 policy) sends text the host cannot decode: it fails on every
    delivery without reaching the function and goes to poison, as it would in Azure."""
    queue, calls = f"lh-plain-{secrets.token_hex(4)}", []
    plain = storage.get_queue_client(queue)
    plain.create_queue()
    plain.send_message('{"kind": "RunModel"}')
    host = LocalHost(failing_app(queue, calls), settings=FAST)
    host.run_queues(once=True, timeout=20)
    assert calls == []
    assert host.queue_triggers[0].stats.failed == {queue: 3}
    assert raw_messages(storage, queue + "-poison") == ['{"kind": "RunModel"}']


def test_blob_triggers_deliver_new_and_changed_blobs(azurite, storage):
    container, seen = f"lh-inbox-{secrets.token_hex(4)}", []
    app = func.FunctionApp()

    @app.function_name("inbox")
    @app.blob_trigger(arg_name="blob", path=f"{container}/in/{{name}}", connection=STORAGE_SETTING)
    def inbox(blob: func.InputStream) -> None:
        data = blob.read()
        if data == b"bad":
            raise ValueError("bad blob")
        seen.append((blob.name, data, blob.length))

    blobs = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(container)
    blobs.create_container()
    blobs.upload_blob("in/a.json", b"1")
    blobs.upload_blob("other/skip.json", b"x")
    host = LocalHost(app, settings=FAST)
    host.run_queues(once=True, timeout=20)
    assert seen == [(f"{container}/in/a.json", b"1", 1)]
    blobs.upload_blob("in/a.json", b"22", overwrite=True)
    blobs.upload_blob("in/b.json", b"bad")
    host.run_queues(once=True, timeout=20)
    assert seen[1:] == [(f"{container}/in/a.json", b"22", 2)]
    # the poison queue is shared by every blob trigger of the session's Azurite: find this test's report
    reports = [json.loads(base64.b64decode(m)) for m in raw_messages(storage, BLOB_POISON)]
    [report] = [r for r in reports if r.get("BlobName") == "in/b.json"]
    assert report["FunctionId"] == "inbox"
    assert host.blob_triggers[0].attempts[("inbox", "in/b.json", report["ETag"])] == FAST.max_dequeue_count
