"""kspyder's framework core, shared by the command line (`cli/`) and the Azure Functions (`functions/`);
it never imports either (docs/architecture.md, tests/test_layering.py)."""
