"""kspyder's framework core, shared by the command line (`cli/`) and the Azure Functions (`functions/`);
it never imports either (docs/architecture.md, tests/architecture/test_layering.py)."""
