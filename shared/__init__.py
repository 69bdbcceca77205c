"""kspyder's framework core, shared by the CLI (`main.py`) and the Azure Functions (`functions/`)."""
