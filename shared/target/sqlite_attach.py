"""SQLite schemas past the attach limit: a connection attaches the schema files a statement names
when it runs, and detaches the least recently used ones to make room, so any number of sources work.

SQLite attaches at most 10 databases to a connection (its compile-time SQLITE_MAX_ATTACHED), and
kspyder keeps one file per schema. Up to the limit every schema is attached on connect; past it
(`create_target_engine` then installs this), a statement naming `schema.` gets its file attached
first. A file the current transaction has used cannot be detached: a read-only transaction is
committed and begun again to free them (reads need no single snapshot across schemas), a
transaction that wrote fails, naming the limit (`apply` writes one schema per transaction then).
`PRAGMA database_list` reports every schema the engine knows, attached or not, so the inspector
sees them all.
"""
from __future__ import annotations

import re
import sqlite3
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

_READS = ("select", "pragma", "with", "explain", "values", "begin", "savepoint", "release", "rollback")


class AttachLimit(sqlite3.OperationalError):
    """One transaction needs more schema files than SQLite attaches to a connection."""


def attach_limit(dbapi_connection: sqlite3.Connection) -> int:
    return dbapi_connection.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED)


class OnDemand:
    """The attach-on-demand hooks of one SQLite engine whose `names` exceed the attach limit.
    `attach(dbapi_connection, name, in_transaction)` attaches one file (and sets its pragmas)."""

    def __init__(self, names: list[str], attach: Callable[[sqlite3.Connection, str], None],
                 settle: Callable[[sqlite3.Connection, str], None]):
        self.names, self._attach, self._settle = names, attach, settle
        alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        pattern = re.compile(rf'(?<![\w$.])["`\[]?({alternatives})["`\]]?\s*\.', re.IGNORECASE)
        lowered = {n.lower(): n for n in names}

        @lru_cache(maxsize=1024)
        def named(statement: str) -> tuple[str, ...]:
            return tuple(dict.fromkeys(lowered[m.group(1).lower()] for m in pattern.finditer(statement)))

        self._named = named
        rows = " UNION ALL ".join([f"SELECT {i} AS seq, '{n}' AS name, '' AS file"
                                   for i, n in enumerate(["main", *names], start=0)])
        self._database_list = rows

    def listen(self, engine: sa.Engine) -> None:
        sa.event.listen(engine, "before_cursor_execute", self._before, retval=True)

    def beginning(self, connection: sa.Connection) -> None:
        """Called before the engine's BEGIN, outside any transaction: the per-file pragmas of files
        attached inside one are set now."""
        info = connection.connection.info
        info["kspyder_wrote"], info["kspyder_savepoints"] = False, 0
        pending, info["kspyder_pending"] = info.get("kspyder_pending", set()), set()
        for name in pending & set(info.get("kspyder_attached", ())):
            try:
                self._settle(_dbapi(connection), name)
            except sqlite3.OperationalError:
                pass   # another connection holds the file: its pragmas wait for a later attach

    def before_statement(self, connection: sa.Connection, statement: str) -> None:
        """The hook of `statement` run on the driver's own cursor, which SQLAlchemy's events miss."""
        self._before(connection, None, statement, None, None, True)

    def _before(self, connection: sa.Connection, _cursor: Any, statement: str, parameters: Any, _context: Any,
                _executemany: bool) -> tuple[str, Any]:
        if statement.strip().lower() == "pragma database_list":
            return self._database_list, parameters
        info = connection.connection.info
        wanted = self._named(statement)
        if wanted:
            self._ensure(_dbapi(connection), info, wanted)
        head = statement.lstrip()[:9].lower()
        if head.startswith("savepoint"):
            info["kspyder_savepoints"] = info.get("kspyder_savepoints", 0) + 1
        elif head.startswith(("release", "rollback ")):
            info["kspyder_savepoints"] = max(info.get("kspyder_savepoints", 0) - 1, 0)
        if not head.startswith(_READS):
            info["kspyder_wrote"] = True
        return statement, parameters

    def _ensure(self, dbapi: sqlite3.Connection, info: dict, wanted: tuple[str, ...]) -> None:
        attached: OrderedDict[str, None] = info.setdefault("kspyder_attached", OrderedDict())
        missing = [n for n in wanted if n not in attached]
        for name in wanted:
            if name in attached:
                attached.move_to_end(name)
        if not missing:
            return
        limit = attach_limit(dbapi)
        if len(wanted) > limit:
            raise AttachLimit(f"one statement names {len(wanted)} schemas; a SQLite connection attaches at most "
                              f"{limit}")
        room = limit - len(attached)
        if room < len(missing):
            self._make_room(dbapi, info, attached, set(wanted), len(missing) - room, limit)
        for name in missing:
            self._attach(dbapi, name)
            attached[name] = None
            if dbapi.in_transaction:
                info.setdefault("kspyder_pending", set()).add(name)
            else:
                self._settle(dbapi, name)

    def _make_room(self, dbapi: sqlite3.Connection, info: dict, attached: OrderedDict[str, None], keep: set[str],
                   needed: int, limit: int) -> None:
        """Detach `needed` schemas, least recently used first, that the transaction has not used; a
        read-only transaction is ended and begun again when it has used them all."""
        for attempt in range(2):
            for name in [n for n in attached if n not in keep]:
                try:
                    dbapi.execute(f'DETACH DATABASE "{name}"')
                except sqlite3.OperationalError:
                    continue   # "database is locked": read or written by the open transaction
                del attached[name]
                needed -= 1
                if needed == 0:
                    return
            if attempt or not dbapi.in_transaction or info.get("kspyder_wrote") or info.get("kspyder_savepoints"):
                break
            dbapi.execute("COMMIT")   # only reads so far: a new transaction releases their schemas
            dbapi.execute("BEGIN")
        raise AttachLimit(f"a SQLite transaction that writes uses at most {limit} schemas at once "
                          "(SQLite's attach limit)")


def _dbapi(connection: sa.Connection) -> sqlite3.Connection:
    raw = connection.connection.dbapi_connection
    if not isinstance(raw, sqlite3.Connection):
        raise TypeError("attaching on demand needs a sqlite3 connection")
    return raw
