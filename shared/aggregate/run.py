"""Run the aggregations of `aggregations.yml` and publish their outputs: JSON and CSV files (the
output folder, or the `kspyder-outputs` container in Azure storage mode) and a SQL table for BI.

A failing aggregation is reported in its result and the others still run, as models do in a run.
Outputs are replaced whole: files through a temporary name (or one blob upload), tables by
`replace_table`, so a reader sees the previous output or the new one, never a mix.
"""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from bson import Decimal128, ObjectId

from shared.aggregate.config import Aggregation, load_aggregations
from shared.aggregate.formats import csv_bytes, json_bytes
from shared.chain.names import OUTPUTS
from shared.config.errors import ConfigError, ConfigIssue
from shared.config.project import Project
from shared.load.replace import ReplaceError, replace_table
from shared.mongo.client import DocumentStoreError, open_documents
from shared.storage import BlobStore
from shared.target.engine import target_engine

FOLDER = "aggregations"   # under the output folder, and the blob prefix in kspyder-outputs


@dataclass
class AggregationResult:
    name: str
    documents: int = 0
    files: list[str] = field(default_factory=list)    # paths (local) or container/blob names (Azure)
    table: str | None = None
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict:
        return {"name": self.name, "documents": self.documents, "files": list(self.files), "table": self.table,
                "rows": self.rows, "seconds": round(self.seconds, 3), "error": self.error}


def select(aggregations: dict[str, Aggregation], names: Iterable[str] = (), sources: Iterable[str] = ()) -> list[str]:
    """Names to run: those named (unknown names are a ConfigError), else all; narrowed to the
    aggregations reading `sources` when given."""
    names, sources = list(names), set(sources)
    unknown = [n for n in names if n not in aggregations]
    if unknown:
        raise ConfigError([ConfigIssue("command line", None, "", f"unknown aggregation '{n}' "
                                       f"(aggregations: {', '.join(aggregations) or 'none'})") for n in unknown])
    chosen = names or list(aggregations)
    return [n for n in dict.fromkeys(chosen) if not sources or aggregations[n].source in sources]


def aggregate(project: Project, name: str, *, client: Any = None) -> list[dict]:
    """The documents aggregation `name` produces, written nowhere. BSON-only types come back as
    Python ones: ObjectId as its hex text, Decimal128 as Decimal; datetimes are aware (UTC)."""
    aggregations = load_aggregations(project)
    select(aggregations, [name])
    if client is not None:
        return run_pipeline(client, aggregations[name])
    with open_documents(project.settings) as owned:
        return run_pipeline(owned, aggregations[name])


def run_pipeline(client: Any, aggregation: Aggregation) -> list[dict]:
    collection = client[aggregation.source][aggregation.collection]
    return [_python(doc) for doc in collection.aggregate([_bson(stage) for stage in aggregation.pipeline])]


def run_aggregations(project: Project, names: Iterable[str] = (), sources: Iterable[str] = (), *,
                     client: Any = None, blobs: BlobStore | None = None, engine: sa.Engine | None = None,
                     run_id: str | None = None) -> list[AggregationResult]:
    """Run and publish the selected aggregations (see `select`). `client`, `blobs` and `engine`
    default to the ones the settings describe; `run_id` tags the rows of output tables."""
    aggregations = load_aggregations(project)
    chosen = select(aggregations, names, sources)
    if not chosen:
        return []
    run_id = run_id or str(uuid.uuid4())
    tables = {a.schema_table[0] for n in chosen if (a := aggregations[n]).schema_table}
    own_client, own_engine = client is None, engine is None and bool(tables)
    if blobs is None and project.settings.storage.mode == "azure" and any(aggregations[n].output.files for n in chosen):
        from shared.storage.azure import AzureBlobStore
        blobs = AzureBlobStore.from_settings(os.environ)
    results: list[AggregationResult] = []
    try:
        client = client if client is not None else open_documents(project.settings)
        if own_engine:
            engine = target_engine(project, derived=lambda: sorted(tables))
        for name in chosen:
            results.append(_run_one(project, name, aggregations[name], client, blobs, engine, run_id))
    finally:
        if own_client and client is not None:
            client.close()
        if own_engine and engine is not None:
            engine.dispose()
    return results


def _run_one(project: Project, name: str, aggregation: Aggregation, client: Any, blobs: BlobStore | None,
             engine: sa.Engine | None, run_id: str) -> AggregationResult:
    result = AggregationResult(name)
    started = time.monotonic()
    try:
        documents = run_pipeline(client, aggregation)
        result.documents = len(documents)
        for fmt in aggregation.output.files:
            data = json_bytes(documents) if fmt == "json" else csv_bytes(documents)
            result.files.append(_publish(project, blobs, f"{name}.{fmt}", data))
        if aggregation.schema_table is not None:
            if engine is None:
                raise ReplaceError(f"aggregation {name}: no SQL target to write {aggregation.output.table} to")
            schema, table = aggregation.schema_table
            result.rows = replace_table(engine, schema, table, table_frame(documents), run_id=run_id)
            result.table = aggregation.output.table
    except (ReplaceError, DocumentStoreError, OSError) as exc:
        result.error = project.masker.mask(_short(exc))
    except Exception as exc:   # noqa: BLE001 - a server's OperationFailure, or mongomock's own errors
        result.error = project.masker.mask(f"the pipeline failed: {type(exc).__name__}: {_short(exc)}")
    result.seconds = time.monotonic() - started
    return result


def table_frame(documents: list[dict]) -> pd.DataFrame:
    """One row per document, one column per top-level field (union, first-seen order); nested
    values are stored as JSON text. Shape the documents with $project for BI-friendly columns."""
    columns = list(dict.fromkeys(key for doc in documents for key in doc))
    return pd.DataFrame.from_records([[doc.get(c) for c in columns] for doc in documents], columns=columns)


def _publish(project: Project, blobs: BlobStore | None, file_name: str, data: bytes) -> str:
    if project.settings.storage.mode == "azure":
        if blobs is None:
            raise OSError("the blob store for outputs is not configured")
        blobs.put(OUTPUTS, f"{FOLDER}/{file_name}", data)
        return f"{OUTPUTS}/{FOLDER}/{file_name}"
    path = Path(project.settings.output.folder) / FOLDER / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{file_name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return str(path)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _bson(value: Any) -> Any:
    """YAML gives dates for `2024-01-01`; BSON has only datetimes (UTC midnight here)."""
    if isinstance(value, dict):
        return {k: _bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bson(v) for v in value]
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, clock(), tzinfo=UTC)
    return value


def _python(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _python(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_python(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    return value
