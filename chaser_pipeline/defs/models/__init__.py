"""Model stage in Dagster: one asset per SQL model, and its contract and ledger-rule checks."""
