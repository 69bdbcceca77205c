"""One run of a model at a time, with real `main.py` processes: a second `run` (or an `apply`) of a
keyless model another run is loading is refused, naming that run, and the table keeps every row;
`--wait` waits for it instead; a run killed with SIGKILL is shown `abandoned` and the next run
proceeds once its lease has expired.

The source is a loopback server whose third page waits for the test to open a gate, so the first
run is held in the middle of its load for as long as the test needs, without timing guesses."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.target.dialects import create_target_engine
from shared.target.lease import Leases
from tests.helpers.chain import applied_target
from tests.helpers.flow import api_source, project_for
from tests.helpers.http_stub import Reply, StubServer
from tests.helpers.paths import ROOT

PAGES, PER_PAGE = 5, 10
GATED_PAGE = 3
DEADLINE = 60.0   # seconds any wait below may take on a loaded machine before the test fails


class GatedApi:
    """Pages 1..PAGES of ten items; page GATED_PAGE answers only once `gate` is set."""

    def __init__(self):
        self.gate = threading.Event()
        self.server = StubServer(handler=self.reply)

    def reply(self, seen) -> Reply:
        page = int(seen.query.get("page", ["1"])[0])
        if page == GATED_PAGE:
            self.gate.wait(DEADLINE)
        items = [{"id": (page - 1) * PER_PAGE + i, "name": f"item {i}"} for i in range(PER_PAGE)]
        return Reply(body={"data": items, "meta": {"total_pages": PAGES}})


@pytest.fixture
def api():
    gated = GatedApi()
    with gated.server:
        yield gated
        gated.gate.set()


def manifests(tmp_path: Path, base_url: str, source: str, target_url: str, *, ttl: float = 60,
              extra_column: bool = False, folder: str = "a"):
    columns = {"id": {"type": "integer"}, "name": {"type": "string", "length": 50}}
    if extra_column:
        columns["label"] = {"type": "string", "length": 20}
    model = {"path": "/items", "records": "data", "params": {"per_page": PER_PAGE},   # keyless: replaced per run
             "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages"}, "columns": columns}
    home = tmp_path / folder
    home.mkdir(exist_ok=True)
    settings = {"target_url": target_url, "state_dir": str(tmp_path / "state"), "leases": {"ttl_seconds": ttl},
                "pii": {"scan_process": False}}
    return project_for(home, {source: api_source(base_url, {"items": model})}, settings)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    source = f"k{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'target.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    yield source, url
    if request.param == "postgresql":
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{source}" CASCADE'))
        engine.dispose()


def prepared(tmp_path, api, target, **options):
    source, url = target
    project = manifests(tmp_path, api.server.url(""), source, url, **options)
    if url.startswith("sqlite"):
        applied_target(project, Path(url.removeprefix("sqlite:///"))).dispose()
    else:
        from shared.schema.apply import PlanStamp, apply_stamped
        from shared.schema.plan import PlanOptions, compute_plan
        engine = create_target_engine(url, [source])
        with engine.connect() as connection:
            plan = compute_plan(connection, project, PlanOptions(selectors=(source,)))
        apply_stamped(engine, project, PlanStamp.of(plan))
        engine.dispose()
    return project


def main(tmp_path: Path, *args: str, folder: str = "a") -> subprocess.Popen:
    env = dict(os.environ, KSPYDER_MANIFESTS=str(tmp_path / folder / "manifests"))
    out = open(tmp_path / f"{folder}-{'-'.join(args).replace('/', '_')}-{time.monotonic_ns()}.err", "w+")
    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=out, text=True)
    process.err = out
    return process


def finished(process: subprocess.Popen) -> tuple[int, str, str]:
    stdout, _ = process.communicate(timeout=DEADLINE)
    process.err.seek(0)
    return process.returncode, stdout, process.err.read()


def lease_holder(project, name: str, run_id: str | None = None):
    """The lease of `name` once a run (or `run_id`) holds it."""
    engine = create_target_engine(project.settings.target_url, list(project.sources))
    try:
        leases = Leases(engine, ttl=60)
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            lease = leases.get(name)
            if lease is not None and (run_id is None or lease.run_id == run_id):
                return lease
            threading.Event().wait(0.05)
    finally:
        engine.dispose()
    raise AssertionError(f"no run took the lease of {name} within {DEADLINE}s")


def rows(project) -> list[tuple]:
    [ref] = project.models()
    engine = create_target_engine(project.settings.target_url, list(project.sources))
    try:
        with engine.connect() as connection:
            table = sa.Table(ref.name, sa.MetaData(), autoload_with=connection, schema=ref.source_name)
            return [tuple(r) for r in connection.execute(sa.select(table.c.id, table.c._kspyder_run_id))]
    finally:
        engine.dispose()


def wait_for_text(process: subprocess.Popen, text: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        process.err.seek(0)
        if text in process.err.read():
            return
        if process.poll() is not None:
            raise AssertionError(f"the process ended without printing {text!r}: {finished(process)}")
        threading.Event().wait(0.05)
    raise AssertionError(f"{text!r} not printed within {DEADLINE}s")


def test_a_second_run_of_a_model_being_loaded_is_refused_and_the_table_keeps_every_row(tmp_path, api, target):
    project = prepared(tmp_path, api, target)
    [ref] = project.models()
    first = main(tmp_path, "run")
    held = lease_holder(project, ref.qualified)
    second = main(tmp_path, "run")
    code, _, err = finished(second)
    assert code == 1, err
    assert f"{ref.qualified}: REFUSED: {ref.qualified} is leased by run {held.run_id} (" in err
    assert f"pid {first.pid}) until " in err
    api.gate.set()
    code, _, err = finished(first)
    assert code == 0, err
    assert sorted(rows(project)) == [(i, held.run_id) for i in range(PAGES * PER_PAGE)]

    status = main(tmp_path, "status")
    code, out, err = finished(status)
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert sorted(lines.values()) == ["failed", "succeeded"] and lines[held.run_id] == "succeeded", out


def test_run_wait_waits_for_the_other_run_then_replaces_its_rows(tmp_path, api, target):
    project = prepared(tmp_path, api, target)
    [ref] = project.models()
    first = main(tmp_path, "run")
    held = lease_holder(project, ref.qualified)
    second = main(tmp_path, "run", "--wait", str(DEADLINE))
    wait_for_text(second, f"waiting for {ref.qualified}, leased by run {held.run_id}")
    api.gate.set()
    assert finished(first)[0] == 0
    code, _, err = finished(second)
    assert code == 0, err
    [second_run] = {run_id for _, run_id in rows(project)}
    assert second_run != held.run_id
    assert sorted(rows(project)) == [(i, second_run) for i in range(PAGES * PER_PAGE)]


def test_apply_is_refused_while_a_run_loads_the_table_it_would_change(tmp_path, api, target):
    project = prepared(tmp_path, api, target)
    [ref] = project.models()
    source, url = target
    manifests(tmp_path, api.server.url(""), source, url, extra_column=True, folder="b")
    first = main(tmp_path, "run")
    held = lease_holder(project, ref.qualified)
    apply = main(tmp_path, "apply", "--auto-approve", folder="b")
    code, _, err = finished(apply)
    assert code == 1
    assert f"error: not applied: {ref.qualified} is leased by run {held.run_id}" in err
    api.gate.set()
    assert finished(first)[0] == 0
    assert sorted(rows(project)) == [(i, held.run_id) for i in range(PAGES * PER_PAGE)]
    code, out, _ = finished(main(tmp_path, "plan", folder="b"))
    assert code == 2 and "label" in out   # still to apply: nothing changed


def test_a_killed_run_is_abandoned_and_the_next_run_proceeds_once_its_lease_expires(tmp_path, api):
    project = prepared(tmp_path, api, (f"k{uuid.uuid4().hex[:10]}", f"sqlite:///{tmp_path / 'target.db'}"), ttl=8)
    [ref] = project.models()
    killed = main(tmp_path, "run")
    held = lease_holder(project, ref.qualified)
    killed.send_signal(signal.SIGKILL)
    killed.wait(DEADLINE)
    api.gate.set()

    code, _, err = finished(main(tmp_path, "run"))   # the lease has not expired yet
    assert code == 1 and f"is leased by run {held.run_id}" in err

    code, _, err = finished(main(tmp_path, "run", "--wait", str(DEADLINE)))
    assert code == 0, err
    [next_run] = {run_id for _, run_id in rows(project)}
    assert sorted(rows(project)) == [(i, next_run) for i in range(PAGES * PER_PAGE)]

    code, out, _ = finished(main(tmp_path, "status", held.run_id))
    assert code == 0 and out.startswith(f"run {held.run_id} (cli): abandoned, started "), out
