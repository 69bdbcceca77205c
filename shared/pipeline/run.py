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
from shared.extract.types import Page
from shared.ledger import RunLedger, new_run_id
from shared.load.loader import Loader, LoadError, PreparedBatch, Then
from shared.load.pii_key_check import check_pii_key
from shared.pipeline.incremental import cursor_then, is_incremental, start_cursor
from shared.pipeline.overlap import OverlappedWriter
from shared.results import ModelResult, RunSummary
from shared.storage import LocalBlobStore
from shared.target.dialects import create_target_engine
from shared.target.lease import Holding, LeaseHeld, LeaseLost, Leases, this_process

PageCallback = Callable[[Page, ExtractStats], None]
# Pages are loaded together up to this many records: one transaction (and, on PostgreSQL, one COPY and
# one merge) per batch instead of per page. Memory holds at most this many records plus a page.
LOAD_BATCH = 5000


def local_ledger(project: Project) -> RunLedger:
    return RunLedger(LocalBlobStore(project.settings.storage.root))


def run_models(project: Project, refs: list[ModelRef], *, run_id: str | None = None, engine: sa.Engine | None = None,
               ledger: RunLedger | None = None, trigger: str = "cli", on_page: PageCallback | None = None,
               on_model_start: Callable[[ModelRef], None] | None = None, wait: float = 0.0,
               limit: int | None = None) -> RunSummary:
    """`wait`: seconds to wait for a model's lease held by another run before refusing the model;
    `limit`: records per model at most (a limited run is never complete: no soft deletes)."""
    run_id = run_id or new_run_id()
    ledger = ledger or local_ledger(project)
    own_engine = engine is None
    sql_sources = [name for name, source in project.sources.items() if source.store == "sql"]   # mongo: no schema
    engine = engine or create_target_engine(project.settings.target_url, sql_sources)
    summary = RunSummary(run_id)
    started = time.monotonic()
    leases = Holding(Leases(engine, project.settings.leases.ttl_seconds), run_id, this_process(),
                     on_beat=lambda until: ledger.beat(run_id, "process", until))
    ledger.start(run_id, [r.qualified for r in refs], trigger, alive_until=leases.alive_until())
    documents = None   # store: mongo models load there; pymongo is imported only when one does
    if any(ref.documents for ref in refs):
        from shared.mongo.load import DocumentTarget
        documents = DocumentTarget(project.settings)
    try:
        leases.open()
        for ref in refs:
            if on_model_start:
                on_model_start(ref)
            if documents is not None and ref.documents:
                from shared.mongo.run import run_document_model
                result = run_document_model(project, ref, documents, ledger, run_id, on_page)
            else:
                result = _leased(leases, ref, wait,
                                 partial(_run_model, project, ref, engine, ledger, run_id, on_page, limit))
            ledger.finish_model(run_id, ref.qualified, result.as_dict())
            summary.results.append(result)
    finally:
        leases.close()
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


def _run_model(project: Project, ref: ModelRef, engine: sa.Engine, ledger: RunLedger, run_id: str,
               on_page: PageCallback | None, limit: int | None = None) -> ModelResult:
    started = time.monotonic()
    extractor = build_extractor(project, ref, limit)
    result = ModelResult(ref.qualified, extractor.stats)
    output = project.settings.output
    loader = None
    try:
        loader = Loader(engine, ref, redaction=project.settings.pii.redaction, run_id=run_id, batch_size=LOAD_BATCH)
        check_pii_key(engine, project, [ref.source_name])   # hashes made with the target's key
        loader.check_drift()
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
                    ledger.page_range(run_id, ref.qualified, pages[0][0], pages[-1][0], "loaded",
                                      sum(records for _, records in pages))

            def fetched(pages: list[Page]) -> None:
                ledger.page_range(run_id, ref.qualified, pages[0].index, pages[-1].index, "fetched",
                                  sum(len(page.records) for page in pages))

            # entered last, so left first: the batch in flight lands before the file output closes
            batches = stack.enter_context(OverlappedWriter(loader, engine, loaded))
            pending: list[Page] = []   # consecutive pages, marked in the ledger together (`page_range`)
            try:
                for page in extractor.pages():
                    pending.append(page)
                    if sum(len(p.records) for p in pending) >= LOAD_BATCH:
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
