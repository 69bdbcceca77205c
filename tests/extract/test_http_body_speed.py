"""The HTTP client reads bodies in large pieces (`limits.read_body`) instead of requests' 10 KiB
ones: the body, the connection reuse and the handling of a body cut short must stay as they were."""
from __future__ import annotations

import json
import socket
import threading

import pytest

from shared.config.models import Throttle
from shared.errors import FetchError
from shared.extract.http_client import BODY_CHUNK, HttpClient
from shared.extract.types import PageRequest
from tests.helpers.http_stub import FakeTime


class RawServer:
    """Answers each request on a connection with the next scripted reply (bytes sent as they are);
    `None` closes the connection. Counts the connections it accepted."""

    def __init__(self, replies: list[bytes | None]):
        self.replies, self.connections = list(replies), 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/items"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while self.replies:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                buffer = b""
                while self.replies:
                    while b"\r\n\r\n" not in buffer:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buffer += chunk
                    if b"\r\n\r\n" not in buffer:
                        break
                    buffer = buffer.split(b"\r\n\r\n", 1)[1]
                    reply = self.replies.pop(0)
                    if reply is None:
                        break
                    conn.sendall(reply)
                    if b"Connection: close" in reply.split(b"\r\n\r\n", 1)[0]:
                        break


def reply(body: bytes, length: int | None = None, close: bool = False) -> bytes:
    head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            f"{len(body) if length is None else length}"
            f"\r\n{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n")
    return head.encode() + body


def client(**throttle) -> HttpClient:
    fake = FakeTime()
    settings = {"max_retries": 2, "backoff": 0.5, "max_backoff": 1.0, "timeout": 5.0, **throttle}
    return HttpClient(source="test", throttle=Throttle(**settings), sleep=fake.sleep, clock=fake.clock)


def test_a_body_larger_than_the_read_piece_arrives_whole_and_the_connection_is_reused():
    big = json.dumps({"data": ["x" * 100] * (3 * BODY_CHUNK // 100)}).encode()
    with RawServer([reply(big), reply(b'{"data": []}')]) as server:
        http = client()
        first = http.fetch(PageRequest(server.url))
        second = http.fetch(PageRequest(server.url))
        http.close()
    assert first.content == big and first.body == json.loads(big)
    assert second.body == {"data": []}
    assert server.connections == 1                       # the first body was read to the end: pooled again
    assert http.stats.snapshot()["bytes"] == len(big) + len(b'{"data": []}')


def test_a_body_cut_short_is_retried_like_a_dropped_connection():
    full = b'{"data": [1, 2, 3]}'
    with RawServer([reply(full[:5], length=len(full), close=True), reply(full)]) as server:
        http = client()
        response = http.fetch(PageRequest(server.url))
        http.close()
    assert response.body == {"data": [1, 2, 3]}
    assert http.stats.snapshot()["retries"] == 1 and server.connections == 2


def test_bodies_cut_short_every_time_give_up_with_the_usual_error():
    full = b'{"data": [1, 2, 3]}'
    cut = reply(full[:5], length=len(full), close=True)
    with RawServer([cut, cut, cut]) as server:
        http = client()
        with pytest.raises(FetchError) as error:
            http.fetch(PageRequest(server.url))
        http.close()
    assert "gave up" in str(error.value) and error.value.attempts == 3
