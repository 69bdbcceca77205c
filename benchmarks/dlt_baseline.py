"""The dlt baseline: dlt's `rest_api` source merging the benchmark API into PostgreSQL.

dlt must never become a dependency of kspyder, so it lives in a virtualenv of its own,
`.venv-bench/`, that `bench_python()` creates on first use. This file has two halves: the helpers
above `child()` run in the project's interpreter and import only the standard library; `child()`
runs inside `.venv-bench` (`.venv-bench/bin/python benchmarks/dlt_baseline.py ...`) and imports dlt.

The pipeline is what a dlt user would write for this API: the page-number paginator, `data` as the
record list, `primary_key: id` and `write_disposition: merge`, default schema inference (so
`address` is flattened into `address__*` columns, `tags` becomes a child table, and every field is
loaded, not just the twelve the kspyder model declares).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DLT_VERSION = "1.31.0"    # pinned: `pip index versions dlt` listed 1.31.0 as the newest on 2026-11-24
VENV = Path(__file__).resolve().parent.parent / ".venv-bench"


def bench_python() -> str:
    """The interpreter of `.venv-bench` with dlt installed; raises RuntimeError saying why not."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", f"import dlt, psycopg2; assert dlt.__version__ == {DLT_VERSION!r}"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return str(python)
    requirement = f"dlt[postgres]=={DLT_VERSION}"
    steps = {"python -m venv .venv-bench": [sys.executable, "-m", "venv", str(VENV)],
             f"pip install {requirement}": [str(python), "-m", "pip", "install", "--quiet",
                                            "--disable-pip-version-check", requirement]}
    for name, step in steps.items():
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"`{name}` timed out") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"`{name}` failed: {last}")
    return str(python)


def child() -> None:
    """Inside `.venv-bench`: load every page, print {"records", "seconds"} as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--postgres", required=True, help="postgresql://... (no driver suffix)")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--per-page", type=int, required=True)
    args = parser.parse_args()

    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source({
        "client": {"base_url": args.api, "paginator": {"type": "page_number", "base_page": 1, "page_param": "page",
                                                       "total_path": "meta.total_pages"}},
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [{"name": "customers", "endpoint": {"path": "v1/customers", "data_selector": "data",
                                                         "params": {"per_page": args.per_page}}}],
    })
    with tempfile.TemporaryDirectory() as pipelines_dir:
        pipeline = dlt.pipeline(pipeline_name="kspyder_bench", pipelines_dir=pipelines_dir, dataset_name=args.dataset,
                                destination=dlt.destinations.postgres(credentials=args.postgres))
        started = time.perf_counter()
        pipeline.run(source)
        seconds = time.perf_counter() - started
        with pipeline.sql_client() as client:
            [(count,)] = client.execute_sql(f"SELECT COUNT(*) FROM {args.dataset}.customers")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # the project's stdlib-only helper
    from shared.peak_memory import own_peak_kib
    print(json.dumps({"records": count, "seconds": seconds, "peak_kib": own_peak_kib()}))


if __name__ == "__main__":
    child()
