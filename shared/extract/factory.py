"""Pick the connector for a model: the one place that knows which source type maps to which class,
and the one recipe for a model's PII stripper, whichever mode runs it (embedded run, queue chain, inbox)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from shared.config.project import ModelRef, Project
from shared.extract.base import GenericExtractor
from shared.pii.stripper import PiiStripper

if TYPE_CHECKING:
    from shared.extract.http_client import HttpClient
    from shared.extract.source_engines import SourceEngines


def model_stripper(project: Project, ref: ModelRef) -> PiiStripper:
    """The model's column rules and free-text scan under the project's PII settings."""
    return PiiStripper.for_model(ref.model, project.settings.pii, ref.pii_scan, documents=ref.documents,
                                 where=ref.qualified)


def build_extractor(project: Project, ref: ModelRef, limit: int | None = None, *, client: HttpClient | None = None,
                    scan_process: bool | None = None, engines: SourceEngines | None = None) -> GenericExtractor:
    """`client`: an API model's HTTP client (the queue chain's raises on a 429 instead of waiting);
    `scan_process`: None for the settings' `pii.scan_process`; `engines`: the run's SQL source
    engines (else a SQL model's extractor makes its own, disposed when it closes)."""
    stripper = model_stripper(project, ref)
    if scan_process is None:
        scan_process = project.settings.pii.scan_process
    if ref.source.type == "api":
        from shared.extract.api import ApiExtractor
        return ApiExtractor(ref, stripper, limit, client, scan_process=scan_process,
                            pii_key=project.settings.pii.key, redaction=project.settings.pii.redaction)
    from shared.config.models import SqlSource
    from shared.extract.sql import SqlExtractor
    engine = engines.for_source(ref.source) if engines is not None and isinstance(ref.source, SqlSource) else None
    return SqlExtractor(ref, stripper, limit, engine, scan_process=scan_process)
