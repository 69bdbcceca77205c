"""Tabular transformations (`manifests/transformations.yml`): pandas pipelines declared in YAML that
read target tables and replace one output table each. See docs/transformations.md."""
