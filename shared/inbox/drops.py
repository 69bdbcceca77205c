"""Blob drop: load one JSON or CSV file into its model's table, as a run of its own.

A dropped file goes through the same steps as an extracted page (the model's `RecordShaper`, its
`PiiStripper` and loader, batches of settings `load.batch_size` records: `shared/wiring.py`), so a
file is held to the manifests like any source.
What a drop means for keyed and keyless models, the formats, the once-per-upload claim and the
lease are user-facing: docs/functions.md, "Blob drop (`inbox`)". Names that are unsafe are refused
before anything is read; errors (`IngestError`) name the file (its shown form, `names.shown_name`),
the line or record number and the column, never a value, which may be PII.
"""
from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Generator, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, BinaryIO

import sqlalchemy as sa

from shared.config.child_tables import child_tables
from shared.config.models import ColumnType
from shared.config.project import ModelRef, Project
from shared.errors import ExtractError
from shared.extract.records import RecordShaper, compile_path
from shared.extract.types import Shaper
from shared.inbox.names import file_id as make_file_id
from shared.inbox.names import name_problem, shown_name
from shared.inbox.receipts import InboxReceipts
from shared.ledger import RunLedger, new_run_id
from shared.load.loader import Loader, LoadError, summarize_database_error
from shared.load.upsert import batch_writer
from shared.mongo.load import DocumentLoader, DocumentTarget
from shared.target.columns import RUN_ID
from shared.target.lease import Holding, LeaseHeld, LeaseLost, Leases, this_process
from shared.target.tables import model_table
from shared.wiring import ModelRun

TRIGGER = "inbox"
FORMATS = {".json": "json", ".jsonl": "jsonl", ".csv": "csv"}
WAIT = 30.0         # seconds a delivery waits for another one loading the same file


class IngestError(Exception):
    """A dropped file cannot be loaded. Names file, line or record, and column; never a value."""


class IngestBusy(IngestError):
    """Another delivery is still loading this file: retry later (the host does)."""


@dataclass
class IngestResult:
    run_id: str
    model: str          # source.model
    file: str           # <source>/<model>/<name>, shown form (PII scrubbed, escaped)
    format: str         # json | jsonl | csv
    records: int = 0    # records read from the file
    rows: int = 0       # rows written (the last of duplicate keys within a batch)
    batches: int = 0
    seconds: float = 0.0
    file_id: str = ""   # names.file_id: what a keyless model's rows of this file carry
    skipped: bool = False   # a duplicate delivery: this version was loaded already, by run_id
    changes: dict[str, int] = field(default_factory=dict)   # the end of the file's run (dispositions)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "model": self.model, "file": self.file, "file_id": self.file_id,
                "format": self.format, "records": self.records, "rows": self.rows, "batches": self.batches,
                "seconds": round(self.seconds, 3), **({"changes": self.changes} if self.changes else {})}


@dataclass
class _Item:
    """One raw record and where it came from, for error messages."""
    raw: Any
    where: str          # "line 3" or "record 3"
    position: int


def resolve_model(project: Project, source: str, model: str, file: str = "") -> ModelRef:
    """The model a drop path names; IngestError listing the valid sources or models otherwise."""
    prefix = f"inbox file {file}: " if file else ""
    config = project.sources.get(source)
    if config is None:
        raise IngestError(f"{prefix}unknown source '{shown_name(source)}' "
                          f"(sources: {', '.join(sorted(project.sources)) or 'none'})")
    if model not in config.models:
        raise IngestError(f"{prefix}unknown model '{shown_name(model)}' of source '{source}' "
                          f"(models of {source}: {', '.join(sorted(config.models)) or 'none'})")
    chosen = config.models[model]
    return ModelRef(source, config, model, chosen, chosen.pii_scan or project.settings.pii.scan)


def file_format(name: str, file: str | None = None) -> str:
    """json, jsonl or csv by the name's extension; IngestError naming `file` (default: name) otherwise."""
    lowered = name.lower()
    for suffix, kind in FORMATS.items():
        if lowered.endswith(suffix):
            return kind
    raise IngestError(f"inbox file {file or shown_name(name)}: unsupported file type; drop "
                      f"{', '.join(FORMATS)} files")


def check_name(path: str) -> None:
    """IngestError naming the problem (and the name only scrubbed and escaped) for an unsafe
    `<source>/<model>/<name>`."""
    problem = name_problem(path)
    if problem:
        raise IngestError(f"inbox blob {shown_name(path)} refused: {problem}")


def ingest_file(project: Project, source: str, model: str, name: str, data: bytes | BinaryIO,
                engine: sa.Engine, ledger: RunLedger, *, batch_size: int | None = None,
                run_id: str | None = None, version: str | None = None, wait: float = WAIT) -> IngestResult:
    """Load one dropped file into `source.model`; returns the counts. `data` is the file's bytes
    or a binary file object (read as a stream); `batch_size`: records read per batch (None: settings
    `load.batch_size`). `version` identifies this content of the file (the
    blob's ETag or a content hash): a delivery of the version last loaded is skipped
    (`result.skipped`); None loads whatever was loaded before. Raises IngestError (bad name, path,
    type or content), IngestBusy (another delivery held the file for `wait` seconds) or
    LoadError/TargetDriftError (the target refused), after recording the run as failed."""
    path = f"{source}/{model}/{name}"
    check_name(path)
    file = shown_name(path)
    kind = file_format(name, file)
    ref = resolve_model(project, source, model, file)
    if kind == "csv" and ref.documents:
        raise IngestError(f"inbox file {file}: {ref.qualified} stores whole documents (store: mongo): "
                          "drop JSON or JSON Lines, not CSV")
    if kind == "csv" and ref.model.history == "scd2" and child_tables(ref.name, ref.model):
        raise IngestError(f"inbox file {file}: {ref.qualified} keeps each version with its child tables "
                          "(history: scd2) and a CSV row carries no lists: drop JSON or JSON Lines, not CSV")
    pii_key = project.settings.pii.key
    run_id = run_id or new_run_id()
    file_id = make_file_id(path, pii_key.encode() if pii_key else None)
    result = IngestResult(run_id, ref.qualified, file, kind, file_id=file_id)
    receipts = InboxReceipts(ledger.store)
    claim = receipts.claim(ref.qualified, result.file_id, run_id, wait)
    if claim is None:
        raise IngestBusy(f"inbox file {file}: another delivery is loading this file (for over {wait:g}s); "
                         "retry later")
    try:
        done = receipts.loaded(ref.qualified, result.file_id) if version is not None else None
        if done is not None and done.get("version") == version:
            result.run_id, result.skipped = done.get("run_id") or "", True
            return result
        with _model_lease(project, engine, ref, run_id, wait, file):
            _run(project, ref, kind, data, engine, ledger, result, batch_size)
        receipts.record_loaded(claim, version, run_id)
    finally:
        receipts.release(claim)
    return result


@contextmanager
def _model_lease(project: Project, engine: sa.Engine, ref: ModelRef, run_id: str, wait: float,
                 file: str) -> Iterator[None]:
    """The model's table leased for the load, as a run leases it (`target/lease.py`): a drop never
    writes while a run, an apply or a rebuild changes the table. IngestBusy when another holds it
    past `wait` seconds. Documents are upserted by key and take no lease, as in a run."""
    if ref.documents:
        yield
        return
    try:
        with Holding(Leases(engine, project.settings.leases.ttl_seconds), run_id, this_process()) as holding:
            with holding.hold([ref.qualified], wait):
                yield
    except LeaseHeld as exc:
        raise IngestBusy(f"inbox file {file}: {exc}; retry later") from None
    except LeaseLost as exc:
        raise IngestError(f"inbox file {file}: {exc}") from None


def _run(project: Project, ref: ModelRef, kind: str, data: bytes | BinaryIO, engine: sa.Engine,
         ledger: RunLedger, result: IngestResult, batch_size: int | None) -> None:
    """The file as a run of the ledger: started, loaded, finished (failed with the error, re-raised)."""
    run_id, file = result.run_id, result.file
    started = time.monotonic()
    model_run = ModelRun(project, ref, run_id, ledger, None if ref.documents else engine)
    batch_size = batch_size or model_run.batch_size
    ledger.start(run_id, [ref.qualified], TRIGGER)
    status, error = "failed", None
    stack = ExitStack()
    try:
        if ref.documents:   # store: mongo: whole records as documents (shared/mongo)
            documents = DocumentTarget(project.settings)
            stack.callback(documents.close)
            sink: _Sink = _Upserts(model_run.document_loader(documents), model_run, result)
        elif ref.model.write_mode != "replace":   # merge, append, scd2: the file is a run of the model
            sink = _Upserts(model_run.table_loader(), model_run, result)
        else:
            sink = stack.enter_context(_FileRows(model_run, result))
        sink.check_drift()
        stripper = model_run.stripper()
        stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
        items = stack.enter_context(closing(_read(kind, stream, ref, file)))
        shaper = _shaper(ref, kind)
        batch: list[dict[str, Any]] = []
        for item in items:
            try:
                batch.append(stripper.apply_owned(shaper.shape(item.raw, item.position)))
            except ExtractError as exc:
                raise IngestError(f"inbox file {file}, {item.where}: {exc}") from None
            result.records += 1
            if len(batch) >= batch_size:
                sink.load(batch)
        sink.load(batch)
        sink.commit()
        if ref.documents:
            documents.close()   # the embedded store is written here: before the run counts as succeeded
        status = "succeeded"
    except LoadError as exc:
        error = f"inbox file {file}: {project.masker.mask(str(exc))}"
        raise type(exc)(error) from None
    except IngestError as exc:
        error = str(exc)
        raise
    finally:
        stack.close()
        result.seconds = time.monotonic() - started
        summary = {**result.as_dict(), "error": error}
        model_run.finish(summary)
        ledger.finish(run_id, status, summary)


class _Sink:
    """Where a file's batches go: upserts (keyed models, documents) or the file's own rows."""

    loader: Loader | DocumentLoader

    def check_drift(self) -> None:
        self.loader.check_drift()

    def load(self, batch: list[dict[str, Any]]) -> None: ...
    def commit(self) -> None: ...


class _Upserts(_Sink):
    """A keyed or appended model: each batch written in its own transaction (upserted, or staged for
    append and scd2) and marked loaded at once; the end applies the file's run (never soft deletes)."""

    def __init__(self, loader: Loader | DocumentLoader, model_run: ModelRun, result: IngestResult):
        self.loader, self.model_run, self.result = loader, model_run, result

    def load(self, batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        result = self.result
        result.rows += self.loader.load(batch)
        self.model_run.mark(result.batches, result.batches, "fetched", len(batch))
        self.model_run.mark(result.batches, result.batches, "loaded", len(batch))
        result.batches += 1
        batch.clear()

    def commit(self) -> None:
        if isinstance(self.loader, Loader):
            self.result.changes = self.loader.finish(complete=False).as_dict()   # a file is never the whole source
        else:
            self.loader.finish()


class _FileRows(_Sink):
    """`write: replace`: the file's earlier rows deleted and its new rows written (upserted by key,
    when the model has one) in one
    transaction, held open from the first batch to `commit` (a failure rolls it all back). Rows are
    prepared by the model's `Loader`, built with the file's id as its run id, so each row carries it
    in `_kspyder_run_id`; they are written here, on this transaction, by the dialect's writer."""

    def __init__(self, model_run: ModelRun, result: IngestResult):
        engine, ref, redaction = model_run.table_engine(), model_run.ref, model_run.project.settings.pii.redaction
        self.engine, self.ref, self.model_run, self.result = engine, ref, model_run, result
        self.loader: Loader = model_run.table_loader(tag=result.file_id)
        # the loader only prepares rows here, it writes none: no run staging table for it to make
        self.loader.staged_elsewhere()
        table = model_table(sa.MetaData(), ref, redaction, engine.dialect.name)
        self._table = table
        self._writer = batch_writer(table, list(ref.model.primary_key), engine.dialect)   # keyed: upserted
        self._open: tuple[sa.Connection, sa.RootTransaction] | None = None   # from the first batch on
        self._pending: list[int] = []      # records per batch, marked loaded once committed

    def __enter__(self) -> _FileRows:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._open is not None:
            connection, transaction = self._open
            if transaction.is_active:
                transaction.rollback()
            connection.close()

    def load(self, batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        result = self.result
        with self._database_errors("writing the file's rows"):
            connection, _ = self._begin()
            for prepared in self.loader.batches(batch):
                self._writer.write(connection, prepared.rows)
                result.rows += len(prepared.rows)
        self.model_run.mark(result.batches, result.batches, "fetched", len(batch))
        self._pending.append(len(batch))
        result.batches += 1
        batch.clear()

    def commit(self) -> None:
        with self._database_errors("replacing the file's rows"):
            _, transaction = self._begin()   # an empty file still replaces the file's earlier rows (with none)
            transaction.commit()
        for index, records in enumerate(self._pending):
            self.model_run.mark(index, index, "loaded", records)

    def _begin(self) -> tuple[sa.Connection, sa.RootTransaction]:
        if self._open is None:
            connection = self.engine.connect()
            try:
                self._open = connection, connection.begin()
            except BaseException:
                connection.close()   # __exit__ closes only what _open holds
                raise
            statement = sa.delete(self._table).where(self._table.c[RUN_ID] == self.result.file_id)
            connection.execute(statement)
        return self._open

    def _database_errors(self, doing: str) -> _DatabaseErrors:
        return _DatabaseErrors(self.engine, f"{self.ref.qualified}: {doing} failed and was rolled back")


class _DatabaseErrors:
    """A driver error as a LoadError that names the model and the driver's first line only."""

    def __init__(self, engine: sa.Engine, what: str):
        dbapi = getattr(engine.dialect, "loaded_dbapi", None)
        driver_error = getattr(dbapi, "Error", None)
        self.errors = (sa.exc.DBAPIError,) + ((driver_error,) if isinstance(driver_error, type) else ())
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc is not None and isinstance(exc, self.errors):
            raise LoadError(f"{self.what}: {summarize_database_error(exc)}") from None


def _shaper(ref: ModelRef, kind: str) -> Shaper:
    """CSV rows arrive keyed by column name (headers are mapped first), so the CSV shaper reads each
    column by its name; JSON records are read by the columns' paths, as API records are."""
    columns = ref.model.columns
    if kind == "csv":
        columns = {name: column.model_copy(update={"path": None}) for name, column in columns.items()}
    if ref.documents:   # JSON only (CSV is refused): records kept whole
        from shared.extract.document_shape import DocumentShaper
        return DocumentShaper(ref.source_name, ref.name, columns, ref.model.primary_key)
    # a JSON record's nested lists fill its child tables; a CSV row has none, and leaves them as they are
    children = child_tables(ref.name, ref.model) if kind != "csv" else ()
    return RecordShaper(ref.source_name, ref.name, columns, ref.model.primary_key, children=children)


# ---------------------------------------------------------------- readers
def _read(kind: str, stream: BinaryIO, ref: ModelRef, file: str) -> Generator[_Item, None, None]:
    if kind == "csv":
        return _read_csv(stream, ref, file)
    if kind == "jsonl":
        return _read_lines(stream, file, 1)
    return _read_json(stream, ref, file)


def _text_lines(stream: BinaryIO, file: str, first_line: int) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(stream, start=first_line):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise IngestError(f"inbox file {file}, line {number}: not UTF-8 text") from None
        yield number, text


def _read_lines(stream: BinaryIO, file: str, first_line: int,
                first: tuple[int, str] | None = None) -> Generator[_Item, None, None]:
    lines = _text_lines(stream, file, first_line)
    if first is not None:
        lines = _chain_one(first, lines)
    for number, text in lines:
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise IngestError(f"inbox file {file}, line {number}: not valid JSON ({_json_reason(exc)})") from None
        yield _Item(value, f"line {number}", number)


def _chain_one(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest


def _json_reason(exc: ValueError) -> str:
    """json's own message says where (line, column, char), never the text it choked on."""
    return exc.msg if isinstance(exc, json.JSONDecodeError) else "undecodable"


def _read_json(stream: BinaryIO, ref: ModelRef, file: str) -> Generator[_Item, None, None]:
    first_line = stream.readline()
    try:
        first_text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IngestError(f"inbox file {file}, line 1: not UTF-8 text") from None
    head = first_text.lstrip()
    records_path = getattr(ref.model, "records", None)
    if head.startswith("{"):
        try:
            value = json.loads(first_text)
        except ValueError:
            value = None
        rest = stream.read()
        is_wrapper = (isinstance(value, dict) and records_path and not rest.strip()
                      and isinstance(compile_path(records_path)(value), list))
        if value is not None and not is_wrapper:   # JSON Lines in a .json file
            yield from _read_lines(io.BytesIO(rest), file, 2, first=(1, first_text))
            return
        whole = first_line + rest
    else:
        whole = first_line + stream.read()
    if not whole.strip():
        return
    try:
        document = json.loads(whole.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise IngestError(f"inbox file {file}: not UTF-8 text") from None
    except ValueError as exc:
        raise IngestError(f"inbox file {file}: not valid JSON ({_json_reason(exc)})") from None
    if isinstance(document, dict):
        if not records_path:
            raise IngestError(f"inbox file {file}: expected a JSON array of records or JSON Lines "
                              f"(model {ref.qualified} declares no records path for a wrapper object)")
        records = compile_path(records_path)(document)
        if not isinstance(records, list):
            raise IngestError(f"inbox file {file}: expected a list of records at '{records_path}'")
    elif isinstance(document, list):
        records = document
    else:
        raise IngestError(f"inbox file {file}: expected a JSON array of records, JSON Lines"
                          f"{' or an object with ' + repr(records_path) if records_path else ''}")
    del document
    for number, raw in enumerate(records, start=1):
        yield _Item(raw, f"record {number}", number)


def _read_csv(stream: BinaryIO, ref: ModelRef, file: str) -> Generator[_Item, None, None]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    try:
        try:
            headers = reader.fieldnames or []
        except UnicodeDecodeError:
            raise IngestError(f"inbox file {file}, line 1: not UTF-8 text") from None
        except csv.Error as exc:
            raise IngestError(f"inbox file {file}, line 1: not valid CSV ({exc})") from None
        columns = ref.model.columns
        by_header: dict[str, str] = {}
        for name, column in columns.items():   # a column is found by its path, else by its name
            for header in (column.path or name, name):
                if header in headers and header not in by_header:
                    by_header[header] = name
                    break
        found = set(by_header.values())
        missing = [k for k in ref.model.primary_key if k not in found]
        if missing:
            raise IngestError(f"inbox file {file}, line 1: the header row lacks the primary key column(s) "
                              f"{', '.join(missing)} of {ref.qualified}")
        if not found:
            raise IngestError(f"inbox file {file}, line 1: the header row names none of the columns of {ref.qualified} "
                              f"({', '.join(columns)})")
        json_columns = {name for name, column in columns.items() if column.type == ColumnType.json}
        pairs = list(by_header.items())
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise IngestError(f"inbox file {file}, after line {reader.line_num}: not UTF-8 text") from None
            except csv.Error as exc:
                raise IngestError(f"inbox file {file}, line {reader.line_num}: not valid CSV ({exc})") from None
            line = reader.line_num
            if None in row:
                raise IngestError(f"inbox file {file}, line {line}: more values than header columns")
            raw: dict[str, Any] = {}
            for header, name in pairs:
                value = row.get(header)
                if value == "" or value is None:
                    value = None
                elif name in json_columns:
                    try:
                        value = json.loads(value)
                    except ValueError:
                        raise IngestError(f"inbox file {file}, line {line}, column '{name}': "
                                          "expected JSON text") from None
                raw[name] = value
            yield _Item(raw, f"line {line}", line)
    finally:
        try:
            text.detach()   # leave the caller's stream open: a TextIOWrapper closes it when collected
        except ValueError:
            pass
