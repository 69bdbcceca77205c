"""The probe's guessing rules over plain Python data: no server, no HTTP."""
from __future__ import annotations

import pytest
import yaml

from shared.config.models import NoPagination
from shared.probe.detect_pagination import Candidate, FirstPage, new_records, total_path
from shared.probe.detect_signals import header_params, more_flag
from shared.probe.guesses import candidates
from shared.probe.infer_columns import ONLY_NULLS, TypeGuess, infer_columns, infer_type, primary_key
from shared.probe.naming import identifier, model_name, singular, source_name, unique
from shared.probe.parents import Relation, relate
from shared.probe.pii_hints import FreeTextPii, PiiHint, column_hint, name_hint, typed_for_rule, value_hint
from shared.probe.probe import ColumnDraft, ProbeResult
from shared.probe.record_path import find_records
from shared.probe.render import flow, scalar
from shared.probe.target import TargetError, build_target, parse_pairs


# ---------------------------------------------------------------- types
@pytest.mark.parametrize("values, expected", [
    ([True, False, None], TypeGuess("boolean")),
    ([1, 2, 3], TypeGuess("integer")),
    ([1, 2**31], TypeGuess("bigint")),
    ([-2**31, 0], TypeGuess("integer")),
    ([1, 2.5], TypeGuess("float")),
    (["1234.56", "0.10", "-3.00"], TypeGuess("decimal")),
    (["1234.5", "0.10"], TypeGuess("string", 50)),
    (["2024-01-31", "2023-12-01"], TypeGuess("date")),
    (["2024-02-30"], TypeGuess("string", 50)),
    (["2024-01-31T10:00:00Z", "2024-01-31 10:00:00.123+02:00", "2024-01-31"], TypeGuess("datetime")),
    (["2024-01-31", ""], TypeGuess("string", 50)),
    (["x" * 50], TypeGuess("string", 50)),
    (["x" * 51], TypeGuess("string", 100)),
    (["x" * 101], TypeGuess("string", 255)),
    (["x" * 256], TypeGuess("text")),
    (["two\nlines"], TypeGuess("text")),
    ([{"a": 1}, None], TypeGuess("json")),
    ([[1, 2]], TypeGuess("json")),
    ([None, None], TypeGuess("string", note=ONLY_NULLS)),
    ([], TypeGuess("string", note=ONLY_NULLS)),
    ([1, "a"], TypeGuess("string", 50)),
    ([True, 1], TypeGuess("string", 50)),
])
def test_infer_type(values, expected):
    assert infer_type(values) == expected


def test_nested_objects_flatten_one_level_and_keep_paths():
    records = [{"id": 1, "createdAt": "2024-01-01", "address": {"city": "X", "geo": {"lat": 1.0}, "lines": ["a"]},
                "@odata.etag": "W/1", "2fa": True},
               {"id": 2, "createdAt": None, "address": None, "extra": None}]
    columns, skipped = infer_columns(records)
    shapes = {c.name: (c.path, c.type) for c in columns}
    assert shapes == {"id": (None, "integer"), "created_at": ("createdAt", "date"),
                      "address_city": ("address.city", "string"), "address_geo": ("address.geo", "json"),
                      "address_lines": ("address.lines", "json"), "column_2fa": ("2fa", "boolean"),
                      "extra": (None, "string")}
    assert skipped == ["@odata.etag"]
    assert [c for c in columns if c.name == "address_city"][0].values(records) == ["X", None]


# ---------------------------------------------------------------- names
@pytest.mark.parametrize("key, expected", [
    ("id", "id"), ("createdAt", "created_at"), ("HTTPStatus", "http_status"), ("userID", "user_id"),
    ("first-name", "first_name"), ("@odata.etag", "odata_etag"), ("a  b", "a_b"), ("2fa", "column_2fa"),
    ("___", "column"), ("Ünïcode", "n_code"), ("x" * 80, "x" * 63), ("already_snake", "already_snake"),
])
def test_identifier(key, expected):
    assert identifier(key) == expected


def test_unique_names_and_defaults():
    taken: set[str] = set()
    assert [unique("a", taken), unique("a", taken), unique("a", taken)] == ["a", "a_2", "a_3"]
    assert source_name("api.github.com") == "github"
    assert source_name("127.0.0.1") == "api"
    assert source_name("my-shop.example.com") == "my_shop"
    assert source_name("localhost") == "localhost"
    assert model_name("/v1/customers/") == "customers"
    assert model_name("/api/v2") == "api" and model_name("/") == "records"
    assert model_name("/users/123/orderItems") == "order_items"
    assert [singular(n) for n in ("orders", "countries", "boxes", "status", "data")] == \
        ["order", "country", "box", "statu", "data"]


# ---------------------------------------------------------------- record path
@pytest.mark.parametrize("body, path", [
    ([{"a": 1}], None),
    ({"data": [{"a": 1}], "meta": {"total": 1}}, "data"),
    ({"tags": ["x", "y", "z"], "items": [{"a": 1}]}, "items"),
    ({"result": {"items": [{"a": 1}], "errors": []}}, "result.items"),
    ({"links": [{"rel": "x"}] * 2, "results": [{"a": 1}]}, "results"),
    ({"foo": [{"a": 1}] * 3, "bar": [{"a": 1}]}, "foo"),
    ({"data": [], "warnings": []}, "data"),
    ({"a": {"b": {"c": {"d": [{"x": 1}]}}}, "e": [1]}, "e"),
])
def test_record_path(body, path):
    assert find_records(body).path == path


def test_no_list_in_body():
    assert find_records({"status": "ok"}) is None


# ---------------------------------------------------------------- primary key
def test_primary_key_choice():
    def key(records, model="orders"):
        return primary_key(infer_columns(records)[0], records, model)
    assert key([{"name": "a", "id": 1}, {"name": "b", "id": 2}]) == "id"
    assert key([{"order_id": "A"}, {"order_id": "B"}]) == "order_id"
    assert key([{"ref_id": 1, "x": 1}, {"ref_id": 2, "x": 1}]) == "ref_id"   # first and *_id
    assert key([{"x": 1, "ref_id": 1}, {"x": 2, "ref_id": 2}]) is None        # *_id but not first
    assert key([{"id": 1}, {"id": 1}]) is None                                # not unique
    assert key([{"id": 1}, {"id": None}, {"sku": "a"}]) is None               # nulls
    assert key([{"code": "AT"}, {"code": "BE"}], "countries") == "code"


# ---------------------------------------------------------------- PII
@pytest.mark.parametrize("name, column_type, rule", [
    ("email", "string", "hash"), ("contact_email", "string", "hash"), ("e_mail", "string", "hash"),
    ("phone", "string", {"rule": "mask", "keep": 3}), ("mobile_number", "string", {"rule": "mask", "keep": 3}),
    ("fax", "string", {"rule": "mask", "keep": 3}),
    ("first_name", "string", "hash"), ("lastname", "string", "hash"), ("full_name", "string", "hash"),
    ("surname", "string", "hash"), ("name", "string", None),
    ("street", "string", "drop"), ("billing_address", "string", "drop"), ("address_city", "string", None),
    ("address_postcode", "string", {"rule": "generalize", "kind": "postcode", "keep": 3}),
    ("zip", "string", {"rule": "generalize", "kind": "postcode", "keep": 3}),
    ("last_ip", "string", "drop"), ("ip_address", "string", "drop"), ("zipped", "string", None),
    ("iban", "string", "drop"), ("account_number", "integer", "drop"),
    ("card_number", "string", "drop"), ("pan", "string", "drop"), ("card_type", "string", None),
    ("ssn", "string", "drop"), ("national_id", "string", "drop"),
    ("birth_date", "date", {"rule": "generalize", "kind": "date"}),
    ("dob", "string", {"rule": "generalize", "kind": "date"}),
    ("birth_year", "integer", None), ("email_verified_at", "datetime", None),
    ("password", "string", "drop"), ("api_key", "string", "drop"), ("refresh_token", "string", "drop"),
    ("is_mobile", "boolean", None), ("status", "string", None),
])
def test_name_hints(name, column_type, rule):
    hint = name_hint(name, column_type)
    assert (hint.rule if hint else None) == rule


def test_value_hints():
    emails = [f"user{i}@example.com" for i in range(9)] + ["n/a"]
    hint = value_hint("contact", emails)
    assert isinstance(hint, PiiHint) and hint.rule == "hash" and hint.reason == "e-mail addresses in 90% of values"
    ips = ["192.0.2.1", "2001:db8::1", "198.51.100.7"]
    assert value_hint("origin", ips).rule == "drop"
    notes = ["Call back on +44 20 7946 0123 please.", "All good.", "Nothing to add.", "Order shipped."]
    found = value_hint("notes", notes)
    assert isinstance(found, FreeTextPii) and found.kinds == ("phone",) and found.share == 0.25
    assert value_hint("subject", ["Refund not received", "Order ORD-2024-000123 placed on 2024-01-02"]) is None
    assert value_hint("empty", [None, "", "  "]) is None


def test_values_beat_names_and_rules_fit_types():
    phones = ["+44 20 7946 0123", "+49 30 23125 456"]
    assert column_hint("email", "string", phones).rule == {"rule": "mask", "keep": 3}
    assert column_hint("created", "datetime", ["2024-01-01T00:00:00Z"]) is None
    assert typed_for_rule("hash", "string", 50) == ("string", 100)
    assert typed_for_rule("hash", "integer", None) == ("string", 100)
    assert typed_for_rule({"rule": "mask", "keep": 3}, "bigint", None) == ("string", 50)
    assert typed_for_rule("drop", "integer", None) == ("integer", None)


# ---------------------------------------------------------------- pagination from one page
def first(body, params=None, headers=None, path="data"):
    found = find_records(body)
    return FirstPage(body, headers or {}, found.records, path if found.path else None, params or {})


def guesses(page, fetch=lambda params: None):
    return [(c.type, c.config.model_dump(exclude_unset=True, exclude_none=True)) for c in candidates(page, fetch)]


RECORDS = [{"id": i} for i in range(10)]
NEXT = [{"id": i} for i in range(10, 20)]


def test_next_link_paths_known_and_discovered():
    page = first({"data": RECORDS, "_links": {"next": {"href": "/x?page=2"}}})
    assert guesses(page)[0] == ("next_link", {"type": "next_link", "next_path": "_links.next.href"})
    page = first({"data": RECORDS, "paging": {"nextPageLink": "?after=9"}})
    assert guesses(page)[0] == ("next_link", {"type": "next_link", "next_path": "paging.nextPageLink"})
    page = first({"data": RECORDS, "links": {"next": None}})
    assert guesses(page)[0][0] == "none"


def test_cursor_param_is_discovered_by_asking():
    asked = []

    def fetch(params):
        asked.append(dict(params))
        return NEXT if params.get("page_token") == "abc" else RECORDS
    page = first({"data": RECORDS, "meta": {"next_cursor": "abc"}}, {"limit": 10})
    assert guesses(page, fetch)[0] == ("cursor", {"type": "cursor", "cursor_path": "meta.next_cursor",
                                                  "param": "page_token"})
    assert [list(p) for p in asked[:3]] == [["limit", "cursor"], ["limit", "after"], ["limit", "page_token"]]


def test_page_number_offset_and_link_header_hints():
    link = {"Link": '<https://x/y?page=9>; rel="last", <https://x/y?page=2>; rel="next"'}
    assert guesses(first(RECORDS, headers=link))[0][0] == "link_header"
    page = first({"data": RECORDS, "totalPages": 5, "totalCount": 50}, {"pageSize": 10, "page": 1})
    assert guesses(page)[0][1] == {"type": "page_number", "param": "page", "start": 1, "size_param": "pageSize",
                                   "size": 10, "total_pages_path": "totalPages", "total_path": "totalCount"}
    page = first({"data": RECORDS}, {"skip": 20, "top": 10})
    assert guesses(page)[0][1] == {"type": "offset", "offset_param": "skip", "limit_param": "top", "limit": 10,
                                   "start": 20}


def test_page_number_and_offset_found_by_asking():
    def pages(params):
        return {None: RECORDS, 1: RECORDS, 2: NEXT}.get(params.get("page"), [])
    assert guesses(first({"data": RECORDS}), pages)[0][1]["type"] == "page_number"

    def offsets(params):
        return NEXT if params.get("skip") == 10 and params.get("limit") == 10 else RECORDS
    assert guesses(first({"data": RECORDS, "count": 95}), offsets)[0][1] == {
        "type": "offset", "offset_param": "skip", "limit_param": "limit", "limit": 10, "start": 0,
        "total_path": "count"}


def test_totals_and_capped_page_sizes():
    assert total_path(first({"data": RECORDS, "count": 10})) is None      # the page's own count
    assert total_path(first({"data": RECORDS, "@odata.count": 10})) == "@odata.count"
    capped = first({"data": RECORDS, "total": 100}, {"limit": 500})
    offset = [g for g in guesses(capped, lambda p: NEXT if "offset" in p else RECORDS) if g[0] == "offset"]
    assert offset[0][1]["limit"] == 10   # the API served 10 of the 500 asked: every page will be 10


def test_new_records():
    assert new_records(NEXT, RECORDS)
    assert not new_records(RECORDS, RECORDS)
    assert not new_records([], RECORDS) and not new_records(None, RECORDS)


# ---------------------------------------------------------------- target and rendering
def test_target_keeps_secrets_out_of_the_manifest():
    target = build_target("https://user:pw@api.shop.io:8443/v2/orders?status=open&api_key=s3cr3t&limit=007",
                          "shop", {"limit": "50"}, {"X-Trace": "1", "Authorization": "Bearer t0k"}, "bt", None)
    assert target.base_url == "https://api.shop.io:8443" and target.path == "/v2/orders"
    assert target.params == {"status": "open", "api_key": "s3cr3t", "limit": 50}
    assert target.shown_params == {"status": "open", "api_key": "${SHOP_API_KEY}", "limit": 50}
    assert target.shown_headers == {"X-Trace": "1", "Authorization": "${SHOP_AUTHORIZATION}"}
    assert target.shown_auth == {"type": "bearer", "token": "${SHOP_TOKEN}"}
    assert target.env_vars == ("SHOP_API_KEY", "SHOP_AUTHORIZATION", "SHOP_TOKEN")
    assert target.redact("GET https://api.shop.io/v2/orders?api_key=s3cr3t failed") == \
        "GET https://api.shop.io/v2/orders?api_key=*** failed"
    with pytest.raises(TargetError):
        build_target("https://x.io/a", "x", {}, {}, "bt", ("X-Key", "v"))
    assert parse_pairs(["a=b=c", " k = v "], "=", "--param") == {"a": "b=c", "k": "v"}
    with pytest.raises(TargetError, match="NAME:VALUE"):
        parse_pairs(["no colon"], ":", "--header")


@pytest.mark.parametrize("value", ["plain", "@odata.nextLink", "yes", "No", "null", "25", "1.5", "0x1F", "12:30",
                                   "2024-01-01", "a: b", "#x", "it's", "${TOKEN}", "/v1/x", "http://h:8/p", "",
                                   "tab\there", "-x", "[a]", "{a}", "1_000", 25, True, None, 1.5])
def test_scalars_read_back_unchanged(value):
    assert yaml.safe_load(f"k: {scalar(value)}") == {"k": value}
    assert yaml.safe_load(f"k: {flow({'a': value, 'b': [value]})}") == {"k": {"a": value, "b": [value]}}


# ---------------------------------------------------------------- header cursors, flags, last-record cursors
def test_a_cursor_header_is_tried_back_and_the_flag_attached():
    asked = []

    def fetch(params):
        asked.append(dict(params))
        return NEXT if params.get("cursor") == "c2" else RECORDS
    headers = {"X-Request-Id": "r1", "X-RateLimit-Remaining": "9", "X-Next-Cursor": "c2"}
    page = first({"data": RECORDS, "meta": {"has_more": True}}, {"limit": 10}, headers)
    assert guesses(page, fetch)[0] == ("header_cursor", {"type": "header_cursor", "header": "X-Next-Cursor",
                                                         "param": "cursor", "has_more_path": "meta.has_more"})
    assert asked[0] == {"limit": 10, "cursor": "c2"}
    assert not any(value in ("r1", "9") for params in asked for value in params.values())   # not id or limit


def test_header_params_are_the_usual_names_then_the_headers_own():
    assert header_params("X-Next-Page-Token")[:2] == ["cursor", "after"]
    assert header_params("X-Next-Page-Token").count("page_token") == 1   # a usual name already
    assert "resume_marker" in header_params("X-Resume-Marker") and "resumeMarker" in header_params("X-Resume-Marker")


def test_last_record_cursor_needs_a_unique_id_and_a_list_only_in_a_body():
    def after(params):
        return NEXT if params.get("after") == 9 else RECORDS
    assert guesses(first({"data": RECORDS, "hasMore": True}), after)[0] == (
        "cursor", {"type": "cursor", "cursor_path": "data.-1.id", "param": "after", "has_more_path": "hasMore"})
    repeated = [{"id": 1, "n": i} for i in range(10)]
    assert guesses(first({"data": repeated}), lambda params: NEXT)[0][0] != "cursor"   # ids repeat: no cursor
    hits = [{"_id": f"h{i}", "sort": [i, f"h{i}"]} for i in range(10)]

    def search_after(params):
        return NEXT if params.get("search_after") == [9, "h9"] else hits
    in_query = first({"hits": {"hits": hits}}, {"size": 10}, path="hits.hits")
    assert "search_after" not in str(guesses(in_query, search_after))
    in_body = FirstPage(in_query.body, {}, hits, "hits.hits", {"size": 10}, "body")
    assert guesses(in_body, search_after)[0] == ("cursor", {"type": "cursor", "cursor_path": "hits.hits.-1.sort",
                                                            "param": "search_after", "location": "body"})


def test_more_flags_known_nested_and_not_a_non_boolean():
    assert more_flag(first({"data": RECORDS, "pageInfo": {"hasNextPage": True}})) == "pageInfo.hasNextPage"
    assert more_flag(first({"data": {"items": RECORDS, "paging": {"is_more": 1, "moreItems": False}}},
                           path="data.items")) == "data.paging.moreItems"
    assert more_flag(first({"data": RECORDS, "has_more": "yes"})) is None


def test_paging_goes_in_the_body_when_the_body_holds_paging_fields():
    def target(url, body):
        return build_target(url, "s", {}, {}, None, None, "POST", body)
    assert target("https://x.io/q", {"page_size": 10, "filter": {}}).location == "body"
    assert target("https://x.io/q?page=2", {"filter": {}}).location == "query"
    assert target("https://x.io/q", {"filter": {}}).location == "body"
    assert build_target("https://x.io/q", "s", {}, {}, None, None, "POST").location == "query"
    shown = target("https://x.io/q", {"auth": {"api_key": "s3cr3t"}, "size": 5}).shown_json
    assert shown == {"auth": {"api_key": "${S_API_KEY}"}, "size": 5}


# ---------------------------------------------------------------- parent proposals
def drafted_result(url, columns, records, key="id"):
    target = build_target(url, "s", {}, {}, None, None)
    return ProbeResult("s", "m", target, None, Candidate(NoPagination(type="none"), "-"),
                       [ColumnDraft(name, kind, path) for name, kind, path in columns], key, None, None, 1,
                       len(records), records)


def test_a_child_path_is_templated_from_the_parent_record_matching_most_segments():
    users = drafted_result("https://x.io/users", [("id", "integer", None), ("login", "string", None),
                                                  ("team_slug", "string", "team.slug"), ("tags", "json", None)],
                           [{"id": 7, "login": "ann", "team": {"slug": "core"}, "tags": ["ann"]},
                            {"id": 8, "login": "bob", "team": {"slug": "ann"}, "tags": []}])
    child = drafted_result("https://x.io/teams/core/users/ann/events", [("id", "integer", None)], [{"id": 1}])
    assert relate(users, "users", child) == Relation("users", "/teams/{parent.team_slug}/users/{parent.login}/events",
                                                     ("team_slug", "login"), False)
    by_key = drafted_result("https://x.io/users/8/ann", [("id", "integer", None)], [{"id": 1}])
    assert relate(users, "users", by_key).path == "/users/{parent.id}/ann"   # the last segment names a collection
    assert relate(users, "users", drafted_result("https://x.io/teams/web/x", [("id", "integer", None)],
                                                 [{"id": 1}])) is None
