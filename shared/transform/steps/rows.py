"""Steps that look at the whole frame to decide which rows to keep and in what order."""
from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from pydantic import Field, NonNegativeInt, RootModel, model_validator

from shared.transform.expressions import reason
from shared.transform.steps.base import Args, Context, Step, StepError, names, register, require


class DedupeArgs(Args):
    subset: list[str] | None = Field(None, min_length=1)   # None: rows equal in every column
    keep: Literal["first", "last"] = "first"


@register
class Dedupe(Step[DedupeArgs]):
    """`dedupe: [customer_id]` or `dedupe: {subset: [customer_id], keep: last}`: one row per key,
    the first (or last) in the current order."""

    name = "dedupe"
    Arguments = DedupeArgs

    @classmethod
    def shorthand(cls, raw: Any) -> Any:
        if raw is None:
            return {}
        return {"subset": raw} if isinstance(raw, (list, str)) else raw

    def apply(self, frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        subset = names(self.args.subset) if self.args.subset else None
        if subset:
            require(frame, subset, context, ("subset",))
        return frame.drop_duplicates(subset=subset, keep=self.args.keep, ignore_index=True)


class SortArgs(Args):
    by: str | list[str]
    ascending: bool | list[bool] = True
    nulls: Literal["first", "last"] = "last"

    @model_validator(mode="after")
    def _lengths(self) -> SortArgs:
        if isinstance(self.ascending, list) and len(self.ascending) != len(names(self.by)):
            raise ValueError(f"ascending has {len(self.ascending)} values for {len(names(self.by))} columns in by")
        return self


@register
class Sort(Step[SortArgs]):
    """`sort: {by: [month, revenue], ascending: [true, false]}` (stable: ties keep their order)."""

    name = "sort"
    Arguments = SortArgs

    @classmethod
    def shorthand(cls, raw: Any) -> Any:
        return {"by": raw} if isinstance(raw, (list, str)) else raw

    def apply(self, frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        by = names(self.args.by)
        require(frame, by, context, ("by",), indexed=isinstance(self.args.by, list))
        try:
            return frame.sort_values(by, ascending=self.args.ascending, kind="stable", na_position=self.args.nulls,
                                     ignore_index=True)
        except TypeError as exc:
            raise StepError(f"cannot order the values of {', '.join(by)}: {reason(exc)}",
                            ("by",)) from None


LimitArgs = RootModel[NonNegativeInt]


@register
class Limit(Step[LimitArgs]):
    """`limit: 10`: the first rows (after a sort: the top ones)."""

    name = "limit"
    Arguments = LimitArgs

    def apply(self, frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        return frame.head(self.args.root)
