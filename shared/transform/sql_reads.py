"""What a `sql` step may read: one SELECT (or WITH ... SELECT) over tables its pipeline declares.

The step runs on the target connection, which sees every table of the database: on a shared
server that includes other applications' raw data, which no PII rule of this project ever touched.
So the query is parsed (sqlglot, the dialect of the target URL) at load time, and every table it
names must be one of the pipeline's `inputs` or the step's `reads`, written as schema.table. The
run still reads in a read-only transaction (`runner.py`), for what no parser can see.
"""
from __future__ import annotations

from collections.abc import Iterable

from shared.config.sql_query import query_problem


def sql_step_problems(sql: str, dialect: str | None, declared: Iterable[str]) -> list[str]:
    """Why the step's query may not run (statement kind, undeclared tables), or [] when it may.
    Messages name tables, never values of the query."""
    problem = query_problem(sql, dialect)
    if problem is not None:
        return [problem]
    import sqlglot
    from sqlglot import exp

    statement = sqlglot.parse_one(sql, read=dialect)
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    allowed = set(declared)
    problems: list[str] = []
    unqualified: list[str] = []
    for table in statement.find_all(exp.Table):
        name, schema = table.name, table.db
        if not name:   # a table function such as generate_series(...): no table read
            if isinstance(table.this, exp.Func) or table.args.get("this") is None:
                continue
        if table.catalog:
            problems.append(f"query reads {table.catalog}.{schema}.{name}: name tables as schema.table, "
                            "one of the pipeline's inputs or the step's reads")
            continue
        if not schema:
            if name.lower() not in ctes:
                unqualified.append(name)
            continue
        qualified = f"{schema}.{name}"
        if qualified not in allowed:
            problems.append(f"query reads {qualified}, which is neither an input of the pipeline nor in the "
                            f"step's reads ({', '.join(sorted(allowed)) or 'none declared'})")
    for name in dict.fromkeys(unqualified):
        problems.append(f"query reads {name} without a schema: name it schema.table, one of the pipeline's "
                        "inputs or the step's reads")
    return list(dict.fromkeys(problems))
