"""Paginators against synthetic in-memory APIs: what they ask for, when they stop, what they refuse."""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import TypeAdapter

from shared.config.models import PAGINATION_TYPES, Pagination
from shared.errors import PaginationError
from shared.extract.paginators import (
    MISSING,
    PAGINATORS,
    Paginator,
    create_paginator,
    dotted_get,
    parse_link_header,
)
from shared.extract.paginators.links import url_key, with_params
from shared.extract.reconcile import ShortfallError, reconcile
from shared.extract.types import PageRequest, PageResponse

BASE = "https://api.test/v1/items"
PAGINATION = TypeAdapter(Pagination)
Api = Callable[[PageRequest], PageResponse]


def config(**fields: Any):
    return PAGINATION.validate_python(fields)


def paginator(**fields: Any) -> Paginator:
    return create_paginator(config(**fields))


def response(body: Any, url: str = BASE, headers: dict[str, str] | None = None,
             content: bytes | None = None) -> PageResponse:
    raw = json.dumps(body).encode() if content is None else content
    return PageResponse(url=url, status=200, headers=headers or {}, body=body, content=raw)


def records_of(body: Any) -> list:
    return body["data"] if isinstance(body, dict) else body


def full_url(request: PageRequest) -> str:
    return with_params(request.url, request.params)


def walk(p: Paginator, api: Api, first: PageRequest | None = None, limit: int = 50) -> list[PageRequest]:
    """The extractor's sequential loop; returns a copy of every request made."""
    request = first or PageRequest(BASE)
    p.init_request(request)
    made = []
    while True:
        made.append(request.copy())
        page = api(request)
        p.update_state(page, records_of(page.body))
        if not p.has_next:
            return made
        assert len(made) < limit, "the paginator never stopped"
        p.update_request(request)


def walk_random(p: Paginator, api: Api, limit: int = 50) -> list[PageRequest]:
    """The extractor's concurrent mode: requests built from the first one by index, states fed in order."""
    first = PageRequest(BASE, {"q": "x"})
    p.init_request(first)
    made = []
    for index in range(limit):
        request = first if index == 0 else p.request_for_page(first, index)
        made.append(request)
        page = api(request)
        p.update_state(page, records_of(page.body))
        if not p.has_next:
            return made
    raise AssertionError("the paginator never stopped")


def rows(n: int, start: int = 0) -> list[dict]:
    return [{"id": i} for i in range(start, start + n)]


# ---------------------------------------------------------------- synthetic APIs
def page_api(total: int, size: int, start: int = 1, meta: Callable[[int], dict] | None = None) -> Api:
    """`?page=N&per_page=S` over `total` records; `meta(pages)` adds whatever totals the API states."""
    def serve(request: PageRequest) -> PageResponse:
        page = int(request.params["page"])
        chunk = rows(max(0, min(size, total - (page - start) * size)), (page - start) * size)
        body = {"data": chunk, **(meta(math.ceil(total / size)) if meta else {})}
        return response(body, full_url(request))
    return serve


def offset_api(total: int, meta: bool = False) -> Api:
    def serve(request: PageRequest) -> PageResponse:
        offset, limit = int(request.params["offset"]), int(request.params["limit"])
        body = {"data": rows(max(0, min(limit, total - offset)), offset)}
        if meta:
            body["total"] = total
        return response(body, full_url(request))
    return serve


def cursor_api(pages: int, cursor: Callable[[int], Any] = lambda i: f"tok{i}") -> Api:
    def serve(request: PageRequest) -> PageResponse:
        token = request.params.get("cursor")
        index = 0 if token is None else int(str(token).removeprefix("tok"))
        body = {"data": rows(3, index * 3), "meta": {"next": cursor(index + 1) if index + 1 < pages else None}}
        return response(body, full_url(request))
    return serve


def next_link_api(pages: int, path: str = "@odata.nextLink", relative: bool = False) -> Api:
    def serve(request: PageRequest) -> PageResponse:
        index = int(dict(parse_qsl(urlsplit(request.url).query)).get("skip", 0))
        body: dict = {"data": rows(2, index * 2)}
        if index + 1 < pages:
            link = f"items?skip={index + 1}" if relative else f"{BASE}?skip={index + 1}"
            if path == "links.next":
                body["links"] = {"next": link}
            else:
                body[path] = link
        return response(body, full_url(request))
    return serve


def link_header_api(pages: int) -> Api:
    def serve(request: PageRequest) -> PageResponse:
        index = int(dict(parse_qsl(urlsplit(full_url(request)).query)).get("page", 1))
        links = [f'</v1/items?page={pages}>; rel="last"']
        if index < pages:
            links.insert(0, f'<{BASE}?page={index + 1}&per_page=2>; rel="next"')
        return response(rows(2, index * 2), full_url(request), headers={"link": ", ".join(links)})
    return serve


# ---------------------------------------------------------------- dotted_get
BODY = {
    "meta": {"total_pages": 7, "next": None},
    "links": {"next": "https://api.test/next"},
    "@odata.nextLink": "https://api.test/odata",
    "@odata.count": 12,
    "a.b": {"c": 1},
    "a": {"x": 2},
    "items": [{"id": "first"}, {"id": "last"}],
}


@pytest.mark.parametrize("path, expected", [
    ("meta.total_pages", 7),
    ("links.next", "https://api.test/next"),
    ("@odata.nextLink", "https://api.test/odata"),
    ("@odata.count", 12),
    ("a.b.c", 1),                 # a dotted key with more path after it
    ("a.x", 2),                   # the shorter prefix is tried when the dotted key does not match
    ("items.0.id", "first"),
    ("items.-1.id", "last"),
    ("items.1", {"id": "last"}),
    ("meta.next", None),          # present but null is not missing
])
def test_dotted_get_finds(path, expected):
    assert dotted_get(BODY, path) == expected


@pytest.mark.parametrize("path", ["nope", "meta.nope", "items.2.id", "items.x", "meta.total_pages.deeper",
                                  "meta.next.deeper", "a.b.d", "@odata"])
def test_dotted_get_missing(path):
    assert dotted_get(BODY, path) is MISSING
    assert dotted_get(BODY, path, "fallback") == "fallback"


def test_dotted_get_top_level_list():
    assert dotted_get([{"id": 5}], "0.id") == 5
    assert dotted_get("text", "a") is MISSING
    assert repr(MISSING) == "MISSING"


# ---------------------------------------------------------------- registry
def test_registry_covers_every_manifest_type():
    assert tuple(PAGINATORS) == PAGINATION_TYPES
    for name, cls in PAGINATORS.items():
        assert cls.type_name == name
    assert {name for name, cls in PAGINATORS.items() if cls.random_access} == {"page_number", "offset"}


def test_create_paginator_picks_by_type():
    assert type(paginator(type="cursor", cursor_path="next")) is PAGINATORS["cursor"]
    assert type(paginator(type="link_header")) is PAGINATORS["link_header"]


def test_unknown_type_lists_valid_names():
    class Fake:
        type = "graphql"
    with pytest.raises(ValueError) as error:
        create_paginator(Fake())
    message = str(error.value)
    assert "'graphql'" in message
    for name in PAGINATION_TYPES:
        assert name in message


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        PAGINATORS["evil"] = Paginator  # type: ignore[index]


def test_paginators_from_one_config_share_no_state():
    cfg = config(type="cursor", cursor_path="meta.next")
    one, two = create_paginator(cfg), create_paginator(cfg)
    assert one is not two
    assert len(walk(one, cursor_api(3))) == 3
    assert not one.has_next
    assert two.has_next and two.pages_seen == 0
    assert len(walk(two, cursor_api(3))) == 3  # no "cursor repeated" from the first run's tokens


def test_link_paginators_share_no_state():
    cfg = config(type="next_link", next_path="@odata.nextLink")
    assert len(walk(create_paginator(cfg), next_link_api(3))) == 3
    assert len(walk(create_paginator(cfg), next_link_api(3))) == 3


# ---------------------------------------------------------------- none
def test_none_is_one_page():
    p = paginator(type="none")
    first = PageRequest(BASE, {"q": "x"})
    made = walk(p, lambda r: response({"data": rows(5)}), first)
    assert len(made) == 1 and made[0].params == {"q": "x"}
    assert p.has_next is False and p.total_pages == 1
    with pytest.raises(NotImplementedError):
        p.request_for_page(first, 1)


def test_stated_total_from_total_path_on_any_type():
    p = paginator(type="none", total_path="meta.count")
    p.update_state(response({"data": [], "meta": {"count": "42"}}), [])
    assert p.stated_total == 42


@pytest.mark.parametrize("value, expected", [(7, 7), ("7", 7), (" 12 ", 12), (3.0, 3), (0, 0),
                                              ("seven", None), (True, None), (-1, None), (2.5, None),
                                              (None, None), ({"n": 1}, None)])
def test_stated_total_accepts_counts_only(value, expected):
    p = paginator(type="none", total_path="total")
    p.update_state(response({"total": value}), [])
    assert p.stated_total == expected


# ---------------------------------------------------------------- page_number
def test_page_number_first_request():
    p = paginator(type="page_number", size_param="per_page", size=50)
    request = PageRequest(BASE, {"q": "x"})
    p.init_request(request)
    assert request.params == {"q": "x", "page": 1, "per_page": 50}
    p = paginator(type="page_number", param="p", start=0)
    request = PageRequest(BASE)
    p.init_request(request)
    assert request.params == {"p": 0}


def test_page_number_short_last_page():
    p = paginator(type="page_number", size_param="per_page", size=10)
    made = walk(p, page_api(total=25, size=10))
    assert [r.params["page"] for r in made] == [1, 2, 3]
    assert p.total_pages is None and p.stated_total is None


def test_page_number_full_last_page_needs_an_empty_page():
    made = walk(paginator(type="page_number", size_param="per_page", size=10), page_api(total=30, size=10))
    assert [r.params["page"] for r in made] == [1, 2, 3, 4]


def test_page_number_without_size_stops_on_empty_page():
    made = walk(paginator(type="page_number"), page_api(total=25, size=10))
    assert [r.params["page"] for r in made] == [1, 2, 3, 4]


def test_page_number_empty_first_page():
    p = paginator(type="page_number", size_param="per_page", size=10)
    assert len(walk(p, page_api(total=0, size=10))) == 1
    assert p.has_next is False


def test_page_number_total_pages_reached():
    # full pages all the way: only the stated page count avoids fetching an empty page 4
    p = paginator(type="page_number", size_param="per_page", size=10, total_pages_path="meta.pages")
    made = walk(p, page_api(total=30, size=10, meta=lambda pages: {"meta": {"pages": pages}}))
    assert [r.params["page"] for r in made] == [1, 2, 3]
    assert p.total_pages == 3


def test_page_number_total_pages_as_string_and_start_zero():
    p = paginator(type="page_number", start=0, total_pages_path="meta.pages")
    made = walk(p, page_api(total=40, size=10, start=0, meta=lambda pages: {"meta": {"pages": str(pages)}}))
    assert [r.params["page"] for r in made] == [0, 1, 2, 3]
    assert p.total_pages == 4


def test_page_number_total_pages_zero_stops_after_first_page():
    p = paginator(type="page_number", total_pages_path="pages")
    p.init_request(PageRequest(BASE))
    p.update_state(response({"data": rows(3), "pages": 0}), rows(3))
    assert p.has_next is False and p.total_pages == 0


def test_page_number_total_pages_derived_from_records_total():
    p = paginator(type="page_number", size_param="per_page", size=10, total_path="total")
    made = walk(p, page_api(total=30, size=10, meta=lambda pages: {"total": "30"}))
    assert [r.params["page"] for r in made] == [1, 2, 3]
    assert p.total_pages == 3 and p.stated_total == 30


def test_page_number_random_access_matches_sequential():
    cfg = config(type="page_number", size_param="per_page", size=10, total_pages_path="meta.pages")
    api = page_api(total=45, size=10, meta=lambda pages: {"meta": {"pages": pages}})
    sequential = walk(create_paginator(cfg), api, PageRequest(BASE, {"q": "x"}))
    random = walk_random(create_paginator(cfg), api)
    assert [r.params for r in random] == [r.params for r in sequential]
    assert [r.params["page"] for r in random] == [1, 2, 3, 4, 5]


def test_random_access_leaves_the_first_request_alone():
    p = paginator(type="page_number")
    first = PageRequest(BASE, {"q": "x"})
    p.init_request(first)
    third = p.request_for_page(first, 2)
    assert third.params == {"q": "x", "page": 3} and first.params == {"q": "x", "page": 1}
    assert third is not first and third.url == BASE


def test_random_access_stop_depends_on_index_not_call_order():
    # states fed in index order after speculative fetches: page 3 (index 2) is the stated last
    p = paginator(type="page_number", total_pages_path="pages")
    for index in range(3):
        p.update_state(response({"data": rows(5, index * 5), "pages": 3}), rows(5, index * 5))
        assert p.has_next is (index < 2)


# ---------------------------------------------------------------- offset
def test_offset_first_request():
    p = paginator(type="offset", limit=25, start=5)
    request = PageRequest(BASE)
    p.init_request(request)
    assert request.params == {"offset": 5, "limit": 25}
    p = paginator(type="offset", offset_param="skip", limit_param="top")
    p.init_request(request := PageRequest(BASE))
    assert request.params == {"skip": 0, "top": 100}


def test_offset_short_last_page():
    made = walk(paginator(type="offset", limit=10), offset_api(total=25))
    assert [r.params["offset"] for r in made] == [0, 10, 20]


def test_offset_full_last_page_without_total_needs_an_empty_page():
    made = walk(paginator(type="offset", limit=10), offset_api(total=20))
    assert [r.params["offset"] for r in made] == [0, 10, 20]


def test_offset_empty_first_page():
    p = paginator(type="offset", limit=10)
    assert len(walk(p, offset_api(total=0))) == 1


def test_offset_total_reached():
    p = paginator(type="offset", limit=10, total_path="total")
    made = walk(p, offset_api(total=20, meta=True))
    assert [r.params["offset"] for r in made] == [0, 10]
    assert p.stated_total == 20 and p.total_pages == 2


def test_offset_total_as_string_with_start():
    p = paginator(type="offset", limit=10, start=10, total_path="meta.total")
    p.init_request(PageRequest(BASE))
    p.update_state(response({"data": rows(10), "meta": {"total": "40"}}), rows(10))
    assert p.stated_total == 40 and p.total_pages == 3 and p.has_next
    p.update_state(response({"data": rows(10, 20), "meta": {"total": "40"}}), rows(10, 20))
    assert p.has_next
    p.update_state(response({"data": rows(10, 30), "meta": {"total": "40"}}), rows(10, 30))
    assert not p.has_next


def test_offset_total_zero():
    p = paginator(type="offset", limit=10, total_path="total")
    p.update_state(response({"data": [], "total": 0}), [])
    assert p.has_next is False and p.total_pages == 0


def test_offset_random_access_matches_sequential():
    cfg = config(type="offset", limit=10, total_path="total")
    sequential = walk(create_paginator(cfg), offset_api(total=35, meta=True), PageRequest(BASE, {"q": "x"}))
    random = walk_random(create_paginator(cfg), offset_api(total=35, meta=True))
    assert [r.params for r in random] == [r.params for r in sequential]
    assert [r.params["offset"] for r in random] == [0, 10, 20, 30]


# ---------------------------------------------------------------- cursor
def test_cursor_walks_to_the_end():
    p = paginator(type="cursor", cursor_path="meta.next")
    first = PageRequest(BASE, {"q": "x"})
    made = walk(p, cursor_api(4), first)
    assert [r.params.get("cursor") for r in made] == [None, "tok1", "tok2", "tok3"]
    assert made[0].params == {"q": "x"} and made[3].params == {"q": "x", "cursor": "tok3"}
    assert p.random_access is False and p.total_pages is None


def test_cursor_custom_param_and_numeric_cursor():
    p = paginator(type="cursor", cursor_path="next_id", param="after")
    p.update_state(response({"data": rows(2), "next_id": 17}), rows(2))
    request = PageRequest(BASE, {"after": None})
    p.update_request(request)
    assert request.params == {"after": 17}


@pytest.mark.parametrize("body", [{"data": []}, {"data": [], "meta": {"next": None}},
                                  {"data": [], "meta": {"next": ""}},
                                  {"data": [], "meta": None}])
def test_cursor_absent_null_or_empty_stops(body):
    p = paginator(type="cursor", cursor_path="meta.next")
    p.update_state(response(body), [])
    assert p.has_next is False


def test_cursor_repeated_is_a_loop():
    p = paginator(type="cursor", cursor_path="meta.next")
    token = "abcdefghijklmnopqrstuvwxyz0123456789"
    p.update_state(response({"data": rows(1), "meta": {"next": token}}), rows(1))
    p.update_state(response({"data": rows(1, 1), "meta": {"next": "other"}}), rows(1, 1))
    with pytest.raises(PaginationError) as error:
        p.update_state(response({"data": rows(1, 2), "meta": {"next": token}}), rows(1, 2))
    message = str(error.value)
    assert "repeated at page 3" in message and "looping" in message
    assert token[:20] in message and token not in message


def test_cursor_back_to_the_starting_cursor_is_a_loop():
    p = paginator(type="cursor", cursor_path="next")
    p.init_request(PageRequest(BASE, {"cursor": "start"}))
    with pytest.raises(PaginationError, match="'start' repeated at page 1"):
        p.update_state(response({"data": rows(1), "next": "start"}), rows(1))


def test_cursor_that_is_an_object_is_refused_without_its_value():
    p = paginator(type="cursor", cursor_path="next")
    with pytest.raises(PaginationError) as error:
        p.update_state(response({"next": {"email": "jane@example.com"}}), [])
    assert "dict" in str(error.value) and "jane" not in str(error.value)


# ---------------------------------------------------------------- next_link
@pytest.mark.parametrize("path", ["@odata.nextLink", "links.next", "next"])
def test_next_link_walks_to_the_end(path):
    p = paginator(type="next_link", next_path=path)
    made = walk(p, next_link_api(3, path=path), PageRequest(BASE, {"q": "x"}))
    assert [full_url(r) for r in made] == [f"{BASE}?q=x", f"{BASE}?skip=1", f"{BASE}?skip=2"]
    assert made[1].params == {}


def test_next_link_relative():
    made = walk(paginator(type="next_link", next_path="@odata.nextLink"), next_link_api(3, relative=True))
    assert [r.url for r in made] == [BASE, f"{BASE}?skip=1", f"{BASE}?skip=2"]


def test_next_link_keeps_headers():
    p = paginator(type="next_link")
    p.update_state(response({"next": "/v2/items?page=2"}), [])
    request = PageRequest(BASE, {"page": 1}, {"Accept": "application/json"})
    p.update_request(request)
    assert request == PageRequest("https://api.test/v2/items?page=2", {}, {"Accept": "application/json"})


@pytest.mark.parametrize("body", [{}, {"next": None}, {"next": ""}])
def test_next_link_absent_stops(body):
    p = paginator(type="next_link")
    p.update_state(response(body), [])
    assert p.has_next is False


def test_next_link_back_to_an_earlier_page_is_a_loop():
    p = paginator(type="next_link")
    p.init_request(PageRequest(BASE, {"page": 1}))
    p.update_state(response({"next": f"{BASE}?page=2"}, f"{BASE}?page=1"), rows(1))
    with pytest.raises(PaginationError) as error:
        p.update_state(response({"next": f"{BASE}?page=2"}, f"{BASE}?page=2", content=b"x"), rows(1))
    # the link is named by its path, its query values left out (they may hold data: issue 12 §4)
    assert "repeated at page 2" in str(error.value) and f"{BASE}?page=…" in str(error.value)


def test_next_link_to_the_first_request_with_its_params_is_a_loop():
    p = paginator(type="next_link")
    p.init_request(PageRequest(BASE, {"b": "2", "a": "1"}))
    with pytest.raises(PaginationError, match="looping"):
        # same query, other order and host case: still the first page
        p.update_state(response({"next": "https://API.test/v1/items?a=1&b=2"}, BASE + "?b=2&a=1"), rows(1))


def test_next_link_must_be_a_string_url():
    p = paginator(type="next_link")
    with pytest.raises(PaginationError, match="expected a URL string"):
        p.update_state(response({"next": {"href": "x"}}), [])
    p = paginator(type="next_link")
    with pytest.raises(PaginationError, match="not an http"):
        p.update_state(response({"next": "ftp://elsewhere/items"}), [])


def test_update_request_after_the_last_page_is_a_bug():
    p = paginator(type="next_link")
    p.update_state(response({}), [])
    with pytest.raises(RuntimeError):
        p.update_request(PageRequest(BASE))


# ---------------------------------------------------------------- link_header
@pytest.mark.parametrize("header, expected", [
    ('<https://a.test/p?page=2>; rel="next"', [("https://a.test/p?page=2", ("next",))]),
    ('<https://a.test/p?page=2>; rel="next", <https://a.test/p?page=9>; rel="last"',
     [("https://a.test/p?page=2", ("next",)), ("https://a.test/p?page=9", ("last",))]),
    ('<https://a.test/p?page=9>; rel="next last"', [("https://a.test/p?page=9", ("next", "last"))]),
    ("<https://a.test/p?page=2>; rel=next", [("https://a.test/p?page=2", ("next",))]),
    ('<https://a.test/p?page=2>; REL="Next"', [("https://a.test/p?page=2", ("next",))]),
    ('<https://a.test/p?ids=1,2,3&page=2>; rel="next"', [("https://a.test/p?ids=1,2,3&page=2", ("next",))]),
    ('<https://a.test/p?page=2>;rel=next;title="a, b; <c>",<https://a.test/p?page=1>;rel=prev',
     [("https://a.test/p?page=2", ("next",)), ("https://a.test/p?page=1", ("prev",))]),
    ('<https://a.test/p?page=1>; rel="prev", <https://a.test/p?page=1>; rel="first"',
     [("https://a.test/p?page=1", ("prev",)), ("https://a.test/p?page=1", ("first",))]),
    ('<https://a.test/p?page=2>; rel="next"; rel="prev"', [("https://a.test/p?page=2", ("next",))]),
    ('</p?page=2>; rel="next"', [("/p?page=2", ("next",))]),
    ("", []),
    ("garbage", []),
])
def test_parse_link_header(header, expected):
    assert [(link.url, link.rels) for link in parse_link_header(header)] == expected


def test_parse_link_header_keeps_other_params():
    (link,) = parse_link_header('<https://a.test/>; rel="next"; title="Page \\"2\\", of <9>; ok"; type=text/html')
    assert link.params == {"rel": "next", "title": 'Page "2", of <9>; ok', "type": "text/html"}


def test_link_header_walks_to_the_end():
    p = paginator(type="link_header")
    made = walk(p, link_header_api(3), PageRequest(BASE, {"per_page": 2}))
    assert [full_url(r) for r in made] == [f"{BASE}?per_page=2", f"{BASE}?page=2&per_page=2",
                                           f"{BASE}?page=3&per_page=2"]
    assert made[2].params == {}


@pytest.mark.parametrize("headers", [{}, {"Link": '<https://a.test/p?page=1>; rel="prev"'}, {"Link": ""}])
def test_link_header_without_next_stops(headers):
    p = paginator(type="link_header")
    p.update_state(response([], headers=headers), [])
    assert p.has_next is False


@pytest.mark.parametrize("name", ["Link", "link", "LINK"])
def test_link_header_relative_next_any_header_case(name):
    p = paginator(type="link_header")
    p.update_state(response([], f"{BASE}?page=1", {name: '</v1/items?page=2>; rel="next last"'}), [])
    request = PageRequest(BASE, {"page": 1})
    p.update_request(request)
    assert p.has_next and request.url == f"{BASE}?page=2" and request.params == {}


def test_link_header_loop():
    p = paginator(type="link_header")
    p.init_request(PageRequest(BASE, {"page": 1}))
    with pytest.raises(PaginationError, match="repeated at page 1: the API is looping"):
        p.update_state(response([], f"{BASE}?page=1", {"Link": f'<{BASE}?page=1>; rel="next"'}), [])


# ---------------------------------------------------------------- repeated content
@pytest.mark.parametrize("fields", [
    {"type": "page_number"}, {"type": "offset", "limit": 2}, {"type": "cursor", "cursor_path": "next"},
    {"type": "next_link"}, {"type": "link_header"},
])
def test_repeated_page_content_is_refused(fields):
    p = paginator(**fields)
    p.init_request(PageRequest(BASE))
    body = {"data": [{"id": 1, "email": "jane@example.com"}, {"id": 2, "email": "joe@example.com"}], "next": None}
    p.update_state(response(body, f"{BASE}?page=1"), body["data"])
    p.has_next = True  # whatever the paging style concluded, the next page must not be a copy
    with pytest.raises(PaginationError) as error:
        p.update_state(response(body, f"{BASE}?page=2"), body["data"])
    message = str(error.value)
    assert "page 2" in message and "repeats page 1" in message and "ignores the paging parameters" in message
    assert "jane" not in message and "example.com" not in message


def test_api_ignoring_page_param_is_caught_on_page_two():
    def ignores_paging(request: PageRequest) -> PageResponse:
        return response({"data": rows(10)}, full_url(request))
    with pytest.raises(PaginationError, match="page 2 .* repeats page 1"):
        walk(paginator(type="page_number", size_param="per_page", size=10), ignores_paging)


def test_identical_empty_pages_or_empty_content_are_not_repeats():
    p = paginator(type="page_number")
    p.update_state(response({"data": []}), [])
    p.update_state(response({"data": []}), [])
    p.update_state(response({"data": rows(1)}, content=b""), rows(1))
    p.update_state(response({"data": rows(1)}, content=b""), rows(1))
    assert p.pages_seen == 4


def test_repeat_check_compares_only_consecutive_pages():
    p = paginator(type="page_number")
    a, b = response({"data": rows(1)}), response({"data": rows(1, 1)})
    for page in (a, b, a):
        p.update_state(page, records_of(page.body))
    assert p.pages_seen == 3


# ---------------------------------------------------------------- URL helpers
def test_url_key_normalises_what_does_not_change_the_page():
    assert url_key("HTTPS://Api.Test/x?b=2&a=1#frag") == url_key("https://api.test/x?a=1&b=2")
    assert url_key("https://api.test/x?a=1") != url_key("https://api.test/x?a=2")
    assert url_key("https://api.test") == url_key("https://api.test/")


def test_with_params_appends_to_an_existing_query():
    assert with_params(f"{BASE}?a=1", {"b": 2, "c": None, "d": [3, 4]}) == f"{BASE}?a=1&b=2&d=3&d=4"
    assert with_params(BASE, {}) == BASE


def test_offset_api_that_ignores_limit_is_an_error():
    from shared.config.models import OffsetPagination
    from shared.errors import PaginationError
    from shared.extract.paginators import create_paginator
    from shared.extract.types import PageResponse

    paginator = create_paginator(OffsetPagination(type="offset", limit=10))
    with pytest.raises(PaginationError, match="ignores 'limit'"):
        response = PageResponse("http://x/items?offset=0&limit=10", 200, {}, [], b"[...]")
        paginator.update_state(response, [{"id": i} for i in range(25)])


# ---------------------------------------------------------------- pages capped below the asked size
def capped_offset_api(total: int, cap: int, stated: int | None = None, say_size: bool = True,
                      short_at: int | None = None) -> Api:
    """Jira's search: `maxResults` asked, at most `cap` served, the size served read back in the body.
    `short_at`: the offset whose page holds 3 records fewer than the cap though more follow."""
    def serve(request: PageRequest) -> PageResponse:
        offset, served = int(request.params["offset"]), min(int(request.params["limit"]), cap)
        count = served - 3 if offset == short_at else served
        body: dict = {"data": rows(max(0, min(count, total - offset)), offset),
                      "total": total if stated is None else stated}
        if say_size:
            body["size"] = served
        return response(body, full_url(request))
    return serve


def capped_page_api(total: int, cap: int, stated: int | None = None, pages: bool = False) -> Api:
    def serve(request: PageRequest) -> PageResponse:
        page, served = int(request.params["page"]), min(int(request.params["per_page"]), cap)
        body: dict = {"data": rows(max(0, min(served, total - (page - 1) * served)), (page - 1) * served)}
        body["meta"] = {"total": total if stated is None else stated, "size": served,
                        **({"pages": math.ceil(total / served)} if pages else {})}
        return response(body, full_url(request))
    return serve


def received(p: Paginator, api: Api, walker=None) -> list[int]:
    made = (walker or walk)(p, api)
    return [r["id"] for request in made for r in records_of(api(request).body)]


@pytest.mark.parametrize("say_size", [True, False], ids=["stated", "shown"])
@pytest.mark.parametrize("walker", [walk, walk_random], ids=["sequential", "random"])
def test_offset_capped_by_the_server_gets_every_record(say_size, walker):
    p = paginator(type="offset", limit=1000, total_path="total", **({"limit_path": "size"} if say_size else {}))
    assert received(p, capped_offset_api(270, 100, say_size=say_size), walker) == list(range(270))
    assert p.page_size == 100 and p.total_pages == 3 and p.planned


def test_offset_cap_stated_without_a_total_goes_on_while_pages_are_full():
    p = paginator(type="offset", limit=1000, limit_path="size")
    made = walk(p, capped_offset_api(250, 100))
    assert [r.params["offset"] for r in made] == [0, 100, 200]   # the third page is short of 100: the last


def test_offset_advances_by_the_records_received():
    p = paginator(type="offset", limit=10, total_path="total", limit_path="size")
    made = walk(p, capped_offset_api(35, 10, short_at=10))
    assert [r.params["offset"] for r in made] == [0, 10, 17, 27]
    assert [r["id"] for request in made for r in records_of(capped_offset_api(35, 10, short_at=10)(request).body)] \
        == list(range(35))


def test_a_short_page_before_the_end_voids_the_plan():
    p = paginator(type="offset", limit=10, total_path="total")
    api = capped_offset_api(35, 10, short_at=10)
    first = PageRequest(BASE)
    p.init_request(first)
    for index in range(2):
        request = first if index == 0 else p.request_for_page(first, index)
        page = api(request)
        p.update_state(page, records_of(page.body))
    assert p.has_next and not p.planned          # page 3 was planned at offset 20: records 17-19 would be lost
    p.update_request(request := first.copy())
    assert request.params["offset"] == 17


def test_a_short_last_page_keeps_the_plan():
    p = paginator(type="offset", limit=10, total_path="total")
    assert received(p, offset_api(25, meta=True), walk_random) == list(range(25))
    assert p.planned


def test_offset_resumed_from_its_request_takes_the_offset_from_it():
    """The queue chain's fresh paginator for one page: the offset comes from the request it made."""
    p = paginator(type="offset", limit=1000, total_path="total")
    request = PageRequest(BASE, {"offset": 100, "limit": 1000})
    p = type(p).resume(p.config, type(p).planned_state(p.config, request, 1))
    page = capped_offset_api(270, 100, say_size=False)(request)
    p.update_state(page, records_of(page.body))
    assert p.has_next and p.pages_seen == 2 and p.page_size == 100 and p.total_pages == 3
    assert p.request_for_page(request, 2).params["offset"] == 200
    p.update_request(following := request.copy())
    assert following.params["offset"] == 200


@pytest.mark.parametrize("size_path", [None, "meta.size"], ids=["shown", "stated"])
@pytest.mark.parametrize("walker", [walk, walk_random], ids=["sequential", "random"])
def test_page_number_capped_by_the_server_is_replanned(size_path, walker):
    p = paginator(type="page_number", size_param="per_page", size=1000, total_path="meta.total",
                  **({"size_path": size_path} if size_path else {}))
    assert received(p, capped_page_api(270, 100), walker) == list(range(270))
    assert p.page_size == 100 and p.total_pages == 3


def test_page_number_stated_page_count_wins_over_a_short_page():
    p = paginator(type="page_number", size_param="per_page", size=1000, total_pages_path="meta.pages")
    assert received(p, capped_page_api(270, 100, pages=True)) == list(range(270))


def test_page_number_short_page_without_any_total_is_the_last():
    """Nothing says more records exist: a page short of the asked size ends the model (state
    `size_path` or a total to page through a capping API)."""
    p = paginator(type="page_number", size_param="per_page", size=1000)
    assert len(walk(p, capped_page_api(270, 100))) == 1
    p = paginator(type="page_number", size_param="per_page", size=1000, size_path="meta.size")
    assert received(p, capped_page_api(270, 100)) == list(range(270))


def test_page_number_resumed_infers_the_size_from_its_own_page():
    p = paginator(type="page_number", size_param="per_page", size=1000, total_path="meta.total")
    request = PageRequest(BASE, {"page": 2, "per_page": 1000})
    p = type(p).resume(p.config, type(p).planned_state(p.config, request, 1))
    page = capped_page_api(270, 100)(request)
    p.update_state(page, records_of(page.body))
    assert p.page_size == 100 and p.total_pages == 3 and p.has_next


# ---------------------------------------------------------------- a stated total against what arrived
def test_reconcile_matching_total_says_nothing():
    assert reconcile("s.m", 10, 10) is None
    assert reconcile("s.m", None, 3) is None


def test_reconcile_shortfall_fails_by_default_and_warns_on_request():
    with pytest.raises(ShortfallError) as error:
        reconcile("s.m", 10, 7)
    assert str(error.value) == ("s.m: the API stated 10 records but 7 arrived (shortfall 3); "
                                "set pagination.on_shortfall: warn to accept a short answer")
    assert reconcile("s.m", 10, 7, on_shortfall="warn") == "s.m: the API stated 10 records but 7 arrived (shortfall 3)"


def test_reconcile_more_than_stated_warns_and_a_truncated_run_is_not_compared():
    assert reconcile("s.m", 10, 12) == "s.m: the API stated 10 records but 12 arrived"
    assert reconcile("s.m", 10, 4, truncated_by="max_pages") is None
    assert reconcile("s.m", 10, 4, truncated_by="limit") is None
    with pytest.raises(ValueError, match="on_shortfall must be one of fail, warn"):
        reconcile("s.m", 10, 4, on_shortfall="ignore")
