"""The demo ledger warehouse: a deterministic DuckDB ledger with the messy cases real ledgers have
(`generator`, its SQL in `sql/`), used by the README's first command, the tests and benchmarks."""
