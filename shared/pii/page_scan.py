"""A run's pages scanned by the scan process (`scan_process.py`), one page in flight.

The extractor strips a page of everything but its scanned text columns, `start`s their scan, and
`finish`es it before the page leaves the extractor; between the two it works on the next page
while the child scans. A page never leaves unscanned: if the child fails or stops, that page and
every later one are scanned in this process instead (the same scrubbers, so the same result), and
the run carries one warning saying so.
"""
from __future__ import annotations

from collections.abc import Callable

from shared.pii.scan_process import ScanProcess, ScanProcessError
from shared.pii.stripper import PiiStripper

Warn = Callable[[str], None]


class PageScan:
    def __init__(self, stripper: PiiStripper, warn: Warn, where: str):
        self._stripper, self._warn, self._where = stripper, warn, where
        self._columns = stripper.scanned_columns
        self._process: ScanProcess | None = None
        self._started = False     # the child exists, or failed to start (then scanning stays here)
        self._in_flight = False
        self.peak_kib: int | None = None   # the child's peak RSS, once closed

    def start(self, records: list[dict]) -> None:
        """Send the scanned columns of `records` (already stripped of everything else)."""
        if not records:
            return
        process = self._child()
        if process is None:
            return
        columns = [(mode, [record[name] for record in records]) for name, mode in self._columns]
        try:
            process.send(columns)
            self._in_flight = True
        except ScanProcessError as exc:
            self._fail(exc)

    def finish(self, records: list[dict]) -> None:
        """Put the scanned values into `records` (the list given to `start`)."""
        if not records:
            return
        if self._in_flight and self._process is not None:
            self._in_flight = False
            try:
                changes = self._process.receive()
            except ScanProcessError as exc:
                self._fail(exc)
            else:
                for (name, _), column in zip(self._columns, changes, strict=True):
                    for position, value in column:
                        records[position][name] = value
                return
        for name, _ in self._columns:   # no child: scan here
            values = self._stripper.scan_values(name, [record[name] for record in records])
            for record, value in zip(records, values, strict=True):
                record[name] = value

    def close(self) -> None:
        if self._process is not None:
            process, self._process = self._process, None
            self.peak_kib = process.close()

    def _child(self) -> ScanProcess | None:
        if not self._started:
            self._started = True
            terms, key = self._stripper.scan_spec
            hashing = any(mode.partition(":")[0] == "hash" for _, mode in self._columns)
            try:   # the key only goes where it is used
                self._process = ScanProcess(terms, key if hashing else None)
            except (OSError, ScanProcessError) as exc:
                self._fail(exc)
        return self._process

    def _fail(self, exc: Exception) -> None:
        self._in_flight = False
        self._warn(f"{self._where}: {exc}; free text is scanned on the run's thread from here on")
        self.close()
