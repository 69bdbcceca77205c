"""The scan process's own side (see `scan_process.py` for the protocol): a loop that answers scan
requests with the values that changed. Imports nothing but the standard library's smallest
modules and the detectors: this module is all the child loads besides them."""
from __future__ import annotations

import pickle
import struct
import sys
from typing import IO, Any

from shared.peak_memory import own_peak_kib

_LENGTH = struct.Struct("!Q")
Changes = list[tuple[int, Any]]   # (position in the values sent, scanned value) for each value that changed


def write_message(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def read_message(stream: IO[bytes]) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    size, = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)   # noqa: S301 - only from our own parent or child (scan_process.py)


def serve(read: IO[bytes] | None = None, write: IO[bytes] | None = None) -> None:
    """The child's loop: set up, then answer every scan request until "close" or end of input."""
    read = read or sys.stdin.buffer
    write = write or sys.stdout.buffer
    try:
        from shared.detect.scrub import scrubbers as build_scrubbers
        _, terms, key = read_message(read)
        scrubbers = build_scrubbers(terms, key)
        while True:
            message = read_message(read)
            if message[0] == "close":
                write_message(write, ("bye", own_peak_kib()))
                return
            answer: tuple[str, object]
            try:
                answer = ("ok", [_changes(scrubbers[mode], values) for mode, values in message[1]])
            except Exception as exc:   # noqa: BLE001 - reported by type only: messages may quote the text
                answer = ("error", type(exc).__name__)
            write_message(write, answer)
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return   # the parent went away or was interrupted: nothing left to answer


def _changes(scrub: Any, values: list) -> Changes:
    changes: Changes = []
    for position, value in enumerate(values):
        if isinstance(value, str):   # as scrub.text_column: other values are left as they are
            scanned = scrub(value)
            if scanned is not value and scanned != value:
                changes.append((position, scanned))
    return changes
