"""The database URL given to `probe`: the real one to connect with, and the one the manifest shows,
where the password (and any secret-looking query parameter) is a `${VAR}` reference.

The shown URL is written by hand, not by SQLAlchemy's `render_as_string`, which would percent-encode
the `${...}` of the reference and so hide it from the manifest loader's substitution.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared.probe.naming import identifier
from shared.probe.target import SECRET_NAME, TargetError, env_var


@dataclass(frozen=True)
class DatabaseTarget:
    url: sa.URL                     # real credentials: for the probe's own connection only
    shown_url: str                  # as the manifest prints it
    env_vars: tuple[str, ...]       # what the user must set for the manifest to load


def is_database_url(url: str) -> bool:
    """Anything but http(s) that SQLAlchemy can parse: `postgresql+psycopg://`, `sqlite:///x.db`..."""
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("http", "https") or "://" not in url:
        return False
    try:
        make_url(url)
    except sa.exc.ArgumentError:
        return False
    return True   # an unknown dialect is then refused by name, not taken for an API


def default_source_name(url: sa.URL) -> str:
    """The database's name (a SQLite file's stem), as an identifier."""
    database = url.database or ""
    if url.get_backend_name() == "sqlite":
        database = PurePath(database).stem if database and database != ":memory:" else "db"
    return identifier(database or url.get_backend_name(), fallback="db")


def database_target(url: str, source: str) -> DatabaseTarget:
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except sa.exc.NoSuchModuleError:
        scheme = url.split(":", 1)[0]
        raise TargetError(f"'{scheme}' is neither http(s) nor a database SQLAlchemy knows "
                          "(is its driver installed?)") from None
    except sa.exc.ArgumentError:
        raise TargetError("not a SQLAlchemy database URL") from None
    env: list[str] = []
    auth = ""
    if parsed.username is not None:
        auth = quote(parsed.username, safe="")
        if parsed.password is not None:
            var = env_var(source, "db_password")
            env.append(var)
            auth += f":${{{var}}}"
        auth += "@"
    host = parsed.host or ""
    if host and ":" in host:   # an IPv6 literal
        host = f"[{host}]"
    netloc = auth + host + (f":{parsed.port}" if parsed.port else "")
    path = f"/{parsed.database}" if parsed.database else ""
    query = []
    for key, value in parsed.query.items():
        for item in (value if isinstance(value, tuple) else (value,)):
            if SECRET_NAME.search(key):
                var = env_var(source, key)
                env.append(var)
                query.append(f"{quote(key, safe='')}=${{{var}}}")
            else:
                query.append(f"{quote(key, safe='')}={quote(item, safe='/:')}")
    shown = f"{parsed.drivername}://{netloc}{path}" + (f"?{'&'.join(query)}" if query else "")
    return DatabaseTarget(parsed, shown, tuple(dict.fromkeys(env)))
