"""Positions for the route-table diagram, computed (no layout engine): VNet clusters stacked top to
bottom, each with its subnets on the left and the route tables they use beside them, one row per
route, and the next hops in one column on the right shared by every VNet.

Nothing overlaps by construction: clusters, table groups and hop nodes are stacked with fixed gaps,
and each hop node is placed at the mean height of the routes pointing at it, then pushed down just
enough to clear the one above, which keeps edges short and mostly uncrossed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.render.route_model import Route, Subnet, Vnet

MARGIN, HEADER_H, LEGEND_H = 24, 64, 36
PAD, CLUSTER_HEAD, CLUSTER_GAP = 16, 46, 28
SUBNET_W, SUBNET_H, SUBNET_GAP = 220, 42, 12
LINK_W, TABLE_W, TABLE_HEAD, ROW_H = 64, 380, 30, 22
GROUP_GAP, HOP_GAP_X, HOP_W, HOP_H, HOP_GAP = 20, 150, 230, 46, 16
CLUSTER_W = PAD + SUBNET_W + LINK_W + TABLE_W + PAD


@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass
class SubnetBox:
    subnet: Subnet
    box: Box


@dataclass
class RouteRow:
    route: Route
    box: Box


@dataclass
class TableBox:
    name: str
    box: Box
    rows: list[RouteRow]
    subnets: list[SubnetBox]


@dataclass
class Cluster:
    vnet: Vnet
    box: Box
    tables: list[TableBox]
    bare_subnets: list[SubnetBox]   # on system routes only: no route table associated


@dataclass
class HopNode:
    key: tuple[str, str | None]
    box: Box


@dataclass
class Layout:
    width: float
    height: float
    clusters: list[Cluster]
    hops: dict[tuple[str, str | None], HopNode] = field(default_factory=dict)


def layout(vnets: list[Vnet]) -> Layout:
    top: float = MARGIN + HEADER_H + LEGEND_H
    clusters = []
    for vnet in vnets:
        cluster = _cluster(vnet, top)
        clusters.append(cluster)
        top = cluster.box.bottom + CLUSTER_GAP
    hops = _hops(clusters, MARGIN + CLUSTER_W + HOP_GAP_X, MARGIN + HEADER_H + LEGEND_H)
    bottom = max([c.box.bottom for c in clusters] + [h.box.bottom for h in hops.values()] +
                 [MARGIN + HEADER_H + LEGEND_H])
    return Layout(MARGIN + CLUSTER_W + HOP_GAP_X + HOP_W + MARGIN, bottom + MARGIN, clusters, hops)


def _cluster(vnet: Vnet, top: float) -> Cluster:
    x = MARGIN
    subnet_x, table_x = x + PAD, x + PAD + SUBNET_W + LINK_W
    y = top + CLUSTER_HEAD
    order: list[str] = []
    for subnet in vnet.subnets:
        if subnet.route_table and subnet.route_table not in order:
            order.append(subnet.route_table)
    tables = []
    for name in order:
        users = [s for s in vnet.subnets if s.route_table == name]
        routes = next(s.routes for s in users)  # one table, one route list, whichever subnet carries it
        table_h = TABLE_HEAD + ROW_H * max(len(routes), 1) + 8
        stack_h = len(users) * SUBNET_H + (len(users) - 1) * SUBNET_GAP
        group_h = max(table_h, stack_h)
        table = Box(table_x, y + (group_h - table_h) / 2, TABLE_W, table_h)
        rows = [RouteRow(route, Box(table_x, table.y + TABLE_HEAD + i * ROW_H, TABLE_W, ROW_H))
                for i, route in enumerate(routes)]
        stack_top = y + (group_h - stack_h) / 2
        subnets = [SubnetBox(s, Box(subnet_x, stack_top + i * (SUBNET_H + SUBNET_GAP), SUBNET_W, SUBNET_H))
                   for i, s in enumerate(users)]
        tables.append(TableBox(name, table, rows, subnets))
        y += group_h + GROUP_GAP
    bare = []
    for subnet in (s for s in vnet.subnets if not s.route_table):
        bare.append(SubnetBox(subnet, Box(subnet_x, y, SUBNET_W, SUBNET_H)))
        y += SUBNET_H + SUBNET_GAP
    if not tables and not bare:
        y += SUBNET_H  # an empty VNet still gets a visible body for its "no subnets" note
    bottom = y - (SUBNET_GAP if bare else GROUP_GAP if tables else 0) + PAD
    return Cluster(vnet, Box(x, top, CLUSTER_W, bottom - top), tables, bare)


def _hops(clusters: list[Cluster], x: float, top: float) -> dict[tuple[str, str | None], HopNode]:
    wanted: dict[tuple[str, str | None], list[float]] = {}
    for cluster in clusters:
        for table in cluster.tables:
            for row in table.rows:
                wanted.setdefault(row.route.hop_key, []).append(row.box.y + row.box.h / 2)
    desired = sorted(((sum(ys) / len(ys), key) for key, ys in wanted.items()), key=lambda item: (item[0], str(item[1])))
    nodes, floor = {}, top
    for centre, key in desired:
        y = max(centre - HOP_H / 2, floor)
        nodes[key] = HopNode(key, Box(x, y, HOP_W, HOP_H))
        floor = y + HOP_H + HOP_GAP
    return nodes
