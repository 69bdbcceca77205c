"""A process's own peak memory: what the scan process reports when it closes, and what each
benchmark child reports of itself. Standard library only (the scan process and the dlt
benchmark's virtualenv import it without the project's dependencies)."""
from __future__ import annotations


def own_peak_kib() -> int | None:
    """This process's peak resident set size since its exec, in KiB (None off Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
