"""HTTP one-shots for runs (auth level FUNCTION):

- `POST /api/runs` with `{"models": ["shop", "shop.customers"], "trigger": "manual"}` starts a
  queued run: 202 `{"run_id", "status_url"}`. Bad bodies: 400 `{"error", "field"}`; a source or
  model not in the manifests: 400 naming it; a target that does not match the manifests (run
  `main.py plan`/`apply` first): 409, before anything is queued.
- `GET /api/runs/{run_id}`: 200 with the run's status (pages planned/fetched/loaded per model,
  errors, poison counts, done), 404 for an unknown run, 400 for a malformed id. `status` is
  `running`, `succeeded`, `failed`, or `abandoned` when every heartbeat of the run has expired
  (its workers stopped: `RunLedger.shown_status`, computed on read). An incremental model also
  shows its committed cursor (`models.<model>.state`: kind, value, whether this run committed it,
  up to which page; docs/incremental.md).

Manifests that do not validate answer 500 with the problems (secrets masked), like /api/health.
"""
from __future__ import annotations

import json
import re
from typing import Any

import azure.functions as func
import sqlalchemy as sa

from functions.common import current_project, open_chain
from shared.chain.backoff import RESUMING, busy_reason
from shared.config.errors import ConfigError
from shared.config.secrets import SecretMasker
from shared.load.loader import TargetDriftError

bp = func.Blueprint()

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,35}$")   # as shared.chain.messages accepts run ids
_IDENT = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
SELECTOR = re.compile(rf"^{_IDENT}(\.{_IDENT})?$")
TRIGGER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$")
MAX_MODELS = 200
FIELDS = ("models", "trigger")
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


class BadRequest(ValueError):
    def __init__(self, message: str, field: str | None):
        super().__init__(message)
        self.field = field


def respond(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json",
                             headers=headers)


def error(message: str, field: str | None, status: int = 400) -> func.HttpResponse:
    return respond({"error": message, "field": field}, status)


def parse_start(req: func.HttpRequest) -> tuple[list[str], str]:
    """(selectors, trigger) from a POST /api/runs body; BadRequest naming the field otherwise.
    Error messages never echo a value that did not pass its check."""
    try:
        body = json.loads(req.get_body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON", "body") from None
    except RecursionError:
        raise BadRequest("the body nests arrays or objects too deeply", "body") from None
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object like {\"models\": [\"source\", \"source.model\"]}", "body")
    unknown = sorted(k for k in body if k not in FIELDS)
    if unknown:
        name = unknown[0] if _FIELD_NAME.match(unknown[0]) else None
        raise BadRequest(f"unexpected field{' ' + name if name else ''} (expected: {', '.join(FIELDS)})", name)
    models = body.get("models")
    if "models" not in body:
        raise BadRequest("missing: a list of sources or 'source.model' names", "models")
    if not isinstance(models, list) or not models or len(models) > MAX_MODELS:
        raise BadRequest(f"expected a non-empty list (at most {MAX_MODELS}) of sources or 'source.model' names",
                         "models")
    for i, selector in enumerate(models):
        if not isinstance(selector, str) or not SELECTOR.match(selector):
            raise BadRequest(f"item {i}: expected a source or 'source.model' name", "models")
    trigger = body.get("trigger", "http")
    if not isinstance(trigger, str) or not TRIGGER.match(trigger):
        raise BadRequest("expected a short label (letters, digits, '_', '.', ':', '-'; at most 40)", "trigger")
    return list(dict.fromkeys(models)), trigger


def invalid_manifests(exc: ConfigError) -> func.HttpResponse:
    return respond({"error": "invalid manifests", "problems": [SecretMasker().mask(str(i)) for i in exc.issues]}, 500)


def database_busy(reason: str) -> func.HttpResponse:
    """503 with Retry-After: nothing was queued, and the same request will work once the database
    has resumed (serverless auto-pause answers the first connection with error 40613) or has room."""
    wait = 60 if reason == RESUMING else 30
    return respond({"error": f"the target database is busy ({reason}): nothing was started, retry in {wait}s",
                    "field": None}, 503, {"Retry-After": str(wait)})


@bp.function_name("start_run")
@bp.route(route="runs", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def start_run(req: func.HttpRequest) -> func.HttpResponse:
    try:
        selectors, trigger = parse_start(req)
    except BadRequest as exc:
        return error(str(exc), exc.field)
    try:
        project = current_project()
    except ConfigError as exc:
        return invalid_manifests(exc)
    try:
        project.models(selectors)
    except ConfigError as exc:   # names validated above, so echoing them is safe
        return error("; ".join(i.message for i in exc.issues), "models")
    with open_chain(project) as chain:
        try:
            run_id = chain.start_run(selectors, trigger)
        except sa.exc.DBAPIError as exc:   # Azure SQL resuming from auto-pause (40613), or full
            if (reason := busy_reason(exc)) is None:
                raise
            return database_busy(reason)
        except TargetDriftError as exc:
            return error(project.masker.mask(str(exc)), "models", 409)
    status_url = f"/api/runs/{run_id}"
    return respond({"run_id": run_id, "status_url": status_url}, 202, {"Location": status_url})


@bp.function_name("run_status")
@bp.route(route="runs/{run_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def run_status(req: func.HttpRequest) -> func.HttpResponse:
    run_id = req.route_params.get("run_id", "")
    if not RUN_ID.match(run_id):
        return error("expected a run id (letters, digits, '_', '.', '-'; at most 36)", "run_id")
    try:
        project = current_project()
    except ConfigError as exc:
        return invalid_manifests(exc)
    with open_chain(project) as chain:
        status = chain.run_status(run_id)
    if status is None:
        return error(f"no run {run_id}", "run_id", 404)
    return respond(status, 200)
