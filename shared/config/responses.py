"""`responses:` rules of an API source or model: what an answer means when its status alone says
it wrong (a 404 for a deleted parent, `ok: false` in a 200, a 403 that is a rate limit)."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, model_validator

from shared.config.strict import Strict

# The names of the action registry (`shared/extract/responses.py` ACTIONS; a test keeps them equal).
RESPONSE_ACTIONS = ("empty", "retry", "rate_limited", "fail")
ResponseAction = Literal["empty", "retry", "rate_limited", "fail"]
DEFAULT_FAIL_MESSAGE = "the response matched a fail rule"


def _one_or_many(value: Any) -> Any:
    """`status: 404` as written for the common case of one status."""
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


Status = Annotated[int, Field(ge=100, le=599)]


class ResponseRule(Strict):
    """Matches when every condition it states holds; the first matching rule (model's, then source's) acts."""

    status: Annotated[list[Status] | None, BeforeValidator(_one_or_many)] = Field(
        None, description="Status code(s) the rule matches.")
    header: str | None = Field(None, min_length=1, description="A response header that must be present.")
    header_value: str | None = Field(None, description="header: the value it must have (exact, trimmed).")
    body_path: str | None = Field(None, min_length=1, description="Dotted path into a JSON body.")
    body_value: str | int | float | bool | None = Field(
        None, description="body_path: the value it must hold; unset: any value but null.")
    action: ResponseAction
    message: str | None = Field(None, min_length=1, description="fail: the fixed message the error carries.")

    @model_validator(mode="after")
    def _conditions(self) -> Self:
        if self.header_value is not None and self.header is None:
            raise ValueError("header_value needs header: name the header it is the value of")
        if self.body_value is not None and self.body_path is None:
            raise ValueError("body_value needs body_path: name the path it is the value at")
        if not (self.status or self.header or self.body_path):
            raise ValueError("a response rule needs at least one of status, header or body_path to match on")
        if self.message is not None and self.action != "fail":
            raise ValueError(f"message only applies to action fail, not {self.action}")
        return self
