"""Everything dialect-specific about the target, in one of two places (the rest of `shared/target`
is portable SQLAlchemy): here engines, schemas, column types and how reflected types read back;
bulk upsert statements in `upsert.py`. Supported and tested: SQLite, PostgreSQL, MariaDB/MySQL.
Written for, but not tested against (no server here): SQL Server / Azure SQL through `mssql+pyodbc`.

SQLite has no schemas; kspyder attaches one database file per source beside the main file
(`target.db` -> `target.shop.db`), so `shop.customers` is a real qualified name there too. Past
SQLite's limit of 10 attached files, schemas are attached as statements name them (`sqlite_attach.py`).
"""
from __future__ import annotations

import importlib
import weakref
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from shared.config.models import ColumnType
from shared.target.columns import StoredColumn

if TYPE_CHECKING:
    import sqlite3

    from shared.target.sqlite_attach import OnDemand

SQLITE, POSTGRESQL, MYSQL, MSSQL = "sqlite", "postgresql", "mysql", "mssql"
MARIADB = "mariadb"   # what a `mariadb+pymysql://` URL reports; `mysql+pymysql://` to MariaDB reports mysql
MYSQL_FAMILY = (MYSQL, MARIADB)
# Schemas the databases keep for themselves: never a removed source, whatever they contain.
SYSTEM_SCHEMAS = frozenset({"information_schema", "performance_schema", "mysql", "sys", "pg_catalog",
                            "pg_toast", "main", "temp", "guest", "dbo", "db_owner"})
# SQLite engines past the attach limit, and their attach-on-demand hooks
_on_demand: weakref.WeakKeyDictionary[Engine, OnDemand] = weakref.WeakKeyDictionary()


def transactional_ddl(dialect: str) -> bool:
    """MariaDB/MySQL commit each DDL statement on their own; the others roll a failed apply back
    (SQLite too, since `create_target_engine` begins its transactions itself)."""
    return dialect not in MYSQL_FAMILY


def sqlite_schema_file(url: sa.URL, schema: str) -> str:
    database = url.database
    if not database or database == ":memory:":
        return ":memory:"
    path = Path(database)
    return str(path.with_name(f"{path.stem}.{schema}{path.suffix or '.db'}"))


def sqlite_schemas_on_disk(url: sa.URL) -> list[str]:
    """Schema files left by earlier runs, so that plan can see (and --prune drop) removed sources."""
    if not url.database or url.database == ":memory:":
        return []
    main = Path(url.database)
    prefix = f"{main.stem}."
    suffix = main.suffix or ".db"
    return sorted(p.name[len(prefix):-len(suffix)] for p in main.parent.glob(f"{prefix}*{suffix}")
                  if p.name != main.name)


def create_target_engine(url: str, schemas: Iterable[str] = ()) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == MSSQL and parsed.get_driver_name() == "pyodbc":
        return sa.create_engine(url, pool_pre_ping=True, fast_executemany=True)  # else MERGE goes row by row
    if parsed.get_backend_name() != SQLITE:
        return sa.create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    names = sorted(set(schemas) | set(sqlite_schemas_on_disk(parsed)))
    on_disk = bool(parsed.database) and parsed.database != ":memory:"

    def attach(dbapi_connection: sqlite3.Connection, name: str) -> None:
        # names are validated identifiers, and the path is bound as a parameter
        dbapi_connection.execute(f'ATTACH DATABASE ? AS "{name}"', (sqlite_schema_file(parsed, name),))

    def settle(dbapi_connection: sqlite3.Connection, name: str) -> None:
        if on_disk:
            # WAL: BI tools keep reading while a load writes; NORMAL: a commit does not wait for
            # the disk (a power cut may lose the last batches, never corrupt a file: the target
            # is expendable and `run` reloads it). Per attached file, as SQLite wants.
            dbapi_connection.execute(f'PRAGMA "{name}".journal_mode=WAL')
            dbapi_connection.execute(f'PRAGMA "{name}".synchronous=NORMAL')

    on_demand: list[OnDemand] = []

    @sa.event.listens_for(engine, "connect")
    def _attach(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        settle(dbapi_connection, "main")
        if not on_demand:   # they fit: every schema attached now, as BI users see the target
            for name in names:
                attach(dbapi_connection, name)
                settle(dbapi_connection, name)
        # pysqlite commits DDL on its own; with its implicit transactions off and an explicit BEGIN
        # below, a failed `apply` rolls back across every attached schema file
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        for hooks in on_demand:
            hooks.beginning(connection)
        connection.exec_driver_sql("BEGIN")

    if len(names) > _attach_limit():
        if not on_disk:
            raise ValueError(f"an in-memory SQLite target holds at most {_attach_limit()} schemas, not {len(names)}")
        from shared.target.sqlite_attach import OnDemand  # lazy: sqlite3 only for a SQLite target
        hooks = OnDemand(names, attach, settle)
        hooks.listen(engine)
        on_demand.append(hooks)
        _on_demand[engine] = hooks
    return engine


def attaches_on_demand(engine: Engine) -> bool:
    """Whether the engine's SQLite target has more schemas than one connection attaches at once."""
    return engine in _on_demand


def before_driver_statement(connection: sa.Connection, statement: str) -> None:
    """What the engine's hooks do before a statement, for one run on the driver's own cursor (which
    bypasses them): on a SQLite engine past the attach limit, the schema files it names are attached."""
    hooks = _on_demand.get(connection.engine)
    if hooks is not None:
        hooks.before_statement(connection, statement)


@lru_cache(maxsize=1)
def _attach_limit() -> int:
    """What this build of SQLite attaches to one connection (10 unless compiled otherwise)."""
    import sqlite3
    from contextlib import closing

    from shared.target.sqlite_attach import attach_limit  # lazy: sqlite3 only for a SQLite target
    with closing(sqlite3.connect(":memory:")) as probe:
        return attach_limit(probe)


def variant(base: sa.types.TypeEngine, dialect: str, family: tuple[str, ...],
            make: Callable[[ModuleType], sa.types.TypeEngine]) -> sa.types.TypeEngine:
    """`base`, and `make(family's dialect module)` on the dialects of `family`. A known `dialect`
    outside the family gets `base` alone: a PostgreSQL target does not import MariaDB's or SQL
    Server's dialect (with every driver module each lists) for a type it never uses."""
    if dialect and dialect not in family:
        return base
    return base.with_variant(make(importlib.import_module(f"sqlalchemy.dialects.{family[0]}")), *family)


def column_type(column: StoredColumn, dialect: str = "") -> sa.types.TypeEngine:
    """The column's SQLAlchemy type on `dialect` (the engine's name; empty: any of them)."""
    kind = column.type
    if kind == ColumnType.integer:
        return sa.Integer()
    if kind == ColumnType.bigint:
        return sa.BigInteger()
    if kind == ColumnType.float:
        return sa.Double()
    if kind == ColumnType.decimal:
        return sa.Numeric(column.precision, column.scale, asdecimal=True)
    if kind == ColumnType.boolean:
        return sa.Boolean(create_constraint=False)
    if kind == ColumnType.string:
        return sa.String(column.length)
    if kind == ColumnType.text:
        # MEDIUMTEXT (16 MB): MariaDB's JSON is itself a LONGTEXT, so the two stay distinguishable
        return variant(sa.Text(), dialect, MYSQL_FAMILY, lambda mysql: mysql.MEDIUMTEXT())
    if kind == ColumnType.date:
        return sa.Date()
    if kind == ColumnType.datetime:
        return variant(variant(sa.DateTime(timezone=True), dialect, MYSQL_FAMILY, lambda mysql: mysql.DATETIME(fsp=6)),
                        dialect, (MSSQL,), lambda mssql: mssql.DATETIMEOFFSET())
    if kind == ColumnType.json:
        return sa.JSON()
    if kind == ColumnType.binary:
        # BYTEA, BLOB; LONGBLOB on MariaDB (its BLOB stops at 64 KB), VARBINARY(max) on SQL Server
        return variant(variant(sa.LargeBinary(), dialect, MYSQL_FAMILY, lambda mysql: mysql.LONGBLOB()),
                        dialect, (MSSQL,), lambda mssql: mssql.VARBINARY("max"))
    raise ValueError(f"no SQL type for {kind}")


def table_options(dialect: str) -> dict[str, Any]:   # Any: sa.Table's **kw, dialect options
    """Per-table options: MariaDB/MySQL tables are utf8mb4 so that any Unicode value fits."""
    if dialect in MYSQL_FAMILY:
        return {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mysql_engine": "InnoDB"}
    return {}


def logical_type(reflected: sa.types.TypeEngine, dialect: str) -> StoredColumn:
    """A reflected column type read back as the logical type kspyder would have created.

    Each database reports our types its own way (MariaDB's BOOLEAN is TINYINT(1), its JSON a
    LONGTEXT, SQLite's DOUBLE a REAL), so comparisons happen on this normal form, never on DDL text.
    """
    t = reflected
    name = type(t).__name__.upper()
    if isinstance(t, sa.types._Binary) or name in ("BYTEA", "BLOB", "LONGBLOB", "VARBINARY", "IMAGE"):
        return StoredColumn("", ColumnType.binary)
    tinyint_flag = dialect in MYSQL_FAMILY and name == "TINYINT" and getattr(t, "display_width", None) == 1
    if isinstance(t, sa.Boolean) or tinyint_flag:
        return StoredColumn("", ColumnType.boolean)
    if isinstance(t, sa.BigInteger):
        return StoredColumn("", ColumnType.bigint)
    if isinstance(t, sa.Integer):
        return StoredColumn("", ColumnType.integer)
    if isinstance(t, sa.Float) or name in ("DOUBLE", "DOUBLE_PRECISION", "REAL"):  # Float subclasses Numeric
        return StoredColumn("", ColumnType.float)
    if isinstance(t, sa.Numeric):
        return StoredColumn("", ColumnType.decimal, precision=t.precision, scale=t.scale)
    if isinstance(t, sa.JSON) or name in ("JSON", "JSONB") or (dialect in MYSQL_FAMILY and name == "LONGTEXT"):
        return StoredColumn("", ColumnType.json)
    if isinstance(t, sa.DateTime) or name in ("DATETIMEOFFSET", "TIMESTAMP"):
        return StoredColumn("", ColumnType.datetime)
    if isinstance(t, sa.Date):
        return StoredColumn("", ColumnType.date)
    if isinstance(t, sa.String) and not isinstance(t, sa.Text) and getattr(t, "length", None):
        return StoredColumn("", ColumnType.string, t.length)
    if isinstance(t, (sa.Text, sa.String)):
        return StoredColumn("", ColumnType.text)
    return StoredColumn("", ColumnType.text if "TEXT" in name else ColumnType.json)


def stores_timezones(dialect: str) -> bool:
    """PostgreSQL and SQL Server keep the offset; elsewhere datetimes are stored as naive UTC."""
    return dialect in (POSTGRESQL, MSSQL)


def create_schema(connection: sa.Connection, schema: str) -> None:
    if connection.dialect.name == SQLITE:
        return  # attached on connect: the file appears with its first table
    connection.execute(sa.schema.CreateSchema(schema, if_not_exists=True))


def drop_schema(connection: sa.Connection, schema: str) -> None:
    """Drop a source's schema and everything in it (the target is expendable by design)."""
    inspector = sa.inspect(connection)
    if connection.dialect.name != SQLITE and schema not in inspector.get_schema_names():
        return
    metadata = sa.MetaData(schema=schema)
    metadata.reflect(connection, schema=schema)
    metadata.drop_all(connection)
    if connection.dialect.name != SQLITE and schema in inspector.get_schema_names():
        connection.execute(sa.schema.DropSchema(schema, if_exists=True))


def dialect_module(dialect: str) -> ModuleType | None:
    """SQLAlchemy's module of `dialect`, imported when first asked for (None: not a supported one)."""
    name = {SQLITE: SQLITE, POSTGRESQL: POSTGRESQL, MYSQL: MYSQL, MARIADB: MYSQL, MSSQL: MSSQL}.get(dialect)
    return importlib.import_module(f"sqlalchemy.dialects.{name}") if name else None
