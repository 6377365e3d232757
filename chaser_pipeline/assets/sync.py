"""Sync assets: upsert the marts into Chaser (customers first), and what operators watch."""

import json
from datetime import date, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from chaser_pipeline.chaser.errors import ChaserError
from chaser_pipeline.config import load_settings
from chaser_pipeline.db import WHOLE_HISTORY, utc_now
from chaser_pipeline.freshness import sync_freshness
from chaser_pipeline.partitions import monthly_partitions
from chaser_pipeline.paths import models_dir
from chaser_pipeline.pending import Pending, compute_pending
from chaser_pipeline.resources import ChaserResource, duckdb_connection
from chaser_pipeline.sync import (
    LOG,
    SPECS,
    MassChangeError,
    SyncOptions,
    SyncReport,
    SyncSpec,
    ensure_sync_tables,
    sync_resource,
)

CHASER_API_POOL = "chaser_api"


class SyncConfig(dg.Config):
    """Run config for a sync."""

    dry_run: bool = False
    """Plan only: show creates, updates, unchanged, held back and skipped rows, send nothing."""
    confirm_mass_change: bool = False
    """Send even when the run would update more than `mass_change_share` of synced rows."""
    mass_change_share: float = 0.5
    mass_change_min_rows: int = 50
    """The mass-change guard ignores runs with fewer updates than this."""
    max_rejection_share: float = 0.01
    """The sync fails when Chaser rejects more than this share of the rows sent."""
    skip_invisible_unsent: bool = True
    """Never send a document Chaser would not show (draft, voided...) that was never sent."""
    skip_paid_older_than_days: int = 183
    """Never send a PAID invoice fully paid longer ago than this (Chaser would archive it)."""
    as_of: str = ""
    """The run's clock as an ISO timestamp (UTC); empty means now. For reproducible runs."""


def clock_from(as_of: str):
    if as_of:
        fixed = datetime.fromisoformat(as_of).replace(tzinfo=None)
        return lambda: fixed
    return utc_now


def _metadata(report: SyncReport, target: str) -> dict[str, object]:
    meta: dict[str, object] = {
        "target": target,
        "dry_run": report.dry_run,
        "planned_create": report.planned["create"],
        "planned_update": report.planned["update"],
        "unchanged": report.planned["unchanged"],
        "held_back_waiting_for_customer": report.planned["held_back"],
        "held_back_by_rules": report.held_back_by_rules,
        "skipped_not_worth_sending": report.planned["skipped"],
        "created": report.confirmed["create"],
        "updated": report.confirmed["update"],
        "rejected_by_chaser": report.failed,
        "write_requests": report.requests,
        "retries": report.retries,
        "rate_limited_429": report.rate_limited,
        "duration_seconds": round(report.duration_seconds, 3),
        "rows_per_second": round(report.rows_per_second, 1),
    }
    if report.samples:
        meta["sample_payloads"] = dg.MetadataValue.json(report.samples)
    if report.failures:
        meta["rejections"] = dg.MetadataValue.md(
            "\n".join(f"- `{key}`: {message}" for key, message in report.failures)
        )
    return meta


def _window(context: dg.AssetExecutionContext, spec: SyncSpec) -> tuple[date, date]:
    if not spec.partitioned:
        return WHOLE_HISTORY
    window = context.partition_time_window
    return (window.start.date(), window.end.date())


def _rejection_check(report: SyncReport, config: SyncConfig, asset: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name="rejection_rate",
        passed=report.rejection_share <= config.max_rejection_share,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "attempted": report.attempted,
            "rejected": report.failed,
            "rejected_share": round(report.rejection_share, 4),
            "threshold": config.max_rejection_share,
        },
        description=f"{report.failed} of {report.attempted} rows sent were rejected by Chaser",
    )


def _run_sync(
    context: dg.AssetExecutionContext,
    spec: SyncSpec,
    config: SyncConfig,
    duckdb: DuckDBResource,
    chaser: ChaserResource,
) -> dg.MaterializeResult:
    asset = f"sync_chaser_{spec.resource}"
    window = _window(context, spec)
    options = SyncOptions(
        dry_run=config.dry_run,
        confirm_mass_change=config.confirm_mass_change,
        mass_change_share=config.mass_change_share,
        mass_change_min_rows=config.mass_change_min_rows,
        skip_invisible_unsent=config.skip_invisible_unsent,
        skip_paid_older_than_days=config.skip_paid_older_than_days,
    )
    scope = f"issued {window[0]} to {window[1]}" if spec.partitioned else "all"

    def progress(report: SyncReport) -> None:
        done = sum(report.confirmed.values()) + report.failed
        if done % 10_000 < 100:
            context.log.info(
                "%s: %d of %d rows confirmed or rejected", spec.resource, done, report.attempted
            )

    with chaser.open_target() as target, duckdb_connection(duckdb) as con:
        context.log.info("Syncing %s (%s) to %s", spec.resource, scope, target.display)
        try:
            report = sync_resource(
                con,
                target.make_client,
                spec,
                window=window,
                options=options,
                run_id=context.run.run_id,
                clock=clock_from(config.as_of),
                on_progress=progress,
            )
        except (MassChangeError, ChaserError) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
    context.log.info(
        "%s %s: %d to create, %d to update, %d unchanged, %d waiting for their customer, "
        "%d not worth sending; Chaser confirmed %d and rejected %d in %d requests",
        "Planned" if config.dry_run else "Synced",
        spec.resource,
        report.planned["create"],
        report.planned["update"],
        report.planned["unchanged"],
        report.planned["held_back"],
        report.planned["skipped"],
        sum(report.confirmed.values()),
        report.failed,
        report.requests,
    )
    for key, message in report.failures:
        context.log.warning("Chaser rejected %s %s: %s", spec.entity, key, message)
    return dg.MaterializeResult(
        metadata=_metadata(report, target.display),
        check_results=[_rejection_check(report, config, asset)],
    )


def _rejection_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        "rejection_rate",
        asset=asset,
        blocking=True,
        description="Fails the sync when Chaser rejects more than the allowed share of rows sent "
        "(default 1%, run config max_rejection_share).",
    )


def _sync_asset(spec: SyncSpec, description: str, deps: list) -> dg.AssetsDefinition:
    """The asset that upserts one mart into Chaser (monthly partitions for documents)."""
    name = f"sync_chaser_{spec.resource}"

    @dg.asset(
        name=name,
        description=description,
        group_name="sync",
        deps=[spec.mart, *deps],
        kinds={"chaser"},
        pool=CHASER_API_POOL,
        partitions_def=monthly_partitions if spec.partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if spec.partitioned else None,
        freshness_policy=sync_freshness(),
        check_specs=[_rejection_spec(name)],
    )
    def _sync(
        context: dg.AssetExecutionContext,
        config: SyncConfig,
        duckdb: DuckDBResource,
        chaser: ChaserResource,
    ) -> dg.MaterializeResult:
        return _run_sync(context, spec, config, duckdb, chaser)

    return _sync


sync_chaser_customers = _sync_asset(
    SPECS["customers"],
    "Customers upserted into Chaser: only new or changed ones, before any invoice naming them.",
    deps=[],
)
sync_chaser_invoices = _sync_asset(
    SPECS["invoices"],
    "Invoices of the month upserted into Chaser: amounts due, paid dates and statuses it chases by.",
    deps=[sync_chaser_customers],
)
sync_chaser_credit_notes = _sync_asset(
    SPECS["credit_notes"],
    "Credit notes of the month upserted into Chaser: the credit left that statements subtract.",
    deps=[sync_chaser_customers],
)


@dg.asset(
    group_name="sync",
    deps=[sync_chaser_customers, sync_chaser_invoices, sync_chaser_credit_notes],
    kinds={"duckdb"},
    metadata={"dagster/table_name": LOG},
)
def chaser_sync_log(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Append-only log of every row sent, rejected or held back: run, key, action, status, message."""
    with duckdb_connection(duckdb) as con:
        ensure_sync_tables(con)
        (rows,) = con.execute(f"select count(*) from {LOG}").fetchone()
        recent = con.execute(
            f"""select resource, action, count(*) from {LOG}
            where logged_at > now()::timestamp - interval 1 day group by all order by all"""
        ).fetchall()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "last_24h": dg.MetadataValue.md(
                "\n".join(f"- {r} {a}: {n}" for r, a, n in recent) or "nothing logged"
            ),
            "query": dg.MetadataValue.md(
                f"```sql\nselect * from {LOG} where action = 'failed' order by logged_at desc\n```"
            ),
        }
    )


def unpartitioned_model_keys() -> list[str]:
    from chaser_pipeline.assets.models import model_assets

    keys = []
    for asset in model_assets:
        if asset.partitions_def is None:
            keys.extend(key.to_user_string() for key in asset.keys)
    return keys


def _pending(duckdb: DuckDBResource, now: datetime) -> Pending:
    history_start = date.fromisoformat(load_settings().history_start + "-01")
    with duckdb_connection(duckdb) as con:
        return compute_pending(con, models_dir(), history_start=history_start, now=now)


@dg.asset(
    group_name="sync",
    deps=[*unpartitioned_model_keys(), sync_chaser_customers],
    kinds={"duckdb"},
)
def chaser_pending_months(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Months holding documents whose payload Chaser has not confirmed as the ledger now says."""
    pending = _pending(duckdb, clock_from("")())
    context.log.info(
        "Documents Chaser does not hold as the ledger says: %s; months to sync: %s",
        pending.documents or "none",
        ", ".join(pending.months) or "none",
    )
    return dg.MaterializeResult(
        metadata={
            "changed_months": dg.MetadataValue.json(pending.months),
            "changed_month_count": len(pending.months),
            "pending_documents": dg.MetadataValue.json(pending.documents),
            "oldest_pending_change": str(pending.oldest_change or ""),
        }
    )


class DataLagConfig(dg.Config):
    """Thresholds of the data-lag check."""

    warn_hours: float = 13.0
    error_hours: float = 26.0
    as_of: str = ""
    """The check's clock as an ISO timestamp (UTC); empty means now."""


@dg.asset_check(
    asset=chaser_pending_months,
    name="chaser_data_lag",
    description="How far Chaser is behind the ledger: age of the oldest ledger change whose "
    "payload Chaser has not confirmed (catches a sync that succeeds while skipping months).",
)
def chaser_data_lag(config: DataLagConfig, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    now = clock_from(config.as_of)()
    pending = _pending(duckdb, now)
    oldest = pending.oldest_change
    lag_hours = max((now - oldest).total_seconds() / 3600, 0.0) if oldest else 0.0
    behind = [
        month
        for month, changed_at in pending.oldest_change_by_month.items()
        if (now - changed_at).total_seconds() / 3600 > config.warn_hours or changed_at == oldest
    ]
    severity = (
        dg.AssetCheckSeverity.ERROR
        if lag_hours > config.error_hours
        else dg.AssetCheckSeverity.WARN
    )
    return dg.AssetCheckResult(
        passed=lag_hours <= config.warn_hours,
        severity=severity,
        metadata={
            "lag_hours": round(lag_hours, 2),
            "oldest_unsynced_change": str(oldest or ""),
            "months_behind": dg.MetadataValue.json(behind[:24]),
            "pending_documents": dg.MetadataValue.json(pending.documents),
            "warn_hours": config.warn_hours,
            "error_hours": config.error_hours,
        },
        description=(
            f"Chaser is {lag_hours:.1f} h behind the ledger ({pending.total} documents)"
            if pending.total
            else "Chaser holds every ledger change"
        ),
    )


sync_assets = [
    sync_chaser_customers,
    sync_chaser_invoices,
    sync_chaser_credit_notes,
    chaser_sync_log,
    chaser_pending_months,
]


def changed_months_from_metadata(metadata: dict) -> list[str]:
    value = metadata.get("changed_months")
    raw = getattr(value, "value", value) or []
    return [m for m in (json.loads(raw) if isinstance(raw, str) else raw)]
