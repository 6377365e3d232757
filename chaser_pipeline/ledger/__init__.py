"""Extract stage, without Dagster: the ledger contract, reading the warehouse, landing in DuckDB.

`contract` names the source tables (optional parts marked) and checks an extract's columns;
`warehouse` runs queries against DuckDB or PostgreSQL as Arrow streams; `queries` nests the SQL
files to read only keys; `batches` and `incoming` check the rows (text, money) on their way in;
`landing` merges them into the pipeline's DuckDB; `extract` is one table's whole run.
"""
