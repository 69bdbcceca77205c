"""What every step is: a small class registered under the name a pipeline file uses for it.

A step receives the current frame (the previous step's result, or the pipeline's only input) and
the named frames (the inputs, and what `sql` steps stored), and returns the new current frame. The
same code runs on real data and, in the dry run, on empty frames with the input dtypes: a column a
step needs but does not get fails there, before any data is read.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from shared.config.models import check_identifier

STEPS: dict[str, type[Step[Any]]] = {}


class StepError(ValueError):
    """A step cannot run on this frame. `key` is the path inside the step's arguments."""

    def __init__(self, message: str, key: tuple = ()):
        super().__init__(message)
        self.key = key


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass
class Context:
    """What a step may read besides the current frame."""

    frames: dict[str, pd.DataFrame]
    origin: str                                                   # who produced the current frame
    query: Callable[[str], pd.DataFrame] | None = None            # runs a `sql` step's query
    notes: list[str] = field(default_factory=list)


A = TypeVar("A", bound=BaseModel)


class Step(ABC, Generic[A]):
    """Generic over its argument model, so `self.args` is typed where a step reads it."""

    name: ClassVar[str]
    Arguments: ClassVar[type[BaseModel]]
    chunk_safe: ClassVar[bool] = False      # row by row: the result over chunks equals the whole-frame result
    needs_frame: ClassVar[bool] = True      # False: the step makes a frame of its own (sql, union of inputs)

    def __init__(self, args: A):
        self.args: A = args

    @classmethod
    def shorthand(cls, raw: Any) -> Any:
        """The short form a step's arguments may be written in, as the long form (a mapping)."""
        return raw

    def frame_refs(self) -> list[tuple[tuple, str]]:
        """Named frames this step uses besides the current one: (key path in its arguments, name)."""
        return []

    def defines(self) -> str | None:
        """The named frame this step stores for later steps, if any."""
        return None

    @abstractmethod
    def apply(self, frame: pd.DataFrame | None, context: Context) -> pd.DataFrame:
        """The new current frame."""


S = TypeVar("S", bound="Step[Any]")


def register(cls: type[S]) -> type[S]:
    STEPS[cls.name] = cls
    return cls


def require(frame: pd.DataFrame, columns: list[str], context: Context, key: tuple = (), indexed: bool = True) -> None:
    """Every named column exists, or a StepError naming the first missing one and what exists.
    `indexed`: the columns were written as a list, so the key path ends with the item's index."""
    for i, name in enumerate(columns):
        if name not in frame.columns:
            raise StepError(f"column '{name}' is not produced by {context.origin} (columns: {listing(frame)})",
                            key + ((i,) if indexed else ()))


def listing(frame: pd.DataFrame) -> str:
    return ", ".join(map(str, frame.columns)) or "none"


def names(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def identifier(value: str, what: str = "column name") -> str:
    return check_identifier(value, what)
