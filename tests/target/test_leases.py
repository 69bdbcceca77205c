"""The lease table itself (`shared/target/lease.py`) on SQLite, PostgreSQL and MariaDB: taken
atomically by one holder, refused to the others with the holder named, taken again by the same
run, renewed, released, and free once expired. Lease names are unique per test: the table is
shared by every test using the same database."""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from shared.schema.plan import PlanOptions, compute_plan
from shared.target.dialects import create_target_engine
from shared.target.lease import LEASE_TABLE, Lease, LeaseHeld, Leases, refusal, retry_delay, utc
from tests.helpers.flow import api_source, project_for


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'target.db'}"
    else:
        url = request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")
    made = create_target_engine(url, ["shop"] if request.param == "sqlite" else [])
    yield made
    made.dispose()


def names(count: int = 1) -> list[str]:
    tag = uuid.uuid4().hex[:10]
    return [f"t{tag}.m{i}" for i in range(count)]


def test_one_holder_at_a_time_named_in_the_refusal(engine):
    clock = Clock()
    leases = Leases(engine, ttl=60, clock=clock)
    [name] = names()
    leases.acquire([name], "run-a", "host-a pid 1")
    with pytest.raises(LeaseHeld) as refused:
        leases.acquire([name], "run-b", "host-b pid 2")
    lease = refused.value.lease
    assert (lease.name, lease.run_id, lease.holder) == (name, "run-a", "host-a pid 1")
    assert lease.expires_at == utc(clock.now) + timedelta(seconds=60)
    assert str(refused.value) == (f"{name} is leased by run run-a (host-a pid 1) until "
                                  f"{lease.expires_at.isoformat(timespec='seconds')}Z: one writer of a table at a time")
    leases.acquire([name], "run-a", "host-a pid 1")   # the holder's run passes
    leases.release([name], "run-b")                   # not the holder: nothing happens
    assert leases.get(name).run_id == "run-a"
    leases.release([name], "run-a")
    assert leases.get(name) is None
    leases.acquire([name], "run-b", "host-b pid 2")
    assert leases.get(name).run_id == "run-b"


def test_all_or_none(engine):
    leases = Leases(engine, ttl=60, clock=Clock())
    first, second, third = names(3)
    leases.acquire([second], "run-a", "a")
    with pytest.raises(LeaseHeld) as refused:
        leases.acquire([first, second, third], "run-b", "b")
    assert refused.value.lease.name == second
    assert leases.get(first) is None and leases.get(third) is None


def test_an_expired_lease_is_taken_over_and_the_old_holder_learns_it_lost_it(engine):
    clock = Clock()
    leases = Leases(engine, ttl=30, clock=clock)
    [name] = names()
    leases.acquire([name], "run-a", "a")
    clock.now += 29
    with pytest.raises(LeaseHeld):
        leases.acquire([name], "run-b", "b")
    assert leases.renew([name], "run-a") == []       # the heartbeat moves the expiry on
    clock.now += 29
    with pytest.raises(LeaseHeld):
        leases.acquire([name], "run-b", "b")
    clock.now += 31                                   # no heartbeat for longer than the ttl
    leases.acquire([name], "run-b", "b")
    taken = leases.get(name)
    assert (taken.run_id, taken.acquired_at) == ("run-b", utc(clock.now))
    assert leases.renew([name], "run-a") == [name]    # lost: renewing does not take it back
    assert leases.get(name).run_id == "run-b"


def test_renew_never_shortens_a_longer_lease(engine):
    clock = Clock()
    leases = Leases(engine, ttl=60, clock=clock)
    [name] = names()
    far = utc(clock.now) + timedelta(seconds=600)
    leases.acquire([name], "run-a", "a", until=far)
    assert leases.get(name).expires_at == far
    leases.renew([name], "run-a")
    leases.acquire([name], "run-a", "a")
    assert leases.get(name).expires_at == far


def test_taking_ones_own_lease_again_keeps_when_it_was_taken(engine):
    clock = Clock()
    leases = Leases(engine, ttl=60, clock=clock)
    [name] = names()
    leases.acquire([name], "run-a", "host pid 1")
    clock.now += 10
    leases.acquire([name], "run-a", "host pid 2")
    lease = leases.get(name)
    assert (lease.acquired_at, lease.heartbeat_at, lease.holder) == (utc(clock.now - 10), utc(clock.now), "host pid 2")
    assert lease.expires_at == utc(clock.now) + timedelta(seconds=60)


def test_concurrent_takers_get_it_once(engine):
    """Eight threads race for one lease: exactly one gets it, the others are refused naming it."""
    leases = Leases(engine, ttl=60)
    [name] = names()
    won, refused, failed = [], [], []
    start = threading.Barrier(8)

    def take(i: int) -> None:
        start.wait()
        try:
            leases.acquire([name], f"run-{i}", f"thread {i}")
            won.append(i)
        except LeaseHeld as exc:
            refused.append(exc.lease.run_id)
        except Exception as exc:   # noqa: BLE001 - reported below
            failed.append(repr(exc))

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failed == []
    assert len(won) == 1 and refused == [f"run-{won[0]}"] * 7


def test_waiting_gets_the_lease_once_released(engine):
    leases = Leases(engine, ttl=60)
    [name] = names()
    leases.acquire([name], "run-a", "a")
    released = threading.Timer(0.5, leases.release, ([name], "run-a"))
    released.start()
    leases.acquire([name], "run-b", "b", wait=30)
    released.join()
    assert leases.get(name).run_id == "run-b"


def test_the_lease_table_is_not_a_model_table_to_plan(tmp_path):
    """On SQLite the table sits in the main file, outside every source's schema file: plan (with
    --prune) neither lists nor drops it."""
    target = tmp_path / "target.db"
    project = project_for(tmp_path, {"shop": api_source("http://127.0.0.1:9", {"things": {
        "path": "/things", "primary_key": ["id"], "columns": {"id": {"type": "integer"}}}})},
        {"target_url": f"sqlite:///{target}"})
    engine = create_target_engine(project.settings.target_url, ["shop"])
    try:
        Leases(engine, ttl=60).acquire(["shop.things"], "run-a", "a")
        with engine.connect() as connection:
            plan = compute_plan(connection, project, PlanOptions(prune=True))
            assert [c.qualified for c in plan.changes] == ["shop", "shop.things"]
            assert plan.kept == ()
            assert sa.inspect(connection).has_table(LEASE_TABLE)
    finally:
        engine.dispose()


def test_pure_parts():
    now = utc(1_800_000_000)
    lease = Lease("shop.events", "run-a", "h", now, now, now + timedelta(seconds=5))
    assert retry_delay(lease, now, ttl=60) == 5
    assert retry_delay(lease, now + timedelta(seconds=10), ttl=60) == 1
    assert retry_delay(Lease("x", "r", "h", now, now, now + timedelta(seconds=600)), now, ttl=60) == 20
    assert "shop.events is leased by run run-a (h) until 2027-01-15T08:00:05Z" in refusal(lease)
