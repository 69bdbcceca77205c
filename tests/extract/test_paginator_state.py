"""A paginator's saved state (`Paginator.state()` / `resume`): a run that hands the paginator from one
invocation to the next through its JSON state pages exactly like one that keeps it alive, catches the
same loops, stops at the same `max_pages`, and refuses a state no paginator wrote."""
from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from shared.config.models import Pagination
from shared.errors import PaginationError
from shared.extract.paginators import Paginator, create_paginator, resume_paginator
from shared.extract.paginators.base import SEEN_LIMIT
from shared.extract.paginators.links import with_params
from shared.extract.types import PageRequest, PageResponse

BASE = "https://api.test/v1/items"
TOTAL = 95
PAGINATION = TypeAdapter(Pagination)


def config(**fields: Any) -> Any:
    return PAGINATION.validate_python(fields)


def reply(request: PageRequest, body: Any, headers: dict[str, str] | None = None) -> PageResponse:
    return PageResponse(with_params(request.url, request.params), 200, headers or {}, body=body,
                        content=json.dumps(body).encode())


def items(start: int, count: int) -> list[dict[str, int]]:
    return [{"id": i} for i in range(start, min(start + count, TOTAL))]


def serve(request: PageRequest) -> PageResponse:
    """Every style over TOTAL items, 10 a page, chosen by the parameter the request carries."""
    params = {k: v for k, v in request.params.items()}
    url = with_params(request.url, request.params)
    if "page" in params:
        page = int(params["page"])
        return reply(request, {"data": items((page - 1) * 10, 10), "pages": -(-TOTAL // 10)})
    if "offset" in params:
        return reply(request, {"data": items(int(params["offset"]), int(params["limit"])), "total": TOTAL})
    start = int(params.get("cursor", 0)) if "start=" not in url else int(url.split("start=")[1])
    more = start + 10 < TOTAL
    return reply(request, {"data": items(start, 10), "next": str(start + 10) if more else None,
                           "link": f"{BASE}?start={start + 10}" if more else None})


STYLES = {
    "page_number": {"type": "page_number", "total_pages_path": "pages"},
    "offset": {"type": "offset", "limit": 10, "total_path": "total"},
    "cursor": {"type": "cursor", "cursor_path": "next"},
    "next_link": {"type": "next_link", "next_path": "link"},
}


def run(cfg: Any, *, saved: bool, fetch=serve) -> tuple[list[int], Paginator]:
    """The ids a run receives, and its last paginator; `saved`: the paginator goes through
    `state()`, JSON and `resume` between every two pages, as the queue chain's Fetch does."""
    paginator = create_paginator(cfg)
    first = PageRequest(BASE)
    paginator.init_request(first)
    request, ids = first.copy(), []
    for _ in range(50):
        page = fetch(request)
        paginator.update_state(page, page.body["data"])
        ids += [r["id"] for r in page.body["data"]]
        if not paginator.has_next:
            return ids, paginator
        if saved:
            paginator = resume_paginator(cfg, json.loads(json.dumps(paginator.state())))
            request = first.copy()
        paginator.update_request(request)
    raise AssertionError("the paginator never stopped")


@pytest.mark.parametrize("style", list(STYLES))
def test_a_resumed_paginator_pages_like_a_live_one(style):
    cfg = config(**STYLES[style])
    live, live_paginator = run(cfg, saved=False)
    resumed, resumed_paginator = run(cfg, saved=True)
    assert live == resumed == list(range(TOTAL))
    assert resumed_paginator.state() == live_paginator.state()


@pytest.mark.parametrize("style", ["page_number", "cursor"])
def test_max_pages_stops_a_resumed_run_where_a_live_one_stops(style):
    cfg = config(**STYLES[style], max_pages=3)
    for saved in (False, True):
        ids, paginator = run(cfg, saved=saved)
        assert ids == list(range(30)) and paginator.truncated_by == "max_pages"
        assert paginator.cap_warning("s.m") == "s.m: stopped at max_pages=3; the API has more pages"


def test_a_stated_page_count_over_max_pages_is_known_up_front():
    paginator = create_paginator(config(**STYLES["page_number"], max_pages=4))
    request = PageRequest(BASE)
    paginator.init_request(request)
    page = serve(request)
    paginator.update_state(page, page.body["data"])
    assert paginator.planned_pages() == 4 and paginator.truncated_by == "max_pages"


def looping(request: PageRequest) -> PageResponse:
    """An API whose every page names the second page next, by cursor and by link."""
    start = int(request.url.split("start=")[1]) if "start=" in request.url else int(request.params.get("cursor") or 0)
    return reply(request, {"data": items(start, 10), "next": "10", "link": f"{BASE}?start=10"})


@pytest.mark.parametrize("style, message", [("cursor", "cursor '10' repeated at page 2"),
                                            ("next_link", "repeated at page 2: the API is looping")])
def test_a_loop_is_caught_across_invocations(style, message):
    cfg = config(**STYLES[style])
    for saved in (False, True):
        with pytest.raises(PaginationError, match=message):
            run(cfg, saved=saved, fetch=looping)


def test_a_page_served_again_is_caught_across_invocations():
    cfg = config(type="page_number")

    def stuck(request: PageRequest) -> PageResponse:
        return reply(request, {"data": items(0, 10)})
    for saved in (False, True):
        with pytest.raises(PaginationError, match="page 2 .* repeats page 1: the API ignores the paging parameters"):
            run(cfg, saved=saved, fetch=stuck)


def test_a_saved_state_keeps_the_latest_loop_digests_only():
    paginator = create_paginator(config(**STYLES["cursor"]))
    for i in range(SEEN_LIMIT + 10):
        body = {"data": [{"id": i}], "next": f"c{i}"}
        paginator.update_state(PageResponse(BASE, 200, {}, body=body, content=json.dumps(body).encode()), body["data"])
    state = paginator.state()
    assert len(state["seen"]) == SEEN_LIMIT and len(json.dumps(state)) < 2000
    assert "c0" not in json.dumps(state)   # digests, not the cursors themselves (only the next one is kept)


@pytest.mark.parametrize("change, error", [
    ({"type": "cursor"}, "expected a page_number paginator state"),
    ({"pages_seen": -1}, "pages_seen: expected a count"),
    ({"has_next": "yes"}, "has_next: expected true or false"),
    ({"last": "<script>"}, "last: expected 16-hex-digit digests"),
    ({"page_size": "10"}, "page_size: expected a count"),
])
def test_a_state_no_paginator_wrote_is_refused(change, error):
    cfg = config(**STYLES["page_number"])
    state = create_paginator(cfg).state()
    with pytest.raises(ValueError, match=error):
        resume_paginator(cfg, {**state, **change})
    with pytest.raises(ValueError, match="seen: expected"):
        resume_paginator(config(**STYLES["cursor"]), {**create_paginator(config(**STYLES["cursor"])).state(),
                                                      "seen": ["x" * 16]})
