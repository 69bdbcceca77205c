"""`POST /api/transform` (auth level FUNCTION): ask for the transformations of some sources now,
without a run, or again for a past run.

Body `{"sources": ["shop", ...], "run_id": "<optional: a run in the ledger>"}`. Enqueues one
`TransformEvent` on `kspyder-transform`, what a run sends when its last page is loaded, and answers
202 `{"run_id", "sources", "models", "queue"}`. Without `run_id` the event gets a new id (not a
ledger run); with one, the run must exist (404 otherwise) and the event lists that run's models of
those sources. The Transform function then runs the pipelines reading those sources
(see functions/transform.py). Bad bodies: 400 `{"error", "field"}`; an unknown source: 400 naming it.
"""
from __future__ import annotations

import re

import azure.functions as func

from functions.common import current_project, stores
from functions.runs import RUN_ID, BadRequest, error, invalid_manifests, respond
from functions.schema_routes import read_object
from shared.chain.messages import TransformEvent, encode
from shared.chain.names import TRANSFORM
from shared.config.errors import ConfigError
from shared.ledger import RunLedger, new_run_id

bp = func.Blueprint()

SOURCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MAX_SOURCES = 200
FIELDS = ("run_id", "sources")


def parse_transform(req: func.HttpRequest) -> tuple[str | None, list[str]]:
    body = read_object(req, FIELDS, '{"sources": ["source"], "run_id": "<optional>"}')
    if "sources" not in body:
        raise BadRequest("missing: a list of source names", "sources")
    sources = body["sources"]
    if not isinstance(sources, list) or not sources or len(sources) > MAX_SOURCES:
        raise BadRequest(f"expected a non-empty list (at most {MAX_SOURCES}) of source names", "sources")
    for i, source in enumerate(sources):
        if not isinstance(source, str) or not SOURCE.match(source):
            raise BadRequest(f"item {i}: expected a source name", "sources")
    run_id = body.get("run_id")
    if run_id is not None and (not isinstance(run_id, str) or not RUN_ID.match(run_id)):
        raise BadRequest("expected a run id (letters, digits, '_', '.', '-'; at most 36)", "run_id")
    return run_id, list(dict.fromkeys(sources))


@bp.function_name("start_transform")
@bp.route(route="transform", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def start_transform(req: func.HttpRequest) -> func.HttpResponse:
    try:
        run_id, sources = parse_transform(req)
    except BadRequest as exc:
        return error(str(exc), exc.field)
    try:
        project = current_project()
    except ConfigError as exc:
        return invalid_manifests(exc)
    unknown = [s for s in sources if s not in project.sources]
    if unknown:   # names validated above, so echoing them is safe
        return error(f"unknown source{'s' if len(unknown) > 1 else ''} {', '.join(repr(s) for s in unknown)} "
                     f"(sources: {', '.join(project.sources) or 'none'})", "sources")
    blobs, queues = stores()
    if run_id is None:
        run_id = new_run_id()
        models = [ref.qualified for ref in project.models(sources)]
    else:
        record = RunLedger(blobs).get(run_id)
        if record is None:
            return error(f"no run {run_id}", "run_id", 404)
        models = [m for m in record.models if m.split(".", 1)[0] in sources]
    queues.send(TRANSFORM, encode(TransformEvent(run_id, tuple(sources), tuple(models))))
    return respond({"run_id": run_id, "sources": sources, "models": models, "queue": TRANSFORM}, 202)
