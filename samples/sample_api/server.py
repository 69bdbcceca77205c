"""The sample API's HTTP server: standard library only, so the demo runs on a bare Python.

This module owns what needs state, sockets or time: counters for `/_stats`, the token bucket, fault
counters, issued OAuth tokens, latency, and hanging up for the `drop` fault. Which answer to give is
decided in `handlers.py`.
"""
from __future__ import annotations

import math
import secrets
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler

from samples.background import BackgroundServer, QuietServer
from samples.sample_api import data, handlers
from samples.sample_api.handlers import Request, Response, error_response, json_response

MAX_SLEEP_MS = 30_000
CONTROL_PATHS = ("/_stats", "/_reset")


@dataclass
class ApiConfig:
    """How the sample API behaves. Counts size the data sets; the rest shapes traffic and auth."""
    customers: int = data.COUNTS["customers"]
    products: int = data.COUNTS["products"]
    orders: int = data.COUNTS["orders"]
    events: int = data.COUNTS["events"]
    tickets: int = data.COUNTS["tickets"]
    rate: float | None = None  # requests per second across all clients; None means unlimited
    burst: int = 1
    retry_after_format: str = "seconds"  # or "http-date"
    latency_ms: float = 0
    token: str | None = None
    api_key: str | None = None
    seed: int = data.DEFAULT_SEED
    client_id: str | None = None  # when set, /oauth/token insists on these credentials
    client_secret: str | None = None
    token_ttl_s: int = 3600
    # With `rate`: a quota of rate * window_s requests per fixed window (aligned to Unix time) instead
    # of the token bucket. `quota_headers` announces the limit as the IETF draft does: a window's
    # RateLimit-Limit/-Remaining/-Reset, the token bucket's RateLimit-Policy (rate per second);
    # off, only the 429's Retry-After tells.
    window_s: float | None = None
    quota_headers: bool = False
    # customers changed since the data was made: id -> new `updated_at` (aware), listed by `updated_since`
    changes: dict[int, datetime] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("customers", "products", "orders", "events", "tickets"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be > 0 (or None for no limit)")
        if self.window_s is not None and (self.rate is None or self.window_s <= 0 or self.rate * self.window_s < 1):
            raise ValueError("window_s needs a rate and must allow at least one request per window")
        if self.burst < 1 or self.latency_ms < 0 or self.token_ttl_s < 1:
            raise ValueError("burst and token_ttl_s must be >= 1 and latency_ms >= 0")
        if self.retry_after_format not in ("seconds", "http-date"):
            raise ValueError("retry_after_format must be 'seconds' or 'http-date'")

    @property
    def auth_required(self) -> bool:
        return self.token is not None or self.api_key is not None


class TokenBucket:
    """Shared by all connections, so the limit holds however many clients or threads call."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._lock = threading.Lock()
        self._tokens, self._last = float(burst), clock()
        self.served = 0                             # requests let through, and when the first and
        self.first_served = self.last_served = 0.0  # the last were (benchmarks read the rate served)

    def take(self) -> float:
        """0.0 when the request may pass, else the seconds until a token will be available."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                self.first_served = self.first_served or now
                self.last_served, self.served = now, self.served + 1
                return 0.0
            return (1 - self._tokens) / self._rate

    def refill(self) -> None:
        with self._lock:
            self._tokens, self._last = float(self._burst), self._clock()


class FixedWindow:
    """`limit` requests per window of `window_s` seconds, windows aligned to Unix time, as GitHub's and
    most APIs' quotas are (https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/)."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.time) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._lock = threading.Lock()
        self._end, self._used = 0.0, 0
        self.served: Counter[int] = Counter()   # requests let through, by window number

    def take(self) -> tuple[bool, int, float]:
        """(allowed, remaining after this request, seconds until the window ends)."""
        with self._lock:
            now = self._clock()
            if now >= self._end:
                self._end = (now // self.window_s + 1) * self.window_s
                self._used = 0
            allowed = self._used < self.limit
            if allowed:
                self._used += 1
                self.served[int(now // self.window_s)] += 1
            return allowed, self.limit - self._used, self._end - now

    def refill(self) -> None:
        with self._lock:
            self._end, self._used = 0.0, 0
            self.served.clear()


class ApiState:
    """Counters every handler thread updates; one lock keeps in-flight counts exact."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock  # injectable so token expiry is testable without waiting
        self._in_flight = 0
        self._tokens: dict[str, float] = {}
        self.reset()

    def reset(self) -> None:
        """In-flight stays as it is (requests running now will still finish and decrement it)."""
        with self._lock:
            self._by_path: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._total = self._throttled = 0
            self._max_in_flight = self._in_flight

    def begin(self, path: str) -> None:
        with self._lock:
            self._total += 1
            self._by_path[path] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def throttled(self) -> None:
        with self._lock:
            self._throttled += 1

    def fault_hit(self, key: str) -> int:
        """How many requests with this key arrived so far, this one included."""
        with self._lock:
            self._faults[key] += 1
            return self._faults[key]

    def issue_token(self, ttl_s: int) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            now = self._clock()
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + ttl_s
        return token

    def token_valid(self, token: str) -> bool:
        with self._lock:
            return self._tokens.get(token, float("-inf")) > self._clock()

    def snapshot(self) -> dict:
        with self._lock:
            return {"requests": {"total": self._total, "by_path": dict(sorted(self._by_path.items()))},
                    "throttled": self._throttled, "in_flight": self._in_flight,
                    "max_in_flight": self._max_in_flight}


def slow(request: Request, config: ApiConfig) -> Response:
    time.sleep(handlers.int_param(request.params, "ms", 500, 0, MAX_SLEEP_MS) / 1000)
    return handlers.customers(request, config)


# Endpoints answered here rather than by handlers.route, with the methods they take.
STATEFUL = {"/v1/flaky": ("GET", "HEAD"), "/v1/drop": ("GET", "HEAD"), "/v1/slow": ("GET", "HEAD"),
            "/oauth/token": ("POST",)}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would add ~40 ms
    timeout = 120  # idle keep-alive connections are closed after this
    server: _Server

    _quota: tuple[tuple[str, str], ...] = ()   # the quota headers of the answer being made

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Silent: one line per request would drown test and benchmark output."""

    def _dispatch(self) -> None:
        """One entry for every method, so even PUT or DELETE get a JSON 405, not an HTML 501 page."""
        self._serve(self.command)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _serve(self, method: str) -> None:
        body = self._read_body()
        path, _, query = self.path.partition("?")
        if path in CONTROL_PATHS:
            self._send(self._control(method, path), method)
            return
        state = self.server.state
        state.begin(path)
        try:
            response = self._respond(method, path, query, body)
        except Exception as exc:  # a bug here must reach the client as a 500, not as a hang-up
            traceback.print_exc()
            response = error_response(500, f"internal error: {exc!r}")
        finally:
            state.end()  # before the write, so a client holding its answer never sees itself in flight
        if response is None:
            self.close_connection = True  # the drop fault: close without a status line
            return
        self._send(response, method)

    def _read_body(self) -> bytes:
        """Always drain the body, or its bytes would be parsed as the next keep-alive request."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def _respond(self, method: str, path: str, query: str, body: bytes) -> Response | None:
        config, state = self.server.config, self.server.state
        if path.startswith("/v1/") and config.latency_ms:
            time.sleep(config.latency_ms / 1000)
        wait = self.server.bucket.take() if self.server.bucket and path.startswith(("/v1/", "/oauth/")) else 0.0
        window = self.server.window
        if window is not None and path.startswith("/v1/"):
            allowed, remaining, reset = window.take()
            if config.quota_headers:
                self._quota = (("RateLimit-Limit", str(window.limit)), ("RateLimit-Remaining", str(remaining)),
                               ("RateLimit-Reset", str(math.ceil(reset))))   # whole seconds: never early
            if not allowed:
                state.throttled()
                return handlers.throttled(reset, config.retry_after_format)
        if self.server.bucket is not None and config.quota_headers and config.rate and path.startswith("/v1/"):
            self._quota = (("RateLimit-Policy", f"{config.rate:g};w=1"),)   # its sustained rate, per second
        if wait:
            state.throttled()
            return handlers.throttled(wait, config.retry_after_format)
        request = Request(path, handlers.parse_query(query), self.headers.get("Host") or self._own_host())
        authorization = self.headers.get("Authorization", "")
        api_key = self.headers.get("X-API-Key") or request.params.get("api_key", "")
        if path.startswith("/v1/") and config.auth_required and \
                not handlers.authorized(authorization, api_key, config, state.token_valid):
            return handlers.unauthorized()
        if path not in STATEFUL:
            return handlers.route(method, path, query, config, request.host)
        if method not in STATEFUL[path]:
            return error_response(405, f"{path} answers {STATEFUL[path][0]}", (("Allow", ", ".join(STATEFUL[path])),))
        if path == "/oauth/token":
            form = handlers.parse_query(body.decode("utf-8", "replace"))
            return handlers.oauth_token(form, authorization, config, lambda: state.issue_token(config.token_ttl_s))
        return self._faulty(path, query, request)

    def _faulty(self, path: str, query: str, request: Request) -> Response | None:
        config = self.server.config
        try:
            if path == "/v1/slow":
                return slow(request, config)
            seen = self.server.state.fault_hit(f"{path}?{query}")
            return (handlers.flaky if path == "/v1/flaky" else handlers.drop)(request, config, seen)
        except handlers.QueryError as exc:
            return error_response(400, str(exc))

    def _control(self, method: str, path: str) -> Response:
        if path == "/_stats" and method in ("GET", "HEAD"):
            return json_response(self.server.state.snapshot())
        if path == "/_reset" and method == "POST":
            self.server.reset()
            return json_response({"reset": True})
        allowed = "GET, HEAD" if path == "/_stats" else "POST"
        return error_response(405, f"{path} answers {allowed} only", (("Allow", allowed),))

    def _own_host(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def _send(self, response: Response, method: str) -> None:
        self.send_response(response.status)
        quota, self._quota = self._quota, ()
        for name, value in response.headers + quota:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)


class _Server(QuietServer):
    request_queue_size = 128  # the default of 5 drops connections when a benchmark opens many at once

    def __init__(self, address: tuple[str, int], config: ApiConfig) -> None:
        self.config = config
        self.state = ApiState()
        windowed = config.rate is not None and config.window_s is not None
        self.bucket = TokenBucket(config.rate, config.burst) if config.rate and not windowed else None
        self.window = FixedWindow(round(config.rate * config.window_s), config.window_s) \
            if config.rate is not None and config.window_s is not None else None
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def reset(self) -> None:
        self.state.reset()
        if self.bucket is not None:
            self.bucket.refill()
        if self.window is not None:
            self.window.refill()

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """Idle keep-alive connections would otherwise keep their handler threads waiting."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SampleApi(BackgroundServer[_Server]):
    """Runs the sample API on a background thread: `with SampleApi(ApiConfig()) as api: api.base_url`."""

    title = "the sample API"
    thread_name = "sample-api"

    def __init__(self, config: ApiConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.config = config or ApiConfig()

    def _make_server(self, address: tuple[str, int]) -> _Server:
        return _Server(address, self.config)

    def _before_close(self, server: _Server) -> None:
        server.close_open_connections()

    def stats(self) -> dict:
        return self._running().state.snapshot()

    @property
    def limit(self) -> TokenBucket | FixedWindow | None:
        """The running server's rate limit (the benchmarks read what it let through)."""
        server = self._running()
        return server.window or server.bucket

    def reset(self) -> None:
        self._running().reset()
