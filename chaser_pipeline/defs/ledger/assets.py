"""Extract assets: one per ledger table, each running `sql/<table>.sql` against the warehouse and
landing the rows in the pipeline's DuckDB (schema `landing`)."""

import time
from datetime import timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from chaser_pipeline.db import utc_now
from chaser_pipeline.defs.freshness import daily_freshness
from chaser_pipeline.defs.ledger.resources import WarehouseResource
from chaser_pipeline.defs.resources import duckdb_connection
from chaser_pipeline.ledger.contract import LEDGER_TABLES, LedgerTable
from chaser_pipeline.ledger.landing import fetch_since, land, stored_cursor
from chaser_pipeline.settings import Settings, load_settings


class ExtractConfig(dg.Config):
    """Run config for an extract."""

    full_refresh: bool = False
    """Copy the whole table again and drop landed rows the source no longer has."""
    overlap_minutes: int = 60
    """Re-fetch rows changed this long before the stored cursor, for late-committed rows."""


def column_schema(table: LedgerTable) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name=c, type=t) for c, t in table.columns],
    )


def run_extract(
    context: dg.AssetExecutionContext,
    table: LedgerTable,
    config: ExtractConfig,
    warehouse: WarehouseResource,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """One extract step: the rows changed since the cursor (minus the overlap), merged by key."""
    started = time.monotonic()
    source = warehouse.get()
    with duckdb_connection(duckdb) as con:
        cursor = stored_cursor(con, table)
        since = fetch_since(cursor, timedelta(minutes=config.overlap_minutes), config.full_refresh)
        context.log.info(
            "Extracting %s from %s with %s (rows updated after %s%s)",
            table.name,
            source.display,
            table.sql_file,
            since,
            ", full refresh" if config.full_refresh else "",
        )
        with source.stream(table.read_sql(), since, sql_file=table.sql_file) as reader:
            result = land(
                con, table, reader, since=since, full_refresh=config.full_refresh, now=utc_now()
            )
    context.log.info(
        "Landed %s: %d fetched, %d new, %d updated, %d unchanged; cursor %s",
        table.name,
        result.fetched,
        result.inserted,
        result.updated,
        result.unchanged,
        result.cursor,
    )
    return dg.MaterializeResult(
        metadata={
            "rows_fetched": result.fetched,
            "rows_inserted": result.inserted,
            "rows_updated": result.updated,
            "rows_unchanged": result.unchanged,
            "rows_deleted": result.deleted,
            "cursor": str(result.cursor) if result.cursor else "",
            "fetched_since": str(result.since),
            "full_refresh": config.full_refresh,
            "warehouse": source.display,
            "dagster/row_count": result.row_count,
            "dagster/column_schema": column_schema(table),
            "dagster/table_name": f"landing.{table.name}",
            "duration_seconds": round(time.monotonic() - started, 3),
        }
    )


def extract_asset(table: LedgerTable, freshness: dg.FreshnessPolicy) -> dg.AssetsDefinition:
    """The asset that lands one ledger table."""

    @dg.asset(
        name=f"ledger_{table.name}",
        group_name="extract",
        kinds={"duckdb", "sql"},
        description=table.description,
        freshness_policy=freshness,
        metadata={
            "dagster/column_schema": column_schema(table),
            "dagster/table_name": f"landing.{table.name}",
            "sql_file": table.sql_file,
        },
    )
    def _extract(
        context: dg.AssetExecutionContext,
        config: ExtractConfig,
        warehouse: WarehouseResource,
        duckdb: DuckDBResource,
    ) -> dg.MaterializeResult:
        return run_extract(context, table, config, warehouse, duckdb)

    return _extract


def extract_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """One extract asset per table of the ledger contract."""
    freshness = daily_freshness(settings)
    return [extract_asset(table, freshness) for table in LEDGER_TABLES.values()]


@dg.definitions
def ledger() -> dg.Definitions:
    return dg.Definitions(assets=extract_assets(load_settings()))
