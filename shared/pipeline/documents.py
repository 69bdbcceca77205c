"""One `store: mongo` model in an embedded run: extract -> strip (whole documents) -> upsert, page
by page, with the same ledger marks, file outputs and summary as a SQL model."""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from shared.errors import ExtractError
from shared.extract.factory import build_extractor
from shared.load.loader import LoadError
from shared.mongo.client import DocumentStoreError, is_embedded
from shared.mongo.load import DocumentTarget
from shared.outputs.writers import file_writer
from shared.results import ModelResult
from shared.wiring import ModelRun


def run_document_model(model_run: ModelRun, target: DocumentTarget,
                       on_page: Callable[[Any, Any], None] | None) -> ModelResult:
    started = time.monotonic()
    project, ref = model_run.project, model_run.ref
    extractor = build_extractor(project, ref)
    result = ModelResult(ref.qualified, extractor.stats)
    output = project.settings.output
    try:
        loader = model_run.document_loader(target)
        loader.check_drift()
        with ExitStack() as stack:
            writer = None
            if output.format != "none":
                writer = stack.enter_context(
                    file_writer(output.format, output.folder, ref.qualified, extractor.output_columns))
            for page in extractor.pages():
                model_run.mark(page.index, page.index, "fetched", len(page.records))
                result.rows += loader.load(page.records)
                model_run.mark(page.index, page.index, "loaded", len(page.records))
                if writer is not None:
                    writer.write(page.records)
                if on_page:
                    on_page(page, extractor.stats)
        if is_embedded(target.client):
            target.client.flush()   # each model's documents on disk as soon as it is done
    except (ExtractError, LoadError, DocumentStoreError) as exc:
        result.error = project.masker.mask(str(exc))
    finally:
        extractor.close()
    result.seconds = time.monotonic() - started
    return result
