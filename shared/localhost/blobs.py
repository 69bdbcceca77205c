"""Blob triggers by polling (Azurite has no Event Grid): list the container, deliver each new or
changed blob (by name and ETag, remembered in memory) as an `azure.functions.blob.InputStream`.

As the host does, a blob whose function fails is retried on the next scans up to
`maxDequeueCount` times, then reported on the `webjobs-blobtrigger-poison` queue (base64 JSON
naming the function, container, blob and ETag) and not retried. Differences from Azure: the
receipts live in memory, so a restarted host delivers every existing blob again.
"""
from __future__ import annotations

import base64
import json
import logging
import re

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.blob import InputStream
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from .bindings import BlobFunction

log = logging.getLogger("kspyder.localhost")
BLOB_POISON = "webjobs-blobtrigger-poison"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def blob_pattern(pattern: str) -> tuple[str, re.Pattern]:
    """(literal prefix to list by, regex for the blob name) of a path pattern like `{name}` or
    `in/{name}.json`; `{x}` matches anything but `/`, except a trailing `{name}` matches the rest."""
    prefix = pattern.split("{", 1)[0]
    regex, pos = "", 0
    for m in _PARAM.finditer(pattern):
        regex += re.escape(pattern[pos:m.start()])
        regex += f"(?P<{m.group(1)}>.+)" if m.end() == len(pattern) else f"(?P<{m.group(1)}>[^/]+)"
        pos = m.end()
    regex += re.escape(pattern[pos:])
    return prefix, re.compile("^" + regex + "$")


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
            for props in listed:
                if not regex.match(props.name) or self.seen.get((function.name, props.name)) == props.etag:
                    continue
                ran += 1
                self._deliver(function, container, props)
        return ran

    def _deliver(self, function: BlobFunction, container, props) -> None:
        key = (function.name, props.name)
        try:
            client = container.get_blob_client(props.name)
            data = client.download_blob().readall()
            stream = InputStream(data=data, name=f"{function.container}/{props.name}", uri=client.url,
                                 length=len(data), metadata=dict(props.metadata or {}),
                                 blob_properties={"ETag": props.etag, "ContentLength": len(data)})
            function.invoke(stream)
        except Exception as exc:
            attempt = (function.name, props.name, props.etag)
            self.attempts[attempt] = self.attempts.get(attempt, 0) + 1
            log.warning("%s: blob %s failed (%s), attempt %d of %d", function.name, props.name,
                        type(exc).__name__, self.attempts[attempt], self.max_attempts)
            if self.attempts[attempt] >= self.max_attempts:
                self.seen[key] = props.etag
                self._poison(function, props)
            return
        self.seen[key] = props.etag
        self.delivered[function.name] += 1

    def _poison(self, function: BlobFunction, props) -> None:
        body = json.dumps({"Type": "BlobTrigger", "FunctionId": function.name, "BlobType": "BlockBlob",
                           "ContainerName": function.container, "BlobName": props.name, "ETag": props.etag})
        client = self.queues.get_queue_client(BLOB_POISON)
        try:
            client.create_queue()
        except ResourceExistsError:
            pass
        client.send_message(base64.b64encode(body.encode()).decode())
