"""Chaos: `main.py run` into PostgreSQL killed (SIGKILL) at random moments, each kill followed by a
rerun. After every rerun each table equals a clean reference run's, and a keyless table, polled
the whole time from here, only ever holds one complete run's rows: never two runs' rows (a kill
between runs used to leave both), never empty once filled, never a run's partial rows.

The same for the queue chain: the local host (`tests/helpers/chaos_host.py`, on Azurite, every chain
message sent twice) killed at random moments while it works through a run, then started again
until the run is done: the messages the killed host held come back and are redone.

The run is a real process (`python main.py run`), so a kill lands wherever it lands: mid-page,
mid-batch, mid-swap. Kill moments are drawn from a seeded generator over the clean run's duration.
A killed run's lease on its tables is left to expire (`leases.ttl_seconds`, short here), and the
rerun waits for it (`--wait`), as a user would. Then two runs at once, and a run and a `rebuild` at
once: the later one waits for the leases, and the tables end as the reference.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain.names import STORAGE_SETTING
from shared.chain.steps import Chain
from shared.config.project import load_project
from shared.storage.azure import AzureBlobStore
from shared.storage.queues import AzureQueueStore
from shared.target.columns import META_COLUMNS, RUN_ID
from shared.target.dialects import create_target_engine, drop_schema
from shared.target.staging_names import is_staging
from tests.helpers.app import empty
from tests.helpers.flow import TEST_KEY
from tests.helpers.main_process import finished, start
from tests.helpers.paths import ROOT

CUSTOMERS = 6_000      # past one load batch of 5,000: a kill can land between a keyless run's batches
KILLS = 3
SEED = 12
LEASE_TTL = 1.0        # a killed run blocks its tables this long
COLUMNS = {"id": {"type": "integer"}, "city": {"path": "address.city", "type": "string", "length": 100},
           "created_at": {"path": "created", "type": "datetime"},
           "balance": {"type": "decimal", "precision": 12, "scale": 2}}


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(customers=CUSTOMERS)) as server:
        yield server


def manifests(folder: Path, state: Path, api_url: str, target_url: str, source: str, per_page: int = 250) -> Path:
    pages = {"path": "/v1/customers", "records": "data", "params": {"per_page": per_page}, "pii_scan": "off",
             "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages"}, "columns": COLUMNS}
    sources = {source: {"type": "api", "base_url": api_url, "throttle": {"concurrency": 2},
                        "models": {"customers": {**pages, "primary_key": ["id"]},   # keyed: upserted
                                   "visits": pages}}}                            # keyless: swapped in
    folder.mkdir()
    (folder / "connector_models.yml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    (folder / "settings.yml").write_text(yaml.safe_dump({
        "target_url": target_url, "state_dir": str(state), "storage": {"root": str(state / "storage")},
        "leases": {"ttl_seconds": LEASE_TTL}}))
    return folder


def table_rows(engine: sa.Engine, schema: str, table: str) -> Counter:
    """The table's rows without kspyder's metadata columns, as a multiset."""
    with engine.connect() as connection:
        result = connection.execute(sa.text(f"SELECT * FROM {schema}.{table}"))
        keep = [i for i, name in enumerate(result.keys()) if name not in META_COLUMNS]
        return Counter(tuple(row[i] for i in keep) for row in result)


class Poller:
    """Counts the keyless table's rows and runs over and over on its own connection, while runs go."""

    def __init__(self, engine: sa.Engine, schema: str, table: str):
        self.engine, self.query = engine, sa.text(f"SELECT COUNT(*), COUNT(DISTINCT {RUN_ID}) FROM {schema}.{table}")
        self.seen: Counter = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        with self.engine.connect() as connection:
            while not self._stop.is_set():
                self.seen[tuple(connection.execute(self.query).one())] += 1
                connection.rollback()
                time.sleep(0.01)


@pytest.fixture()
def embedded(tmp_path, api, postgres_url):
    """A source applied and loaded by one clean run: (manifests, source, engine, reference tables,
    the clean run's seconds)."""
    source = f"kt_chaos_{uuid.uuid4().hex[:8]}"
    folder = manifests(tmp_path / "manifests", tmp_path / "state", api.base_url, postgres_url, source)
    engine = create_target_engine(postgres_url, [source])
    try:
        started = time.monotonic()
        finished(start(folder, source, "--apply"))   # the source named: other tests' schemas are not its plan's
        duration = time.monotonic() - started
        reference = {t: table_rows(engine, source, t) for t in ("customers", "visits")}
        assert sum(reference["visits"].values()) == sum(reference["customers"].values()) == CUSTOMERS
        yield folder, source, engine, reference, duration
    finally:
        with engine.begin() as connection:
            drop_schema(connection, source)
        engine.dispose()


def test_runs_killed_at_random_moments_never_show_a_mix_and_the_rerun_converges(embedded):
    folder, source, engine, reference, duration = embedded
    rng = random.Random(SEED)
    with Poller(engine, source, "visits") as poller:
        for _ in range(KILLS):
            run = start(folder, source, "--wait", str(LEASE_TTL * 5))
            time.sleep(rng.uniform(0.2, duration))   # from start-up to the end of the run
            run.send_signal(signal.SIGKILL)
            run.wait()
            finished(start(folder, source, "--wait", str(LEASE_TTL * 5)))
            assert {t: table_rows(engine, source, t) for t in reference} == reference
    assert set(poller.seen) == {(CUSTOMERS, 1)}, poller.seen   # one complete run's rows, every time
    assert sum(poller.seen.values()) > KILLS
    with engine.connect() as connection:
        tables = sorted(t for t in sa.inspect(connection).get_table_names(schema=source) if is_staging(t))
    assert tables == []   # the last kill's staging table went with the rerun


def test_two_runs_at_once_and_a_run_with_a_rebuild_end_as_the_reference(embedded):
    folder, source, engine, reference, _ = embedded
    with Poller(engine, source, "visits") as poller:
        # two runs at once: the second waits for each model's lease, then replaces it in turn
        first = start(folder, source, "--wait", "60")
        time.sleep(0.5)
        finished(start(folder, source, "--wait", "60"))
        finished(first)
        assert {t: table_rows(engine, source, t) for t in reference} == reference
    assert set(poller.seen) == {(CUSTOMERS, 1)}, poller.seen
    # a run and a rebuild at once (a rebuild empties the tables on purpose: not polled)
    run = start(folder, source, "--wait", "60")
    time.sleep(0.5)
    finished(start(folder, source, "--auto-approve", "--wait", "60", command="rebuild"))
    finished(run)
    assert {t: table_rows(engine, source, t) for t in reference} == reference


CHAIN_RUNS, CHAIN_KILLS = 1, 3
CHAIN_CUSTOMERS = 1_000   # 10 pages a model: each page its own Fetch and Load message
# Seconds a received message stays hidden (the real host: ten minutes, renewed while a function runs).
# The local host does not renew it: long enough for any one step here, short enough that a killed
# host's messages come back within the test.
HOST_LEASE = 8.0


def host(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.helpers.chaos_host", "--once", "--workers", "4",
                             "--timeout", "120"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def small_api():
    with SampleApi(ApiConfig(customers=CHAIN_CUSTOMERS)) as server:
        yield server


def test_chain_hosts_killed_at_random_moments_with_duplicate_deliveries(tmp_path, small_api, azurite, postgres_url):
    source = f"kt_chaosq_{uuid.uuid4().hex[:8]}"
    folder = manifests(tmp_path / "manifests", tmp_path / "state", small_api.base_url, postgres_url, source,
                       per_page=100)
    engine = create_target_engine(postgres_url, [source])
    env = {**os.environ, STORAGE_SETTING: azurite.connection_string, "KSPYDER_MANIFESTS": str(folder),
           "KSPYDER_PII_KEY": TEST_KEY, "KSPYDER_SCHEDULE": "0 0 0 1 1 *", "KSPYDER_TEST_LEASE": str(HOST_LEASE),
           "KSPYDER_TEST_DOUBLE": "1"}
    queues = AzureQueueStore.from_connection_string(azurite.connection_string)
    blobs = AzureBlobStore.from_connection_string(azurite.connection_string)
    project = load_project(folder, env={"KSPYDER_PII_KEY": TEST_KEY})
    empty(queues)
    try:
        finished(start(folder, source, "--apply"))   # the clean reference: an embedded run
        reference = {t: table_rows(engine, source, t) for t in ("customers", "visits")}
        rng = random.Random(SEED)
        with Poller(engine, source, "visits") as poller:
            for _ in range(CHAIN_RUNS):
                with Chain(project, blobs, queues) as chain:
                    run_id = chain.start_run([source], "chaos")
                for _ in range(CHAIN_KILLS):
                    process = host(env)
                    time.sleep(rng.uniform(1.5, 5.0))   # the host starts in about 3 s
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                finished(host(env))
                with Chain(project, blobs, queues) as chain:
                    status = chain.run_status(run_id)
                assert status["status"] == "succeeded", status
                assert {t: table_rows(engine, source, t) for t in reference} == reference
        assert set(poller.seen) == {(CHAIN_CUSTOMERS, 1)}, poller.seen
        with engine.connect() as connection:
            assert [t for t in sa.inspect(connection).get_table_names(schema=source) if is_staging(t)] == []
    finally:
        empty(queues)
        with engine.begin() as connection:
            drop_schema(connection, source)
        engine.dispose()
