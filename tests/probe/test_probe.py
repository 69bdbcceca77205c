"""`probe URL` end to end against the bundled sample API: the printed YAML loads as a manifest,
extracts every record of the endpoint, and carries no record value."""
from __future__ import annotations

from pathlib import Path

import pytest

from samples.sample_api import ApiConfig, SampleApi
from samples.sample_api import data as sample_data
from shared.config.models import Throttle
from shared.config.project import load_project
from shared.errors import FetchError
from shared.extract.factory import build_extractor
from shared.probe import ProbeOptions, probe_url
from tests.helpers.probe import run_probe

PII_KEY = {"KSPYDER_PII_KEY": "k"}
TOKEN = "probe-secret-token-7f3a"
API_KEY = "probe-secret-key-91c2"

# endpoint, expected pagination options, records path, total records
ENDPOINTS = [
    ("/v1/customers", {"type": "page_number", "total_pages_path": "meta.total_pages", "total_path": "meta.total"},
     "data", 500),
    ("/v1/customers_plain?per_page=25", {"type": "page_number", "param": "page", "size_param": "per_page", "size": 25},
     "data", 500),
    ("/v1/products?limit=30", {"type": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 30,
                               "total_path": "total"}, "items", 200),
    ("/v1/orders?limit=40", {"type": "cursor", "cursor_path": "next_cursor", "param": "cursor"}, "orders", 1000),
    ("/v1/events?top=50", {"type": "next_link", "next_path": "@odata.nextLink"}, "value", 1000),
    ("/v1/events_rel?limit=50", {"type": "next_link", "next_path": "links.next"}, "results", 1000),
    ("/v1/tickets?per_page=30", {"type": "link_header"}, None, 120),
    ("/v1/countries", {"type": "none"}, None, 20),
]


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig()) as server:
        yield server


@pytest.fixture(scope="module")
def secured_api():
    with SampleApi(ApiConfig(token=TOKEN, api_key=API_KEY)) as server:
        yield server


def load_printed(tmp_path: Path, yaml_text: str, env: dict[str, str] | None = None):
    (tmp_path / "connector_models.yml").write_text(yaml_text)
    return load_project(tmp_path, env={**PII_KEY, **(env or {})})


def extract_count(project) -> int:
    [ref] = project.models()
    return len(list(build_extractor(project, ref).records()))


@pytest.mark.parametrize("path, pagination, records, total", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_probe_drafts_a_manifest_that_extracts_everything(api, tmp_path, path, pagination, records, total):
    result = run_probe(api.base_url + path, "--source", "sample")
    assert result.exit_code == 0, result.output
    project = load_printed(tmp_path, result.stdout)
    source = project.sources["sample"]
    [model] = source.models.values()
    found = source.pagination_for(model).model_dump()
    assert {k: found[k] for k in pagination} == pagination
    assert model.records == records
    assert model.path == path.split("?")[0]
    assert extract_count(project) == total
    assert f"pagination {pagination['type']}" in result.stderr


def test_customers_get_pii_rules_and_free_text_scan(api, tmp_path):
    result = run_probe(api.base_url + "/v1/customers")
    assert result.exit_code == 0, result.output
    model = load_printed(tmp_path, result.stdout).sources["api"].models["customers"]
    rules = {name: column.pii.rule.value for name, column in model.columns.items() if column.pii}
    assert {name: rules.get(name) for name in ("email", "phone", "full_name", "iban", "card_number")} == \
        {"email": "hash", "phone": "mask", "full_name": "hash", "iban": "drop", "card_number": "drop"}
    assert model.columns["phone"].pii.keep == 3
    assert model.columns["address_postcode"].pii.kind == "postcode"
    assert model.columns["address_city"].path == "address.city" and model.columns["address_city"].pii is None
    assert model.pii_scan == "redact" and model.columns["notes"].pii is None
    assert model.primary_key == ["id"]
    assert {n: model.columns[n].type.value for n in ("id", "created", "balance", "tags", "status")} == \
        {"id": "integer", "created": "datetime", "balance": "decimal", "tags": "json", "status": "string"}
    assert "# PII? e-mail addresses in 100% of values" in result.stdout
    assert "notes" in result.stderr and "pii_scan: redact" in result.stderr


def test_no_record_value_is_printed(api):
    result = run_probe(api.base_url + "/v1/customers", "--pages", "20")
    assert result.exit_code == 0, result.output
    printed = result.stdout + result.stderr
    for index in range(1, 501):
        customer = sample_data.customer(index)
        values = [customer[k] for k in ("full_name", "email", "phone", "iban", "card_number", "last_ip", "notes")]
        values.append(customer["address"]["street"])
        leaked = [v for v in values if v in printed]
        assert not leaked, f"customer {index}: {len(leaked)} values printed"


def test_bearer_token_from_env_is_referenced_not_printed(secured_api, tmp_path):
    result = run_probe(secured_api.base_url + "/v1/tickets", "--source", "helpdesk",
                       env={"KSPYDER_PROBE_BEARER": TOKEN})
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.stdout + result.stderr
    assert "${HELPDESK_TOKEN}" in result.stdout and "HELPDESK_TOKEN" in result.stderr
    project = load_printed(tmp_path, result.stdout, {"HELPDESK_TOKEN": TOKEN})
    assert project.sources["helpdesk"].auth.type == "bearer"
    assert extract_count(project) == 120


def test_api_key_option_and_secret_query_params(secured_api, tmp_path):
    result = run_probe(secured_api.base_url + "/v1/countries", "--api-key", f"X-API-Key={API_KEY}",
                       "--model", "country_list")
    assert result.exit_code == 0, result.output
    assert API_KEY not in result.stdout + result.stderr
    project = load_printed(tmp_path, result.stdout, {"API_API_KEY": API_KEY})
    assert project.sources["api"].auth.name == "X-API-Key"
    assert list(project.sources["api"].models) == ["country_list"]

    in_query = run_probe(f"{secured_api.base_url}/v1/countries?api_key={API_KEY}")
    assert in_query.exit_code == 0, in_query.output
    assert API_KEY not in in_query.stdout + in_query.stderr
    project = load_printed(tmp_path, in_query.stdout, {"API_API_KEY": API_KEY})
    assert extract_count(project) == 20


def test_params_option_goes_to_model_params(api, tmp_path):
    result = run_probe(api.base_url + "/v1/customers", "--param", "status=active", "--pages", "1")
    assert result.exit_code == 0, result.output
    model = load_printed(tmp_path, result.stdout).sources["api"].models["customers"]
    assert model.params == {"status": "active"}


def test_failed_verification_falls_back_and_says_so(api, tmp_path):
    result = run_probe(api.base_url + "/v1/loop/next_link?limit=5")
    assert result.exit_code == 0, result.output
    assert "next_link (a next-page URL at 'next') failed verification" in result.stderr
    assert "a single page was seen" in result.stderr
    assert load_printed(tmp_path, result.stdout).sources["api"].pagination.type == "none"


def test_secret_query_values_stay_out_of_error_messages(secured_api):
    result = run_probe(f"{secured_api.base_url}/v1/status/404?api_key={API_KEY}")
    assert result.exit_code == 1 and "HTTP 404" in result.stderr
    assert API_KEY not in result.stderr


@pytest.mark.parametrize("path, message", [
    ("/v1/status/404", "HTTP 404"),
    ("/v1/malformed", "not valid JSON"),
    ("/v1/empty", "no records"),
    ("/v1/missing_records", "is empty"),
])
def test_errors_end_with_one_line_and_exit_1(api, path, message):
    result = run_probe(api.base_url + path)
    assert result.exit_code == 1
    assert message in result.stderr and result.stderr.startswith("error: ")
    assert result.stdout == ""


def test_bad_options_are_usage_errors(api):
    assert run_probe(api.base_url + "/v1/countries", "--header", "no-colon").exit_code == 2
    assert run_probe("ftp://example.com/x").exit_code == 2
    assert run_probe(api.base_url + "/v1/countries", "--source", "1bad").exit_code == 1


def test_unreachable_url_raises_fetch_error():
    with SampleApi(ApiConfig()) as server:
        url = server.base_url + "/v1/countries"
    with pytest.raises(FetchError, match="no response"):
        probe_url(ProbeOptions(url, throttle=Throttle(max_retries=0, timeout=2)))
