"""Per-parent incremental state (issue 15 §1): a child model keeps one cursor per parent record (a
partition of `_kspyder_state`), embedded and through the queue chain, on SQLite, PostgreSQL and
MariaDB, against GitHub's repository issues with `since` (tests/helpers/github_since.py)."""
from __future__ import annotations

import importlib
import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cli.main import cli
from shared.chain.names import FETCH, LOAD, LOAD_POISON
from shared.chain.poison import replay
from shared.chain.pump import drain
from shared.config.project import Project
from shared.ledger import RunLedger
from shared.load.cursor_state import list_state
from shared.pipeline import run_models
from shared.schema.apply import PlanStamp, apply_stamped
from shared.schema.plan import PlanOptions, compute_plan
from shared.storage import LocalBlobStore
from shared.target.dialects import create_target_engine, drop_schema
from tests.helpers.flow import project_for
from tests.helpers.github_since import ORG, GitHubIssuesSince
from tests.helpers.http_stub import StubServer

INITIAL = "2024-01-01T00:00:00Z"


def models(issues_extra: dict | None = None) -> dict:
    return {
        "repos": {"path": f"/orgs/{ORG}/repos", "params": {"per_page": 100}, "primary_key": ["id"],
                  "columns": {"id": {"type": "bigint"}, "name": {"type": "string"}}},
        "issues": {"parent": "repos", "path": f"/repos/{ORG}/{{parent.name}}/issues",
                   "params": {"state": "all", "per_page": 2, "sort": "updated", "direction": "asc"},
                   "primary_key": ["id"], "include_from_parent": ["id"],
                   "incremental": {"cursor_path": "updated_at", "param": "since", "initial_value": INITIAL},
                   "columns": {"id": {"type": "bigint"}, "number": {"type": "integer"},
                               "updated_at": {"type": "datetime"}}, **(issues_extra or {})}}


class Target:
    """One project over the emulation, run embedded or through the in-process chain, on one database."""

    def __init__(self, tmp_path: Path, url: str, mode: str, base_url: str, harness_for, repos: dict | None = None,
                 issues_extra: dict | None = None):
        self.source = f"pp_{uuid.uuid4().hex[:8]}"
        self.mode, self.url = mode, url
        source = {"type": "api", "base_url": base_url, "pagination": {"type": "link_header"},
                  "throttle": {"concurrency": 2, "max_retries": 0}, "models": models(issues_extra)}
        if repos is not None:
            source["models"]["repos"] = repos
        self.project: Project = project_for(tmp_path, {self.source: source},
                                            {"target_url": url, "storage": {"root": str(tmp_path / "storage")}})
        self.engine = create_target_engine(url, [self.source])
        with self.engine.connect() as connection:
            plan = compute_plan(connection, self.project, PlanOptions(selectors=(self.source,)))
        apply_stamped(self.engine, self.project, PlanStamp.of(plan))
        self.ledger = RunLedger(LocalBlobStore(tmp_path / "ledger"))
        if mode == "chain":
            self.harness = harness_for(self.project, max_dequeue_count=1)
            self.harness.engine.dispose()
            self.harness.engine = self.engine

    def run(self) -> bool:
        if self.mode == "chain":
            run_id = self.harness.run(visibility_timeout=0.2, max_dequeue_count=1)
            return bool(self.harness.status(run_id)["status"] == "succeeded")
        return run_models(self.project, self.project.models(), engine=self.engine, ledger=self.ledger).ok

    def start_until_poisoned(self) -> None:
        """Chain: a run pumped until one Load message is poisoned (its run then waits for it)."""
        queues = self.harness.queues
        with self.harness.chain() as chain:
            self.stuck = chain.start_run((), trigger="test")
        drain(self.harness.chain, queues, until=lambda: queues.peek_count(LOAD_POISON) > 0 and all(
            queues.peek_count(q) == 0 for q in (FETCH, LOAD)), timeout=30, visibility_timeout=0.2,
            max_dequeue_count=1)

    def replay_and_finish(self) -> None:
        assert replay(self.harness.queues, LOAD_POISON) == 1
        drain(self.harness.chain, self.harness.queues, timeout=30, visibility_timeout=0.2, max_dequeue_count=1)
        assert self.harness.status(self.stuck)["status"] == "succeeded"

    def cursors(self) -> dict[str, str]:
        with self.engine.connect() as connection:
            return {s.partition: s.cursor for s in list_state(connection, self.source, "issues")}

    def issues(self) -> dict[int, tuple[int, str]]:
        """Issue id -> (its repository id, its updated_at as the emulation writes it)."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.text(f"SELECT id, repos_id, updated_at FROM {self.source}.issues")).all()
        return {row[0]: (row[1], _zulu(row[2])) for row in rows}

    def close(self) -> None:
        if not self.url.startswith("sqlite"):
            with self.engine.begin() as connection:
                drop_schema(connection, self.source)
        self.engine.dispose()


def _zulu(value) -> str:
    text = value if isinstance(value, str) else value.strftime("%Y-%m-%d %H:%M:%S")
    return text.replace(" ", "T")[:19] + "Z"


def partition(repo_id: int) -> str:
    return json.dumps([["repos", [repo_id]]], separators=(",", ":"))


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")


@pytest.fixture(params=["embedded", "chain"])
def mode(request):
    return request.param


def test_each_parent_reads_from_its_own_cursor_and_a_new_parent_from_the_initial_value(tmp_path, url, mode,
                                                                                        harness_for):
    github = GitHubIssuesSince(["alpha", "beta", "gamma"])
    with StubServer(handler=github) as server:
        target = Target(tmp_path, url, mode, server.url(""), harness_for)
        try:
            assert target.run()
            assert sorted(github.asked) == [("alpha", INITIAL), ("beta", INITIAL), ("gamma", INITIAL)]
            assert target.cursors() == {partition(1000): "2024-01-01T03:00:00Z",
                                        partition(1001): "2024-01-01T13:00:00Z",
                                        partition(1002): "2024-01-01T23:00:00Z"}
            assert len(target.issues()) == 9
            touched = github.touch("beta", 1, hours=40)
            github.add_repo("delta")
            github.asked.clear()
            assert target.run()
            assert sorted(github.asked) == [("alpha", "2024-01-01T03:00:00Z"), ("beta", "2024-01-01T13:00:00Z"),
                                            ("delta", INITIAL), ("gamma", "2024-01-01T23:00:00Z")]
            issues = target.issues()
            assert len(issues) == 12 and issues[201] == (1001, touched)
            assert target.cursors()[partition(1001)] == touched
            assert target.cursors()[partition(1003)] == "2024-01-02T09:00:00Z"
        finally:
            target.close()


def test_a_crash_between_rows_and_state_leaves_each_partition_consistent(tmp_path, url, mode, harness_for,
                                                                         monkeypatch):
    github = GitHubIssuesSince(["alpha", "beta", "gamma"])
    with StubServer(handler=github) as server:
        target = Target(tmp_path, url, mode, server.url(""), harness_for)
        try:
            assert target.run()
            for name, hours in (("alpha", 50), ("beta", 51), ("gamma", 52)):
                github.touch(name, 2, hours)
            broken = partition(1001)
            where = "shared.pipeline.incremental.write_state" if mode == "embedded" else \
                "shared.chain.cursors.advance_state"
            module_name, _, attr = where.rpartition(".")
            original = getattr(importlib.import_module(module_name), attr)

            def crash(*args, **kwargs):
                if broken in args or kwargs.get("partition") == broken:
                    raise RuntimeError("killed between the rows and the cursor")
                return original(*args, **kwargs)

            monkeypatch.setattr(where, crash)
            if mode == "embedded":
                with pytest.raises(RuntimeError):
                    target.run()
            else:   # beta's Load fails and its message goes to the poison queue; the run waits for it
                target.start_until_poisoned()
            cursors = target.cursors()
            assert cursors[broken] == "2024-01-01T13:00:00Z"   # beta's rows went back with its cursor
            issues = target.issues()
            for repo_id, name in ((1000, "alpha"), (1001, "beta"), (1002, "gamma")):
                for issue in github.issues[name]:   # every change at or below a partition's cursor is loaded
                    if issue["updated_at"] <= cursors[partition(repo_id)]:
                        assert issues[issue["id"]] == (repo_id, issue["updated_at"])
            assert issues[202] != (1001, github.issues["beta"][1]["updated_at"])
            monkeypatch.undo()
            if mode == "chain":   # the operator replays the poisoned Load: it commits beta's rows and cursor
                target.replay_and_finish()
                assert target.cursors()[broken] == github.issues["beta"][1]["updated_at"]
                github.touch("beta", 2, 60)
            github.asked.clear()
            assert target.run()
            assert ("beta", "2024-01-01T13:00:00Z" if mode == "embedded" else "2024-01-03T03:00:00Z") in github.asked
            assert target.issues()[202] == (1001, github.issues["beta"][1]["updated_at"])
            assert target.cursors()[broken] == github.issues["beta"][1]["updated_at"]
        finally:
            target.close()


def test_a_parent_key_with_a_pii_rule_is_stored_hashed_in_the_partition(tmp_path, harness_for):
    github = GitHubIssuesSince(["alpha", "beta"])
    repos = {"path": f"/orgs/{ORG}/repos", "params": {"per_page": 100}, "primary_key": ["name"],
             "columns": {"name": {"type": "string", "pii": "hash"}}}
    with StubServer(handler=github) as server:
        target = Target(tmp_path, f"sqlite:///{tmp_path / 'target.db'}", "embedded", server.url(""), harness_for,
                        repos=repos, issues_extra={"include_from_parent": []})
        try:
            assert target.run()
            with target.engine.connect() as connection:
                stored = sorted(connection.execute(sa.text(f"SELECT name FROM {target.source}.repos")).scalars())
            cursors = target.cursors()
            assert sorted(cursors) == sorted(json.dumps([["repos", [h]]], separators=(",", ":")) for h in stored)
            assert not any("alpha" in p or "beta" in p for p in cursors)
        finally:
            target.close()


def test_state_show_lists_partitions_and_reset_forgets_them_all(tmp_path, harness_for):
    github = GitHubIssuesSince(["alpha", "beta"])
    with StubServer(handler=github) as server:
        target = Target(tmp_path, f"sqlite:///{tmp_path / 'target.db'}", "embedded", server.url(""), harness_for)
        try:
            assert target.run()
            manifests = str(tmp_path / "manifests")
            runner = CliRunner()
            shown = runner.invoke(cli, ["--manifests", manifests, "state", "show", f"{target.source}.issues"])
            assert shown.exit_code == 0, shown.output
            lines = shown.output.splitlines()
            assert [line.split("  ")[0] for line in lines] == [
                f"{target.source}.issues[{partition(1000)}]", f"{target.source}.issues[{partition(1001)}]"]
            reset = runner.invoke(cli, ["--manifests", manifests, "state", "reset", f"{target.source}.issues",
                                        "--auto-approve"])
            assert reset.exit_code == 0 and "2 cursor(s) forgotten" in reset.output
            assert target.cursors() == {}
            github.asked.clear()
            assert target.run()
            assert sorted(github.asked) == [("alpha", INITIAL), ("beta", INITIAL)]
        finally:
            target.close()
