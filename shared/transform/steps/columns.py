"""Row-by-row steps: each output row depends on one input row only, so a pipeline made of these
can run over its input in chunks (`chunk_safe`)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import AfterValidator, BeforeValidator, PlainValidator, RootModel, field_validator

from shared.config.models import check_identifier
from shared.transform.expressions import Expression, ExpressionError, compile_expression
from shared.transform.frames import CAST_TYPES, CastType, FrameError, convert
from shared.transform.steps.base import Args, Context, Step, StepError, listing, register, require

Name = Annotated[str, AfterValidator(lambda v: check_identifier(v, "column name"))]


# checked and compiled when the file is loaded: the argument holds the compiled Expression
ExpressionText = Annotated[Expression, PlainValidator(compile_expression)]


class SelectArgs(RootModel[list[str]]):
    @field_validator("root")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("expected at least one column")
        duplicates = sorted({v for v in value if value.count(v) > 1})
        if duplicates:
            raise ValueError(f"columns listed twice: {', '.join(duplicates)}")
        return value


@register
class Select(Step[SelectArgs]):
    """`select: [a, b]`: keep these columns, in this order."""

    name, chunk_safe = "select", True
    Arguments = SelectArgs

    def apply(self, frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        require(frame, self.args.root, context)
        return frame[self.args.root]


RenameArgs = RootModel[dict[str, Name]]


@register
class Rename(Step[RenameArgs]):
    """`rename: {old: new}`."""

    name, chunk_safe = "rename", True
    Arguments = RenameArgs

    def apply(self, frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        mapping = self.args.root
        for old in mapping:
            require(frame, [old], context, (old,), indexed=False)
        renamed = [mapping.get(c, c) for c in frame.columns]
        clashes = sorted({c for c in renamed if renamed.count(c) > 1})
        if clashes:
            raise StepError(f"renaming would give two columns the name {', '.join(clashes)}")
        return frame.rename(columns=mapping)


FilterArgs = RootModel[ExpressionText]


@register
class Filter(Step[FilterArgs]):
    """`filter: "amount > 0 and status != 'cancelled'"`: keep the rows where it is true (null is false)."""

    name, chunk_safe = "filter", True
    Arguments = FilterArgs

    def apply(self, frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        mask = _evaluate(self.args.root, frame, context, ())
        if not isinstance(mask, pd.Series) or not (pd.api.types.is_bool_dtype(mask.dtype)):
            raise StepError(f"expected a true/false expression, got {_kind(mask)}")
        if mask.dtype != bool:   # nullable booleans: null is false
            mask = mask.fillna(False).astype(bool)
        return frame[mask]


class DeriveArgs(RootModel[dict[Name, ExpressionText]]):
    @field_validator("root")
    @classmethod
    def _some(cls, value: dict) -> dict:
        if not value:
            raise ValueError("expected at least one column: expression")
        return value


@register
class Derive(Step[DeriveArgs]):
    """`derive: {month: "created_at.dt.strftime('%Y-%m')"}`: add or overwrite columns, in order
    (a later expression may use an earlier one)."""

    name, chunk_safe = "derive", True
    Arguments = DeriveArgs

    def apply(self, frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        out = frame.copy(deep=False)
        for column, expression in self.args.root.items():
            value = _evaluate(expression, out, context, (column,))
            out[column] = value if isinstance(value, pd.Series) else pd.Series(value, index=out.index)
        return out


class CastSpec(Args):
    type: CastType
    # `on_error: null` as the docs write it: YAML reads a bare null as nothing, meaning the choice `null`
    on_error: Annotated[Literal["fail", "null"], BeforeValidator(lambda v: "null" if v is None else v)] = "fail"


CastArgs = RootModel[dict[str, CastType | CastSpec]]


@register
class Cast(Step[CastArgs]):
    """`cast: {amount: float, id: {type: integer, on_error: null}}`."""

    name, chunk_safe = "cast", True
    Arguments = CastArgs

    def apply(self, frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        out = frame.copy(deep=False)
        for column, spec in self.args.root.items():
            require(frame, [column], context, (column,), indexed=False)
            spec = spec if isinstance(spec, CastSpec) else CastSpec(type=spec)
            kind = CAST_TYPES[spec.type]
            series = frame[column]
            if spec.on_error == "null" and kind in (CAST_TYPES["integer"], CAST_TYPES["float"]):
                series = pd.to_numeric(series, errors="coerce")
                if kind == CAST_TYPES["integer"]:
                    series = series.where(series.isna() | (series == series.round()))
            elif spec.on_error == "null" and kind == CAST_TYPES["datetime"]:
                series = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
            try:
                out[column] = convert(series, kind, column)
            except FrameError:
                raise StepError(f"column '{column}': some values are not valid {spec.type} "
                                f"(on_error: null turns them into nulls)", (column,)) from None
        return out


Fill = bool | int | float | str


FillArgs = RootModel[dict[str, Fill]]


@register
class FillNa(Step[FillArgs]):
    """`fillna: {city: unknown, amount: 0}`: replace nulls with a literal of the column's type."""

    name, chunk_safe = "fillna", True
    Arguments = FillArgs

    def apply(self, frame: pd.DataFrame, context: Context) -> pd.DataFrame:
        out = frame.copy(deep=False)
        for column, value in self.args.root.items():
            require(frame, [column], context, (column,), indexed=False)
            dtype = frame[column].dtype
            if not _fits(value, dtype):
                raise StepError(f"column '{column}' is {dtype}: a {type(value).__name__} does not fit", (column,))
            if pd.api.types.is_datetime64_any_dtype(dtype):
                value = pd.Timestamp(value, tz="UTC") if pd.Timestamp(value).tzinfo is None else pd.Timestamp(value)
            out[column] = frame[column].fillna(value)
        return out


def _fits(value: Any, dtype: Any) -> bool:
    if pd.api.types.is_bool_dtype(dtype):
        return isinstance(value, bool)
    if pd.api.types.is_integer_dtype(dtype):
        return isinstance(value, int) and not isinstance(value, bool)
    if pd.api.types.is_float_dtype(dtype):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        if not isinstance(value, str):
            return False
        try:
            pd.Timestamp(value)
        except ValueError:
            return False
        return True
    return isinstance(value, str)


def _evaluate(expression: Expression, frame: pd.DataFrame, context: Context, key: tuple) -> Any:
    missing = [c for c in expression.columns if c not in frame.columns]
    if missing:
        raise StepError(f"column '{missing[0]}' is not produced by {context.origin} (columns: {listing(frame)})", key)
    try:
        return expression.evaluate(frame)
    except ExpressionError as exc:
        raise StepError(str(exc), key) from None


def _kind(value: Any) -> str:
    return f"a {value.dtype} column" if isinstance(value, pd.Series) else f"a single {type(value).__name__}"

