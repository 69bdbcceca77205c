"""Pages in transit between Fetch and Load, and the small codecs the chain's messages need.

A page crosses a process boundary as a blob of JSON Lines, so its values must come back with the
types the loader checks (`target.fit` accepts a datetime only as a datetime, a decimal only as a
Decimal). Rather than inventing a typed JSON dialect, the blob stays plain JSON Lines (readable by
any tool) and the Load side restores types from the model's stored columns: the same column list
the target table was created from, so the two cannot disagree.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from shared.config.models import ColumnType
from shared.config.project import ModelRef, Project
from shared.extract.types import PageRequest
from shared.target.columns import StoredColumn, stored_columns

SUFFIX = ".jsonl"


class ChainError(Exception):
    """A chain step cannot go on (missing raw page, credential in a next link, unknown model).
    Messages name runs, models, pages and columns, never values."""


def raw_blob_name(run_id: str, model: str, index: int) -> str:
    """`<run>/<source>/<model>/<index:06d>.jsonl` in kspyder-raw: deterministic, so a retried
    fetch overwrites its page instead of adding a second copy."""
    source, _, name = model.partition(".")
    return f"{run_id}/{source}/{name}/{index:06d}{SUFFIX}"


START_PREFIX = "starts/"


def start_blob_name(run_id: str, model: str, index: int, digest: str) -> str:
    """`starts/<run>/<source>/<model>/<index:06d>.<digest>.json` in kspyder-raw: where page `index`
    starts (the next request, or a SQL chunk's keyset bound), left there by the page before it.
    Named by its content's digest, so a redelivered page that writes it again writes the same
    blob, and a job can only name the start it was sent with. Beside the raw pages, under their
    retention, but outside the run's own prefix, which holds only pages."""
    source, _, name = model.partition(".")
    return f"{START_PREFIX}{run_id}/{source}/{name}/{index:06d}.{digest}.json"


def encode_start(start: dict) -> tuple[bytes, str]:
    """A start blob's content ({"request": ...} or {"sql_after": ...}) and its digest."""
    content = json.dumps(start, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return content, content_digest(content)


# ---------------------------------------------------------------- raw pages
def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):   # inside a JSON value: see encode_page
        raise TypeError("binary data")
    return str(value)   # Decimal keeps its exact digits as text; anything else as the loader would


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_plain).encode   # built once:
# json.dumps with options builds a new encoder per call (its cost: docs/benchmarks.md)


_DECODE_LINES = msgspec.json.Decoder().decode_lines


# A model's child tables as a page carries them: (column, its table's stored columns, its own children).
PageChildren = tuple[tuple[str, list[StoredColumn], "PageChildren"], ...]


def encode_page(records: list[dict[str, Any]], children: PageChildren = ()) -> bytes:
    """`children`: the child tables whose items the records carry (`page_children`), binary inside."""
    try:
        return "".join([_ENCODE(r) + "\n" for r in records]).encode("utf-8")
    except TypeError:   # binary columns: base64 text, which their restorer decodes on the Load side
        return "".join([_encode_with_binary(r, i, children) + "\n" for i, r in enumerate(records)]).encode("utf-8")


def _binary_as_text(record: dict[str, Any], children: PageChildren) -> dict[str, Any]:
    plain = {k: base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for k, v in record.items()}
    for name, _, nested in children:   # a child table's items are records too
        items = plain.get(name)
        if isinstance(items, list):
            plain[name] = [_binary_as_text(item, nested) if isinstance(item, dict) else item for item in items]
    return plain


def _encode_with_binary(record: dict[str, Any], position: int, children: PageChildren = ()) -> str:
    plain = _binary_as_text(record, children)
    try:
        return _ENCODE(plain)
    except TypeError:   # bytes inside a JSON column: the embedded run's loader refuses it too
        column = next((k for k, v in plain.items() if _refused(v)), "?")
        raise ChainError(f"record #{position}, column '{column}': a JSON value cannot hold binary data") from None


def _refused(value: Any) -> bool:
    try:
        _ENCODE(value)
    except TypeError:
        return True
    return False


def page_columns(project: Project, ref: ModelRef) -> list[StoredColumn]:
    if ref.documents:
        return []   # store: mongo: the document loader restores types at the columns' paths
    return stored_columns(ref.model.columns, ref.model.primary_key, project.settings.pii.redaction)


def _restorer(column: StoredColumn) -> Callable[[Any], Any] | None:
    kind = column.type
    if kind == ColumnType.datetime:
        return datetime.fromisoformat
    if kind == ColumnType.date:
        return date.fromisoformat
    if kind == ColumnType.decimal:
        return Decimal
    if kind == ColumnType.binary:
        return _from_base64
    return None


def _from_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None


def page_children(project: Project, ref: ModelRef) -> PageChildren:
    """The child tables whose items travel in the parent's records (`extract/child_shape.py`)."""
    from shared.config.child_tables import ChildTable, child_tables

    redaction = project.settings.pii.redaction

    def of(children: tuple[ChildTable, ...]) -> PageChildren:
        return tuple((c.column, stored_columns(c.columns, [], redaction), of(c.tables)) for c in children)

    return () if ref.documents else of(child_tables(ref.name, ref.model))


def decode_page(data: bytes, columns: list[StoredColumn], children: PageChildren = ()) -> list[dict[str, Any]]:
    """Records with datetimes, dates, decimals and binary restored, in child tables' items too; a value
    that does not parse is left as text, so the loader reports it (by column and key) as it would any misfit."""
    try:   # all lines in one call (docs/benchmarks.md); the same values, since we wrote them
        records = _DECODE_LINES(data)
    except msgspec.DecodeError:   # what only the standard parser reads (NaN, which `_ENCODE` may write)
        records = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    _restore(records, columns, children)
    return records


def _restore(records: list[dict[str, Any]], columns: list[StoredColumn], children: PageChildren) -> None:
    restorers = [(c.name, f) for c in columns if (f := _restorer(c)) is not None]
    for record in records:
        for name, restore in restorers:
            value = record.get(name)
            if isinstance(value, str):
                try:
                    record[name] = restore(value)
                except (ValueError, InvalidOperation):
                    pass
    for name, child_columns, nested in children:
        _restore([item for record in records for item in record.get(name) or ()], child_columns, nested)


# ---------------------------------------------------------------- SQL keyset bounds
_TAGS: dict[str, Callable[[str], Any]] = {"datetime": datetime.fromisoformat, "date": date.fromisoformat,
                                          "decimal": Decimal}


def encode_key(values: tuple) -> list:
    """A keyset bound as JSON: text and numbers as they are, dates and decimals tagged."""
    out: list = []
    for value in values:
        if isinstance(value, datetime):
            out.append({"datetime": value.isoformat()})
        elif isinstance(value, date):
            out.append({"date": value.isoformat()})
        elif isinstance(value, Decimal):
            out.append({"decimal": str(value)})
        elif value is None or isinstance(value, (str, int, float)):
            out.append(value)
        else:
            raise ChainError(f"a primary key value of type {type(value).__name__} cannot resume a SQL chunk")
    return out


def decode_key(values: list) -> tuple:
    out: list = []
    for value in values:
        if isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in _TAGS or not isinstance(next(iter(value.values())), str):
                raise ValueError("unknown key tag")
            (tag, text), = value.items()
            try:
                out.append(_TAGS[tag](text))
            except InvalidOperation:
                raise ValueError("bad decimal") from None
        elif value is None or isinstance(value, (str, int, float)):
            out.append(value)
        else:
            raise ValueError("bad key value")
    return tuple(out)


# ---------------------------------------------------------------- HTTP requests in messages
def request_to_json(request: PageRequest, hidden: frozenset[str] = frozenset()) -> dict:
    """URL, params and the paging values written into the body (a page number, an offset): headers
    and the manifest's body come from the manifest again on the Fetch side, and `hidden` query
    parameters (an `api_key` that auth adds, and which an API may echo into its next links) are
    removed, so credentials never sit in a queue."""
    url = without_params(request.url, hidden) if hidden else request.url
    data: dict[str, Any] = {"url": url, "params": {k: v for k, v in request.params.items() if k not in hidden}}
    if request.body is not None and request.body.values:
        data["body"] = dict(request.body.values)
    return data


def without_params(url: str, hidden: frozenset[str]) -> str:
    """`url` without the `hidden` query parameters (credentials an API may echo into its links)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(name in hidden for name, _ in query):
        return url
    return urlunsplit(parts._replace(query=urlencode([(n, v) for n, v in query if n not in hidden])))


def request_from_json(data: dict, model_request: PageRequest) -> PageRequest:
    """The request `request_to_json` described, completed from the model's own (`model_request`:
    method, headers and body from the manifest)."""
    request = model_request.copy()
    request.url, request.params = data["url"], dict(data.get("params") or {})
    if data.get("body"):
        request.paging("body").update(data["body"])
    return request


def content_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:16]
