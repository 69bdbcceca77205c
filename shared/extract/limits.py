"""Bounds on one HTTP exchange: a deadline for the whole request and a cap on the body's size.

requests' `timeout` bounds each socket operation, so a server trickling a byte a second keeps a
request alive forever; here a timer shuts the request's socket down when the deadline passes
(connect, headers and body all count), and the blocked read returns at once. The body is read in
pieces after decompression (urllib3 decompresses no more than the piece asked for), so a gzip
bomb stops at the cap instead of filling memory.
"""
from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from typing import Any

import requests
import requests.exceptions as rex
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

MB = 1 << 20
_current = threading.local()   # the deadline of the attempt this thread is sending


class LimitExceeded(Exception):
    """A bound of ours was passed; the message is ours too (settings, no data), fit to show as is."""


class ResponseTooLarge(LimitExceeded):
    pass


class DeadlineExceeded(LimitExceeded, rex.Timeout):
    """A Timeout, so it is retried as one."""


class Deadline:
    """One attempt's deadline (with its redirects). Use as a context manager around the sending
    and the body reading, on the thread that does both."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._done = False

    def __enter__(self) -> Deadline:
        _current.deadline = self
        _WATCHDOG.watch(time.monotonic() + self.seconds, self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._done = True   # the watchdog drops it when its time comes
            self._socket = None
        _current.deadline = None

    def error(self, exc: BaseException) -> BaseException:
        """What a failed attempt failed of: a read cut by the deadline fails as the deadline."""
        return self.exceeded() if self.expired else exc

    def exceeded(self) -> DeadlineExceeded:
        return DeadlineExceeded(f"no complete answer within throttle.timeout={self.seconds:g}s")

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            if self._done or not isinstance(sock, socket.socket):   # TLS inside a proxy's TLS: not a socket
                return
            self._socket = sock
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._socket is not None:
                _shut(self._socket)


class _Watchdog:
    """One thread for every deadline of the process: a timer thread per request would cost more
    than a fast local request itself (docs/benchmarks.md)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, when: float, deadline: Deadline) -> None:
        with self._wake:
            while self._heap and self._heap[0][2]._done:   # noqa: SLF001 - finished ones, most often first
                heapq.heappop(self._heap)
            heapq.heappush(self._heap, (when, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="kspyder-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._wake.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, deadline = heapq.heappop(self._heap)
            deadline._expire()   # noqa: SLF001 - outside the condition: it takes the deadline's own lock


_WATCHDOG = _Watchdog()


def _shut(sock: socket.socket) -> None:
    """Shut down, not close: a read blocked in another thread returns (end of stream), and the
    connection, now failed, is discarded by urllib3 rather than pooled. The plain socket's method,
    also for TLS: SSLSocket.shutdown would drop the TLS state under the reading thread."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass   # already closed


class _ReportsSocket:
    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)   # type: ignore[misc]  # connects when needed: bounded by the connect timeout
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.attach(self.sock)   # type: ignore[attr-defined]


class _Connection(_ReportsSocket, HTTPConnection):
    pass


class _TlsConnection(_ReportsSocket, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


_POOLS = {"http": _Pool, "https": _TlsPool}


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections report their socket to the sending thread's `Deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):   # SOCKS pools are classes of their own
            manager.pool_classes_by_scheme = _POOLS
        return manager


def read_body(response: requests.Response, chunk: int, limit_mb: float) -> None:
    """What `Response.content` does for `stream=False` (the same reads through `iter_content`, the
    same requests exceptions, the connection back in the pool at the end), in `chunk`-sized pieces
    and stopping past `limit_mb` of decompressed body; the response then behaves as a non-streamed
    one (`content`, `text`, `json()`)."""
    if response._content is False:   # noqa: SLF001 - requests' own fields, set as `content` sets them
        if response.status_code == 0 or response.raw is None:
            response._content = None
        else:
            limit, size, pieces = int(limit_mb * MB), 0, []
            for piece in response.iter_content(chunk):
                size += len(piece)
                if size > limit:
                    raise ResponseTooLarge(f"response body over throttle.max_response_mb={limit_mb:g} "
                                           f"(after decompression)")
                pieces.append(piece)
            response._content = b"".join(pieces)
    response._content_consumed = True   # type: ignore[attr-defined]  # requests' private flag, not in its stubs
