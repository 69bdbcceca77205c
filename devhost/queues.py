"""Queue triggers: receive, build `func.QueueMessage`, invoke, delete; poison after too many tries.

As the Functions host does (host.json `extensions.queues`): up to `batchSize` messages per receive;
a received message is leased (hidden) while its function runs; on success it is deleted; on an
exception it is made visible again after `visibilityTimeout`, and when it has already been
delivered `maxDequeueCount` times it is copied unchanged to `<queue>-poison` and deleted. A message
received more often than that (an earlier delivery died without failing: a killed worker) is
poisoned without running, so "delivery N of M" never shows N above M. Message
text is base64 (`messageEncoding`), decoded here per message: a message that is not valid base64
fails like a function error (and ends in the poison queue), so an unencoded sender cannot go
unnoticed locally and then break in Azure. Logs name the error type and message id, never bodies.

Differences from Azure: the lease is fixed (LEASE seconds, not renewed), so a function running
longer than that may be delivered twice; and each worker runs its batch one message at a time
(use --workers for concurrency).
"""
from __future__ import annotations

import base64
import binascii
import logging
import threading
from dataclasses import dataclass, field

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FuncQueueMessage
from azure.storage.queue import QueueClient, QueueMessage

from devhost.bindings import QueueFunction
from devhost.settings import QueueSettings
from shared.storage.queues import AzureQueueStore

log = logging.getLogger("kspyder.localhost")
LEASE = 600.0   # seconds a received message stays hidden while its function runs (the host's 10 minutes)
POISON_SUFFIX = "-poison"


class UndecodableMessage(ValueError):
    """The queue message is not base64 text, as messageEncoding=base64 requires."""


def decode_body(content: str | bytes) -> bytes:
    """The bytes the host hands the function: the base64-decoded message text."""
    text = content.decode("ascii", "strict") if isinstance(content, bytes) else content
    try:
        return base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeError, ValueError):
        raise UndecodableMessage("the message is not base64 (host.json messageEncoding is base64)") from None


@dataclass
class QueueStats:
    handled: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    poisoned: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, counter: str, queue: str) -> None:
        with self._lock:
            counts = getattr(self, counter)
            counts[queue] = counts.get(queue, 0) + 1


class QueueTriggers:
    """Polls the queues of `functions` on one storage account (`store`, an AzureQueueStore)."""

    def __init__(self, functions: tuple[QueueFunction, ...], store: AzureQueueStore, settings: QueueSettings):
        self.functions = {f.queue: f for f in functions}
        if len(self.functions) != len(functions):
            raise ValueError("two queue functions on the same queue")
        self.store = store
        self.settings = settings
        self.stats = QueueStats()
        self._inflight = 0
        self._polls = 0   # receives that got messages, so that idle() notices one that began while it looked
        self._lock = threading.Lock()

    def _client(self, queue: str) -> QueueClient:
        """Raw text in and out: the base64 decoding is done here, message by message."""
        return self.store.service.get_queue_client(queue)

    # ------------------------------------------------------------------ polling
    def poll(self, queue: str) -> int:
        """One receive of up to batchSize messages from `queue`, each run to completion. Returns
        how many messages were received."""
        client = self._client(queue)
        with self._lock:
            self._inflight += 1
        try:
            try:
                pages = client.receive_messages(messages_per_page=self.settings.batch_size,
                                                visibility_timeout=int(LEASE))
                batch = list(next(pages.by_page(), []))
            except ResourceNotFoundError:
                return 0
            if batch:
                with self._lock:
                    self._polls += 1
            for message in batch:
                self._deliver(client, queue, message)
            return len(batch)
        finally:
            with self._lock:
                self._inflight -= 1

    def _deliver(self, client: QueueClient, queue: str, message: QueueMessage) -> None:
        function = self.functions[queue]
        if (message.dequeue_count or 1) > self.settings.max_dequeue_count:
            # an earlier delivery died before it could fail (a killed worker, a lease run out): the
            # host poisons such a message without running it again, so attempts never exceed M
            self._poison(client, queue, message, f"received {message.dequeue_count} times, more than "
                                                  f"{self.settings.max_dequeue_count}")
            return
        try:
            body = decode_body(message.content)
            function.invoke(FuncQueueMessage(
                id=message.id, body=body, dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt,
                insertion_time=message.inserted_on, expiration_time=message.expires_on,
                time_next_visible=message.next_visible_on))
        except Exception as exc:   # the function's failure: retry later or poison, never crash the host
            self.stats.add("failed", queue)
            self._failed(client, queue, message, exc)
            return
        self._delete(client, message)
        self.stats.add("handled", queue)

    def _failed(self, client: QueueClient, queue: str, message: QueueMessage, exc: Exception) -> None:
        count = message.dequeue_count or 1
        if count >= self.settings.max_dequeue_count:
            self._poison(client, queue, message, f"failed ({type(exc).__name__}) on delivery {count} of "
                                                  f"{self.settings.max_dequeue_count}")
            return
        log.warning("%s: message %s failed (%s) on delivery %d of %d: retry in %gs", queue, message.id,
                    type(exc).__name__, count, self.settings.max_dequeue_count, self.settings.visibility_timeout)
        try:
            client.update_message(message.id, message.pop_receipt,
                                  visibility_timeout=int(round(self.settings.visibility_timeout)))
        except (ResourceNotFoundError, HttpResponseError) as error:   # deleted, or received again meanwhile
            log.info("%s: message %s not released (%s): it comes back when its lease ends", queue, message.id,
                     type(error).__name__)

    def _poison(self, client: QueueClient, queue: str, message: QueueMessage, why: str) -> None:
        poison = queue + POISON_SUFFIX
        self._send_raw(poison, message.content)
        self._delete(client, message)
        self.stats.add("poisoned", queue)
        log.warning("%s: message %s %s: moved to %s", queue, message.id, why, poison)

    def _send_raw(self, queue: str, content: str) -> None:
        """The failed message unchanged (still base64 text), as the host copies it to `<queue>-poison`."""
        client = self._client(queue)
        try:
            client.send_message(content)
        except ResourceNotFoundError:
            try:
                client.create_queue()
            except ResourceExistsError:
                pass
            client.send_message(content)

    @staticmethod
    def _delete(client: QueueClient, message: QueueMessage) -> None:
        try:
            client.delete_message(message.id, message.pop_receipt)
        except ResourceNotFoundError:
            pass
        except HttpResponseError as error:
            # the storage SDK sets error_code on the errors it raises; azure-core does not declare it
            if getattr(error, "error_code", None) != "PopReceiptMismatch":
                raise

    # ------------------------------------------------------------------ idleness
    def idle(self) -> bool:
        """No invocation running and every trigger queue empty, hidden (delayed, retrying) messages
        included: with nothing running, nothing can add more."""
        with self._lock:
            if self._inflight:
                return False
            polls = self._polls
        empty = all(self.store.peek_count(q) == 0 for q in self.functions)
        with self._lock:
            return empty and self._inflight == 0 and self._polls == polls
