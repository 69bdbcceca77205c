"""The sample Azure estate: a hub-and-spoke network, its virtual machines and their NICs.

The topology is written out by hand rather than generated: the use-case tests compare aggregation
outputs with values checked by hand against this file, and a network engineer reading the
rendered diagram should recognise a real design (a firewall in the hub, spokes forced through it,
a dev spoke breaking out to the Internet, a blackhole route, a subnet on system routes only).
Every document has the shape Azure Resource Manager returns for the resource type.
"""
from __future__ import annotations

from typing import Any

SUBSCRIPTION = "3f2a6c1e-8b7d-4c59-9e21-5a0d7c4b1e90"
LOCATION = "westeurope"
FIREWALL_IP = "10.0.1.4"

# name: (resource group, address space, [(subnet, prefix, route table or None)])
VNETS: dict[str, tuple[str, str, list[tuple[str, str, str | None]]]] = {
    "vnet-hub": ("rg-hub-network", "10.0.0.0/16", [
        ("GatewaySubnet", "10.0.0.0/27", "rt-gateway"),
        ("AzureFirewallSubnet", "10.0.1.0/26", None),
        ("snet-shared", "10.0.2.0/24", "rt-hub-shared"),
    ]),
    "vnet-prod": ("rg-app-prod", "10.1.0.0/16", [
        ("snet-web", "10.1.1.0/24", "rt-prod-spoke"),
        ("snet-app", "10.1.2.0/24", "rt-prod-spoke"),
        ("snet-db", "10.1.3.0/24", "rt-prod-db"),
    ]),
    "vnet-dev": ("rg-app-dev", "10.2.0.0/16", [
        ("snet-dev-web", "10.2.1.0/24", "rt-dev-spoke"),
        ("snet-dev-build", "10.2.2.0/24", None),
    ]),
}

# name: (resource group, [(route, prefix, next hop type, next hop ip or None)])
ROUTE_TABLES: dict[str, tuple[str, list[tuple[str, str, str, str | None]]]] = {
    "rt-gateway": ("rg-hub-network", [
        ("to-prod", "10.1.0.0/16", "VirtualAppliance", FIREWALL_IP),
        ("to-dev", "10.2.0.0/16", "VirtualAppliance", FIREWALL_IP),
    ]),
    "rt-hub-shared": ("rg-hub-network", [
        ("default", "0.0.0.0/0", "VirtualAppliance", FIREWALL_IP),
        ("on-premises", "192.168.0.0/16", "VirtualNetworkGateway", None),
    ]),
    "rt-prod-spoke": ("rg-app-prod", [
        ("default", "0.0.0.0/0", "VirtualAppliance", FIREWALL_IP),
        ("prod-local", "10.1.0.0/16", "VnetLocal", None),
        ("deny-dev", "10.2.0.0/16", "None", None),
    ]),
    "rt-prod-db": ("rg-app-prod", [
        ("default", "0.0.0.0/0", "VirtualAppliance", FIREWALL_IP),
        ("web-tier", "10.1.1.0/24", "VnetLocal", None),
    ]),
    "rt-dev-spoke": ("rg-app-dev", [
        ("default", "0.0.0.0/0", "Internet", None),
        ("on-premises", "192.168.0.0/16", "VirtualNetworkGateway", None),
    ]),
}

# name: (resource group, size, vnet, subnet, boot diagnostics, os disk caching, encryption at host
#        (None: no securityProfile at all), accelerated networking per NIC, tags)
VMS: dict[str, tuple[str, str, str, str, bool, str, bool | None, tuple[bool, ...], dict[str, str]]] = {
    "vm-jump-01": ("rg-hub-network", "Standard_B2s", "vnet-hub", "snet-shared", True, "ReadWrite", None, (False,),
                   {"environment": "prod", "costCenter": "CC-1001"}),
    "vm-web-01": ("rg-app-prod", "Standard_D4s_v5", "vnet-prod", "snet-web", True, "ReadOnly", True, (True,),
                  {"environment": "prod", "costCenter": "CC-2002", "role": "web"}),
    "vm-web-02": ("rg-app-prod", "Standard_D4s_v5", "vnet-prod", "snet-web", True, "ReadOnly", True, (True,),
                  {"environment": "prod", "costCenter": "CC-2002", "role": "web"}),
    "vm-app-01": ("rg-app-prod", "Standard_D8s_v5", "vnet-prod", "snet-app", False, "ReadOnly", True, (True,),
                  {"environment": "prod", "costCenter": "CC-2002", "role": "app"}),
    "vm-db-01": ("rg-app-prod", "Standard_E8s_v5", "vnet-prod", "snet-db", True, "None", False, (True, False),
                 {"environment": "prod", "costCenter": "CC-3003", "role": "db"}),
    "vm-dev-01": ("rg-app-dev", "Standard_B2ms", "vnet-dev", "snet-dev-web", False, "ReadWrite", None, (False,),
                  {"environment": "dev", "costCenter": "CC-2002"}),
    "vm-build-01": ("rg-app-dev", "Standard_D2s_v5", "vnet-dev", "snet-dev-build", False, "ReadWrite", False, (True,),
                    {"costCenter": "CC-2002",
                     "notes": "Build agent; ask build-team@contoso.example before resizing"}),
}


def rg_id(group: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}"


def resource_id(group: str, provider: str, kind: str, name: str) -> str:
    return f"{rg_id(group)}/providers/{provider}/{kind}/{name}"


def vnet_id(name: str) -> str:
    return resource_id(VNETS[name][0], "Microsoft.Network", "virtualNetworks", name)


def subnet_id(vnet: str, subnet: str) -> str:
    return f"{vnet_id(vnet)}/subnets/{subnet}"


def route_table_id(name: str) -> str:
    return resource_id(ROUTE_TABLES[name][0], "Microsoft.Network", "routeTables", name)


def nic_names(vm: str) -> list[str]:
    count = len(VMS[vm][7])
    return [f"{vm}-nic" if count == 1 else f"{vm}-nic-{i}" for i in range(1, count + 1)]


def nic_id(vm: str, nic: str) -> str:
    return resource_id(VMS[vm][0], "Microsoft.Network", "networkInterfaces", nic)


def vm_id(vm: str) -> str:
    return resource_id(VMS[vm][0], "Microsoft.Compute", "virtualMachines", vm)


def _etag(name: str) -> str:
    return f'W/"{abs(hash_name(name)):08x}-0000-0000-0000-000000000000"'


def hash_name(name: str) -> int:
    """Stable across processes (the builtin hash() is salted per process)."""
    value = 0
    for ch in name.encode():
        value = (value * 131 + ch) & 0xFFFFFFFF
    return value


def virtual_networks() -> list[dict[str, Any]]:
    users = _subnet_users()
    out = []
    for name, (group, space, subnets) in VNETS.items():
        out.append({
            "name": name, "id": vnet_id(name), "etag": _etag(name), "type": "Microsoft.Network/virtualNetworks",
            "location": LOCATION, "tags": {"environment": "dev" if "dev" in name else "prod"},
            "properties": {
                "provisioningState": "Succeeded", "resourceGuid": f"{hash_name(name):08x}-6d1e-4c3a-9f00-vnet",
                "addressSpace": {"addressPrefixes": [space]},
                "subnets": [_subnet(name, subnet, prefix, table, users.get((name, subnet), []))
                            for subnet, prefix, table in subnets],
                "enableDdosProtection": False,
            },
        })
    return out


def _subnet(vnet: str, name: str, prefix: str, table: str | None, ip_configs: list[str]) -> dict[str, Any]:
    properties: dict[str, Any] = {"provisioningState": "Succeeded", "addressPrefix": prefix,
                                  "privateEndpointNetworkPolicies": "Disabled"}
    if table:
        properties["routeTable"] = {"id": route_table_id(table)}
    if ip_configs:
        properties["ipConfigurations"] = [{"id": config} for config in ip_configs]
    return {"name": name, "id": subnet_id(vnet, name), "etag": _etag(vnet + name),
            "type": "Microsoft.Network/virtualNetworks/subnets", "properties": properties}


def _subnet_users() -> dict[tuple[str, str], list[str]]:
    users: dict[tuple[str, str], list[str]] = {}
    for vm, spec in VMS.items():
        for nic in nic_names(vm):
            users.setdefault((spec[2], spec[3]), []).append(f"{nic_id(vm, nic)}/ipConfigurations/ipconfig1")
    return users


def route_tables() -> list[dict[str, Any]]:
    attached: dict[str, list[str]] = {}
    for vnet, (_, _, subnets) in VNETS.items():
        for subnet, _, table in subnets:
            if table:
                attached.setdefault(table, []).append(subnet_id(vnet, subnet))
    out = []
    for name, (group, routes) in ROUTE_TABLES.items():
        table_id = route_table_id(name)
        out.append({
            "name": name, "id": table_id, "etag": _etag(name), "type": "Microsoft.Network/routeTables",
            "location": LOCATION,
            "properties": {
                "provisioningState": "Succeeded", "disableBgpRoutePropagation": name != "rt-gateway",
                "routes": [_route(table_id, *route) for route in routes],
                "subnets": [{"id": subnet} for subnet in attached.get(name, [])],
            },
        })
    return out


def _route(table_id: str, name: str, prefix: str, hop: str, hop_ip: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = {"provisioningState": "Succeeded", "addressPrefix": prefix, "nextHopType": hop,
                                  "hasBgpOverride": False}
    if hop_ip:
        properties["nextHopIpAddress"] = hop_ip
    return {"name": name, "id": f"{table_id}/routes/{name}", "etag": _etag(table_id + name),
            "type": "Microsoft.Network/routeTables/routes", "properties": properties}


def network_interfaces() -> list[dict[str, Any]]:
    out = []
    for vm, spec in VMS.items():
        group, _, vnet, subnet = spec[:4]
        third_octet = {"vnet-hub": 0, "vnet-prod": 1, "vnet-dev": 2}[vnet]
        subnet_octet = int(next(p for s, p, _ in VNETS[vnet][2] if s == subnet).split(".")[2])
        for index, (nic, accelerated) in enumerate(zip(nic_names(vm), spec[7])):
            identifier = nic_id(vm, nic)
            host = 4 + list(VMS).index(vm) * 2 + index
            out.append({
                "name": nic, "id": identifier, "etag": _etag(nic), "type": "Microsoft.Network/networkInterfaces",
                "location": LOCATION, "tags": dict(spec[8]),
                "properties": {
                    "provisioningState": "Succeeded",
                    "ipConfigurations": [{
                        "name": "ipconfig1", "id": f"{identifier}/ipConfigurations/ipconfig1",
                        "type": "Microsoft.Network/networkInterfaces/ipConfigurations",
                        "properties": {"privateIPAddress": f"10.{third_octet}.{subnet_octet}.{host}",
                                       "privateIPAllocationMethod": "Dynamic", "primary": True,
                                       "privateIPAddressVersion": "IPv4",
                                       "subnet": {"id": subnet_id(vnet, subnet)}},
                    }],
                    "enableAcceleratedNetworking": accelerated, "enableIPForwarding": False,
                    "primary": index == 0, "virtualMachine": {"id": vm_id(vm)},
                    "macAddress": f"00-0D-3A-{third_octet:02X}-{subnet_octet:02X}-{host:02X}",
                },
            })
    return out


def virtual_machines() -> list[dict[str, Any]]:
    out = []
    for vm, (group, size, _, _, boot, caching, at_host, accelerated, tags) in VMS.items():
        properties: dict[str, Any] = {
            "provisioningState": "Succeeded", "vmId": f"{hash_name(vm):08x}-1c2d-4e5f-8a9b-{hash_name(vm[::-1]):012x}",
            "hardwareProfile": {"vmSize": size},
            "storageProfile": {
                "imageReference": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                   "sku": "22_04-lts-gen2", "version": "latest"},
                "osDisk": {"osType": "Linux", "name": f"{vm}-osdisk", "createOption": "FromImage",
                           "caching": caching, "diskSizeGB": 64 if size.startswith("Standard_E") else 30,
                           "managedDisk": {"storageAccountType": "Premium_LRS" if "s_v5" in size else "StandardSSD_LRS"}},
                "dataDisks": [],
            },
            "osProfile": {"computerName": vm, "adminUsername": "azureuser",
                          "linuxConfiguration": {"disablePasswordAuthentication": True}},
            "networkProfile": {"networkInterfaces": [
                {"id": nic_id(vm, nic), "properties": {"primary": i == 0}} for i, nic in enumerate(nic_names(vm))]},
            "diagnosticsProfile": {"bootDiagnostics": {"enabled": boot}},
        }
        if at_host is not None:
            properties["securityProfile"] = {"encryptionAtHost": at_host}
        out.append({"name": vm, "id": vm_id(vm), "type": "Microsoft.Compute/virtualMachines", "location": LOCATION,
                    "tags": dict(tags), "zones": ["1"] if group == "rg-app-prod" else [], "properties": properties})
    return out
