"""The Fetch step of a child model (`parent:` or `for_each:`): one step of its parents' walk per job,
one page per parent record.

The job of page n takes the walk to the next parent page with records (`WalkStep.next_scopes`),
reads the first record's child itself into page n, and sends each other record's child as the
Fetch job of page n+k (its scope, the parent values it needs, sealed in a start blob: no value
read from the source rides in a message), spread at the source's rate; the walk's state goes on in
the job of page n+R, sealed the same way. Pages are numbered in the walk's order, so completion is
the chain's usual count: the job that finds the walk over states the final number of pages. A
child's warnings (skipped, cut by `max_pages`) wait beside its page (`RunState.set_lane_warnings`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from shared.chain.cursors import ChainCursors, is_incremental
from shared.chain.messages import PageJob
from shared.chain.names import FETCH
from shared.chain.page_fetchers import ApiPages
from shared.chain.pages import ChainError, without_params
from shared.chain.state import Plan
from shared.config.project import ModelRef
from shared.errors import RateLimited
from shared.extract.page_step import StepPage
from shared.extract.parent_walk import Lane, WalkPosition, WalkStep, paginator_states

if TYPE_CHECKING:
    from shared.chain.fetching import Fetcher


class WalkFetch:
    """One Fetch job of a child model: a step of the walk (`follow`, or page 0), or one lane."""

    def __init__(self, fetcher: Fetcher, ref: ModelRef, job: PageJob, pages: ApiPages, walk: WalkStep):
        self.fetcher, self.chain, self.ref, self.job, self.pages, self.walk = (
            fetcher, fetcher.chain, ref, job, pages, walk)
        self.where = f"{job.model}: the start of page {job.index} of run {job.run_id}"

    def fetch(self) -> None:
        job = self.job
        if is_incremental(self.ref):   # each parent's cursor, as the run started (sealed, never in a message)
            extractor = self.pages.extractor
            extractor.committed_partitions, now = ChainCursors(self.chain).start_partitions(job.run_id, self.ref)
            self.walk.cursors = extractor.parent_cursors(self.walk, now)
        if job.start is None:
            if job.index != 0:
                raise ChainError(f"{job.model}: the job for page {job.index} has no start")
            self._walk(self.walk.start())
        elif job.follow:
            try:
                at = self.walk.resume(self.fetcher._start(job, "walk"))
            except ValueError:
                raise ChainError(f"{self.where} is not a walk this model can take up") from None
            self._walk(at)
        else:
            try:
                scope = self.walk.checked_scope(self.fetcher._start(job, "lane"))
            except ValueError:
                raise ChainError(f"{self.where} is not a parent this model can take up") from None
            try:
                lane = self.walk.lane(scope)
            except RateLimited as exc:
                self.fetcher._reschedule(job, exc.delay)
                return
            self._page(lane, last=False)

    def _walk(self, at: WalkPosition) -> None:
        job, state = self.job, self.fetcher.state
        try:
            scopes = self.walk.next_scopes(at)
            lane = self.walk.lane(scopes[0]) if scopes else None
        except RateLimited as exc:
            self.fetcher._reschedule(job, exc.delay)   # the walk's step again, from the same state
            return
        following = job.index + max(len(scopes), 1)
        if at.done:
            state.set_plan(job.run_id, job.model, Plan("walk", following, True, None, list(at.skipped)))
        elif job.index == 0:
            state.set_plan(job.run_id, job.model, Plan("walk", None, False))
        interval = self.chain.page_interval(job.run_id, self.ref)
        for k, scope in enumerate(scopes[1:], start=1):
            lane_start = scope.to_json()
            self.fetcher._check_no_secret(job, lane_start)
            start = self.fetcher._leave_start(job, {"lane": lane_start}, job.index + k)
            self.chain.send(FETCH, PageJob(job.run_id, job.model, job.index + k, start=start),
                            min(k * interval, _max_delay()))
        walk_state = at.state()
        if walk_state is not None:
            for saved in paginator_states(walk_state) if self.pages.hidden else []:
                if isinstance(saved.get("next_url"), str):
                    saved["next_url"] = without_params(saved["next_url"], self.pages.hidden)
            self.fetcher._check_no_secret(job, walk_state)
            start = self.fetcher._leave_start(job, {"walk": walk_state}, following)
            self.chain.send(FETCH, PageJob(job.run_id, job.model, following, start=start, follow=True))
        self._page(lane, last=at.done and len(scopes) <= 1)

    def _page(self, lane: Lane | None, last: bool) -> None:
        """Page `job.index`: the lane's records shaped and stripped (none when the walk found no parent)."""
        job = self.job
        records = self.pages.shape(StepPage(lane.records, lane.url)) if lane is not None else []
        if lane is not None and lane.warnings:
            self.fetcher.state.set_lane_warnings(job.run_id, job.model, job.index, lane.warnings)
        if lane is not None and lane.checkpoint is not None:   # before Load can see the page
            ChainCursors(self.chain).leave_partition(job.run_id, job.model, job.index, lane.checkpoint)
        self.fetcher._put(job, job.index, records)
        self.fetcher._fetched(self.ref, job, job.index, len(records), last)


def _max_delay() -> float:
    from shared.chain.fetching import MAX_DELAY  # fetching imports this module
    return MAX_DELAY
