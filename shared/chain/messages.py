"""The chain's queue messages: typed, versioned, validated on the way in.

Claim-check: a message names things (run, model, page index, blob), it never carries records nor
any value read from a source (a next link, a cursor, a keyset bound: those wait in a blob of the
run, see `PageJob.start`), so a message is small, safe to log and to leave on a poison queue.
Queue messages come from outside the process (anyone with the storage account can write one), so
`decode` checks every field and a `MessageError` names the field and what was expected, never the
value it found.

Every message carries a `token`: a random id of one logical delivery. Steps claim their unit of
work (a page fetch, a page load, the transform event) with a conditional blob create holding the
token, so of two copies of a job the first claimer does the work and the others return at once;
a redelivery of the claimer's own message (same token, after a crash) carries on where it stopped.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeGuard

VERSION = 1
MAX_PARAMS = 100
MAX_URL = 8000             # far under the 48 KiB message limit, with room for the rest
MAX_PAGES = 10             # pages of one job, all in one completion group (`state.GROUP`)

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,35}$")       # blob-name safe, <= the loader's 36
_IDENT = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
_MODEL = re.compile(rf"^{_IDENT}\.{_IDENT}$")
_SOURCE = re.compile(rf"^{_IDENT}$")
_TOKEN = re.compile(r"^[0-9a-f]{8,32}$")
_DIGEST = re.compile(r"^[0-9a-f]{16}$")
_FIELD_NAME = re.compile(r"^[a-z_]{1,40}$")


class MessageError(ValueError):
    """A queue message that is not one of ours, or not valid: names the field, never its value."""


def new_token() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class RunModel:
    """Start one model of a run: plan its pages and fetch the first (queue kspyder-paginate)."""

    run_id: str
    model: str                      # "source.model"
    token: str = field(default_factory=new_token)


@dataclass(frozen=True)
class PageJob:
    """Fetch one page (queue kspyder-fetch).

    `request`: the page's HTTP request without headers or credentials ({"url", "params"}) when it is
    made from the manifest alone (the first page, fanned-out pages); None for SQL.
    `start`: for a page that follows another, the digest of what the previous page left for it in
    kspyder-raw (`pages.start_blob_name`): the paginator's saved state (a next link's or cursor's
    values come from the response, so they never ride in a message; loop detection and `max_pages`
    come with it) or a SQL chunk's keyset bound (the previous chunk's last key, a source value).
    None for the first chunk or page.
    `follow`: this page is part of a sequential chain and its fetch enqueues the next one.
    `attempt`: how often a 429 sent the job back (not the queue's dequeue count).
    `pages`: consecutive pages from `index` that this one job fetches into one blob (settings
    `chain.pages_per_message`, random-access paginations only); the others' requests are derived
    from `request` by the paginator.
    """

    run_id: str
    model: str
    index: int
    request: dict | None = None
    start: str | None = None
    attempt: int = 0
    follow: bool = False
    pages: int = 1
    token: str = field(default_factory=new_token)


@dataclass(frozen=True)
class LoadJob:
    """Load one raw page into the target (queue kspyder-load). `records` is a count; `last`: the
    model's last page (informational: completion is decided from the ledger, not from this flag);
    `pages`: how many consecutive pages from `index` the blob holds (see `PageJob.pages`)."""

    run_id: str
    model: str
    index: int
    blob: str
    records: int
    last: bool = False
    pages: int = 1
    token: str = field(default_factory=new_token)


@dataclass(frozen=True)
class TransformEvent:
    """A run has every page of every model loaded (queue kspyder-transform), sent once per run."""

    run_id: str
    sources: tuple[str, ...]
    models: tuple[str, ...] = ()


Message = RunModel | PageJob | LoadJob | TransformEvent
Kind = type[RunModel] | type[PageJob] | type[LoadJob] | type[TransformEvent]
KINDS: dict[str, Kind] = {cls.__name__: cls for cls in (RunModel, PageJob, LoadJob, TransformEvent)}


def encode(message: Message) -> dict:
    """The JSON object sent on the queue: the fields, plus `kind` and `v`."""
    if type(message) not in KINDS.values():
        raise TypeError(f"not a chain message: {type(message).__name__}")
    body: dict[str, Any] = {"kind": type(message).__name__, "v": VERSION}
    for f in fields(message):
        value = getattr(message, f.name)
        body[f.name] = list(value) if isinstance(value, tuple) else value
    decode(body)   # what we send must pass what we accept
    return body


def decode(body: Any) -> Message:
    if not isinstance(body, dict):
        raise MessageError("message: expected a JSON object")
    kind = body.get("kind")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise MessageError(f"message.kind: expected one of {', '.join(KINDS)}")
    version = body.get("v")
    if not _is_int(version) or version != VERSION:
        raise MessageError(f"{cls.__name__}.v: expected version {VERSION}")
    known = {f.name for f in fields(cls)}
    extra = sorted(k for k in body if k not in known and k not in ("kind", "v"))
    if extra:
        shown = [k for k in extra if isinstance(k, str) and _FIELD_NAME.match(k)]
        raise MessageError(f"{cls.__name__}: unexpected field {shown[0]}" if shown
                           else f"{cls.__name__}: unexpected field")
    values = {}
    for f in fields(cls):
        check = _CHECKS[(cls.__name__, f.name)] if (cls.__name__, f.name) in _CHECKS else _CHECKS[("*", f.name)]
        where = f"{cls.__name__}.{f.name}"
        if f.name not in body:
            if f.name in _OPTIONAL.get(cls.__name__, ()):
                continue
            raise MessageError(f"{where}: missing")
        values[f.name] = check(body[f.name], where)
    message = cls(**values)
    if (isinstance(message, (PageJob, LoadJob)) and message.pages > 1
            and message.index // MAX_PAGES != (message.index + message.pages - 1) // MAX_PAGES):
        raise MessageError(f"{cls.__name__}.pages: expected pages within one completion group "
                           f"(pages {MAX_PAGES}k to {MAX_PAGES}k+{MAX_PAGES - 1})")
    if isinstance(message, PageJob) and message.request is not None and message.start is not None:
        raise MessageError("PageJob.start: expected no start for a job that carries its request")
    if isinstance(message, LoadJob):
        from shared.chain.pages import raw_blob_name  # here: pages imports heavier modules
        if message.blob != raw_blob_name(message.run_id, message.model, message.index):
            raise MessageError("LoadJob.blob: expected the raw blob name of the job's run, model and page")
    return message


# ---------------------------------------------------------------- field checks
def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _pattern(regex: re.Pattern, expected: str) -> Callable[[Any, str], str]:
    def check(value: Any, where: str) -> str:
        if not isinstance(value, str) or not regex.match(value):
            raise MessageError(f"{where}: expected {expected}")
        return value
    return check


def _count(value: Any, where: str) -> int:
    if not _is_int(value):
        raise MessageError(f"{where}: expected an integer")
    if value < 0:
        raise MessageError(f"{where}: expected an integer >= 0")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise MessageError(f"{where}: expected true or false")
    return value


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int, float))


def _request(value: Any, where: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"url", "params", "body"}:
        raise MessageError(f"{where}: expected an object with url and params (and body paging values)")
    url = value.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > MAX_URL:
        raise MessageError(f"{where}.url: expected an http(s) URL of at most {MAX_URL} characters")
    checked = {"url": url, "params": _values(value.get("params", {}), f"{where}.params")}
    if "body" in value:
        checked["body"] = _values(value["body"], f"{where}.body")
    return checked


def _values(value: Any, where: str) -> dict:
    """Query parameters, or the paging values of a body: names to scalars or lists of them."""
    if not isinstance(value, dict) or len(value) > MAX_PARAMS:
        raise MessageError(f"{where}: expected an object of at most {MAX_PARAMS} parameters")
    for item in value.values():
        items = item if isinstance(item, list) else [item]
        if not all(_scalar(i) for i in items):
            raise MessageError(f"{where}: expected text, numbers, booleans or lists of them")
    return dict(value)


def check_start(value: Any) -> dict:
    """What a start blob (`PageJob.start`) holds, checked as a message is: it is read back from
    storage, which anyone with the account can write. {"paginator": ...} or {"sql_after": ...}; the
    paginator checks its own state's values when it resumes from it. An incremental model's adds the
    window its page is in ({"window": n}, alone at a window's first page)."""
    if isinstance(value, dict) and "window" in value:
        window = value["window"]
        if not _is_int(window) or not 0 <= window < 100_000:
            raise MessageError("PageJob.start.window: expected a window number")
        rest = {k: v for k, v in value.items() if k != "window"}
        return {**(check_start(rest) if rest else {}), "window": window}
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in _START_CHECKS:
        raise MessageError("PageJob.start: expected a stored paginator state or keyset bound")
    (name, item), = value.items()
    check = _START_CHECKS[name]
    if item is None:
        raise MessageError(f"PageJob.start.{name}: missing")
    return {name: check(item, f"PageJob.start.{name}")}


def _sql_after(value: Any, where: str) -> list | None:
    if value is None:
        return None
    from shared.chain.pages import decode_key  # validates the tagged non-JSON key values too
    if not isinstance(value, list) or not value:
        raise MessageError(f"{where}: expected a non-empty list of key values")
    try:
        decode_key(value)
    except ValueError:
        raise MessageError(f"{where}: expected key values (text, numbers or tagged dates and decimals)") from None
    return value


def _paginator_state(value: Any, where: str) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str) or len(value) > MAX_PARAMS:
        raise MessageError(f"{where}: expected a paginator state")
    for item in value.values():
        items = item if isinstance(item, list) else [item]
        if len(items) > MAX_PARAMS or not all(_scalar(i) for i in items):
            raise MessageError(f"{where}: expected text, numbers, booleans or lists of them")
    return value


def _walk(value: Any, where: str) -> dict:
    """A child model's walk state or lane scope (`extract/parent_walk.py`): nested, so the walk
    checks every value of it when it takes it up; here only its kind."""
    if not isinstance(value, dict):
        raise MessageError(f"{where}: expected a stored walk")
    return value


_START_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "paginator": _paginator_state, "sql_after": _sql_after, "walk": _walk, "lane": _walk}


def _optional_digest(value: Any, where: str) -> str | None:
    return None if value is None else _pattern(_DIGEST, "a 16-hex-digit digest or null")(value, where)


def _sources(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) and _SOURCE.match(s) for s in value):
        raise MessageError(f"{where}: expected a list of source names")
    return tuple(value)


def _models(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) and _MODEL.match(s) for s in value):
        raise MessageError(f"{where}: expected a list of 'source.model' names")
    return tuple(value)


def _pages(value: Any, where: str) -> int:
    if not _is_int(value) or not 1 <= value <= MAX_PAGES:
        raise MessageError(f"{where}: expected an integer from 1 to {MAX_PAGES}")
    return value


def _blob(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise MessageError(f"{where}: expected a blob name")
    return value


_CHECKS: dict[tuple[str, str], Callable[[Any, str], Any]] = {
    ("*", "run_id"): _pattern(_RUN_ID, "a run id (letters, digits, '_', '.', '-'; at most 36)"),
    ("*", "model"): _pattern(_MODEL, "'source.model'"),
    ("*", "token"): _pattern(_TOKEN, "a hex token"),
    ("*", "index"): _count, ("*", "attempt"): _count, ("*", "records"): _count,
    ("*", "request"): _request, ("*", "start"): _optional_digest,
    ("*", "follow"): _flag, ("*", "last"): _flag,
    ("*", "blob"): _blob, ("*", "sources"): _sources, ("*", "models"): _models, ("*", "pages"): _pages,
}
# Fields with defaults a sender may leave out (older or hand-written messages, `poison replay`).
_OPTIONAL = {
    "PageJob": ("request", "start", "attempt", "follow", "pages"),
    "LoadJob": ("last", "pages"),
    "TransformEvent": ("models",),
}
