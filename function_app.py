"""The Azure Functions app (Python v2 programming model). Blueprints from `functions/` are
registered here; `func start` (Core Tools) and the Azure host both load this module.
See docs/functions.md for the functions, their queues and settings."""
import azure.functions as func

from functions.health import bp as health_bp
from functions.inbox import bp as inbox_bp
from functions.queues import bp as queues_bp
from functions.runs import bp as runs_bp
from functions.schedule import bp as schedule_bp
from functions.schema_routes import bp as schema_bp
from functions.transform import bp as transform_bp
from functions.transform_route import bp as transform_route_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (health_bp, runs_bp, queues_bp, transform_bp, inbox_bp, schedule_bp, schema_bp, transform_route_bp):
    app.register_functions(blueprint)
