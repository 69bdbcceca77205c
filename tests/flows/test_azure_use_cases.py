"""The shipped Azure use cases end to end: examples/azure/manifests run against the ARM sample API
into the embedded document store, `aggregate` to files and SQLite tables, `render` to pictures.

Expected values are literal. The network and VM ones are read off samples/arm_api/estate.py by hand.
Cost rows per month are counted by hand (10 cost lines every day, 2 weekday-only lines: August 2026
has 31 days of which 21 weekdays, so 31*10 + 21*2 = 352; September 30/22 -> 344; October 31/22 -> 354)
and the VPN gateway is a flat 15.00 a day (465.00 in a 31-day month); the other sums were computed
once from the raw API rows with a separate pandas group-by and are cross-checked here against each
other (every view sums to the month totals). Owner hashes are HMAC-SHA256 under TEST_KEY.
"""
from __future__ import annotations

import csv
import json
import shutil
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from cli.main import cli
from samples.arm_api import ArmApi, ArmConfig
from shared.aggregate.run import aggregate
from shared.config.project import load_project
from shared.target.dialects import create_target_engine
from tests.helpers.flow import TEST_KEY
from tests.helpers.paths import ROOT

EXAMPLE = ROOT / "examples" / "azure" / "manifests"
TOKEN = "e2e-token"
FW = "10.0.1.4"
NETOPS = "c81cfe1931498680b94dfa18ac8651f2bf44c5b14e5379f4170b9af8bd7e178f"      # netops@contoso.example
SHOP = "96870a617b1602621742f873eca3d5effedb702373a076abeed9d42dffff2d51"        # shop-team@contoso.example
LENA = "983e50b7620056c0de49a1c09b72f1255d6f0120a9349a961fa9629f65c1af91"        # lena.fischer@contoso.example
DATA = "74b2a25e505cf2fa8eed9d1ddd9dcae8f95775a43fcf3b4078bbf07c08b0cf9d"        # data-team@contoso.example


def r(name, prefix, hop, ip=None):
    return {"name": name, "prefix": prefix, "next_hop_type": hop, "next_hop_ip": ip}


SPOKE = [r("default", "0.0.0.0/0", "VirtualAppliance", FW), r("prod-local", "10.1.0.0/16", "VnetLocal"),
         r("deny-dev", "10.2.0.0/16", "None")]
ROUTE_TABLE_GRAPH = [
    {"vnet": "vnet-dev", "address_space": ["10.2.0.0/16"], "subnets": [
        {"name": "snet-dev-build", "prefix": "10.2.2.0/24", "route_table": None, "routes": []},
        {"name": "snet-dev-web", "prefix": "10.2.1.0/24", "route_table": "rt-dev-spoke",
         "routes": [r("default", "0.0.0.0/0", "Internet"),
                    r("on-premises", "192.168.0.0/16", "VirtualNetworkGateway")]}]},
    {"vnet": "vnet-hub", "address_space": ["10.0.0.0/16"], "subnets": [
        {"name": "AzureFirewallSubnet", "prefix": "10.0.1.0/26", "route_table": None, "routes": []},
        {"name": "GatewaySubnet", "prefix": "10.0.0.0/27", "route_table": "rt-gateway",
         "routes": [r("to-prod", "10.1.0.0/16", "VirtualAppliance", FW),
                    r("to-dev", "10.2.0.0/16", "VirtualAppliance", FW)]},
        {"name": "snet-shared", "prefix": "10.0.2.0/24", "route_table": "rt-hub-shared",
         "routes": [r("default", "0.0.0.0/0", "VirtualAppliance", FW),
                    r("on-premises", "192.168.0.0/16", "VirtualNetworkGateway")]}]},
    {"vnet": "vnet-prod", "address_space": ["10.1.0.0/16"], "subnets": [
        {"name": "snet-app", "prefix": "10.1.2.0/24", "route_table": "rt-prod-spoke", "routes": SPOKE},
        {"name": "snet-db", "prefix": "10.1.3.0/24", "route_table": "rt-prod-db",
         "routes": [r("default", "0.0.0.0/0", "VirtualAppliance", FW), r("web-tier", "10.1.1.0/24", "VnetLocal")]},
        {"name": "snet-web", "prefix": "10.1.1.0/24", "route_table": "rt-prod-spoke", "routes": SPOKE}]},
]
SUBNET_ROUTES = [  # vnet, subnet, subnet_prefix, route_table, route, address_prefix, next_hop_type, next_hop_ip
    ("vnet-dev", "snet-dev-web", "10.2.1.0/24", "rt-dev-spoke", "default", "0.0.0.0/0", "Internet", ""),
    ("vnet-dev", "snet-dev-web", "10.2.1.0/24", "rt-dev-spoke", "on-premises", "192.168.0.0/16",
     "VirtualNetworkGateway", ""),
    ("vnet-hub", "GatewaySubnet", "10.0.0.0/27", "rt-gateway", "to-dev", "10.2.0.0/16", "VirtualAppliance", FW),
    ("vnet-hub", "GatewaySubnet", "10.0.0.0/27", "rt-gateway", "to-prod", "10.1.0.0/16", "VirtualAppliance", FW),
    ("vnet-hub", "snet-shared", "10.0.2.0/24", "rt-hub-shared", "default", "0.0.0.0/0", "VirtualAppliance", FW),
    ("vnet-hub", "snet-shared", "10.0.2.0/24", "rt-hub-shared", "on-premises", "192.168.0.0/16",
     "VirtualNetworkGateway", ""),
    ("vnet-prod", "snet-app", "10.1.2.0/24", "rt-prod-spoke", "default", "0.0.0.0/0", "VirtualAppliance", FW),
    ("vnet-prod", "snet-app", "10.1.2.0/24", "rt-prod-spoke", "deny-dev", "10.2.0.0/16", "None", ""),
    ("vnet-prod", "snet-app", "10.1.2.0/24", "rt-prod-spoke", "prod-local", "10.1.0.0/16", "VnetLocal", ""),
    ("vnet-prod", "snet-db", "10.1.3.0/24", "rt-prod-db", "default", "0.0.0.0/0", "VirtualAppliance", FW),
    ("vnet-prod", "snet-db", "10.1.3.0/24", "rt-prod-db", "web-tier", "10.1.1.0/24", "VnetLocal", ""),
    ("vnet-prod", "snet-web", "10.1.1.0/24", "rt-prod-spoke", "default", "0.0.0.0/0", "VirtualAppliance", FW),
    ("vnet-prod", "snet-web", "10.1.1.0/24", "rt-prod-spoke", "deny-dev", "10.2.0.0/16", "None", ""),
    ("vnet-prod", "snet-web", "10.1.1.0/24", "rt-prod-spoke", "prod-local", "10.1.0.0/16", "VnetLocal", ""),
]
COST_BY_MONTH = [("2026-08", 4123.25, "EUR", 352), ("2026-09", 4002.5, "EUR", 344), ("2026-10", 4143.0, "EUR", 354)]
COST_BY_RESOURCE_GROUP = [
    ("rg-app-dev", "2026-08", 127.75), ("rg-app-dev", "2026-09", 139.5), ("rg-app-dev", "2026-10", 137.25),
    ("rg-app-prod", "2026-08", 1652.25), ("rg-app-prod", "2026-09", 1601.5), ("rg-app-prod", "2026-10", 1654.0),
    ("rg-data-prod", "2026-08", 783.0), ("rg-data-prod", "2026-09", 758.75), ("rg-data-prod", "2026-10", 783.0),
    ("rg-hub-network", "2026-08", 1560.25), ("rg-hub-network", "2026-09", 1502.75),
    ("rg-hub-network", "2026-10", 1568.75),
]
COST_BY_SERVICE = [
    ("Azure Firewall", "2026-08", 961.25), ("Azure Firewall", "2026-09", 929.75), ("Azure Firewall", "2026-10", 963.5),
    ("Bandwidth", "2026-08", 96.75), ("Bandwidth", "2026-09", 84.5), ("Bandwidth", "2026-10", 103.25),
    ("SQL Database", "2026-08", 783.0), ("SQL Database", "2026-09", 758.75), ("SQL Database", "2026-10", 783.0),
    ("Storage", "2026-08", 88.5), ("Storage", "2026-09", 85.0), ("Storage", "2026-10", 90.25),
    ("VPN Gateway", "2026-08", 465.0), ("VPN Gateway", "2026-09", 450.0), ("VPN Gateway", "2026-10", 465.0),
    ("Virtual Machines", "2026-08", 1728.75), ("Virtual Machines", "2026-09", 1694.5),
    ("Virtual Machines", "2026-10", 1738.0),
]
COST_BY_COST_CENTER = [(*row, "EUR") for row in [  # sorted by cost center, then owner hash ("(no owner)" first)
    ("(untagged)", "(no owner)", "2026-08", 96.75), ("(untagged)", "(no owner)", "2026-09", 84.5),
    ("(untagged)", "(no owner)", "2026-10", 103.25),
    ("CC-1001", NETOPS, "2026-08", 1463.5), ("CC-1001", NETOPS, "2026-09", 1418.25),
    ("CC-1001", NETOPS, "2026-10", 1465.5),
    ("CC-2002", "(no owner)", "2026-08", 80.75), ("CC-2002", "(no owner)", "2026-09", 89.25),
    ("CC-2002", "(no owner)", "2026-10", 88.75),
    ("CC-2002", SHOP, "2026-08", 920.75), ("CC-2002", SHOP, "2026-09", 893.75), ("CC-2002", SHOP, "2026-10", 920.0),
    ("CC-2002", LENA, "2026-08", 47.0), ("CC-2002", LENA, "2026-09", 50.25), ("CC-2002", LENA, "2026-10", 48.5),
    ("CC-3003", DATA, "2026-08", 1514.5), ("CC-3003", DATA, "2026-09", 1466.5), ("CC-3003", DATA, "2026-10", 1517.0),
]]
VM_SETTINGS = [  # setting, value, count, vms
    ("accelerated_networking", "off on a NIC", 3, ["vm-db-01", "vm-dev-01", "vm-jump-01"]),
    ("accelerated_networking", "on every NIC", 4, ["vm-app-01", "vm-build-01", "vm-web-01", "vm-web-02"]),
    ("boot_diagnostics", "disabled", 3, ["vm-app-01", "vm-build-01", "vm-dev-01"]),
    ("boot_diagnostics", "enabled", 4, ["vm-db-01", "vm-jump-01", "vm-web-01", "vm-web-02"]),
    ("encryption_at_host", "disabled", 4, ["vm-build-01", "vm-db-01", "vm-dev-01", "vm-jump-01"]),
    ("encryption_at_host", "enabled", 3, ["vm-app-01", "vm-web-01", "vm-web-02"]),
    ("environment_tag", "(missing)", 1, ["vm-build-01"]),
    ("environment_tag", "dev", 1, ["vm-dev-01"]),
    ("environment_tag", "prod", 5, ["vm-app-01", "vm-db-01", "vm-jump-01", "vm-web-01", "vm-web-02"]),
    ("os_disk_caching", "None", 1, ["vm-db-01"]),
    ("os_disk_caching", "ReadOnly", 3, ["vm-app-01", "vm-web-01", "vm-web-02"]),
    ("os_disk_caching", "ReadWrite", 3, ["vm-build-01", "vm-dev-01", "vm-jump-01"]),
    ("vm_size", "Standard_B2ms", 1, ["vm-dev-01"]),
    ("vm_size", "Standard_B2s", 1, ["vm-jump-01"]),
    ("vm_size", "Standard_D2s_v5", 1, ["vm-build-01"]),
    ("vm_size", "Standard_D4s_v5", 2, ["vm-web-01", "vm-web-02"]),
    ("vm_size", "Standard_D8s_v5", 1, ["vm-app-01"]),
    ("vm_size", "Standard_E8s_v5", 1, ["vm-db-01"]),
]
TABLES = {"network.subnet_routes": SUBNET_ROUTES, "finops.cost_by_month": COST_BY_MONTH,
          "finops.cost_by_resource_group": COST_BY_RESOURCE_GROUP, "finops.cost_by_service": COST_BY_SERVICE,
          "finops.cost_by_cost_center": COST_BY_COST_CENTER}


def invoke(args: list[str]) -> int:
    try:
        cli.main(args, prog_name="main.py", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """Runs the shipped example once: run, aggregate, render; the tests then read what it left."""
    root = tmp_path_factory.mktemp("azure_use_cases")
    manifests = root / "manifests"
    shutil.copytree(EXAMPLE, manifests)
    env = {"KSPYDER_PII_KEY": TEST_KEY, "KSPYDER_STATE_DIR": str(root / "state"),
           "KSPYDER_TARGET_URL": f"sqlite:///{root / 'target.db'}", "KSPYDER_OUTPUT_DIR": str(root / "out"),
           "AZURE_SAMPLE_TOKEN": TOKEN}
    with pytest.MonkeyPatch.context() as patch, ArmApi(ArmConfig(token=TOKEN)) as arm:
        for name, value in {**env, "ARM_URL": arm.base_url}.items():
            patch.setenv(name, value)
        base = ["--manifests", str(manifests)]
        codes = [invoke(base + ["run"]), invoke(base + ["aggregate"]),
                 invoke(base + ["render", "route-tables"]), invoke(base + ["render", "cost-by-cost-center"])]
        requests = arm.requests
        project = load_project(manifests, env={**env, "ARM_URL": arm.base_url})
        documents = {name: aggregate(project, name) for name in (
            "route_table_graph", "subnet_routes", "cost_by_month", "cost_by_resource_group", "cost_by_service",
            "cost_by_cost_center", "vm_settings")}
    engine = create_target_engine(env["KSPYDER_TARGET_URL"], ["finops", "network"])
    try:
        with engine.connect() as connection:
            tables = {t: [tuple(row) for row in connection.execute(sa.text(
                f"SELECT {', '.join(_columns(t))} FROM {t} ORDER BY rowid"))] for t in TABLES}
    finally:
        engine.dispose()
    return SimpleNamespace(codes=codes, requests=requests, documents=documents, tables=tables,
                           out=root / "out", state=root / "state")


def _columns(table: str) -> list[str]:
    return {"network.subnet_routes": ["vnet", "subnet", "subnet_prefix", "route_table", "route", "address_prefix",
                                      "next_hop_type", "next_hop_ip"],
            "finops.cost_by_month": ["month", "cost", "currency", "usage_rows"],
            "finops.cost_by_resource_group": ["resource_group", "month", "cost"],
            "finops.cost_by_service": ["service", "month", "cost"],
            "finops.cost_by_cost_center": ["cost_center", "owner", "month", "cost", "currency"]}[table]


def rows(documents: list[dict], table: str) -> list[tuple]:
    return [tuple(doc[c] for c in _columns(table)) for doc in documents]


def test_every_command_succeeds_through_several_pages(shipped):
    assert shipped.codes == [0, 0, 0, 0]
    # 2 + 3 + 4 + 4 resource pages and 5 cost pages: every collection was paged with nextLink
    assert shipped.requests == 18


def test_route_table_graph(shipped):
    assert shipped.documents["route_table_graph"] == ROUTE_TABLE_GRAPH
    written = json.loads((shipped.out / "aggregations" / "route_table_graph.json").read_text())
    assert written == ROUTE_TABLE_GRAPH


def test_subnet_routes_in_csv_and_sql(shipped):
    assert rows(shipped.documents["subnet_routes"], "network.subnet_routes") == SUBNET_ROUTES
    with open(shipped.out / "aggregations" / "subnet_routes.csv", newline="") as handle:
        assert [tuple(row) for row in csv.reader(handle)][1:] == SUBNET_ROUTES
    assert shipped.tables["network.subnet_routes"] == SUBNET_ROUTES


@pytest.mark.parametrize("name, table, expected", [
    ("cost_by_month", "finops.cost_by_month", COST_BY_MONTH),
    ("cost_by_resource_group", "finops.cost_by_resource_group", COST_BY_RESOURCE_GROUP),
    ("cost_by_service", "finops.cost_by_service", COST_BY_SERVICE),
    ("cost_by_cost_center", "finops.cost_by_cost_center", COST_BY_COST_CENTER),
])
def test_finops_views_in_documents_csv_and_sql(shipped, name, table, expected):
    assert rows(shipped.documents[name], table) == expected
    with open(shipped.out / "aggregations" / f"{name}.csv", newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == _columns(table)
    assert [tuple(line) for line in lines[1:]] == [tuple(str(v) for v in row) for row in expected]
    assert shipped.tables[table] == expected


def test_every_finops_view_adds_up_to_the_month_totals():
    months = {m: cost for m, cost, _, _ in COST_BY_MONTH}
    for view in (COST_BY_RESOURCE_GROUP, COST_BY_SERVICE, [row[:4] for row in COST_BY_COST_CENTER]):
        for month in months:
            assert sum(row[-1] for row in view if row[-2] == month) == months[month]


def test_no_owner_address_reaches_any_output(shipped):
    for path in [*(shipped.out / "aggregations").iterdir(), *shipped.state.rglob("*.jsonl")]:
        assert "@contoso.example" not in path.read_text(encoding="utf-8"), path
    vms = (shipped.state / "documents" / "azure" / "virtual_machines.jsonl").read_text()
    assert "Build agent; ask [EMAIL] before resizing" in vms  # the free-text scan ran over the tags


def test_vm_settings(shipped):
    got = [(d["setting"], d["value"], d["count"], d["vms"]) for d in shipped.documents["vm_settings"]]
    assert got == VM_SETTINGS
    assert [list(d) for d in shipped.documents["vm_settings"]][0] == ["setting", "value", "count", "vms"]
    assert (shipped.out / "aggregations" / "vm_settings.csv").exists()


def test_route_picture_shows_every_route(shipped):
    root = ET.parse(shipped.out / "route-tables.svg").getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    found = set()
    for table in root.iterfind(".//svg:g[@class='route-table']", ns):
        name = table.find("svg:title", ns).text
        for line in table.iterfind("svg:g", ns):
            route, prefix, _hop = (t.text for t in line.iter("{http://www.w3.org/2000/svg}text"))
            found.add((name, route, prefix))
    assert found == {(row[3], row[4], row[5]) for row in SUBNET_ROUTES}


def test_cost_picture_is_a_png(shipped):
    assert (shipped.out / "cost-by-cost-center.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_run_is_idempotent(shipped, tmp_path, monkeypatch):
    """Loading again upserts the same documents: the aggregations give the same results."""
    manifests = tmp_path / "manifests"
    shutil.copytree(EXAMPLE, manifests)
    with ArmApi(ArmConfig(token=TOKEN)) as arm:
        for name, value in {"KSPYDER_PII_KEY": TEST_KEY, "KSPYDER_STATE_DIR": str(shipped.state),
                            "KSPYDER_TARGET_URL": f"sqlite:///{tmp_path / 't.db'}", "ARM_URL": arm.base_url,
                            "AZURE_SAMPLE_TOKEN": TOKEN}.items():
            monkeypatch.setenv(name, value)
        assert invoke(["--manifests", str(manifests), "run", "azure.usage_details"]) == 0
    project = load_project(manifests)
    assert rows(aggregate(project, "cost_by_month"), "finops.cost_by_month") == COST_BY_MONTH


def test_the_one_command_demo_writes_both_pictures(tmp_path, monkeypatch, capsys):
    from samples import azure_demo

    monkeypatch.chdir(tmp_path)  # the example's settings put state and outputs under ./.kspyder/azure
    for name in ("KSPYDER_PII_KEY", "ARM_URL", "AZURE_SAMPLE_TOKEN"):  # restored after: the demo sets them
        monkeypatch.setenv(name, "placeholder" if name != "KSPYDER_PII_KEY" else TEST_KEY)
    assert azure_demo.main(["--images", str(tmp_path / "images")]) == 0
    out = capsys.readouterr().out
    for name in ("route-tables.svg", "cost-by-cost-center.png"):
        assert str(tmp_path / ".kspyder" / "azure" / "output" / name) in out
        assert (tmp_path / "images" / name).read_bytes() == (tmp_path / ".kspyder/azure/output" / name).read_bytes()
    # the diagram in the README is what the shipped code draws today (the PNG depends on fonts, so only the SVG)
    committed = ROOT / "docs" / "images" / "route-tables.svg"
    assert (tmp_path / "images" / "route-tables.svg").read_text() == committed.read_text(), \
        "docs/images is stale: run `python -m samples.azure_demo --images docs/images`"
