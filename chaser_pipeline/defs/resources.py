"""The pipeline's own DuckDB, shared by every stage (landed ledger, models, sync state and log)."""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from chaser_pipeline.settings import load_settings


@contextlib.contextmanager
def duckdb_connection(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """The resource's connection, closed even when the body raises (the resource's own is not),
    so a failed step never leaves the pipeline's DuckDB file locked."""
    Path(resource.database).parent.mkdir(parents=True, exist_ok=True)
    with resource.get_connection() as con:
        try:
            yield con
        finally:
            con.close()


@dg.definitions
def resources() -> dg.Definitions:
    """`duckdb`: the file CHASER_DUCKDB_PATH names."""
    return dg.Definitions(
        resources={"duckdb": DuckDBResource(database=str(load_settings().duckdb_path))}
    )
