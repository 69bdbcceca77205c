"""The route-table diagram: a valid SVG, every route of the fixture on it, the highlighted hops,
hostile names escaped, boxes that do not overlap, and bad documents refused with their place."""
from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from shared.render.route_diagram import render_route_svg, write_route_svg
from shared.render.route_layout import layout
from shared.render.route_model import RouteDataError, read_vnets

NS = {"svg": "http://www.w3.org/2000/svg"}


def route(name, prefix, hop, ip=None):
    return {"name": name, "prefix": prefix, "next_hop_type": hop, "next_hop_ip": ip}


SPOKE = [route("default", "0.0.0.0/0", "VirtualAppliance", "10.0.1.4"), route("local", "10.1.0.0/16", "VnetLocal"),
         route("deny-dev", "10.2.0.0/16", "None")]
FIXTURE = [
    {"vnet": "vnet-hub", "address_space": ["10.0.0.0/16"], "subnets": [
        {"name": "AzureFirewallSubnet", "prefix": "10.0.1.0/26", "route_table": None, "routes": []},
        {"name": "GatewaySubnet", "prefix": "10.0.0.0/27", "route_table": "rt-gateway",
         "routes": [route("to-prod", "10.1.0.0/16", "VirtualAppliance", "10.0.1.4")]}]},
    {"vnet": "vnet-prod", "address_space": ["10.1.0.0/16"], "subnets": [
        {"name": "snet-app", "prefix": "10.1.2.0/24", "route_table": "rt-spoke", "routes": SPOKE},
        {"name": "snet-web", "prefix": "10.1.1.0/24", "route_table": "rt-spoke", "routes": SPOKE}]},
    {"vnet": "vnet-dev", "address_space": ["10.2.0.0/16"], "subnets": [
        {"name": "snet-dev", "prefix": "10.2.1.0/24", "route_table": "rt-dev",
         "routes": [route("default", "0.0.0.0/0", "Internet"),
                    route("on-prem", "192.168.0.0/16", "VirtualNetworkGateway")]}]},
]
ALL_ROUTES = {("rt-gateway", "to-prod", "10.1.0.0/16"), ("rt-spoke", "default", "0.0.0.0/0"),
              ("rt-spoke", "local", "10.1.0.0/16"), ("rt-spoke", "deny-dev", "10.2.0.0/16"),
              ("rt-dev", "default", "0.0.0.0/0"), ("rt-dev", "on-prem", "192.168.0.0/16")}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode())


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{{{NS['svg']}}}text")]


def test_output_is_a_valid_svg_document():
    root = parse(render_route_svg(FIXTURE))
    assert root.tag == f"{{{NS['svg']}}}svg"
    width, height = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert width > 600 and height > 300


def test_every_route_of_the_fixture_appears_in_its_table():
    root = parse(render_route_svg(FIXTURE))
    found = set()
    for table in root.iterfind(".//svg:g[@class='route-table']", NS):
        table_name = table.find("svg:title", NS).text
        for line in table.iterfind("svg:g", NS):
            name, prefix, hop = texts(line)
            found.add((table_name, name, prefix))
            assert hop.startswith("→ ")
    assert found == ALL_ROUTES


def test_a_table_shared_by_two_subnets_is_drawn_once_with_both_links():
    root = parse(render_route_svg(FIXTURE))
    tables = [t.find("svg:title", NS).text for t in root.iterfind(".//svg:g[@class='route-table']", NS)]
    assert sorted(tables) == ["rt-dev", "rt-gateway", "rt-spoke"]
    assert len(root.findall(".//svg:path[@class='assoc']", NS)) == 4  # GatewaySubnet, snet-app, snet-web, snet-dev


def test_every_vnet_and_subnet_is_labelled():
    labels = set(texts(parse(render_route_svg(FIXTURE))))
    assert {"vnet-hub", "vnet-prod", "vnet-dev", "AzureFirewallSubnet", "GatewaySubnet", "snet-app", "snet-web",
            "snet-dev", "10.0.1.0/26", "10.0.0.0/16"} <= labels
    assert "system routes only (no route table)" in labels


def test_internet_and_virtual_appliance_hops_are_highlighted_and_others_are_not():
    root = parse(render_route_svg(FIXTURE))
    edges = root.findall(".//svg:g[@class='edges']/svg:path", NS)
    by_class = {e.get("class") for e in edges}
    assert "edge hop-internet highlight" in by_class
    assert "edge hop-virtualappliance highlight" in by_class
    assert {"edge hop-vnetlocal", "edge hop-none", "edge hop-virtualnetworkgateway"} <= by_class
    highlighted = [e for e in edges if "highlight" in e.get("class")]
    assert len(highlighted) == 3  # to-prod, the spoke default (its table is drawn once), the dev default
    hops = {g.get("class") for g in root.iterfind(".//svg:g", NS) if (g.get("class") or "").startswith("hop-node")}
    assert "hop-node node-hop-internet highlight" in hops and "hop-node node-hop-virtualappliance highlight" in hops
    assert "hop-node node-hop-vnetlocal" in hops
    legend = " ".join(texts(root.find(".//svg:g[@class='legend']", NS)))
    assert "Internet (highlighted)" in legend and "Virtual appliance (highlighted)" in legend
    style = root.find("svg:style", NS).text
    assert ".hop-internet { stroke: #c92a2a" in style and ".edge.highlight { stroke-width: 2.8" in style


def test_routes_to_the_same_appliance_share_one_hop_node():
    root = parse(render_route_svg(FIXTURE))
    appliances = root.findall(".//svg:g[@class='hop-node node-hop-virtualappliance highlight']", NS)
    assert len(appliances) == 1 and "10.0.1.4" in texts(appliances[0])


def test_hostile_names_are_escaped_text_not_markup():
    hostile = '<script>alert("x")</script>&amp; ]]>'
    docs = [{"vnet": hostile, "address_space": ['"/><svg onload=alert(1)>'], "subnets": [
        {"name": hostile, "prefix": "10.0.0.0/24", "route_table": "rt<&>'\"",
         "routes": [route("r<1>", "0.0.0.0/0", "Internet")]}]}]
    svg = render_route_svg(docs)
    root = parse(svg)  # still well-formed
    assert root.find(".//svg:script", NS) is None
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert not any("onload" in key for element in root.iter() for key in element.attrib)
    assert any(text.startswith("<script>") for text in texts(root))  # the name survives, as text
    assert "r<1>" in texts(root)


def test_long_names_are_shortened_and_kept_whole_in_the_tooltip():
    name = "vnet-" + "x" * 80
    root = parse(render_route_svg([{"vnet": name, "address_space": [], "subnets": []}]))
    label = next(t for t in root.iter(f"{{{NS['svg']}}}text") if t.text and t.text.startswith("vnet-"))
    assert label.text.endswith("…") and len(label.text) <= 40
    assert label.find("svg:title", NS).text == name


def _boxes(plan):
    for cluster in plan.clusters:
        for table in cluster.tables:
            yield "table", table.box
            for subnet in table.subnets:
                yield "subnet", subnet.box
        for subnet in cluster.bare_subnets:
            yield "subnet", subnet.box
    for hop in plan.hops.values():
        yield "hop", hop.box


def test_layout_has_no_overlapping_boxes_and_stays_inside_the_canvas():
    many = FIXTURE + [{"vnet": f"vnet-{i}", "address_space": [f"10.{10 + i}.0.0/16"], "subnets": [
        {"name": f"s{j}", "prefix": f"10.{10 + i}.{j}.0/24", "route_table": f"rt-{i}-{j % 2}",
         "routes": [route(f"r{k}", f"172.{k}.0.0/16", ("Internet", "None", "VnetLocal")[k % 3]) for k in range(j + 1)]}
        for j in range(4)]} for i in range(3)]
    plan = layout(read_vnets(many))
    boxes = list(_boxes(plan))
    for (_, a), (_, b) in itertools.combinations(boxes, 2):
        assert a.x + a.w <= b.x or b.x + b.w <= a.x or a.bottom <= b.y or b.bottom <= a.y, (a, b)
    for cluster in plan.clusters:
        inner = [t.box for t in cluster.tables] + [s.box for t in cluster.tables for s in t.subnets] + \
                [s.box for s in cluster.bare_subnets]
        assert all(cluster.box.y < b.y and b.bottom < cluster.box.bottom for b in inner)
    assert all(b.x + b.w <= plan.width and b.bottom <= plan.height for _, b in boxes)


@pytest.mark.parametrize("docs, message", [
    ([{"address_space": [], "subnets": []}], "document 0: 'vnet' must be a non-empty string"),
    ([{"vnet": "v", "subnets": {"a": 1}}], "document 0 (v): 'subnets' must be a list"),
    ([{"vnet": "v", "subnets": [{"name": "s", "route_table": None, "routes": [route("r", "0.0.0.0/0", "Internet")]}]}],
     "document 0 (v) subnet 0: has routes but no 'route_table'"),
    ([{"vnet": "v", "subnets": [{"name": "s", "route_table": "t", "routes": [route("r", "0.0.0.0/0", "Moon")]}]}],
     "document 0 (v) subnet 0 route 0: next_hop_type 'Moon' is not one of VirtualAppliance, Internet, "
     "VirtualNetworkGateway, VnetLocal, None"),
    (["text"], "document 0: expected a mapping, got str"),
])
def test_malformed_documents_are_refused_with_their_place(docs, message):
    with pytest.raises(RouteDataError) as caught:
        render_route_svg(docs)
    assert str(caught.value) == message


def test_write_replaces_the_file_whole(tmp_path: Path):
    target = write_route_svg(FIXTURE, tmp_path / "sub" / "routes.svg")
    assert parse(target.read_text(encoding="utf-8")).tag.endswith("svg")
    assert [p.name for p in target.parent.iterdir()] == ["routes.svg"]
