"""The target database: models as SQL tables, plan/apply of schema changes, idempotent loading."""
