"""A model's stated total against the records that arrived: one rule, applied at the end of a model
by the embedded run (`GenericExtractor`) and by the queue chain (`chain.state`), so that a short
answer from an API fails (or warns) the same way in both modes."""
from __future__ import annotations

from shared.errors import ExtractError

ON_SHORTFALL = ("fail", "warn")


class ShortfallError(ExtractError):
    """Fewer records arrived than the API stated, and the pagination does not accept that."""


def reconcile(model: str, stated_total: int | None, received: int, *, on_shortfall: str = "fail",
              truncated_by: str | None = None) -> str | None:
    """A warning to report, or None. Raises `ShortfallError` when records are missing and
    `on_shortfall` is "fail". A run cut short on purpose (`--limit`, `max_pages`) has nothing to
    compare; more records than stated is only a warning (an API that counts loosely loses nothing)."""
    if on_shortfall not in ON_SHORTFALL:
        raise ValueError(f"on_shortfall must be one of {', '.join(ON_SHORTFALL)}, not {on_shortfall!r}")
    if stated_total is None or truncated_by:
        return None
    if received < stated_total:
        message = (f"{model}: the API stated {stated_total} records but {received} arrived "
                   f"(shortfall {stated_total - received})")
        if on_shortfall == "warn":
            return message
        raise ShortfallError(f"{message}; set pagination.on_shortfall: warn to accept a short answer")
    if received > stated_total:
        return f"{model}: the API stated {stated_total} records but {received} arrived"
    return None
