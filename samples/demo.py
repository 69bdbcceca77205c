"""The README's main job on a fresh machine: start the bundled sample API, create the sample ERP
database, extract every model of the demo manifests (PII stripped) to CSV and JSON Lines files,
and show a few records. Nothing else needs to be running."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from samples.sample_api.server import ApiConfig, SampleApi
from samples.sample_db import create_sample_db

ERP_DB = Path(".kspyder/sample_erp.db")
OUT = Path(".kspyder/demo")
DEMO_KEY = "demo-only-key-set-KSPYDER_PII_KEY-for-real-data"


def main() -> int:
    from shared.cli.main import cli

    if not ERP_DB.exists():
        create_sample_db(f"sqlite:///{ERP_DB}", orders=2000)
    if not os.environ.get("KSPYDER_PII_KEY"):
        os.environ["KSPYDER_PII_KEY"] = DEMO_KEY
        print("demo: KSPYDER_PII_KEY not set; using a demo-only hash key", file=sys.stderr)
    os.environ.setdefault("ERP_DB_URL", f"sqlite:///{ERP_DB}")
    with SampleApi(ApiConfig(customers=500, products=300, orders=400, events=250, tickets=120, rate=200, burst=20)) as api:
        os.environ["SAMPLE_API_URL"] = api.base_url
        print(f"demo: sample API on {api.base_url}", file=sys.stderr)
        for fmt in ("csv", "jsonl"):
            print(f"\n$ python main.py extract --out {fmt} --dest {OUT}", file=sys.stderr)
            code = run_cli(cli, ["extract", "--out", fmt, "--dest", str(OUT)])
            if code:
                return code
    show(OUT / "shop.customers.jsonl", 3)
    show(OUT / "erp.orders.jsonl", 2)
    print(f"\nAll files: {', '.join(sorted(p.name for p in OUT.iterdir() if not p.name.startswith('.')))} in {OUT}/")
    print("Next: edit manifests/connector_models.yml, then `python main.py validate` and `python main.py extract shop.customers`.")
    return 0


def run_cli(cli, args: list[str]) -> int:
    try:
        cli.main(args, prog_name="main.py", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def show(path: Path, count: int) -> None:
    print(f"\nFirst {count} records of {path.name} (PII stripped):")
    with path.open(encoding="utf-8") as handle:
        for _, line in zip(range(count), handle):
            print("  " + json.dumps(json.loads(line), ensure_ascii=False)[:300])


if __name__ == "__main__":
    sys.exit(main())
