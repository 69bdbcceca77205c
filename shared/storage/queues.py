"""Queues for the function chain: Azure Storage queues in Azure, a folder in the embedded mode.

Both give the same at-least-once contract: a received message is hidden for a visibility timeout
and comes back (with its dequeue count raised) unless deleted in time, so handlers must be
idempotent (the run ledger's conditional creates make them so). Names, sizes and time limits are
checked the same way in both, so what works locally works in Azure.
"""
from __future__ import annotations

import json
import math
import os
import re
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared.storage.azure import storage_credential, storage_settings

MAX_JSON_BYTES = 48 * 1024  # 64 KiB, Azure's message limit, once base64-encoded
MAX_SECONDS = 7 * 24 * 3600
MAX_BATCH = 32
_QUEUE_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_MESSAGE_ID = re.compile(r"^[0-9]{20}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class QueueMessage:
    id: str
    pop_receipt: str
    dequeue_count: int
    body: dict


class QueueStore(Protocol):
    def send(self, queue: str, message: dict, delay: float = 0.0) -> None:
        """Enqueue `message` as JSON; hidden from receivers for `delay` seconds."""

    def receive(self, queue: str, max_messages: int = 16, visibility_timeout: float = 30.0) -> list[QueueMessage]:
        """Up to `max_messages` visible messages, each hidden for `visibility_timeout` seconds."""

    def delete(self, queue: str, message: QueueMessage) -> None:
        """Done with it. A stale receipt (the message was received again since) is ignored."""

    def peek(self, queue: str, max_messages: int = 32) -> list[dict]:
        """Bodies of up to `max_messages` visible messages, left on the queue untouched."""

    def peek_count(self, queue: str) -> int:
        """Approximate number of messages, hidden ones included."""


def encode(message: dict) -> str:
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    size = len(text.encode("utf-8"))
    if size > MAX_JSON_BYTES:
        raise ValueError(
            f"queue message is {size} bytes of JSON, over the {MAX_JSON_BYTES}-byte limit "
            "(64 KiB after base64): claim-check: store the payload in a blob and send its name"
        )
    return text


def check_queue(queue: str) -> None:
    if not _QUEUE_NAME.match(queue or ""):
        raise ValueError(f"invalid queue name '{queue}': 3-63 lowercase letters, digits and single hyphens")


def seconds(value: float, minimum: int, what: str) -> int:
    """Azure counts whole seconds; rounding up never makes a message visible early."""
    if not 0 <= value <= MAX_SECONDS:
        raise ValueError(f"{what} must be between 0 and {MAX_SECONDS} seconds, not {value}")
    return max(minimum, math.ceil(value))


def check_batch(max_messages: int) -> None:
    if not 1 <= max_messages <= MAX_BATCH:
        raise ValueError(f"max_messages must be between 1 and {MAX_BATCH}, not {max_messages}")


class AzureQueueStore:
    """Messages are base64 text, as the Functions host's queue trigger expects by default
    (`messageEncoding: base64`): plain text would land on the poison queue there."""

    def __init__(self, service: QueueServiceClient):
        self.service = service

    @classmethod
    def from_connection_string(cls, connection_string: str) -> AzureQueueStore:
        return cls(QueueServiceClient.from_connection_string(connection_string))

    @classmethod
    def from_account_url(cls, account_url: str, credential: Any) -> AzureQueueStore:
        return cls(QueueServiceClient(account_url, credential=credential))

    @classmethod
    def from_settings(cls, env: Mapping[str, str]) -> AzureQueueStore:
        address = storage_settings(env, "queue")
        if address[0] is not None:
            return cls.from_connection_string(address[0])
        return cls.from_account_url(address[1], storage_credential(env))

    def _queue(self, queue: str) -> QueueClient:
        check_queue(queue)
        return self.service.get_queue_client(
            queue, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
        )

    def send(self, queue: str, message: dict, delay: float = 0.0) -> None:
        text = encode(message)
        hidden = seconds(delay, 0, "delay") or None
        client = self._queue(queue)
        try:
            client.send_message(text, visibility_timeout=hidden)
        except ResourceNotFoundError:  # queues are created on first use
            try:
                client.create_queue()
            except ResourceExistsError:
                pass
            client.send_message(text, visibility_timeout=hidden)

    def receive(self, queue: str, max_messages: int = 16, visibility_timeout: float = 30.0) -> list[QueueMessage]:
        check_batch(max_messages)
        hidden = seconds(visibility_timeout, 1, "visibility_timeout")
        paged = self._queue(queue).receive_messages(messages_per_page=max_messages, visibility_timeout=hidden)
        try:
            page: list[Any] = list(next(paged.by_page(), []))  # one round trip, not "until the queue is empty"
        except ResourceNotFoundError:
            return []
        return [QueueMessage(m.id, m.pop_receipt or "", m.dequeue_count or 1, json.loads(m.content)) for m in page]

    def delete(self, queue: str, message: QueueMessage) -> None:
        try:
            self._queue(queue).delete_message(message.id, message.pop_receipt)
        except ResourceNotFoundError:  # already deleted, or its queue is gone
            pass
        except HttpResponseError as error:
            if getattr(error, "error_code", None) != "PopReceiptMismatch":  # received again since
                raise

    def peek(self, queue: str, max_messages: int = 32) -> list[dict]:
        """Bodies of visible messages, without receiving them (no dequeue, nothing hidden)."""
        check_batch(max_messages)
        try:
            return [json.loads(m.content) for m in self._queue(queue).peek_messages(max_messages=max_messages)]
        except ResourceNotFoundError:
            return []

    def peek_count(self, queue: str) -> int:
        try:
            return self._queue(queue).get_queue_properties().approximate_message_count or 0
        except ResourceNotFoundError:
            return 0


class LocalQueueStore:
    """One folder per queue, one file per message state: `<id>.<dequeue_count>.json`.

    Ids start with the enqueue time, so name order is FIFO order. A receive claims a message by
    hard-linking the next state's file into place: a link, unlike a rename, fails when the target
    exists, so of two workers racing for the same message exactly one gets it, and the new state
    appears complete or not at all. The older state file is then removed; if a crash leaves it,
    readers ignore it because a newer state exists.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _dir(self, queue: str) -> Path:
        check_queue(queue)
        return self.root / queue

    def _write_state(self, folder: Path, target: Path, state: dict) -> bool:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state, handle)
            os.link(tmp, target)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def _current(self, folder: Path) -> dict[str, tuple[int, Path]]:
        """Each message's latest state file, in FIFO order."""
        latest: dict[str, tuple[int, Path]] = {}
        for path in sorted(folder.glob("*.json")):
            parts = path.name.split(".")
            if len(parts) != 3 or not _MESSAGE_ID.match(parts[0]) or not parts[1].isdigit():
                continue
            msg_id, count = parts[0], int(parts[1])
            if msg_id not in latest or latest[msg_id][0] < count:
                latest[msg_id] = (count, path)
        return dict(sorted(latest.items()))

    def send(self, queue: str, message: dict, delay: float = 0.0) -> None:
        text = encode(message)
        hidden = seconds(delay, 0, "delay")
        folder = self._dir(queue)
        folder.mkdir(parents=True, exist_ok=True)
        msg_id = f"{time.time_ns():020d}-{secrets.token_hex(6)}"
        state = {"visible_at": time.time() + hidden, "receipt": "", "body": text}
        self._write_state(folder, folder / f"{msg_id}.0.json", state)

    def receive(self, queue: str, max_messages: int = 16, visibility_timeout: float = 30.0) -> list[QueueMessage]:
        check_batch(max_messages)
        hidden = seconds(visibility_timeout, 1, "visibility_timeout")
        folder = self._dir(queue)
        if not folder.is_dir():
            return []
        taken: list[QueueMessage] = []
        for msg_id, (count, path) in self._current(folder).items():
            if len(taken) == max_messages:
                break
            message = self._claim(folder, msg_id, count, path, hidden)
            if message is not None:
                taken.append(message)
        return taken

    def _claim(self, folder: Path, msg_id: str, count: int, path: Path, hidden: int) -> QueueMessage | None:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:  # deleted or claimed by another worker meanwhile
            return None
        now = time.time()
        if state["visible_at"] > now:
            return None
        receipt, target = secrets.token_hex(8), folder / f"{msg_id}.{count + 1}.json"
        hidden_state = {"visible_at": now + hidden, "receipt": receipt, "body": state["body"]}
        if not self._write_state(folder, target, hidden_state):
            return None  # another worker claimed it first
        # The link only proves nobody holds state count+1 *now*: a worker that read the state long
        # ago must not bring back a message claimed and deleted (or claimed again) since.
        newer = any(int(p.name.split(".")[1]) > count + 1 for p in folder.glob(f"{msg_id}.*.json"))
        if newer or not path.exists():
            target.unlink(missing_ok=True)
            return None
        path.unlink(missing_ok=True)
        return QueueMessage(msg_id, f"{count + 1}.{receipt}", count + 1, json.loads(state["body"]))

    def delete(self, queue: str, message: QueueMessage) -> None:
        folder = self._dir(queue)
        count, _, receipt = message.pop_receipt.partition(".")
        if not _MESSAGE_ID.match(message.id) or not count.isdigit():
            raise ValueError(f"message '{message.id}' was not received from a local queue")
        path = folder / f"{message.id}.{count}.json"
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        current = self._current(folder).get(message.id)
        if state["receipt"] != receipt or current is None or current[0] != int(count):
            return  # received again since: the new holder deletes it
        for stale in folder.glob(f"{message.id}.*.json"):  # this state, and any a crash left behind
            stale.unlink(missing_ok=True)

    def peek(self, queue: str, max_messages: int = 32) -> list[dict]:
        check_batch(max_messages)
        folder = self._dir(queue)
        bodies: list[dict] = []
        now = time.time()
        for _, path in (self._current(folder).values() if folder.is_dir() else ()):
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            if state["visible_at"] <= now:
                bodies.append(json.loads(state["body"]))
            if len(bodies) == max_messages:
                break
        return bodies

    def peek_count(self, queue: str) -> int:
        folder = self._dir(queue)
        return len(self._current(folder)) if folder.is_dir() else 0
