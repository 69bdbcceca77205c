"""Parent-child models (issue 14 §3) in both modes: the embedded run (`run_models`, as `main.py run`)
and the queue chain (pumped in process) land the same rows, report the same skipped children and
fail with the same error, against the GitHub REST emulation (`tests/helpers/github.py`)."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.chain.names import FETCH
from shared.chain.sealed import MARK
from shared.config.project import Project, load_project
from shared.extract.factory import build_extractor
from tests.helpers.chain import Harness
from tests.helpers.flow import TEST_KEY
from tests.helpers.github import DISABLED, ORG, REGIONS, REPOS, GitHubApi, comments_of, expected_issues, issues_of
from tests.helpers.http_stub import StubServer
from tests.helpers.parity import chained, embedded
from tests.helpers.recipes import recipe_yaml

REPO_COLUMNS = {"id": {"type": "bigint"}, "name": {"type": "string"},
                "owner_login": {"path": "owner.login", "type": "string"}}
ISSUE_COLUMNS = {"id": {"type": "bigint"}, "number": {"type": "integer"}, "state": {"type": "string"}}
ISSUES_PATH = "/repos/{parent.owner_login}/{parent.name}/issues"
MODELS: dict[str, dict[str, Any]] = {
    "repos": {"path": f"/orgs/{ORG}/repos", "params": {"per_page": 3}, "primary_key": ["id"], "columns": REPO_COLUMNS},
    "issues": {"parent": "repos", "path": ISSUES_PATH, "params": {"state": "all", "per_page": 4},
               "include_from_parent": ["id", "name"], "on_child_error": "skip", "primary_key": ["id"],
               "columns": ISSUE_COLUMNS},
    "issues_strict": {"parent": "repos", "path": ISSUES_PATH, "params": {"state": "all", "per_page": 4},
                      "primary_key": ["id"], "columns": ISSUE_COLUMNS},
    "comments": {"parent": "issues",
                 "path": "/repos/{parent.parent.owner_login}/{parent.parent.name}/issues/{parent.number}/comments",
                 "include_from_parent": ["id", "repos_name"], "on_child_error": "skip",
                 "primary_key": ["id"], "columns": {"id": {"type": "bigint"}, "body": {"type": "text"}}},
    "repos_private": {"path": f"/orgs/{ORG}/repos", "params": {"per_page": 3}, "primary_key": ["name"],
                      "columns": {"name": {"type": "string", "pii": "hash"},
                                  "owner_login": {"path": "owner.login", "type": "string"}}},
    "issues_private": {"parent": "repos_private", "path": ISSUES_PATH, "params": {"state": "all", "per_page": 4},
                       "include_from_parent": ["name"], "primary_key": ["id"], "columns": ISSUE_COLUMNS},
    "gql_issues": {"parent": "repos", "path": "/graphql", "idempotent": True, "graphql": {
        "query": "query($owner: String!, $name: String!, $first: Int, $after: String) { repository(owner: $owner, "
                 "name: $name) { issues(first: $first, after: $after) { pageInfo { hasNextPage endCursor } "
                 "nodes { number title } } } }",
        "variables": {"owner": "{parent.owner_login}", "name": "{parent.name}", "first": 3}},
        "records": "data.repository.issues.nodes", "include_from_parent": ["id"], "primary_key": ["repos_id", "number"],
        "pagination": {"type": "cursor", "cursor_path": "data.repository.issues.pageInfo.endCursor", "param": "after",
                       "in": "body", "has_more_path": "data.repository.issues.pageInfo.hasNextPage"},
        "columns": {"number": {"type": "integer"}, "title": {"type": "string"}}},
    "things": {"for_each": "${REGIONS}", "for_each_column": "region", "path": "/regions/{item}/things",
               "primary_key": ["region", "id"], "columns": {"id": {"type": "integer"}, "label": {"type": "string"}}},
}
# a child's page and a parent page (read by a walk step) answered 429 once in each mode
LIMITED = (f"/repos/{ORG}/beta/issues?state=all&per_page=4&page=2", f"/orgs/{ORG}/repos?per_page=3&page=2")
SKIPPED = (f"github.issues: the request for repos {1000 + REPOS.index(DISABLED)} failed: GET "
           f"/repos/{ORG}/{DISABLED}/issues?state=…&per_page=… failed: HTTP 410 (Issues are disabled for this repo) "
           "(skipped: on_child_error is skip)")


def local(text: str | None) -> str | None:
    """A message without the emulation's origin (its port changes from run to run)."""
    return None if text is None else re.sub(r"http://127\.0\.0\.1:\d+", "", text)


def project_from(tmp_path: Path, connectors: str) -> Project:
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "connector_models.yml").write_text(connectors)
    (folder / "settings.yml").write_text(yaml.safe_dump({"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                                         "storage": {"root": str(tmp_path / "storage")}}))
    return load_project(folder, env={"KSPYDER_PII_KEY": TEST_KEY, "GITHUB_TOKEN": "ghp_test_token_0123456789",
                                     "REGIONS": ", ".join(REGIONS)})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("parents")
    api = GitHubApi(limited=LIMITED)
    with StubServer(handler=api) as server:
        connectors = yaml.safe_dump({"sources": {"github": {
            "type": "api", "base_url": server.url(""), "pagination": {"type": "link_header"},
            "throttle": {"concurrency": 3, "max_retries": 1, "backoff": 0}, "models": MODELS}}}, sort_keys=False)
        project = project_from(tmp_path, connectors)
        first = embedded(project, tmp_path)
        assert api.answered_429 == set(LIMITED)
        api.reset()
        second = chained(project, tmp_path)
        assert api.answered_429 == set(LIMITED)
    return first, second


@pytest.mark.parametrize("model", [f"github.{name}" for name in MODELS])
def test_both_modes_agree(runs, model):
    (tables, warnings, errors), (chain_tables, chain_warnings, chain_errors) = runs
    assert chain_errors[model] == errors[model]
    assert chain_warnings[model] == warnings[model]
    if errors[model] is None:
        assert chain_tables[model] == tables[model]


def test_children_carry_their_parents_fields(runs):
    (tables, warnings, errors), _ = runs
    assert len(tables["github.repos"]) == len(REPOS)
    issues = tables["github.issues"]
    assert len(issues) == expected_issues()
    by_repo = {}
    for issue_id, number, _state, repos_id, repos_name in issues:
        assert repos_id == 1000 + REPOS.index(repos_name) and issue_id == REPOS.index(repos_name) * 1000 + number
        by_repo[repos_name] = by_repo.get(repos_name, 0) + 1
    assert by_repo == {name: issues_of(i) for i, name in enumerate(REPOS) if issues_of(i) and name != DISABLED}
    assert [local(w) for w in warnings["github.issues"]] == [SKIPPED]
    assert errors["github.issues"] is None


def test_a_failing_child_fails_the_model_naming_its_parent(runs):
    (_, _, errors), _ = runs
    assert local(errors["github.issues_strict"]) == SKIPPED.replace("github.issues:", "github.issues_strict:").replace(
        " (skipped: on_child_error is skip)", "")


def test_grandchildren_read_their_grandparents_fields(runs):
    (tables, warnings, errors), _ = runs
    comments = tables["github.comments"]
    expected = sum(comments_of(n) for i, name in enumerate(REPOS) if name != DISABLED
                   for n in range(1, issues_of(i) + 1))
    assert len(comments) == expected and errors["github.comments"] is None
    for comment_id, _body, issues_id, repos_name in comments:
        assert issues_id == REPOS.index(repos_name) * 1000 + (comment_id % 100_000) // 100
    assert len(warnings["github.comments"]) == 1 and "repos 1004 failed" in warnings["github.comments"][0]


def test_for_each_reads_every_item_and_stores_it(runs):
    (tables, _, _), _ = runs
    assert sorted(tables["github.things"]) == sorted(
        (i, f"{region}-{i}", region) for region in REGIONS for i in range(REGIONS.index(region) + 2))


def test_the_github_recipe_runs_in_both_modes(tmp_path):
    api = GitHubApi()
    with StubServer(handler=api) as server:
        project = project_from(tmp_path, recipe_yaml("GitHub REST", server.url("")))
        tables, warnings, errors = embedded(project, tmp_path)
        chain_tables, chain_warnings, chain_errors = chained(project, tmp_path)
    assert (chain_tables, chain_warnings, chain_errors) == (tables, warnings, errors)
    assert len(tables["github.issues"]) == expected_issues() and errors == {"github.repos": None,
                                                                           "github.issues": None}
    assert [w.split(":")[0] for w in warnings["github.issues"]] == ["github.issues"]


def test_a_parent_key_with_a_pii_rule_is_named_by_position_and_kept_out_of_the_message(runs):
    (tables, _, errors), _ = runs
    assert local(errors["github.issues_private"]) == (
        f"github.issues_private: the request for repos_private record {REPOS.index(DISABLED) + 1} failed: "
        f"GET /repos/{ORG}/…/issues?state=…&per_page=… failed: HTTP 410 (Issues are disabled for this repo)")
    assert not {name for (name, _login) in tables["github.repos_private"]} & set(REPOS)   # hashed


def test_children_are_read_concurrently_through_one_client(tmp_path):
    api = GitHubApi(delay=0.05)
    with StubServer(handler=api) as server:
        sources = {"github": {"type": "api", "base_url": server.url(""), "pagination": {"type": "link_header"},
                              "throttle": {"concurrency": 3},
                              "models": {"repos": MODELS["repos"], "issues": MODELS["issues"]}}}
        project = project_from(tmp_path, yaml.safe_dump({"sources": sources}, sort_keys=False))
        [ref] = project.models(["github.issues"])
        records = list(build_extractor(project, ref).records())
        assert len(records) == expected_issues()
        assert server.max_in_flight == 3


def test_the_chain_fans_children_out_with_no_parent_value_in_a_message(tmp_path):
    with StubServer(handler=GitHubApi()) as server:
        sources = {"github": {"type": "api", "base_url": server.url(""), "pagination": {"type": "link_header"},
                              "throttle": {"max_retries": 0},
                              "models": {"repos": MODELS["repos"], "issues": MODELS["issues"]}}}
        project = project_from(tmp_path, yaml.safe_dump({"sources": sources}, sort_keys=False))
        harness = Harness(tmp_path / "chain", project)
        try:
            run_id = harness.run()
            status = harness.status(run_id)
        finally:
            harness.engine.dispose()
    issues = status["models"]["github.issues"]
    assert (issues["mode"], issues["planned"], issues["loaded"]) == ("walk", len(REPOS), len(REPOS))
    jobs = [job for job, _ in harness.sent(FETCH, "github.issues")]
    assert sorted(job.index for job in jobs) == list(range(1, len(REPOS)))   # page 0 came from Paginate
    assert [job.index for job in jobs if job.follow] == [3, 6]   # the walk goes on after each page of 3 repos
    sent = json.dumps([body for _, body, _ in harness.queues.sent])
    starts = [path.read_bytes() for path in (tmp_path / "chain" / "blobs").rglob("*")
              if {"starts", "issues"} <= set(path.parts) and path.is_file()]
    assert len(starts) == len(REPOS) - 1 and all(s.startswith(MARK) for s in starts)   # sealed
    for name in REPOS:
        assert name not in sent and all(name.encode() not in s for s in starts)
    assert status["done"] and [local(w) for w in issues["warnings"]] == [SKIPPED]


def test_a_graphql_child_sends_its_parents_values_as_variables(runs):
    (tables, _, errors), _ = runs
    expected = sorted((n, f"issue {n} of {name}", 1000 + i) for i, name in enumerate(REPOS)
                      for n in range(1, issues_of(i) + 1))
    assert errors["github.gql_issues"] is None and sorted(tables["github.gql_issues"]) == expected


def test_parents_and_children_draw_on_one_rate_bucket(tmp_path):
    api = GitHubApi()
    with StubServer(handler=api) as server:
        sources = {"github": {"type": "api", "base_url": server.url(""), "pagination": {"type": "link_header"},
                              "throttle": {"concurrency": 3, "rate": 40, "burst": 1},
                              "models": {"repos": MODELS["repos"], "issues": MODELS["issues"]}}}
        project = project_from(tmp_path, yaml.safe_dump({"sources": sources}, sort_keys=False))
        [ref] = project.models(["github.issues"])
        started = time.monotonic()
        list(build_extractor(project, ref).records())
        elapsed = time.monotonic() - started
    seen = [s.at for s in server.seen()]
    assert len(seen) > 10 and any("/orgs/" in p for p in api.requests) and any("/issues" in p for p in api.requests)
    assert elapsed >= (len(seen) - 1) / 40 * 0.95   # one bucket of 40/s for every request, parent or child
    # One bucket for parents and children: in any quarter second at most its 10 tokens arrive (plus
    # the burst and a little scheduling jitter); two buckets of 40/s would let about 20 through.
    arrivals = sorted(seen)
    busiest = max(sum(1 for t in arrivals if start <= t < start + 0.25) for start in arrivals)
    assert busiest <= 0.25 * 40 + 3, busiest
