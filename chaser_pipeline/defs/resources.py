"""The pipeline's own DuckDB, shared by every stage (landed ledger, models, sync state and log)."""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from chaser_pipeline.preflight import open_duckdb
from chaser_pipeline.settings import load_settings


@contextlib.contextmanager
def duckdb_connection(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the resource's file, closed even when the body raises, so a failed step
    never leaves the pipeline's DuckDB locked. Another process holding the file is waited for a
    bounded time, then the step fails naming CHASER_DUCKDB_PATH and the holder (the resource's
    own get_connection retries silently for minutes)."""
    path = Path(resource.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = open_duckdb(path)
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
