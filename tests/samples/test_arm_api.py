"""The ARM-shaped sample API: value + nextLink paging, api-version, bearer auth, ARM error bodies."""
from __future__ import annotations

import pytest
import requests

from samples.arm_api import ArmApi, ArmConfig, costs, estate
from samples.arm_api.handlers import decode_skiptoken, encode_skiptoken, handle

SUB = estate.SUBSCRIPTION
TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LISTS = {
    f"/subscriptions/{SUB}/providers/Microsoft.Network/virtualNetworks": ("2023-09-01", 3),
    f"/subscriptions/{SUB}/providers/Microsoft.Network/routeTables": ("2023-09-01", 5),
    f"/subscriptions/{SUB}/providers/Microsoft.Network/networkInterfaces": ("2023-09-01", 8),
    f"/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines": ("2024-03-01", 7),
    f"/subscriptions/{SUB}/providers/Microsoft.Consumption/usageDetails": ("2023-05-01", 1050),
}


@pytest.fixture(scope="module")
def arm():
    with ArmApi(ArmConfig(token=TOKEN, page_size=2, cost_page_size=250)) as api:
        yield api


def follow(url: str, params: dict | None = None) -> tuple[list[dict], int]:
    items, pages = [], 0
    while url:
        response = requests.get(url, params=params, headers=AUTH, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["value"]
        pages += 1
        url, params = body.get("nextLink"), None
    return items, pages


@pytest.mark.parametrize("path", list(LISTS))
def test_every_collection_spans_several_pages_and_lists_each_item_once(arm, path):
    version, count = LISTS[path]
    items, pages = follow(arm.base_url + path, {"api-version": version})
    assert len(items) == count
    assert len({item["id"] for item in items}) == count
    assert pages >= 2


def test_next_link_is_absolute_and_carries_api_version_and_skiptoken(arm):
    path = next(iter(LISTS))
    body = requests.get(arm.base_url + path, params={"api-version": "2023-09-01"}, headers=AUTH, timeout=10).json()
    assert body["nextLink"].startswith(arm.base_url + path + "?")
    assert "api-version=2023-09-01" in body["nextLink"] and "%24skiptoken=" in body["nextLink"]
    assert set(body) == {"value", "nextLink"}


def test_top_sets_the_page_size_and_is_kept_in_next_link(arm):
    path = f"/subscriptions/{SUB}/providers/Microsoft.Consumption/usageDetails"
    items, pages = follow(arm.base_url + path, {"api-version": "2023-05-01", "$top": "500"})
    assert (len(items), pages) == (1050, 3)


@pytest.mark.parametrize("params, code, fragment", [
    ({}, "MissingApiVersionParameter", "api-version query parameter"),
    ({"api-version": "2019-01-01"}, "InvalidApiVersionParameter", "'2023-09-01, 2023-11-01'"),
    ({"api-version": "2023-09-01", "$skiptoken": "garbage!"}, "InvalidQueryParameterValue", "$skiptoken is invalid"),
    ({"api-version": "2023-09-01", "$top": "0"}, "InvalidQueryParameterValue", "between 1 and 1000"),
])
def test_bad_query_gets_400_with_an_arm_error_body(arm, params, code, fragment):
    response = requests.get(arm.base_url + f"/subscriptions/{SUB}/providers/Microsoft.Network/routeTables",
                            params=params, headers=AUTH, timeout=10)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and fragment in error["message"]


@pytest.mark.parametrize("headers, code", [({}, "AuthenticationFailed"),
                                           ({"Authorization": "Bearer wrong"}, "InvalidAuthenticationToken"),
                                           ({"Authorization": f"Basic {TOKEN}"}, "InvalidAuthenticationToken")])
def test_missing_or_wrong_token_gets_401_before_anything_else(arm, headers, code):
    response = requests.get(arm.base_url + f"/subscriptions/{SUB}/providers/Microsoft.Network/routeTables",
                            headers=headers, timeout=10)  # no api-version either: auth is checked first
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


@pytest.mark.parametrize("path, code", [
    ("/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Network/routeTables",
     "SubscriptionNotFound"),
    (f"/subscriptions/{SUB}/providers/Microsoft.Network/loadBalancers", "InvalidResourceType"),
    ("/nowhere", "InvalidResourceType"),
])
def test_unknown_paths_get_404(arm, path, code):
    response = requests.get(arm.base_url + path, params={"api-version": "2023-09-01"}, headers=AUTH, timeout=10)
    assert response.status_code == 404 and response.json()["error"]["code"] == code


def test_namespace_and_type_are_case_insensitive_like_arm():
    response = handle("GET", f"/subscriptions/{SUB}/providers/microsoft.network/ROUTETABLES", "api-version=2023-09-01",
                      "", "h", ArmConfig(token=None))
    assert response.status == 200


def test_skiptoken_round_trips_and_is_opaque():
    assert decode_skiptoken(encode_skiptoken(250)) == 250
    assert "250" not in encode_skiptoken(250)


def test_data_is_deterministic_and_seeded():
    assert costs.usage_details() == costs.usage_details()
    assert costs.usage_details(seed=1) != costs.usage_details(seed=2)
    assert estate.virtual_machines() == estate.virtual_machines()


def test_references_between_resources_resolve():
    subnets = {s["id"]: s for v in estate.virtual_networks() for s in v["properties"]["subnets"]}
    tables = {t["id"] for t in estate.route_tables()}
    nics = {n["id"]: n for n in estate.network_interfaces()}
    assert {s["properties"]["routeTable"]["id"] for s in subnets.values() if "routeTable" in s["properties"]} <= tables
    for vm in estate.virtual_machines():
        for ref in vm["properties"]["networkProfile"]["networkInterfaces"]:
            nic = nics[ref["id"]]
            assert nic["properties"]["virtualMachine"]["id"] == vm["id"]
            assert nic["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"] in subnets


def test_cost_amounts_are_exact_quarters():
    amounts = [row["properties"]["costInBillingCurrency"] for row in costs.usage_details()]
    assert all((amount * 4).is_integer() for amount in amounts)
    assert sum(amounts) == 12268.75


def test_writes_are_refused_with_405_and_allow(arm):
    response = requests.post(arm.base_url + f"/subscriptions/{SUB}/providers/Microsoft.Network/routeTables",
                             params={"api-version": "2023-09-01"}, headers=AUTH, data=b"{}", timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.json()["error"]["code"] == "MethodNotAllowed"


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="page_size and cost_page_size must be >= 1"):
        ArmConfig(page_size=0)
