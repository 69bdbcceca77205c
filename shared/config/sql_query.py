"""A SQL source's `query:` must only read: one SELECT (or WITH ... SELECT, or a set operation of
SELECTs), checked with a SQL parser at validation time rather than discovered by the database at
run time. The run also reads inside a read-only transaction (`extract/sql.py`), which catches what
no parser can see (a function with side effects)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot import exp

_DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite",
             "mssql": "tsql", "oracle": "oracle"}


def dialect_of(url: str) -> str | None:
    """The sqlglot dialect for a SQLAlchemy URL (None: the generic one)."""
    backend = url.split(":", 1)[0].split("+", 1)[0].lower()
    return _DIALECTS.get(backend)


def query_problem(sql: str, dialect: str | None) -> str | None:
    """Why `sql` is not one read-only SELECT, or None when it is. Never quotes the query."""
    import sqlglot  # here: only manifests with a query pay for the parser
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
        return f"query is not SQL the parser understands{where}: give one SELECT statement"
    except TokenError:
        return "query is not SQL the parser understands (an unclosed quote or comment?): give one SELECT statement"
    if len(statements) != 1:
        return (f"query holds {len(statements)} statements: give exactly one SELECT" if statements
                else "query is empty: give one SELECT statement")
    statement = statements[0]
    while isinstance(statement, exp.Subquery):   # (SELECT ...)
        statement = statement.this
    if not isinstance(statement, (exp.Select, exp.SetOperation)):
        return f"query must be a SELECT (or WITH ... SELECT), not {_name(statement)}"
    for node in statement.walk():
        if isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
            return f"query must only read: it holds {_name(node)} (a data-modifying WITH clause)"
        if isinstance(node, exp.Into):
            return "query must only read: SELECT INTO creates a table"
        if isinstance(node, exp.Lock):
            return "query must only read: FOR UPDATE / FOR SHARE locks rows"
        if isinstance(node, (exp.Create, exp.Drop, exp.Alter, exp.Command)):
            return f"query must only read: it holds {_name(node)}"
    return None


def _name(node: exp.Expr) -> str:
    """DELETE, DROP, VACUUM...: the statement's keyword, as a reader would say it."""
    from sqlglot import exp
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return {"TRUNCATETABLE": "TRUNCATE"}.get(node.key.upper(), node.key.upper())
