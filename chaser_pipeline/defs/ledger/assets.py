"""Extract assets: one per ledger table, each running `sql/<table>.sql` against the warehouse and
landing the rows in the pipeline's DuckDB (schema `landing`)."""

from datetime import timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from chaser_pipeline.db import utc_now
from chaser_pipeline.defs.freshness import daily_freshness
from chaser_pipeline.defs.ledger.resources import WarehouseResource
from chaser_pipeline.defs.resources import duckdb_connection
from chaser_pipeline.ledger.contract import LEDGER_TABLES, LedgerTable
from chaser_pipeline.ledger.extract import ExtractOptions, ExtractResult, extract_table
from chaser_pipeline.ledger.landing import landed_version
from chaser_pipeline.settings import ConfigError, Settings, load_settings


class ExtractConfig(dg.Config):
    """Run config for an extract."""

    full_refresh: bool = False
    """Read and compare every row on this run (keys gone from the warehouse are recorded in
    landing.deleted_keys; their last rows stay)."""
    overlap_minutes: int = 60
    """Re-fetch rows changed this long before the stored cursor, for late-committed rows."""
    full_compare_every_days: int = 7
    """Compare every row with its landed version this often (0: every run), to catch rows whose
    updated_at went backwards."""

    def options(self) -> ExtractOptions:
        for name in ("overlap_minutes", "full_compare_every_days"):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"Extract run config {name} must be zero or more (got {getattr(self, name)})"
                )
        return ExtractOptions(
            full_refresh=self.full_refresh,
            overlap=timedelta(minutes=self.overlap_minutes),
            full_compare_every=timedelta(days=self.full_compare_every_days),
        )


def column_schema(table: LedgerTable) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c,
                type=t,
                description="optional: NULL when the warehouse's SQL does not return it"
                if c in table.optional_columns
                else None,
            )
            for c, t in table.columns
        ],
    )


def run_extract(
    context: dg.AssetExecutionContext,
    table: LedgerTable,
    config: ExtractConfig,
    warehouse: WarehouseResource,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """One extract step: see `chaser_pipeline.ledger.extract`."""
    options = config.options()
    source = warehouse.get()
    context.log.info("Extracting %s from %s with %s", table.name, source.display, table.sql_file)
    with duckdb_connection(duckdb) as con:
        result = extract_table(con, source, table, now=utc_now(), options=options)
        version = landed_version(con, table)
    landed = result.landed
    context.log.info(
        "Landed %s%s: %d fetched since %s, %d new, %d updated, %d unchanged; "
        "%d key(s) deleted from the warehouse (%d new, %d back); cursor %s",
        table.name,
        f" (every row compared: {result.full_compare})" if result.full_compare else "",
        result.rows_fetched,
        result.since,
        landed.inserted,
        landed.updated,
        landed.unchanged,
        landed.deleted_total,
        landed.deleted_new,
        landed.deleted_returned,
        landed.cursor,
    )
    for warning in _warnings(table, result):
        context.log.warning(warning)
    return dg.MaterializeResult(
        metadata=extract_metadata(table, result, source.display),
        data_version=dg.DataVersion(version),
    )


def extract_metadata(table: LedgerTable, result: ExtractResult, warehouse: str) -> dict:
    """The extract's metadata: what was read, what changed, what was deleted, what looks wrong."""
    landed = result.landed
    metadata = {
        "rows_fetched": result.rows_fetched,
        "rows_inserted": landed.inserted,
        "rows_updated": landed.updated,
        "rows_unchanged": landed.unchanged,
        "deleted_keys_new": landed.deleted_new,
        "deleted_keys_returned": landed.deleted_returned,
        "deleted_keys_total": landed.deleted_total,
        "null_key_rows": landed.null_key_rows,
        "updated_at_null_rows": result.null_updated_at,
        "updated_at_null_keys": list(result.null_updated_at_keys),
        "updated_at_future_rows": result.future_updated_at,
        "updated_at_future_keys": list(result.future_updated_at_keys),
        "full_compare": bool(result.full_compare),
        "full_compare_reason": result.full_compare,
        "full_compared_at": str(result.full_compared_at or ""),
        "rows_changed_behind_cursor": landed.changed_behind_cursor,
        "keys_read": result.keys_read,
        "keys_missed_by_cursor": result.keys_missed_by_cursor,
        "key_set_seconds": result.key_set_seconds,
        "cursor": str(landed.cursor) if landed.cursor else "",
        "fetched_since": str(result.since),
        "warehouse": warehouse,
        "dagster/row_count": landed.row_count,
        "dagster/column_schema": column_schema(table),
        "dagster/table_name": f"landing.{table.name}",
        "duration_seconds": result.seconds,
    }
    if table.optional or table.optional_columns:
        metadata["optional_in_use"] = list(result.optional_in_use)
        metadata["optional_missing"] = list(result.optional_missing)
    return metadata


def _warnings(table: LedgerTable, result: ExtractResult) -> list[str]:
    """What a user should look at in the warehouse, in words."""
    warnings = []
    if result.landed.null_key_rows:
        warnings.append(
            f"{result.landed.null_key_rows} row(s) of {table.name} have no {table.key}: landed, "
            "but the models hold them back until the warehouse gives them a key"
        )
    if result.null_updated_at:
        warnings.append(
            f"{result.null_updated_at} row(s) of {table.name} have no updated_at (e.g. "
            f"{', '.join(result.null_updated_at_keys)}): they are read again on every run"
        )
    if result.future_updated_at:
        warnings.append(
            f"{result.future_updated_at} row(s) of {table.name} have an updated_at in the future "
            f"(e.g. {', '.join(result.future_updated_at_keys)}): the cursor ignores them"
        )
    if result.landed.changed_behind_cursor:
        warnings.append(
            f"The full comparison found {result.landed.changed_behind_cursor} key(s) of "
            f"{table.name} changed with an updated_at older than the cursor"
        )
    return warnings


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
            **({"optional_table": True} if table.optional else {}),
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
