"""The target database's shared ground: engines and dialects, the tables models map to, leases,
kspyder's metadata table. Schema changes live in `shared.schema`, loading rows in `shared.load`."""
