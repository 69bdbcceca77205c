"""`Chain`: the queue chain's steps (Paginate -> Fetch -> Load -> transform event), one object per
function invocation, with all I/O through a `BlobStore` and a `QueueStore`.

Exactly-once effects from at-least-once delivery:
- every step first claims its unit of work with the message's token (`state.RunState.claim`):
  a copy of a job finds another token and returns; a redelivery of the same message carries on;
- every write is idempotent: a page blob has one name per run/model/page and is overwritten, loads
  are upserts, ledger markers are conditional creates (a duplicate is ignored);
- completion is decided from the ledger (pages planned vs. loaded), and the one transform event of a
  run is sent by whoever wins the conditional create of `<run>/transform.emitted`.

Nothing survives between invocations but storage: the object holds only what one message needs, so
a long-lived worker that builds a `Chain` per message cannot leak a paginator, a cursor or a
half-built plan from one run into another.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shared.chain import backoff
from shared.chain.cursors import ChainCursors, is_incremental
from shared.chain.fetching import Fetcher
from shared.chain.leasing import ChainLeases
from shared.chain.messages import LoadJob, Message, MessageError, PageJob, RunModel, TransformEvent, decode, encode
from shared.chain.names import FETCH, LOAD, PAGINATE, POISON_QUEUES, RAW, TRANSFORM
from shared.chain.page_fetchers import ClientFactory, queue_client
from shared.chain.pages import ChainError, decode_page, page_children, page_columns
from shared.chain.state import GROUP, Plan, RunState
from shared.config.auth_types import bind_token_claims
from shared.config.errors import ConfigError
from shared.config.models import ApiSource
from shared.config.project import ModelRef, Project
from shared.detect.redact_message import scrub_message
from shared.errors import ExtractError
from shared.extract.gc_threshold import fewer_collections
from shared.ledger import RunLedger, new_run_id
from shared.load import drift_memory as drift
from shared.load.dispositions import has_end, staged
from shared.load.loader import Loader, LoadError
from shared.pii.rules import PiiKeyMissing
from shared.storage import BlobStore
from shared.storage.queues import QueueStore
from shared.target.engine import target_engine
from shared.wiring import ModelRun

if TYPE_CHECKING:
    from shared.mongo.load import DocumentLoader, DocumentTarget

log = logging.getLogger("kspyder.chain")
EngineFactory = Callable[[], sa.Engine]
DEFAULT_MAX_DEQUEUE_COUNT = 5     # the Functions host's default `maxDequeueCount`
_SAFE_ERRORS = (ExtractError, LoadError, ChainError, MessageError, ConfigError, PiiKeyMissing)


def _rate(ref: ModelRef) -> float | None:
    """The requests per second the model's source allows; None: unlimited (SQL sources have no throttle)."""
    return ref.source.throttle.rate if isinstance(ref.source, ApiSource) else None


class FinishError(LoadError):
    """A model's end failed (a keyless model's swap) after its last page's rows committed: recorded as
    the step `finish`, so the page's `loaded` marker does not hide it (`RunState.errors`)."""


class Chain:
    """One invocation's view of the chain. `engine_factory` gives the target engine (a worker may
    return a cached one; the chain never disposes it); None: the project's `target_url`, created on
    first use and disposed by `close()`. `max_dequeue_count` is the host's setting, so a failure on
    the last attempt is recorded as poisoned."""

    def __init__(self, project: Project, blobs: BlobStore, queues: QueueStore,
                 engine_factory: EngineFactory | None = None, clock: Callable[[], float] = time.time, *,
                 client_factory: ClientFactory = queue_client, max_dequeue_count: int = DEFAULT_MAX_DEQUEUE_COUNT):
        self.project, self.blobs, self.queues, self.clock = project, blobs, queues, clock
        self.client_factory, self.max_dequeue_count = client_factory, max_dequeue_count
        self.ledger = RunLedger(blobs)
        self.state = RunState(blobs, clock, self.ledger)
        self.leases = ChainLeases(self)   # one run of a model at a time, across messages (leasing.py)
        bind_token_claims(project.sources, blobs)   # Key Vault refresh tokens: versions claimed here
        self._engine_factory = engine_factory
        self._engine: sa.Engine | None = None
        self._documents: DocumentTarget | None = None   # store: mongo models; pymongo only when one loads

    def __enter__(self) -> Chain:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._documents is not None:
            self._documents.close()
        engine, self._engine = self._engine, None
        if engine is not None and self._engine_factory is None:
            engine.dispose()

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = self._engine_factory() if self._engine_factory is not None else target_engine(self.project)
        return self._engine

    def model_run(self, ref: ModelRef, run_id: str, engine: sa.Engine | None = None) -> ModelRun:
        """The model in this run, as every mode wires it (`engine`: only to build a table loader)."""
        return ModelRun(self.project, ref, run_id, self.ledger, engine)

    def ref(self, model: str) -> ModelRef:
        try:
            [ref] = self.project.models([model])
        except ConfigError:
            raise ChainError(f"model {model} is not in the manifests "
                             "(did they change since the run started?)") from None
        return ref

    def send(self, queue: str, message: Message, delay: float = 0.0) -> None:
        self.leases.cover(message, delay)   # a leased model's lease outlasts the delay
        self.queues.send(queue, encode(message), delay)

    # ------------------------------------------------------------ entry points
    def start_run(self, selectors: list[str] | tuple[str, ...] = (), trigger: str = "http", *,
                  check_target: bool = True) -> str:
        """Ledger entry plus one RunModel per model on kspyder-paginate; returns the run id.
        `check_target`: refuse (TargetDriftError) when a table is missing or differs from the
        manifest, before anything is queued, rather than failing every page's load later."""
        refs = self.project.models(list(selectors))
        if check_target:
            for ref in refs:
                self._loader(ref, "drift-check").check_drift()
        run_id = new_run_id()
        self.ledger.start(run_id, [r.qualified for r in refs], trigger)
        started: dict[str, int] = {}
        for ref in refs:   # a source's models start 1/rate apart, as their pages will be spread
            nth = started[ref.source_name] = started.get(ref.source_name, -1) + 1
            rate = _rate(ref)
            self.send(PAGINATE, RunModel(run_id, ref.qualified), nth / rate if rate else 0.0)
        self.leases.started(run_id, refs)   # the run's heartbeat lasts until its models have started
        log.info("run %s started (%s): %d model(s)", run_id, trigger, len(refs))
        return run_id

    def handle(self, queue: str, body: Any, dequeue_count: int = 1) -> Message:
        """Decode a message from `queue` and run its step: what a queue-triggered function does."""
        message = decode(body)
        expected = {PAGINATE: RunModel, FETCH: PageJob, LOAD: LoadJob}.get(queue)
        if expected is None:
            raise ChainError(f"no chain step reads queue {queue}")
        if not isinstance(message, expected):
            raise MessageError(f"{queue}: expected a {expected.__name__}, not a {type(message).__name__}")
        if isinstance(message, RunModel):
            self.paginate(message, dequeue_count)
        elif isinstance(message, PageJob):
            self.fetch(message, dequeue_count)
        elif isinstance(message, LoadJob):
            self.load(message, dequeue_count)
        return message

    def paginate(self, msg: RunModel, dequeue_count: int = 1) -> None:
        """Fetch the model's first page through the Fetch step (written and handed to Load like any
        page); that step plans the rest: every page at once, spread over time, when the first page
        states how many there are; otherwise one page after another."""
        job = PageJob(msg.run_id, msg.model, 0, token=msg.token)
        with self._step("paginate", job, dequeue_count):
            delay = self.leases.start(msg)
            if delay is not None:   # another run loads this model: the same message again, later
                self.send(PAGINATE, msg, delay)
                return
            ref = self.ref(msg.model)
            self._stage(msg.run_id, ref)
            if is_incremental(ref):   # the cursor the run starts from, kept for its every page
                ChainCursors(self).begin(msg.run_id, ref)
            Fetcher(self).fetch(job)

    def fetch(self, job: PageJob, dequeue_count: int = 1) -> None:
        with self._step("fetch", job, dequeue_count):
            self.leases.keep(job.run_id, job.model)
            Fetcher(self).fetch(job)

    def load(self, job: LoadJob, dequeue_count: int = 1) -> None:
        with self._step("load", job, dequeue_count):
            claim = self.state.claim_page(job.run_id, job.model, job.index, "load", job.token)
            if claim == "other":
                return
            self.leases.keep(job.run_id, job.model)
            ref = self.ref(job.model)
            if claim == "new" or self.state.marker(job.run_id, job.model, job.index, "loaded", job.pages) is None:
                data = self.blobs.get(RAW, job.blob)
                if data is None:
                    raise ChainError(f"{job.model}: raw page {job.index} of run {job.run_id} is missing from {RAW}")
                records = decode_page(data, page_columns(self.project, ref), page_children(self.project, ref))
                loader = self._loader(ref, job.run_id)
                if isinstance(loader, Loader):
                    loader.staged_elsewhere()   # a keyless model's staging table: made by paginate
                key = drift.drift_key(self.engine, ref) if isinstance(loader, Loader) else None
                if key is not None and isinstance(loader, Loader):   # a SQL table: reflected once per worker
                    drift.check_loader(key, loader)
                else:
                    loader.check_drift()
                try:
                    if isinstance(loader, Loader):   # a redelivered page replaces its rows (keyless models)
                        if is_incremental(ref):   # the cursor commits with the rows
                            loader.load_page(job.index, records,
                                             ChainCursors(self).then(job.run_id, ref, job.index, job.pages))
                        else:
                            loader.load_page(job.index, records)
                    else:
                        loader.load(records)
                except Exception:
                    if key is not None:
                        drift.forget(key)   # the retry checks the table again
                    raise
                self.model_run(ref, job.run_id).mark(job.index, job.index + job.pages - 1, "loaded", len(records))
            self._after_load(ref, job)

    # ------------------------------------------------------------ completion
    def _after_load(self, ref: ModelRef, job: LoadJob) -> None:
        """Is the model complete? Pages complete in groups of GROUP: the load that finds its group
        full marks it, and the model is complete when every group is marked. A load that sees a
        fetched page of its group not loaded yet leaves the question to that page's load. Every
        load writes before it reads (page marker, then its group's listing; group marker, then the plan and
        the group listing), so of two loads finishing together the later one sees both, and a plan
        that becomes final after a load read it is seen by the load of the page that made it final."""
        group = job.index // GROUP
        fetched, loaded = self.state.group_counts(job.run_id, job.model, group)
        if loaded >= GROUP:
            self.state.mark_group_loaded(job.run_id, job.model, group)
        elif fetched > loaded:
            return   # a fetched page of the group is still to load: its load lists after this one's marker
        plan = self.state.plan(job.run_id, job.model)
        if plan is None or not plan.final or not plan.pages:
            return   # the last page is not fetched yet: its load will look again
        groups = -(-plan.pages // GROUP)
        if loaded < GROUP:   # only the last group may be short, and only once the plan is final
            if group != groups - 1 or loaded < plan.pages - group * GROUP:
                return
            self.state.mark_group_loaded(job.run_id, job.model, group)
        if self.state.groups_loaded(job.run_id, job.model) < groups:
            return
        if (plan := self.state.reconciled(job.run_id, ref, plan, job.token)) is None:
            # fewer records than the API stated: the model and the run failed, nothing replaced;
            # the model is over, so the next run need not wait for its lease to expire
            self.leases.release(job.run_id, job.model)
            return
        if self._finish_model(ref, job, plan):
            self.leases.release(job.run_id, job.model)
            self._complete_run(job)

    def _finish_model(self, ref: ModelRef, job: LoadJob, plan: Plan) -> bool:
        """Record the model as done. A model whose write disposition has an end (a swap, an append,
        versions, soft deletes: `Loader.finish`) has it applied by the load that claims the finish,
        once (a redelivery of that load finds it done); False for the others."""
        outcome: dict[str, Any] = {"model": job.model, "pages": plan.pages, "mode": plan.mode,
                                   "warnings": self.state.warnings(job.run_id, job.model, plan)}
        if not ref.documents and has_end(ref.model):
            if self.state.claim(job.run_id, f"claims/{job.model}/finish", job.token) == "other":
                return False   # its owner finishes the model and then looks at the run
            swapped = f"swapped/{job.model}"   # a copy of this load (same token) must not swap again
            if not self.state.flag(job.run_id, swapped):
                loader = self._loader(ref, job.run_id)
                if isinstance(loader, Loader):
                    loader.staged_elsewhere()
                try:
                    if isinstance(loader, Loader):
                        outcome["changes"] = loader.finish(complete=True).as_dict()
                    else:
                        loader.finish()
                except LoadError as exc:
                    raise FinishError(str(exc)) from exc
                self.state.set_flag(job.run_id, swapped)
        self.model_run(ref, job.run_id).finish(outcome)
        return True

    def _complete_run(self, job: LoadJob) -> None:
        """Every model done: succeed the run and send its one transform event. Each load that gets
        here writes its model's outcome first and reads the others' after, so of two loads
        finishing together at least one sees everything, and the conditional create picks one."""
        record = self.ledger.get(job.run_id)
        if record is None:
            raise ChainError(f"run {job.run_id} is not in the ledger")
        outcomes = self.ledger.model_outcomes(job.run_id)
        if any(model not in outcomes for model in record.models):
            return
        claim = self.state.claim(job.run_id, "transform.emitted", job.token)
        if claim == "other" or (claim == "mine" and self.state.flag(job.run_id, "transform.sent")):
            return
        sources = sorted({m.split(".", 1)[0] for m in record.models})
        self.ledger.finish(job.run_id, "succeeded", {"run_id": job.run_id, "ok": True, "mode": "queue",
                                                     "models": [outcomes[m] for m in record.models]})
        self.send(TRANSFORM, TransformEvent(job.run_id, tuple(sources), tuple(record.models)))
        self.state.set_flag(job.run_id, "transform.sent")
        log.info("run %s: every page loaded, transform event sent", job.run_id)

    # ------------------------------------------------------------ status
    def run_status(self, run_id: str) -> dict[str, Any] | None:
        """Pages planned/fetched/loaded per model, errors not yet redone, poison counts; None for
        an unknown run. `poison.run` counts this run's steps that failed on their last allowed
        attempt (so the host moved them to a poison queue); `poison.queues` is each poison queue's
        approximate length over all runs (queues cannot be searched by run without receiving)."""
        record = self.ledger.get(run_id)
        if record is None:
            return None
        outcomes = self.ledger.model_outcomes(run_id)
        models: dict[str, dict[str, Any]] = {}
        for model in record.models:
            plan = self.state.plan(run_id, model)
            counts = self.state.counts(run_id, model)
            models[model] = {"mode": plan.mode if plan else None,
                             "planned": plan.pages if plan is not None and plan.final else None,
                             **counts, "done": model in outcomes,
                             "warnings": self.state.warnings(run_id, model, plan) if plan else []}
            ref = self._known(model)
            if ref is not None and is_incremental(ref):   # the cursor committed with the rows
                models[model]["state"] = ChainCursors(self).status(run_id, ref)
        errors = self.state.errors(run_id)
        return {"run_id": run_id, "trigger": record.trigger, "status": self.ledger.shown_status(record),
                "started_at": record.started_at, "ended_at": record.ended_at,
                "done": record.status == "succeeded", "transform_sent": self.state.flag(run_id, "transform.sent"),
                "models": models, "errors": errors,
                "poison": {"run": sum(1 for e in errors if e.get("poisoned")),
                           "queues": {q: self.queues.peek_count(q) for q in POISON_QUEUES}}}

    # ------------------------------------------------------------ helpers
    def _known(self, model: str) -> ModelRef | None:
        """The model, or None once the manifests no longer have it."""
        try:
            return self.ref(model)
        except ChainError:
            return None

    def page_interval(self, run_id: str, ref: ModelRef) -> float:
        """Seconds between a fanned-out model's pages: 1/rate, times the number of the run's models
        reading the same source, since they all draw on its one rate limit. 0 without a rate."""
        rate = _rate(ref)
        if not rate:
            return 0.0
        record = self.ledger.get(run_id)
        siblings = sum(1 for m in record.models if m.split(".", 1)[0] == ref.source_name) if record else 1
        return max(siblings, 1) / rate

    def _stage(self, run_id: str, ref: ModelRef) -> None:
        """A keyless table's run gets its staging table (and stale ones of killed runs are dropped)
        before any of its pages is queued for Load; the Loads write into it and fail if it is gone,
        rather than make a new one that would miss pages. A copy of the message that comes once a
        page is fetched does nothing: the table is there, or already swapped in."""
        if not ref.documents and staged(ref.model) and not self.state.counts(run_id, ref.qualified)["fetched"]:
            self._table_loader(ref, run_id).stage()

    def _loader(self, ref: ModelRef, run_id: str) -> Loader | DocumentLoader:
        if ref.documents:
            return self.model_run(ref, run_id).document_loader(self._document_target())
        return self._table_loader(ref, run_id)

    def _document_target(self) -> DocumentTarget:
        if self._documents is None:
            from shared.mongo.load import DocumentTarget
            self._documents = DocumentTarget(self.project.settings, durable_loads=True)
        return self._documents

    def _table_loader(self, ref: ModelRef, run_id: str) -> Loader:
        return self.model_run(ref, run_id, self.engine).table_loader()

    @contextmanager
    def _step(self, step: str, job: PageJob | LoadJob, dequeue_count: int) -> Iterator[None]:
        """Record a failure in the run's ledger (identifiers and a short, masked reason, never
        data) and re-raise it for the host to retry; clear it once the step succeeds. Garbage
        collections are fewer meanwhile, as in an embedded run (`extract/gc_threshold.py`)."""
        try:
            with fewer_collections():
                yield
        except Exception as exc:
            if backoff.requeued(self, job, exc):   # a busy database: later, without burning an attempt
                return
            poisoned = dequeue_count >= self.max_dequeue_count
            failed = "finish" if isinstance(exc, FinishError) else step   # after the page's rows committed
            log.warning("%s of %s page %d (run %s, attempt %d) failed: %s", failed, job.model, job.index, job.run_id,
                        dequeue_count, self._reason(exc))
            try:
                self.state.record_error(job.run_id, job.model, job.index, failed, self._reason(exc),
                                        dequeue_count=dequeue_count, poisoned=poisoned)
                if poisoned:   # the run cannot complete until the message is replayed (which may succeed it)
                    self.leases.release(job.run_id, job.model)   # the next run need not wait for its expiry
                    self.ledger.finish(job.run_id, "failed", {"run_id": job.run_id, "ok": False, "mode": "queue",
                                                              "poisoned": {"model": job.model, "index": job.index,
                                                                           "step": step}})
            except Exception:   # storage down too: the host's retry and log still have it
                log.exception("could not record the failure in the ledger")
            raise
        if dequeue_count > 1:   # an earlier delivery may have recorded a failure; `errors()` skips any other
            self.state.clear_error(job.run_id, job.model, job.index, step)

    def _reason(self, exc: BaseException) -> str:
        """Our errors are written never to carry values, and are scrubbed in case one slipped in
        (a database line, an API's message); anything else shows only its type."""
        if isinstance(exc, _SAFE_ERRORS):
            return f"{type(exc).__name__}: {scrub_message(self.project.masker.mask(str(exc)))}"
        return f"{type(exc).__name__} (details in the function's log)"
