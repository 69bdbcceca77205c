"""Response rules and quota headers in both modes (issue 14 §4): the Slack and Microsoft Graph recipes
(docs/recipes.md) against their emulations, `ok: false` failing the model with the same fixed message,
a 404 read as no records, a child whose 410 a rule calls empty, and a GitHub-style X-RateLimit quota
met without a single refusal, embedded and in the chain."""
from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from shared.chain.names import FETCH
from shared.config.project import Project
from tests.helpers.chain import Harness, snapshot
from tests.helpers.flow import project_for
from tests.helpers.github import ORG, GitHubApi, expected_issues
from tests.helpers.graph import CLIENT_ID as GRAPH_CLIENT
from tests.helpers.graph import CLIENT_SECRET as GRAPH_SECRET
from tests.helpers.graph import TENANT, GraphApi, group
from tests.helpers.http_stub import Reply, Seen, StubServer
from tests.helpers.parity import chained, embedded
from tests.helpers.recipes import recipe_yaml
from tests.helpers.slack import TOKEN, SlackApi, channel


def project(tmp_path: Path, sources: dict[str, Any], env: dict[str, str] | None = None) -> Project:
    return project_for(tmp_path, sources, {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                           "storage": {"root": str(tmp_path / "storage")}}, env)


def slack_sources(base_url: str, per_page: int) -> dict[str, Any]:
    sources = yaml.safe_load(recipe_yaml("Slack", base_url))["sources"]
    sources["slack"]["models"]["channels"]["params"]["limit"] = per_page   # several pages of a small workspace
    return sources


def both(tmp_path: Path, build) -> tuple[tuple, tuple]:
    first = embedded(build(tmp_path / "e"), tmp_path / "e")
    second = chained(build(tmp_path / "c"), tmp_path / "c")
    return first, second


def test_slack_recipe_lands_every_channel_in_both_modes_through_a_429(tmp_path):
    api = SlackApi(channels=23, limited_after=10)
    with StubServer(handler=api) as server:
        def build(folder: Path) -> Project:
            folder.mkdir()
            api.reset()
            return project(folder, slack_sources(server.url("/api"), 5), {"SLACK_TOKEN": TOKEN})
        (tables, warnings, errors), (chain_tables, chain_warnings, chain_errors) = both(tmp_path, build)
        limited = [s for s in server.seen() if s.query.get("cursor")]
    assert errors == chain_errors == {"slack.channels": None}
    assert warnings == chain_warnings == {"slack.channels": []}
    assert tables == chain_tables
    assert [row[0] for row in tables["slack.channels"]] == [channel(i)["id"] for i in range(23)]
    assert len(limited) == 2 * (4 + 1)   # 4 following pages in each mode, one of them twice (the 429)


def test_slack_ok_false_fails_the_model_with_the_fixed_message_in_both_modes(tmp_path):
    with StubServer(handler=SlackApi()) as server:
        def build(folder: Path) -> Project:
            folder.mkdir()
            return project(folder, slack_sources(server.url("/api"), 5), {"SLACK_TOKEN": "xoxb-wrong-token"})
        (_, _, errors), (_, _, chain_errors) = both(tmp_path, build)
    url = server.url("/api/conversations.list") + "?limit=…&exclude_archived=…&types=…"   # values never shown
    assert errors == chain_errors
    assert errors["slack.channels"].endswith(
        f"GET {url} failed: HTTP 200 (Slack answered ok: false (see the error code in Slack's method documentation))")
    assert "invalid_auth" not in errors["slack.channels"]


def items(seen: Seen) -> Reply:
    if seen.path == "/deleted/children":
        return Reply(404, {"message": "Not Found"})
    return Reply(200, [{"id": 1}, {"id": 2}])


def test_a_404_the_rules_call_empty_is_a_model_without_records_in_both_modes(tmp_path):
    columns = {"id": {"type": "integer"}}
    with StubServer(handler=items) as server:
        def build(folder: Path) -> Project:
            folder.mkdir()
            models = {"children": {"path": "/deleted/children", "primary_key": ["id"], "columns": columns,
                                   "responses": [{"status": 404, "action": "empty"}]},
                      "plain": {"path": "/deleted/children", "primary_key": ["id"], "columns": columns},
                      "present": {"path": "/items", "primary_key": ["id"], "columns": columns,
                                  "responses": [{"status": 404, "action": "empty"}]}}
            return project(folder, {"api": {"type": "api", "base_url": server.url(""), "models": models}})
        (tables, _, errors), (chain_tables, _, chain_errors) = both(tmp_path, build)
    assert errors == chain_errors
    assert errors["api.children"] is None and errors["api.present"] is None
    assert "HTTP 404" in errors["api.plain"]
    assert tables["api.children"] == chain_tables["api.children"] == []
    assert tables["api.present"] == chain_tables["api.present"] == [(1,), (2,)]


class GitHubStyleApi:
    """A fixed-window quota announced as GitHub does (https://docs.github.com/en/rest/using-the-rest-api/
    rate-limits-for-the-rest-api): `x-ratelimit-limit`, `-remaining`, `-reset` (Unix seconds), and past it
    403 with `x-ratelimit-remaining: 0`; pages by `page`/`per_page` with a `Link` header."""

    def __init__(self, limit: int, window: float, pages: int):
        self.limit, self.window, self.pages = limit, window, pages
        self._lock = threading.Lock()
        self._window_end = 0.0
        self._used = 0
        self.refused = 0

    def __call__(self, seen: Seen) -> Reply:
        with self._lock:
            now = time.time()
            if now >= self._window_end:
                self._window_end, self._used = math.floor(now / self.window) * self.window + self.window, 0
            self._used += 1
            remaining = self.limit - self._used
            headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(remaining, 0)),
                       "X-RateLimit-Reset": str(math.ceil(self._window_end))}
            if remaining < 0:
                self.refused += 1
                return Reply(403, {"message": "API rate limit exceeded"}, headers=headers)
        page = int(seen.query.get("page", ["1"])[0])
        if page < self.pages:
            headers["Link"] = f'<{seen.path}?page={page + 1}&per_page=2>; rel="next"'
        return Reply(200, [{"id": 2 * page - 1}, {"id": 2 * page}], headers=headers)


def test_a_github_style_quota_is_met_without_a_single_refusal_in_the_embedded_run(tmp_path):
    api = GitHubStyleApi(limit=4, window=1.0, pages=10)
    with StubServer(handler=api) as server:
        model = {"path": "/repos/o/r/issues", "params": {"per_page": 2}, "primary_key": ["id"],
                 "columns": {"id": {"type": "integer"}}}
        folder = tmp_path / "e"
        folder.mkdir()
        built = project(folder, {"gh": {"type": "api", "base_url": server.url(""),
                                        "pagination": {"type": "link_header"}, "models": {"issues": model}}})
        tables, _, errors = embedded(built, folder)
    assert errors == {"gh.issues": None} and len(tables["gh.issues"]) == 20
    assert api.refused == 0 and server.count == 10


def test_the_chain_also_waits_for_the_reset_instead_of_meeting_the_refusal(tmp_path):
    """Each Fetch invocation has a client of its own; the worker keeps the quota they learn, so a page
    whose quota is spent goes back on the queue for the reset without being sent."""
    api = GitHubStyleApi(limit=4, window=1.0, pages=10)
    with StubServer(handler=api) as server:
        model = {"path": "/repos/o/r/issues", "params": {"per_page": 2}, "primary_key": ["id"],
                 "columns": {"id": {"type": "integer"}}}
        built = project(tmp_path, {"gh": {"type": "api", "base_url": server.url(""),
                                          "pagination": {"type": "link_header"}, "models": {"issues": model}}})
        harness = Harness(tmp_path / "chain", built, honor_delays=True)
        try:
            run_id = harness.run()
            tables = snapshot(harness.engine, built)
            status = harness.status(run_id)
        finally:
            harness.engine.dispose()
    assert status["done"] and status["errors"] == [] and len(tables["gh.issues"]) == 20
    assert api.refused == 0 and server.count == 10
    rescheduled = [(job, delay) for job, delay in harness.sent(FETCH, "gh.issues") if job.attempt > 0]
    assert rescheduled and all(0 < delay <= 1.0 for _, delay in rescheduled)


def test_microsoft_graph_recipe_lands_every_group_in_both_modes_through_a_429(tmp_path):
    api = GraphApi(groups=23, throttle_page=2)
    with StubServer(handler=api) as server:
        def build(folder: Path) -> Project:
            folder.mkdir()
            api.reset()
            text = recipe_yaml("Microsoft Graph", server.url("/v1.0"))
            text = text.replace("https://login.microsoftonline.com", server.url(""))
            sources = yaml.safe_load(text)["sources"]
            sources["graph"]["models"]["groups"]["params"]["$top"] = 5
            return project(folder, sources, {"GRAPH_TENANT_ID": TENANT, "GRAPH_CLIENT_ID": GRAPH_CLIENT,
                                             "GRAPH_CLIENT_SECRET": GRAPH_SECRET})
        (tables, warnings, errors), (chain_tables, chain_warnings, chain_errors) = both(tmp_path, build)
        pages = server.seen("/v1.0/groups")
    assert errors == chain_errors == {"graph.groups": None} and warnings == chain_warnings
    assert tables == chain_tables and [row[0] for row in sorted(tables["graph.groups"])] == sorted(
        group(i)["id"] for i in range(23))
    assert len(pages) == 2 * (5 + 1)   # five pages in each mode, one of them twice (the 429)
    assert all("$select" in page.query for page in pages)


def test_an_optional_child_a_rule_calls_empty_is_no_records_not_a_failure_in_both_modes(tmp_path):
    """GitHub answers 410 Gone for the issues of a repository whose issues are disabled: with the rule,
    that repository simply has none, without `on_child_error: skip` and without a warning."""
    columns = {"id": {"type": "bigint"}, "number": {"type": "integer"}}
    with StubServer(handler=GitHubApi()) as server:
        def build(folder: Path) -> Project:
            folder.mkdir()
            models = {
                "repos": {"path": f"/orgs/{ORG}/repos", "params": {"per_page": 3}, "primary_key": ["id"],
                          "columns": {"id": {"type": "bigint"}, "name": {"type": "string"},
                                      "owner_login": {"path": "owner.login", "type": "string"}}},
                "issues": {"parent": "repos", "path": "/repos/{parent.owner_login}/{parent.name}/issues",
                           "params": {"state": "all", "per_page": 4}, "primary_key": ["id"], "columns": columns,
                           "responses": [{"status": 410, "action": "empty"}]}}
            return project(folder, {"github": {"type": "api", "base_url": server.url(""),
                                               "pagination": {"type": "link_header"}, "models": models}})
        (tables, warnings, errors), (chain_tables, chain_warnings, chain_errors) = both(tmp_path, build)
    assert errors == chain_errors == {"github.repos": None, "github.issues": None}
    assert warnings == chain_warnings and warnings["github.issues"] == []
    assert tables == chain_tables and len(tables["github.issues"]) == expected_issues(skip_disabled=True)
