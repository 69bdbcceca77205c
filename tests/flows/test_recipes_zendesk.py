"""The Zendesk recipe of docs/recipes.md against an emulation of Zendesk's ticket list, in
`main.py run` and through the queue chain: the same rows, no extra request after `has_more: false`,
a 429 waited out, PII in subjects redacted."""
from __future__ import annotations

import base64
import threading
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from tests.helpers.flow import project_for
from tests.helpers.http_stub import Reply, Seen, StubServer
from tests.helpers.parity import chained, embedded
from tests.helpers.recipes import recipe_yaml

TICKETS = 250
EMAIL, TOKEN = "agent@example.com", "zd-token-0123"


def ticket(i: int) -> dict[str, Any]:
    return {"id": 35436 + i, "url": f"https://example.zendesk.com/api/v2/tickets/{35436 + i}.json",
            "subject": f"Help, my printer is on fire (call me on +44 20 7946 {i:04d})" if i % 5 == 0
            else f"Printer question {i}", "description": f"The fire is spreading, {i}",
            "status": "open", "priority": "high" if i % 3 else None, "requester_id": 20978392 + i % 7,
            "tags": ["enterprise", "printer"], "created_at": "2024-06-18T12:00:00Z",
            "updated_at": "2024-06-19T08:30:00Z"}


class Zendesk:
    """Zendesk Support's ticket list as documented at
    https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#list-tickets,
    https://developer.zendesk.com/api-reference/introduction/pagination/#using-cursor-pagination and
    https://developer.zendesk.com/api-reference/introduction/rate-limits/: `page[size]` up to 100,
    `page[after]` cursors, `meta.has_more`/`after_cursor`/`before_cursor` and `links.next`, API-token
    basic auth (`{email}/token:{token}`), and 429 with `Retry-After` once in a while."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0

    def __call__(self, seen: Seen) -> Reply:
        expected = "Basic " + base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()
        if seen.headers.get("Authorization") != expected:
            return Reply(status=401, body={"error": "Couldn't authenticate you"})
        with self.lock:
            self.requests += 1
            if self.requests == 2:   # the second request of each run is rate-limited once
                return Reply(status=429, body={"error": "APIRateLimitExceeded"}, headers={"Retry-After": "1"})
        query = {k: v[0] for k, v in seen.query.items()}
        size = min(int(query.get("page[size]", 100)), 100)
        start = int(query.get("page[after]", "c0")[1:])
        end = min(start + size, TICKETS)
        more = end < TICKETS
        return Reply(body={
            "tickets": [ticket(i) for i in range(start, end)],
            "meta": {"has_more": more, "after_cursor": f"c{end}" if more else None, "before_cursor": f"c{start}"},
            "links": {"next": f"{seen.path}?{urlencode({'page[size]': size, 'page[after]': f'c{end}'})}" if more
                      else None, "prev": None}})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("zendesk")
    api = Zendesk()
    with StubServer(handler=api) as server:
        sources = yaml.safe_load(recipe_yaml("Zendesk", server.url("")))["sources"]
        env = {"ZENDESK_EMAIL": EMAIL, "ZENDESK_API_TOKEN": TOKEN}
        project = project_for(tmp_path, sources, {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                                  "storage": {"root": str(tmp_path / "storage")}}, env=env)
        first = embedded(project, tmp_path)
        embedded_requests, api.requests = api.requests, 0
        second = chained(project, tmp_path)
        return first, second, embedded_requests, api.requests


def test_both_modes_land_every_ticket_without_an_extra_request(runs):
    (tables, warnings, errors), (chain_tables, chain_warnings, chain_errors), embedded_requests, chain_requests = runs
    assert errors["zendesk.tickets"] is None and chain_errors["zendesk.tickets"] is None
    assert chain_tables["zendesk.tickets"] == tables["zendesk.tickets"]
    assert len(tables["zendesk.tickets"]) == TICKETS
    pages = -(-TICKETS // 100)
    assert embedded_requests == chain_requests == pages + 1   # every page once, plus the one 429


def test_phone_numbers_in_subjects_are_redacted_and_descriptions_dropped(runs):
    (tables, _, _), _, _, _ = runs
    text = repr(tables["zendesk.tickets"])
    assert "+44 20 7946" not in text and "[PHONE]" in text
    assert "fire is spreading" not in text
