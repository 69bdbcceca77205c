"""The Fetch step: one page from the source to a raw blob, then the hand-offs that follow from it.

Order matters for at-least-once delivery. A page's work is: decide what comes next (the plan, the
fan-out or the next page's job: other instances start on those at once), shape and strip the page
and write its blob, mark it `fetched` in the ledger, hand it to Load. Each part is idempotent (a
repeated next-page job is swallowed by that page's claim), and the `fetched` marker is written only
after everything before it, so a redelivery of the owner's own message that finds the marker only
repeats the hand-off (whose duplicate the Load step's claim swallows).
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from shared.chain.cursors import ChainCursors, is_incremental
from shared.chain.messages import LoadJob, MessageError, PageJob, check_start
from shared.chain.names import FETCH, LOAD, RAW
from shared.chain.once import send_once
from shared.chain.page_fetchers import ApiPages, SqlPages
from shared.chain.pages import (
    ChainError,
    content_digest,
    decode_key,
    encode_key,
    encode_page,
    encode_start,
    page_children,
    raw_blob_name,
    request_from_json,
    request_to_json,
    start_blob_name,
    without_params,
)
from shared.chain.sealed import SealError, seal, unseal
from shared.chain.state import Plan
from shared.chain.walking import WalkFetch
from shared.config.incremental import ApiIncremental
from shared.config.project import ModelRef
from shared.errors import RateLimited
from shared.extract.incremental import ApiWalk
from shared.extract.page_step import Position, StepPage
from shared.extract.paginators import Paginator
from shared.extract.types import PageRequest
from shared.storage.queues import MAX_SECONDS

if TYPE_CHECKING:
    from shared.chain.steps import Chain

log = logging.getLogger("kspyder.chain")
MAX_RATE_LIMITED = 100        # 429s one page may meet before its job fails (and, retried, goes to poison)
MAX_DELAY = MAX_SECONDS - 60  # the queue's longest visibility delay, with a margin


class Fetcher:
    """The Fetch step of one invocation; `chain` supplies storage, queues and the project."""

    def __init__(self, chain: Chain):
        self.chain, self.state, self.ledger = chain, chain.state, chain.ledger

    def fetch(self, job: PageJob) -> None:
        claim = self.state.claim_page(job.run_id, job.model, job.index, "fetch", job.token)
        if claim == "other":
            log.info("%s page %d of run %s: another message owns it, skipped", job.model, job.index, job.run_id)
            return
        ref = self.chain.ref(job.model)
        if job.pages > 1 and ref.source.type != "api":
            raise ChainError(f"{job.model}: a SQL source's job fetches one chunk, not {job.pages} pages")
        streamed = ref.source.type == "sql" and not ref.model.primary_key
        if claim == "mine" and not streamed:
            marker = self.state.marker(job.run_id, job.model, job.index, "fetched", job.pages)
            if marker is not None:   # an earlier delivery did it all, maybe short of the hand-off
                plan = self.state.plan(job.run_id, job.model)
                last = plan is not None and plan.final and plan.pages == job.index + job.pages
                self._send_load(job, job.index, marker.get("records", 0), last)
                return
        if ref.source.type == "api":
            self._api(ref, job)
        elif streamed:
            self._sql_stream(ref, job)
        else:
            self._sql_chunk(ref, job)

    # ------------------------------------------------------------ API
    def _api(self, ref: ModelRef, job: PageJob) -> None:
        if job.request is None and job.start is None and job.index != 0:
            raise ChainError(f"{job.model}: the job for page {job.index} has no request")
        with ApiPages(self.chain.project, ref, self.chain.client_factory) as pages:
            if pages.walk is not None:   # a child model: its parents' walk, one lane per page (walking.py)
                WalkFetch(self, ref, job, pages, pages.walk).fetch()
                return
            if is_incremental(ref):
                self._api_incremental(ref, job, pages)
                return
            at = self._position(job, pages)
            request = at.request
            send_once(self.state, job, request)
            try:
                page = pages.fetch(at)
                block = self._block(job, pages, request, at, page) if job.pages > 1 else [page]
            except RateLimited as exc:
                self._reschedule(job, exc.delay)   # the whole block again: its blob is written once, whole
                return
            if job.pages > 1:
                records = [record for fetched in block for record in pages.shape(fetched)]
                self._put(job, job.index, records)
                self._fetched(job, job.index, len(records), last=at.done)
                return
            # the pages that follow go to other instances first, so that they are fetched while
            # this one shapes, strips and writes its page: a sequential source's pages are then
            # one HTTP round trip apart, not one whole Fetch apart
            paginator = at.paginator
            if (job.index == 0 and request is not None and not at.done and paginator.random_access
                    and paginator.total_pages is not None):
                last = self._fan_out(ref, job, pages, request, paginator)
            else:
                last = self._sequential(job, pages, at)
            records = pages.shape(page)
            self._put(job, job.index, records)
            self._fetched(job, job.index, len(records), last)

    def _api_incremental(self, ref: ModelRef, job: PageJob, pages: ApiPages) -> None:
        """A page of an incremental model: the walk of the run's windows from the cursor it started
        from, one page after another (a fanned-out job would carry the cursor in its request)."""
        if job.request is not None:
            raise ChainError(f"{job.model}: an incremental model's page {job.index} cannot come with its request")
        committed, now = ChainCursors(self.chain).start(job.run_id, ref)
        spec = getattr(ref.model, "incremental", None)
        if not isinstance(spec, ApiIncremental):
            raise ChainError(f"{job.model}: not an incremental API model")
        walk = ApiWalk(spec, committed, job.model, now)
        stored = self._stored_start(job) if job.start is not None else {}
        number = stored.get("window", 0)
        if number >= len(walk.windows):
            raise ChainError(f"{job.model}: page {job.index} of run {job.run_id} starts a window the run does not have")
        window = walk.windows[number]
        pages.step = pages.extractor.window_step(walk, window)
        try:
            at = pages.step.resume(stored["paginator"]) if "paginator" in stored else pages.step.start()
        except ValueError:
            raise ChainError(f"{job.model}: the start of page {job.index} of run {job.run_id} is not a "
                             f"paginator state this model can take up") from None
        try:
            page = pages.fetch(at)
        except RateLimited as exc:
            self._reschedule(job, exc.delay)
            return
        page.records = walk.take(page.records, 0)
        done = at.done or walk.stopped
        ChainCursors(self.chain).leave(job.run_id, job.model, job.index, walk.checkpoint(window, done),
                                       walk.page_high, done)
        if not done:
            state = at.state() or {}
            if pages.hidden and isinstance(state.get("next_url"), str):
                state["next_url"] = without_params(state["next_url"], pages.hidden)
            self._check_no_secret(job, state)
            self._follow(job, {"paginator": state, "window": window.index})
        elif not window.last:
            self._follow(job, {"window": window.index + 1})
        else:
            warning = at.paginator.cap_warning(job.model)
            self.state.set_plan(job.run_id, job.model, Plan("sequential", job.index + 1, True, None,
                                                            [warning] if warning else [], "incremental"))
        records = pages.shape(page)
        self._put(job, job.index, records)
        self._fetched(job, job.index, len(records), last=done and window.last)

    def _follow(self, job: PageJob, start: dict) -> None:
        """The next page's job, its start in a sealed blob (the plan stays open while pages follow)."""
        if job.index == 0:
            self.state.set_plan(job.run_id, job.model, Plan("sequential", None, False, None))
        digest = self._leave_start(job, start)
        self.chain.send(FETCH, PageJob(job.run_id, job.model, job.index + 1, start=digest, follow=True))

    def _position(self, job: PageJob, pages: ApiPages) -> Position:
        """Where the job's page stands: the model's start, the state the page before it saved, or,
        for a page fanned out ahead, its request."""
        if job.start is not None:
            try:
                return pages.step.resume(self._start(job, "paginator"))
            except ValueError:
                raise ChainError(f"{job.model}: the start of page {job.index} of run {job.run_id} is not a "
                                 f"paginator state this model can take up") from None
        if job.request is not None:
            return pages.step.planned(request_from_json(job.request, pages.step.first_request()), job.index)
        return pages.step.start()

    def _block(self, job: PageJob, pages: ApiPages, request: PageRequest | None, at: Position,
               page: StepPage) -> list[StepPage]:
        """A job of several pages (`PageJob.pages`): its first page and the others, each asked for as
        planned (only random-access paginations fan out blocks) and taken in by the one paginator."""
        paginator = at.paginator
        if not paginator.random_access or request is None:
            raise ChainError(f"{job.model}: the job for pages {job.index}-{job.index + job.pages - 1} needs a "
                             f"random-access pagination (page_number, offset), not {paginator.type_name}")
        block = [page]
        for k in range(job.index + 1, job.index + job.pages):
            at.request = paginator.request_for_page(request, k)
            block.append(pages.fetch(at))
        return block

    def _fan_out(self, ref: ModelRef, job: PageJob, pages: ApiPages, first: PageRequest,
                 paginator: Paginator) -> bool:
        """Every page is known up front: enqueue them all now, page k made visible k/rate seconds
        from now (k*m/rate when the run reads m models of the source: they share its rate), so
        however many instances take them the source sees its configured rate."""
        count = paginator.planned_pages() or 1
        warning = paginator.cap_warning(job.model)
        self.state.set_plan(job.run_id, job.model, Plan("parallel", count, True, paginator.stated_total,
                                                        [warning] if warning else [], paginator.truncated_by))
        interval = self.chain.page_interval(job.run_id, ref)
        for k, size in blocks(count, self.chain.project.settings.chain.pages_per_message):
            request = request_to_json(paginator.request_for_page(first, k), pages.hidden)
            self._check_no_secret(job, request)
            delay = min(k * interval, MAX_DELAY)
            self.chain.send(FETCH, PageJob(job.run_id, job.model, k, request=request, pages=size), delay)
        return count == 1

    def _sequential(self, job: PageJob, pages: ApiPages, at: Position) -> bool:
        """Each page's response names the next: enqueue that one job, its start (the paginator's
        saved state) left in a sealed blob, or record the final count. True when this is the
        model's last page."""
        if not (job.follow or job.index == 0):   # one of a fanned-out set: the plan already counts it
            return at.done
        paginator = at.paginator
        state = at.state()
        if state is not None:
            if job.index == 0:
                self.state.set_plan(job.run_id, job.model, Plan("sequential", None, False, paginator.stated_total))
            if pages.hidden and isinstance(state.get("next_url"), str):
                state["next_url"] = without_params(state["next_url"], pages.hidden)
            self._check_no_secret(job, state)
            start = self._leave_start(job, {"paginator": state})
            self.chain.send(FETCH, PageJob(job.run_id, job.model, job.index + 1, start=start, follow=True))
        else:
            warning = paginator.cap_warning(job.model)
            self.state.set_plan(job.run_id, job.model, Plan("sequential", job.index + 1, True,
                                                            paginator.stated_total, [warning] if warning else [],
                                                            paginator.truncated_by))
        return at.done

    def _reschedule(self, job: PageJob, delay: float) -> None:
        """A 429: the same job (same token, so it still owns the page) back on the queue, hidden for
        the server's Retry-After. No sleeping here: the function returns and its instance is free."""
        if job.attempt + 1 >= MAX_RATE_LIMITED:
            raise ChainError(f"{job.model}: page {job.index} was rate limited {job.attempt + 1} times")
        log.info("%s page %d of run %s: rate limited, back on the queue in %.1fs", job.model, job.index, job.run_id,
                 delay)
        self.chain.send(FETCH, replace(job, attempt=job.attempt + 1), min(delay, MAX_DELAY))

    def _check_no_secret(self, job: PageJob, start: dict) -> None:
        """A request to queue or a state to store must not carry a configured credential."""
        text = json.dumps(start)
        if self.chain.project.masker.mask(text) != text:
            raise ChainError(f"{job.model}: the request for a page after page {job.index} carries a configured "
                             f"credential, which must not be queued or stored")

    def _leave_start(self, job: PageJob, start: dict, index: int | None = None) -> str:
        """Where the next page (or page `index`) starts, written for its job to read (claim-check):
        the digest that job carries. Written before the job is sent, so a job never names a start
        not yet there."""
        content, digest = encode_start(start)
        sealed = seal(content, self.chain.project.settings.pii.key)
        page = job.index + 1 if index is None else index
        self.chain.blobs.put(RAW, start_blob_name(job.run_id, job.model, page, digest), sealed)
        return digest

    def _start(self, job: PageJob, kind: str) -> Any:
        """The request or keyset bound page `job.index` starts from, read back and checked like a message."""
        stored = self._stored_start(job)
        if kind not in stored:
            raise ChainError(f"{job.model}: the start of page {job.index} of run {job.run_id} holds no {kind}")
        return stored[kind]

    def _stored_start(self, job: PageJob) -> dict:
        """The start blob page `job.index` names, read back, unsealed and checked like a message."""
        where = f"{job.model}: the start of page {job.index} of run {job.run_id}"
        if job.start is None:
            raise ChainError(f"{where} is not named by its job")
        stored_data = self.chain.blobs.get(RAW, start_blob_name(job.run_id, job.model, job.index, job.start))
        if stored_data is None:
            raise ChainError(f"{where} is missing from {RAW}")
        try:
            data = unseal(stored_data, self.chain.project.settings.pii.key)
        except SealError as exc:
            raise ChainError(f"{where} {exc}") from None
        if content_digest(data) != job.start:
            raise ChainError(f"{where} does not match the digest its job carries")
        try:
            return check_start(json.loads(data))
        except MessageError as exc:
            raise ChainError(f"{where}: {exc}") from None
        except ValueError:
            raise ChainError(f"{where} is not JSON") from None

    # ------------------------------------------------------------ SQL
    def _sql_chunk(self, ref: ModelRef, job: PageJob) -> None:
        """One keyset chunk; the next chunk starts after this chunk's last key, left in a start blob."""
        if job.start is None and job.index != 0:
            raise ChainError(f"{job.model}: the job for chunk {job.index} has no start")
        after = decode_key(self._start(job, "sql_after")) if job.start is not None else None
        cursors = ChainCursors(self.chain) if is_incremental(ref) else None
        committed = cursors.start(job.run_id, ref)[0] if cursors is not None else None
        chunks = SqlPages(self.chain.project, ref, committed)
        records, next_after = chunks.chunk(after, job.index)
        if cursors is not None:   # chunks come in cursor order: each allows a cursor of its own
            cursors.leave(job.run_id, job.model, job.index, chunks.checkpoint, None, window_done=next_after is None)
        self._put(job, job.index, records)
        if next_after is not None:   # the last key is a source value: it waits in a blob, not in the message
            start = self._leave_start(job, {"sql_after": encode_key(next_after)})
            self.chain.send(FETCH, PageJob(job.run_id, job.model, job.index + 1, start=start, follow=True))
        else:
            self.state.set_plan(job.run_id, job.model, Plan("sequential", job.index + 1, True))
        self._fetched(job, job.index, len(records), last=next_after is None)

    def _sql_stream(self, ref: ModelRef, job: PageJob) -> None:
        """A model without a primary key: no bound can resume its query, so it is read whole in this
        invocation, chunk by chunk into blobs (memory stays one chunk). A redelivery reads it again
        and overwrites the same blobs."""
        sizes = []
        for index, records in enumerate(SqlPages(self.chain.project, ref).stream()):
            self._put(job, index, records)
            sizes.append(len(records))
        if not sizes:
            self._put(job, 0, [])
            sizes.append(0)
        self.state.set_plan(job.run_id, job.model, Plan("stream", len(sizes), True))
        for index, count in enumerate(sizes):
            self._fetched(job, index, count, last=index == len(sizes) - 1)

    # ------------------------------------------------------------ shared
    def _put(self, job: PageJob, index: int, records: list[dict]) -> None:
        children = page_children(self.chain.project, self.chain.ref(job.model))
        self.chain.blobs.put(RAW, raw_blob_name(job.run_id, job.model, index), encode_page(records, children))

    def _fetched(self, job: PageJob, index: int, records: int, last: bool) -> None:
        # False on a duplicate: fine
        self.ledger.page_range(job.run_id, job.model, index, index + job.pages - 1, "fetched", records)
        self._send_load(job, index, records, last)

    def _send_load(self, job: PageJob, index: int, records: int, last: bool) -> None:
        blob = raw_blob_name(job.run_id, job.model, index)
        self.chain.send(LOAD, LoadJob(job.run_id, job.model, index, blob, records, last, pages=job.pages))


def blocks(count: int, size: int) -> list[tuple[int, int]]:
    """(first page, pages) of the jobs for pages 1 to count - 1 (page 0 is fetched by the job that
    fans out), `size` pages each, cut at multiples of `size`: with a size dividing `GROUP`, a job's
    pages stay in one completion group."""
    starts = [k for k in sorted({1, *range(size, count, size)}) if k < count]
    return [(start, min(count, (start // size + 1) * size) - start) for start in starts]
