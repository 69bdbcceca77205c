"""`render route-tables`: the route-table graph as a standalone SVG, drawn in pure Python.

ElementTree builds the document, so every name from the estate is escaped as XML text or attribute
(a subnet called `<script>` is just text). Internet and virtual-appliance hops, the two a network
engineer checks first (what leaves the estate, what is forced through the firewall), are coloured
and drawn heavier; the legend says so. Long names are shortened with an ellipsis to fit their box
and kept whole in the element's tooltip (`<title>`).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shared.render.route_layout import HEADER_H, MARGIN, Box, HopNode, Layout, layout
from shared.render.route_model import HOP_TYPES, Vnet, hop_class, read_vnets

SVG_NS = "http://www.w3.org/2000/svg"
HIGHLIGHTED = ("Internet", "VirtualAppliance")
COLOURS = {"VirtualAppliance": "#e8590c", "Internet": "#c92a2a", "VirtualNetworkGateway": "#5f3dc4",
           "VnetLocal": "#2b8a3e", "None": "#868e96"}
LABELS = {"VirtualAppliance": "Virtual appliance", "Internet": "Internet",
          "VirtualNetworkGateway": "VPN / ExpressRoute gateway", "VnetLocal": "VNet local", "None": "Drop (None)"}
FONT = "Segoe UI, Helvetica, Arial, sans-serif"
MONO = "Consolas, Menlo, monospace"
STYLE = f"""
text {{ font-family: {FONT}; fill: #212529; }}
.mono {{ font-family: {MONO}; }}
.title {{ font-size: 20px; font-weight: 600; }}
.subtitle, .note {{ font-size: 12px; fill: #495057; }}
.note {{ font-style: italic; }}
.cluster {{ fill: #f1f3f5; stroke: #adb5bd; stroke-width: 1.5; }}
.cluster-name {{ font-size: 15px; font-weight: 600; }}
.subnet {{ fill: #ffffff; stroke: #1971c2; stroke-width: 1.5; }}
.table {{ fill: #ffffff; stroke: #495057; stroke-width: 1.2; }}
.table-head {{ fill: #343a40; }}
.table-name {{ fill: #ffffff; font-size: 13px; font-weight: 600; }}
.name {{ font-size: 13px; font-weight: 600; }}
.small {{ font-size: 11.5px; }}
.assoc {{ fill: none; stroke: #1971c2; stroke-width: 1.5; }}
.edge {{ fill: none; stroke-width: 1.3; opacity: 0.85; }}
.edge.highlight {{ stroke-width: 2.8; opacity: 1; }}
.row.highlight {{ fill-opacity: 0.12; }}
.row {{ fill-opacity: 0; }}
.hop {{ stroke-width: 1.5; }}
.hop-label {{ font-size: 13px; font-weight: 600; }}
""" + "".join(f".{hop_class(t)} {{ stroke: {c}; fill: {c}; }}\n.edge.{hop_class(t)} {{ fill: none; }}\n"
              f"text.{hop_class(t)} {{ stroke: none; fill: {c}; }}\n" for t, c in COLOURS.items()) + \
    f".edge.{hop_class('None')} {{ stroke-dasharray: 5 4; }}\n"


def render_route_svg(documents: Iterable[dict[str, Any]], title: str = "Route tables by virtual network") -> str:
    """The SVG text for the aggregation's documents (one per VNet)."""
    vnets = read_vnets(documents)
    plan = layout(vnets)
    root = ET.Element("svg", {"xmlns": SVG_NS, "width": _n(plan.width), "height": _n(plan.height),
                              "viewBox": f"0 0 {_n(plan.width)} {_n(plan.height)}", "role": "img",
                              "aria-label": title})
    ET.SubElement(root, "title").text = title
    ET.SubElement(root, "style").text = STYLE
    ET.SubElement(root, "rect", {"x": "0", "y": "0", "width": "100%", "height": "100%", "fill": "#ffffff"})
    _header(root, title, vnets, plan)
    for cluster in plan.clusters:
        _cluster_frame(root, cluster)
    edges = ET.SubElement(root, "g", {"class": "edges"})
    for cluster in plan.clusters:
        for table in cluster.tables:
            for subnet in table.subnets:
                _curve(edges, subnet.box.x + subnet.box.w, _mid(subnet.box), table.box.x, _mid(table.box), "assoc")
            for row in table.rows:
                hop = plan.hops[row.route.hop_key]
                kind = row.route.hop_type
                classes = f"edge {hop_class(kind)}" + (" highlight" if kind in HIGHLIGHTED else "")
                _curve(edges, row.box.x + row.box.w, _mid(row.box), hop.box.x, _mid(hop.box), classes)
    for cluster in plan.clusters:
        for table in cluster.tables:
            _table(root, table)
            for subnet in table.subnets:
                _subnet(root, subnet.subnet.name, subnet.subnet.prefix, subnet.box, None)
        for subnet in cluster.bare_subnets:
            _subnet(root, subnet.subnet.name, subnet.subnet.prefix, subnet.box, "system routes only (no route table)")
    for hop in plan.hops.values():
        _hop(root, hop)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_route_svg(documents: Iterable[dict[str, Any]], path: Path) -> Path:
    """Written to a temporary name and renamed, so a failed render never leaves half a picture."""
    text = render_route_svg(documents)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


def _header(root: ET.Element, title: str, vnets: list[Vnet], plan: Layout) -> None:
    subnets = sum(len(v.subnets) for v in vnets)
    tables = sum(len(c.tables) for c in plan.clusters)
    routes = sum(len(t.rows) for c in plan.clusters for t in c.tables)
    _text(root, MARGIN, MARGIN + 22, title, "title")
    _text(root, MARGIN, MARGIN + 44, f"{len(vnets)} virtual networks · {subnets} subnets · {tables} route table "
                                     f"associations · {routes} routes", "subtitle")
    legend = ET.SubElement(root, "g", {"class": "legend"})
    x: float = MARGIN
    y = MARGIN + HEADER_H + 6
    for kind in HOP_TYPES:
        heavy = kind in HIGHLIGHTED
        ET.SubElement(legend, "line", {"x1": _n(x), "y1": _n(y), "x2": _n(x + 26), "y2": _n(y),
                                       "class": f"edge {hop_class(kind)}" + (" highlight" if heavy else "")})
        label = LABELS[kind] + (" (highlighted)" if heavy else "")
        _text(legend, x + 32, y + 4, label, "small")
        x += 44 + 6.6 * len(label)


def _cluster_frame(root: ET.Element, cluster: Any) -> None:
    box = cluster.box
    group = ET.SubElement(root, "g", {"class": "vnet"})
    ET.SubElement(group, "rect", {**_rect(box), "rx": "10", "class": "cluster"})
    space = ", ".join(cluster.vnet.address_space)
    _text(group, box.x + 16, box.y + 27, _fit(cluster.vnet.name, 40), "cluster-name", cluster.vnet.name)
    _text(group, box.x + 16 + 9 * min(len(cluster.vnet.name), 40) + 14, box.y + 27, _fit(space, 50), "subtitle mono")
    if not cluster.vnet.subnets:
        _text(group, box.x + 16, box.y + 62, "no subnets", "note")


def _table(root: ET.Element, table: Any) -> None:
    box = table.box
    group = ET.SubElement(root, "g", {"class": "route-table"})
    ET.SubElement(group, "title").text = table.name
    ET.SubElement(group, "rect", {**_rect(box), "rx": "6", "class": "table"})
    ET.SubElement(group, "rect", {**_rect(Box(box.x, box.y, box.w, 26)), "rx": "6", "class": "table-head"})
    _text(group, box.x + 10, box.y + 18, _fit(table.name, 48), "table-name")
    if not table.rows:
        _text(group, box.x + 10, box.y + 46, "no routes: system routes apply", "note")
    for row in table.rows:
        route, rbox = row.route, row.box
        kind = route.hop_type
        highlight = " highlight" if kind in HIGHLIGHTED else ""
        line = ET.SubElement(group, "g", {"class": f"route route-{hop_class(kind)}{highlight}"})
        ET.SubElement(line, "title").text = (f"{route.name}: {route.prefix} → {kind}"
                                             + (f" {route.hop_ip}" if route.hop_ip else ""))
        ET.SubElement(line, "rect", {**_rect(Box(rbox.x + 1, rbox.y, rbox.w - 2, rbox.h)),
                                     "class": f"row {hop_class(kind)}{highlight}"})
        base = rbox.y + 15
        _text(line, rbox.x + 10, base, _fit(route.name, 17), "small")
        _text(line, rbox.x + 130, base, _fit(route.prefix, 18), "small mono")
        hop = LABELS[kind] if kind != "VirtualNetworkGateway" else "Gateway"
        _text(line, rbox.x + 262, base, _fit(f"→ {hop}", 19), f"small {hop_class(kind)}")


def _subnet(root: ET.Element, name: str, prefix: str, box: Box, note: str | None) -> None:
    group = ET.SubElement(root, "g", {"class": "subnet-node"})
    ET.SubElement(group, "title").text = f"{name} {prefix}".strip()
    ET.SubElement(group, "rect", {**_rect(box), "rx": "6", "class": "subnet"})
    _text(group, box.x + 10, box.y + 18, _fit(name, 28), "name")
    _text(group, box.x + 10, box.y + 34, _fit(prefix, 30), "small mono")
    if note:
        _text(group, box.x + box.w + 14, box.y + 26, note, "note")


def _hop(root: ET.Element, hop: HopNode) -> None:
    kind, ip = hop.key
    # not the bare hop class on the group: its stroke would be inherited by the IP text
    group = ET.SubElement(root, "g", {"class": f"hop-node node-{hop_class(kind)}" +
                                               (" highlight" if kind in HIGHLIGHTED else "")})
    ET.SubElement(group, "title").text = f"{kind} {ip or ''}".strip()
    fill = "0.16" if kind in HIGHLIGHTED else "0.06"
    ET.SubElement(group, "rect", {**_rect(hop.box), "rx": "23", "class": f"hop {hop_class(kind)}",
                                  "fill-opacity": fill})
    _text(group, hop.box.x + 16, hop.box.y + (20 if ip else 28), LABELS[kind], f"hop-label {hop_class(kind)}")
    if ip:
        _text(group, hop.box.x + 16, hop.box.y + 36, _fit(ip, 30), "small mono")


def _curve(parent: ET.Element, x1: float, y1: float, x2: float, y2: float, classes: str) -> None:
    bend = (x2 - x1) / 2
    ET.SubElement(parent, "path", {"d": f"M {_n(x1)} {_n(y1)} C {_n(x1 + bend)} {_n(y1)}, {_n(x2 - bend)} {_n(y2)}, "
                                        f"{_n(x2)} {_n(y2)}", "class": classes})


def _text(parent: ET.Element, x: float, y: float, value: str, classes: str, tooltip: str | None = None) -> None:
    element = ET.SubElement(parent, "text", {"x": _n(x), "y": _n(y), "class": classes})
    element.text = value
    if tooltip and tooltip != value:
        ET.SubElement(element, "title").text = tooltip


def _fit(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit - 1] + "…"


def _rect(box: Box) -> dict[str, str]:
    return {"x": _n(box.x), "y": _n(box.y), "width": _n(box.w), "height": _n(box.h)}


def _mid(box: Box) -> float:
    return box.y + box.h / 2


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")
