"""HTTP triggers on loopback: `/<routePrefix>/<route>` (prefix `api` unless host.json says
otherwise), `{param}` segments into `route_params`, methods checked (405), auth levels enforced.

Auth: FUNCTION and ADMIN routes need the host key in the `x-functions-key` header or the `code`
query parameter (one key stands for function, host and master keys here); ANONYMOUS routes need
none; a missing or wrong key answers 401, as Azure does.
"""
from __future__ import annotations

import hmac
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

from devhost.bindings import HttpFunction

log = logging.getLogger("kspyder.localhost")
MAX_BODY = 100 * 1024 * 1024   # Azure's request size limit


class HttpTriggers:
    def __init__(self, functions: tuple[HttpFunction, ...], key: str, route_prefix: str = "api"):
        if not key:
            raise ValueError("the host key must not be empty")
        self.functions = functions
        self.key = key
        self.prefix = route_prefix.strip("/")

    def route(self, path: str) -> tuple[list[tuple[HttpFunction, dict[str, str]]], bool]:
        """(functions whose route matches `path`, whether the prefix matched)."""
        path = unquote(path).lstrip("/")
        if self.prefix:
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                return [], False
            path = path[len(self.prefix):].lstrip("/")
        matches = []
        for function in self.functions:
            params = function.match(path)
            if params is not None:
                matches.append((function, params))
        return matches, True

    def authorized(self, function: HttpFunction, headers: dict[str, str], params: dict[str, str]) -> bool:
        if function.auth_level == "anonymous":
            return True
        given = headers.get("x-functions-key") or params.get("code") or ""
        return hmac.compare_digest(given.encode(), self.key.encode())

    def handle(self, method: str, url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One request: (status, headers, body)."""
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        lower = {k.lower(): v for k, v in headers.items()}
        matches, _ = self.route(parts.path)
        if not matches:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        allowed = [(f, p) for f, p in matches if method in f.methods]
        if not allowed:
            methods = sorted({m for f, _ in matches for m in f.methods})
            return 405, {"Allow": ", ".join(methods), "Content-Type": "text/plain"}, b"method not allowed"
        function, route_params = allowed[0]
        if not self.authorized(function, lower, params):
            return 401, {"Content-Type": "text/plain"}, b"unauthorized"
        request = func.HttpRequest(method, url, headers=headers, params=params, route_params=route_params, body=body)
        try:
            result = function.invoke(request)
        except Exception as exc:
            log.error("%s: %s %s failed: %s", function.name, method, parts.path, type(exc).__name__)
            return 500, {"Content-Type": "text/plain"}, b"internal server error"
        return response_parts(result)


def response_parts(result: object) -> tuple[int, dict[str, str], bytes]:
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers)
        if result.mimetype and not any(k.lower() == "content-type" for k in headers):
            textual = result.mimetype.startswith(("text/", "application/json"))
            charset = f"; charset={result.charset}" if result.charset and textual else ""
            headers["Content-Type"] = result.mimetype + charset
        return int(result.status_code), headers, result.get_body() or b""
    if result is None:
        return 204, {}, b""
    if isinstance(result, (str, bytes)):
        data = result.encode() if isinstance(result, str) else result
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, data
    raise TypeError(f"an HTTP function returned {type(result).__name__}, not an HttpResponse")


def make_server(triggers: HttpTriggers, host: str = "127.0.0.1", port: int = 7071) -> ThreadingHTTPServer:
    """The server (not started): `serve_forever()` in a thread, `shutdown()` to stop."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "kspyder-localhost"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(413, {"Content-Type": "text/plain"}, b"request too large")
                return
            body = self.rfile.read(length) if length else b""
            url = f"http://{host}:{server.server_port}{self.path}"
            try:
                status, headers, data = triggers.handle(self.command, url, dict(self.headers.items()), body)
            except Exception as exc:   # the host itself, never the function (handled above)
                log.error("request %s failed in the host: %s", self.command, type(exc).__name__)
                status, headers, data = 500, {"Content-Type": "text/plain"}, b"internal server error"
            self._reply(status, headers, data)

        def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:   # method and path only, at debug
            log.debug("http %s", format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="localhost-http", daemon=True)
    thread.start()
    return thread
