"""Run pipelines against the target: read inputs, run the steps, replace each output table.

Pipelines run one after another in dependency order. A failed pipeline leaves its previous output
in place (the table is replaced only once the new result is complete) and skips the pipelines
reading its output; the others still run. Chunk-safe pipelines read their input `CHUNK_ROWS`
rows at a time, so their peak memory is one input chunk plus the (usually much smaller) result.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from shared.config.project import Project
from shared.extract.sql import read_only
from shared.load.loader import summarize_database_error
from shared.load.replace import ReplaceError, replace_table
from shared.plural import plural
from shared.target.engine import target_engine
from shared.target.lease import Holding, Lease, LeaseHeld, LeaseLost, Leases, this_process
from shared.transform import CHUNK_ROWS  # noqa: E402  (kept importable from here: the CLI reads it without pandas)
from shared.transform.frames import FrameError, conform, empty_frame
from shared.transform.graph import Transformations, input_columns, table_models
from shared.transform.inputs import InputError, query_reader, read_chunks
from shared.transform.pipeline import Pipeline, StepFailure, run_steps

log = logging.getLogger("kspyder.transform")


class TransformError(Exception):
    """One pipeline failed; the message names the pipeline and the step, never a value."""


@dataclass
class PipelineResult:
    name: str
    output: str
    rows: int = 0
    chunks: int = 0            # input chunks read (0: read whole)
    seconds: float = 0.0
    error: str | None = None
    skipped: bool = False
    held: Lease | None = None  # the error: another run holds the output table (the queue chain waits)

    def render(self) -> str:
        if self.skipped:
            return f"  {self.name}: skipped ({self.error})"
        if self.error:
            return f"  {self.name}: FAILED: {self.error}"
        read = f", {plural(self.chunks, 'input chunk')}" if self.chunks else ""
        return f"  {self.name}: {plural(self.rows, 'row')} -> {self.output} ({self.seconds:.2f}s{read})"


@dataclass
class TransformSummary:
    run_id: str
    results: list[PipelineResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.error is None for r in self.results)

    def check(self) -> None:
        """Raise TransformError listing the failed pipelines (for callers that must not go on)."""
        if not self.ok:
            failed = [r for r in self.results if r.error and not r.skipped]
            skipped = [r for r in self.results if r.skipped]
            raise TransformError(f"transform {self.run_id}: {len(failed)} of {len(self.results)} pipelines failed"
                                 + (f", {len(skipped)} skipped" if skipped else "") + ":\n"
                                 + "\n".join(r.render() for r in failed + skipped))

    def render(self) -> str:
        if not self.results:
            return f"transform {self.run_id}: no pipelines to run"
        failed = sum(1 for r in self.results if r.error and not r.skipped)
        head = (f"transform {self.run_id}: {plural(len(self.results), 'pipeline')}"
                + (f", {failed} failed" if failed else ""))
        return "\n".join([head] + [r.render() for r in self.results])


def run_pipelines(project: Project, transformations: Transformations, pipelines: Iterable[Pipeline], *,
                  engine: sa.Engine | None = None, run_id: str | None = None,
                  chunk_rows: int = CHUNK_ROWS) -> TransformSummary:
    summary = TransformSummary(run_id or str(uuid.uuid4()))
    own = engine is None
    engine = engine or target_engine(project, derived=transformations.schemas)
    failed_outputs: dict[str, str] = {}
    # an output table is replaced by one writer at a time, never while a run or an apply holds it
    leases = Holding(Leases(engine, project.settings.leases.ttl_seconds), summary.run_id, this_process())
    try:
        leases.open()
        for pipeline in pipelines:
            result = PipelineResult(pipeline.name, pipeline.output)
            summary.results.append(result)
            upstream = next((failed_outputs[t] for t in pipeline.tables_read if t in failed_outputs), None)
            if upstream:
                result.skipped, result.error = True, f"its input pipeline {upstream} failed"
                failed_outputs[pipeline.output] = pipeline.name
                continue
            started = time.perf_counter()
            try:
                with leases.hold([pipeline.output]):
                    frame, result.chunks = _result(engine, project, transformations, pipeline, chunk_rows)
                    result.rows = replace_table(engine, pipeline.output_schema, pipeline.output_table, frame,
                                                run_id=summary.run_id)
            except (TransformError, ReplaceError, LeaseHeld, LeaseLost) as exc:
                result.error, result.held = str(exc), exc.lease if isinstance(exc, LeaseHeld) else None
                failed_outputs[pipeline.output] = pipeline.name
                log.error("pipeline %s failed: %s", pipeline.name, exc)
            result.seconds = time.perf_counter() - started
            if result.error is None:
                log.debug("pipeline %s: %s -> %s", pipeline.name, plural(result.rows, "row"), pipeline.output)
    finally:
        leases.close()
        if own:
            engine.dispose()
    return summary


def run_affected(project: Project, sources: Iterable[str], *, run_id: str | None = None,
                 engine: sa.Engine | None = None) -> TransformSummary:
    """What a finished load triggers: every pipeline reading these sources, directly or through
    other pipelines, in dependency order."""
    from shared.transform.config import (
        load_transformations,  # lazy: config imports the dry run, which imports this package
    )

    transformations = load_transformations(project)
    return run_pipelines(project, transformations, transformations.affected_by(sources), engine=engine, run_id=run_id)


def _result(engine: sa.Engine, project: Project, transformations: Transformations, pipeline: Pipeline,
            chunk_rows: int | None) -> tuple[pd.DataFrame, int]:
    """The pipeline's output frame, conformed to its inferred columns, and the input chunks read."""
    models = table_models(project)
    columns = {alias: input_columns(table, models, project, transformations.pipelines)
               for alias, table in pipeline.inputs.items()}
    try:
        try:
            # read-only where the dialect has it (as a SQL source's read), closed and rolled back
            # before the output is written: a `sql` step cannot leave anything behind
            with engine.connect() as connection, read_only(connection):
                if pipeline.chunk_safe and chunk_rows:
                    [(alias, table)] = pipeline.inputs.items()
                    parts = [conform(run_steps(pipeline, {alias: chunk}), pipeline.columns, pipeline.name)
                             for chunk in read_chunks(connection, table, columns[alias], chunk_rows)]
                    return _concat(parts, pipeline), len(parts)
                frames = {alias: next(read_chunks(connection, table, columns[alias], None))
                          for alias, table in pipeline.inputs.items()}
                frame = run_steps(pipeline, frames, query=query_reader(connection))
                return conform(frame, pipeline.columns, pipeline.name), 0
        except sa.exc.DBAPIError as exc:
            raise InputError(f"reading the inputs failed: {summarize_database_error(exc)}") from None
    except StepFailure as exc:
        raise TransformError(str(exc.issue)) from None
    except (InputError, FrameError, ReplaceError) as exc:
        raise TransformError(str(exc)) from None


def _concat(parts: list[pd.DataFrame], pipeline: Pipeline) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_frame(pipeline.columns)
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
