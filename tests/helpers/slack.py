"""A loopback emulation of Slack's `conversations.list`, from Slack's documentation:
https://api.slack.com/methods/conversations.list (`cursor`, `limit`; channels under `channels`,
the next cursor in `response_metadata.next_cursor`, empty on the last page),
https://api.slack.com/web#responses (errors are HTTP 200 with `"ok": false` and an `error` code),
https://api.slack.com/docs/rate-limits (HTTP 429 with `Retry-After`, body `ok: false`, `ratelimited`)."""
from __future__ import annotations

import base64
import threading

from tests.helpers.http_stub import Reply, Seen

TOKEN = "xoxb-test-0123456789"


def channel(i: int) -> dict:
    return {"id": f"C{i:08d}", "name": f"channel-{i}", "is_private": i % 3 == 0, "created": 1_600_000_000 + i,
            "num_members": i % 17, "creator": f"U{i:08d}", "purpose": {"value": "talk"}}


class SlackApi:
    """`channels` channels; the first request for the page after `limited_after` answers 429 once."""

    def __init__(self, channels: int = 23, limited_after: int | None = None):
        self.channels = channels
        self.limited_after = limited_after
        self._limited = False
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._limited = False

    def __call__(self, seen: Seen) -> Reply:
        if seen.path != "/api/conversations.list":
            return Reply(404, {"ok": False, "error": "unknown_method"})
        if seen.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        query = {k: v[0] for k, v in seen.query.items()}
        start = int(base64.b64decode(query["cursor"]).decode().split(":")[1]) if query.get("cursor") else 0
        with self._lock:
            if start == self.limited_after and not self._limited:
                self._limited = True
                return Reply(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "0"})
        limit = min(int(query.get("limit", 100)), 1000)
        end = min(start + limit, self.channels)
        following = base64.b64encode(f"team:{end}".encode()).decode() if end < self.channels else ""
        return Reply(200, {"ok": True, "channels": [channel(i) for i in range(start, end)],
                           "response_metadata": {"next_cursor": following}})
