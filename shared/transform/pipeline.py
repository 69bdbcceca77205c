"""A loaded pipeline, and the code that runs its steps on frames: real data, or (in the dry run)
empty frames with the input dtypes."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from shared.config.errors import ConfigIssue, format_path
from shared.target.columns import StoredColumn
from shared.transform.expressions import reason
from shared.transform.steps import Context, Step, StepError

NO_FRAME = ("no current frame here: the pipeline has {count} inputs ({names}); start with a join "
            "(left: and right:), a union or a sql step")


@dataclass
class StepAt:
    """A step and where it was written, for messages."""

    step: Step
    path: tuple            # ("pipelines", name, "steps", i)
    line: int | None

    @property
    def label(self) -> str:
        return f"step {self.path[-1] + 1} ({self.step.name})"


@dataclass
class Pipeline:
    name: str
    inputs: dict[str, str]             # alias -> schema.table
    steps: list[StepAt]
    output: str                        # schema.table
    description: str | None = None
    file: str = "transformations.yml"
    line: int | None = None
    reads_sql: list[str] = field(default_factory=list)      # tables `sql` steps declare they read
    columns: list[StoredColumn] = field(default_factory=list)               # inferred by the dry run
    trace: list[tuple[str, list[StoredColumn]]] = field(default_factory=list)   # schema after each step

    @property
    def output_schema(self) -> str:
        return self.output.split(".", 1)[0]

    @property
    def output_table(self) -> str:
        return self.output.split(".", 1)[1]

    @property
    def tables_read(self) -> list[str]:
        return list(dict.fromkeys(list(self.inputs.values()) + self.reads_sql))

    @property
    def chunk_safe(self) -> bool:
        """One input read row by row through row-by-row steps: chunks give the whole-frame result."""
        return len(self.inputs) == 1 and all(s.step.chunk_safe for s in self.steps)


class StepFailure(Exception):
    """A step failed on this data: the issue says where in the file, the message what (no values)."""

    def __init__(self, pipeline: Pipeline, at: StepAt, key: tuple, message: str):
        self.issue = ConfigIssue(pipeline.file, at.line, format_path(at.path + (at.step.name,) + key), message)
        super().__init__(f"pipeline {pipeline.name}, {at.label}: {self.issue}")


def run_steps(pipeline: Pipeline, inputs: dict[str, pd.DataFrame], query: Callable[[str], pd.DataFrame] | None = None,
              on_step: Callable[[StepAt, pd.DataFrame], None] | None = None) -> pd.DataFrame:
    """The pipeline's result frame; StepFailure names the step, its key path and what went wrong."""
    frames = dict(inputs)
    if len(frames) == 1:
        [(alias, current)] = frames.items()
        origin: str = f"input '{alias}'"
    else:
        current, origin = None, "no step"
    for at in pipeline.steps:
        if current is None and at.step.needs_frame:
            raise StepFailure(pipeline, at, (), NO_FRAME.format(count=len(inputs), names=", ".join(inputs) or "none"))
        context = Context(frames, origin, query)
        try:
            current = at.step.apply(current, context)
        except StepError as exc:
            raise StepFailure(pipeline, at, exc.key, str(exc)) from None
        except (TypeError, ValueError, KeyError, AttributeError) as exc:   # pandas refusing these dtypes
            raise StepFailure(pipeline, at, (), f"cannot run on these columns: {reason(exc)}") from None
        origin = "the previous step"
        if on_step is not None and current is not None:
            on_step(at, current)
    if current is None:
        raise StepFailure(pipeline, pipeline.steps[-1], (), "the last step leaves no frame to write")
    return current
