"""Record writers. Files are written to a temporary name and renamed on success, so a failed run
never leaves a half-written file in place of the last good one ("loses nothing")."""
from __future__ import annotations

import base64
import csv
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

FileFormat = Literal["jsonl", "json", "csv"]
FORMATS: tuple[str, ...] = ("jsonl", "json", "csv")
SUFFIX = {"jsonl": ".jsonl", "json": ".json", "csv": ".csv"}


def json_default(value: Any) -> Any:
    """Datetimes as ISO 8601 (UTC), dates as YYYY-MM-DD, decimals as strings to keep their precision,
    binary columns as base64 text (standard alphabet, padded)."""
    if type(value) is datetime:  # the most common non-JSON type first: this runs per value
        return value.isoformat()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


# One encoder for every record: json.dumps with options would build a new one per call.
_ENCODER = json.JSONEncoder(default=json_default, ensure_ascii=False, separators=(",", ":"))
dumps = _ENCODER.encode


class RecordWriter(ABC):
    """Writes the records of one model; `close()` publishes, `abort()` discards."""

    @abstractmethod
    def write(self, records: Iterable[dict[str, Any]]) -> None:
        """Append records (one page at a time: memory stays bounded by a page)."""

    # Optional hooks: a writer with nothing to publish or discard keeps these no-ops.
    def close(self) -> None:  # noqa: B027
        pass

    def abort(self) -> None:  # noqa: B027
        pass

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class JsonLinesStream(RecordWriter):
    """One JSON object per line on a stream (stdout): pipe-friendly."""

    def __init__(self, stream: IO[str]):
        self._stream = stream

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        self._stream.write("".join(dumps(r) + "\n" for r in records))

    def close(self) -> None:
        self._stream.flush()


class _AtomicFile(RecordWriter):
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self._tmp = Path(tmp)
        self._file = os.fdopen(fd, "w", encoding="utf-8", newline="")

    def close(self) -> None:
        self._finish()
        self._file.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)

    def _finish(self) -> None:
        pass


class JsonLinesFile(_AtomicFile):
    def write(self, records: Iterable[dict[str, Any]]) -> None:
        self._file.write("".join(dumps(r) + "\n" for r in records))


class JsonArrayFile(_AtomicFile):
    """A JSON array, streamed: memory stays bounded by a page, whatever the file size."""

    def __init__(self, path: Path):
        super().__init__(path)
        self._file.write("[")
        self._first = True

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self._file.write(("\n" if self._first else ",\n") + dumps(record))
            self._first = False

    def _finish(self) -> None:
        self._file.write("\n]\n" if not self._first else "]\n")


class CsvFile(_AtomicFile):
    """Flat CSV with the model's column names; json columns are written as JSON text, binary as base64."""

    def __init__(self, path: Path, columns: list[str]):
        super().__init__(path)
        self._writer = csv.writer(self._file)
        self._writer.writerow(columns)
        self._columns = columns

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        self._writer.writerows([_csv_cell(r.get(c)) for c in self._columns] for r in records)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=json_default, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def file_writer(fmt: FileFormat, folder: str | os.PathLike, name: str, columns: list[str]) -> RecordWriter:
    """A writer for `<folder>/<name>.<ext>`; `name` is `source.model`."""
    path = Path(folder) / f"{name}{SUFFIX[fmt]}"
    if fmt == "csv":
        return CsvFile(path, columns)
    if fmt == "json":
        return JsonArrayFile(path)
    return JsonLinesFile(path)
