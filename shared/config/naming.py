"""`naming: snake_case`: a source's CamelCase names (`InvoiceLine.UnitPrice`) become snake_case target
names (`invoice_line.unit_price`), so BI users need not quote identifiers in PostgreSQL.

Applied once, after validation, by rewriting the source's models: each column keeps the source's
name as its `path` (so it is still read as written) and takes the snake_case name as its key, which
every later step (shaper, PII rules, plan, load, transforms) uses as the target name. Two names that
become one are an error, reported before anything is renamed.
"""
from __future__ import annotations

import re
from typing import Any

from shared.config.errors import ConfigIssue
from shared.config.models import MAX_IDENTIFIER
from shared.config.yaml_source import YamlDocument

_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")   # HTTPStatus -> HTTP_Status
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")      # UnitPrice -> Unit_Price
_OTHER = re.compile(r"[^A-Za-z0-9_]+")
_UNDERSCORES = re.compile(r"_{2,}")


def snake_case(name: str) -> str:
    """`InvoiceLine` -> `invoice_line`, `HTTPStatus` -> `http_status`, `Unit Price` -> `unit_price`."""
    text = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name))
    return _UNDERSCORES.sub("_", _OTHER.sub("_", text)).strip("_").lower()


def naming_issues(doc: YamlDocument, sources: dict[str, Any]) -> list[ConfigIssue]:
    """Names that snake_case merges or lengthens past the identifier limit, and sources it cannot apply to."""
    issues: list[ConfigIssue] = []
    for source_name, source in sources.items():
        if source.naming != "snake_case":
            continue
        base = ("sources", source_name)
        if source.store == "mongo":
            issues.append(doc.issue(base + ("naming",), "naming: snake_case applies to store: sql sources "
                                    "(documents keep their fields' names)"))
            continue
        issues += _clashes(doc, base + ("models",), list(source.models), "models")
        for model_name, model in source.models.items():
            issues += _clashes(doc, base + ("models", model_name, "columns"), list(model.columns), "columns")
    return issues


def _clashes(doc: YamlDocument, path: tuple, names: list[str], what: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    taken: dict[str, str] = {}
    for name in names:
        snake = snake_case(name)
        if len(snake) > MAX_IDENTIFIER:
            issues.append(doc.issue(path + (name,),
                                    f"naming: snake_case makes '{name}' longer than {MAX_IDENTIFIER} characters"))
        elif snake in taken:
            issues.append(doc.issue(path + (name,), f"naming: snake_case gives {what} '{taken[snake]}' and '{name}' "
                                    f"the same name '{snake}'"))
        else:
            taken[snake] = name
    return issues


def with_target_names(sources: dict[str, Any]) -> dict[str, Any]:
    """Every `naming: snake_case` source rewritten with snake_case model and column names."""
    return {name: _renamed(source) if source.naming == "snake_case" else source for name, source in sources.items()}


def _renamed(source: Any) -> Any:
    models = {}
    for model_name, model in source.models.items():
        key = [snake_case(k) for k in model.primary_key]
        renamed = model.model_copy(update={"columns": _renamed_columns(model.columns), "primary_key": key})
        renamed._tables = _renamed_columns(model.tables)   # child tables, and their columns, as well
        models[snake_case(model_name)] = renamed
    return source.model_copy(update={"models": models})


def _renamed_columns(columns: dict[str, Any]) -> dict[str, Any]:
    return {snake_case(name): _renamed_column(name, column) for name, column in columns.items()}


def _renamed_column(name: str, column: Any) -> Any:
    update: dict[str, Any] = {} if column.path is not None else {"path": name}
    if column.columns is not None:
        update["columns"] = _renamed_columns(column.columns)
    return column.model_copy(update=update)
