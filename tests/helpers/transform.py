"""The pipelines the transform tests run: the two models they read (`CONNECTORS`, as plain manifests;
`TARGET_CONNECTORS`, templated with per-test schema names) and a Target that plans, applies, fills and
runs them on one database."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from shared.config.project import load_project
from shared.schema.apply import PlanStamp, apply_stamped
from shared.schema.desired import target_metadata
from shared.schema.plan import PlanOptions, compute_plan
from shared.target.columns import META_COLUMNS, RUN_ID
from shared.target.dialects import drop_schema, stores_timezones
from shared.transform.config import load_transformations
from shared.transform.runner import run_pipelines, target_engine

CONNECTORS = """sources:
  erp:
    type: sql
    url: sqlite:///unused.db
    models:
      orders:
        table: orders
        primary_key: [order_id]
        columns:
          order_id: {type: string, length: 20}
          customer_id: {type: integer}
          amount: {type: decimal, precision: 12, scale: 2}
          status: {type: string, length: 20}
          created_at: {type: datetime}
  shop:
    type: sql
    url: sqlite:///unused.db
    models:
      customers:
        table: customers
        primary_key: [id]
        columns:
          id: {type: integer}
          city: {type: string, length: 100}
          created_at: {type: datetime}
"""

TARGET_CONNECTORS = """sources:
  {erp}:
    type: sql
    url: sqlite:///unused.db
    models:
      orders:
        table: orders
        primary_key: [order_id]
        columns:
          order_id: {{type: string, length: 20}}
          customer_id: {{type: integer}}
          amount: {{type: decimal, precision: 12, scale: 2}}
          status: {{type: string, length: 20}}
          created_at: {{type: datetime}}
  {shop}:
    type: sql
    url: sqlite:///unused.db
    models:
      customers:
        table: customers
        primary_key: [id]
        columns:
          id: {{type: integer}}
          city: {{type: string, length: 100}}
"""
PIPELINES = """pipelines:
  city_totals:
    inputs: {{m: {out}.monthly_revenue}}
    steps:
      - group_by: {{by: city, agg: {{revenue: [revenue, sum], months: [month, count]}}}}
      - sort: {{by: revenue, ascending: false}}
    output: {out}.city_totals
  monthly_revenue:
    inputs: {{o: {erp}.orders, c: {shop}.customers}}
    steps:
      - join: {{left: o, right: c, left_on: customer_id, right_on: id, how: left}}
      - filter: "amount > 0"
      - derive: {{month: "created_at.dt.strftime('%Y-%m')"}}
      - group_by: {{by: [month, city], agg: {{revenue: [amount, sum], orders: [order_id, count]}}}}
      - sort: {{by: [month, city]}}
    output: {out}.monthly_revenue
  paid_orders:
    inputs: {{o: {erp}.orders}}
    steps:
      - filter: "status == 'paid'"
      - fillna: {{customer_id: 0}}
      - derive: {{cents: "round(amount * 100)", big: "amount >= 10"}}
      - cast: {{cents: integer}}
      - rename: {{created_at: paid_at}}
      - select: [order_id, customer_id, cents, big, paid_at]
    output: {out}.paid_orders
  statuses:
    inputs: {{}}
    steps:
      - sql:
          query: "SELECT status, COUNT(*) AS n FROM {erp}.orders WHERE status NOT LIKE '%zz%' GROUP BY status"
          columns: {{status: text, n: integer}}
          reads: [{erp}.orders]
      - sort: {{by: status}}
    output: {out}.statuses
"""
ORDERS = [("o1", 1, "10.50", "paid", (2024, 1, 5)), ("o2", 1, "20.00", "paid", (2024, 1, 20)),
          ("o3", 2, "5.25", "shipped", (2024, 1, 31, 23, 59)), ("o4", 2, "-3.00", "refunded", (2024, 2, 1)),
          ("o5", 3, "7.00", "paid", (2024, 2, 10)), ("o6", None, "1.00", "new", (2024, 2, 11)),
          ("o7", 9, "2.00", "paid", (2024, 2, 12)), ("o8", 2, "100.00", "cancelled", (2024, 3, 1))]
CUSTOMERS = [(1, "Berlin"), (2, "Paris"), (3, None)]


class Target:
    def __init__(self, url: str, folder: Path):
        tag = uuid.uuid4().hex[:8]
        self.erp, self.shop, self.out = f"kt_erp_{tag}", f"kt_shop_{tag}", f"kt_out_{tag}"
        self.options = PlanOptions(scope=(f"kt_*_{tag}",))   # others' schemas on a shared server are not ours
        self.folder = folder
        self.url = url
        self.write(PIPELINES)
        self.engine = target_engine(self.project, load_transformations(self.project))

    def write(self, pipelines: str) -> None:
        names = {"erp": self.erp, "shop": self.shop, "out": self.out}
        (self.folder / "connector_models.yml").write_text(TARGET_CONNECTORS.format(**names))
        (self.folder / "transformations.yml").write_text(pipelines.format(**names))
        self.project = load_project(self.folder, env={"KSPYDER_TARGET_URL": self.url,
                                                      "KSPYDER_STATE_DIR": str(self.folder / "state")})
        self.transformations = load_transformations(self.project)

    def apply(self) -> None:
        apply_stamped(self.engine, self.project, PlanStamp.of(self.plan()))

    def plan(self, prune: bool = False):
        with self.engine.connect() as connection:
            return compute_plan(connection, self.project, PlanOptions(prune=prune, scope=self.options.scope))

    def insert(self, orders=ORDERS, customers=CUSTOMERS) -> None:
        metadata = target_metadata(self.project, self.engine.dialect.name)
        aware = stores_timezones(self.engine.dialect.name)

        def when(parts):
            at = datetime(*parts, tzinfo=UTC)
            return at if aware else at.replace(tzinfo=None)
        with self.engine.begin() as connection:
            if orders:
                connection.execute(metadata.tables[f"{self.erp}.orders"].insert(), [
                    {"order_id": o, "customer_id": c, "amount": Decimal(a), "status": s, "created_at": when(t),
                     RUN_ID: "test"} for o, c, a, s, t in orders])
            if customers:
                connection.execute(metadata.tables[f"{self.shop}.customers"].insert(),
                                   [{"id": i, "city": city, RUN_ID: "test"} for i, city in customers])

    def rows(self, table: str, order: str) -> list[dict]:
        with self.engine.connect() as connection:
            t = sa.Table(table, sa.MetaData(), schema=self.out, autoload_with=connection)
            result = connection.execute(sa.select(t).order_by(t.c[order]))
            return [{k: v for k, v in r._mapping.items() if k not in META_COLUMNS} for r in result]

    def run(self, names=(), **options):
        return run_pipelines(self.project, self.transformations, self.transformations.select(names),
                             engine=self.engine, **options)

    def drop(self) -> None:
        with self.engine.begin() as connection:
            for schema in (self.out, self.erp, self.shop):
                drop_schema(connection, schema)
        self.engine.dispose()
