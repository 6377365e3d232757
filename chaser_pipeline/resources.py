"""Dagster resources: the source warehouse, the pipeline's DuckDB, and Chaser.

Resources are built from the environment in one place (`build_resources`); secrets are bound with
`dagster.EnvVar`, so the UI shows the variable's name, never its value.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from chaser_pipeline.config import Settings, load_settings
from chaser_pipeline.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The source warehouse (CHASER_WAREHOUSE_URL); empty means the bundled demo warehouse."""

    url: str = ""

    def get(self) -> Warehouse:
        return Warehouse.from_url(self.url or None)


@contextlib.contextmanager
def duckdb_connection(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """The resource's connection, closed even when the body raises (the resource's own is not),
    so a failed step never leaves the pipeline's DuckDB file locked."""
    manager = resource.get_connection()
    con = manager.__enter__()
    try:
        yield con
    finally:
        con.close()
        manager.__exit__(None, None, None)


def build_resources(settings: Settings | None = None) -> dict[str, object]:
    """Resources for Definitions; config errors surface at load time, before any data moves."""
    from chaser_pipeline.sync_resource import ChaserResource

    settings = settings or load_settings()
    warehouse = (
        WarehouseResource(url=dg.EnvVar("CHASER_WAREHOUSE_URL"))
        if os.environ.get("CHASER_WAREHOUSE_URL", "").strip()
        else WarehouseResource()
    )
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    if settings.uses_emulator:
        chaser = ChaserResource()
    else:
        chaser = ChaserResource(
            api_url=settings.api_url or "",
            api_key=dg.EnvVar("CHASER_API_KEY"),
            api_secret=dg.EnvVar("CHASER_API_SECRET"),
        )
    return {
        "warehouse": warehouse,
        "duckdb": DuckDBResource(database=str(settings.duckdb_path)),
        "chaser": chaser,
    }
