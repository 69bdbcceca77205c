"""Blob drop (container `kspyder-inbox`): a JSON or CSV file dropped at
`kspyder-inbox/<source>/<model>/<name>` is validated against the model, PII-stripped and loaded
into the target by `shared.inbox.drops.ingest_file`, recorded in the run ledger as a run with trigger
`inbox` (the blob's name, never its contents).

Thin on purpose: check the name, read the blob, call `ingest_file`, log the counts. An exception
propagates: the host retries the blob and, after `maxDequeueCount` failures, reports it on the
`webjobs-blobtrigger-poison` queue; the ledger already holds the failed run and its error (which
names file, line and column, never a value). An unsafe name (a leading `/`, a control character,
a `.`/`..` or empty segment) fails before anything is read, with a warning naming the problem.

Event Grid delivers at least once: the blob's ETag (else a hash of its content) is passed as the
version, so a second delivery of the same upload is a no-op and a new upload of the file is loaded.

Trigger source: on the Flex Consumption plan only the Event Grid source is supported for blob
triggers, so the trigger declares `source=func.BlobSource.EVENT_GRID` and the deployment must
create an Event Grid subscription on the storage account (event `Microsoft.Storage.BlobCreated`,
subject filter `/blobServices/default/containers/kspyder-inbox/`) delivering to the function's
blob extension webhook. Locally, Azurite has no Event Grid: `python main.py host` polls the
container instead and delivers new or changed blobs itself (see devhost/blobs.py).
"""
from __future__ import annotations

import hashlib
import logging

import azure.functions as func
from azure.functions.blob import InputStream as BlobInputStream

from functions.common import CONNECTION, current_project, engine_factory, stores
from shared.chain.names import INBOX
from shared.inbox.drops import IngestError, check_name, ingest_file
from shared.inbox.names import shown_name
from shared.ledger import RunLedger

bp = func.Blueprint()
log = logging.getLogger("kspyder.functions")

PATH = f"{INBOX}/{{source}}/{{model}}/{{name}}"


def split_blob_name(blob_name: str) -> tuple[str, str, str]:
    """(source, model, name) of `kspyder-inbox/<source>/<model>/<name>` (the container prefix is
    optional; `name` may hold further `/`). IngestError for an unsafe name or another shape."""
    path = blob_name[len(INBOX) + 1:] if blob_name.startswith(INBOX + "/") else blob_name
    check_name(path)
    parts = path.split("/", 2)
    if len(parts) != 3:
        raise IngestError(f"inbox blob {shown_name(path)}: expected {INBOX}/<source>/<model>/<file name>")
    source, model, name = parts
    return source, model, name


def blob_version(blob: func.InputStream, data: bytes) -> str:
    """What tells one upload of a blob from the next: its ETag, or a hash of its content when the
    host gave no properties."""
    # the host hands over azure.functions.blob.InputStream; the abstract func.InputStream lacks properties
    properties = (blob.blob_properties if isinstance(blob, BlobInputStream) else None) or {}
    etag = properties.get("ETag") or properties.get("Etag") or properties.get("etag")
    return f"etag:{etag}" if etag else "sha256:" + hashlib.sha256(data).hexdigest()


@bp.function_name("inbox")
@bp.blob_trigger(arg_name="blob", path=PATH, connection=CONNECTION, source=func.BlobSource.EVENT_GRID)
def inbox(blob: func.InputStream) -> None:
    try:
        source, model, name = split_blob_name(blob.name or "")
    except IngestError as exc:
        log.warning("%s", exc)   # the reason, with the name scrubbed and escaped: the only trace of it
        raise
    project = current_project()
    data = blob.read()
    result = ingest_file(project, source, model, name, data, engine_factory(project)(), RunLedger(stores()[0]),
                         version=blob_version(blob, data))
    if result.skipped:
        log.info("inbox %s: this upload was loaded already (run %s): duplicate delivery ignored", result.file,
                 result.run_id)
        return
    log.info("inbox %s: %d records, %d rows into %s in %d batches (run %s)", result.file, result.records,
             result.rows, result.model, result.batches, result.run_id)
