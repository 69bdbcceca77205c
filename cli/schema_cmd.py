"""`plan`, `apply` and `rebuild`: the target schema, Terraform-style.

`plan` only reads; `apply` changes the database only after a person (or --auto-approve, or a saved
plan) approved exactly what the plan printed; `rebuild` is "destroy and recreate at any time".
Plans go to stdout; the target line, notes and errors go to stderr.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cli.context import CliState, user_errors
from shared.config.project import Project
from shared.ledger import new_run_id
from shared.load.pii_key_check import forget_pii_key
from shared.schema.apply import ApplyOutcome, PlanStamp, apply_stamped
from shared.schema.apply_lease import leased_apply
from shared.schema.desired import schema_engine
from shared.schema.plan import Plan, PlanError, PlanOptions, compute_plan
from shared.schema.plan_file import load_plan, mask_url, plan_document, save_plan
from shared.schema.plan_render import render_applied, render_change, render_plan
from shared.target.dialects import transactional_ddl
from shared.target.lease import LeaseHeld

TARGET_HELP = "Target database URL (default: settings target_url / KSPYDER_TARGET_URL)."
SCOPE_HELP = ("Only schemas matching GLOB (repeatable) are searched for removed sources. Default: every schema "
              "marked as this project's (docs/target.md, ownership).")
WAIT_HELP = "Wait up to SECONDS for a table a run is loading, instead of refusing at once."
NO_TERMINAL = "refusing to apply without confirmation: stdin is not a terminal (pass --auto-approve)"


@click.command("plan")
@click.argument("selectors", nargs=-1)
@click.option("--prune", is_flag=True, help="Also drop tables and schemas the manifests no longer describe.")
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan as JSON, for `apply PLAN.json`.")
@click.option("--target", help=TARGET_HELP)
@click.option("--scope", multiple=True, metavar="GLOB", help=SCOPE_HELP)
@click.pass_obj
def plan(state: CliState, selectors: tuple[str, ...], prune: bool, out: str | None, target: str | None,
         scope: tuple[str, ...]) -> None:
    """Show what apply would change in the target (exit 0: no changes, 2: changes pending, 1: error)."""
    with _errors(state) as project:
        url = _target_url(project, target)
        check_sources(project, selectors)
        computed = _compute(url, project, PlanOptions(prune, selectors, scope))
        click.echo(render_plan(computed))
        if out:
            save_plan(out, plan_document(computed, url, project))
            click.echo(f"plan saved to {out} (apply it with: main.py apply {out})", err=True)
    sys.exit(2 if computed.changes else 0)


@click.command("apply")
@click.argument("plan_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Do not ask (required when stdin is not a terminal).")
@click.option("--prune", is_flag=True, help="Also drop tables and schemas the manifests no longer describe.")
@click.option("--refill", is_flag=True, help="Then run the models whose tables were created or replaced.")
@click.option("--target", help=TARGET_HELP)
@click.option("--scope", multiple=True, metavar="GLOB", help=SCOPE_HELP)
@click.option("--wait", type=click.FloatRange(min=0), default=0, metavar="SECONDS", help=WAIT_HELP)
@click.pass_obj
def apply(state: CliState, plan_file: str | None, auto_approve: bool, prune: bool, refill: bool, target: str | None,
          scope: tuple[str, ...], wait: float) -> None:
    """Make the target match the manifests: re-plan and ask, or apply a saved PLAN_FILE as it was approved.

    A saved plan is applied only if the database is still the one it was made against. MariaDB/MySQL
    commit each DDL statement on its own, so there a failure part-way keeps the earlier changes.
    A table a run is loading is not changed: the apply is refused, naming the run (see --wait).
    """
    if plan_file and (prune or scope):
        raise click.UsageError("--prune and --scope belong to `plan`: the saved plan already records them")
    with _errors(state) as project:
        url = _target_url(project, target)
        stamp: PlanStamp | None
        if plan_file:
            stamp = _saved_stamp(plan_file, url)
        else:
            stamp = _approved(url, project, PlanOptions(prune, (), scope), auto_approve, "Apply these changes?")
        if stamp is None:
            return
        outcome = _apply(url, project, stamp, wait)
        _report(outcome, hint=not refill)
        if refill:
            _refill(project, outcome.plan.reextract, wait)


@click.command("rebuild")
@click.argument("sources", nargs=-1)
@click.option("--auto-approve", is_flag=True, help="Do not ask (required when stdin is not a terminal).")
@click.option("--target", help=TARGET_HELP)
@click.option("--wait", type=click.FloatRange(min=0), default=0, metavar="SECONDS", help=WAIT_HELP)
@click.pass_obj
def rebuild(state: CliState, sources: tuple[str, ...], auto_approve: bool, target: str | None, wait: float) -> None:
    """Drop the SOURCES' schemas (all sources when none), create them from the manifests, run their models."""
    dotted = [s for s in sources if "." in s]
    if dotted:
        raise click.UsageError(f"rebuild takes source names, not models: {', '.join(dotted)}")
    with _errors(state) as project:
        url = _target_url(project, target)
        options = PlanOptions(selectors=sources, rebuild=True)
        stamp = _approved(url, project, options, auto_approve, "Drop and rebuild these schemas?")
        if stamp is not None:
            _report(_apply(url, project, stamp, wait), hint=False)
        if stamp is not None:   # the rebuilt sources are reloaded with the current PII key
            forget_pii_key(url, [ref.source_name for ref in project.models(sources)])
        documents = sorted({ref.source_name for ref in project.models(sources) if ref.documents})
        if documents:   # store: mongo sources: their databases are dropped and reloaded
            _drop_documents(project, documents, auto_approve)
        if stamp is not None or documents:
            _run(project, project.models(sources), wait)


def _drop_documents(project: Project, names: list[str], auto_approve: bool) -> None:
    from shared.mongo.client import DocumentStoreError, drop_databases  # lazy: only rebuild needs pymongo

    click.echo(f"Document databases to drop and reload: {', '.join(names)}")
    if not auto_approve:
        if not stdin_is_terminal():
            raise PlanError(NO_TERMINAL)
        if not click.confirm("Drop and reload these document databases?", default=False):
            raise PlanError("rebuild cancelled: the document databases were not changed")
    try:
        drop_databases(project.settings, names)
    except DocumentStoreError as exc:
        raise PlanError(str(exc)) from None


@contextmanager
def _errors(state: CliState) -> Iterator[Project]:
    """Manifest problems, refused plans and database errors end the command with exit code 1."""
    with user_errors(state):
        project = state.project()
        try:
            yield project
        except PlanError as exc:
            _fail(project, str(exc))
        except LeaseHeld as exc:
            _fail(project, f"not applied: {exc}")
        except sa.exc.SQLAlchemyError as exc:
            _fail(project, f"database: {_first_line(exc)}")


def _fail(project: Project, message: str) -> None:
    click.echo(f"error: {project.masker.mask(message)}", err=True)
    sys.exit(1)


def _first_line(exc: sa.exc.SQLAlchemyError) -> str:
    """The driver's message without SQLAlchemy's statement and parameter echo."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _target_url(project: Project, target: str | None) -> str:
    url = target or project.settings.target_url
    click.echo(f"target: {mask_url(url)}", err=True)
    return url


def _engine(url: str, project: Project) -> Engine:
    return schema_engine(project, url)


def _compute(url: str, project: Project, options: PlanOptions) -> Plan:
    engine = _engine(url, project)
    try:
        with engine.connect() as connection:
            return compute_plan(connection, project, options)
    finally:
        engine.dispose()


def _approved(url: str, project: Project, options: PlanOptions, auto_approve: bool, question: str) -> PlanStamp | None:
    """The stamp of the plan a person saw and accepted; None when there is nothing to do."""
    check_sources(project, options.selectors)
    computed = _compute(url, project, options)
    click.echo(render_plan(computed))
    if not computed.changes:
        return None
    if not auto_approve:
        if not stdin_is_terminal():
            raise PlanError(NO_TERMINAL)
        if not click.confirm(question, default=False):
            raise PlanError("apply cancelled: nothing was changed")
    return PlanStamp.of(computed)


def check_sources(project: Project, selectors: tuple[str, ...]) -> None:
    """Every mismatch between the SQL sources and the manifests, before any change is offered."""
    from shared.extract.sql_check import mismatch_message, sql_source_problems  # lazy: it connects

    problems = sql_source_problems(project.models(selectors))
    if problems:
        raise PlanError(mismatch_message(problems, "; nothing was planned"))


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _saved_stamp(path: str, url: str) -> PlanStamp:
    saved = load_plan(path)
    if saved.target != mask_url(url):
        raise PlanError(f"the plan was made for {saved.target}, not {mask_url(url)} (use --target)")
    return saved.stamp


def _apply(url: str, project: Project, stamp: PlanStamp, wait: float = 0.0) -> ApplyOutcome:
    """Under the leases of the tables it changes (LeaseHeld: a run is loading one of them)."""
    engine = _engine(url, project)
    try:
        with leased_apply(engine, project, stamp, new_run_id(), wait):
            return apply_stamped(engine, project, stamp)
    except sa.exc.SQLAlchemyError:
        if not transactional_ddl(engine.dialect.name):
            click.echo("note: this database commits each DDL statement on its own: the changes before the "
                       "failure stay applied; run main.py plan to see what is left", err=True)
        raise
    finally:
        engine.dispose()


def _report(outcome: ApplyOutcome, hint: bool) -> None:
    if outcome.already_applied:
        click.echo("This plan has already been applied: nothing to do.")
        return
    for change in outcome.changes:
        click.echo(render_change(change))
    click.echo(render_applied(outcome.changes))
    if outcome.plan.reextract:
        click.echo(f"Re-extract: {', '.join(outcome.plan.reextract)}" + (" (apply --refill runs them)" if hint else ""))
    if outcome.plan.rebuild_derived:
        click.echo(f"Rebuild: {', '.join(outcome.plan.rebuild_derived)} (main.py transform)")


def _refill(project: Project, qualified: tuple[str, ...], wait: float) -> None:
    if not qualified:
        click.echo("Nothing to re-extract.", err=True)
        return
    wanted = set(qualified)
    _run(project, [ref for ref in project.models() if ref.qualified in wanted], wait)


def _run(project: Project, refs: list, wait: float) -> None:
    from shared.pipeline import run_models  # lazy: the pipeline pulls in every extractor and the loader

    summary = run_models(project, refs, wait=wait)
    click.echo(summary.render())
    if not summary.ok:
        sys.exit(1)
