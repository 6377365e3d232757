"""The pipeline's own DuckDB, shared by every stage (landed ledger, models, sync state and log),
and the rebuild of a run-local DuckDB found empty."""

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from chaser_pipeline.db import WHOLE_HISTORY, table_exists, utc_now
from chaser_pipeline.ledger.warehouse import Warehouse
from chaser_pipeline.preflight import open_duckdb
from chaser_pipeline.settings import Settings, load_settings


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


def ensure_run_local_ledger(
    log: logging.Logger | dg.DagsterLogManager,
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
) -> bool:
    """Land the ledger and build the whole-history models when this DuckDB has never landed one.

    In production each run may start on a fresh disk (a Kubernetes run pod; the sync state lives
    in PostgreSQL), and only the incremental job extracts and builds the whole-history models:
    the monthly run the sensor asks for, the data-lag check and the drift sample found nothing to
    work on (a monthly run failed; the data-lag check said Chaser held everything). They call
    this first: a full extract of every ledger table from CHASER_WAREHOUSE_URL, every
    whole-history model as the incremental job builds them, and the monthly marts empty. True
    when it rebuilt."""
    from chaser_pipeline.ledger.contract import LEDGER_TABLES
    from chaser_pipeline.ledger.extract import extract_table
    from chaser_pipeline.models.build import build_model, run_models
    from chaser_pipeline.models.project import ModelProject
    from chaser_pipeline.paths import models_dir

    if table_exists(con, f"landing.{next(iter(LEDGER_TABLES))}"):
        return False  # landed before: what is missing is for the incremental job to build
    warehouse = Warehouse(settings.warehouse)
    log.warning(
        "The pipeline DuckDB (%s) has never landed the ledger: a run on a fresh disk. Landing "
        "every ledger table from %s and building the whole-history models first.",
        settings.duckdb_path,
        warehouse.display,
    )
    started = time.perf_counter()
    for table in LEDGER_TABLES.values():
        extract_table(con, warehouse, table, now=utc_now())
    project = ModelProject(models_dir())
    needed = [name for name, model in project.models.items() if model.partitioned_by is None]
    run_models(con, project, only=needed, default_country=settings.default_country)
    # the monthly marts empty, with their columns (the drift sample shapes Chaser's records by
    # them); a monthly run fills its own months
    nothing = (WHOLE_HISTORY[1], WHOLE_HISTORY[1])
    for model in project.models.values():
        if model.partitioned_by is not None and not table_exists(con, model.name):
            build_model(con, model, nothing)
    log.info(
        "Landed the ledger and built %d whole-history models in %.1f s",
        len(needed),
        time.perf_counter() - started,
    )
    return True
