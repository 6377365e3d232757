"""Extract assets: one per ledger table, each running `sql/<table>.sql` against the warehouse."""

import time
from datetime import timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from chaser_pipeline.db import utc_now
from chaser_pipeline.freshness import sync_freshness
from chaser_pipeline.landing import fetch_since, land, stored_cursor
from chaser_pipeline.ledger import LEDGER_TABLES, LedgerTable
from chaser_pipeline.resources import WarehouseResource, duckdb_connection


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


def _build_extract_asset(table: LedgerTable) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"ledger_{table.name}",
        group_name="extract",
        kinds={"duckdb", "sql"},
        description=table.description,
        freshness_policy=sync_freshness(),
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
        started = time.monotonic()
        source = warehouse.get()
        sql = table.read_sql()
        with duckdb_connection(duckdb) as con:
            cursor = stored_cursor(con, table)
            since = fetch_since(
                cursor, timedelta(minutes=config.overlap_minutes), config.full_refresh
            )
            context.log.info(
                "Extracting %s from %s with %s (rows updated after %s%s)",
                table.name,
                source.display,
                table.sql_file,
                since,
                ", full refresh" if config.full_refresh else "",
            )
            with source.stream(sql, since, sql_file=table.sql_file) as reader:
                result = land(
                    con,
                    table,
                    reader,
                    since=since,
                    full_refresh=config.full_refresh,
                    now=utc_now(),
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

    return _extract


extract_assets: list[dg.AssetsDefinition] = [
    _build_extract_asset(table) for table in LEDGER_TABLES.values()
]
