"""Extract stage, without Dagster: the ledger contract, reading the warehouse, landing in DuckDB.

`contract` names the five source tables and checks an extract's columns; `warehouse` streams a
query's rows from DuckDB or PostgreSQL as Arrow batches; `landing` merges them into the pipeline's
DuckDB incrementally.
"""
