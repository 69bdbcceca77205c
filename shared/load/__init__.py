"""Loading rows into the target: fitting values to column types, upserting keyed models, staging
and swapping keyless ones, replacing derived tables whole."""
