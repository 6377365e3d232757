"""Checks on the sync: Chaser's rejection rate (blocking, per sync step) and the data lag (how
far Chaser is behind the ledger, on its own schedule)."""

from collections.abc import Callable
from datetime import datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from chaser_pipeline.db import clock_from, utc_now
from chaser_pipeline.defs.chaser_sync.resources import ChaserResource, SyncStateResource
from chaser_pipeline.defs.resources import duckdb_connection, ensure_run_local_ledger
from chaser_pipeline.settings import Settings
from chaser_pipeline.sync.pending import Pending
from chaser_pipeline.sync.report import SyncReport

REJECTION_RATE = "rejection_rate"
DATA_LAG = "chaser_data_lag"
# The whole-history plan: the months to sync, and the sync's one mass-change decision.
PENDING_ASSET = "chaser_pending_months"


def rejection_rate_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        REJECTION_RATE,
        asset=asset,
        blocking=True,
        description="Fails the sync when Chaser rejects more than the allowed share of rows sent "
        "(default 1%, run config max_rejection_share).",
    )


def rejection_rate_result(
    report: SyncReport, max_rejection_share: float, asset: str
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=REJECTION_RATE,
        passed=report.rejection_share <= max_rejection_share,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "attempted": report.attempted,
            "rejected": report.failed,
            "rejected_share": round(report.rejection_share, 4),
            "threshold": max_rejection_share,
        },
        description=(
            f"dry run: nothing was sent, so Chaser rejected nothing ({report.attempted} rows "
            "would have been sent)"
            if report.dry_run
            else f"{report.failed} of {report.attempted} rows sent were rejected by Chaser"
        ),
    )


class DataLagConfig(dg.Config):
    """Thresholds of the data-lag check."""

    warn_hours: float = 13.0
    error_hours: float = 26.0
    as_of: str = ""
    """The check's clock as an ISO timestamp (UTC); empty means now."""


def data_lag_check(
    settings: Settings, pending_now: Callable[..., Pending]
) -> dg.AssetChecksDefinition:
    """The data-lag check on chaser_pending_months; `pending_now` works out what this
    pipeline's Chaser organisation does not hold (no request to Chaser, except one to ask which
    organisation the credentials reach when no sync noted it yet).

    It sends nothing, yet takes the `chaser_api` pool: it reads the pipeline's DuckDB, which a
    sync step holds for as long as it sends (hours of a first load at Chaser's budget). In the
    pool, the hourly check waits for that step's slot instead of failing on the file's lock
    after a minute with a message that reads like a configuration error."""
    from chaser_pipeline.defs.chaser_sync.assets import CHASER_API_POOL
    from chaser_pipeline.defs.chaser_sync.session import chaser_session

    @dg.asset_check(
        asset=PENDING_ASSET,
        name=DATA_LAG,
        pool=CHASER_API_POOL,
        description="How far Chaser is behind the ledger: age of the oldest ledger change whose "
        "payload Chaser has not confirmed (catches a sync that succeeds while skipping months).",
    )
    def chaser_data_lag(
        context: dg.AssetCheckExecutionContext,
        config: DataLagConfig,
        duckdb: DuckDBResource,
        sync_state: SyncStateResource,
        chaser: ChaserResource,
    ) -> dg.AssetCheckResult:
        now = clock_from(config.as_of)()
        # this pipeline's organisation, as its last sync noted it (asked of Chaser only when
        # no sync did)
        with chaser_session(chaser, duckdb, sync_state) as session:
            target = session.own_target(context, now)
        pending = pending_now(
            duckdb, sync_state, target, settings, now, rebuild=True, log=context.log
        )
        return lag_result(pending, now, config)

    return chaser_data_lag


def lag_result(pending: Pending, now: datetime, config: DataLagConfig) -> dg.AssetCheckResult:
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


DRIFT_SAMPLE = "chaser_drift_sample"
SYNC_LOG_ASSET = "chaser_sync_log"


class DriftSampleConfig(dg.Config):
    """How much of Chaser the daily drift check reads back."""

    pages_per_object: int = 2
    """Pages of 100 records read per object (each page is one request of Chaser's budget)."""
    objects: list[str] = ["customers", "invoices", "credit_notes"]


def drift_sample_check(settings: Settings) -> dg.AssetChecksDefinition:
    """A daily sample of what Chaser holds, compared with what the sync state says it holds."""
    from chaser_pipeline.defs.chaser_sync.assets import CHASER_API_POOL
    from chaser_pipeline.defs.chaser_sync.session import chaser_session
    from chaser_pipeline.sync.reconcile import sample_drift

    @dg.asset_check(
        asset=SYNC_LOG_ASSET,
        name=DRIFT_SAMPLE,
        # it spends Chaser's request budget: one run at a time, as the sync steps
        pool=CHASER_API_POOL,
        description="A few pages of what Chaser holds, read back each day and compared with "
        "what the sync state says it confirmed: catches records edited by hand in Chaser or a "
        "state restored from an old backup (run `chaser-pipeline reconcile` to repair).",
    )
    def chaser_drift_sample(
        context: dg.AssetCheckExecutionContext,
        config: DriftSampleConfig,
        duckdb: DuckDBResource,
        chaser: ChaserResource,
        sync_state: SyncStateResource,
    ) -> dg.AssetCheckResult:
        seed = int(utc_now().strftime("%Y%m%d"))
        samples = []
        with duckdb_connection(duckdb) as con:  # a fresh disk: build what it compares with
            ensure_run_local_ledger(context.log, con, settings)
        with chaser_session(chaser, duckdb, sync_state) as session:
            target = session.own_target(context, utc_now())
            for name in config.objects:
                samples.append(
                    sample_drift(
                        session.state,
                        target,
                        session.connection.make_client,
                        name,
                        pages=config.pages_per_object,
                        seed=seed,
                    )
                )
        drifted = {s.object_name: s.drifted[:10] for s in samples if s.drifted}
        unknown = {s.object_name: s.unknown[:10] for s in samples if s.unknown}
        read = sum(s.records for s in samples)
        unknown_count = sum(len(s.unknown) for s in samples)
        if drifted:
            description = (
                f"{sum(len(v) for v in drifted.values())} of {read} records read back differ "
                "from what the state says Chaser confirmed: run `chaser-pipeline reconcile`"
            )
        elif unknown:
            # a lost state, or one restored from an old backup: the next sync would send these
            # as new, and the "never sent" rules would misjudge them
            description = (
                f"{unknown_count} of {read} records read back are unknown to the sync state (a "
                "lost state, or one restored from an old backup?): run `chaser-pipeline "
                "reconcile` to rebuild it from what Chaser holds"
            )
        else:
            description = f"{read} records read back hold what the state says"
        return dg.AssetCheckResult(
            passed=not drifted and not unknown,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "records_read": read,
                "requests": sum(len(s.pages) for s in samples),
                "drifted": dg.MetadataValue.json(drifted),
                "unknown_to_the_state": dg.MetadataValue.json(unknown),
            },
            description=description,
        )

    return chaser_drift_sample
