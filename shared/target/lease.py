"""Leases: one writer per table at a time, held in the target database itself (so they hold across
machines and function instances), with an expiry so that a killed holder never blocks for ever.

A lease is a row of `_kspyder_leases` in the target's default schema (SQLite: the main database
file; PostgreSQL: the connection's schema, usually `public`; MariaDB/MySQL: the URL's database).
The table has no `_kspyder_run_id` column, so `plan`, `apply --prune` and `rebuild` never see it as
a managed table, and it lives outside every source schema they drop.

Taking a lease is one transaction: an UPDATE that succeeds only when the row is expired or already
this run's, else an INSERT that fails on the primary key when another holder has the row. Times are
the holders' clocks (UTC): hosts must agree within a small part of the ttl.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from weakref import WeakSet

import sqlalchemy as sa

from shared.target.dialects import MYSQL_FAMILY, table_options, variant

log = logging.getLogger("kspyder.lease")
LEASE_TABLE = "_kspyder_leases"
NAME_LENGTH, HOLDER_LENGTH, RUN_ID_LENGTH = 200, 200, 36
ATTEMPTS = 10     # a transaction lost to a deadlock or a busy SQLite file is tried again this often
POLL_SECONDS = 1.0   # how often a waiting holder asks again

Clock = Callable[[], float]


def lease_table(metadata: sa.MetaData, dialect: str = "") -> sa.Table:
    def time() -> sa.types.TypeEngine:   # naive UTC, microseconds
        return variant(sa.DateTime(), dialect, MYSQL_FAMILY, lambda mysql: mysql.DATETIME(fsp=6))
    return sa.Table(LEASE_TABLE, metadata,
                    sa.Column("name", sa.String(NAME_LENGTH), primary_key=True),
                    sa.Column("run_id", sa.String(RUN_ID_LENGTH), nullable=False),
                    sa.Column("holder", sa.String(HOLDER_LENGTH), nullable=False),
                    sa.Column("acquired_at", time(), nullable=False),
                    sa.Column("heartbeat_at", time(), nullable=False),
                    sa.Column("expires_at", time(), nullable=False),
                    **table_options(dialect))


@dataclass(frozen=True)
class Lease:
    name: str            # what is leased: a table, "source.model"
    run_id: str          # the holder's run
    holder: str          # who that is: "host pid 4242", "queue chain on host"
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime  # naive UTC

    def expired(self, now: datetime) -> bool:
        return self.expires_at < now


class LeaseHeld(Exception):
    """The lease is another run's: the message names the table, the holder and when it expires."""

    def __init__(self, lease: Lease):
        self.lease = lease
        super().__init__(refusal(lease))


def refusal(lease: Lease) -> str:
    return (f"{lease.name} is leased by run {lease.run_id} ({lease.holder}) until "
            f"{lease.expires_at.isoformat(timespec='seconds')}Z: one writer of a table at a time")


class LeaseLost(Exception):
    """The holder stalled past its lease's expiry and another run took the table meanwhile."""


def this_process() -> str:
    """The holder description of an embedded command: host and process id."""
    return f"{socket.gethostname()} pid {os.getpid()}"


def utc(epoch: float) -> datetime:
    """A clock reading as the naive UTC datetime the lease table stores."""
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def retry_delay(lease: Lease, now: datetime, ttl: float) -> float:
    """Seconds before asking again for a held lease: when it would expire, at least one second and
    at most a third of the ttl (the holder's heartbeat moves the expiry on meanwhile)."""
    return min(max((lease.expires_at - now).total_seconds(), 1.0), max(ttl / 3, 1.0))


_ensured: WeakSet[sa.Engine] = WeakSet()   # engines whose database has the table (made once per engine)


class Leases:
    """The lease table of one target engine. `ttl`: seconds a lease lasts without a heartbeat."""

    def __init__(self, engine: sa.Engine, ttl: float, clock: Clock = time.time):
        if ttl <= 0:
            raise ValueError("ttl must be > 0")
        self.engine, self.ttl, self.clock = engine, ttl, clock
        self.table = lease_table(sa.MetaData(), engine.dialect.name)

    def now(self) -> datetime:
        return utc(self.clock())

    # ------------------------------------------------------------ taking
    def acquire(self, names: Iterable[str], run_id: str, holder: str, *, wait: float = 0.0,
                until: datetime | None = None) -> None:
        """Take every lease of `names` for `run_id`, all or none (a run that holds one already
        passes); LeaseHeld for the first one another run holds, after waiting up to `wait`
        seconds for it. `until`: an expiry later than now + ttl (a holder that knows it pauses)."""
        names = sorted(set(names))
        deadline = time.monotonic() + wait
        while True:
            blocking = self.try_acquire(names, run_id, holder, until=until)
            if blocking is None:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise LeaseHeld(blocking)
            log.info("waiting for %s, leased by run %s", blocking.name, blocking.run_id)
            threading.Event().wait(min(POLL_SECONDS, left))

    def try_acquire(self, names: Iterable[str], run_id: str, holder: str, *,
                    until: datetime | None = None) -> Lease | None:
        """None when every lease of `names` is now `run_id`'s; else the lease that stopped it
        (nothing taken)."""
        names = sorted(set(names))
        if not names:
            return None
        self._ensure()
        for attempt in range(ATTEMPTS):
            now = self.now()
            expires = max(now + timedelta(seconds=self.ttl), until or now)
            try:
                with self.engine.begin() as connection:
                    for name in names:
                        self._take(connection, name, run_id, holder, now, expires)
                return None
            except sa.exc.IntegrityError:   # another run holds one (or took it meanwhile): nothing taken
                blocking = self._blocking(names, run_id)
                if blocking is not None:
                    return blocking
            except sa.exc.OperationalError:   # deadlock (MariaDB gap locks), busy SQLite file
                if attempt == ATTEMPTS - 1:
                    raise
            threading.Event().wait(0.05 * (attempt + 1))   # released or expired meanwhile: again
        raise sa.exc.InvalidRequestError(f"could not take the leases of {', '.join(names)}")

    def _take(self, connection: sa.Connection, name: str, run_id: str, holder: str, now: datetime,
              expires: datetime) -> None:
        """One UPDATE when the row is this run's or expired, else an INSERT, which fails on the key
        when another run holds the row. Writes only, the first one first: SQLite then takes its
        write lock waiting for a busy file, where a read first would fail at once when another
        writer committed meanwhile."""
        t = self.table
        mine = t.c.run_id == run_id
        # MariaDB and MySQL assign a SET list left to right, each expression seeing the columns set
        # before it: the two that read run_id come before run_id changes
        taken = connection.execute(
            sa.update(t).where(t.c.name == name, sa.or_(mine, t.c.expires_at < now)).ordered_values(
                (t.c.acquired_at, sa.case((mine, t.c.acquired_at), else_=now)),
                (t.c.expires_at, sa.case((sa.and_(mine, t.c.expires_at > expires), t.c.expires_at),
                                         else_=expires)),   # this run's expiry is never shortened
                (t.c.run_id, run_id), (t.c.holder, holder[:HOLDER_LENGTH]), (t.c.heartbeat_at, now)))
        if not taken.rowcount:
            connection.execute(sa.insert(t).values(name=name, run_id=run_id, holder=holder[:HOLDER_LENGTH],
                                                   acquired_at=now, heartbeat_at=now, expires_at=expires))

    def _blocking(self, names: list[str], run_id: str) -> Lease | None:
        now = self.now()
        for name in names:
            lease = self.get(name)
            if lease is not None and lease.run_id != run_id and not lease.expired(now):
                return lease
        return None

    # ------------------------------------------------------------ keeping, giving back
    def renew(self, names: Iterable[str], run_id: str, *, until: datetime | None = None) -> list[str]:
        """Move the expiry of `run_id`'s leases of `names` on (never earlier than it is); the names
        that are no longer its (expired and taken by another run: the holder lost them)."""
        names = sorted(set(names))
        if not names:
            return []
        t = self.table
        now = self.now()
        expires = max(now + timedelta(seconds=self.ttl), until or now)
        with self.engine.begin() as connection:
            connection.execute(sa.update(t).where(t.c.name.in_(names), t.c.run_id == run_id, t.c.expires_at < expires)
                               .values(heartbeat_at=now, expires_at=expires))
            kept = set(connection.execute(sa.select(t.c.name).where(t.c.name.in_(names), t.c.run_id == run_id))
                       .scalars())
        return [name for name in names if name not in kept]

    def release(self, names: Iterable[str], run_id: str) -> None:
        """Give back `run_id`'s leases of `names` (the others' are left alone)."""
        names = sorted(set(names))
        if not names:
            return
        t = self.table
        with self.engine.begin() as connection:
            connection.execute(sa.delete(t).where(t.c.name.in_(names), t.c.run_id == run_id))

    def get(self, name: str) -> Lease | None:
        self._ensure()
        t = self.table
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(t).where(t.c.name == name)).first()
        return Lease(**row._mapping) if row is not None else None

    # ------------------------------------------------------------ the table
    def _ensure(self) -> None:
        """Create the lease table once per engine; two processes creating it at once is no error."""
        if self.engine in _ensured:
            return
        for attempt in range(ATTEMPTS):
            try:
                with self.engine.begin() as connection:
                    self.table.create(connection, checkfirst=True)
                break
            except sa.exc.DBAPIError:   # created by another process meanwhile, or SQLite's file was busy
                with self.engine.connect() as connection:
                    if sa.inspect(connection).has_table(LEASE_TABLE):
                        break
                if attempt == ATTEMPTS - 1:
                    raise
                threading.Event().wait(0.05 * (attempt + 1))
        _ensured.add(self.engine)


class Heartbeat:
    """A daemon thread calling `beat` every `interval` seconds until stopped; a beat that fails is
    logged and tried at the next interval (the lease lasts a ttl, three intervals)."""

    def __init__(self, interval: float, beat: Callable[[], None]):
        self.interval, self.beat = interval, beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kspyder-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:   # the database or the ledger is away for a moment
                log.warning("heartbeat failed (%s): tried again in %.0fs", type(exc).__name__, self.interval)


class Holding:
    """The leases one holder (a run, an apply, a transform) keeps while it works: each taken with
    `hold`, renewed by a heartbeat thread every third of the ttl while the holding is open, given
    back when its work ends (also on failure) and, whatever is left, when the holding closes.
    `on_beat(alive_until)` runs with every heartbeat (the run ledger's)."""

    def __init__(self, leases: Leases, run_id: str, holder: str,
                 on_beat: Callable[[datetime], None] | None = None):
        self.leases, self.run_id, self.holder, self.on_beat = leases, run_id, holder, on_beat
        self.held: set[str] = set()
        self.lost: set[str] = set()
        self._lock = threading.Lock()
        self._heartbeat = Heartbeat(leases.ttl / 3, self.beat)

    def __enter__(self) -> Holding:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        self._heartbeat.__enter__()

    def close(self) -> None:
        self._heartbeat.stop()
        with self._lock:
            names, self.held = sorted(self.held), set()
        self._give_back(names)

    def alive_until(self) -> datetime:
        return self.leases.now() + timedelta(seconds=self.leases.ttl)

    def take(self, names: Iterable[str], wait: float = 0.0) -> None:
        """LeaseHeld when another run holds one of `names` (after waiting up to `wait` seconds)."""
        names = list(names)
        self.leases.acquire(names, self.run_id, self.holder, wait=wait)
        with self._lock:
            self.held.update(names)
            self.lost.difference_update(names)

    @contextmanager
    def hold(self, names: Iterable[str], wait: float = 0.0) -> Iterator[None]:
        """Hold `names` for the block; LeaseLost after it when another run took one meanwhile."""
        names = list(names)
        self.take(names, wait)
        try:
            yield
        finally:
            with self._lock:
                self.held.difference_update(names)
                lost = sorted(self.lost.intersection(names))
            self._give_back(names)
        if lost:
            raise LeaseLost(f"{', '.join(lost)}: the lease expired while this run stalled and another run "
                            f"took it: run again once that run is over")

    def beat(self) -> None:
        with self._lock:
            names = sorted(self.held)
        until = self.alive_until()
        lost = self.leases.renew(names, self.run_id, until=until)
        if lost:
            log.warning("run %s lost the lease of %s", self.run_id, ", ".join(lost))
            with self._lock:
                self.lost.update(lost)
        if self.on_beat is not None:
            self.on_beat(until)

    def _give_back(self, names: list[str]) -> None:
        try:
            self.leases.release(names, self.run_id)
        except sa.exc.SQLAlchemyError as exc:   # the lease expires on its own
            log.warning("could not release the lease of %s (%s): it expires in %.0fs", ", ".join(names),
                        type(exc).__name__, self.leases.ttl)
