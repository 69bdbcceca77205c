"""Response formats (issue 14 §6) end to end, in `main.py run` and through the queue chain: the
Twilio and Mixpanel recipes of docs/recipes.md against emulations of those APIs, and a CSV export
served as a gzip file."""
from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from tests.helpers.flow import project_for
from tests.helpers.http_stub import Reply, Seen, StubServer
from tests.helpers.parity import chained, embedded
from tests.helpers.recipes import recipe_yaml

SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "twilio-token"
MESSAGES = 23
EVENTS = 17
START = datetime(2024, 5, 24, 17, 44, 46, tzinfo=UTC)


def twilio_message(i: int) -> dict[str, Any]:
    sent = START + timedelta(minutes=i)
    return {"sid": f"SM{i:032x}", "status": "delivered", "direction": "outbound-api", "from": "+15005550006",
            "to": f"+1415555{i:04d}", "body": f"Your code is {1000 + i}", "num_segments": "1",
            "price": "-0.00750", "date_created": format_datetime(sent), "date_sent": format_datetime(sent),
            "account_sid": SID, "uri": f"/2010-04-01/Accounts/{SID}/Messages/SM{i:032x}.json"}


class Twilio:
    """Twilio's Message list as documented at
    https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources and
    https://www.twilio.com/docs/usage/twilios-response#response-formats-list-paging-information:
    records under `messages`, `PageSize` (max 1000), `next_page_uri` with `Page` and `PageToken`
    (null on the last page), RFC 2822 dates, HTTP basic auth with the account SID and auth token."""

    def __init__(self, page_size: int = 5) -> None:
        self.page_size = page_size

    def __call__(self, seen: Seen) -> Reply:
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if seen.headers.get("Authorization") != expected:
            return Reply(status=401, body={"code": 20003, "message": "Authenticate", "status": 401})
        if seen.path != f"/2010-04-01/Accounts/{SID}/Messages.json":
            return Reply(status=404, body={"code": 20404, "message": "not found", "status": 404})
        query = {k: v[0] for k, v in seen.query.items()}
        size = min(int(query.get("PageSize", 50)), self.page_size)
        page = int(query.get("Page", 0))
        start = int(query.get("PageToken", "PA0")[2:])
        rows = [twilio_message(i) for i in range(start, min(start + size, MESSAGES))]
        after = start + size
        next_uri = None
        if after < MESSAGES:
            next_uri = seen.path + "?" + urlencode({"PageSize": size, "Page": page + 1, "PageToken": f"PA{after}"})
        return Reply(body={"messages": rows, "page": page, "page_size": size, "next_page_uri": next_uri,
                           "first_page_uri": seen.path + f"?PageSize={size}&Page=0", "previous_page_uri": None,
                           "uri": seen.target, "start": start, "end": start + len(rows) - 1})


def mixpanel_event(i: int) -> dict[str, Any]:
    seconds = int(START.timestamp()) + i
    return {"event": "Signed up" if i % 2 else "Viewed page",
            "properties": {"time": seconds, "distinct_id": f"user-{i}@example.com", "$insert_id": f"ins-{i:04d}",
                           "mp_processing_time_ms": seconds * 1000 + 250, "mp_lib": "web"}}


def mixpanel(seen: Seen) -> Reply:
    """Mixpanel's raw export as documented at https://developer.mixpanel.com/reference/raw-event-export:
    `from_date`/`to_date` (required), one JSON event per line, `time` in Unix seconds."""
    query = {k: v[0] for k, v in seen.query.items()}
    if seen.path != "/api/2.0/export" or "from_date" not in query or "to_date" not in query:
        return Reply(status=400, body="'from_date' and 'to_date' are required")
    lines = "".join(json.dumps(mixpanel_event(i)) + "\n" for i in range(EVENTS))
    return Reply(body=lines.encode(), headers={"Content-Type": "text/plain; charset=utf-8"})


def orders_csv() -> bytes:
    rows = ["order_id,placed,total,note"] + [f"o-{i},{3 + i % 20:02d}/02/2024 10:{i:02d},{i * 1.5:.2f},"
                                              f"{'' if i % 3 else 'gift'}" for i in range(30)]
    return gzip.compress(("\ufeff" + "\r\n".join(rows) + "\r\n").encode())


def exports(seen: Seen) -> Reply:
    """A nightly export served as a gzip file (not a gzip Content-Encoding)."""
    return Reply(body=orders_csv(), headers={"Content-Type": "application/gzip"})


def handler(seen: Seen) -> Reply:
    if seen.path.startswith("/2010-04-01/"):
        return Twilio()(seen)
    if seen.path.startswith("/api/2.0/"):
        return mixpanel(seen)
    return exports(seen)


def recipe_sources(heading: str, base_url: str) -> dict[str, Any]:
    return yaml.safe_load(recipe_yaml(heading, base_url))["sources"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("formats")
    with StubServer(handler=handler) as server:
        base = server.url("")
        sources = {**recipe_sources("Twilio", base), **recipe_sources("Mixpanel raw export", base)}
        sources["files"] = {"type": "api", "base_url": base, "models": {"orders": {
            "path": "/exports/orders.csv.gz", "format": "csv", "primary_key": ["order_id"],
            "columns": {"order_id": {"type": "string", "length": 10},
                        "placed": {"type": "datetime", "format": "%d/%m/%Y %H:%M"},
                        "placed_on": {"type": "date", "path": "placed", "format": "%d/%m/%Y %H:%M"},
                        "total": {"type": "decimal", "precision": 10, "scale": 2},
                        "note": {"type": "string", "length": 20, "pii": "none", "reason": "fixed labels"}}}}}
        env = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "MIXPANEL_SERVICE_ACCOUNT": "svc",
               "MIXPANEL_SECRET": "secret", "MIXPANEL_PROJECT_ID": "42"}
        project = project_for(tmp_path, sources, {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                                  "storage": {"root": str(tmp_path / "storage")}}, env=env)
        return embedded(project, tmp_path), chained(project, tmp_path)


MODELS = ["twilio.messages", "mixpanel.events", "files.orders"]


@pytest.mark.parametrize("model", MODELS)
def test_both_modes_load_the_same_rows_without_errors(runs, model):
    (tables, _, errors), (chain_tables, _, chain_errors) = runs
    assert errors[model] is None and chain_errors[model] is None
    assert chain_tables[model] == tables[model]


def test_rfc2822_dates_and_twilio_paging(runs):
    (tables, _, _), _ = runs
    rows = tables["twilio.messages"]
    assert len(rows) == MESSAGES
    created = sorted(row[-2] for row in rows)
    assert created[0].replace(tzinfo=UTC) == START and created[-1].replace(tzinfo=UTC) == START + timedelta(
        minutes=MESSAGES - 1)
    assert not any("+1415555" in repr(row) for row in rows)   # numbers hashed


def test_jsonl_with_unix_seconds_and_milliseconds(runs):
    (tables, _, _), _ = runs
    rows = {row[0]: row for row in tables["mixpanel.events"]}
    assert len(rows) == EVENTS
    _, _, time, processed, distinct = rows["ins-0003"]
    assert time.replace(tzinfo=UTC) == START + timedelta(seconds=3)
    assert processed.replace(tzinfo=UTC) == START + timedelta(seconds=3, milliseconds=250)
    assert "@" not in distinct


def test_gzip_csv_export_by_header_with_strptime_dates(runs):
    (tables, _, _), _ = runs
    rows = {row[0]: row for row in tables["files.orders"]}
    assert len(rows) == 30
    order = rows["o-4"]
    assert order[1] == datetime(2024, 2, 7, 10, 4) and str(order[2]) == "2024-02-07"
    assert rows["o-3"][4] == "gift" and rows["o-4"][4] is None   # an empty CSV field is a missing value
