"""The local host with worker processes: messages handled by spawned children count, the queues
empty, and every message is handled exactly once by some process."""
from __future__ import annotations

import os
import secrets
import textwrap

import pytest

from devhost import HostError, LocalHost
from devhost.settings import QueueSettings
from shared.storage.queues import AzureQueueStore

APP = textwrap.dedent('''
    import os
    import time
    import azure.functions as func
    from azure.storage.blob import BlobServiceClient

    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="QUEUE_NAME", connection="AzureWebJobsStorage")
    def record(msg: func.QueueMessage) -> None:
        body = msg.get_json()
        time.sleep(0.02)   # long enough that both processes get a share
        client = BlobServiceClient.from_connection_string(os.environ["AzureWebJobsStorage"])
        client.get_blob_client(os.environ["SEEN_CONTAINER"], f"{body['n']:04d}-{os.getpid()}").upload_blob(b"")
''')


@pytest.fixture
def app_module(tmp_path, monkeypatch, azurite):
    queue = f"lh-proc-{secrets.token_hex(4)}"
    (tmp_path / "proc_app.py").write_text(APP.replace("QUEUE_NAME", queue))
    monkeypatch.syspath_prepend(str(tmp_path))
    return queue


def test_two_processes_handle_every_message_once(app_module, azurite, monkeypatch):
    from azure.storage.blob import BlobServiceClient

    from devhost import load_app
    queue = app_module
    container = f"seen-{secrets.token_hex(4)}"
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    blobs.create_container(container)
    monkeypatch.setenv("SEEN_CONTAINER", container)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    env = dict(os.environ)
    store = AzureQueueStore.from_connection_string(azurite.connection_string)
    for n in range(60):
        store.send(queue, {"n": n})
    settings = QueueSettings(max_dequeue_count=5, visibility_timeout=0.0, batch_size=4, new_batch_threshold=2,
                             max_polling_interval=0.5, message_encoding="base64", route_prefix="api")
    host = LocalHost(load_app("proc_app"), env=env, settings=settings, processes=2, key="k",
                     app_module="proc_app")
    try:
        host.run_queues(once=True, timeout=120)
    finally:
        host.stop()
    names = [b.name for b in blobs.get_container_client(container).list_blobs()]
    assert sorted(int(n.split("-")[0]) for n in names) == list(range(60))
    assert len({n.split("-")[1] for n in names}) == 2          # both processes took messages
    [triggers] = host.queue_triggers
    assert triggers.stats.handled == {queue: 60}               # the child's count included
    assert store.peek_count(queue) == 0


def test_processes_must_be_positive(azurite):
    from devhost import load_app
    with pytest.raises(HostError, match="--processes must be at least 1"):
        LocalHost(load_app(), env={"AzureWebJobsStorage": azurite.connection_string}, processes=0)
