"""Response bodies other than one JSON document: JSON Lines, CSV with a header row, and bodies that
are a gzip file (an export served as `application/gzip`, not `Content-Encoding: gzip`, which the HTTP
client already undoes). The model's `format:` decides; without one, the Content-Type does."""
from __future__ import annotations

import csv
import io
import json
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from shared.errors import FetchError
from shared.extract.limits import MB, ResponseTooLarge
from shared.extract.types import PageResponse

GZIP_MAGIC = b"\x1f\x8b"
FORMATS = ("json", "jsonl", "csv")
_BY_CONTENT_TYPE = {"application/x-ndjson": "jsonl", "application/jsonl": "jsonl", "application/json-lines": "jsonl",
                    "application/x-jsonlines": "jsonl", "text/csv": "csv", "application/csv": "csv"}
# msgspec first (faster on record pages: docs/benchmarks.md; equal in what it returns: integers of any
# size stay exact, the last of duplicate keys wins), `json.loads` for what it refuses.
_decode_json_fast = msgspec.json.Decoder().decode


def decode_json(raw: bytes, url: str, status: int, method: str = "GET") -> Any:
    """One JSON document; every body the standard parser reads is read."""
    try:
        try:
            return _decode_json_fast(raw)
        except msgspec.DecodeError:
            pass   # UTF-16/32, a BOM, NaN, lone surrogates: the standard parser may accept them
        try:
            return json.loads(raw)   # bytes: UTF-8/16/32 detected as RFC 8259 allows
        except ValueError:   # JSONDecodeError, and UnicodeDecodeError for binary bodies
            raise FetchError(url, status, "response is not valid JSON", method=method) from None
    except RecursionError:
        raise FetchError(url, status, "response nests arrays or objects too deeply to read "
                         "(about a thousand levels)", method=method) from None


def gunzip(raw: bytes, max_mb: float, url: str, status: int, method: str = "GET") -> bytes:
    """A gzip body, decompressed no further than the response size cap (a gzip bomb stops there)."""
    limit = int(max_mb * MB)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise FetchError(url, status, "response is not a valid gzip file", method=method) from None
    if len(out) > limit:
        raise ResponseTooLarge(f"response from {url} is larger than throttle.max_response_mb "
                               f"({max_mb:g} MB) once decompressed")
    return out


def _jsonl(raw: bytes, url: str, status: int, method: str) -> list[Any]:
    records = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if line.strip():
            try:
                records.append(decode_json(line, url, status, method))
            except FetchError:
                raise FetchError(url, status, f"line {number} of the JSON Lines body is not valid JSON",
                                 method=method) from None
    return records


def _csv(raw: bytes, url: str, status: int, method: str) -> list[dict[str, Any]]:
    """Rows by header name; an empty field is a missing value (CSV has no null)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FetchError(url, status, "CSV body is not UTF-8 text", method=method) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return []
        rows = []
        for line, values in enumerate(reader, start=2):
            if not values:
                continue
            if len(values) != len(header):
                raise FetchError(url, status, f"CSV row {line} has {len(values)} fields, the header {len(header)}",
                                 method=method)
            rows.append({name: (value if value != "" else None) for name, value in zip(header, values, strict=True)})
        return rows
    except csv.Error:
        raise FetchError(url, status, "response is not valid CSV", method=method) from None


_DECODERS: dict[str, Callable[[bytes, str, int, str], Any]] = {"json": decode_json, "jsonl": _jsonl, "csv": _csv}


def body_format(declared: str | None, headers: Mapping[str, str]) -> str:
    """The model's `format:`, else the one its Content-Type names, else JSON."""
    if declared is not None:
        return declared
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    return _BY_CONTENT_TYPE.get(content_type, "json")


def decoded(response: PageResponse, declared: str | None, max_mb: float, method: str = "GET") -> PageResponse:
    """`response` with its body decoded by the model's format; the same object for plain JSON."""
    fmt = body_format(declared, response.headers)
    gzipped = response.content[:2] == GZIP_MAGIC
    if fmt == "json" and not gzipped:
        return response
    raw = gunzip(response.content, max_mb, response.url, response.status, method) if gzipped else response.content
    body = _DECODERS[fmt](raw, response.url, response.status, method)
    return PageResponse(response.url, response.status, response.headers, body=body, content=response.content,
                        elapsed=response.elapsed)
