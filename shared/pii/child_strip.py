"""PII strippers of a model's child tables: the parent's rules, scan mode, terms and key, applied to
each child's own columns, so a child column is stripped exactly as a parent column would be."""
from __future__ import annotations

from typing import Any

from shared.config.child_tables import ChildTable, child_tables
from shared.pii.stripper import PiiStripper


def child_strippers(model: Any, settings_pii: Any, scan: str | None, where: str) -> tuple[tuple[str, PiiStripper], ...]:
    """(column, stripper) of each child table of `model` (a ModelBase); `where` names the model."""
    model_name = where.rsplit(".", 1)[-1] if where else "model"
    return _strippers(child_tables(model_name, model), settings_pii, scan or model.pii_scan or settings_pii.scan,
                      where.rsplit(".", 1)[0] + "." if "." in where else "")


def _strippers(children: tuple[ChildTable, ...], settings_pii: Any, scan: str,
               schema: str) -> tuple[tuple[str, PiiStripper], ...]:
    key = settings_pii.key.encode("utf-8") if settings_pii.key else None
    return tuple((child.column, PiiStripper(child.columns, scan=scan, key=key, terms=child.pii_terms,
                                            redaction=settings_pii.redaction, where=schema + child.name)
                  .with_children(_strippers(child.tables, settings_pii, scan, schema)))
                 for child in children)
