"""The base of every manifest model: unknown keys are errors, and a validated model is immutable."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
