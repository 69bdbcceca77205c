"""Run one measured pipeline in its own child process and read that process's peak RSS.

Each pipeline gets a fresh interpreter so that one pipeline's memory (or its imports) never shows
up in another's figure. The child prints its result as one JSON object on its last line of standard
output; a child that adds `"peak_kib": own_peak_kib()` to it is measured by that, its own high-water
mark since it started (VmHWM of its own address space). Otherwise the peak comes from `os.wait4`,
the usage of exactly the child it reaps; but Linux starts a child's `ru_maxrss` at its parent's
resident size when it forks (and keeps it across exec), so a large parent, such as
`python -m benchmarks` with every benchmark imported, would raise every child's figure to its own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from shared.peak_memory import own_peak_kib

__all__ = ["ChildFailed", "Measured", "own_peak_kib", "run_measured"]


class ChildFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Measured:
    result: dict[str, Any]   # what the child printed: at least "records" and "seconds"
    peak_mb: float           # the child's peak resident set size (VmHWM), in MiB

    @property
    def rate(self) -> float:
        return self.result["records"] / self.result["seconds"]


def run_measured(argv: list[str], *, python: str = sys.executable, env: dict[str, str] | None = None,
                 cwd: str | None = None) -> Measured:
    """`python argv...` to completion; its stderr is shown only when it fails."""
    with tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([python, *argv], stdout=subprocess.PIPE, stderr=err, text=True,
                                   env={**os.environ, **(env or {})}, cwd=cwd)
        out = process.stdout.read()
        process.stdout.close()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)   # reaped here, not by Popen
        if process.returncode != 0:
            err.seek(0)
            raise ChildFailed(f"{' '.join(argv[:3])} exited with {process.returncode}:\n{err.read()[-3000:]}")
    lines = out.strip().splitlines()
    if not lines:
        raise ChildFailed(f"{' '.join(argv[:3])} printed no result")
    result = json.loads(lines[-1])
    peak_kib = result.get("peak_kib") or usage.ru_maxrss   # Linux reports KiB
    return Measured(result, peak_kib / 1024)
