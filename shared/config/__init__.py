"""Manifests and settings: YAML in, typed and validated objects out, every error reported at once."""
