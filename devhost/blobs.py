"""Blob triggers by polling (Azurite has no Event Grid): list the container, deliver each new or
changed blob (by name and ETag, remembered in memory) as an `azure.functions.blob.InputStream`.

Each version of a blob (name and ETag) is delivered to a function once, whatever the number of
workers scanning: a worker takes the delivery under a lock before it downloads the blob, and the
others skip it while it runs. As the host does, a blob whose function fails is retried on the next
scans up to `maxDequeueCount` times ("attempt N of M", N never above M), then reported once on the
`webjobs-blobtrigger-poison` queue (base64 JSON naming the function, container, blob and ETag) and
not retried. Logs show blob names scrubbed of PII and escaped (`shared.inbox.names.shown_name`).

Names are matched as the host matches them, a newline included, and a `{param}` before the last
may be empty (a name with a leading `/`), so that the function sees and refuses such names rather
than the scan skipping them without a trace. A name with a `.` or `..` segment cannot be read
(storage URLs resolve them away): each attempt fails with that reason, and the blob is poisoned.

Differences from Azure: the receipts live in memory, so a restarted host delivers every existing
blob again (the inbox function makes that a no-op per version, see shared/inbox/receipts.py).
"""
from __future__ import annotations

import base64
import json
import logging
import re
import threading

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.blob import InputStream
from azure.storage.blob import BlobProperties, BlobServiceClient, ContainerClient
from azure.storage.queue import QueueServiceClient

from devhost.bindings import BlobFunction
from shared.inbox.names import shown_name

log = logging.getLogger("kspyder.localhost")
BLOB_POISON = "webjobs-blobtrigger-poison"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def blob_pattern(pattern: str) -> tuple[str, re.Pattern]:
    """(literal prefix to list by, regex for the blob name) of a path pattern like `{name}` or
    `in/{name}.json`; `{x}` matches anything but `/` (possibly nothing), except a trailing `{name}`
    matches the rest, newlines included."""
    prefix = pattern.split("{", 1)[0]
    regex, pos = "", 0
    for m in _PARAM.finditer(pattern):
        regex += re.escape(pattern[pos:m.start()])
        regex += f"(?P<{m.group(1)}>.+)" if m.end() == len(pattern) else f"(?P<{m.group(1)}>[^/]*)"
        pos = m.end()
    regex += re.escape(pattern[pos:])
    return prefix, re.compile(r"\A" + regex + r"\Z", re.DOTALL)


class BlobTriggers:
    def __init__(self, functions: tuple[BlobFunction, ...], blobs: BlobServiceClient, queues: QueueServiceClient,
                 max_attempts: int = 5):
        self.functions = functions
        self.blobs = blobs
        self.queues = queues
        self.max_attempts = max_attempts
        self.seen: dict[tuple[str, str], str] = {}          # (function, blob) -> etag done with
        self.attempts: dict[tuple[str, str, str], int] = {}  # (function, blob, etag) -> failures
        self.delivered: dict[str, int] = {f.name: 0 for f in functions}
        self.poisoned: dict[str, int] = {f.name: 0 for f in functions}
        self._running: set[tuple[str, str]] = set()          # (function, blob) being delivered now
        self._retrying: set[tuple[str, str, str]] = set()    # failed, neither done nor poisoned yet
        self._lock = threading.Lock()

    def scan(self) -> int:
        """One pass over every blob-triggered container; returns how many invocations ran."""
        ran = 0
        for function in self.functions:
            prefix, regex = blob_pattern(function.blob_pattern)
            container = self.blobs.get_container_client(function.container)
            try:
                listed = list(container.list_blobs(name_starts_with=prefix or None))
            except ResourceNotFoundError:
                continue
            here = {(function.name, props.name, props.etag) for props in listed}
            with self._lock:   # a failed blob deleted or replaced meanwhile is no longer retried
                self._retrying = {r for r in self._retrying if r[0] != function.name or r in here}
            for props in listed:
                if not regex.match(props.name) or not self._take(function, props):
                    continue
                ran += 1
                try:
                    self._deliver(function, container, props)
                finally:
                    with self._lock:
                        self._running.discard((function.name, props.name))
        return ran

    def idle(self) -> bool:
        """No delivery running and no failed blob waiting for its next attempt."""
        with self._lock:
            return not self._running and not self._retrying

    def _take(self, function: BlobFunction, props: BlobProperties) -> bool:
        """True when this worker delivers this version of the blob: not done with, and no other
        worker delivering the blob now."""
        key = (function.name, props.name)
        with self._lock:
            if self.seen.get(key) == props.etag or key in self._running:
                return False
            self._running.add(key)
            return True

    def _deliver(self, function: BlobFunction, container: ContainerClient, props: BlobProperties) -> None:
        key = (function.name, props.name)
        try:
            if _unreadable(props.name):
                raise UnreadableBlob("its name has a '.' or '..' segment, which storage URLs resolve away")
            client = container.get_blob_client(props.name)
            data = client.download_blob().readall()
            stream = InputStream(data=data, name=f"{function.container}/{props.name}", uri=client.url,
                                 length=len(data), metadata=dict(props.metadata or {}),
                                 blob_properties={"ETag": props.etag, "ContentLength": len(data)})
            function.invoke(stream)
        except Exception as exc:
            self._failed(function, props, exc)
            return
        with self._lock:
            self.seen[key] = props.etag
            self.delivered[function.name] += 1
            self._retrying.discard((function.name, props.name, props.etag))

    def _failed(self, function: BlobFunction, props: BlobProperties, exc: Exception) -> None:
        attempt = (function.name, props.name, props.etag)
        with self._lock:
            count = self.attempts[attempt] = self.attempts.get(attempt, 0) + 1
            last = count >= self.max_attempts
            if last:
                self.seen[(function.name, props.name)] = props.etag
                self._retrying.discard(attempt)
            else:
                self._retrying.add(attempt)
        reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, UnreadableBlob) else type(exc).__name__
        log.warning("%s: blob %s failed (%s), attempt %d of %d%s", function.name, shown_name(props.name), reason,
                    count, self.max_attempts, f": reported on {BLOB_POISON}" if last else "")
        if last:
            self._poison(function, props)
            with self._lock:
                self.poisoned[function.name] += 1

    def _poison(self, function: BlobFunction, props: BlobProperties) -> None:
        body = json.dumps({"Type": "BlobTrigger", "FunctionId": function.name, "BlobType": "BlockBlob",
                           "ContainerName": function.container, "BlobName": props.name, "ETag": props.etag})
        client = self.queues.get_queue_client(BLOB_POISON)
        try:
            client.create_queue()
        except ResourceExistsError:
            pass
        client.send_message(base64.b64encode(body.encode()).decode())


class UnreadableBlob(Exception):
    """The blob is listed but storage cannot address it by its name."""


def _unreadable(name: str) -> bool:
    return any(segment in (".", "..") for segment in name.split("/"))
