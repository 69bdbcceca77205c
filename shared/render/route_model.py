"""The route-table graph as the renderer needs it, read from the `route_table_graph` aggregation's
documents, with every missing or malformed field reported by its position rather than drawn wrong."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

HOP_TYPES = ("VirtualAppliance", "Internet", "VirtualNetworkGateway", "VnetLocal", "None")


class RouteDataError(ValueError):
    """The documents do not have the shape the diagram needs; the message names the place."""


@dataclass(frozen=True)
class Route:
    name: str
    prefix: str
    hop_type: str
    hop_ip: str | None

    @property
    def hop_key(self) -> tuple[str, str | None]:
        """Routes to the same appliance IP share one hop node; other hop types are one node each."""
        return (self.hop_type, self.hop_ip if self.hop_type == "VirtualAppliance" else None)


@dataclass(frozen=True)
class Subnet:
    name: str
    prefix: str
    route_table: str | None
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class Vnet:
    name: str
    address_space: tuple[str, ...]
    subnets: tuple[Subnet, ...]


def hop_class(hop_type: str) -> str:
    """The CSS class of a hop type: `hop-internet`, `hop-virtualappliance`, ..."""
    return "hop-" + "".join(ch for ch in hop_type.lower() if ch.isalnum())


def read_vnets(documents: Iterable[dict[str, Any]]) -> list[Vnet]:
    return [_vnet(doc, f"document {i}") for i, doc in enumerate(documents)]


def _vnet(doc: Any, where: str) -> Vnet:
    if not isinstance(doc, dict):
        raise RouteDataError(f"{where}: expected a mapping, got {type(doc).__name__}")
    name = _text(doc, "vnet", where)
    subnets = doc.get("subnets") or []
    if not isinstance(subnets, list):
        raise RouteDataError(f"{where} ({name}): 'subnets' must be a list")
    space = doc.get("address_space") or []
    space = [space] if isinstance(space, str) else space
    return Vnet(name, tuple(str(p) for p in space),
                tuple(_subnet(s, f"{where} ({name}) subnet {j}") for j, s in enumerate(subnets)))


def _subnet(doc: Any, where: str) -> Subnet:
    if not isinstance(doc, dict):
        raise RouteDataError(f"{where}: expected a mapping, got {type(doc).__name__}")
    routes = doc.get("routes") or []
    if not isinstance(routes, list):
        raise RouteDataError(f"{where}: 'routes' must be a list")
    table = doc.get("route_table")
    if table is not None and not isinstance(table, str):
        raise RouteDataError(f"{where}: 'route_table' must be a name or null")
    if table is None and routes:
        raise RouteDataError(f"{where}: has routes but no 'route_table'")
    return Subnet(_text(doc, "name", where), str(doc.get("prefix") or ""), table,
                  tuple(_route(r, f"{where} route {k}") for k, r in enumerate(routes)))


def _route(doc: Any, where: str) -> Route:
    if not isinstance(doc, dict):
        raise RouteDataError(f"{where}: expected a mapping, got {type(doc).__name__}")
    hop = _text(doc, "next_hop_type", where)
    if hop not in HOP_TYPES:
        raise RouteDataError(f"{where}: next_hop_type '{hop}' is not one of {', '.join(HOP_TYPES)}")
    ip = doc.get("next_hop_ip")
    return Route(_text(doc, "name", where), _text(doc, "prefix", where), hop, str(ip) if ip else None)


def _text(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise RouteDataError(f"{where}: '{key}' must be a non-empty string")
    return value
