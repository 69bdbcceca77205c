"""The measured child of a benchmark that times `main.py`: the command as `python main.py` runs it,
in a process that imports nothing else first (the benchmark's own module imports SQLAlchemy and
PyYAML with the collector running, which `main.py` never does), then what the parent needs as one
JSON line: the ledger's model seconds and this process's peak RSS.

    python -m benchmarks.cli_child MANIFESTS run|apply [--profile FILE]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from shared.peak_memory import own_peak_kib


def main(argv: list[str]) -> None:
    manifests, command = argv[0], argv[1]
    profile = argv[argv.index("--profile") + 1] if "--profile" in argv else None
    args = ["--manifests", manifests, *(["run"] if command == "run" else ["apply", "--auto-approve"])]
    from cli.main import cli  # what main.py imports first
    profiler = None
    if profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    try:
        cli.main(args, prog_name="main.py", standalone_mode=False)
    finally:
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
    if command != "run":
        print(json.dumps({"records": 0, "seconds": 0}))
        return
    [record] = [json.loads(p.read_text()) for p in (Path(manifests).parent / "storage").rglob("run.json")]
    models = record["summary"]["models"]
    print(json.dumps({"records": sum(m["records"] for m in models), "model_seconds": sum(m["seconds"] for m in models),
                      "seconds": 0, "peak_kib": own_peak_kib()}))


if __name__ == "__main__":
    main(sys.argv[1:])
