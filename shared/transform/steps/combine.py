"""Steps that bring in other frames: `join`, `union`, and `sql` (a query on the target database)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import AfterValidator, Field, model_validator

from shared.config.models import check_identifier
from shared.transform.expressions import reason
from shared.transform.frames import CAST_TYPES, DTYPES, CastType, FrameError, convert
from shared.transform.steps.base import Args, Context, Step, StepError, names, register, require

Alias = Annotated[str, AfterValidator(lambda v: check_identifier(v, "frame name"))]
Columns = str | list[str]
VALIDATE = Literal["one_to_one", "one_to_many", "many_to_one", "many_to_many"]


class JoinArgs(Args):
    left: Alias | None = None          # default: the current frame
    right: Alias
    on: Columns | None = None
    left_on: Columns | None = None
    right_on: Columns | None = None
    how: Literal["inner", "left", "right", "outer"] = "inner"
    # for right columns whose name is taken; default _<right>
    suffix: str | None = Field(None, pattern=r"^[A-Za-z0-9_]*$")
    validate_keys: VALIDATE = Field("many_to_many", alias="validate")

    @model_validator(mode="after")
    def _keys(self) -> JoinArgs:
        if self.on is not None and (self.left_on is not None or self.right_on is not None):
            raise ValueError("use either on, or left_on and right_on")
        if self.on is None and (self.left_on is None or self.right_on is None):
            raise ValueError("expected on, or both left_on and right_on")
        left_on, right_on = self.sides()
        if self.on is None and len(names(left_on)) != len(names(right_on)):
            raise ValueError("left_on and right_on must name as many columns")
        return self

    def sides(self) -> tuple[Columns, Columns]:
        """The left and right key columns, as written (`on` for both, else `left_on` and `right_on`)."""
        left, right = self.on or self.left_on, self.on or self.right_on
        if left is None or right is None:
            raise ValueError("expected on, or both left_on and right_on")
        return left, right


@register
class Join(Step[JoinArgs]):
    """`join: {left: o, right: c, left_on: customer_id, right_on: id, how: left}`.

    SQL semantics: a key found several times on both sides gives every combination (use
    `validate: many_to_one` to make a duplicate right key an error instead); null keys never match.
    Right columns whose name the left side already has get the suffix `_<right>`.
    """

    name = "join"
    Arguments = JoinArgs

    @classmethod
    def shorthand(cls, raw: Any) -> Any:
        """YAML 1.1 reads a bare `on:` key as the boolean true: read it back as `on`."""
        if isinstance(raw, dict) and "True" in raw and "on" not in raw:
            return {("on" if k == "True" else k): v for k, v in raw.items()}
        return raw

    def frame_refs(self) -> list[tuple[tuple, str]]:
        return ([(("left",), self.args.left)] if self.args.left else []) + [(("right",), self.args.right)]

    @property
    def needs_frame(self) -> bool:   # type: ignore[override]
        return self.args.left is None

    def apply(self, frame: pd.DataFrame | None, context: Context) -> pd.DataFrame:
        a = self.args
        left = context.frames[a.left] if a.left else frame
        if left is None:
            raise StepError("expected a current frame or `left`", ("left",))
        right = context.frames[a.right]
        left_keys, right_keys = a.sides()
        left_on, right_on = names(left_keys), names(right_keys)
        left_origin = f"frame '{a.left}'" if a.left else context.origin
        key = ("on",) if a.on else ("left_on",)
        require(left, left_on, Context(context.frames, left_origin), key, indexed=not isinstance(left_keys, str))
        require(right, right_on, Context(context.frames, f"frame '{a.right}'"), ("on",) if a.on else ("right_on",),
                indexed=not isinstance(right_keys, str))
        for l_key, r_key in zip(left_on, right_on, strict=True):
            if _family(left[l_key].dtype) != _family(right[r_key].dtype):
                raise StepError(f"cannot join {l_key} ({left[l_key].dtype}) with {r_key} ({right[r_key].dtype}): "
                                f"cast one of them first", key)
        suffix = f"_{a.right}" if a.suffix is None else a.suffix
        # pandas matches a null key with a null key; SQL (and this step) never does: rows with a
        # null key take no part in matching and are kept, unmatched, where the join kind keeps them
        left_null, right_null = _null_key(left, left_on), _null_key(right, right_on)
        try:
            out = _keyed(left, left_null).merge(_keyed(right, right_null), how=a.how, left_on=left_on,
                                                right_on=right_on, suffixes=("", suffix), validate=a.validate_keys,
                                                sort=False)
        except pd.errors.MergeError as exc:
            raise StepError(f"join keys are not {a.validate_keys.replace('_', ' ')}: {reason(exc)}",
                            ("validate",)) from None
        unmatched = []
        if a.how in ("left", "outer") and left_null.any():
            unmatched.append(left[left_null])
        if a.how in ("right", "outer") and right_null.any():
            unmatched.append(right[right_null].rename(columns={c: _renamed(c, left, left_on, right_on, suffix)
                                                              for c in right.columns}))
        if unmatched:
            out = pd.concat([out] + [u.reindex(columns=out.columns) for u in unmatched], ignore_index=True)
        duplicated = sorted({str(c) for c in out.columns if list(out.columns).count(c) > 1})
        if duplicated:
            raise StepError(f"the joined frame would have two columns named {', '.join(duplicated)}: set suffix")
        return out.reset_index(drop=True)


def _null_key(frame: pd.DataFrame, key: list[str]) -> pd.Series:
    return frame[key[0]].isna() if len(key) == 1 else frame[key].isna().any(axis=1)


def _keyed(frame: pd.DataFrame, null_key: pd.Series) -> pd.DataFrame:
    """The rows with a full key (the frame itself when no key is null: no copy)."""
    return frame[~null_key] if null_key.any() else frame


def _renamed(column: str, left: pd.DataFrame, left_on: list[str], right_on: list[str], suffix: str) -> str:
    """A right column's name in the merged frame (pandas' rule: the suffix when the left has it)."""
    if column in right_on and left_on[right_on.index(column)] == column:
        return column
    return f"{column}{suffix}" if column in left.columns else column


def _family(dtype: Any) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "text"


class UnionArgs(Args):
    frames: list[Alias] = Field(min_length=1)


@register
class Union(Step[UnionArgs]):
    """`union: [a, b]`: the current frame (if any) followed by the rows of these frames. Every
    frame must have the same columns (in any order); the result has the first frame's order."""

    name = "union"
    Arguments = UnionArgs

    @classmethod
    def shorthand(cls, raw: Any) -> Any:
        return {"frames": raw} if isinstance(raw, list) else raw

    def frame_refs(self) -> list[tuple[tuple, str]]:
        return [(("frames", i), name) for i, name in enumerate(self.args.frames)]

    needs_frame = False

    def apply(self, frame: pd.DataFrame | None, context: Context) -> pd.DataFrame:
        parts = ([frame] if frame is not None else []) + [context.frames[n] for n in self.args.frames]
        labels = ([context.origin] if frame is not None else []) + [f"frame '{n}'" for n in self.args.frames]
        first = list(parts[0].columns)
        for i, (part, label) in enumerate(zip(parts[1:], labels[1:], strict=True), start=1):
            missing = [c for c in first if c not in part.columns]
            extra = [c for c in part.columns if c not in first]
            if missing or extra:
                index = i - (1 if frame is not None else 0)
                raise StepError(f"{label} does not have the columns of {labels[0]}"
                                + (f" (missing: {', '.join(missing)})" if missing else "")
                                + (f" (extra: {', '.join(map(str, extra))})" if extra else ""), ("frames", index))
            mismatched = [c for c in first if _family(part[c].dtype) != _family(parts[0][c].dtype)]
            if mismatched:
                c = mismatched[0]
                raise StepError(f"column {c} is {part[c].dtype} in {label} but {parts[0][c].dtype} in {labels[0]}: "
                                f"cast it first", ("frames", i - (1 if frame is not None else 0)))
        return pd.concat([p[first] for p in parts], ignore_index=True)


class SqlArgs(Args):
    query: str = Field(min_length=1)
    columns: dict[Alias, CastType] = Field(min_length=1)
    reads: list[str] = []                            # schema.table it reads: orders the pipelines
    store_as: Alias | None = Field(None, alias="as")   # keep it as a named frame; the current frame stays


@register
class Sql(Step[SqlArgs]):
    """`sql: {query: "SELECT ...", columns: {city: text, n: integer}, reads: [shop.customers]}`.

    Runs on the target database in a transaction that is rolled back (it cannot change anything
    where the database has transactional DDL). `columns` declares the result's columns and types:
    the dry run needs them without a database, and the result is checked and cast to them.
    """

    name = "sql"
    Arguments = SqlArgs
    needs_frame = False

    def defines(self) -> str | None:
        return self.args.store_as

    def apply(self, frame: pd.DataFrame | None, context: Context) -> pd.DataFrame | None:
        declared = self.args.columns
        if context.query is None:   # dry run: the declared shape
            result = pd.DataFrame({c: pd.Series([], dtype=DTYPES[CAST_TYPES[t]]) for c, t in declared.items()})
        else:
            raw = context.query(self.args.query)
            missing = [c for c in declared if c not in raw.columns]
            if missing:
                raise StepError(f"the query returned no column {', '.join(missing)} (it returned: "
                                f"{', '.join(map(str, raw.columns)) or 'none'})", ("columns",))
            try:
                result = pd.DataFrame({c: convert(raw[c], CAST_TYPES[t], c) for c, t in declared.items()},
                                      index=raw.index)
            except FrameError as exc:
                raise StepError(str(exc), ("columns",)) from None
        if self.args.store_as:
            context.frames[self.args.store_as] = result
            return frame
        return result
