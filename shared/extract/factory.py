"""Pick the connector for a model: the one place that knows which source type maps to which class."""
from __future__ import annotations

from shared.config.project import ModelRef, Project
from shared.pii import PiiStripper

from .base import GenericExtractor


def build_extractor(project: Project, ref: ModelRef, limit: int | None = None) -> GenericExtractor:
    stripper = PiiStripper.for_model(ref.model, project.settings.pii, ref.pii_scan, documents=ref.documents,
                                     where=ref.qualified)
    scan_process = project.settings.pii.scan_process
    if ref.source.type == "api":
        from .api import ApiExtractor
        return ApiExtractor(ref, stripper, limit, scan_process=scan_process)
    from .sql import SqlExtractor
    return SqlExtractor(ref, stripper, limit, scan_process=scan_process)
