"""Where the tests find the repository and their data folders, wherever the test module sits."""
from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent

# Corpora of broken files; each file states, in `# expect:` lines, the exact messages it must produce.
BROKEN_MANIFESTS = TESTS / "broken_manifests"
BROKEN_AGGREGATIONS = TESTS / "broken_aggregations"
BROKEN_TRANSFORMATIONS = TESTS / "broken_transformations"
