"""Dagster assets: `extract` (ledger tables landed in DuckDB), `models` (SQL models), `sync` (Chaser)."""
