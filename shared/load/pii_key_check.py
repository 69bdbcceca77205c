"""Which PII key a target's hashes were made with. A hash is only useful while every run uses the
same key: a lost or replaced key (a purged Key Vault, a new `pii-key`) makes new hashes that match
none of the stored ones, silently. So the target remembers a fingerprint of the key (an HMAC of a
constant with the key: it reveals nothing about the key) per source that hashes, in a small table
`_kspyder` of the database's default schema, and every run and load checks it first. The first
load of a source records it; `rebuild` forgets it, so a rebuilt source takes the current key.
"""
from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from shared.config.models import PiiRule
from shared.config.project import Project
from shared.load.loader import TargetDriftError
from shared.target.dialects import create_target_engine

TABLE = "_kspyder"
FINGERPRINT = "pii_key_fingerprint"
_CONSTANT = b"kspyder: the PII key of this target, v1"

_metadata = sa.MetaData()
meta_table = sa.Table(
    TABLE, _metadata,
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(128), nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
)

_lock = threading.Lock()
_checked: set[tuple[str, str, str]] = set()   # (target, source, fingerprint) this process found in order


class PiiKeyMismatch(TargetDriftError):
    """The target's hashes were made with another key. Names the source and the fixes, never a key."""


def fingerprint(key: str) -> str:
    return hmac.new(key.encode("utf-8"), _CONSTANT, hashlib.sha256).hexdigest()[:32]


def hashes(project: Project, source: str) -> bool:
    """Does any model of `source` hash values (a hash rule, or a hash scan)? Only those need the key."""
    config, settings = project.sources[source], project.settings
    for model in config.models.values():
        if (model.pii_scan or settings.pii.scan) == "hash":
            return True
        for column in model.columns.values():
            if column.pii_scan == "hash" or (column.pii is not None and column.pii.rule == PiiRule.hash):
                return True
            if any(spec.rule == PiiRule.hash for spec in (column.pii_fields or {}).values()):
                return True
    return False


def check_pii_key(engine: sa.Engine, project: Project, sources: Iterable[str]) -> None:
    """Record the key's fingerprint for sources that hash and have none yet; raise PiiKeyMismatch
    when one was recorded with another key. Checked once per process, target, source and key."""
    key = project.settings.pii.key
    if not key:
        return   # a source that hashes cannot validate without a key (config/project.py)
    mark = fingerprint(key)
    target = engine.url.render_as_string(hide_password=True)
    todo = [s for s in dict.fromkeys(sources) if s in project.sources and hashes(project, s)
            and (target, s, mark) not in _checked]
    for source in todo:
        stored = _stored(engine, source)
        if stored is None:
            stored = _record(engine, source, mark)
        if stored != mark:
            raise PiiKeyMismatch(
                f"source {source}: the target's hashed values were made with another PII key (its fingerprint in "
                f"table {TABLE} differs from KSPYDER_PII_KEY's), so new hashes would match none of them: restore "
                f"the original key (docs/deploy.md, \"The PII key\"), or run `main.py rebuild {source}` to drop and "
                "reload the source with this key")
        with _lock:
            _checked.add((target, source, mark))


def forget_pii_key(url: str, sources: Iterable[str]) -> None:
    """`rebuild` dropped these sources' tables: their next load records the current key."""
    names = list(sources)
    engine = create_target_engine(url)
    try:
        with engine.begin() as connection:
            if sa.inspect(connection).has_table(TABLE):
                connection.execute(sa.delete(meta_table).where(meta_table.c.source.in_(names),
                                                               meta_table.c.name == FINGERPRINT))
    finally:
        engine.dispose()
    with _lock:
        _checked.difference_update({entry for entry in _checked if entry[1] in names})


def _stored(engine: sa.Engine, source: str) -> str | None:
    """The recorded fingerprint, or None. Database errors propagate as they are, like the drift
    check's: a busy or paused database is told apart by its code (chain/backoff.py)."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(TABLE):
            return None
        return connection.execute(sa.select(meta_table.c.value).where(
            meta_table.c.source == source, meta_table.c.name == FINGERPRINT)).scalar()


def _record(engine: sa.Engine, source: str, mark: str, attempts: int = 5) -> str | None:
    """Create the table if needed and insert the fingerprint; of two loads racing, the second finds
    the first's row (and returns it). A concurrent create can also fail with a lock error (SQLite
    allows one writer): it is retried a few times, and the last error propagates."""
    for attempt in range(attempts):
        try:
            meta_table.create(engine, checkfirst=True)
            with engine.begin() as connection:
                connection.execute(sa.insert(meta_table).values(source=source, name=FINGERPRINT, value=mark,
                                                                set_at=datetime.now(UTC)))
        except sa.exc.IntegrityError:
            pass   # recorded meanwhile by a concurrent load: read below
        except sa.exc.DBAPIError:
            # created meanwhile ("already exists"), or the database was locked by the other writer
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
            continue
        return _stored(engine, source)
    return _stored(engine, source)
