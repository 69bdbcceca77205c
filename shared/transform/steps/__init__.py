"""The step registry: importing this package registers every step under its name."""
from __future__ import annotations

from shared.transform.steps import columns, combine, reshape, rows  # noqa: F401  (each module registers its steps)
from shared.transform.steps.base import STEPS, Context, Step, StepError

CHUNK_SAFE = tuple(sorted(name for name, step in STEPS.items() if step.chunk_safe))

__all__ = ["STEPS", "CHUNK_SAFE", "Context", "Step", "StepError"]
