"""The base of every manifest model: unknown keys rejected, values frozen. Its own module so that
config modules `models.py` imports can derive from it without an import cycle."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
