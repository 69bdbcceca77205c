"""host.json's `extensions.queues` (and `extensions.http.routePrefix`) as the local host uses them."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class HostError(RuntimeError):
    """The host cannot start: a setting or binding it cannot honor."""


_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def timespan(value: Any, what: str) -> float:
    """Seconds of a .NET TimeSpan string ("00:00:30", "1.00:00:00", "00:00:00.5")."""
    match = _TIMESPAN.match(str(value).strip()) if isinstance(value, str) else None
    if not match:
        raise HostError(f"host.json {what}: expected a TimeSpan like \"00:00:30\", not {value!r}")
    days, hours, minutes, secs, frac = match.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(secs)
    return total + (float("0." + frac) if frac else 0.0)


@dataclass(frozen=True)
class QueueSettings:
    """Defaults are the Functions host's own (Azure Functions v4)."""
    batch_size: int = 16
    new_batch_threshold: int | None = None
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0      # delay before a failed message is visible again
    max_polling_interval: float = 60.0   # longest idle wait between polls of an empty queue
    message_encoding: str = "base64"
    route_prefix: str = "api"

    @classmethod
    def from_host_json(cls, data: dict) -> QueueSettings:
        extensions = data.get("extensions") or {}
        queues = extensions.get("queues") or {}
        http = extensions.get("http") or {}
        encoding = str(queues.get("messageEncoding", "base64"))
        if encoding.lower() != "base64":
            raise HostError(f"host.json extensions.queues.messageEncoding is {encoding!r}: the local host "
                            "(like AzureQueueStore, which sends base64) supports only \"base64\"")
        batch = queues.get("batchSize", cls.batch_size)
        if not isinstance(batch, int) or not 1 <= batch <= 32:
            raise HostError(f"host.json extensions.queues.batchSize must be 1-32, not {batch!r}")
        dequeue = queues.get("maxDequeueCount", cls.max_dequeue_count)
        if not isinstance(dequeue, int) or dequeue < 1:
            raise HostError(f"host.json extensions.queues.maxDequeueCount must be a positive integer, not {dequeue!r}")
        visibility = (timespan(queues["visibilityTimeout"], "visibilityTimeout")
                      if "visibilityTimeout" in queues else 0.0)
        polling = (timespan(queues["maxPollingInterval"], "maxPollingInterval")
                   if "maxPollingInterval" in queues else cls.max_polling_interval)
        prefix = str(http.get("routePrefix", "api")).strip("/")
        return cls(batch_size=batch, new_batch_threshold=queues.get("newBatchThreshold"), max_dequeue_count=dequeue,
                   visibility_timeout=visibility, max_polling_interval=max(0.1, polling), message_encoding="base64",
                   route_prefix=prefix)


def load_host_json(path: str | Path = "host.json") -> QueueSettings:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HostError(f"{path} not found: run the host from the function app's folder") from None
    except ValueError as exc:
        raise HostError(f"{path} is not valid JSON: {exc}") from None
    return QueueSettings.from_host_json(data)
