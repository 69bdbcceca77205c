"""`probe`: from one URL to a draft manifest entry, reporting as it goes.

The report callback receives names, types, counts and paths only. Record values stay inside this
package: they decide types and PII rules, and are never printed, logged or put in an error.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from shared.config.models import ConnectorModels, Throttle, check_identifier
from shared.errors import ExtractError
from shared.extract.http_client import HttpClient
from shared.probe.detect_pagination import Candidate, FirstPage
from shared.probe.guesses import candidates
from shared.probe.infer_columns import ColumnGuess, infer_columns, primary_key
from shared.probe.naming import identifier, model_name, singular, source_name, unique
from shared.probe.pii_hints import FreeTextPii, PiiHint, column_hint, describe_kinds, typed_for_rule
from shared.probe.target import Target, build_target
from shared.probe.walk import ProbeError, fetch_records, first_page, open_client, walk

Report = Callable[[str], None]


@dataclass(frozen=True)
class ProbeOptions:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    bearer: str | None = None
    api_key: tuple[str, str] | None = None      # (header name, value)
    pages: int = 3
    source: str | None = None
    model: str | None = None
    throttle: Throttle = field(default_factory=Throttle)
    method: str = "GET"
    json_body: dict[str, Any] | None = None


@dataclass(frozen=True)
class ColumnDraft:
    name: str
    type: str
    path: str | None = None
    length: int | None = None
    pii: Any = None
    comment: str | None = None
    columns: tuple[ColumnDraft, ...] | None = None   # type: table: the child table's columns

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.type}
        for key in ("path", "length", "pii"):
            if getattr(self, key) is not None:
                spec[key] = getattr(self, key)
        if self.columns is not None:
            spec["columns"] = {c.name: c.spec() for c in self.columns}
        return spec


@dataclass(frozen=True)
class ProbeResult:
    source: str
    model: str
    target: Target
    records_path: str | None
    pagination: Candidate
    columns: list[ColumnDraft]
    primary_key: str | None
    pii_scan: str | None
    pii_scan_note: str | None
    pages: int
    records: int
    seen: list[dict] = field(default_factory=list, repr=False, compare=False)   # values: never printed

    @property
    def params(self) -> dict[str, Any]:
        """The URL's own filters; the paging parameters now belong to the paginator."""
        if self.target.location == "body":
            return dict(self.target.shown_params)
        return {k: v for k, v in self.target.shown_params.items() if k not in self.pagination.owned_params}

    @property
    def json_body(self) -> dict[str, Any] | None:
        """The body the user gave, less the fields the paginator now writes into it."""
        if self.target.shown_json is None:
            return None
        if self.target.location != "body":
            return dict(self.target.shown_json)
        return {k: v for k, v in self.target.shown_json.items() if k not in self.pagination.owned_params}

    def model_spec(self) -> dict[str, Any]:
        """The model's entry: request, records, key, columns (its pagination is the source's)."""
        model: dict[str, Any] = {"path": self.target.path}
        if self.target.method != "GET":
            model["method"] = self.target.method
        if self.params:
            model["params"] = self.params
        if self.json_body is not None:
            model["json"] = self.json_body
        if self.records_path is not None:
            model["records"] = self.records_path
        if self.primary_key:
            model["primary_key"] = [self.primary_key]
        if self.pii_scan:
            model["pii_scan"] = self.pii_scan
        model["columns"] = {c.name: c.spec() for c in self.columns}
        return model

    def manifest(self) -> dict[str, Any]:
        """The entry as plain data, exactly what `render_yaml` prints (without the comments)."""
        source: dict[str, Any] = {"type": "api", "base_url": self.target.base_url}
        if self.target.shown_auth:
            source["auth"] = dict(self.target.shown_auth)
        if self.target.shown_headers:
            source["headers"] = dict(self.target.shown_headers)
        source["pagination"] = pagination_spec(self.pagination)
        source["models"] = {self.model: self.model_spec()}
        return {"sources": {self.source: source}}


def pagination_spec(candidate: Candidate) -> dict[str, Any]:
    """Every option the probe chose, even a default (`param: cursor` says which one was verified);
    the type first, then its own options, the ones every sending type takes, and the shared totals
    last, so the line reads like the reference tables."""
    options = candidate.config.model_dump(exclude_unset=True, exclude_none=True, exclude={"type"}, by_alias=True)
    shared: dict[str, Any] = {k: options.pop(k) for k in ("in", "has_more_path", "total_pages_path", "total_path")
                              if k in options}
    return {"type": candidate.type, **options, **shared}


def probe_url(options: ProbeOptions, report: Report = lambda line: None) -> ProbeResult:
    """Probe `options.url` and draft its manifest entry. Extraction errors (unreachable, 4xx,
    not JSON, no records) propagate for the CLI to print; `report` gets the progress lines."""
    parts = urlsplit(options.url)
    source = _name(options.source or source_name(parts.hostname or ""), "source name")
    model = _name(options.model or model_name(parts.path), "model name")
    target = build_target(options.url, source, options.params, options.headers, options.bearer, options.api_key,
                          options.method, options.json_body)

    def say(line: str) -> None:
        report(target.redact(line))

    records_path, candidate, pages = _read(target, source, options, say)
    records = [r for page in pages for r in page if isinstance(r, dict)]
    guesses, skipped = infer_columns(records)
    if skipped:
        say(f"probe: skipped keys with a '.' in the name (a column path cannot reach them): {', '.join(skipped)}")
    key = primary_key(guesses, records, model)
    columns, free_text = _columns(guesses, records, key)
    result = ProbeResult(source, model, target, records_path, candidate, columns, key,
                         "redact" if free_text else None, _free_text_note(free_text), len(pages), len(records),
                         records)
    _check(result)
    _report_summary(result, say)
    return result


def _read(target: Target, source: str, options: ProbeOptions, say: Report
          ) -> tuple[str | None, Candidate, list[list]]:
    """The records path, the verified pagination and the pages walked. A secret query value would
    show in the URL of an error message, hence the re-raise with it masked."""
    try:
        with open_client(target, source, options.throttle) as client:
            first = first_page(client, target)
            where = f"at '{first.records_path}'" if first.records_path else "as the body itself"
            say(f"probe: {target.method} {target.url}: {len(first.records)} records {where}")
            return (first.records_path, *_pagination(client, target, first, options.pages, say))
    except ExtractError as exc:
        if target.redact(str(exc)) == str(exc):
            raise
        raise ProbeError(target.redact(str(exc))) from None


def _name(name: str, what: str) -> str:
    try:
        return check_identifier(name, what)
    except ValueError as exc:
        raise ProbeError(str(exc)) from None


def _pagination(client: HttpClient, target: Target, first: FirstPage, max_pages: int,
                report: Report) -> tuple[Candidate, list[list]]:
    """The first candidate that survives a walk with the real paginator."""
    fetch = fetch_records(client, target, first.records_path)
    for candidate in candidates(first, fetch):
        try:
            pages = walk(client, target, first.records_path, candidate, max_pages)
        except ExtractError as exc:
            report(f"probe: {candidate.type} ({candidate.how}) failed verification: {exc}; trying the next guess")
            continue
        if candidate.type == "none":
            report("probe: pagination none: a single page was seen, no paging hint found")
        else:
            report(f"probe: pagination {candidate.type}: {candidate.how}; verified over {len(pages)} "
                   f"page{'s' if len(pages) != 1 else ''}")
        return candidate, pages
    # `none` walks one page: only an API that fails it after answering the first gets here
    raise ProbeError(f"{target.method} {target.url}: not even a single page could be read back")


def _columns(guesses: list[ColumnGuess], records: list[dict], key: str | None, model_key: str | None = None
             ) -> tuple[list[ColumnDraft], list[FreeTextPii]]:
    """A keyed model's lists of objects become child tables, nested ones too; `model_key` is the
    model's key while drafting a child table's columns (whose own `key` is None)."""
    drafts: list[ColumnDraft] = []
    free_text: list[FreeTextPii] = []
    links = model_key or key
    for guess in guesses:
        items = object_list_items(guess, records) if links is not None else None
        if links is not None and items is not None:   # a child table
            child_guesses, _ = infer_columns(items)
            child_columns, child_free_text = _columns(child_guesses, items, None, links)
            free_text += child_free_text
            taken = {c.name for c in child_columns}
            child_columns = [_not_named(c, links, guess.name, taken) for c in child_columns]
            drafts.append(ColumnDraft(guess.name, "table", guess.path, columns=tuple(child_columns),
                                      comment=f"a list of objects: rows of the child table <model>__{guess.name}"))
            continue
        hint = column_hint(guess.name, guess.type, guess.values(records))
        if isinstance(hint, FreeTextPii) and guess.name == key:   # keys are never scanned: hash the key instead
            hint = PiiHint(guess.name, "hash", f"{describe_kinds(hint.kinds)} in {round(hint.share * 100)}% of values")
        if isinstance(hint, FreeTextPii):
            free_text.append(hint)
        if not isinstance(hint, PiiHint):
            drafts.append(ColumnDraft(guess.name, guess.type, guess.path, guess.length, comment=guess.note))
            continue
        rule, reason = hint.rule, f"PII? {hint.reason}"
        if guess.name == key and rule != "hash":
            rule, reason = "hash", f"{reason} (hash, not {_rule_name(hint.rule)}: it is the primary key)"
        elif guess.name == key:
            reason = f"{reason} (keys are never scanned for PII)"
        column_type, length = typed_for_rule(rule, guess.type, guess.length)
        drafts.append(ColumnDraft(guess.name, column_type, guess.path, length, rule, reason))
    return drafts, free_text


def _not_named(column: ColumnDraft, key: str, table: str, taken: set[str]) -> ColumnDraft:
    """A child column renamed when its name is the parent key's, which every child row carries."""
    if column.name != key:
        return column
    return replace(column, name=unique(f"{identifier(singular(table))}_{column.name}", taken),
                   path=column.path or column.name)


def object_list_items(guess: ColumnGuess, records: list[dict]) -> list[dict] | None:
    """The items of a top-level key whose values are lists of objects (some item seen), else None."""
    if len(guess.keys) != 1 or guess.type != "json":
        return None
    present = [v for v in guess.values(records) if v is not None]
    if not present or not all(isinstance(v, list) and all(isinstance(i, dict) for i in v) for v in present):
        return None
    items = [item for value in present for item in value]
    return items or None


def _rule_name(rule: Any) -> str:
    return rule if isinstance(rule, str) else rule["rule"]


def _free_text_note(found: list[FreeTextPii]) -> str | None:
    if not found:
        return None
    parts = [f"{describe_kinds(f.kinds)} in {f.column} ({round(f.share * 100)}% of values)" for f in found]
    return "PII? free text holds " + "; ".join(parts)


def _check(result: ProbeResult) -> None:
    """The draft must load: a probe bug should fail here, not in the user's manifest folder."""
    try:
        ConnectorModels.model_validate(result.manifest())
    except ValidationError as exc:
        raise ProbeError(f"internal error: the drafted manifest does not validate: {exc}") from None


def _report_summary(result: ProbeResult, report: Report) -> None:
    report(f"probe: {result.pages} page{'s' if result.pages != 1 else ''} walked, {result.records} records seen, "
           f"{len(result.columns)} columns; primary key: {result.primary_key or 'none found'}")
    flagged = [f"{c.name} ({_rule_name(c.pii)})" for c in result.columns if c.pii is not None]
    report(f"probe: PII flags: {', '.join(flagged) if flagged else 'none by name or value'}")
    if result.pii_scan_note:
        report(f"probe: pii_scan: redact, {result.pii_scan_note[len('PII? '):]}")
    if any(_rule_name(c.pii) == "hash" for c in result.columns if c.pii is not None):
        report("probe: hash rules need KSPYDER_PII_KEY set when the manifest loads")
    for var in result.target.env_vars:
        report(f"probe: the manifest reads a secret from ${{{var}}}: set {var} in the environment")
