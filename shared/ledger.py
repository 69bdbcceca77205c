"""The run ledger: what each run set out to do and what it did, kept in blob storage beside the
target. `main.py run`/`status` use it on local storage; the queue-chain functions use the same
class on Azure Storage, where page markers written with a conditional create make duplicate
deliveries harmless (a page is counted once however often it is fetched or loaded).

Layout in the `kspyder-runs` container:
    <run_id>/run.json                      what the run is and, once over, how it ended
    <run_id>/pages/<source.model>/<page>.<stage>   one marker per page and stage (fetched, loaded)
    <run_id>/pages/<source.model>/<first>-<last>.<stage>   or one per run of consecutive pages
    <run_id>/models/<source.model>.json    per-model outcome
    <run_id>/heartbeat/<part>.json         until when the run's holder promised to be alive (`beat`)

A run's status is written once, when it ends. A run whose process died stays "running" in
run.json; `shown_status` reads it as "abandoned" once every heartbeat has expired (computed on
read: nothing is written on the dead run's behalf, and a queued run that resumes shows running again).
"""
from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.detect.redact_message import scrub_strings
from shared.storage import BlobStore

CONTAINER = "kspyder-runs"
STAGES = ("fetched", "loaded")


def new_run_id(now: datetime | None = None) -> str:
    """Sortable by time, unique without coordination: 20261124T001500Z-3f9a1c."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken as UTC (the lease table stores them so)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class RunRecord:
    run_id: str
    models: list[str]
    trigger: str
    started_at: str
    status: str = "running"          # running | succeeded | failed (shown: abandoned, `shown_status`)
    ended_at: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


class RunLedger:
    def __init__(self, store: BlobStore):
        self.store = store

    def start(self, run_id: str, models: list[str], trigger: str, alive_until: datetime | None = None) -> RunRecord:
        record = RunRecord(run_id, models, trigger, _now())
        self._write(record)
        if alive_until is not None:
            self.beat(run_id, "process", alive_until)
        return record

    def beat(self, run_id: str, part: str, alive_until: datetime) -> None:
        """The holder of `part` of the run ("process" for an embedded run; a model, or "start", in
        the queue chain) is alive and working until `alive_until` (UTC) at least. Never "run": the
        ledger finds runs by their `run.json`."""
        body = json.dumps({"at": _now(), "alive_until": _utc(alive_until).isoformat(timespec="seconds")})
        self.store.put(CONTAINER, f"{run_id}/heartbeat/{part}.json", body.encode())

    def alive_until(self, run_id: str) -> datetime | None:
        """The latest heartbeat promise of the run; None when it never beat (an older run)."""
        latest = None
        for name in self.store.list(CONTAINER, f"{run_id}/heartbeat/"):
            raw = self.store.get(CONTAINER, name)
            if raw:
                until = datetime.fromisoformat(json.loads(raw)["alive_until"])
                latest = until if latest is None else max(latest, until)
        return latest

    def shown_status(self, record: RunRecord, now: datetime | None = None) -> str:
        """The status to show: "abandoned" for a run still marked running whose every heartbeat
        has expired (its process died, or its queue messages stopped coming)."""
        if record.status != "running":
            return record.status
        until = self.alive_until(record.run_id)
        return "abandoned" if until is not None and until < (now or datetime.now(UTC)) else record.status

    def page(self, run_id: str, model: str, index: int, stage: str, records: int) -> bool:
        """Mark a page's stage; False when it was already marked (a duplicate delivery)."""
        return self._mark(f"{run_id}/pages/{model}/{marker_stem(index)}", stage, records)

    def page_range(self, run_id: str, model: str, first: int, last: int, stage: str, records: int) -> bool:
        """Mark pages `first` to `last` (inclusive) with one marker; False when it was already marked.

        The embedded run marks each load batch's pages at once: one file per page made the markers
        a visible part of a fast run (docs/benchmarks.md). The queue chain marks what one message carried:
        a page, or a block of `chain.pages_per_message` pages. A range of one page is marked as
        that page (`page`)."""
        if first > last:
            raise ValueError(f"page range {first}-{last} is empty")
        if first == last:
            return self.page(run_id, model, first, stage, records)
        return self._mark(f"{run_id}/pages/{model}/{marker_stem(first, last - first + 1)}", stage, records)

    def pages(self, run_id: str, model: str, stage: str) -> int:
        """Pages marked at `stage`, whether marked one by one or in ranges."""
        return self.page_counts(run_id, model)[stage]

    def page_counts(self, run_id: str, model: str, group: int | None = None, group_size: int = 10) -> dict[str, int]:
        """Pages marked per stage, from one listing; `group`: only pages `group * group_size` to the
        group's last (`group_size` a power of ten, so the group is a prefix of the markers' names)."""
        prefix = f"{run_id}/pages/{model}/"
        if group is not None:
            digits = len(str(group_size)) - 1
            if group_size != 10 ** digits:
                raise ValueError(f"group_size must be a power of ten, not {group_size}")
            prefix += f"{group:0{6 - digits}d}"
        return pages_by_stage(self.store.list(CONTAINER, prefix))

    def marked_pages(self, run_id: str, model: str, stage: str) -> set[int]:
        """The pages marked at `stage` (one listing), whether marked one by one or in ranges."""
        found: set[int] = set()
        for name in self.store.list(CONTAINER, f"{run_id}/pages/{model}/"):
            stem, _, marked = name.rsplit("/", 1)[-1].rpartition(".")
            if marked == stage:
                first, _, last = stem.partition("-")
                found.update(range(int(first), int(last or first) + 1))
        return found

    def marker(self, run_id: str, model: str, first: int, stage: str, pages: int = 1) -> dict[str, Any] | None:
        """The marker `page` or `page_range` wrote for `pages` pages from `first`, or None."""
        raw = self.store.get(CONTAINER, f"{run_id}/pages/{model}/{marker_stem(first, pages)}.{stage}")
        if raw is None:
            return None
        try:
            marker: dict[str, Any] = json.loads(raw)   # written as an object
            return marker
        except ValueError:   # caught between a local create and its write: it exists, that is what counts
            return {}

    def marked_from(self, run_id: str, model: str, first: int, stage: str) -> bool:
        """Whether a marker at `stage` starts at page `first` (one page's or a range's)."""
        names = self.store.list(CONTAINER, f"{run_id}/pages/{model}/{first:06d}")
        return any(name.endswith(f".{stage}") for name in names)

    def records(self, run_id: str, model: str, stage: str = "fetched") -> int:
        """Records the model's markers at `stage` count (each written whole before the next step)."""
        total = 0
        for name in self.store.list(CONTAINER, f"{run_id}/pages/{model}/"):
            if name.endswith(f".{stage}"):
                raw = self.store.get(CONTAINER, name)
                total += json.loads(raw).get("records", 0) if raw else 0
        return total

    def finish_model(self, run_id: str, model: str, outcome: dict[str, Any]) -> None:
        outcome = scrub_strings(outcome)   # errors and warnings quote servers and databases: scrubbed
        self.store.put(CONTAINER, f"{run_id}/models/{model}.json", json.dumps(outcome, default=str).encode())

    def model_outcomes(self, run_id: str) -> dict[str, dict[str, Any]]:
        out = {}
        prefix = f"{run_id}/models/"
        for name in self.store.list(CONTAINER, prefix):
            raw = self.store.get(CONTAINER, name)
            if raw is not None:
                out[name[len(prefix):-len(".json")]] = json.loads(raw)
        return out

    def finish(self, run_id: str, status: str, summary: dict[str, Any]) -> RunRecord:
        record = self.get(run_id)
        if record is None:
            raise KeyError(f"run {run_id} is not in the ledger")
        record.status, record.ended_at, record.summary = status, _now(), scrub_strings(summary)
        self._write(record)
        return record

    def get(self, run_id: str) -> RunRecord | None:
        raw = self.store.get(CONTAINER, f"{run_id}/run.json")
        return RunRecord(**json.loads(raw)) if raw else None

    def recent(self, limit: int = 20) -> list[RunRecord]:
        names = [n for n in self.store.list(CONTAINER) if n.endswith("/run.json")]
        runs = [self.get(n.split("/", 1)[0]) for n in sorted(names, reverse=True)[:limit]]
        return [r for r in runs if r is not None]

    def _mark(self, stem: str, stage: str, records: int) -> bool:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, not '{stage}'")
        body = json.dumps({"records": records, "at": _now()}).encode()
        return self.store.create(CONTAINER, f"{stem}.{stage}", body)

    def _write(self, record: RunRecord) -> None:
        self.store.put(CONTAINER, f"{record.run_id}/run.json", json.dumps(asdict(record), default=str).encode())


def marker_stem(first: int, pages: int = 1) -> str:
    """A page marker's name before its stage: "000007" for one page, "000005-000009" for five."""
    return f"{first:06d}" if pages == 1 else f"{first:06d}-{first + pages - 1:06d}"


def pages_by_stage(names: list[str]) -> dict[str, int]:
    """Pages per stage that the page markers `names` stand for (one page, or a range's pages)."""
    counts = dict.fromkeys(STAGES, 0)
    for name in names:
        stem, _, stage = name.rsplit("/", 1)[-1].rpartition(".")
        if stage in counts:
            first, _, last = stem.partition("-")
            counts[stage] += int(last) - int(first) + 1 if last else 1
    return counts
