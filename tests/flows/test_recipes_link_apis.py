"""The Salesforce and Shopify recipes of docs/recipes.md against emulations of those APIs, in
`main.py run` and through the queue chain: the same rows, no errors."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
import yaml

from tests.helpers.flow import project_for
from tests.helpers.http_stub import Reply, Seen, StubServer
from tests.helpers.parity import chained, embedded
from tests.helpers.recipes import recipe_yaml

ACCOUNTS = 450
ORDERS = 130
TOKEN = "00Dxx0000001gPL!AQ4AQFakeToken"
SHOP_TOKEN = "shpat_0123456789abcdef"


def account(i: int) -> dict[str, Any]:
    created = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=i)
    return {"attributes": {"type": "Account", "url": f"/services/data/v60.0/sobjects/Account/001{i:015d}"},
            "Id": f"001{i:015d}", "Name": f"Company {i}", "Industry": "Retail" if i % 2 else None,
            "AnnualRevenue": i * 1000.5, "CreatedDate": created.strftime("%Y-%m-%dT%H:%M:%S.000+0000")}


class Salesforce:
    """Salesforce REST API as documented at
    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm,
    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_queryoptions.htm and
    https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm:
    a client-credentials token, `q` runs a SOQL query, `Sforce-Query-Options: batchSize=N` (200 to
    2000, default 2000), answers `{totalSize, done, records, nextRecordsUrl}` with `nextRecordsUrl`
    (`/services/data/vXX.X/query/<locator>-<offset>`) absent when `done` is true."""

    def __init__(self) -> None:
        self.tokens_issued = 0

    def __call__(self, seen: Seen) -> Reply:
        if seen.path == "/services/oauth2/token":
            form = seen.form()
            if form.get("grant_type") != "client_credentials" or form.get("client_id") != "sf-client":
                return Reply(status=400, body={"error": "invalid_client"})
            self.tokens_issued += 1
            return Reply(body={"access_token": TOKEN, "token_type": "Bearer", "instance_url": "", "scope": "api"})
        if seen.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Reply(status=401, body=[{"message": "Session expired or invalid",
                                            "errorCode": "INVALID_SESSION_ID"}])
        asked = seen.headers.get("Sforce-Query-Options", "batchSize=2000")
        options = dict(part.split("=") for part in asked.split(","))
        size = max(200, min(2000, int(options["batchSize"])))
        if seen.path == "/services/data/v60.0/query":
            query = parse_qs(seen.target.partition("?")[2]).get("q", [""])[0]
            if not query.startswith("SELECT Id, Name"):
                return Reply(status=400, body=[{"message": "malformed query", "errorCode": "MALFORMED_QUERY"}])
            start = 0
        elif seen.path.startswith("/services/data/v60.0/query/01gD0000002HU6KIAW-"):
            start = int(seen.path.rsplit("-", 1)[1])
        else:
            return Reply(status=404, body=[{"message": "not found", "errorCode": "NOT_FOUND"}])
        end = min(start + size, ACCOUNTS)
        body: dict[str, Any] = {"totalSize": ACCOUNTS, "done": end >= ACCOUNTS,
                                "records": [account(i) for i in range(start, end)]}
        if end < ACCOUNTS:
            body["nextRecordsUrl"] = f"/services/data/v60.0/query/01gD0000002HU6KIAW-{end}"
        return Reply(body=body)


def order(i: int) -> dict[str, Any]:
    return {"id": 450789469 + i, "name": f"#{1001 + i}", "email": f"buyer{i}@example.com",
            "phone": f"+1613555{i:04d}", "financial_status": "paid", "total_price": f"{10 + i}.99",
            "currency": "USD", "created_at": f"2024-03-{1 + i % 28:02d}T10:00:00-05:00",
            "customer": {"id": 207119551 + i % 17, "email": f"buyer{i}@example.com"},
            "shipping_address": {"country_code": "CA", "address1": f"{i} Main St"}}


class Shopify:
    """Shopify REST Admin API as documented at https://shopify.dev/docs/api/admin-rest/usage/pagination
    and https://shopify.dev/docs/api/admin-rest/usage/rate-limits: `limit` up to 250, `page_info`
    cursors in `Link: <...>; rel="next"` (other parameters are not allowed beside `page_info` but
    `limit`), `X-Shopify-Access-Token`, a leaky bucket of 40 requests leaking 2 per second with
    `X-Shopify-Shop-Api-Call-Limit: used/40`, and 429 with `Retry-After` when the bucket is full."""

    def __init__(self, size: int = 250) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.level, self.at = 0.0, time.monotonic()
        self.refused = 0

    def __call__(self, seen: Seen) -> Reply:
        if seen.headers.get("X-Shopify-Access-Token") != SHOP_TOKEN:
            return Reply(status=401, body={"errors": "[API] Invalid API key or access token"})
        with self.lock:
            now = time.monotonic()
            self.level = max(0.0, self.level - 2 * (now - self.at))
            self.at = now
            if self.level + 1 > 40:
                self.refused += 1
                return Reply(status=429, body={"errors": "Exceeded 2 calls per second for api client."},
                             headers={"Retry-After": "1.0"})
            self.level += 1
            used = int(self.level)
        if seen.path != "/admin/api/2024-01/orders.json":
            return Reply(status=404, body={"errors": "Not Found"})
        query = {k: v[0] for k, v in seen.query.items()}
        limit = min(int(query.get("limit", 50)), self.size)
        if "page_info" in query:
            if set(query) - {"page_info", "limit"}:
                return Reply(status=400, body={"errors": {"page_info": "Invalid value."}})
            start = int(query["page_info"].removeprefix("eyJsYXN0X2lkIjo"))
        else:
            start = 0
        end = min(start + limit, ORDERS)
        headers = {"X-Shopify-Shop-Api-Call-Limit": f"{used}/40"}
        if end < ORDERS:
            link = f"{seen.path}?{urlencode({'limit': limit, 'page_info': f'eyJsYXN0X2lkIjo{end}'})}"
            headers["Link"] = f'<{link}>; rel="next"'
        return Reply(body={"orders": [order(i) for i in range(start, end)]}, headers=headers)


def handler_for(salesforce: Salesforce, shopify: Shopify):
    def handle(seen: Seen) -> Reply:
        return shopify(seen) if seen.path.startswith("/admin/") else salesforce(seen)
    return handle


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("recipes")
    salesforce, shopify = Salesforce(), Shopify(size=50)
    with StubServer(handler=handler_for(salesforce, shopify)) as server:
        base = server.url("")
        sources = {}
        for heading in ("Salesforce", "Shopify"):
            text = recipe_yaml(heading, base).replace("https://example.my.salesforce.com", base)
            sources.update(yaml.safe_load(text)["sources"])
        env = {"SF_CLIENT_ID": "sf-client", "SF_CLIENT_SECRET": "sf-secret", "SHOPIFY_TOKEN": SHOP_TOKEN}
        project = project_for(tmp_path, sources, {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                                  "storage": {"root": str(tmp_path / "storage")}}, env=env)
        return embedded(project, tmp_path), chained(project, tmp_path), salesforce, shopify


@pytest.mark.parametrize("model", ["salesforce.accounts", "shopify.orders"])
def test_both_modes_load_the_same_rows_without_errors(runs, model):
    (tables, warnings, errors), (chain_tables, chain_warnings, chain_errors), _, _ = runs
    assert errors[model] is None and chain_errors[model] is None
    assert warnings[model] == chain_warnings[model] == []
    assert chain_tables[model] == tables[model]


def test_salesforce_batches_follow_next_records_url_to_the_stated_total(runs):
    (tables, _, _), _, salesforce, _ = runs
    rows = {row[0]: row for row in tables["salesforce.accounts"]}
    assert len(rows) == ACCOUNTS
    first = rows["001000000000000003"]
    assert first[1:4] == ("Company 3", "Retail", Decimal("3001.50"))
    assert first[4].replace(tzinfo=UTC) == datetime(2024, 1, 1, 3, tzinfo=UTC)
    assert salesforce.tokens_issued >= 1


def test_shopify_orders_follow_page_info_links_without_personal_data(runs):
    (tables, _, _), _, _, shopify = runs
    rows = tables["shopify.orders"]
    assert len(rows) == ORDERS
    assert not any("@example.com" in repr(row) or "Main St" in repr(row) for row in rows)
    assert shopify.refused == 0   # the declared rate keeps under the bucket
