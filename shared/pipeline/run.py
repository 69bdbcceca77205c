"""One run: a run id, every selected model extracted and loaded page by page (memory bounded by a
page), pages recorded in the ledger, optional file outputs, and a summary. A failing model is
reported and the others still run; the run fails if any model failed."""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial

import sqlalchemy as sa

from shared.config.project import ModelRef, Project
from shared.detect.redact_message import scrub_message
from shared.errors import ExtractError
from shared.extract.base import ExtractStats
from shared.extract.factory import build_extractor
from shared.extract.source_engines import SourceEngines
from shared.extract.types import Page
from shared.ledger import RunLedger, new_run_id
from shared.load import drift_memory
from shared.load.loader import Loader, LoadError, PreparedBatch, Then
from shared.pipeline.incremental import cursor_then, is_incremental, start_cursor
from shared.pipeline.overlap import OverlappedWriter
from shared.results import ModelResult, RunSummary
from shared.storage import LocalBlobStore
from shared.target.engine import target_engine
from shared.target.lease import Holding, LeaseHeld, LeaseLost, Leases, this_process
from shared.wiring import ModelRun

PageCallback = Callable[[Page, ExtractStats], None]


def local_ledger(project: Project) -> RunLedger:
    return RunLedger(LocalBlobStore(project.settings.storage.root))


def run_models(project: Project, refs: list[ModelRef], *, run_id: str | None = None, engine: sa.Engine | None = None,
               ledger: RunLedger | None = None, trigger: str = "cli", on_page: PageCallback | None = None,
               on_model_start: Callable[[ModelRef], None] | None = None, wait: float = 0.0,
               limit: int | None = None, planned: bool = False) -> RunSummary:
    """`wait`: seconds to wait for a model's lease held by another run before refusing the model;
    `limit`: records per model at most (a limited run is never complete: no soft deletes);
    `planned`: the caller has just found (or brought) the models' tables in line with a plan, so
    a model loaded soon after it does not reflect its table again (`load/drift_memory.py`)."""
    run_id = run_id or new_run_id()
    ledger = ledger or local_ledger(project)
    own_engine = engine is None
    engine = engine or target_engine(project)
    summary = RunSummary(run_id)
    started = time.monotonic()
    leases = Holding(Leases(engine, project.settings.leases.ttl_seconds), run_id, this_process(),
                     on_beat=lambda until: ledger.beat(run_id, "process", until))
    ledger.start(run_id, [r.qualified for r in refs], trigger, alive_until=leases.alive_until())
    if planned:
        for ref in refs:
            if not ref.documents:
                drift_memory.passed(drift_memory.drift_key(engine, ref))
    documents = None   # store: mongo models load there; pymongo is imported only when one does
    engines = SourceEngines()
    if any(ref.documents for ref in refs):
        from shared.mongo.load import DocumentTarget
        documents = DocumentTarget(project.settings)
    try:
        leases.open()
        for ref in refs:
            if on_model_start:
                on_model_start(ref)
            model_run = ModelRun(project, ref, run_id, ledger, None if ref.documents else engine)
            if documents is not None and ref.documents:
                from shared.pipeline.documents import run_document_model
                result = run_document_model(model_run, documents, on_page)
            else:
                result = _leased(leases, ref, wait, partial(_run_model, model_run, on_page, limit, engines))
            model_run.finish(result.as_dict())
            summary.results.append(result)
    finally:
        leases.close()
        engines.close()
        if documents is not None:
            documents.close()
        summary.seconds = time.monotonic() - started
        ledger.finish(run_id, "succeeded" if summary.ok and len(summary.results) == len(refs) else "failed",
                      summary.as_dict())
        if own_engine:
            engine.dispose()
    return summary


def _leased(leases: Holding, ref: ModelRef, wait: float, work: Callable[[], ModelResult]) -> ModelResult:
    """The model run under its table's lease (one run of a model at a time): refused when another
    run holds it past `wait` seconds; failed when the lease was lost while it ran."""
    try:
        with leases.hold([ref.qualified], wait):
            result = work()
    except LeaseHeld as exc:
        return ModelResult(ref.qualified, ExtractStats(), error=str(exc), refused=True)
    except LeaseLost as exc:
        result.error = result.error or str(exc)
    return result


def _run_model(model_run: ModelRun, on_page: PageCallback | None, limit: int | None = None,
               engines: SourceEngines | None = None) -> ModelResult:
    started = time.monotonic()
    project, ref, engine, run_id = model_run.project, model_run.ref, model_run.table_engine(), model_run.run_id
    batch_size = model_run.batch_size   # pages are loaded together up to this many records: one transaction
    extractor = build_extractor(project, ref, limit, engines=engines)
    result = ModelResult(ref.qualified, extractor.stats)
    output = project.settings.output
    loader = None
    drift_key = drift_memory.drift_key(engine, ref)
    try:
        loader = model_run.table_loader()
        drift_memory.check_loader(drift_key, loader)
        loader.stage()   # replace, append, scd2: the run's staging table, applied by `finish`
        start_cursor(engine, ref, extractor)   # an incremental model starts after its committed cursor
        with ExitStack() as stack:
            writer = None
            if output.format != "none":
                from shared.outputs.writers import file_writer  # lazy: file outputs are opt-in (settings)
                writer = stack.enter_context(file_writer(output.format, output.folder, ref.qualified,
                                                         extractor.output_columns))

            def loaded(pages: list[tuple[int, int]], rows: int) -> None:
                result.rows += rows
                if pages:
                    model_run.mark(pages[0][0], pages[-1][0], "loaded", sum(records for _, records in pages))

            def fetched(pages: list[Page]) -> None:
                model_run.mark(pages[0].index, pages[-1].index, "fetched", sum(len(page.records) for page in pages))

            # entered last, so left first: the batch in flight lands before the file output closes
            batches = stack.enter_context(OverlappedWriter(loader, engine, loaded))
            pending: list[Page] = []   # consecutive pages, marked in the ledger together (`page_range`)
            try:
                for page in extractor.pages():
                    pending.append(page)
                    if sum(len(p.records) for p in pending) >= batch_size:
                        _submit(loader, batches, pending, fetched, cursor_then(ref, run_id, pending))
                    if writer is not None:
                        writer.write(page.records)
                    if on_page:
                        on_page(page, extractor.stats)
                _submit(loader, batches, pending, fetched, cursor_then(ref, run_id, pending))
            except ExtractError:
                if is_incremental(ref):   # the pages read before the failure, with the cursor they allow
                    _submit(loader, batches, pending, fetched, cursor_then(ref, run_id, pending))
                raise
            finally:
                if pending:   # fetched, and the run stopped before loading them (marking twice is a no-op)
                    fetched(pending)
            batches.close()
            result.changes = loader.finish(complete=limit is None).as_dict()
    except (ExtractError, LoadError) as exc:
        result.error = scrub_message(project.masker.mask(str(exc)))
        if isinstance(exc, LoadError):
            drift_memory.forget(drift_key)   # the next run in this process checks the table again
        if loader is not None:
            loader.discard()   # the previous table stays as it was
    except RecursionError:   # data nested past Python's limit (a hostile body): this model fails, the run goes on
        result.error = f"{ref.qualified}: a record nests too deeply to process (past Python's recursion limit)"
        if loader is not None:
            loader.discard()
    finally:
        extractor.close()
    result.seconds = time.monotonic() - started
    return result


def _submit(loader: Loader, batches: OverlappedWriter, pages: list[Page],
            fetched: Callable[[list[Page]], None], then: Then | None = None) -> None:
    """Mark the buffered pages fetched, prepare them (fit checks, on this thread) batch by batch and
    hand each batch to the writer; the pages are marked loaded once their last batch has committed,
    and `then` (an incremental model's cursor) commits with that batch. Empties the buffer."""
    if not pages:
        return
    fetched(pages)
    previous = None   # one batch behind, to know which is the last
    try:
        for batch in loader.batches([record for page in pages for record in page.records]):
            if previous is not None:
                batches.submit(previous, [])
            previous = batch
    except LoadError:
        if previous is not None:   # written before the misfit stops the run, as a synchronous loop would
            batches.submit(previous, [])
        raise
    if previous is None and then is not None:   # no rows, and still a cursor to move (an empty window)
        previous = PreparedBatch([], 0, 0)
    if previous is not None:
        previous = previous.and_then(then)
        # (index, records) only: holding the pages would keep their records in memory until the write ends
        batches.submit(previous, [(page.index, len(page.records)) for page in pages])
    pages.clear()
