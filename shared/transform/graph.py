"""How pipelines depend on the models and on each other: inputs resolved, outputs checked, cycles
refused, a dependency order, and the dry run that infers each output's columns in that order."""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from shared.config.errors import ConfigError, ConfigIssue
from shared.config.project import Project
from shared.config.sql_query import dialect_of
from shared.config.yaml_source import YamlDocument
from shared.target.columns import StoredColumn
from shared.target.tables import desired_columns
from shared.transform.frames import FrameError, data_columns, describe, empty_frame, infer_columns
from shared.transform.pipeline import Pipeline, StepFailure, run_steps
from shared.transform.sql_reads import sql_step_problems


@dataclass(frozen=True)
class Transformations:
    """The pipelines of a project, in dependency order (a pipeline after those whose output it reads)."""

    file: str
    pipelines: dict[str, Pipeline]

    def select(self, names: Iterable[str] = ()) -> list[Pipeline]:
        """The named pipelines (all when none), in dependency order; an unknown name is an error."""
        wanted = list(names)
        unknown = [n for n in wanted if n not in self.pipelines]
        if unknown:
            raise ConfigError([ConfigIssue("command line", None, "", f"unknown pipeline '{n}' (pipelines: "
                                           f"{', '.join(self.pipelines) or 'none'})") for n in unknown])
        return [p for name, p in self.pipelines.items() if not wanted or name in wanted]

    def affected_by(self, sources: Iterable[str]) -> list[Pipeline]:
        """Pipelines reading, directly or through other pipelines, a table of these sources."""
        touched = set(sources)
        affected: list[Pipeline] = []
        outputs = set()
        for pipeline in self.pipelines.values():   # dependency order: upstream outputs are known here
            if any(t.split(".", 1)[0] in touched or t in outputs for t in pipeline.tables_read):
                affected.append(pipeline)
                outputs.add(pipeline.output)
        return affected

    def schemas(self) -> list[str]:
        return sorted({p.output_schema for p in self.pipelines.values()})


def check_graph(doc: YamlDocument, project: Project, pipelines: dict[str, Pipeline], issues: list[ConfigIssue],
                broken: set[str]) -> Transformations:
    """Resolve inputs and outputs, order the pipelines, dry-run them; problems go to `issues`.
    `broken`: outputs of pipelines that failed to load (reported already; their readers are not run)."""
    models = table_models(project)
    dialect = dialect_of(project.settings.target_url or "")
    outputs: dict[str, str] = {}
    for name, pipeline in pipelines.items():
        schema = pipeline.output_schema
        if pipeline.output in outputs:
            issues.append(doc.issue(("pipelines", name, "output"),
                                    f"{pipeline.output} is already the output of pipeline {outputs[pipeline.output]}"))
        elif schema in project.sources:
            issues.append(doc.issue(("pipelines", name, "output"), f"schema {schema} belongs to the source {schema}: "
                                    f"pipeline outputs need a schema no source uses (like analytics)"))
        else:
            outputs[pipeline.output] = name
    deps: dict[str, set[str]] = {}
    valid = set()
    for name, pipeline in pipelines.items():
        found = (_resolve(doc, pipeline, models, outputs, broken, issues) + _frame_refs(doc, pipeline)
                 + _sql_steps(doc, pipeline, dialect))
        issues.extend(found)
        deps[name] = {outputs[t] for t in pipeline.tables_read if t in outputs}
        if not found and not any(t in broken for t in pipeline.tables_read):
            valid.add(name)
    order = _order(doc, deps, issues)
    if order is None:
        return Transformations(doc.file, {})
    ordered = {n: pipelines[n] for n in order if n in pipelines}
    for name in [n for n in order if n in valid]:
        if not all(d in valid for d in deps[name]):
            valid.discard(name)     # its input pipeline is broken: reported there
            continue
        if not _dry_run(doc, ordered[name], models, project, ordered, issues):
            valid.discard(name)
    return Transformations(doc.file, ordered)


def _resolve(doc: YamlDocument, pipeline: Pipeline, models: dict, outputs: dict[str, str], broken: set[str],
             issues_out: list[ConfigIssue]) -> list[ConfigIssue]:
    found = []
    known = sorted(set(models) | set(outputs))
    where = [(("inputs", alias), table) for alias, table in pipeline.inputs.items()]
    where += [(at.path[2:] + ("sql", "reads", j), table) for at in pipeline.steps
              for j, table in enumerate(getattr(at.step.args, "reads", None) or [])]
    for key, table in where:
        if table in models or table in outputs or table in broken:   # broken: reported where it is declared
            continue
        hint = difflib.get_close_matches(table, known, n=1)
        found.append(doc.issue(("pipelines", pipeline.name) + key,
                               f"unknown input '{table}': not a model nor a pipeline's output"
                               + (f" (did you mean '{hint[0]}'?)" if hint else "")))
    return found


def _sql_steps(doc: YamlDocument, pipeline: Pipeline, dialect: str | None) -> list[ConfigIssue]:
    """Each `sql` step's query: one SELECT over the pipeline's declared tables (see sql_reads.py)."""
    found = []
    for at in pipeline.steps:
        if at.step.name == "sql":
            for problem in sql_step_problems(at.step.args.query, dialect, pipeline.tables_read):
                found.append(doc.issue(at.path + ("sql", "query"), problem))
    return found


def _frame_refs(doc: YamlDocument, pipeline: Pipeline) -> list[ConfigIssue]:
    found = []
    frames = list(pipeline.inputs)
    for at in pipeline.steps:
        for key, name in at.step.frame_refs():
            if name not in frames:
                found.append(doc.issue(at.path + (at.step.name,) + key,
                                       f"unknown frame '{name}' (frames here: {', '.join(frames) or 'none'})"))
        defined = at.step.defines()
        if defined:
            frames.append(defined)
    return found


def _order(doc: YamlDocument, deps: dict[str, set[str]], issues: list[ConfigIssue]) -> list[str] | None:
    sorter = TopologicalSorter(deps)
    try:
        return list(sorter.static_order())
    except CycleError as exc:
        ring = list(exc.args[1][:-1])       # graphlib: [x, ..., x], each next to the one it depends on
        if not all(ring[(i + 1) % len(ring)] in deps[name] for i, name in enumerate(ring)):
            ring.reverse()
        first = ring.index(min(ring))
        ring = ring[first:] + ring[:first]
        links = [f"{name} reads {ring[(i + 1) % len(ring)]}" for i, name in enumerate(ring)]
        issues.append(doc.issue(("pipelines", ring[0], "inputs"),
                                f"pipelines read each other's outputs in a cycle: {', '.join(links)}"))
        return None


def _dry_run(doc: YamlDocument, pipeline: Pipeline, models: dict, project: Project,
             pipelines: dict[str, Pipeline], issues: list[ConfigIssue]) -> bool:
    frames = {alias: empty_frame(input_columns(table, models, project, pipelines))
              for alias, table in pipeline.inputs.items()}
    pipeline.trace = []
    try:
        result = run_steps(pipeline, frames,
                           on_step=lambda at, frame: pipeline.trace.append((at.label, describe(frame))))
        pipeline.columns = infer_columns(result, pipeline.name)
    except StepFailure as exc:
        issues.append(exc.issue)
        return False
    except FrameError as exc:
        issues.append(doc.issue(("pipelines", pipeline.name, "output"), f"the result cannot be a table: {exc}"))
        return False
    return True


def table_models(project: Project) -> dict:
    """Models with a SQL table, by `source.model`: what a pipeline can read (not `store: mongo`)."""
    return {ref.qualified: ref for ref in project.models() if not ref.documents}


def input_columns(table: str, models: dict, project: Project, pipelines: dict[str, Pipeline]) -> list[StoredColumn]:
    """A table's data columns: a model's from the manifest, a pipeline output's from its dry run."""
    ref = models.get(table)
    if ref is not None:
        return data_columns(desired_columns(ref, project.settings.pii.redaction))
    producer = next(p for p in pipelines.values() if p.output == table)
    return data_columns(producer.columns)
