"""`run` (the embedded main job) and `status` (recent runs from the ledger)."""
from __future__ import annotations

import sys

import click

from cli.context import CliState, user_errors
from cli.progress import PageProgress
from shared.ledger import new_run_id
from shared.pipeline import run_models
from shared.pipeline.run import local_ledger
from shared.schema.desired import schema_engine
from shared.schema.plan import PlanOptions, compute_plan
from shared.target.lease import LeaseHeld


@click.command()
@click.argument("selectors", nargs=-1)
@click.option("--apply", "apply_first", is_flag=True, help="Apply pending schema changes first (no prompt).")
@click.option("--wait", type=click.FloatRange(min=0), default=0, metavar="SECONDS",
              help="Wait up to SECONDS for a model (or, with --apply, a table) another run holds, instead of "
                   "refusing it at once.")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="Load at most N records per model (a trial run: it never marks soft deletes).")
@click.pass_obj
def run(state: CliState, selectors: tuple[str, ...], apply_first: bool, wait: float, limit: int | None) -> None:
    """Extract, PII-strip and load SOURCE or SOURCE.MODEL (all when none) into the target database.

    One run of a model at a time: a model another run is loading is refused (exit code 1), naming
    that run and when its lease expires, unless --wait gives it time to finish."""
    with user_errors(state):
        project = state.project()
        refs = project.models(selectors)
        engine = schema_engine(project)
        try:
            # without --apply only the run's own tables matter: naming its sources spares the plan the
            # search for removed sources (every schema on the server) and the pipelines' dry runs
            planned = tuple(selectors) or (() if apply_first else tuple(dict.fromkeys(r.source_name for r in refs)))
            with engine.connect() as connection:
                plan = compute_plan(connection, project, PlanOptions(selectors=planned))
            if plan.changes:   # lazy: a run whose target matches the manifests neither renders nor applies
                from shared.schema.apply import PlanStamp, apply_stamped
                from shared.schema.apply_lease import leased_apply
                from shared.schema.plan_render import render_applied, render_plan
            # derived tables (pipeline outputs) do not stop a load: `transform` rebuilds them anyway
            if any(not c.builder for c in plan.changes) and not apply_first:
                click.echo(render_plan(plan), err=True)
                click.echo("error: the target does not match the manifests: run `main.py apply` "
                           "(or `main.py run --apply`) first", err=True)
                sys.exit(1)
            run_id = new_run_id()
            if plan.changes:
                stamp = PlanStamp.of(plan)
                try:
                    with leased_apply(engine, project, stamp, run_id, wait):
                        outcome = apply_stamped(engine, project, stamp)
                except LeaseHeld as exc:
                    click.echo(f"error: not applied: {exc}", err=True)
                    sys.exit(1)
                click.echo(render_applied(outcome.changes), err=True)
            progress: list[PageProgress] = []
            summary = run_models(project, refs, engine=engine, run_id=run_id, wait=wait, limit=limit,
                                 on_model_start=lambda ref: progress.append(PageProgress(ref.qualified)),
                                 on_page=lambda page, stats: progress[-1](page, stats), planned=True)
            for bar in progress:
                bar.bar.close()
        finally:
            engine.dispose()
        click.echo(summary.render(), err=True)
        if not summary.ok:
            sys.exit(1)


@click.command()
@click.argument("run_id", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True)
@click.pass_obj
def status(state: CliState, run_id: str | None, limit: int) -> None:
    """Recent runs and their outcome, or one run in detail."""
    with user_errors(state):
        ledger = local_ledger(state.project())
        if run_id:
            record = ledger.get(run_id)
            if record is None:
                click.echo(f"error: no run {run_id} in the ledger", err=True)
                sys.exit(1)
            click.echo(f"run {record.run_id} ({record.trigger}): {ledger.shown_status(record)}, started "
                       f"{record.started_at}, ended {record.ended_at or '-'}")
            for model in record.summary.get("models", []):
                failed = "REFUSED" if model.get("refused") else "FAILED"
                state_text = f"{failed}: {model['error']}" if model.get("error") else "ok"
                click.echo(f"  {model['model']}: {model['records']} records, {model['pages']} pages, "
                           f"{model['rows']} rows, {model['seconds']}s, {state_text}")
            return
        runs = ledger.recent(limit)
        if not runs:
            click.echo("no runs yet: `main.py run` starts one")
            return
        click.echo(f"{'run':<24} {'status':<10} {'started':<26} {'records':>9}  models")
        for r in runs:
            click.echo(f"{r.run_id:<24} {ledger.shown_status(r):<10} {r.started_at:<26} "
                       f"{r.summary.get('records', 0):>9}  {', '.join(r.models)}")
