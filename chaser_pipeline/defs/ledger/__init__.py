"""Extract stage in Dagster: one asset per ledger table, and the warehouse resource."""
