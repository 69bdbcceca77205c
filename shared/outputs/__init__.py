"""Where extracted records go when they are not loaded into a database: stdout, JSON or CSV files."""
