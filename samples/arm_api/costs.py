"""Seeded daily cost rows in the shape of `Microsoft.Consumption/usageDetails` (legacy kind).

Each cost line (a resource with its tags) gets one row per day over `MONTHS`; the amount of a day
comes from its own `random.Random` seeded by (seed, line, day), so any row is reproducible alone.
Amounts are whole quarters (x.00, x.25, x.50, x.75): binary floating point holds them exactly, so
the sums an aggregation computes are exact and the expected values in the tests are plain decimals.
Dev machines are shut down at weekends (no row), and some lines carry no owner or no tags at all,
as real estates do.
"""
from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any, NamedTuple

from samples.arm_api.estate import SUBSCRIPTION, resource_id

DEFAULT_SEED = 7
FIRST_DAY = date(2026, 8, 1)
LAST_DAY = date(2026, 10, 31)
CURRENCY = "EUR"


class CostLine(NamedTuple):
    group: str
    provider: str
    kind: str
    name: str
    meter_category: str
    meter_name: str
    base_quarters: int      # the daily cost, in quarters of a currency unit, before variation
    spread_quarters: int    # up to this many quarters more on a given day
    weekdays_only: bool
    tags: dict[str, str]


def _tags(center: str, owner: str | None, environment: str) -> dict[str, str]:
    tags = {"costCenter": center, "environment": environment}
    if owner:
        tags["owner"] = owner
    return tags


LINES: tuple[CostLine, ...] = (
    CostLine("rg-hub-network", "Microsoft.Network", "azureFirewalls", "azfw-hub", "Azure Firewall",
             "Standard Deployment", 120, 8, False, _tags("CC-1001", "netops@contoso.example", "prod")),
    CostLine("rg-hub-network", "Microsoft.Network", "virtualNetworkGateways", "vgw-hub", "VPN Gateway",
             "VpnGw1", 60, 0, False, _tags("CC-1001", "netops@contoso.example", "prod")),
    CostLine("rg-hub-network", "Microsoft.Compute", "virtualMachines", "vm-jump-01", "Virtual Machines",
             "B2s", 4, 2, False, _tags("CC-1001", "netops@contoso.example", "prod")),
    CostLine("rg-hub-network", "Microsoft.Network", "publicIPAddresses", "pip-vgw-hub", "Bandwidth",
             "Data Transfer Out", 6, 12, False, {}),
    CostLine("rg-app-prod", "Microsoft.Compute", "virtualMachines", "vm-web-01", "Virtual Machines",
             "D4s v5", 28, 4, False, _tags("CC-2002", "shop-team@contoso.example", "prod")),
    CostLine("rg-app-prod", "Microsoft.Compute", "virtualMachines", "vm-web-02", "Virtual Machines",
             "D4s v5", 28, 4, False, _tags("CC-2002", "shop-team@contoso.example", "prod")),
    CostLine("rg-app-prod", "Microsoft.Compute", "virtualMachines", "vm-app-01", "Virtual Machines",
             "D8s v5", 56, 6, False, _tags("CC-2002", "shop-team@contoso.example", "prod")),
    CostLine("rg-app-prod", "Microsoft.Compute", "virtualMachines", "vm-db-01", "Virtual Machines",
             "E8s v5", 80, 6, False, _tags("CC-3003", "data-team@contoso.example", "prod")),
    CostLine("rg-app-prod", "Microsoft.Storage", "storageAccounts", "stprodlogs01", "Storage",
             "Hot LRS Data Stored", 10, 3, False, _tags("CC-3003", "data-team@contoso.example", "prod")),
    CostLine("rg-data-prod", "Microsoft.Sql", "servers", "sql-orders-prod", "SQL Database",
             "vCore", 96, 10, False, _tags("CC-3003", "data-team@contoso.example", "prod")),
    CostLine("rg-app-dev", "Microsoft.Compute", "virtualMachines", "vm-dev-01", "Virtual Machines",
             "B2ms", 8, 2, True, _tags("CC-2002", "lena.fischer@contoso.example", "dev")),
    CostLine("rg-app-dev", "Microsoft.Compute", "virtualMachines", "vm-build-01", "Virtual Machines",
             "D2s v5", 12, 8, True, _tags("CC-2002", None, "dev")),
)


def days() -> list[date]:
    return [FIRST_DAY + timedelta(days=n) for n in range((LAST_DAY - FIRST_DAY).days + 1)]


def usage_details(seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """Ordered by day then line, as the Consumption API pages them."""
    rows = []
    for day in days():
        for number, line in enumerate(LINES):
            if line.weekdays_only and day.weekday() >= 5:
                continue
            rows.append(_row(seed, number, line, day))
    return rows


def _row(seed: int, number: int, line: CostLine, day: date) -> dict[str, Any]:
    rng = random.Random(f"{seed}:{number}:{day.isoformat()}")
    quarters = line.base_quarters + (rng.randint(0, line.spread_quarters) if line.spread_quarters else 0)
    name = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    period = day.strftime("%Y%m")
    month_start = day.replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    target = resource_id(line.group, line.provider, line.kind, line.name)
    return {
        "id": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Billing/billingPeriods/{period}"
              f"/providers/Microsoft.Consumption/usageDetails/{name}",
        "name": name, "type": "Microsoft.Consumption/usageDetails", "kind": "legacy", "tags": dict(line.tags),
        "properties": {
            "billingPeriodStartDate": f"{month_start.isoformat()}T00:00:00.0000000Z",
            "billingPeriodEndDate": f"{month_end.isoformat()}T00:00:00.0000000Z",
            "date": f"{day.isoformat()}T00:00:00.0000000Z",
            "subscriptionId": SUBSCRIPTION, "subscriptionName": "Contoso Production",
            "resourceGroup": line.group, "resourceName": line.name, "resourceId": target,
            "resourceLocation": "WestEurope", "meterCategory": line.meter_category, "meterName": line.meter_name,
            "quantity": 24, "effectivePrice": quarters / 4 / 24,
            "costInBillingCurrency": quarters / 4, "billingCurrency": CURRENCY,
            "chargeType": "Usage", "frequency": "UsageBased", "publisherType": "Azure",
            "isAzureCreditEligible": True,
        },
    }
