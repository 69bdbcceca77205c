"""Incremental models in both modes: windows that resume after a failure, an API that cannot filter
(records dropped on our side, the walk stopped once it sorts past the cursor), and the queue chain
reading only what changed, in process and on Azurite. Each emulated API follows its public docs."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from samples.sample_api import data
from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain import Chain
from shared.chain.pump import drain
from shared.ledger import RunLedger
from shared.load.cursor_state import list_state
from shared.pipeline import run_models
from shared.storage import LocalBlobStore
from tests.helpers.chain import applied_target
from tests.helpers.flow import project_for
from tests.helpers.http_stub import Reply, Seen, StubServer
from tests.helpers.incremental import BASE, CUSTOMERS, ITEMS, customers_model, items_model, source_db

T0 = datetime(2024, 1, 1, tzinfo=UTC)
EVENTS = 120            # one every two hours over ten days
LIMIT = 10


def zulu(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class OktaSystemLog:
    """Okta's System Log API (https://developer.okta.com/docs/reference/api/system-log/): GET
    /api/v1/logs with `since` and `until` (ISO 8601) bounding `published`, `limit` events a page,
    oldest first, the next page in a `Link: <...>; rel="next"` header carrying `after`. A request
    whose `since` is at or past `fail_from` is answered 400, as Okta answers a bad query."""

    def __init__(self) -> None:
        self.events = [{"uuid": f"ev-{i:04d}", "published": zulu(T0 + timedelta(hours=2 * i)),
                        "eventType": "user.session.start"} for i in range(EVENTS)]
        self.fail_from: datetime | None = None
        self.lock = threading.Lock()

    def __call__(self, seen: Seen) -> Reply:
        query = {k: v[0] for k, v in seen.query.items()}
        since = datetime.fromisoformat(query.get("since", "2000-01-01T00:00:00Z"))
        until = datetime.fromisoformat(query.get("until", "2100-01-01T00:00:00Z"))
        if self.fail_from is not None and since >= self.fail_from:
            return Reply(status=400, body={"errorCode": "E0000001", "errorSummary": "Api validation failed"})
        chosen = [e for e in self.events if since <= datetime.fromisoformat(e["published"]) < until]
        after = int(query.get("after", 0))
        page = chosen[after:after + int(query.get("limit", LIMIT))]
        headers = {}
        if after + len(page) < len(chosen):
            following = {**query, "after": after + len(page)}
            headers["Link"] = f'</api/v1/logs?{urlencode(following)}>; rel="next"'
        return Reply(body=page, headers=headers)


class GitHubEvents:
    """GitHub's repository events (https://docs.github.com/en/rest/activity/events): newest first,
    `per_page` and `page`, a `Link` header to the next page, no way to ask only for newer events;
    each event has an `id` and `created_at`."""

    def __init__(self, count: int = 45) -> None:
        self.events: list[dict[str, Any]] = []
        self.add(count)
        self.pages_served: list[int] = []

    def add(self, count: int) -> None:
        start = len(self.events)
        self.events[:0] = [{"id": str(1000 + start + i), "type": "PushEvent",
                            "created_at": zulu(T0 + timedelta(minutes=start + i))} for i in reversed(range(count))]

    def __call__(self, seen: Seen) -> Reply:
        query = {k: v[0] for k, v in seen.query.items()}
        page, size = int(query.get("page", 1)), int(query.get("per_page", 30))
        self.pages_served.append(page)
        chunk = self.events[(page - 1) * size:page * size]
        headers = {}
        if page * size < len(self.events):
            headers["Link"] = f'</repos/o/r/events?per_page={size}&page={page + 1}>; rel="next"'
        return Reply(body=chunk, headers=headers)


def okta_model() -> dict:
    return {"path": "/api/v1/logs", "params": {"limit": LIMIT}, "primary_key": ["uuid"],
            "pagination": {"type": "link_header"},
            "columns": {"uuid": {"type": "string", "length": 40}, "published": {"type": "datetime"}},
            "incremental": {"cursor_path": "published", "param": "since", "end_param": "until", "window": "P2D",
                            "initial_value": "2024-01-01T00:00:00Z", "end_value": "2024-01-11T00:00:00Z"}}


def github_model() -> dict:
    return {"path": "/repos/o/r/events", "params": {"per_page": 10}, "primary_key": ["id"],
            "pagination": {"type": "link_header"},
            "columns": {"id": {"type": "string", "length": 20}, "created_at": {"type": "datetime"}},
            "incremental": {"cursor_path": "created_at", "on": "client", "sorted": "desc"}}


class Modes:
    """One project run embedded or through the in-process chain, against one target."""

    def __init__(self, tmp_path: Path, mode: str, sources: dict, harness_for) -> None:
        self.mode = mode
        self.project = project_for(tmp_path, sources, {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                                       "storage": {"root": str(tmp_path / "storage")}})
        if mode == "chain":
            self.harness = harness_for(self.project, max_dequeue_count=2)
            self.engine = self.harness.engine
        else:
            self.engine = applied_target(self.project, tmp_path / "embedded.db")
            self.ledger = RunLedger(LocalBlobStore(tmp_path / "ledger"))

    def run(self) -> bool:
        """Whether the run succeeded."""
        if self.mode == "chain":
            run_id = self.harness.run(visibility_timeout=0.2, max_dequeue_count=2)
            return self.harness.status(run_id)["status"] == "succeeded"
        return run_models(self.project, self.project.models(), engine=self.engine, ledger=self.ledger).ok

    def cursor(self, source: str) -> str | None:
        with self.engine.connect() as connection:
            saved = list_state(connection, source)
        return saved[0].cursor if saved else None

    def count(self, table: str) -> int:
        with self.engine.connect() as connection:
            return connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()

    def close(self) -> None:
        if self.mode != "chain":
            self.engine.dispose()


@pytest.fixture(params=["embedded", "chain"])
def mode(request):
    return request.param


def test_windows_resume_after_a_failure_from_the_last_window_loaded(tmp_path, mode, harness_for):
    okta = OktaSystemLog()
    okta.fail_from = T0 + timedelta(days=6)
    with StubServer(handler=okta) as server:
        modes = Modes(tmp_path, mode, {"okta": {"type": "api", "base_url": server.url(""),
                                                "throttle": {"max_retries": 0}, "models": {"logs": okta_model()}}},
                      harness_for)
        try:
            assert not modes.run()
            assert modes.cursor("okta") == "2024-01-07T00:00:00Z"   # three windows of two days, loaded whole
            assert modes.count("okta.logs") == 72
            okta.fail_from = None
            server.requests.clear()
            assert modes.run()
            first = {k: v[0] for k, v in server.requests[0].query.items()}
            assert (first["since"], first["until"]) == ("2024-01-07T00:00:00Z", "2024-01-09T00:00:00Z")
            assert modes.count("okta.logs") == EVENTS and modes.cursor("okta") == "2024-01-11T00:00:00Z"
            assert len(server.requests) == 2 * 3   # the two windows left, three pages each
        finally:
            modes.close()


def test_an_api_that_cannot_filter_is_filtered_here_and_stops_once_past_the_cursor(tmp_path, mode, harness_for):
    github = GitHubEvents()
    with StubServer(handler=github) as server:
        modes = Modes(tmp_path, mode, {"gh": {"type": "api", "base_url": server.url(""),
                                              "models": {"events": github_model()}}}, harness_for)
        try:
            assert modes.run() and modes.count("gh.events") == 45
            assert modes.cursor("gh") == zulu(T0 + timedelta(minutes=44)).replace(".000", "")
            github.add(3)
            github.pages_served.clear()
            assert modes.run()
            assert github.pages_served == [1]   # page 1 reaches the cursor: no page 2
            assert modes.count("gh.events") == 48
            assert modes.cursor("gh") == zulu(T0 + timedelta(minutes=47)).replace(".000", "")
        finally:
            modes.close()


def test_the_chain_reads_only_what_changed(tmp_path, harness_for):
    config = ApiConfig(customers=CUSTOMERS)
    source = source_db(tmp_path / "erp.db")
    with SampleApi(config) as api:
        project = project_for(tmp_path, {"shop": {"type": "api", "base_url": api.base_url,
                                                  "models": {"customers": customers_model(sorted="asc")}},
                                         "erp": {"type": "sql", "url": f"sqlite:///{tmp_path / 'erp.db'}",
                                                 "models": {"items": items_model("table"),
                                                            "by_query": items_model("query")}}},
                              {"target_url": f"sqlite:///{tmp_path / 'unused.db'}"})
        harness = harness_for(project)
        first = harness.run()
        assert harness.status(first)["models"]["shop.customers"]["state"] == {
            "kind": "datetime", "cursor": "2024-01-01T05:00:00Z", "by_this_run": True, "page": 5,
            "updated_at": harness.status(first)["models"]["shop.customers"]["state"]["updated_at"]}
        assert harness.status(first)["models"]["erp.items"]["state"]["cursor"] == "2024-01-01T00:33:00Z"
        later = data.customer_updated(CUSTOMERS) + timedelta(hours=1)
        for i in (5, 17, 200):
            config.changes[i] = later
        with source.begin() as connection:
            connection.execute(ITEMS.update().where(ITEMS.c.id.in_([3, 50]))
                               .values(name="changed", updated_at=BASE + timedelta(days=1)))
        second = harness.run()
        status = harness.status(second)
        assert status["done"] and {m: s["loaded"] for m, s in status["models"].items()} == {
            "shop.customers": 1, "erp.items": 1, "erp.by_query": 1}
        assert {m: s["state"]["cursor"] for m, s in status["models"].items()} == {
            "shop.customers": "2024-01-01T06:00:00Z", "erp.items": "2024-01-02T00:00:00Z",
            "erp.by_query": "2024-01-02T00:00:00Z"}
        with harness.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT COUNT(*) FROM shop.customers").scalar_one() == CUSTOMERS
            assert connection.exec_driver_sql("SELECT id FROM erp.items WHERE name = 'changed' ORDER BY id").all() \
                == [(3,), (50,)]
        # nothing read from a source rides in a message: the cursors are in sealed blobs only
        sent = [body for _, body, _ in harness.queues.sent]
        assert not any("2024-01-01T05:00:00" in str(body) or "2024-01-01T00:33:00" in str(body) for body in sent)
    source.dispose()


def test_the_chain_on_azurite_reads_only_what_changed(tmp_path, azurite):
    from shared.storage.azure import AzureBlobStore
    from shared.storage.queues import AzureQueueStore
    from tests.helpers.app import empty

    blobs = AzureBlobStore.from_connection_string(azurite.connection_string)
    queues = AzureQueueStore.from_connection_string(azurite.connection_string)
    empty(queues)
    config = ApiConfig(customers=CUSTOMERS)
    try:
        with SampleApi(config) as api:
            project = project_for(tmp_path, {"shop": {"type": "api", "base_url": api.base_url,
                                                      "models": {"customers": customers_model()}}},
                                  {"target_url": f"sqlite:///{tmp_path / 'unused.db'}"})
            engine = applied_target(project, tmp_path / "chain.db")

            def chain() -> Chain:
                return Chain(project, blobs, queues, lambda: engine)

            def run() -> dict:
                with chain() as starting:
                    run_id = starting.start_run(trigger="test")
                drain(chain, queues, timeout=60, visibility_timeout=5)
                with chain() as reading:
                    return reading.run_status(run_id)["models"]["shop.customers"]

            try:
                assert run()["loaded"] == CUSTOMERS // 50
                for i in (5, 17, 200):
                    config.changes[i] = data.customer_updated(CUSTOMERS) + timedelta(hours=1)
                again = run()
                assert again["loaded"] == 1 and again["state"]["cursor"] == "2024-01-01T06:00:00Z"
            finally:
                engine.dispose()
    finally:
        empty(queues)


def test_a_chain_load_killed_between_its_rows_and_the_cursor_leaves_both_out(tmp_path, harness_for, monkeypatch):
    """Page 3's Load dies after its rows and its cursor are written, before the commit, every time
    (then poisoned): pages 4 and 5 load, but the cursor stays at the contiguous prefix, page 2. The
    replayed message, once the fault is gone, completes the run and the cursor."""
    from shared.chain.names import LOAD, LOAD_POISON
    from shared.load.loader import Loader

    with SampleApi(ApiConfig(customers=CUSTOMERS)) as api:
        project = project_for(tmp_path, {"shop": {"type": "api", "base_url": api.base_url,
                                                  "models": {"customers": customers_model(sorted="asc")}}},
                              {"target_url": f"sqlite:///{tmp_path / 'unused.db'}"})
        harness = harness_for(project, max_dequeue_count=2)
        original = Loader.load_page

        def dying(self, index, records, then=None):
            if index != 3 or then is None:
                return original(self, index, records, then)

            def die(connection):
                then(connection)
                raise RuntimeError("killed between the rows and the cursor")
            return original(self, index, records, die)

        monkeypatch.setattr(Loader, "load_page", dying)
        run_id = harness.run(visibility_timeout=0.2, max_dequeue_count=2)
        status = harness.status(run_id)
        assert status["status"] == "failed" and status["models"]["shop.customers"]["loaded"] == 5
        assert status["models"]["shop.customers"]["state"]["cursor"] == "2024-01-01T02:30:00Z"   # page 2's last
        with harness.engine.connect() as connection:
            ids = connection.exec_driver_sql("SELECT id FROM shop.customers").scalars().all()
        assert sorted(ids) == list(range(1, 151)) + list(range(201, 301))   # page 3 rolled back, whole

        monkeypatch.setattr(Loader, "load_page", original)
        [poisoned] = harness.queues.receive(LOAD_POISON)
        harness.queues.send(LOAD, poisoned.body)
        harness.queues.delete(LOAD_POISON, poisoned)
        drain(harness.chain, harness.queues, timeout=30)
        status = harness.status(run_id)
        assert status["status"] == "succeeded"
        assert status["models"]["shop.customers"]["state"]["cursor"] == "2024-01-01T05:00:00Z"
