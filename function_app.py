"""The Azure Functions app (Python v2 programming model). Blueprints from `functions/` are
registered here; `func start` (Core Tools) and the Azure host both load this module.
See docs/functions.md for the functions, their queues and settings."""
import os
from collections.abc import MutableMapping
from pathlib import Path

import azure.functions as func

from functions.health import bp as health_bp
from functions.inbox import bp as inbox_bp
from functions.queues import bp as queues_bp
from functions.runs import bp as runs_bp
from functions.schedule import bp as schedule_bp
from functions.schema_routes import bp as schema_bp
from functions.transform import bp as transform_bp
from functions.transform_route import bp as transform_route_bp

APP_DIR = Path(__file__).resolve().parent


def anchor_manifests(env: MutableMapping[str, str] = os.environ, app_dir: Path = APP_DIR) -> None:
    """A relative KSPYDER_MANIFESTS (Azure sets `manifests`) names the folder shipped with this
    file: the worker's current directory is not promised to be the app's folder."""
    value = env.get("KSPYDER_MANIFESTS")
    if value and not Path(value).is_absolute():
        env["KSPYDER_MANIFESTS"] = str(app_dir / value)


anchor_manifests()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
# One call per blueprint, as Microsoft's samples do: 12 functions in all (docs/functions.md).
app.register_functions(health_bp)            # health
app.register_functions(runs_bp)              # start_run, run_status
app.register_functions(queues_bp)            # paginate, fetch, load
app.register_functions(transform_bp)         # transform
app.register_functions(inbox_bp)             # inbox
app.register_functions(schedule_bp)          # scheduled_runs
app.register_functions(schema_bp)            # schema_plan, schema_apply
app.register_functions(transform_route_bp)   # start_transform
