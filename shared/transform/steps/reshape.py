"""Steps that change the frame's grain: `group_by`, `pivot`, `unpivot`."""
from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

import pandas as pd
from pydantic import AfterValidator, Field, field_validator

from shared.config.models import check_identifier
from shared.transform.expressions import reason
from shared.transform.steps.base import Args, Context, Step, StepError, names, register, require

Name = Annotated[str, AfterValidator(lambda v: check_identifier(v, "column name"))]
Columns = str | list[str]
Aggregation = Literal["sum", "mean", "min", "max", "count", "nunique", "first", "last", "median", "std", "var"]
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)
COUNTS = ("count", "nunique")


class GroupByArgs(Args):
    by: Columns
    agg: dict[Name, tuple[str, Aggregation]] = Field(min_length=1)   # output column: [input column, function]


@register
class GroupBy(Step[GroupByArgs]):
    """`group_by: {by: [month, city], agg: {revenue: [amount, sum], orders: [order_id, count]}}`.

    One row per distinct `by` value, sorted by it; a null key is a group of its own (as in SQL);
    `count` counts non-null values; sums of an empty group are 0, the others null.
    """

    name = "group_by"
    Arguments = GroupByArgs

    def apply(self, frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        by = names(self.args.by)
        require(frame, by, context, ("by",), indexed=isinstance(self.args.by, list))
        for output, (column, _) in self.args.agg.items():
            require(frame, [column], context, ("agg", output, 0), indexed=False)
        clashes = [o for o in self.args.agg if o in by]
        if clashes:
            raise StepError(f"output column {clashes[0]} is also a group_by column", ("agg", clashes[0]))
        numeric_only = [(o, c, f) for o, (c, f) in self.args.agg.items()
                        if f in ("sum", "mean", "median", "std", "var") and not _numeric(frame[c].dtype)]
        if numeric_only:
            output, column, function = numeric_only[0]
            raise StepError(f"{function} needs a numeric column, {column} is {frame[column].dtype}", ("agg", output))
        grouped = frame.groupby(by, dropna=False, sort=True)
        try:
            out = grouped.agg(**{o: (c, f) for o, (c, f) in self.args.agg.items()})
        except (TypeError, ValueError) as exc:
            raise StepError(f"aggregation failed: {reason(exc)}", ("agg",)) from None
        return out.reset_index()


def _numeric(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


class PivotArgs(Args):
    index: Columns
    columns: str
    values: str
    agg: Aggregation = "sum"
    into: dict[str, Name] = Field(min_length=1)   # value of `columns` -> the output column holding it
    fill: float | int | None = None                 # for index rows without that value (default: null)

    @field_validator("into", mode="before")
    @classmethod
    def _text_keys(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


@register
class Pivot(Step[PivotArgs]):
    """`pivot: {index: month, columns: city, values: revenue, into: {Berlin: berlin, Paris: paris}}`.

    Output columns must be known before any data is read (the dry run and `plan` show them), so
    `into` lists the values that become columns; rows with other values are left out.
    """

    name = "pivot"
    Arguments = PivotArgs

    def apply(self, frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        a = self.args
        index = names(a.index)
        require(frame, index, context, ("index",), indexed=isinstance(a.index, list))
        require(frame, [a.columns], context, ("columns",), indexed=False)
        require(frame, [a.values], context, ("values",), indexed=False)
        if a.agg in ("sum", "mean", "median", "std", "var") and not _numeric(frame[a.values].dtype):
            raise StepError(f"{a.agg} needs a numeric column, {a.values} is {frame[a.values].dtype}", ("values",))
        clashes = [n for n in a.into.values() if n in index]
        if clashes:
            raise StepError(f"output column {clashes[0]} is also an index column", ("into",))
        keys = frame[a.columns].astype(object).where(frame[a.columns].notna(), None).map(
            lambda v: None if v is None else str(v))
        wanted = frame[keys.isin(list(a.into))].assign(**{a.columns: keys})
        grouped = wanted.groupby(index + [a.columns], dropna=False, sort=True)[a.values].agg(a.agg)
        wide = grouped.unstack(a.columns) if len(wanted) else pd.DataFrame(index=grouped.index.droplevel(-1))
        wide = wide.reindex(columns=list(a.into)).rename(columns=a.into)
        dtype = "Int64" if a.agg in COUNTS else "float64" if _numeric(frame[a.values].dtype) else frame[a.values].dtype
        wide = wide.astype(dtype) if len(wide) else wide.astype({c: dtype for c in wide.columns})
        if a.fill is not None:
            wide = wide.fillna(a.fill)
        wide.columns.name = None
        return wide.reset_index()


class UnpivotArgs(Args):
    index: Columns                                # columns kept on every row
    columns: list[str] = Field(min_length=1)      # columns whose values become rows
    name: Name = "variable"                       # the column holding the former column's name
    value: Name = "value"                         # the column holding its value


@register
class Unpivot(Step[UnpivotArgs]):
    """`unpivot: {index: month, columns: [berlin, paris], name: city, value: revenue}`: wide to long,
    one row per index row and listed column, in index order."""

    name = "unpivot"
    Arguments = UnpivotArgs

    def apply(self, frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        a = self.args
        index = names(a.index)
        require(frame, index, context, ("index",), indexed=isinstance(a.index, list))
        require(frame, a.columns, context, ("columns",))
        families = {_numeric(frame[c].dtype) for c in a.columns}
        if len(families) > 1:
            raise StepError("the columns mix numbers and other types: cast them to one type first", ("columns",))
        if a.name in index or a.value in index or a.name == a.value:
            raise StepError(f"name and value must be new column names ({a.name}, {a.value})", ("name",))
        long = frame.melt(id_vars=index, value_vars=a.columns, var_name=a.name, value_name=a.value)
        order = long.groupby(a.name, sort=False).cumcount()   # melt stacks column by column: interleave back
        long = long.assign(_row=order).sort_values("_row", kind="stable").drop(columns="_row")
        long[a.name] = long[a.name].astype("str")
        return long.reset_index(drop=True)
