"""The SQL benchmark (`python -m benchmarks sql`) at a tiny size: it runs, and both pipelines load
every row of the generated source (correctness only; its speed targets live in the benchmark)."""
from __future__ import annotations

import sqlalchemy as sa

from benchmarks import sql_bench
from shared.schema import desired as schema
from shared.transform import config as transform_config


def test_the_sql_benchmark_runs_and_both_pipelines_load_every_row(postgres_url, monkeypatch):
    monkeypatch.setattr(sql_bench, "PER_SCALE", {"payment": 700, "rental": 600, "film": 50})
    seen: list[str] = []
    schemas: list[str] = []
    check = sql_bench.check_rows

    def checked(url, schema_name, expected, what):
        check(url, schema_name, expected, what)
        hashed = schema_name.startswith("sqlbench_") and not schema_name.startswith(("sqlbench_src_", "sqlbench_copy_"))
        if hashed:   # kspyder's rental.customer_email holds the keyed hash, never the address
            engine = sa.create_engine(url)
            with engine.connect() as connection:
                emails = connection.exec_driver_sql(f"SELECT customer_email FROM {schema_name}.rental").scalars().all()
                arrays = connection.exec_driver_sql(f"SELECT special_features FROM {schema_name}.film "
                                                    "WHERE film_id = 4").scalar_one()
            engine.dispose()
            assert len(emails) == 600 and all(len(e) == 64 and "@" not in e for e in emails)
            assert arrays == ["Trailers", "Deleted Scenes"]
        seen.append(what)
        schemas.append(schema_name)

    monkeypatch.setattr(sql_bench, "check_rows", checked)
    result = sql_bench.compare(postgres_url, scale=1, repeat=1)
    assert seen == ["kspyder run", "COPY loop"]
    assert result["rows"] == 1350
    assert result["kspyder"].result["records"] == result["copy"].result["records"] == 1350
    assert result["startup"] > 0 and result["peak_mb"] > 0
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        left = sa.inspect(connection).get_schema_names()
    engine.dispose()
    source = schemas[0].replace("sqlbench_", "sqlbench_src_", 1)
    assert not {*schemas, source} & set(left)   # the source and both targets dropped


def test_the_target_knows_the_transformations_file_by_its_name():
    """`schema.derived_tables` looks for the file without importing the transform package (pandas)."""
    assert schema.TRANSFORMATIONS_FILE == transform_config.TRANSFORMATIONS_FILE
