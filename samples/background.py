"""What the bundled sample servers share: an HTTP server on a background thread that tests,
benchmarks and demos start with `with Server(config) as api: api.base_url` (port 0: a free one)."""
from __future__ import annotations

import signal
import sys
import threading
from abc import ABC, abstractmethod
from http.server import ThreadingHTTPServer
from typing import Generic, TypeVar


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        """A client hanging up mid-answer is normal under fault tests; anything else is printed."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


S = TypeVar("S", bound=QuietServer)


class BackgroundServer(ABC, Generic[S]):
    """Subclasses name themselves (`title` for messages, `thread_name`) and build their server."""

    title = "the sample server"
    thread_name = "sample-server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._server: S | None = None
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _make_server(self, address: tuple[str, int]) -> S:
        """The sample's own server on `address`."""

    def _before_close(self, server: S) -> None:
        """Called after `shutdown()`, before the socket closes (e.g. to drop kept-alive connections)."""

    def start(self):
        if self._server is not None:
            raise RuntimeError(f"{self.title} is already running")
        self._server = self._make_server(self._address)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.thread_name}-{self.port}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None or thread is None:
            return
        server.shutdown()
        self._before_close(server)
        server.server_close()
        thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _running(self) -> S:
        if self._server is None:
            raise RuntimeError(f"{self.title} is not running: use it as a context manager or call start()")
        return self._server

    @property
    def port(self) -> int:
        return self._running().server_address[1]

    @property
    def base_url(self) -> str:
        host = self._address[0] if self._address[0] not in ("", "0.0.0.0") else "127.0.0.1"
        return f"http://{host}:{self.port}"


def serve_until_signalled(server: BackgroundServer, what: str, banner: str = "") -> int:
    """`python -m samples.<server>`: serve until SIGINT/SIGTERM; exit code 1 when the port is taken."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        server.start()
    except OSError as exc:
        host, port = server._address
        print(f"{what}: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{what} listening on {server.base_url}{banner}", file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):   # a timed wait lets the signal handler run promptly
            pass
    finally:
        server.close()
    return 0
