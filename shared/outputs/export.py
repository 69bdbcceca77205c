"""Extract models and write their records to stdout or files: the `extract` command's core,
kept out of the CLI so the Azure functions and `run` reuse it."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.config.child_tables import child_tables
from shared.config.project import ModelRef, Project
from shared.errors import ExtractError
from shared.extract.base import ExtractStats
from shared.extract.factory import build_extractor
from shared.extract.types import Page
from shared.outputs.child_csv import CsvTables
from shared.outputs.writers import FileFormat, JsonLinesStream, RecordWriter, file_writer


@dataclass
class ModelOutcome:
    ref: ModelRef
    stats: ExtractStats
    seconds: float
    error: str | None = None


def export_model(project: Project, ref: ModelRef, fmt: FileFormat | None, dest: str | None,
                 limit: int | None = None, on_page: Callable[[Page, ExtractStats], None] | None = None) -> ModelOutcome:
    """Extract one model into a writer; a failure discards the model's new file and is reported, not raised."""
    started = time.monotonic()
    extractor = build_extractor(project, ref, limit)
    folder = dest or project.settings.output.folder
    children = child_tables(ref.name, ref.model) if not ref.documents else ()
    writer: RecordWriter = (JsonLinesStream(sys.stdout) if fmt is None
                            else CsvTables(folder, ref.qualified, extractor.output_columns, ref.model.primary_key,
                                           children) if fmt == "csv" and children
                            else file_writer(fmt, folder, ref.qualified, extractor.output_columns))
    try:
        with writer:
            for page in extractor.pages():
                writer.write(page.records)
                if on_page:
                    on_page(page, extractor.stats)
    except ExtractError as exc:
        return ModelOutcome(ref, extractor.stats, time.monotonic() - started, project.masker.mask(str(exc)))
    return ModelOutcome(ref, extractor.stats, time.monotonic() - started)
