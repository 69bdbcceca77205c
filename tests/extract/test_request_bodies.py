"""Request bodies and the new paging signals (issue 14 §1-§2) at the unit level: what goes on the wire,
what a paginator writes into a body and when it stops, what its saved state brings back, and which
failures of a POST are sent again."""
from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pydantic import TypeAdapter

from shared.config.models import ApiModel, Pagination, Throttle
from shared.errors import FetchError, PaginationError
from shared.extract.graphql import GraphQLError, check_graphql
from shared.extract.http_client import HttpClient
from shared.extract.paginators import Paginator, create_paginator, resume_paginator
from shared.extract.request_body import body_arguments, model_request
from shared.extract.types import PageRequest, PageResponse
from tests.helpers.http_stub import FakeTime, Reply, StubServer

URL = "https://api.test/v1/search"
PAGINATION = TypeAdapter(Pagination)


def paginator(**fields: Any) -> Paginator:
    return create_paginator(PAGINATION.validate_python(fields))


def model(**fields: Any) -> ApiModel:
    return ApiModel.model_validate({"path": "/x", "columns": {"id": {"type": "integer"}}, **fields})


def response(body: Any, headers: dict[str, str] | None = None) -> PageResponse:
    return PageResponse(URL, 200, headers or {}, body=body, content=json.dumps(body).encode())


def wire(request: PageRequest) -> dict[str, Any]:
    return body_arguments(request.body)


def walk(p: Paginator, pages: list[tuple[Any, dict[str, str]]], first: PageRequest) -> list[PageRequest]:
    """Feed `pages` (body, headers) in order, as the page step does; the requests made, copied."""
    request = first
    p.init_request(request)
    made = []
    for body, headers in pages:
        made.append(request.copy())
        records = body.get("data", body.get("results", [])) if isinstance(body, dict) else body
        p.update_state(response(body, headers), records)
        if not p.has_next:
            return made
        p.update_request(request)
    raise AssertionError("the paginator asked for more pages than the API has")


# ---------------------------------------------------------------- the request a model declares
def test_json_body_is_sent_with_paging_values_written_in():
    first = model_request(URL, model(method="POST", json={"filter": {"status": "open"}, "page_size": 2}))
    p = paginator(type="cursor", cursor_path="next_cursor", param="start_cursor", location="body")
    made = walk(p, [({"results": [1, 2], "next_cursor": "c2"}, {}), ({"results": [3], "next_cursor": None}, {})],
                first)
    assert [r.method for r in made] == ["POST", "POST"]
    assert wire(made[0]) == {"json": {"filter": {"status": "open"}, "page_size": 2}}
    assert wire(made[1]) == {"json": {"filter": {"status": "open"}, "page_size": 2, "start_cursor": "c2"}}
    assert made[1].params == {}


def test_graphql_writes_paging_values_into_its_variables():
    first = model_request(URL, model(graphql={"query": "query($after: String) { x }", "variables": {"n": 2}}))
    assert first.method == "POST" and not first.idempotent
    first.paging("body")["after"] = "Y3Vy"
    assert wire(first) == {"json": {"query": "query($after: String) { x }", "variables": {"n": 2, "after": "Y3Vy"}}}


def test_form_body_and_dotted_paging_paths():
    form = model_request(URL, model(method="PUT", form={"kind": "all"}, idempotent=True))
    form.paging("body")["page"] = 3
    assert wire(form) == {"data": {"kind": "all", "page": 3}} and form.idempotent
    nested = model_request(URL, model(method="POST"))
    nested.paging("body").update({"page.number": 2, "page.size": 50})
    assert wire(nested) == {"json": {"page": {"number": 2, "size": 50}}}


def test_a_paging_path_through_a_manifest_value_that_is_not_an_object_fails():
    request = model_request(URL, model(method="POST", json={"page": 1}))
    request.paging("body")["page.number"] = 2
    with pytest.raises(PaginationError, match="body path 'page.number': 'page' is not an object"):
        wire(request)


@pytest.mark.parametrize("kind, location", [("page_number", "body"), ("offset", "body")])
def test_positional_paging_in_the_body_plans_pages_up_front(kind, location):
    first = model_request(URL, model(method="POST", json={"q": 1}))
    p = paginator(type=kind, location=location, **({"size": 10, "size_param": "size"} if kind == "page_number"
                                                     else {"offset_param": "from", "limit_param": "size",
                                                           "limit": 10}))
    p.init_request(first)
    third = p.request_for_page(first, 2)
    expected = {"page": 3, "size": 10} if kind == "page_number" else {"from": 20, "size": 10}
    assert wire(third) == {"json": {"q": 1, **expected}} and third.params == {}
    assert wire(first) == {"json": {"q": 1, **({"page": 1, "size": 10} if kind == "page_number"
                                                else {"from": 0, "size": 10})}}


# ---------------------------------------------------------------- last-record and list cursors
def test_last_record_cursor_and_has_more_stop_without_an_empty_page():
    """Stripe: `starting_after` = the last object's id; `has_more: false` ends the list."""
    p = paginator(type="cursor", cursor_path="data.-1.id", param="starting_after", has_more_path="has_more")
    made = walk(p, [({"data": [{"id": "a"}, {"id": "b"}], "has_more": True}, {}),
                    ({"data": [{"id": "c"}], "has_more": False}, {})], PageRequest(URL, {"limit": 2}))
    assert [r.params for r in made] == [{"limit": 2}, {"limit": 2, "starting_after": "b"}]


def test_list_cursor_in_the_body_round_trips_through_the_saved_state():
    """Elasticsearch: `search_after` = the last hit's `sort` array, sent back in the body."""
    config = PAGINATION.validate_python({"type": "cursor", "cursor_path": "hits.hits.-1.sort",
                                         "param": "search_after", "in": "body"})
    p = create_paginator(config)
    first = model_request(URL, model(method="POST", json={"size": 2, "sort": [{"ts": "asc"}]}))
    p.init_request(first)
    p.update_state(response({"hits": {"hits": [{"sort": [1, "a"]}, {"sort": [2, "b"]}]}}), [1, 2])
    state = json.loads(json.dumps(p.state()))
    resumed = resume_paginator(config, state)
    request = model_request(URL, model(method="POST", json={"size": 2, "sort": [{"ts": "asc"}]}))
    resumed.update_request(request)
    assert wire(request)["json"]["search_after"] == [2, "b"]
    with pytest.raises(PaginationError, match="repeated at page 2"):
        resumed.update_state(response({"hits": {"hits": [{"sort": [2, "b"]}]}}), [1])


def test_a_list_cursor_for_the_query_is_refused():
    p = paginator(type="cursor", cursor_path="next")
    p.init_request(PageRequest(URL))
    with pytest.raises(PaginationError, match="is a list, expected a string or a number: a list cursor can only be "
                                              r"sent in the body \(in: body\)"):
        p.update_state(response({"data": [1], "next": [1, 2]}), [1])


def test_a_saved_list_cursor_is_refused_for_a_query_cursor():
    config = PAGINATION.validate_python({"type": "cursor", "cursor_path": "next"})
    state = {**create_paginator(config).state(), "cursor": [1, 2]}
    with pytest.raises(ValueError, match="cursor: expected a string or a number"):
        resume_paginator(config, state)


# ---------------------------------------------------------------- header cursors and has_more
def test_header_cursor_is_read_from_the_header_and_sent_back():
    p = paginator(type="header_cursor", header="X-Next-Cursor", param="after")
    made = walk(p, [({"data": [1]}, {"X-Next-Cursor": "t2"}), ({"data": [2]}, {"x-next-cursor": "t3"}),
                    ({"data": [3]}, {})], PageRequest(URL))
    assert [r.params for r in made] == [{}, {"after": "t2"}, {"after": "t3"}]


def test_an_empty_page_with_a_cursor_goes_on_unless_the_manifest_says_it_ends():
    """Some APIs hand out an empty page before the last one, a next cursor with it; others keep
    handing out cursors after the end."""
    pages = [({"data": [1], "next": "b"}, {}), ({"data": [], "next": "c"}, {}), ({"data": [2], "next": None}, {})]
    assert len(walk(paginator(type="cursor", cursor_path="next"), pages, PageRequest(URL))) == 3
    stop = paginator(type="cursor", cursor_path="next", stop_after_empty_page=True, has_more_path="more")
    pages[1][0]["more"] = True
    assert len(walk(stop, pages, PageRequest(URL))) == 2


def test_header_cursor_repeated_is_a_loop():
    p = paginator(type="header_cursor", header="X-Next-Cursor")
    with pytest.raises(PaginationError, match="cursor 't2' repeated at page 2"):
        walk(p, [({"data": [1]}, {"X-Next-Cursor": "t2"}), ({"data": [2]}, {"X-Next-Cursor": "t2"})],
             PageRequest(URL))


def test_has_more_true_without_a_cursor_fails():
    p = paginator(type="cursor", cursor_path="next", has_more_path="has_more")
    p.init_request(PageRequest(URL))
    with pytest.raises(PaginationError, match="more pages follow .*has_more_path 'has_more'.* no cursor at 'next'"):
        p.update_state(response({"data": [1], "has_more": True}), [1])


def test_has_more_keeps_a_short_page_from_ending_page_number_paging():
    """A server capping pages below the asked size: its `has_more` says a short page is not the last."""
    p = paginator(type="page_number", size=100, size_param="per_page", has_more_path="meta.has_more")
    made = walk(p, [({"data": [1] * 40, "meta": {"has_more": True}}, {}),
                    ({"data": [1] * 40, "meta": {"has_more": "true"}}, {}),
                    ({"data": [1] * 5, "meta": {"has_more": False}}, {})], PageRequest(URL))
    assert [r.params["page"] for r in made] == [1, 2, 3]


def test_has_more_false_stops_offset_paging_on_a_full_page():
    p = paginator(type="offset", limit=2, has_more_path="has_more")
    made = walk(p, [({"data": [1, 2], "has_more": True}, {}), ({"data": [3, 4], "has_more": False}, {})],
                PageRequest(URL))
    assert len(made) == 2


def test_has_more_on_an_empty_page_ends_the_run():
    p = paginator(type="page_number", has_more_path="has_more")
    assert len(walk(p, [({"data": [1], "has_more": True}, {}), ({"data": [], "has_more": True}, {})],
                    PageRequest(URL))) == 2


def test_has_more_that_is_not_a_flag_fails():
    p = paginator(type="page_number", has_more_path="has_more")
    p.init_request(PageRequest(URL))
    with pytest.raises(PaginationError, match="has_more_path 'has_more' on page 1 .* is a int, expected true or false"):
        p.update_state(response({"data": [1], "has_more": 1}), [1])


# ---------------------------------------------------------------- GraphQL errors
def test_graphql_errors_in_a_200_fail_with_scrubbed_messages():
    body = {"data": None, "errors": [{"message": "Could not resolve user jane.doe@example.com"},
                                     {"message": "second"}, {"message": "third"}, {"message": "fourth"}]}
    with pytest.raises(GraphQLError) as info:
        check_graphql(body, URL + "?token=abc")
    text = str(info.value)
    assert "has 4 error(s)" in text and "(and 1 more)" in text and "second" in text
    assert "jane.doe" not in text and "[EMAIL]" in text and "abc" not in text
    check_graphql({"data": {"x": 1}}, URL)
    check_graphql({"data": {"x": 1}, "errors": []}, URL)


# ---------------------------------------------------------------- retries of requests with bodies
def client(**throttle: Any) -> HttpClient:
    fake = FakeTime()
    return HttpClient(source="t", throttle=Throttle(max_retries=3, backoff=0.1, **throttle), rng=random.Random(1),
                      sleep=fake.sleep, clock=fake.clock)


def post(server: StubServer, idempotent: bool) -> PageRequest:
    return model_request(server.url("/search"), model(method="POST", json={"q": "x"}, idempotent=idempotent))


def test_a_put_sends_its_form_body():
    with StubServer([Reply(200, {"ok": 1})]) as server, client() as http:
        request = model_request(server.url("/export"), model(method="PUT", form={"kind": "all"}))
        request.paging("body")["page"] = 2
        http.fetch(request)
    [seen] = server.seen()
    assert seen.method == "PUT" and seen.form() == {"kind": "all", "page": "2"}
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_a_post_that_is_not_idempotent_is_not_sent_again_after_a_5xx():
    with StubServer([Reply(502), Reply(200, {"ok": 1})]) as server, client() as http:
        with pytest.raises(FetchError) as info:
            http.fetch(post(server, idempotent=False))
    assert server.count == 1
    assert str(info.value).startswith(f"POST {server.url('/search')} failed: HTTP 502")
    assert "not sent again: the server may have processed this POST (set idempotent: true" in str(info.value)
    assert json.loads(server.seen()[0].body) == {"q": "x"}


def test_a_post_that_is_not_idempotent_is_not_sent_again_after_a_timeout():
    with StubServer([Reply(200, {}, delay=1.0)]) as server, client(timeout=0.2) as http:
        with pytest.raises(FetchError, match="not sent again"):
            http.fetch(post(server, idempotent=False))
    assert server.count == 1


def test_a_rate_limited_post_is_retried_since_the_server_did_not_process_it():
    with StubServer([Reply(429, headers={"Retry-After": "0"}), Reply(200, {"ok": 1})]) as server, client() as http:
        assert http.fetch(post(server, idempotent=False)).body == {"ok": 1}
    assert server.count == 2 and [s.method for s in server.seen()] == ["POST", "POST"]
    assert [json.loads(s.body) for s in server.seen()] == [{"q": "x"}] * 2


def test_an_idempotent_post_is_retried_like_a_get():
    with StubServer([Reply(503), Reply(502), Reply(200, {"ok": 1})]) as server, client() as http:
        assert http.fetch(post(server, idempotent=True)).body == {"ok": 1}
    assert server.count == 3


def test_a_post_whose_connection_was_never_made_is_retried():
    with StubServer() as server:
        url = server.url("/search")
    with client() as http, pytest.raises(FetchError) as info:   # the server is gone: connection refused
        http.fetch(model_request(url, model(method="POST", json={"q": 1})))
    assert info.value.attempts == 4 and "gave up" in str(info.value)


# ---------------------------------------------------------------- both modes: a failing POST is sent once
def test_a_failing_post_is_sent_once_in_both_modes(tmp_path):
    from tests.helpers.flow import ID, api_source, project_for
    from tests.helpers.parity import chained, embedded

    with StubServer(default=Reply(502, {"message": "upstream"})) as server:
        source = api_source(server.url(""), {"search": {"path": "/search", "method": "POST", "json": {"q": "x"},
                                                        "records": "data", "primary_key": ["id"], "columns": ID}},
                            throttle={"max_retries": 3, "backoff": 0})
        project = project_for(tmp_path, {"api": source}, {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                                           "storage": {"root": str(tmp_path / "storage")}})
        (tmp_path / "embedded").mkdir()
        (tmp_path / "chained").mkdir()
        _, _, errors = embedded(project, tmp_path / "embedded")
        assert server.count == 1
        _, _, chain_errors = chained(project, tmp_path / "chained")   # the job is delivered twice
        assert server.count == 2
    hint, error, chain_error = "not sent again: the server may have processed", errors["api.search"], \
        chain_errors["api.search"]
    assert error.startswith(f"POST {server.url('/search')} failed: HTTP 502") and hint in error
    assert hint in chain_error and "an earlier delivery sent this POST" in chain_error


def test_body_pages_fanned_out_carry_their_paging_values_and_not_the_manifest_body(tmp_path, harness_for):
    """A fanned-out page's job holds the offset it asks for; the body itself (which may hold a
    ${VAR}) is rebuilt from the manifest by the Fetch that takes the job."""
    from shared.chain.names import FETCH
    from tests.helpers.flow import ID, api_source, project_for

    def serve(seen):
        body = json.loads(seen.body)
        start = int(body["from"])
        return Reply(body={"data": [{"id": i} for i in range(start, min(start + 10, 35))], "total": 35})

    with StubServer(handler=serve) as server:
        source = api_source(server.url(""), {"search": {
            "path": "/search", "method": "POST", "idempotent": True, "json": {"q": "${QUERY_SECRET}"},
            "records": "data", "primary_key": ["id"], "columns": ID,
            "pagination": {"type": "offset", "offset_param": "from", "limit_param": "size", "limit": 10,
                           "total_path": "total", "in": "body"}}})
        project = project_for(tmp_path, {"api": source}, {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                                           "storage": {"root": str(tmp_path / "storage")}},
                              env={"QUERY_SECRET": "s3cr3t-query"})
        harness = harness_for(project)
        harness.run()
        sent = sorted(json.loads(s.body)["from"] for s in server.seen())
        assert all(json.loads(s.body)["q"] == "s3cr3t-query" for s in server.seen())
    jobs = sorted((job.index, job.request) for job, _ in harness.sent(FETCH, "api.search"))
    assert [(index, request["body"]) for index, request in jobs] == [(k, {"from": 10 * k, "size": 10})
                                                                     for k in (1, 2, 3)]
    assert "s3cr3t-query" not in json.dumps([request for _, request in jobs])
    assert sent == [0, 10, 20, 30]
