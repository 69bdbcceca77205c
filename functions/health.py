"""`GET /api/health`: is the app up, are its manifests valid, and, in Azure, deployable? Counts and
identifiers only, never secrets or URLs. Sources or a target on loopback addresses or in local files
(the demo manifests) answer 500 "not deployable": they cannot work from an Azure instance."""
from __future__ import annotations

import json

import azure.functions as func

from functions.common import current_project
from shared.config.deployment import local_addresses
from shared.config.errors import ConfigError
from shared.config.secrets import SecretMasker

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    try:
        project = current_project()
    except ConfigError as exc:
        problems = [SecretMasker().mask(str(i)) for i in exc.issues]
        body: dict[str, object] = {"status": "invalid manifests", "problems": problems}
        return func.HttpResponse(json.dumps(body), status_code=500, mimetype="application/json")
    models = sum(len(s.models) for s in project.sources.values())
    body = {"status": "ok", "sources": len(project.sources), "models": models}
    local = local_addresses(project) if project.settings.storage.mode == "azure" else []
    if local:
        body.update(status="not deployable", problems=local)
    return func.HttpResponse(json.dumps(body), status_code=500 if local else 200, mimetype="application/json")

