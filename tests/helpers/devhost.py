"""What the local host tests share: quick queue settings, an HTTP call that returns error answers
instead of raising, and a look at a queue's raw messages."""
from __future__ import annotations

import urllib.error
import urllib.request

from azure.storage.queue import QueueServiceClient

from devhost import QueueSettings

FAST = QueueSettings(batch_size=8, max_dequeue_count=3, visibility_timeout=0.0, max_polling_interval=0.2)


def call(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def raw_messages(service: QueueServiceClient, queue: str) -> list[str]:
    return [m.content for m in service.get_queue_client(queue).peek_messages(max_messages=32)]
