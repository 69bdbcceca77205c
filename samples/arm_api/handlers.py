"""Azure Resource Manager's conventions, free of sockets: list paths, `api-version`, bearer auth,
`value` + `nextLink` paging with an opaque `$skiptoken`, and ARM's error body
`{"error": {"code": ..., "message": ...}}`. `server.py` only moves bytes.
"""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode

from samples.arm_api import costs, estate

NETWORK_API = "2023-09-01"
COMPUTE_API = "2024-03-01"
CONSUMPTION_API = "2023-05-01"
MAX_TOP = 1000


class Collection(NamedTuple):
    api_versions: tuple[str, ...]   # the versions this sample accepts; ARM refuses any other
    build: Callable[[ArmConfig], list[dict[str, Any]]]
    costs: bool                     # cost rows page by `cost_page_size`, resources by `page_size`


COLLECTIONS: dict[str, Collection] = {
    "Microsoft.Network/virtualNetworks": Collection((NETWORK_API, "2023-11-01"), lambda c: estate.virtual_networks(), False),
    "Microsoft.Network/routeTables": Collection((NETWORK_API, "2023-11-01"), lambda c: estate.route_tables(), False),
    "Microsoft.Network/networkInterfaces": Collection((NETWORK_API, "2023-11-01"), lambda c: estate.network_interfaces(), False),
    "Microsoft.Compute/virtualMachines": Collection((COMPUTE_API, "2024-07-01"), lambda c: estate.virtual_machines(), False),
    "Microsoft.Consumption/usageDetails": Collection((CONSUMPTION_API, "2024-08-01"), lambda c: costs.usage_details(c.seed), True),
}


@dataclass
class ArmConfig:
    """`token` None serves without auth (ARM never does; useful for quick manual looks)."""
    token: str | None = "sample-arm-token"
    page_size: int = 2
    cost_page_size: int = 250
    seed: int = costs.DEFAULT_SEED
    subscription: str = estate.SUBSCRIPTION
    _cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.page_size < 1 or self.cost_page_size < 1:
            raise ValueError("page_size and cost_page_size must be >= 1")

    def items(self, kind: str) -> list[dict[str, Any]]:
        if kind not in self._cache:  # built once: the data never changes while the server runs
            self._cache[kind] = COLLECTIONS[kind].build(self)
        return self._cache[kind]


class Response(NamedTuple):
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def json_response(payload: object, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, (("Content-Type", "application/json; charset=utf-8"),) + headers, body)


def arm_error(status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def parse_query(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, value)
    return params


def handle(method: str, path: str, query: str, authorization: str, host: str, config: ArmConfig) -> Response:
    """The answer to one request, in ARM's order of checks: auth, then the resource, then the version."""
    if config.token is not None and authorization != f"Bearer {config.token}":
        code = "AuthenticationFailed" if not authorization else "InvalidAuthenticationToken"
        return arm_error(401, code, "Authentication failed. The 'Authorization' header is missing or invalid.",
                         (("WWW-Authenticate", 'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                                               'error="invalid_token"'),))
    parts = path.strip("/").split("/")
    if len(parts) != 5 or parts[0].lower() != "subscriptions" or parts[2].lower() != "providers":
        return arm_error(404, "InvalidResourceType", f"No list operation is served at '{path}'.")
    if parts[1] != config.subscription:
        return arm_error(404, "SubscriptionNotFound", f"The subscription '{parts[1]}' could not be found.")
    kind = _kind(parts[3], parts[4])
    if kind is None:
        return arm_error(404, "InvalidResourceType",
                         f"The resource type '{parts[4]}' could not be found in the namespace '{parts[3]}'.")
    if method not in ("GET", "HEAD"):
        return arm_error(405, "MethodNotAllowed", f"The list operation of '{kind}' answers GET only.",
                         (("Allow", "GET, HEAD"),))
    params = parse_query(query)
    collection = COLLECTIONS[kind]
    version = params.get("api-version")
    if not version:
        return arm_error(400, "MissingApiVersionParameter",
                         "The api-version query parameter (?api-version=) is required for all requests.")
    if version not in collection.api_versions:
        return arm_error(400, "InvalidApiVersionParameter",
                         f"The api-version '{version}' is invalid. The supported versions are "
                         f"'{', '.join(collection.api_versions)}'.")
    try:
        return _page(kind, path, params, host, config)
    except ValueError as exc:
        return arm_error(400, "InvalidQueryParameterValue", str(exc))


def _kind(namespace: str, resource_type: str) -> str | None:
    """ARM treats namespaces and types case-insensitively; the canonical spelling is returned."""
    wanted = f"{namespace}/{resource_type}".lower()
    return next((kind for kind in COLLECTIONS if kind.lower() == wanted), None)


def _page(kind: str, path: str, params: dict[str, str], host: str, config: ArmConfig) -> Response:
    items = config.items(kind)
    size = config.cost_page_size if COLLECTIONS[kind].costs else config.page_size
    if params.get("$top"):
        size = _top(params["$top"])
    offset = decode_skiptoken(params["$skiptoken"]) if "$skiptoken" in params else 0
    page = items[offset:offset + size]
    body: dict[str, Any] = {"value": page}
    if offset + size < len(items):
        query = {"api-version": params["api-version"], "$skiptoken": encode_skiptoken(offset + size)}
        if params.get("$top"):
            query["$top"] = params["$top"]
        body["nextLink"] = f"http://{host}{path}?{urlencode(query)}"
    return json_response(body)


def _top(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"The value '{raw}' of query parameter '$top' is not an integer.") from None
    if not 1 <= value <= MAX_TOP:
        raise ValueError(f"The query parameter '$top' must be between 1 and {MAX_TOP}, got {value}.")
    return value


def encode_skiptoken(offset: int) -> str:
    """Opaque to clients, like ARM's: they must follow nextLink, not compute pages."""
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_skiptoken(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["o"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ValueError("The $skiptoken is invalid or has expired; restart the listing without it.") from None
    if not isinstance(offset, int) or offset < 0:
        raise ValueError("The $skiptoken is invalid or has expired; restart the listing without it.")
    return offset
