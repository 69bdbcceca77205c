"""Back-off for a busy target database: a Load that finds the database at its connection limit, or
an Azure SQL serverless database still resuming from auto-pause, is put back on its queue with a
delay instead of failing. A failure would burn one of the message's `maxDequeueCount` attempts
(30 s apart) and poison it within minutes while the database is merely full.

`busy_reason` is pure: it reads error codes (and, for connection failures that carry none, the
driver's fixed wording) from the exception and its causes, never values.
"""
from __future__ import annotations

import logging
import random
import re
from typing import TYPE_CHECKING, Any

from shared.chain.messages import LoadJob
from shared.chain.names import LOAD

if TYPE_CHECKING:
    from shared.chain.steps import Chain

log = logging.getLogger("kspyder.chain")

CONNECTION_LIMIT = "connection limit"
RESUMING = "database resuming"

# SQL Server / Azure SQL error numbers, as pyodbc ends its messages: "... (10928) (SQLExecDirectW)"
SQL_SERVER_CODES = {
    10928: CONNECTION_LIMIT,   # the database's worker (or session) limit is reached
    10936: CONNECTION_LIMIT,   # the elastic pool's worker (or session) limit is reached
    40501: CONNECTION_LIMIT,   # the service is busy
    40613: RESUMING,           # the database is not currently available: serverless resuming from auto-pause
}
POSTGRES_STATES = {"53300": CONNECTION_LIMIT, "57P03": RESUMING}   # too_many_connections, cannot_connect_now
MYSQL_CODES = {1040: CONNECTION_LIMIT, 1203: CONNECTION_LIMIT}     # too many connections (server, user)
# Connection failures reach psycopg as libpq text without a SQLSTATE: the server's fixed wording.
POSTGRES_WORDING = (("too many clients already", CONNECTION_LIMIT), ("too many connections", CONNECTION_LIMIT),
                    ("remaining connection slots are reserved", CONNECTION_LIMIT),
                    ("the database system is starting up", RESUMING))
_SQL_SERVER_CODE = re.compile(r"\((\d{5})\)")

# seconds before the re-queued message is visible: spread, so a crowd of loads does not return together
DELAYS = {CONNECTION_LIMIT: (30.0, 120.0), RESUMING: (45.0, 90.0)}


def busy_reason(exc: BaseException) -> str | None:
    """CONNECTION_LIMIT or RESUMING when `exc` (or what it wraps) says the database is full or waking
    up, else None. Walks SQLAlchemy's `.orig`, `__cause__` and `__context__` (a LoadError raised
    `from None` still keeps its context)."""
    seen: set[int] = set()
    pending: list[Any] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        reason = _own_reason(error)
        if reason is not None:
            return reason
        pending += [getattr(error, "orig", None), error.__cause__, error.__context__]
    return None


def _own_reason(error: BaseException) -> str | None:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(state, str) and state in POSTGRES_STATES:
        return POSTGRES_STATES[state]
    args = getattr(error, "args", ())
    driver = type(error).__module__.split(".")[0]
    if driver in ("pymysql", "MySQLdb") and args and isinstance(args[0], int) and args[0] in MYSQL_CODES:
        return MYSQL_CODES[args[0]]
    text = " ".join(str(a) for a in args if isinstance(a, str))
    if driver in ("pyodbc", "pymssql"):
        for match in _SQL_SERVER_CODE.finditer(text):
            code = int(match.group(1))
            if code in SQL_SERVER_CODES:
                return SQL_SERVER_CODES[code]
    if driver in ("psycopg", "psycopg2"):
        lowered = text.lower()
        for wording, reason in POSTGRES_WORDING:
            if wording in lowered:
                return reason
    return None


def delay_for(reason: str, rng: random.Random | None = None) -> float:
    low, high = DELAYS[reason]
    return (rng or random).uniform(low, high)


def requeued(chain: Chain, job: Any, exc: BaseException) -> bool:
    """Put a Load job whose database was busy back on its queue, later, with its claim token (the
    redelivery carries on where this one stopped); True when it did, and the step then ends without
    an error. Any other failure, and any other step, is left to the host's retries."""
    if not isinstance(job, LoadJob):
        return False
    reason = busy_reason(exc)
    if reason is None:
        return False
    delay = delay_for(reason)
    chain.send(LOAD, job, delay)
    log.warning("load of %s page %d (run %s): target %s, re-queued in %.0fs", job.model, job.index, job.run_id,
                reason, delay)
    return True
