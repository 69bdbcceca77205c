"""Load pages of a `store: mongo` model into collection `<model>` of database `<source>`.

Idempotent like the SQL loader: every document is a `ReplaceOne(upsert=True)` on `_id`, the
primary key (the key's value, or a sub-document `{k1: v1, k2: v2}` in the declared key order for
a compound key), so loading the same page twice, or pages in any order, converges to the same
collection; within one batch the later record of a key wins (the bulk write is ordered). Each
document also gets `_kspyder_run_id` and `_kspyder_loaded_at`, like SQL rows.

The interface is the SQL `Loader`'s (`check_drift`, `load`, `finish`), so a run and the queue
chain's Load step dispatch on the model's store and nothing else changes. Errors name the model,
the record position and the key field, never a document or a value.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID

import mongomock
from bson import Decimal128
from bson.errors import BSONError, InvalidDocument
from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, PyMongoError

from shared.config.models import ColumnType
from shared.config.project import ModelRef
from shared.errors import BadValue
from shared.extract.document_shape import field_parts, get_at, update_at
from shared.extract.records import converter_for
from shared.load.loader import LoadError
from shared.mongo.client import DocumentStoreError, is_embedded, open_documents
from shared.target.columns import LOADED_AT, RUN_ID, stored_column

DUPLICATE_KEY = 11000
# JSON (the queue chain's page blobs) carries these as text; the loader restores them by column
_RESTORED = (ColumnType.datetime, ColumnType.date, ColumnType.decimal, ColumnType.binary)
_TYPE_IN_MESSAGE = re.compile(r"of type: <class '([\w.]+)'>")


class DocumentLoader:
    """Upserts one model's documents; see the module docstring."""

    def __init__(self, client: Any, ref: ModelRef, *, run_id: str, redaction: str = "[REDACTED]",
                 durable: bool = False):
        self.ref, self.run_id = ref, run_id
        self.collection = client[ref.source_name][ref.name]
        # embedded store: write the files after every load, before the caller records the page as loaded
        self._flush = client.flush if durable and is_embedded(client) else None
        columns = ref.model.columns
        self._keys = [(k, field_parts(k, columns.get(k))) for k in ref.model.primary_key]
        self._restore = [(field_parts(name, col), converter_for(col)) for name, col in columns.items()
                         if col.type in _RESTORED and (stored := stored_column(name, col, redaction)) is not None
                         and stored.type == col.type]
        self._indexes_ready = False

    def check_drift(self) -> None:
        """Documents have no schema to drift from; this creates the declared indexes (idempotent)."""
        if self._indexes_ready:
            return
        for index in self.ref.model.indexes:
            keys = [(k[1:], DESCENDING) if k.startswith("-") else (k, ASCENDING) for k in index.keys]
            options = {"unique": index.unique, **({"name": index.name} if index.name else {})}
            try:
                self.collection.create_index(keys, **options)
            except OperationFailure as exc:
                raise LoadError(f"{self.ref.qualified}: index on {', '.join(index.keys)} cannot be created "
                                f"({_failure(exc)}): an index with that name or those keys exists with other "
                                "options, or existing documents break unique; drop it and load again") from None
            except PyMongoError as exc:
                raise LoadError(f"{self.ref.qualified}: document store unavailable: {_first_line(exc)}") from None
        self._indexes_ready = True

    def load(self, records: list[dict[str, Any]]) -> int:
        if not records:
            return 0
        self.check_drift()
        loaded_at = datetime.now(UTC)
        operations = []
        for position, record in enumerate(records):
            document = self._document(record, position)
            document[RUN_ID], document[LOADED_AT] = self.run_id, loaded_at
            operations.append(document)
        try:
            self._write(operations)
        except BulkWriteError as exc:
            raise LoadError(self._bulk_message(exc)) from None
        except (InvalidDocument, BSONError) as exc:
            found = _TYPE_IN_MESSAGE.search(str(exc))
            kind = f" of type {found.group(1)}" if found else ""
            raise LoadError(f"{self.ref.qualified}: a value{kind} cannot be stored in a document") from None
        except OperationFailure as exc:
            raise LoadError(f"{self.ref.qualified}: writing documents failed ({_failure(exc)})") from None
        except PyMongoError as exc:
            raise LoadError(f"{self.ref.qualified}: writing documents failed: {_first_line(exc)}") from None
        if self._flush is not None:
            try:
                self._flush()
            except DocumentStoreError as exc:
                raise LoadError(f"{self.ref.qualified}: {exc}") from None
        return len(operations)

    def _write(self, documents: list[dict[str, Any]]) -> None:
        if not isinstance(self.collection, mongomock.Collection):
            self.collection.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents], ordered=True)
            return
        # mongomock 4.3 cannot take current pymongo's ReplaceOne in bulk_write: one call per document
        for index, document in enumerate(documents):
            try:
                self.collection.replace_one({"_id": document["_id"]}, document, upsert=True)
            except DuplicateKeyError:
                raise BulkWriteError({"writeErrors": [{"index": index, "code": DUPLICATE_KEY}]}) from None

    def finish(self) -> None:
        """Nothing to clean up: every model of a document store has a key, so nothing is replaced per run."""

    def _document(self, record: dict[str, Any], position: int) -> dict[str, Any]:
        document: dict[str, Any] = bson_ready(record)
        for parts, convert in self._restore:
            update_at(document, parts, partial(_restored, convert=convert))
        values = []
        for name, parts in self._keys:
            value = get_at(document, parts)
            if value is None:
                raise LoadError(f"{self.ref.qualified}: record #{position} has no value for primary key '{name}'")
            values.append(value)
        document["_id"] = (values[0] if len(values) == 1
                           else {name: v for (name, _), v in zip(self._keys, values, strict=True)})
        return document

    def _bulk_message(self, exc: BulkWriteError) -> str:
        errors = exc.details.get("writeErrors") or [{}]
        first = errors[0]
        what = ("duplicate value in a unique index" if first.get("code") == DUPLICATE_KEY
                else f"error code {first.get('code', '?')}")
        return (f"{self.ref.qualified}: {len(errors)} document(s) not written, first at batch record "
                f"#{first.get('index', '?')}: {what}")


def bson_ready(value: Any) -> Any:
    """A copy BSON can encode: Decimal as Decimal128, a date as UTC midnight, tuples as lists, and
    what SQL drivers return beyond JSON's types (UUID, time of day) as text."""
    if isinstance(value, dict):
        return {k: bson_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [bson_ready(v) for v in value]
    if isinstance(value, Decimal):
        return Decimal128(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, (UUID, time)):
        return str(value)
    return value


def _restored(value: Any, convert: Callable[[Any], Any]) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return bson_ready(convert(value))
    except BadValue:
        return value


def _failure(exc: OperationFailure) -> str:
    return f"{exc.details.get('codeName', 'error')} {exc.code}" if exc.details else f"error {exc.code}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


class DocumentTarget:
    """A run's document store: opened on the first document model, closed once at the end
    (closing is what writes the embedded store to disk). `durable_loads`: every load writes the
    embedded store's files before returning (the queue chain marks a page loaded right after)."""

    def __init__(self, settings: Any, *, durable_loads: bool = False):
        self.settings, self.durable_loads = settings, durable_loads
        self.client: Any = None

    def loader(self, ref: ModelRef, run_id: str) -> DocumentLoader:
        if self.client is None:
            self.client = open_documents(self.settings)
        return DocumentLoader(self.client, ref, run_id=run_id, redaction=self.settings.pii.redaction,
                              durable=self.durable_loads)

    def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            client.close()
