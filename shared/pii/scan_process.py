"""The free-text scan (`pii_scan`) in a second process, so that a run uses a second CPU core.

A run's thread decodes, shapes, strips and fits every record; the free-text scan is the largest
part of that work (regex passes that hold the interpreter lock, so a thread would not help;
figures in docs/benchmarks.md). The scan is a pure function of the text, the model's terms and the PII key,
which makes it cheap to hand over: the texts of a page go to a child interpreter, and what comes
back is only the values that changed.

The child (`scan_child.py`) is lean on purpose: `python -S` and only the detector modules (no
site-packages, no manifest models), because its memory counts in the run's footprint.

Protocol, over the child's stdin/stdout: frames of an 8-byte big-endian length and a pickle.
Pickles are only ever read from our own child or parent. Messages:
  parent: ("setup", terms, key)  then  ("scan", [(mode, values), ...]) ...  then  ("close",)
  child:  ("ok", [[(index, new value), ...], ...])  or  ("error", exception type name)  ...
          and ("bye", peak RSS in KiB or None) to "close".
Nothing the child says carries a value it was not asked to scan, and its errors carry only a type
name: an exception's message could quote the text. One request is in flight at a time, so neither
side ever waits on a full pipe while the other does.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from shared.pii.scan_child import Changes
from shared.pii.scan_child import read_message as _read
from shared.pii.scan_child import write_message as _write

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); sys.path += sys.argv[2:]; "
          "from shared.pii.scan_child import serve; serve()")
# The libraries a column's context imports on first use (phones.py, national_ids.py): their folders
# go at the end of the child's path, so it can import them, and imports nothing else from there.
_CONTEXT_LIBRARIES = ("phonenumbers", "stdnum")


def _library_folders() -> list[str]:
    from importlib.util import find_spec
    folders = []
    for name in _CONTEXT_LIBRARIES:
        spec = find_spec(name)
        if spec is not None and spec.origin:
            folders.append(os.path.dirname(os.path.dirname(spec.origin)))
    return list(dict.fromkeys(folders))
# What a broken pipe or a dead child shows as: the write fails, the read ends early or garbled.
_PIPE_ERRORS = (OSError, EOFError, pickle.UnpicklingError, ValueError)
_T = TypeVar("_T")
CLOSE_TIMEOUT = 10.0   # seconds a closing child gets before it is killed


class ScanProcessError(RuntimeError):
    """The scan process could not answer; the caller scans in its own process instead."""


class ScanProcess:
    """The parent's side: `send` a page's columns, then `receive` what changed, one page at a time."""

    def __init__(self, terms: Sequence[str], key: bytes | None):
        # our own interpreter with fixed arguments, nothing from outside
        self._process = subprocess.Popen([sys.executable, "-S", "-c", _CHILD, _ROOT, *_library_folders()],  # noqa: S603
                                         stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, close_fds=True)
        self._sizes: list[int] = []   # values sent per column of the request in flight (none: empty)
        try:
            stdin, stdout = self._process.stdin, self._process.stdout
            if stdin is None or stdout is None:   # never with PIPE for both
                raise ScanProcessError("the scan process has no pipes")
            self._stdin, self._stdout = stdin, stdout
            self._call(lambda: _write(stdin, ("setup", tuple(terms), key)))
        except ScanProcessError:
            self._process.kill()
            self._process.wait()
            raise

    def send(self, columns: list[tuple[str, list]]) -> None:
        """Start scanning `columns`, (scan mode, values) each; `receive` gets the result."""
        if self._sizes:
            raise ScanProcessError("a scan is already in flight")
        self._sizes = [len(values) for _, values in columns]
        self._call(lambda: _write(self._stdin, ("scan", columns)))

    def receive(self) -> list[Changes]:
        """Per column sent: (position, new value) for every value the scan changed."""
        sizes, self._sizes = self._sizes, []
        answer = self._call(lambda: _read(self._stdout))
        if not (isinstance(answer, tuple) and len(answer) == 2):
            raise ScanProcessError("the scan process sent an unexpected answer")
        kind, body = answer
        if kind == "error":
            raise ScanProcessError(f"the scan process failed ({body})")
        if kind != "ok" or len(body) != len(sizes) or any(
                any(not 0 <= position < size for position, _ in changes)
                for changes, size in zip(body, sizes, strict=True)):
            raise ScanProcessError("the scan process sent an unexpected answer")
        checked: list[Changes] = body
        return checked

    def close(self) -> int | None:
        """Stop the child; returns its peak RSS in KiB when it said (None if it could not)."""
        process, peak = self._process, None
        try:
            if self._sizes:   # a page's answer still in the pipe (the run stopped early): read past it
                self._sizes = []
                _read(self._stdout)
            _write(self._stdin, ("close",))
            answer = _read(self._stdout)
            if isinstance(answer, tuple) and answer[0] == "bye":
                peak = answer[1]
        except _PIPE_ERRORS:
            pass
        for stream in (self._stdin, self._stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            process.wait(CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return peak

    def _call(self, operation: Callable[[], _T]) -> _T:
        try:
            return operation()
        except _PIPE_ERRORS as exc:
            code = self._process.poll()
            state = f"exited with code {code}" if code is not None else type(exc).__name__
            raise ScanProcessError(f"the scan process stopped ({state})") from None
