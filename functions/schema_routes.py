"""HTTP one-shots for the target's schema (auth level FUNCTION), `main.py plan`/`apply` over HTTP:

- `GET /api/schema/plan`: 200 `{"changes": [...], "kept": [...], "models": [...], "plan_hash",
  "text", "reextract": [...]}`: the plan that would bring the target to the manifests (no
  `--prune`: tables of removed sources are kept), `text` as `main.py plan` prints it.
- `POST /api/schema/apply` with `{"plan_hash": "<the plan's hash>"}`: applies the plan only if the
  live plan still has that hash, so what runs is what was read; otherwise 409 "plan is stale: ...".
  The plan is computed again inside the apply transaction (`apply_stamped`), so a change between
  the check and the apply is refused too. 200 `{"applied": [...], "text", "reextract": [...]}`;
  bad bodies 400 `{"error", "field"}`.

A plan that cannot be made (a table kspyder does not manage is in the way, a schema another project
owns) is 409 with the reason; so is a SQL source that lacks a model's table or column (409 with
`problems`, one line each, checked before the target is read);
manifests that do not validate are 500 with the problems, like the other routes.
"""
from __future__ import annotations

import json
import re
from typing import Any

import azure.functions as func
import sqlalchemy as sa

from functions.common import current_project, engine_factory
from functions.runs import BadRequest, error, invalid_manifests, respond
from shared.config.errors import ConfigError
from shared.config.project import Project
from shared.schema.apply import PlanStamp, StalePlan, apply_stamped
from shared.schema.plan import PlanError, PlanOptions, compute_plan
from shared.schema.plan_render import render_applied, render_plan

bp = func.Blueprint()

PLAN_HASH = re.compile(r"^[0-9a-f]{64}$")    # sha256 hex, as Plan.plan_hash
OPTIONS = PlanOptions()                      # the routes' plan: the whole project, nothing pruned
STALE_HASH = "plan is stale: the plan changed since it was read (GET /api/schema/plan again)"
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


def read_object(req: func.HttpRequest, fields: tuple[str, ...], example: str) -> dict[str, Any]:
    """The JSON object body with only `fields`; BadRequest naming the field (or "body") otherwise.
    An unexpected field is named only when it looks like a field name (values are never echoed)."""
    try:
        body = json.loads(req.get_body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON", "body") from None
    except RecursionError:
        raise BadRequest("the body nests arrays or objects too deeply", "body") from None
    if not isinstance(body, dict):
        raise BadRequest(f"expected a JSON object like {example}", "body")
    unknown = sorted(k for k in body if k not in fields)
    if unknown:
        name = unknown[0] if _FIELD_NAME.match(unknown[0]) else None
        raise BadRequest(f"unexpected field{' ' + name if name else ''} (expected: {', '.join(fields)})", name)
    return body


def parse_apply(req: func.HttpRequest) -> str:
    body = read_object(req, ("plan_hash",), '{"plan_hash": "<from GET /api/schema/plan>"}')
    if "plan_hash" not in body:
        raise BadRequest("missing: the plan_hash of the plan to apply (GET /api/schema/plan)", "plan_hash")
    plan_hash = body["plan_hash"]
    if not isinstance(plan_hash, str) or not PLAN_HASH.match(plan_hash):
        raise BadRequest("expected a plan hash (64 lowercase hex digits, from GET /api/schema/plan)", "plan_hash")
    return plan_hash


def _unavailable(project: Project, exc: sa.exc.SQLAlchemyError) -> func.HttpResponse:
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return error(f"target database error: {project.masker.mask(lines[0] if lines else type(exc).__name__)}", None, 503)


@bp.function_name("schema_plan")
@bp.route(route="schema/plan", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def schema_plan(req: func.HttpRequest) -> func.HttpResponse:
    try:
        project = current_project()
    except ConfigError as exc:
        return invalid_manifests(exc)
    mismatch = _source_mismatch(project)
    if mismatch is not None:   # a model's table or column missing from its SQL source, before anything is created
        return mismatch
    try:
        with engine_factory(project)().connect() as connection:
            plan = compute_plan(connection, project, OPTIONS)
    except ConfigError as exc:   # transformations.yml: its outputs are part of the plan
        return invalid_manifests(exc)
    except PlanError as exc:
        return error(project.masker.mask(str(exc)), None, 409)
    except sa.exc.SQLAlchemyError as exc:
        return _unavailable(project, exc)
    return respond({"changes": [c.as_json() for c in plan.changes], "kept": [k.as_json() for k in plan.kept],
                    "models": list(plan.models), "plan_hash": plan.plan_hash, "text": render_plan(plan),
                    "reextract": list(plan.reextract)}, 200)


def _source_mismatch(project: Project) -> func.HttpResponse | None:
    """409 with every mismatch between the SQL sources and the manifests, or None when they match."""
    from shared.extract.sql_check import mismatch_message, sql_source_problems  # lazy: only this route connects

    problems = sql_source_problems(project.models())
    if not problems:
        return None
    return respond({"error": project.masker.mask(mismatch_message(problems)), "field": None,
                    "problems": [project.masker.mask(p) for p in problems]}, 409)


@bp.function_name("schema_apply")
@bp.route(route="schema/apply", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def schema_apply(req: func.HttpRequest) -> func.HttpResponse:
    try:
        plan_hash = parse_apply(req)
    except BadRequest as exc:
        return error(str(exc), exc.field)
    try:
        project = current_project()
    except ConfigError as exc:
        return invalid_manifests(exc)
    try:
        engine = engine_factory(project)()
        with engine.connect() as connection:
            live = compute_plan(connection, project, OPTIONS)
        if live.plan_hash != plan_hash:
            return error(STALE_HASH, "plan_hash", 409)
        outcome = apply_stamped(engine, project, PlanStamp.of(live))
    except ConfigError as exc:   # transformations.yml: its outputs are part of the plan
        return invalid_manifests(exc)
    except StalePlan as exc:
        return error(str(exc), "plan_hash", 409)
    except PlanError as exc:
        return error(project.masker.mask(str(exc)), None, 409)
    except sa.exc.SQLAlchemyError as exc:
        return _unavailable(project, exc)
    changes = outcome.changes
    return respond({"applied": [c.as_json() for c in changes], "plan_hash": plan_hash,
                    "text": render_applied(changes), "reextract": list(outcome.plan.reextract if changes else ())}, 200)
