"""Both queue stores keep one contract (delay, visibility timeout, dequeue count, size limit), checked
by the same tests; the Azure one on Azurite, and with the encoding the Functions host expects."""
from __future__ import annotations

import base64
import json
import threading
import time
import uuid

import pytest
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from shared.storage.queues import MAX_JSON_BYTES, AzureQueueStore, LocalQueueStore, QueueMessage


@pytest.fixture(params=["local", "azure"])
def queues(request, tmp_path):
    if request.param == "local":
        return LocalQueueStore(tmp_path)
    return AzureQueueStore.from_connection_string(request.getfixturevalue("azurite").connection_string)


@pytest.fixture
def queue() -> str:
    """A fresh queue per test: Azurite lives for the whole session."""
    return f"q-{uuid.uuid4().hex[:12]}"


def receive_within(queues, queue: str, seconds: float, visibility_timeout: float = 30.0) -> list[QueueMessage]:
    deadline = time.monotonic() + seconds
    while True:
        got = queues.receive(queue, visibility_timeout=visibility_timeout)
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_send_receive_delete(queues, queue):
    assert queues.receive(queue) == [] and queues.peek_count(queue) == 0
    queues.send(queue, {"run_id": "r1", "page": 0, "name": "Zoë"})
    assert queues.peek_count(queue) == 1
    [message] = queues.receive(queue)
    assert message.body == {"run_id": "r1", "page": 0, "name": "Zoë"} and message.dequeue_count == 1
    assert queues.receive(queue) == []  # hidden while held
    assert queues.peek_count(queue) == 1  # but still counted
    queues.delete(queue, message)
    queues.delete(queue, message)  # twice is harmless
    assert queues.peek_count(queue) == 0 and queues.receive(queue) == []


def test_delay_hides_a_message_until_due(queues, queue):
    queues.send(queue, {"n": 1}, delay=2)
    queues.send(queue, {"n": 2})
    assert [m.body for m in queues.receive(queue)] == [{"n": 2}]
    assert queues.receive(queue) == []
    [late] = receive_within(queues, queue, 4)
    assert late.body == {"n": 1} and late.dequeue_count == 1


def test_visibility_timeout_returns_an_undeleted_message(queues, queue):
    queues.send(queue, {"n": 1})
    [first] = queues.receive(queue, visibility_timeout=1)
    assert queues.receive(queue) == []
    [second] = receive_within(queues, queue, 4, visibility_timeout=30)
    assert second.id == first.id and second.body == {"n": 1}
    assert (first.dequeue_count, second.dequeue_count) == (1, 2)
    queues.delete(queue, first)  # stale receipt: the message now belongs to the second receiver
    assert queues.peek_count(queue) == 1
    queues.delete(queue, second)
    assert queues.peek_count(queue) == 0


def test_receive_order_and_batch_size(queues, queue):
    for n in range(6):
        queues.send(queue, {"n": n})
    first = queues.receive(queue, max_messages=4)
    rest = queues.receive(queue, max_messages=4)
    assert len(first) == 4 and len(rest) == 2
    numbers = [m.body["n"] for m in first + rest]
    if isinstance(queues, LocalQueueStore):
        assert numbers == list(range(6))  # FIFO by enqueue time
    else:
        assert sorted(numbers) == list(range(6))  # Azure promises no order


def test_racing_receivers_take_each_message_once(queues, queue):
    for n in range(20):
        queues.send(queue, {"n": n})
    taken: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        for _ in range(10):
            got = queues.receive(queue, max_messages=3)
            with lock:
                taken.extend(m.body["n"] for m in got)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == list(range(20))


def test_size_limit_and_claim_check_advice(queues, queue):
    filler = "x" * (MAX_JSON_BYTES - len(json.dumps({"p": ""}, separators=(",", ":"))))
    queues.send(queue, {"p": filler})  # exactly at the limit: 64 KiB once base64-encoded
    [message] = queues.receive(queue)
    assert message.body == {"p": filler}
    with pytest.raises(ValueError, match="claim-check: store the payload in a blob"):
        queues.send(queue, {"p": filler + "x"})
    with pytest.raises(ValueError, match="claim-check"):
        queues.send(queue, {"p": "é" * (MAX_JSON_BYTES // 2)})  # bytes, not characters, count


def test_invalid_arguments_are_refused(queues, queue):
    for bad in ("Upper", "a", "a--b", "-a-", "../x"):
        with pytest.raises(ValueError, match="queue name"):
            queues.send(bad, {})
    with pytest.raises(ValueError):
        queues.receive(queue, max_messages=33)
    with pytest.raises(ValueError):
        queues.send(queue, {}, delay=-1)


def test_azure_messages_are_base64_as_the_functions_host_expects(azurite, queue):
    """Read with a plain client (no encoding policies): the raw text must be base64 of the JSON.
    The host decodes base64 by default; plain JSON would end on the poison queue there."""
    AzureQueueStore.from_connection_string(azurite.connection_string).send(queue, {"run_id": "r1", "page": 3})
    raw_client = QueueClient.from_connection_string(azurite.connection_string, queue)
    [raw] = raw_client.peek_messages()
    assert json.loads(base64.b64decode(raw.content, validate=True)) == {"run_id": "r1", "page": 3}


def test_azure_store_reads_what_another_producer_sent_base64(azurite, queue):
    store = AzureQueueStore.from_connection_string(azurite.connection_string)
    producer = QueueClient.from_connection_string(
        azurite.connection_string, queue, message_encode_policy=TextBase64EncodePolicy()
    )
    producer.create_queue()
    producer.send_message(json.dumps({"from": "host"}))
    [message] = store.receive(queue)
    assert message.body == {"from": "host"}


def test_from_settings_uses_the_queue_endpoint(azurite):
    store = AzureQueueStore.from_settings({"AzureWebJobsStorage": azurite.connection_string})
    assert store.service.url.startswith(f"http://127.0.0.1:{azurite.queue_port}/")
    store = AzureQueueStore.from_settings({"AzureWebJobsStorage__accountName": "kspyderprod"})
    assert store.service.url.rstrip("/") == "https://kspyderprod.queue.core.windows.net"
    uri = "https://q.example.invalid"
    assert AzureQueueStore.from_settings({"AzureWebJobsStorage__queueServiceUri": uri}).service.url.rstrip("/") == uri
    with pytest.raises(ValueError, match="AzureWebJobsStorage__queueServiceUri"):
        AzureQueueStore.from_settings({})


def test_local_worker_that_read_a_message_long_ago_cannot_bring_it_back(tmp_path, queue):
    """Worker B reads a message's state and stalls before claiming it; meanwhile others receive
    (and delete, or receive again) the message. B's late claim must fail, not bring it back."""
    store = LocalQueueStore(tmp_path)
    folder = tmp_path / queue
    real_write = store._write_state

    def stall(others):
        def write_after_others(folder_, target, state):
            store._write_state = real_write  # the others run unhindered
            others()
            return real_write(folder_, target, state)

        store._write_state = write_after_others

    def received_and_deleted():
        [held] = store.receive(queue)
        store.delete(queue, held)

    store.send(queue, {"n": 1})
    stall(received_and_deleted)
    assert store.receive(queue) == []
    assert store.peek_count(queue) == 0 and list(folder.glob("*.json")) == []

    store.send(queue, {"n": 2})
    [(msg_id, (_, first_state))] = store._current(folder).items()
    stale_copy = first_state.read_bytes()
    holders = []

    def received_twice_first_holder_slow_to_clean_up():
        store.receive(queue, visibility_timeout=1)
        holders.extend(receive_within(store, queue, 4))
        first_state.write_bytes(stale_copy)  # the first holder has not yet removed state 0

    stall(received_twice_first_holder_slow_to_clean_up)
    assert store.receive(queue) == []  # state 1 was free again, but state 2 exists
    assert [m.dequeue_count for m in holders] == [2] and not (folder / f"{msg_id}.1.json").exists()
    store.delete(queue, holders[0])
    assert store.peek_count(queue) == 0
