"""An incremental model against the sample API: a full run of 200,000 customers, then 0.1% of them
changed, then an incremental run, into the embedded SQLite target, in one process.

The sample API's customers take `updated_since` and carry `updated_at` (samples/sample_api); the
model sends its committed cursor as `updated_since`. The incremental run must transfer at most 1%
of the records and take at most 5% of the full run's time; both ratios are measured here, in the
same run (the API serves from a thread of this process, for both runs alike).

    python -m benchmarks.incremental_bench [--records 200000] [--quick]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import yaml

from samples.sample_api import data
from samples.sample_api.server import ApiConfig, SampleApi
from shared.config.project import load_project
from shared.ledger import RunLedger
from shared.pipeline import run_models
from shared.schema.apply import PlanStamp, apply_stamped
from shared.schema.plan import PlanOptions, compute_plan
from shared.storage import LocalBlobStore
from shared.target.dialects import create_target_engine

RECORDS, QUICK_RECORDS = 200_000, 20_000
CHANGED = 0.001
PER_PAGE = 1000
TARGETS = {"records": 0.01, "seconds": 0.05}
KEY = "benchmark-only-pii-key-0123456789"


def manifests(folder: Path, base_url: str, target: Path) -> Path:
    model = {"path": "/v1/customers", "records": "data", "primary_key": ["id"], "pii_scan": "off",
             "pagination": {"type": "page_number", "size_param": "per_page", "size": PER_PAGE,
                            "total_pages_path": "meta.total_pages"},
             "columns": {"id": {"type": "integer"}, "updated_at": {"type": "datetime"},
                         "status": {"type": "string", "length": 20},
                         "city": {"type": "string", "path": "address.city", "length": 100},
                         "balance": {"type": "decimal", "precision": 12, "scale": 2}},
             "incremental": {"cursor_path": "updated_at", "param": "updated_since",
                             "initial_value": "2024-01-01T00:00:00Z", "sorted": "asc"}}
    folder.mkdir(parents=True)
    (folder / "connector_models.yml").write_text(yaml.safe_dump(
        {"sources": {"shop": {"type": "api", "base_url": base_url, "models": {"customers": model}}}}, sort_keys=False))
    (folder / "settings.yml").write_text(yaml.safe_dump({"target_url": f"sqlite:///{target}",
                                                         "storage": {"root": str(folder.parent / "storage")}}))
    return folder


def measure(records: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="kspyder-incremental-") as tmp:
        config = ApiConfig(customers=records)
        with SampleApi(config) as api:
            target = Path(tmp) / "target.db"
            project = load_project(manifests(Path(tmp) / "manifests", api.base_url, target),
                                   env={"KSPYDER_PII_KEY": KEY})
            engine = create_target_engine(f"sqlite:///{target}", ["shop"])
            try:
                with engine.connect() as connection:
                    plan = compute_plan(connection, project, PlanOptions())
                apply_stamped(engine, project, PlanStamp.of(plan))
                ledger = RunLedger(LocalBlobStore(Path(tmp) / "ledger"))
                runs = {}
                for label in ("full", "incremental"):
                    if label == "incremental":   # 0.1% of the customers changed after the full run
                        later = data.customer_updated(records) + timedelta(hours=1)
                        for i in range(1, records + 1, round(1 / CHANGED)):   # spread over the ids
                            config.changes[i] = later + timedelta(seconds=i)
                    started = time.perf_counter()
                    summary = run_models(project, project.models(), engine=engine, ledger=ledger)
                    seconds = time.perf_counter() - started
                    if not summary.ok:
                        raise RuntimeError(summary.render())
                    runs[label] = {"records": summary.results[0].stats.records, "seconds": seconds}
            finally:
                engine.dispose()
    return runs


def main(argv: list[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.incremental_bench")
    parser.add_argument("--records", type=int, help=f"customers (default {RECORDS:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RECORDS:,} customers: a smoke run")
    args = parser.parse_args(argv or [])
    records = args.records or (QUICK_RECORDS if args.quick else RECORDS)
    print(f"incremental benchmark: {records:,} customers from the sample API into SQLite, then {CHANGED:.1%} "
          f"changed, then an incremental run")
    runs = measure(records)
    full, incremental = runs["full"], runs["incremental"]
    record_ratio = incremental["records"] / full["records"]
    time_ratio = incremental["seconds"] / full["seconds"]
    for label, run in runs.items():
        print(f"  {label + ' run':<20} {run['records']:>10,} records {run['seconds']:>8.2f} s")
    met = {"records": record_ratio <= TARGETS["records"], "seconds": time_ratio <= TARGETS["seconds"]}
    print(f"  {'records transferred':<20} {record_ratio:>9.2%} of the full run (target <= {TARGETS['records']:.0%}: "
          f"{'met' if met['records'] else 'MISSED'})")
    print(f"  {'time':<20} {time_ratio:>9.2%} of the full run (target <= {TARGETS['seconds']:.0%}: "
          f"{'met' if met['seconds'] else 'MISSED'})")
    if records < RECORDS:
        print(f"  ({records:,} customers: the targets are for {RECORDS:,}; a smoke run only)")
        return True
    return all(met.values())


if __name__ == "__main__":
    import sys
    sys.exit(0 if main(sys.argv[1:]) else 1)
