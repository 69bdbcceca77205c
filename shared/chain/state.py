"""The chain's own run state, beside the run ledger in `kspyder-runs` (same store, same run folder).

The ledger records what happened to each page; this adds what the chain needs to coordinate
function instances that share nothing but storage:

    <run>/plan/<source.model>.json                 how many pages the model has, once known
    <run>/claims/<source.model>/<page>.<step>       who does a page's fetch or load (a message token)
    <run>/claims/<source.model>/finish              who runs a keyless model's end-of-run cleanup
    <run>/errors/<source.model>/<page>.<step>.json  the last failure of a step not yet redone
    <run>/groups/<source.model>/<group>.loaded      every page of a group of GROUP pages is loaded
    <run>/transform.emitted                         who sends the run's transform event (or, once a model
                                                    failed its stated total, that no one will)
    <run>/transform.sent                            it was sent

Every decision is a conditional create (`BlobStore.create`): of two racing instances exactly one
wins, on a local folder as on Azure Storage. The ledger's page markers are read through `RunLedger`,
which alone knows their layout.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from shared.chain.names import RUNS
from shared.config.models import ApiModel, ApiSource
from shared.config.project import ModelRef
from shared.extract.reconcile import ShortfallError, reconcile
from shared.ledger import RunLedger
from shared.storage import BlobStore

Claim = Literal["new", "mine", "other"]
MAX_ERROR = 300
GROUP = 10   # pages per completion group: pages 10g..10g+9 share the first 5 digits of `<page:06d>`


@dataclass(frozen=True)
class Plan:
    """`pages` is final once `final` is set: at the first page for random-access pagination with a
    stated total, at the last page for sequential ones. Until then the count is unknown."""

    mode: str                       # "parallel", "sequential", "stream" (keyless SQL, one invocation) or
    #                                 "walk" (a child model: one page per parent record)
    pages: int | None = None
    final: bool = False
    stated_total: int | None = None
    warnings: list[str] = field(default_factory=list)
    truncated_by: str | None = None   # "max_pages": the run stopped early on purpose, no total to compare


class RunState:
    def __init__(self, store: BlobStore, clock: Callable[[], float]):
        self.store, self.clock = store, clock
        self.ledger = RunLedger(store)

    def _now(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="seconds")

    # ------------------------------------------------------------ plan
    def plan(self, run_id: str, model: str) -> Plan | None:
        raw = self.store.get(RUNS, f"{run_id}/plan/{model}.json")
        return Plan(**json.loads(raw)) if raw else None

    def set_plan(self, run_id: str, model: str, plan: Plan) -> None:
        self.store.put(RUNS, f"{run_id}/plan/{model}.json", json.dumps(asdict(plan)).encode())

    # ------------------------------------------------------------ a child model's lanes
    def set_lane_warnings(self, run_id: str, model: str, index: int, warnings: list[str]) -> None:
        """A child's warnings (skipped, cut by max_pages), kept by its page: lanes end in any order."""
        self.store.put(RUNS, f"{run_id}/lanes/{model}/{index:06d}.json", json.dumps(warnings).encode())

    def warnings(self, run_id: str, model: str, plan: Plan) -> list[str]:
        """The plan's warnings, then (a child model's) its lanes' in page order."""
        if plan.mode != "walk":
            return plan.warnings
        found = list(plan.warnings)
        for name in sorted(self.store.list(RUNS, f"{run_id}/lanes/{model}/")):
            raw = self.store.get(RUNS, name)
            found += json.loads(raw) if raw else []
        return found

    # ------------------------------------------------------------ the stated total
    def reconciled(self, run_id: str, ref: ModelRef, plan: Plan, token: str) -> Plan | None:
        """At a model's end, its records against the total the API stated, by the embedded run's
        rule (`extract.reconcile`): the plan with the warning added (and stored, for the status),
        or None when the model fails it. A failed model's outcome carries the error, the run is
        failed, and its completion is claimed with `token` so that no later load completes it as
        succeeded or sends its transform event. Nothing is replaced: the caller skips the model's
        finish (a keyless model keeps its earlier rows)."""
        if plan.stated_total is None:
            return plan
        model = ref.qualified
        source, source_model = ref.source, ref.model
        on_shortfall = (source.pagination_for(source_model).on_shortfall
                        if isinstance(source, ApiSource) and isinstance(source_model, ApiModel) else "fail")
        try:
            warning = reconcile(model, plan.stated_total, self.records(run_id, model), on_shortfall=on_shortfall,
                                truncated_by=plan.truncated_by)
        except ShortfallError as exc:
            ledger = self.ledger
            outcome = {"model": model, "pages": plan.pages, "mode": plan.mode, "warnings": plan.warnings,
                       "error": str(exc)}
            ledger.finish_model(run_id, model, outcome)
            self.claim(run_id, "transform.emitted", token)
            ledger.finish(run_id, "failed", {"run_id": run_id, "ok": False, "mode": "queue",
                                             "models": list(ledger.model_outcomes(run_id).values())})
            return None
        if warning is None or warning in plan.warnings:
            return plan
        plan = replace(plan, warnings=[*plan.warnings, warning])
        self.set_plan(run_id, model, plan)
        return plan

    def records(self, run_id: str, model: str) -> int:
        """Records the model's pages held, from their `fetched` markers (each written whole before its
        page went to Load, so every one is readable once the model's pages are loaded)."""
        return self.ledger.records(run_id, model, "fetched")

    # ------------------------------------------------------------ claims
    def claim(self, run_id: str, name: str, token: str) -> Claim:
        """`new`: this call took it; `mine`: an earlier delivery of the same message did (carry on,
        the work may be half done); `other`: another message owns it (do nothing)."""
        blob = f"{run_id}/{name}"
        if self.store.create(RUNS, blob, token.encode()):
            return "new"
        holder = self.store.get(RUNS, blob)
        return "mine" if holder is not None and holder.decode() == token else "other"

    def claim_page(self, run_id: str, model: str, index: int, step: str, token: str) -> Claim:
        return self.claim(run_id, f"claims/{model}/{index:06d}.{step}", token)

    def flag(self, run_id: str, name: str) -> bool:
        return self.store.get(RUNS, f"{run_id}/{name}") is not None

    def set_flag(self, run_id: str, name: str) -> None:
        self.store.put(RUNS, f"{run_id}/{name}", self._now().encode())

    def _marked(self, run_id: str, model: str, index: int, stage: str) -> bool:
        """Whether the job starting at page `index` has its marker, one page's or a range's."""
        return self.ledger.marked_from(run_id, model, index, stage)

    # ------------------------------------------------------------ the ledger's page markers
    def marker(self, run_id: str, model: str, index: int, stage: str, pages: int = 1) -> dict | None:
        """The marker of the job of `pages` pages from `index` (`RunLedger.page` or `page_range`)."""
        return self.ledger.marker(run_id, model, index, stage, pages)

    def counts(self, run_id: str, model: str) -> dict[str, int]:
        """Pages fetched and loaded, from one listing."""
        return self.ledger.page_counts(run_id, model)

    # ------------------------------------------------------------ completion groups
    def group_counts(self, run_id: str, model: str, group: int) -> tuple[int, int]:
        """Fetched and loaded pages of one group of GROUP, from one listing of at most 2 x GROUP markers: a
        load looks at its own group, not at every page of the model (listing is paid per name:
        docs/benchmarks.md), so a load costs the same at page 10 as at page 10,000; the list of
        complete groups is read once per group. A job's pages never span two groups (`PageJob.pages`)."""
        counts = self.ledger.page_counts(run_id, model, group, GROUP)
        return counts["fetched"], counts["loaded"]

    def mark_group_loaded(self, run_id: str, model: str, group: int) -> None:
        self.store.create(RUNS, f"{run_id}/groups/{model}/{group:05d}.loaded", b"")   # a duplicate is fine

    def groups_loaded(self, run_id: str, model: str) -> int:
        return len(self.store.list(RUNS, f"{run_id}/groups/{model}/"))

    # ------------------------------------------------------------ errors
    def record_error(self, run_id: str, model: str, index: int, step: str, message: str, *,
                     dequeue_count: int, poisoned: bool) -> None:
        body = {"model": model, "index": index, "step": step, "message": message[:MAX_ERROR],
                "dequeue_count": dequeue_count, "poisoned": poisoned, "at": self._now()}
        self.store.put(RUNS, f"{run_id}/errors/{model}/{index:06d}.{step}.json", json.dumps(body).encode())

    def clear_error(self, run_id: str, model: str, index: int, step: str) -> None:
        self.store.delete(RUNS, f"{run_id}/errors/{model}/{index:06d}.{step}.json")

    def errors(self, run_id: str) -> list[dict[str, Any]]:
        """Failures not redone since: an error whose step has since succeeded (its page marker
        exists) is history, not an error. Deciding this here, when a status is asked for, spares
        every successful step a delete: a redelivery clears its own error, but a replayed poison
        message (a first delivery again) may not know there is one."""
        found = []
        for name in self.store.list(RUNS, f"{run_id}/errors/"):
            raw = self.store.get(RUNS, name)
            if raw is None:
                continue
            error = json.loads(raw)
            if error.get("step") == "finish":   # history once the model's swap is done
                if not self.flag(run_id, f"swapped/{error['model']}"):
                    found.append(error)
                continue
            stage = "loaded" if error.get("step") == "load" else "fetched"
            if not self._marked(run_id, error["model"], error["index"], stage):
                found.append(error)
        return found
