"""Routing and response building, free of sockets and threads.

Every function here maps (request, config) to a `Response`, so pagination shapes, auth decisions
and fault answers are unit-testable without a server. Where an answer depends on server state (fault
counters, issued tokens, the token bucket) the state is passed in as a plain callable or value;
`server.py` owns the state itself, the sockets, and the sleeps.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qsl, urlencode

from samples.sample_api import data

if TYPE_CHECKING:
    from samples.sample_api.server import ApiConfig

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 1000
LOOP_CURSOR = "bG9vcA"  # base64 of "loop": a valid-looking cursor that never advances
FAULT_CODES = (500, 502, 503, 504)


class Response(NamedTuple):
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Request(NamedTuple):
    """What the endpoints need of an HTTP request; `host` (from the Host header) makes absolute links."""
    path: str
    params: dict[str, str]
    host: str


class QueryError(ValueError):
    """A query parameter the endpoint cannot use: answered with 400 rather than guessed around."""


def json_response(payload: object, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, (("Content-Type", "application/json"),) + headers, body)


def error_response(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return json_response({"error": {"status": status, "message": message}}, status, headers)


def parse_query(query: str) -> dict[str, str]:
    """First value wins for a repeated name, matching what most web frameworks hand a handler."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, value)
    return params


def int_param(params: dict[str, str], name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    """Oversized page sizes are clamped like real APIs do; malformed or too-small values are refused."""
    raw = params.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise QueryError(f"{name} must be >= {minimum}, got {value}")
    return value if maximum is None else min(value, maximum)


def _size(params: dict[str, str], name: str) -> int:
    return int_param(params, name, DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)


def link(request: Request, updates: dict[str, object], absolute: bool = False) -> str:
    """Keeps the caller's other parameters (filters, api_key) so following the link keeps the query."""
    params = {**request.params, **{k: str(v) for k, v in updates.items()}}
    target = f"{request.path}?{urlencode(params)}"
    return f"http://{request.host}{target}" if absolute else target


def _pages(total: int, size: int) -> int:
    return -(-total // size)


def _customer_ids(request: Request, config: ApiConfig) -> tuple[int, ...] | range | data.Joined:
    status = request.params.get("status") or None
    if status not in (None, "active", "inactive"):
        raise QueryError(f"status must be 'active' or 'inactive', got {status!r}")
    ids = data.customer_ids(config.customers, config.seed, status)
    since_text = request.params.get("updated_since")
    if not since_text:
        return ids
    # records updated at or after the moment, as GitHub's `since` on issues
    # (https://docs.github.com/en/rest/issues/issues#list-repository-issues) or Harvest's `updated_since`
    try:
        since = datetime.fromisoformat(since_text)
    except ValueError:
        raise QueryError("updated_since must be an ISO 8601 datetime") from None
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    changed = {i for i, at in config.changes.items() if at >= since}
    if status is not None:
        return tuple(i for i in ids if i in changed or data.customer_updated(i) >= since)
    first = data.first_updated_since(since)
    head = tuple(sorted(i for i in changed if i < first and i <= config.customers))
    return data.Joined(head, range(first, config.customers + 1))


def _customer_page(request: Request, config: ApiConfig) -> tuple[list[dict], dict]:
    ids = _customer_ids(request, config)
    page, size = int_param(request.params, "page", 1, 1), _size(request.params, "per_page")
    start = (page - 1) * size
    records = data.customers_at(ids[start:start + size], config.seed)
    for record in records:
        changed = config.changes.get(record["id"])
        if changed is not None:
            record["updated_at"] = changed.strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = {"page": page, "per_page": size, "total_pages": _pages(len(ids), size), "total": len(ids)}
    return records, meta


def customers(request: Request, config: ApiConfig) -> Response:
    records, meta = _customer_page(request, config)
    return json_response({"data": records, "meta": meta})


def customers_plain(request: Request, config: ApiConfig) -> Response:
    return json_response({"data": _customer_page(request, config)[0]})


def products(request: Request, config: ApiConfig) -> Response:
    offset, limit = int_param(request.params, "offset", 0, 0), _size(request.params, "limit")
    items = [data.product(i, config.seed) for i in data.window(config.products, offset, limit)]
    return json_response({"items": items, "total": config.products})


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": position}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise QueryError(f"cursor {cursor!r} is not one this API issued") from None
    if not isinstance(position, int) or position < 0:
        raise QueryError(f"cursor {cursor!r} is not one this API issued")
    return position


def _order_list(config: ApiConfig, ids: range) -> list[dict]:
    return [data.order(i, config.seed, config.customers, config.products) for i in ids]


def orders(request: Request, config: ApiConfig) -> Response:
    cursor, limit = request.params.get("cursor", ""), _size(request.params, "limit")
    ids = data.window(config.orders, decode_cursor(cursor) if cursor else 0, limit)
    more = len(ids) > 0 and ids[-1] < config.orders
    return json_response({"orders": _order_list(config, ids), "next_cursor": encode_cursor(ids[-1]) if more else None})


def events(request: Request, config: ApiConfig) -> Response:
    skip, top = int_param(request.params, "skip", 0, 0), _size(request.params, "top")
    ids = data.window(config.events, skip, top)
    body: dict[str, object] = {"value": [data.event(i, config.seed) for i in ids]}
    if skip + top < config.events:
        body["@odata.nextLink"] = link(request, {"skip": skip + top, "top": top}, absolute=True)
    return json_response(body)


def events_rel(request: Request, config: ApiConfig) -> Response:
    after, limit = int_param(request.params, "after", 0, 0), _size(request.params, "limit")
    ids = data.window(config.events, after, limit)
    more = len(ids) > 0 and ids[-1] < config.events
    nxt = link(request, {"after": ids[-1], "limit": limit}) if more else None
    return json_response({"results": [data.event(i, config.seed) for i in ids], "links": {"next": nxt}})


def tickets(request: Request, config: ApiConfig) -> Response:
    """`last` comes before `next` in the header so a parser that takes the first link is caught."""
    page, size = int_param(request.params, "page", 1, 1), _size(request.params, "per_page")
    total_pages = _pages(config.tickets, size)
    ids = data.window(config.tickets, (page - 1) * size, size)
    rels = [("first", 1)] + ([("prev", page - 1)] if page > 1 else []) + \
           ([("last", total_pages)] if total_pages else []) + ([("next", page + 1)] if page < total_pages else [])
    header = ", ".join(f'<{link(request, {"page": n, "per_page": size}, absolute=True)}>; rel="{rel}"'
                       for rel, n in rels)
    headers = (("Link", header), ("X-Total-Count", str(config.tickets)))
    return json_response([data.ticket(i, config.seed) for i in ids], headers=headers)


def countries(request: Request, config: ApiConfig) -> Response:
    return json_response(list(data.COUNTRIES))


def empty(request: Request, config: ApiConfig) -> Response:
    page, size = int_param(request.params, "page", 1, 1), _size(request.params, "per_page")
    return json_response({"data": [], "meta": {"page": page, "per_page": size, "total_pages": 0, "total": 0}})


def _loop_records(request: Request, config: ApiConfig, size_param: str) -> list[dict]:
    """Always the first full page of customers (never short), so only a loop guard can stop a client."""
    return data.customers_at(data.window(config.customers, 0, _size(request.params, size_param)), config.seed)


def loop_next_link(request: Request, config: ApiConfig) -> Response:
    nxt = link(request, {}) if request.params else request.path
    return json_response({"data": _loop_records(request, config, "limit"), "next": nxt})


def loop_cursor(request: Request, config: ApiConfig) -> Response:
    return json_response({"data": _loop_records(request, config, "limit"), "next_cursor": LOOP_CURSOR})


def loop_page(request: Request, config: ApiConfig) -> Response:
    return json_response({"data": _loop_records(request, config, "per_page")})


def malformed(request: Request, config: ApiConfig) -> Response:
    return Response(200, (("Content-Type", "application/json"),), b'{"data": [{"id": 1, "full_name": "Ada')


def missing_records(request: Request, config: ApiConfig) -> Response:
    return json_response({"items_typo": []})


def status(request: Request, config: ApiConfig) -> Response:
    raw = request.path.rsplit("/", 1)[-1]
    if not raw.isdigit() or not 400 <= int(raw) <= 599:
        return error_response(400, f"/v1/status/ takes a code from 400 to 599, got {raw!r}")
    return error_response(int(raw), f"forced status {raw}")


def index(request: Request, config: ApiConfig) -> Response:
    """A landing page for people who open the base URL in a browser during the demo."""
    return json_response({"name": "kspyder sample API", "endpoints": sorted([*ROUTES, *SERVER_ENDPOINTS])})


# Endpoints outside ROUTES (answered by server.py, or by prefix), listed for the index only.
SERVER_ENDPOINTS = ("/v1/flaky", "/v1/drop", "/v1/slow", "/v1/status/<code>", "POST /oauth/token", "/_stats",
                    "POST /_reset")
Handler = Callable[[Request, "ApiConfig"], Response]
ROUTES: dict[str, Handler] = {
    "/": index, "/v1/customers": customers, "/v1/customers_plain": customers_plain, "/v1/products": products,
    "/v1/orders": orders, "/v1/events": events, "/v1/events_rel": events_rel, "/v1/tickets": tickets,
    "/v1/countries": countries, "/v1/empty": empty, "/v1/loop/next_link": loop_next_link,
    "/v1/loop/cursor": loop_cursor, "/v1/loop/page": loop_page, "/v1/malformed": malformed,
    "/v1/missing_records": missing_records,
}


def route(method: str, path: str, query: str, config: ApiConfig, host: str) -> Response:
    """Answer a stateless endpoint: 404 for unknown paths, 405 for methods other than GET/HEAD."""
    handler = status if path.startswith("/v1/status/") else ROUTES.get(path)
    if handler is None:
        return error_response(404, f"no endpoint at {path}")
    if method not in ("GET", "HEAD"):
        return error_response(405, f"{path} answers GET only", (("Allow", "GET, HEAD"),))
    try:
        return handler(Request(path, parse_query(query), host), config)
    except QueryError as exc:
        return error_response(400, str(exc))


# ---------------------------------------------------------------- answers that depend on server state

def flaky(request: Request, config: ApiConfig, seen: int) -> Response:
    """`seen` counts requests with this exact query string, this one included."""
    code = int_param(request.params, "code", 503, 0)
    if code not in FAULT_CODES:
        raise QueryError(f"code must be one of {FAULT_CODES}, got {code}")
    fail = int_param(request.params, "fail", 1, 0)
    return error_response(code, f"flaky failure {seen} of {fail}") if seen <= fail else customers(request, config)


def drop(request: Request, config: ApiConfig, seen: int) -> Response | None:
    """None tells the server to hang up without answering."""
    return None if seen <= int_param(request.params, "fail", 1, 0) else customers(request, config)


def throttled(wait_s: float, retry_after_format: str) -> Response:
    seconds = max(1, math.ceil(wait_s))
    value = str(seconds) if retry_after_format == "seconds" else \
        formatdate(math.ceil(time.time()) + seconds, usegmt=True)  # whole seconds, so never early
    return error_response(429, "rate limit exceeded", (("Retry-After", value),))


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode(), expected.encode())


def authorized(authorization: str, api_key: str, config: ApiConfig, token_valid: Callable[[str], bool]) -> bool:
    """`api_key` is the X-API-Key header or else the api_key query parameter."""
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "bearer" and credential:
        if (config.token is not None and _same(credential, config.token)) or token_valid(credential):
            return True
    return config.api_key is not None and _same(api_key, config.api_key)


def unauthorized() -> Response:
    return error_response(401, "missing or invalid credentials", (("WWW-Authenticate", "Bearer"),))


def _basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password


def oauth_token(form: dict[str, str], authorization: str, config: ApiConfig, issue: Callable[[], str]) -> Response:
    """Client-credentials grant (RFC 6749 4.4), credentials in the form or in HTTP Basic. Any
    non-empty pair is accepted unless the config names the one client it trusts."""
    if form.get("grant_type") != "client_credentials":
        return json_response({"error": "unsupported_grant_type"}, 400)
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id:
        client_id, secret = _basic_credentials(authorization)
    expected_id, expected_secret = config.client_id or client_id, config.client_secret or secret
    if not client_id or not secret or not (_same(client_id, expected_id) and _same(secret, expected_secret)):
        return json_response({"error": "invalid_client"}, 401, (("WWW-Authenticate", 'Basic realm="sample"'),))
    body = {"access_token": issue(), "token_type": "Bearer", "expires_in": config.token_ttl_s}
    return json_response(body, headers=(("Cache-Control", "no-store"),))
