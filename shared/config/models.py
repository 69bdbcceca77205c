"""The manifest format as typed models: what `connector_models.yml` and `settings.yml` may contain.

Unknown keys are rejected everywhere (`extra="forbid"`): a typo such as `primary_keys` must be an
error, not a silently ignored line. Cross-field rules live in validators so that one pass reports
everything; the loader turns pydantic's errors into file:line messages.
"""
from __future__ import annotations

import re
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from shared.config.auth_types import ClientAuthMethod, OAuth2RefreshToken, SessionAuth
from shared.config.incremental import ApiIncremental, SqlIncremental
from shared.config.request_models import GraphQL, check_request_body
from shared.config.responses import ResponseRule
from shared.config.strict import Strict

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_IDENTIFIER = 63  # PostgreSQL's limit, the strictest of the supported targets
Scalar = str | int | float | bool
ORIGIN = re.compile(r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$", re.I)


def _origin(value: str) -> str:
    if not ORIGIN.match(value):
        raise ValueError(f"allowed origin '{value}' must be scheme://host or scheme://host:port "
                         "(http or https, no path)")
    return value.lower()


Origin = Annotated[str, AfterValidator(_origin)]


def check_identifier(name: str, what: str) -> str:
    if not IDENTIFIER.match(name):
        raise ValueError(f"{what} '{name}' must use only letters, digits and underscores, and not start with a digit")
    if len(name) > MAX_IDENTIFIER:
        raise ValueError(f"{what} '{name}' is longer than {MAX_IDENTIFIER} characters")
    return name


def check_schedule(expression: str | None) -> str | None:
    """A source's `schedule:`: a six-field NCRONTAB expression (UTC), as the Functions timer reads it."""
    if expression is None:
        return None
    from shared.ncrontab import ScheduleError, parse_schedule  # lazy: avoids an import cycle
    try:
        parse_schedule(expression)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None
    return expression


# ---------------------------------------------------------------- pagination
class PaginationBase(Strict):
    max_pages: int | None = Field(None, ge=1, description="Hard cap on pages fetched per model and run.")
    total_path: str | None = Field(None, description="Dotted path to the total number of records, "
                                                     "when the API states it.")
    on_shortfall: Literal["fail", "warn"] = Field(
        "fail", description="When fewer records arrive than the stated total: fail the model, or only warn.")


class NoPagination(PaginationBase):
    type: Literal["none"]


class SentPagination(PaginationBase):
    """A style whose values go back to the API (page, offset, cursor): in the query or the body, and
    which may read the API's own "more pages follow" flag."""

    location: Literal["query", "body"] = Field(
        "query", alias="in", description="Where paging values go: query parameters, or the request body "
                                         "(dotted paths; a graphql model's variables).")
    has_more_path: str | None = Field(None, description="Dotted path to a true/false 'more pages follow' flag.")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PageNumberPagination(SentPagination):
    type: Literal["page_number"]
    param: str = "page"
    start: int = Field(1, ge=0)
    size_param: str | None = None
    size: int | None = Field(None, ge=1)
    size_path: str | None = Field(None, description="Dotted path to the page size the API served, when it says.")
    total_pages_path: str | None = None

    @model_validator(mode="after")
    def _size_needs_param(self) -> Self:
        if self.size_param and self.size is None:
            raise ValueError("size_param is set but size is not: say how many records a page holds")
        return self


class OffsetPagination(SentPagination):
    type: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(100, ge=1)
    limit_path: str | None = Field(None, description="Dotted path to the page size the API served (Jira: maxResults).")
    start: int = Field(0, ge=0)


class CursorPagination(SentPagination):
    type: Literal["cursor"]
    cursor_path: str = Field(description="Dotted path to the next cursor; `data.-1.id` reads the last record's.")
    param: str = "cursor"
    stop_after_empty_page: bool = Field(False, description="An empty page ends the model even with a next cursor.")


class HeaderCursorPagination(SentPagination):
    type: Literal["header_cursor"]
    header: str = Field(min_length=1, description="Response header holding the next cursor (X-Next-Cursor).")
    param: str = "cursor"
    stop_after_empty_page: bool = Field(False, description="An empty page ends the model even with a next cursor.")


class NextLinkPagination(PaginationBase):
    type: Literal["next_link"]
    next_path: str = "next"


class LinkHeaderPagination(PaginationBase):
    type: Literal["link_header"]


Pagination = Annotated[
    NoPagination | PageNumberPagination | OffsetPagination | CursorPagination | HeaderCursorPagination
    | NextLinkPagination | LinkHeaderPagination,
    Field(discriminator="type"),
]
PAGINATION_TYPES = ("none", "page_number", "offset", "cursor", "header_cursor", "next_link", "link_header")


# ---------------------------------------------------------------- auth
class NoAuth(Strict):
    type: Literal["none"]


class BearerAuth(Strict):
    type: Literal["bearer"]
    token: str = Field(min_length=1)


class ApiKeyAuth(Strict):
    type: Literal["api_key"]
    name: str = Field(min_length=1, description="Header or query parameter name, e.g. X-API-Key.")
    value: str = Field(min_length=1)
    location: Literal["header", "query"] = Field("header", alias="in")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BasicAuth(Strict):
    type: Literal["basic"]
    username: str
    password: str


class OAuth2ClientCredentials(Strict):
    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: str
    client_secret: str
    scope: str | None = None
    auth_method: ClientAuthMethod = "client_secret_post"


class AzureAuth(Strict):
    type: Literal["azure"]
    scope: str = "https://management.azure.com/.default"


Auth = Annotated[
    NoAuth | BearerAuth | ApiKeyAuth | BasicAuth | OAuth2ClientCredentials | AzureAuth | OAuth2RefreshToken
    | SessionAuth,
    Field(discriminator="type"),
]
AUTH_TYPES = ("none", "bearer", "api_key", "basic", "oauth2_client_credentials", "azure", "oauth2_refresh_token",
              "session")
SECRET_KEYS = {"token", "value", "password", "client_secret", "url", "key", "pii_key", "mongo_uri", "refresh_token"}


# ---------------------------------------------------------------- throttling
class Throttle(Strict):
    rate: float | None = Field(None, gt=0, description="Requests per second; unset means unlimited.")
    burst: int = Field(1, ge=1)
    concurrency: int = Field(1, ge=1, le=64)
    max_retries: int = Field(5, ge=0, le=50)
    backoff: float = Field(0.5, ge=0)
    max_backoff: float = Field(60.0, gt=0, description="Cap of every wait; a server asking for longer fails the model.")
    timeout: float = Field(30.0, gt=0, description="Seconds for a whole request: connect, headers and body.")
    max_response_mb: float = Field(100.0, gt=0, description="Largest response body accepted, after decompression.")


# ---------------------------------------------------------------- PII
class PiiRule(StrEnum):
    drop = "drop"
    hash = "hash"
    mask = "mask"
    redact = "redact"
    generalize = "generalize"
    none = "none"   # not PII: stated with a `reason`, it lets a PII-sounding column pass the guard


class PiiSpec(Strict):
    rule: PiiRule
    keep: int | None = Field(None, ge=0,
                             description="mask: characters kept at the end; generalize postcode: prefix kept.")
    kind: Literal["date", "postcode"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"rule": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _options_fit_rule(self) -> Self:
        if self.rule == PiiRule.generalize and self.kind is None:
            raise ValueError("generalize needs kind: date or postcode")
        if self.kind is not None and self.rule != PiiRule.generalize:
            raise ValueError(f"kind only applies to generalize, not {self.rule.value}")
        if self.keep is not None and self.rule not in (PiiRule.mask, PiiRule.generalize):
            raise ValueError(f"keep only applies to mask and generalize, not {self.rule.value}")
        return self


PiiScan = Literal["off", "redact", "hash"]


# ---------------------------------------------------------------- columns and models
class ColumnType(StrEnum):
    integer = "integer"
    bigint = "bigint"
    float = "float"
    decimal = "decimal"
    boolean = "boolean"
    string = "string"
    text = "text"
    date = "date"
    datetime = "datetime"
    json = "json"
    binary = "binary"
    table = "table"   # a nested list of the record, loaded as a child table (config/child_tables.py)


# What a binary column's `pii:` may say: the other rules rewrite text, and bytes are not text.
BINARY_RULES = ("drop", "hash", "none")


def _null_spelled_bare(value: Any) -> Any:
    """`on_error: null` as written: YAML reads a bare `null` as nothing, which means the choice `null`."""
    return "null" if value is None else value


def check_timezone(name: str | None) -> str | None:
    """A column's `timezone:`: an IANA zone name (`Europe/Paris`), as the tz database spells it."""
    if name is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone '{name}' is not an IANA time zone name (such as UTC or Europe/Paris)") from None
    return name


RFC2822 = "rfc2822"
_SAMPLE_TIME = datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)


def check_format(pattern: str | None) -> str | None:
    """A column's `format:`: rfc2822, or a strptime pattern that reads back what it writes."""
    if pattern is None or pattern == RFC2822:
        return pattern
    if "%" not in pattern:
        raise ValueError(f"format '{pattern}' has no % directive: give a strptime pattern such as "
                         "'%d/%m/%Y %H:%M', or rfc2822")
    try:
        datetime.strptime(_SAMPLE_TIME.strftime(pattern), pattern)
    except ValueError:
        raise ValueError(f"format '{pattern}' is not a strptime pattern that reads back what it writes "
                         "(https://docs.python.org/3/library/datetime.html#format-codes)") from None
    return pattern


# What a `type: table` column may say; every other option belongs to its child columns.
TABLE_OPTIONS = ("type", "path", "columns", "description")


class Column(Strict):
    type: ColumnType
    path: str | None = Field(None, description="Dotted path into the record (list indexes allowed); "
                                               "default: the column name.")
    length: int | None = Field(None, ge=1, le=65535)
    precision: int | None = Field(None, ge=1, le=38)
    scale: int | None = Field(None, ge=0, le=38)
    pii: PiiSpec | None = None
    pii_fields: dict[str, PiiSpec] | None = Field(
        None, description="json columns: PII rules for nested paths ('*' matches every list item).")
    pii_scan: PiiScan | None = Field(
        None, description="Override the model's pii_scan for this column (text and json only).")
    reason: str | None = Field(None, min_length=1, description="pii: none: why the column holds no personal data.")
    on_error: Annotated[Literal["error", "null"], BeforeValidator(_null_spelled_bare)] = "error"
    timezone: Annotated[str | None, AfterValidator(check_timezone)] = Field(
        None, description="date columns: the zone whose calendar date an aware value takes (default UTC).")
    format: Annotated[str | None, AfterValidator(check_format)] = Field(
        None, description="date and datetime columns: how the text is written, a strptime pattern "
                          "('%d/%m/%Y %H:%M') or rfc2822; ISO 8601 is still read.")
    unit: Literal["s", "ms", "us", "ns"] | None = Field(
        None, description="date and datetime columns: numbers are Unix time in this unit.")
    description: str | None = None
    columns: dict[str, Column] | None = Field(
        None, description="type: table: the child table's columns, read from each item of the list.")

    @model_validator(mode="after")
    def _options_fit_type(self) -> Self:
        if self.type == ColumnType.table:
            return self._fits_table()
        if self.columns is not None:
            raise ValueError(f"columns only applies to type: table columns, not {self.type.value}")
        for option in ("format", "unit"):
            if getattr(self, option) is not None and self.type not in (ColumnType.date, ColumnType.datetime):
                raise ValueError(f"{option} only applies to date and datetime columns, not {self.type.value}")
        if self.timezone is not None and self.type != ColumnType.date:
            raise ValueError(f"timezone only applies to date columns, not {self.type.value}")
        if self.pii is not None and self.pii.rule == PiiRule.none and not self.reason:
            raise ValueError("pii: none needs a reason: say why this column holds no personal data")
        if self.reason is not None and (self.pii is None or self.pii.rule != PiiRule.none):
            raise ValueError("reason only applies to pii: none")
        if self.type == ColumnType.binary and self.pii is not None and self.pii.rule.value not in BINARY_RULES:
            raise ValueError(f"a binary column takes pii rule drop or hash only, not {self.pii.rule.value}")
        if self.pii_scan is not None and self.type not in (ColumnType.string, ColumnType.text, ColumnType.json):
            raise ValueError(f"pii_scan only applies to string, text and json columns, not {self.type.value}")
        if self.pii_scan is not None and self.rule is not None:
            raise ValueError("a column with a pii rule is never scanned: drop pii_scan or the rule")
        if self.length is not None and self.type != ColumnType.string:
            raise ValueError(f"length only applies to string columns, not {self.type.value}")
        if (self.precision is not None or self.scale is not None) and self.type != ColumnType.decimal:
            raise ValueError(f"precision and scale only apply to decimal columns, not {self.type.value}")
        if self.pii_fields is not None and self.type != ColumnType.json:
            raise ValueError(f"pii_fields only applies to json columns, not {self.type.value}")
        dated = (ColumnType.date, ColumnType.datetime, ColumnType.string, ColumnType.text)
        if self.pii and self.pii.kind == "date" and self.type not in dated:
            raise ValueError(f"generalize date does not apply to a {self.type.value} column")
        return self

    def _fits_table(self) -> Self:
        if not self.columns:
            raise ValueError("a type: table column needs columns: the child table's columns")
        given = [name for name in type(self).model_fields
                 if name in self.model_fields_set and name not in TABLE_OPTIONS]
        if given:
            raise ValueError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to a "
                             "type: table column: set them on its child columns")
        return self

    @property
    def rule(self) -> PiiSpec | None:
        """The column's PII rule, None without one; `pii: none` is a statement, not a rule."""
        return None if self.pii is None or self.pii.rule == PiiRule.none else self.pii


Store = Literal["sql", "mongo"]
# How a source's model and column names become target names: as written, or snake_cased
# (`InvoiceLine.UnitPrice` -> `invoice_line.unit_price`, still read as written; see config/naming.py).
Naming = Literal["as_is", "snake_case"]
# The store of the source whose models are being validated: a model's rules depend on it (a document
# model may leave `columns` out), and pydantic validates a source's models inside the source.
_VALIDATING_STORE: ContextVar[str] = ContextVar("kspyder_validating_store", default="sql")


class Index(Strict):
    """A MongoDB index of a `store: mongo` model, created (idempotently) when the model loads."""

    keys: list[str] = Field(description="Field paths; a leading '-' sorts that key descending.")
    unique: bool = False
    name: str | None = Field(None, min_length=1, description="Default: MongoDB's generated name.")

    @field_validator("keys")
    @classmethod
    def _paths(cls, keys: list[str]) -> list[str]:
        if not keys:
            raise ValueError("an index needs at least one key")
        for key in keys:
            path = key[1:] if key.startswith("-") else key
            if not path or "" in path.split(".") or path.startswith("$"):
                raise ValueError(f"index key '{key}' must be a dotted field path (optionally with a leading '-')")
        if len({k.lstrip("-") for k in keys}) != len(keys):
            raise ValueError("an index lists a field twice")
        return keys


def check_write(write: str | None, deletes: str | None, history: str | None, keyed: bool, documents: bool) -> None:
    """The combinations of `write:`, `deletes:` and `history:` that mean something (docs/loading.md)."""
    if documents and (write or deletes or history):
        raise ValueError("write, deletes and history apply to store: sql sources: documents are upserted by _id")
    if write == "merge" and not keyed:
        raise ValueError("write: merge needs a primary_key: rows are matched by it")
    if deletes and not keyed:
        raise ValueError("deletes: soft needs a primary_key: a row missing from a run is found by its key")
    if history and not keyed:
        raise ValueError("history: scd2 needs a primary_key: versions are kept per key")
    if (deletes or history) and write in ("replace", "append"):
        option = "deletes: soft" if deletes else "history: scd2"
        raise ValueError(f"{option} applies to write: merge only, not write: {write}")


class ModelBase(Strict):
    primary_key: list[str] = Field(default_factory=list)
    columns: dict[str, Column]
    pii_scan: PiiScan | None = Field(None, description="Scan free-text values for PII; default from settings.")
    pii_terms: list[str] = Field(default_factory=list,
                                 description="Names or values always treated as PII in this model.")
    description: str | None = None
    indexes: list[Index] = Field(default_factory=list,
                                 description="store: mongo only: indexes of the model's collection.")
    write: Literal["merge", "replace", "append"] | None = Field(
        None, description="merge: upsert by key (default with a primary_key); replace: the run's rows replace "
                          "the table (default without); append: every run's rows are kept.")
    deletes: Literal["soft"] | None = Field(
        None, description="soft: after a complete, full run, rows it did not see get _kspyder_deleted_at.")
    history: Literal["scd2"] | None = Field(
        None, description="scd2: keep every version of a row, with _kspyder_valid_from/_valid_to/_current.")
    # The `type: table` columns, moved out of `columns` once validated: `columns` holds what the
    # model's own table stores, and `tables` the nested lists that become child tables.
    _tables: dict[str, Column] = PrivateAttr(default_factory=dict)

    @property
    def tables(self) -> dict[str, Column]:
        return self._tables

    @model_validator(mode="before")
    @classmethod
    def _documents_may_omit_columns(cls, data: Any) -> Any:
        if _VALIDATING_STORE.get() == "mongo" and isinstance(data, dict) and "columns" not in data:
            return {**data, "columns": {}}
        return data

    @model_validator(mode="after")
    def _key_columns_exist(self) -> Self:
        documents = _VALIDATING_STORE.get() == "mongo"
        self._split_tables()
        if not self.columns and not documents:
            raise ValueError("columns must declare at least one column")
        if documents and not self.primary_key:
            raise ValueError("a store: mongo model needs a primary_key: it becomes the document _id")
        if self.indexes and not documents:
            raise ValueError("indexes only apply to models of a store: mongo source")
        for key in self.primary_key:
            if documents and key not in self.columns:
                continue   # a document field (dotted path) that no column declares
            if key not in self.columns:
                raise ValueError(f"primary_key column '{key}' is not one of the model's columns "
                                 f"({', '.join(self.columns)})")
            rule = self.columns[key].rule
            if rule is not None and rule.rule != PiiRule.hash:
                raise ValueError(f"primary_key column '{key}' has pii rule {rule.rule.value}: "
                                 "only hash keeps keys unique")
        if len(set(self.primary_key)) != len(self.primary_key):
            raise ValueError("primary_key lists a column twice")
        for name in self.columns:
            if name.lower().startswith("_kspyder_"):
                raise ValueError(f"column '{name}': names starting with _kspyder_ are kspyder's own columns")
        check_write(self.write, self.deletes, self.history, bool(self.primary_key), documents)
        return self

    def _split_tables(self) -> None:
        """Move the `type: table` columns to `tables` (the validated dict is this model's own)."""
        tables = {name: column for name, column in self.columns.items() if column.type == ColumnType.table}
        for name in tables:
            if name in self.primary_key:
                raise ValueError(f"primary_key column '{name}' is a type: table column: a key is a single value")
            del self.columns[name]
        if tables and not self.columns:
            raise ValueError("columns must declare at least one column besides its type: table columns")
        self._tables = tables

    @property
    def write_mode(self) -> str:
        """The model's write disposition, with its default: merge with a key, replace without."""
        return self.write or ("merge" if self.primary_key else "replace")


class ApiModel(ModelBase):
    path: str
    params: dict[str, Scalar] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    records: str | None = Field(None, description="Dotted path to the record list; omit when the body is the list.")
    pagination: Pagination | None = None
    responses: list[ResponseRule] = Field(default_factory=list, description="Checked before the source's rules.")
    format: Literal["json", "jsonl", "csv"] | None = Field(
        None, description="Response body format; default: by Content-Type, else json. A gzip file body is "
                          "decompressed whatever the format.")
    method: Literal["GET", "POST", "PUT"] | None = Field(None, description="Default: POST with graphql, else GET.")
    json_body: dict[str, Any] | None = Field(None, alias="json", description="A JSON request body.")
    form: dict[str, Scalar] | None = Field(None, description="A form-encoded request body.")
    graphql: GraphQL | None = None
    idempotent: bool = Field(False, description="POST/PUT: safe to send again after a failure the server "
                                                "may have processed (search and query endpoints).")
    # parent-child models (docs/parent-child.md); cross-model rules in config/parents.py
    parent: str | None = Field(None, description="A model of the same source whose records this one is read for.")
    include_from_parent: list[str] = Field(default_factory=list,
                                           description="Parent columns stored on each row as <parent>_<column>.")
    for_each: list[Scalar] | str | None = Field(None, description="Items (or one comma-separated text) the "
                                                                   "model is read for, as {item}.")
    for_each_column: str | None = Field(None, description="A string column that stores each row's for_each item.")
    on_child_error: Literal["fail", "skip"] = Field("fail", description="A child request that fails: fail the "
                                                                          "model, or skip it with a warning.")
    incremental: ApiIncremental | None = Field(None, description="Load only what changed since the last run.")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    _request_body_fits = model_validator(mode="after")(check_request_body)

    @model_validator(mode="after")
    def _records_of_json(self) -> Self:
        if self.records is not None and self.format in ("jsonl", "csv"):
            raise ValueError(f"records only applies to json bodies: a {self.format} body is the record list")
        return self

    @property
    def http_method(self) -> str:
        return self.method or ("POST" if self.graphql is not None else "GET")

    @model_validator(mode="after")
    def _incremental_fits(self) -> Self:
        check_incremental(self)
        if self.incremental is not None and self.incremental.location == "path" and \
                "{" + str(self.incremental.param) + "}" not in self.path:
            raise ValueError(f"incremental in: path needs {{{self.incremental.param}}} in the model's path")
        if self.incremental is not None and self.incremental.location == "body" and self.http_method == "GET":
            raise ValueError("incremental in: body needs a request body: method POST or PUT, json or graphql")
        return self


def check_incremental(model: ModelBase) -> None:
    """An incremental model upserts by key: a keyless one is replaced per run, so it would keep only
    the records that changed since the last run."""
    if getattr(model, "incremental", None) is None:
        return
    if _VALIDATING_STORE.get() == "mongo":
        raise ValueError("incremental needs store: sql: the cursor is kept in the SQL target with the rows")
    if not model.primary_key:
        raise ValueError("incremental needs a primary_key: a model without one is replaced whole on every run")
    if model.write_mode != "merge" or model.deletes or model.history:
        raise ValueError("incremental applies to write: merge without deletes or history (the cursor commits with "
                         "upserted rows; a staged write's end would have to carry it)")


class SqlModel(ModelBase):
    table: str | None = None
    query: str | None = None
    chunk_size: int = Field(5000, ge=1, le=1_000_000)
    incremental: SqlIncremental | None = Field(None, description="Read only the rows changed since the last run.")

    @model_validator(mode="after")
    def _table_or_query(self) -> Self:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table or query")
        if self.table is not None:
            for part in self.table.split("."):
                check_identifier(part, "table name part")
            if self.table.count(".") > 1:
                raise ValueError(f"table '{self.table}' must be 'table' or 'schema.table'")
        check_incremental(self)
        return self


def _schedule_field(cls: type, expression: str | None) -> str | None:
    """The `schedule` validator both source types share (a base class would reorder their keys)."""
    return check_schedule(expression)


def _validate_with_store(cls: type, data: Any, handler: Any) -> Any:
    """Models are validated knowing their source's `store` (mongo models may leave out columns)."""
    store = data.get("store") if isinstance(data, dict) else None
    token = _VALIDATING_STORE.set(store if store in ("sql", "mongo") else "sql")
    try:
        return handler(data)
    finally:
        _VALIDATING_STORE.reset(token)


class ApiSource(Strict):
    type: Literal["api"]
    base_url: str
    auth: Auth = Field(default_factory=lambda: NoAuth(type="none"))
    headers: dict[str, str] = Field(default_factory=dict)
    throttle: Throttle = Field(default_factory=Throttle)
    pagination: Pagination = Field(default_factory=lambda: NoPagination(type="none"))
    responses: list[ResponseRule] = Field(default_factory=list, description="What answers mean (status, header, body).")
    models: dict[str, ApiModel] = Field(min_length=1)
    description: str | None = None
    schedule: str | None = Field(None, description="NCRONTAB (six fields, UTC): when the timer starts a run of it.")
    allowed_origins: list[Origin] = Field(
        default_factory=list,
        description="Other origins (scheme://host[:port]) trusted with the source's credentials.")
    # Names (lower case) of source and model headers whose value came from ${VAR}: credentials, kept
    # from other origins like `auth:` is. Set by the loader, which alone knows where values came from.
    _secret_headers: frozenset[str] = PrivateAttr(default=frozenset())

    _ncrontab = field_validator("schedule")(_schedule_field)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return url.rstrip("/")

    @property
    def secret_headers(self) -> frozenset[str]:
        return self._secret_headers

    def mark_secret_headers(self, names: set[str]) -> None:
        self._secret_headers = frozenset(name.lower() for name in names)

    store: Store = Field("sql", description="sql: a table per model; mongo: whole records as documents.")
    naming: Naming = Field("as_is", description="snake_case: target table and column names snake_cased.")

    _models_know_store = model_validator(mode="wrap")(_validate_with_store)

    def pagination_for(self, model: ApiModel) -> Pagination:
        return model.pagination or self.pagination

    def responses_for(self, model: ApiModel) -> list[ResponseRule]:
        return [*model.responses, *self.responses]


class SqlSource(Strict):
    type: Literal["sql"]
    url: str = Field(min_length=1, description="Any SQLAlchemy URL.")
    models: dict[str, SqlModel] = Field(min_length=1)
    description: str | None = None
    schedule: str | None = Field(None, description="NCRONTAB (six fields, UTC): when the timer starts a run of it.")

    _ncrontab = field_validator("schedule")(_schedule_field)

    store: Store = Field("sql", description="sql: a table per model; mongo: whole records as documents.")
    naming: Naming = Field("as_is", description="snake_case: target table and column names snake_cased.")

    _models_know_store = model_validator(mode="wrap")(_validate_with_store)


Source = Annotated[ApiSource | SqlSource, Field(discriminator="type")]
SOURCE_TYPES = ("api", "sql")


class ConnectorModels(Strict):
    """The root of connector_models.yml. Source, model and column names become SQL identifiers;
    the loader checks them on the raw YAML so a bad name is reported even when its body has errors."""

    sources: dict[str, Source] = Field(default_factory=dict)
