"""Serves `handlers.handle` over HTTP on a background thread, like the shop sample API does, so
tests and the Azure demo get an ARM endpoint on a free loopback port without any other server."""
from __future__ import annotations

import threading
import traceback
from http.server import BaseHTTPRequestHandler

from samples.arm_api.handlers import ArmConfig, Response, arm_error, handle
from samples.background import BackgroundServer, QuietServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Silent: a line per request would drown test output."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)  # drained, or it would be read as the next keep-alive request
        path, _, query = self.path.partition("?")
        host = self.headers.get("Host") or "%s:%s" % self.server.server_address[:2]
        try:
            response = handle(self.command, path, query, self.headers.get("Authorization", ""), host,
                              self.server.config)
        except Exception as exc:  # a bug must reach the client as ARM's 500, not as a hang-up
            traceback.print_exc()
            response = arm_error(500, "InternalServerError", f"internal error: {type(exc).__name__}")
        with self.server.lock:
            self.server.requests += 1
        self._send(response)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class _Server(QuietServer):
    def __init__(self, address: tuple[str, int], config: ArmConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.requests = 0
        super().__init__(address, _Handler)


class ArmApi(BackgroundServer[_Server]):
    """`with ArmApi(ArmConfig(token="t")) as arm: arm.base_url` — port 0 picks a free one."""

    title = "the ARM sample API"
    thread_name = "arm-api"

    def __init__(self, config: ArmConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.config = config or ArmConfig()

    def _make_server(self, address: tuple[str, int]) -> _Server:
        return _Server(address, self.config)

    @property
    def requests(self) -> int:
        """Requests answered so far, so tests can check that paging really took several pages."""
        server = self._running()
        with server.lock:
            return server.requests
