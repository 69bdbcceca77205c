"""The README's main job on a fresh machine: start the bundled sample API, create the sample ERP
database, then `main.py run --apply` loads every model of the demo manifests, PII stripped, into
the embedded SQLite target, `main.py transform` builds the derived tables of
manifests/transformations.yml, and queries show the result. Nothing else needs to be running."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import sqlalchemy as sa

from samples.sample_api.server import ApiConfig, SampleApi
from samples.sample_db import create_sample_db

STATE = Path(".kspyder")
ERP_DB = STATE / "sample_erp.db"
DEMO_KEY = "demo-only-key-set-KSPYDER_PII_KEY-for-real-data"
QUERIES = {
    "Active customers by city (shop.customers; names hashed, e-mails dropped)":
        "SELECT city, COUNT(*) AS customers, ROUND(SUM(balance), 2) AS balance FROM shop.customers "
        "GROUP BY city ORDER BY customers DESC, city LIMIT 5",
    "Orders by status (erp.orders; customer e-mails hashed)":
        "SELECT status, COUNT(*) AS orders, ROUND(SUM(amount), 2) AS amount FROM erp.orders GROUP BY status ORDER BY orders DESC",
}
TRANSFORMED = {
    "Monthly revenue (analytics.monthly_revenue, built by manifests/transformations.yml)":
        "SELECT month, city, currency, revenue, orders FROM analytics.monthly_revenue "
        "WHERE city <> '(unknown)' ORDER BY month DESC, revenue DESC LIMIT 5",
}


def main() -> int:
    from cli.main import cli

    if not ERP_DB.exists():
        create_sample_db(f"sqlite:///{ERP_DB}", orders=2000)
    if not os.environ.get("KSPYDER_PII_KEY"):
        os.environ["KSPYDER_PII_KEY"] = DEMO_KEY
        print("demo: KSPYDER_PII_KEY not set; using a demo-only hash key", file=sys.stderr)
    os.environ.setdefault("ERP_DB_URL", f"sqlite:///{ERP_DB}")
    with SampleApi(ApiConfig(customers=500, products=300, orders=400, events=250, tickets=120, rate=200, burst=20)) as api:
        os.environ["SAMPLE_API_URL"] = api.base_url
        print(f"demo: sample API on {api.base_url}", file=sys.stderr)
        print("\n$ python main.py run --apply", file=sys.stderr)
        code = run_cli(cli, ["run", "--apply"])
        if code:
            return code
    target = os.environ.get("KSPYDER_TARGET_URL", "sqlite:///.kspyder/target.db")
    show_queries(target, QUERIES)
    print("\n$ python main.py transform", file=sys.stderr)
    code = run_cli(cli, ["transform"])
    if code:
        return code
    show_queries(target, TRANSFORMED)
    print("\n$ python main.py status", file=sys.stderr)
    run_cli(cli, ["status", "--limit", "3"])
    print("\nNext: edit manifests/connector_models.yml, then `python main.py plan` and `python main.py apply`.")
    return 0


def run_cli(cli, args: list[str]) -> int:
    try:
        cli.main(args, prog_name="main.py", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def show_queries(url: str, queries: dict[str, str]) -> None:
    from shared.target.dialects import create_target_engine

    engine = create_target_engine(url, ["shop", "erp", "analytics"])
    with engine.connect() as connection:
        for title, query in queries.items():
            result = connection.execute(sa.text(query))
            rows = [tuple(str(v) for v in row) for row in result]
            headers = tuple(result.keys())
            widths = [max(len(x) for x in column) for column in zip(headers, *rows)]
            print(f"\n{title}\n  {query}")
            for row in [headers, tuple("-" * w for w in widths), *rows]:
                print("  " + "  ".join(value.ljust(width) for value, width in zip(row, widths)))
    engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
