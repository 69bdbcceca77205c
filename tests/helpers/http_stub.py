"""A scriptable HTTP server on 127.0.0.1 for the HTTP-layer tests, plus a fake clock.

Each test says what the server answers: a queue of `Reply`s (consumed in order), then a handler
function, then a default. The server records every request and counts requests in flight
exactly: a request is in flight from the moment it is read until just before the last byte of
its answer is written, which is strictly inside the client's own notion of "in flight".
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict


@dataclass
class Reply:
    status: int = 200
    body: Any = None              # bytes/str sent as is; anything else as JSON; None: empty JSON object
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0            # seconds to wait before answering
    drop: bool = False            # close the connection without answering


@dataclass
class Seen:
    method: str
    path: str                     # without the query string
    target: str                   # as sent: path and query string
    query: dict[str, list[str]]
    headers: CaseInsensitiveDict
    body: bytes
    at: float                     # time.monotonic() when the request was read

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


class StubServer:
    def __init__(self, replies: list[Reply] | None = None, handler: Callable[[Seen], Reply] | None = None,
                 default: Reply | None = None):
        self._replies: deque[Reply] = deque(replies or [])
        self.handler = handler
        self.default = default or Reply()
        self.requests: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stub = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="http-stub", daemon=True)

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/data") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def seen(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.requests if path is None or s.path == path]

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        parts = urlsplit(h.path)
        seen = Seen(h.command, parts.path, h.path, parse_qs(parts.query, keep_blank_values=True),
                    CaseInsensitiveDict(h.headers.items()), h.rfile.read(length), time.monotonic())
        with self._lock:
            self.requests.append(seen)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            reply = self._replies.popleft() if self._replies else None
        done = False

        def leave() -> None:
            nonlocal done
            if not done:
                done = True
                with self._lock:
                    self.in_flight -= 1
        try:
            if reply is None:
                reply = self.handler(seen) if self.handler else self.default
            if reply.delay:
                time.sleep(reply.delay)
            if reply.drop:
                leave()
                h.close_connection = True
                return
            payload, content_type = _encode(reply.body)
            phrase = HTTPStatus(reply.status).phrase if reply.status in HTTPStatus._value2member_map_ else "Unknown"
            head = [f"HTTP/1.1 {reply.status} {phrase}", f"Content-Type: {content_type}",
                    f"Content-Length: {len(payload)}", *(f"{k}: {v}" for k, v in reply.headers.items())]
            leave()           # before writing: the client cannot have the answer yet
            # one write: headers and body in separate small writes meet Nagle and delayed ACKs (40 ms each)
            h.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        finally:
            leave()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False     # idle keep-alive connections must not block stop()
    request_queue_size = 128   # the default backlog of 5 makes a 16-thread burst wait for SYN retries
    stub: StubServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, so the client's connection pool is exercised

    def do_GET(self) -> None:
        self.server.stub._serve(self)

    do_POST = do_PUT = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _encode(body: Any) -> tuple[bytes, str]:
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps({} if body is None else body).encode(), "application/json"


class FakeTime:
    """A clock that only moves when slept on: retry and throttle waits are recorded, not waited."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
