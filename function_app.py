"""The Azure Functions app (Python v2 programming model). Blueprints from `functions/` are
registered here; `func start` (Core Tools) and the Azure host both load this module."""
import azure.functions as func

from functions.health import bp as health_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health_bp)
