"""SQL -> PostgreSQL: `main.py run` against a hand-written SELECT + psycopg COPY loop, in one run.

The source is built here, in PostgreSQL, with Pagila's shape: `payment`, `rental` and `film`
scaled x20 (320,000 + 320,000 + 20,000 rows), generated with `generate_series` and the same column
mix as the issue's measurement: integers, numeric, timestamptz, text, an enum (`mpaa_rating`), an
array (`special_features text[]`) and a PII column (`rental.customer_email`) with a hash rule.

- **kspyder**: `main.py run` of the three models in a child process (tables created before by
  `main.py apply`, not timed), timed by the parent from process start to exit. The start-up +
  planning share is that wall time minus the time the models themselves took (each model's
  `seconds` in the run's ledger record): interpreter start, imports, manifests, engine, plan,
  leases, and the end of the run.
- **COPY loop**: what a user writes by hand, in a child process too: for each table a server-side
  cursor `SELECT`s the rows 5,000 at a time and psycopg's `COPY ... FROM STDIN` writes them into a
  table of the same columns (no PII work, no upsert).
- **Library floor**: a child that only imports the libraries a SQL -> PostgreSQL run needs
  (SQLAlchemy and its PostgreSQL dialect, psycopg, pydantic, click, PyYAML), with the collector
  paused as kspyder imports them: the part of the start-up any program built on them pays on this
  machine, printed beside the start-up so that kspyder's own share shows.

Both write into empty tables each time (the target schemas are dropped between runs). Each runs
3 times, in turns, and the fastest counts; peak RSS is the child's own high-water mark.
Targets: kspyder >= 0.5x the COPY loop's rows/s, start-up + planning <= 0.5 s, peak RSS <= 150 MB.

    python -m benchmarks.sql_bench [--quick] [--scale 20] [--profile FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import yaml

from benchmarks.rss import ChildFailed, Measured, own_peak_kib, run_measured

ROOT = str(Path(__file__).resolve().parent.parent)
POSTGRES_URL = os.environ.get("KSPYDER_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PII_KEY = "sql-bench-pii-key-0123456789"
SCALE, QUICK_SCALE = 20, 1            # x20: 660,000 rows; --quick: Pagila's own 33,000
PER_SCALE = {"payment": 16_000, "rental": 16_000, "film": 1_000}   # Pagila's sizes, rounded
REPEAT = 3
TARGETS = {"ratio": 0.5, "startup_s": 0.5, "rss_mb": 150.0}
FETCH = 5000                          # rows per fetch of the COPY loop (kspyder: the models' chunk_size)

# name -> (source DDL, manifest column). The source types are Pagila's.
TABLES: dict[str, list[tuple[str, str, dict]]] = {
    "payment": [
        ("payment_id", "integer PRIMARY KEY", {"type": "integer"}),
        ("customer_id", "smallint NOT NULL", {"type": "integer"}),
        ("staff_id", "smallint NOT NULL", {"type": "integer"}),
        ("rental_id", "integer NOT NULL", {"type": "integer"}),
        ("amount", "numeric(5,2) NOT NULL", {"type": "decimal", "precision": 5, "scale": 2}),
        ("payment_date", "timestamptz NOT NULL", {"type": "datetime"}),
    ],
    "rental": [
        ("rental_id", "integer PRIMARY KEY", {"type": "integer"}),
        ("rental_date", "timestamptz NOT NULL", {"type": "datetime"}),
        ("inventory_id", "integer NOT NULL", {"type": "integer"}),
        ("customer_id", "smallint NOT NULL", {"type": "integer"}),
        ("customer_email", "text NOT NULL", {"type": "string", "length": 64, "pii": "hash"}),
        ("return_date", "timestamptz", {"type": "datetime"}),
        ("staff_id", "smallint NOT NULL", {"type": "integer"}),
        ("last_update", "timestamptz NOT NULL", {"type": "datetime"}),
    ],
    "film": [
        ("film_id", "integer PRIMARY KEY", {"type": "integer"}),
        ("title", "text NOT NULL", {"type": "string", "length": 255}),
        ("description", "text", {"type": "text"}),
        ("release_year", "integer", {"type": "integer"}),
        ("language_id", "smallint NOT NULL", {"type": "integer"}),
        ("rental_duration", "smallint NOT NULL", {"type": "integer"}),
        ("rental_rate", "numeric(4,2) NOT NULL", {"type": "decimal", "precision": 4, "scale": 2}),
        ("length", "smallint", {"type": "integer"}),
        ("replacement_cost", "numeric(5,2) NOT NULL", {"type": "decimal", "precision": 5, "scale": 2}),
        ("rating", "{schema}.mpaa_rating", {"type": "string", "length": 5}),
        ("last_update", "timestamptz NOT NULL", {"type": "datetime"}),
        ("special_features", "text[]", {"type": "json"}),
    ],
}
# The rows, generated server-side from `i` (1..n): deterministic, Pagila-like values.
GENERATED = {
    "payment": "i, 1 + i % 599, 1 + i % 2, i, (i % 1200) / 100.0 + 0.99, "
               "timestamptz '2022-01-24 00:00+00' + i * interval '97 seconds'",
    "rental": "i, timestamptz '2022-02-14 10:00+00' + i * interval '83 seconds', 1 + i % 4581, 1 + i % 599, "
              "'customer' || (i % 599) || '@sakilacustomer.org', "
              "CASE WHEN i % 97 = 0 THEN NULL ELSE timestamptz '2022-02-15 10:00+00' + i * interval '91 seconds' END, "
              "1 + i % 2, timestamptz '2022-02-16 02:30:53+00'",
    "film": "i, 'FILM ' || md5(i::text), 'A ' || md5(i::text) || ' Drama of a Student And a Mad Scientist who must '"
            " || 'Outgun a Boat in Ancient India', 2006, 1, 3 + i % 5, 0.99 + (i % 3) * 2, 46 + i % 139, "
            "9.99 + i % 21, (enum_range(NULL::{schema}.mpaa_rating))[1 + i % 5], "
            "timestamptz '2022-09-10 16:46:03.905795+00', "
            "CASE WHEN i % 4 = 0 THEN ARRAY['Trailers', 'Deleted Scenes'] ELSE ARRAY['Commentaries'] END",
}


@dataclass(frozen=True)
class Names:
    """The schemas of one benchmark run: the source, kspyder's target (= the source name), the loop's."""
    source: str
    kspyder: str
    copy: str

    @classmethod
    def fresh(cls) -> Names:
        tag = uuid.uuid4().hex[:8]
        return cls(f"sqlbench_src_{tag}", f"sqlbench_{tag}", f"sqlbench_copy_{tag}")


def rows_of(scale: int) -> dict[str, int]:
    return {table: per * scale for table, per in PER_SCALE.items()}


# ---------------------------------------------------------------- the source
def build_source(url: str, schema: str, scale: int) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            run = connection.exec_driver_sql
            run(f"CREATE SCHEMA {schema}")
            run(f"CREATE TYPE {schema}.mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17')")
            for table, columns in TABLES.items():
                ddl = ", ".join(f"{name} {sql.format(schema=schema)}" for name, sql, _ in columns)
                run(f"CREATE TABLE {schema}.{table} ({ddl})")
                select = GENERATED[table].format(schema=schema).replace("%", "%%")   # psycopg's placeholders
                run(f"INSERT INTO {schema}.{table} SELECT {select} FROM generate_series(1, {rows_of(scale)[table]}) AS i")
            run(f"ANALYZE {schema}.payment, {schema}.rental, {schema}.film")
    finally:
        engine.dispose()
    return rows_of(scale)


def drop_schemas(url: str, *schemas: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for schema in schemas:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        engine.dispose()


def count(url: str, schema: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql(f"SELECT COUNT(*) FROM {schema}.{table}").scalar_one()
    finally:
        engine.dispose()


# ---------------------------------------------------------------- kspyder
def write_manifests(folder: Path, url: str, names: Names) -> Path:
    models = {table: {"table": f"{names.source}.{table}", "primary_key": [columns[0][0]], "pii_scan": "off",
                      "columns": {name: column for name, _, column in columns}}
              for table, columns in TABLES.items()}
    manifests = folder / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    sources = {"sources": {names.kspyder: {"type": "sql", "url": url, "models": models}}}
    settings = {"target_url": url, "state_dir": str(folder / "state"), "storage": {"root": str(folder / "storage")}}
    (manifests / "connector_models.yml").write_text(yaml.safe_dump(sources, sort_keys=False))
    (manifests / "settings.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return manifests


def kspyder_env() -> dict[str, str]:
    """The children's environment: the PII key, and Python's default bytecode cache, as a user's
    interpreter has it (a sandbox's PYTHONDONTWRITEBYTECODE=1 would recompile every module on every
    start; the untimed apply child writes the cache first)."""
    return {"KSPYDER_PII_KEY": PII_KEY, "PYTHONDONTWRITEBYTECODE": ""}


def apply_tables(manifests: Path) -> None:
    """`main.py apply --auto-approve`, in a child: creates the three target tables (not timed). Tried
    again when another client changed the database between its plan and its apply (a shared server)."""
    for attempt in range(5):
        try:
            run_measured(["-m", "benchmarks.cli_child", str(manifests), "apply"], cwd=ROOT, env=kspyder_env())
            return
        except ChildFailed as exc:
            if "plan is stale" not in str(exc) or attempt == 4:
                raise


def run_kspyder(url: str, names: Names, folder: Path, profile: str | None = None) -> Measured:
    drop_schemas(url, names.kspyder)
    manifests = write_manifests(folder, url, names)
    apply_tables(manifests)
    argv = ["-m", "benchmarks.cli_child", str(manifests), "run"] + (["--profile", profile] if profile else [])
    started = time.perf_counter()
    measured = run_measured(argv, cwd=ROOT, env=kspyder_env())
    wall = time.perf_counter() - started
    return Measured({**measured.result, "seconds": wall, "startup": wall - measured.result["model_seconds"]},
                    measured.peak_mb)


# ---------------------------------------------------------------- the hand-written loop
def child_copy(url: str, source: str, target: str) -> None:
    import psycopg
    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    records = 0
    with psycopg.connect(dsn) as reader, psycopg.connect(dsn) as writer:
        writer.execute(f"CREATE SCHEMA {target}")
        writer.execute(f"CREATE TYPE {target}.mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17')")
        for table, columns in TABLES.items():
            names = ", ".join(name for name, _, _ in columns)
            ddl = ", ".join(f"{name} {sql.format(schema=target)}" for name, sql, _ in columns)
            writer.execute(f"CREATE TABLE {target}.{table} ({ddl})")
            with reader.cursor(name=f"read_{table}") as cursor, writer.cursor() as out:
                cursor.execute(f"SELECT {names} FROM {source}.{table}")
                with out.copy(f"COPY {target}.{table} ({names}) FROM STDIN") as copy:
                    while rows := cursor.fetchmany(FETCH):
                        for row in rows:
                            copy.write_row(row)
                        records += len(rows)
        writer.commit()
    print(json.dumps({"records": records, "seconds": 0, "peak_kib": own_peak_kib()}))


LIBRARIES = ("sqlalchemy", "sqlalchemy.dialects.postgresql.psycopg", "psycopg", "pydantic", "click", "yaml")


def run_floor() -> float:
    """Seconds for a process that imports LIBRARIES and exits."""
    code = f"import gc; gc.disable(); import {', '.join(LIBRARIES)}; print('{{\"records\": 0, \"seconds\": 0}}')"
    started = time.perf_counter()
    run_measured(["-c", code], cwd=ROOT, env=kspyder_env())
    return time.perf_counter() - started


def run_copy(url: str, names: Names) -> Measured:
    drop_schemas(url, names.copy)
    started = time.perf_counter()
    measured = run_measured(["-m", "benchmarks.sql_bench", "--child", "copy", url, names.source, names.copy], cwd=ROOT)
    return Measured({**measured.result, "seconds": time.perf_counter() - started}, measured.peak_mb)


# ---------------------------------------------------------------- the comparison
def check_rows(url: str, schema: str, expected: dict[str, int], what: str) -> None:
    for table, rows in expected.items():
        found = count(url, schema, table)
        if found != rows:
            raise RuntimeError(f"{what}: {schema}.{table} has {found} rows, expected {rows}")


def compare(url: str, scale: int, repeat: int = REPEAT, profile: str | None = None) -> dict:
    """Build the source, run both pipelines `repeat` times in turns, check every table's rows after
    each run; returns the fastest of each and the verdicts. Drops every schema it made."""
    names = Names.fresh()
    try:
        expected = build_source(url, names.source, scale)
        ours, theirs, floors = [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            for attempt in range(repeat):
                ours.append(run_kspyder(url, names, Path(tmp) / f"run{attempt}", profile if attempt == 0 else None))
                check_rows(url, names.kspyder, expected, "kspyder run")
                theirs.append(run_copy(url, names))
                check_rows(url, names.copy, expected, "COPY loop")
                floors.append(run_floor())
    finally:
        drop_schemas(url, names.source, names.kspyder, names.copy)
    kspyder = max(ours, key=lambda m: m.rate)
    loop = max(theirs, key=lambda m: m.rate)
    startup = min(m.result["startup"] for m in ours)
    peak = max(m.peak_mb for m in ours)
    ratio = kspyder.rate / loop.rate
    return {"rows": sum(expected.values()), "kspyder": kspyder, "copy": loop, "ratio": ratio, "startup": startup,
            "floor": min(floors), "peak_mb": peak, "met": {"ratio": ratio >= TARGETS["ratio"], "startup": startup <= TARGETS["startup_s"],
                                     "rss": peak <= TARGETS["rss_mb"]}}


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main(argv: list[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sql_bench")
    parser.add_argument("--quick", action="store_true", help=f"scale x{QUICK_SCALE} instead of x{SCALE}: a smoke run")
    parser.add_argument("--scale", type=int, help="Pagila sizes times this")
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--profile", help="write cProfile stats of the first kspyder run here")
    args = parser.parse_args(argv or [])
    scale = args.scale or (QUICK_SCALE if args.quick else SCALE)
    rows = sum(rows_of(scale).values())
    print(f"sql benchmark: payment, rental, film x{scale} ({rows:,} rows) in PostgreSQL -> PostgreSQL; each pipeline "
          f"in its own process, best of {args.repeat}, in turns; times are whole processes, start-up included")
    load_before = os.getloadavg()[0]
    result = compare(POSTGRES_URL, scale, args.repeat, args.profile)
    # a shared machine slows start-up (imports, planning queries) more than the ratio: say how busy it was
    print(f"  load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)")
    for label, m in (("kspyder main.py run (PII hash, upsert)", result["kspyder"]),
                     ("SELECT + psycopg COPY loop (no PII)", result["copy"])):
        print(f"  {label:<42} {m.rate:>10,.0f} rows/s {m.result['seconds']:>7.2f} s {m.peak_mb:>7.0f} MB")
    met = result["met"]
    print(f"  {'kspyder vs COPY loop':<42} {result['ratio']:>6.2f}x  (target >= {TARGETS['ratio']}x: "
          f"{verdict(met['ratio'])})")
    print(f"  {'start-up + planning (wall - models)':<42} {result['startup']:>6.2f} s  (target <= "
          f"{TARGETS['startup_s']} s: {verdict(met['startup'])})")
    print(f"  {'  of which importing the libraries alone':<42} {result['floor']:>6.2f} s  (a process importing "
          f"{', '.join(LIBRARIES)}; kspyder's own share {result['startup'] - result['floor']:.2f} s)")
    print(f"  {'kspyder peak RSS':<42} {result['peak_mb']:>6.0f} MB (target <= {TARGETS['rss_mb']:.0f} MB: "
          f"{verdict(met['rss'])})")
    if scale < SCALE:
        print(f"  (x{scale}: the targets are for x{SCALE}; a smoke run only)")
        return True
    return all(met.values())


if __name__ == "__main__":
    if sys.argv[1:3] == ["--child", "copy"]:
        child_copy(*sys.argv[3:])
    else:
        sys.exit(0 if main(sys.argv[1:]) else 1)
