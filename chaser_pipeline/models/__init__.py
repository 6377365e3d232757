"""Model stage, without Dagster: the SQL models of `dbt_like_models/` as a project, their lineage,
building them in DuckDB, their contracts as violation queries, and the field rules they call."""
