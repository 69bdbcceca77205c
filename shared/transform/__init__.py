"""Tabular transformations (`manifests/transformations.yml`): pandas pipelines declared in YAML that
read target tables and replace one output table each. See docs/transformations.md."""

CHUNK_ROWS = 50_000   # rows per input chunk of a chunk-safe pipeline: ~tens of MB for typical rows
