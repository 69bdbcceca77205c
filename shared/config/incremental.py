"""A model's `incremental:` block: which field or column is the cursor, how it is sent, and how far
back to look. Validated here so that a run never starts with a cursor it cannot compare or send."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from shared.config.strict import Strict

# ISO 8601 durations of a fixed length: weeks, days, hours, minutes, seconds (P1M has no fixed length)
_DURATION = re.compile(r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
                       r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


def parse_duration(text: str) -> timedelta:
    """`PT1H`, `P30D`, `P1DT12H`, `PT0.5S`; ValueError for anything else (years and months vary in length)."""
    found = _DURATION.match(text) if isinstance(text, str) else None
    if found is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"'{text}' is not an ISO 8601 duration of weeks, days, hours, minutes or seconds "
                         "(such as PT1H, P30D or P1DT12H)")
    parts = {k: float(v) for k, v in found.groupdict().items() if v is not None}
    return timedelta(weeks=parts.get("w", 0), days=parts.get("d", 0), hours=parts.get("h", 0),
                     minutes=parts.get("m", 0), seconds=parts.get("s", 0))


def _duration(text: str | None) -> str | None:
    if text is not None:
        parse_duration(text)
    return text


def _lag(value: str | int | float | None) -> str | int | float | None:
    """A lag is a duration (datetime cursors) or a non-negative number (numeric cursors)."""
    if isinstance(value, str):
        parse_duration(value)
    elif value is not None and value < 0:
        raise ValueError("lag must not be negative")
    return value


def _is_datetime(value: CursorValue | None) -> bool:
    """An ISO 8601 datetime or date (`2024-01-01T00:00:00Z`, `2024-01-01`): what a window can start at."""
    if not isinstance(value, str) or value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        return False
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


Duration = Annotated[str, AfterValidator(_duration)]
Lag = Annotated[str | int | float | None, AfterValidator(_lag)]
CursorValue = str | int | float


class ApiIncremental(Strict):
    """An API model's cursor: the highest `cursor_path` value loaded, less `lag`, is sent as `param`."""

    cursor_path: str = Field(min_length=1, description="Dotted path to the cursor field of a record.")
    param: str | None = Field(None, min_length=1, description="Request parameter taking the cursor (on: server).")
    location: Literal["query", "path", "body"] = Field(
        "query", alias="in", description="query: a query parameter; path: `{param}` in the model's path; "
                                         "body: a dotted path of the JSON body (a graphql model's variables).")
    initial_value: CursorValue | None = Field(None, description="Where the first run starts.")
    lag: Lag = Field(None, description="Looked back from the cursor, for late writes (PT1H; a number for numbers).")
    end_param: str | None = Field(None, min_length=1, description="Request parameter taking the window's end.")
    end_value: CursorValue | None = Field(None, description="The last window's end (default: now).")
    window: Duration | None = Field(None, description="Walk the range in windows of this length (P30D).")
    on: Literal["server", "client"] = Field(
        "server", description="server: the API filters by `param`; client: older records are dropped here.")
    sorted: Literal["asc", "desc"] | None = Field(None, description="The API returns records in cursor order.")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _bare_on(cls, data: Any) -> Any:
        """YAML 1.1 reads a bare `on:` key as the boolean true (as GitHub Actions workflows know), which
        the manifest reader keeps as the text 'True'."""
        if isinstance(data, dict) and "True" in data and "on" not in data:
            data = {("on" if key == "True" else key): value for key, value in data.items()}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.on == "server" and self.param is None:
            raise ValueError("on: server needs param: the request parameter the API filters by "
                             "(or on: client when the API cannot filter)")
        if self.window is not None and self.end_param is None:
            raise ValueError("window needs end_param: the request parameter that ends each window")
        if self.window is not None and not _is_datetime(self.initial_value):
            raise ValueError("window needs initial_value: the datetime where the first window starts")
        if self.end_value is not None and self.end_param is None:
            raise ValueError("end_value needs end_param: the request parameter that takes it")
        if self.location == "path" and self.initial_value is None:
            raise ValueError("in: path needs initial_value: the path of the first run needs a value")
        if self.on == "client" and (self.end_param is not None or self.location != "query"):
            raise ValueError("on: client sends nothing to the API: drop end_param and in:")
        return self


class SqlIncremental(Strict):
    """A SQL model's cursor column: rows where it is above the last value loaded, less `lag`."""

    column: str = Field(min_length=1, description="Source column of the cursor (a timestamp or a number).")
    lag: Lag = Field(None, description="Looked back from the cursor, for late commits (PT5M; a number for numbers).")
    initial_value: CursorValue | None = Field(None, description="Where the first run starts (default: every row).")
