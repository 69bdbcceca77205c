"""Pick the connector for a model: the one place that knows which source type maps to which class,
and the one recipe for a model's PII stripper, whichever mode runs it (embedded run, queue chain, inbox)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from shared.config.project import ModelRef, Project
from shared.extract.base import GenericExtractor
from shared.pii.stripper import PiiStripper

if TYPE_CHECKING:
    from shared.extract.http_client import HttpClient


def model_stripper(project: Project, ref: ModelRef) -> PiiStripper:
    """The model's column rules and free-text scan under the project's PII settings."""
    return PiiStripper.for_model(ref.model, project.settings.pii, ref.pii_scan, documents=ref.documents,
                                 where=ref.qualified)


def build_extractor(project: Project, ref: ModelRef, limit: int | None = None, *, client: HttpClient | None = None,
                    scan_process: bool | None = None) -> GenericExtractor:
    """`client`: an API model's HTTP client (the queue chain's raises on a 429 instead of waiting);
    `scan_process`: None for the settings' `pii.scan_process`."""
    stripper = model_stripper(project, ref)
    if scan_process is None:
        scan_process = project.settings.pii.scan_process
    if ref.source.type == "api":
        from shared.extract.api import ApiExtractor
        return ApiExtractor(ref, stripper, limit, client, scan_process=scan_process,
                            pii_key=project.settings.pii.key, redaction=project.settings.pii.redaction)
    from shared.extract.sql import SqlExtractor
    return SqlExtractor(ref, stripper, limit, scan_process=scan_process)
