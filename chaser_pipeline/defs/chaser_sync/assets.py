"""Sync assets: upsert the marts into Chaser (customers first), the sync log, and the months whose
documents Chaser does not hold as the ledger says."""

import dataclasses
import logging
import time
import warnings
from datetime import date, datetime, timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from chaser_pipeline.chaser.errors import ChaserError
from chaser_pipeline.db import (
    WHOLE_HISTORY,
    clock_from,
    document_window,
    month_key,
    table_exists,
    utc_now,
)
from chaser_pipeline.defs.chaser_sync.checks import (
    PENDING_ASSET,
    data_lag_check,
    drift_sample_check,
    rejection_rate_result,
    rejection_rate_spec,
)
from chaser_pipeline.defs.chaser_sync.months import month_counts
from chaser_pipeline.defs.chaser_sync.pending_cache import cached_pending
from chaser_pipeline.defs.chaser_sync.resources import ChaserResource, SyncStateResource
from chaser_pipeline.defs.chaser_sync.session import chaser_session
from chaser_pipeline.defs.freshness import daily_freshness
from chaser_pipeline.defs.partitions import describe_window, monthly_partitions
from chaser_pipeline.defs.resources import duckdb_connection, ensure_run_local_ledger
from chaser_pipeline.models.build import build_model, register_field_rules
from chaser_pipeline.models.project import ModelProject, whole_history_models
from chaser_pipeline.paths import models_dir
from chaser_pipeline.settings import Settings, load_settings
from chaser_pipeline.sync.engine import (
    MassChangeError,
    check_mass_change,
    sync_object,
)
from chaser_pipeline.sync.objects import CHASER_OBJECTS, CUSTOMERS, ChaserObject
from chaser_pipeline.sync.pending import Pending
from chaser_pipeline.sync.plan import SyncOptions
from chaser_pipeline.sync.report import SyncReport
from chaser_pipeline.sync.state import LOG_TABLE, StateLockTimeout, SyncState, Target

CHASER_API_POOL = "chaser_api"
GROUP = "sync"

DESCRIPTIONS = {
    "customers": "Customers upserted into Chaser: only new or changed ones, before any invoice "
    "naming them.",
    "invoices": "Invoices of the month upserted into Chaser: amounts due, paid dates and statuses "
    "it chases by.",
    "credit_notes": "Credit notes of the month upserted into Chaser: the credit left that "
    "statements subtract.",
    "contact_persons": "Every recipient of each customer upserted into Chaser (one request per "
    "customer with changes): extra addresses and ledger contacts, archived when gone.",
    "overpayments": "Unapplied cash of the month upserted into Chaser: money on account and "
    "overpaid surpluses that statements subtract from what a customer owes.",
}


class SyncConfig(dg.Config):
    """Run config for a sync."""

    dry_run: bool = False
    """Plan only: show creates, updates, unchanged, held back and skipped rows, send nothing."""
    max_rejection_share: float = 0.01
    """The sync fails when Chaser rejects more than this share of the rows sent."""
    skip_invisible_unsent: bool = True
    """Never send a document Chaser would not show (draft, voided...) that was never sent."""
    skip_paid_older_than_days: int = 183
    """Never send a PAID invoice fully paid longer ago than this (Chaser would archive it)."""
    initial_load: bool = False
    """The organisation is in its first 24 hours (Chaser's budget is waived): send without
    pacing, more requests in flight, until Chaser's first 429 (then the budget applies)."""
    deadline_minutes: float = 0.0
    """Fail the step when it is still sending after this long (0: no deadline); what Chaser
    confirmed before is recorded."""
    as_of: str = ""
    """The run's clock as an ISO timestamp (UTC); empty means now. For reproducible runs."""
    confirm_mass_change: bool = False
    """Withdraw even when most of what Chaser holds of the object is missing from the landed
    ledger (the step's own guard; the whole-history plan's is chaser_pending_months')."""

    def deadline(self) -> float | None:
        return time.time() + self.deadline_minutes * 60 if self.deadline_minutes else None

    def options(self) -> SyncOptions:
        return SyncOptions(
            dry_run=self.dry_run,
            confirm_mass_change=self.confirm_mass_change,
            skip_invisible_unsent=self.skip_invisible_unsent,
            skip_paid_older_than_days=self.skip_paid_older_than_days,
        )


class PendingConfig(dg.Config):
    """Run config of the whole-history plan that decides, before anything is sent, what a
    sync may send."""

    confirm_mass_change: bool = False
    """Send even when the sync would update more than `mass_change_share` of what Chaser holds."""
    mass_change_share: float = 0.5
    mass_change_min_rows: int = 50
    """The mass-change guard ignores syncs with fewer updates than this."""
    skip_invisible_unsent: bool = True
    skip_paid_older_than_days: int = 183

    def options(self) -> SyncOptions:
        return SyncOptions(
            confirm_mass_change=self.confirm_mass_change,
            mass_change_share=self.mass_change_share,
            mass_change_min_rows=self.mass_change_min_rows,
            skip_invisible_unsent=self.skip_invisible_unsent,
            skip_paid_older_than_days=self.skip_paid_older_than_days,
        )


def _metadata(report: SyncReport, target: str) -> dict[str, object]:
    meta: dict[str, object] = {"target": target, **report.summary().as_metadata()}
    if report.samples:
        meta["sample_payloads"] = dg.MetadataValue.json(report.samples)
    if report.failures:
        meta["rejections"] = dg.MetadataValue.md(
            "\n".join(f"- `{key}`: {message}" for key, message in report.failures)
        )
    return meta


def _scope(
    context: dg.AssetExecutionContext, chaser_object: ChaserObject, history_start: date
) -> tuple[tuple[date, date], list[str]]:
    """The window of document dates to sync and the months (partition keys) it covers; the
    first month also carries every document dated before the history start."""
    if not chaser_object.partitioned:
        return WHOLE_HISTORY, []
    window = context.partition_time_window
    dates = document_window(window.start.date(), window.end.date(), history_start)
    return dates, list(context.partition_keys)


def _add_month_metadata(
    context: dg.AssetExecutionContext,
    report: SyncReport,
    counts: dict[str, dict[str, int]],
    history_start: date,
    run_window: str,
) -> None:
    """Each month's materialization gets that month's own counts; requests, retries and durations
    stay the run's (a request carries rows of several months)."""
    partitions_def = context.assets_def.partitions_def
    assert isinstance(partitions_def, dg.TimeWindowPartitionsDefinition)
    run_figures = report.summary()
    for month, month_figures in counts.items():
        window = partitions_def.time_window_for_partition_key(month)
        summary = dataclasses.replace(run_figures, **month_figures)
        dates = document_window(window.start.date(), window.end.date(), history_start)
        metadata: dict[str, object] = {
            **summary.as_metadata(),
            "window": describe_window(dates),
        }
        if len(counts) > 1:
            metadata["run_window"] = (
                f"{run_window} ({len(counts)} months in one run; write_requests, retries, "
                "withdrawals and durations are the run's)"
            )
        context.add_asset_metadata(metadata, partition_key=month)


def _log_outcome(
    context: dg.AssetExecutionContext, report: SyncReport, chaser_object: ChaserObject
) -> None:
    summary = report.summary()
    context.log.info(
        "%s %s: %d to create, %d to update, %d unchanged, %d waiting for their customer, "
        "%d not worth sending; Chaser confirmed %d and rejected %d in %d requests",
        "Planned" if summary.dry_run else "Synced",
        chaser_object.name,
        summary.planned_create,
        summary.planned_update,
        summary.unchanged,
        summary.held_back_waiting_for_customer,
        summary.skipped_not_worth_sending,
        summary.created + summary.updated,
        summary.rejected_by_chaser,
        summary.write_requests,
    )
    if report.send_process_unavailable:
        context.log.warning(
            "Initial load: %s were sent from this step's process, as a process of their own "
            "could not start: %s",
            chaser_object.name,
            report.send_process_unavailable,
        )
    if report.sent_from_process:
        context.log.info(
            "Initial load: %s were sent from a process of their own, %.1f s of sending",
            chaser_object.name,
            report.send_seconds,
        )
    for key, message in report.failures:
        context.log.warning("Chaser rejected %s %s: %s", chaser_object.ledger_entity, key, message)
    if report.deferred:
        context.log.warning(
            "%d %s moved to another customer wait for a later run: Chaser has not confirmed "
            "their archive under the customer they left (see the rejections above)",
            report.deferred,
            chaser_object.name,
        )


# The metadata entry of the pending months' observation when the mass-change guard stopped them.
MASS_CHANGE_STOPPED = "mass_change_stopped"


def mass_change_stop(instance: dg.DagsterInstance) -> str | None:
    """The mass-change guard's message when the newest whole-history plan was stopped by it
    (no later plan passed), else None."""
    key = dg.AssetKey(PENDING_ASSET)
    records = instance.fetch_observations(key, limit=1).records
    entry = records[0].event_log_entry if records else None
    observation = entry.asset_observation if entry else None
    stopped = observation.metadata.get(MASS_CHANGE_STOPPED) if observation else None
    if stopped is None:
        return None
    passed = instance.get_latest_materialization_event(key)
    if passed is not None and passed.timestamp > entry.timestamp:
        return None
    return str(getattr(stopped, "value", stopped))


def _ensure_mart(
    context: dg.AssetExecutionContext,
    chaser_object: ChaserObject,
    duckdb: DuckDBResource,
    settings: Settings,
    window: tuple[date, date],
) -> None:
    """A sync step run without its mart's step on a fresh disk (re-executed from failure in a
    new pod, or materialized alone) lands the ledger and builds its mart for its window first;
    planning from the empty mart of a fresh disk would send nothing and say all was well."""
    with duckdb_connection(duckdb) as con:
        if table_exists(con, chaser_object.mart) and (
            not chaser_object.partitioned or _holds_window(con, chaser_object, window)
        ):
            return  # built here before: its own step (or the incremental job) keeps it current
        # a fresh disk; or one where another step landed the ledger and made this mart empty
        # (two sync steps re-executed together), or a month its own step never built here
        ensure_run_local_ledger(context.log, con, settings)
        if chaser_object.partitioned:
            register_field_rules(con, settings.default_country)
            model = ModelProject(models_dir()).models[chaser_object.mart]
            build_model(con, model, window)
            context.log.info(
                "Built %s for %s on this fresh disk before syncing it",
                chaser_object.mart,
                describe_window(window),
            )


def _holds_window(con, chaser_object: ChaserObject, window: tuple[date, date]) -> bool:
    """Whether the mart holds any row of the window (a month with no document rebuilds in a
    moment)."""
    start, end = (d.isoformat() for d in window)
    ((held,),) = con.execute(
        f"select exists (select 1 from {chaser_object.mart} where date >= $1 and date < $2)",
        [start, end],
    ).fetchall()
    return bool(held)


def run_sync_step(
    context: dg.AssetExecutionContext,
    chaser_object: ChaserObject,
    config: SyncConfig,
    duckdb: DuckDBResource,
    chaser: ChaserResource,
    sync_state: SyncStateResource,
    settings: Settings,
) -> dg.MaterializeResult:
    """One sync asset's step: plan and send the object's rows in scope, report what happened."""
    history_start = settings.history_start_date
    window, months = _scope(context, chaser_object, history_start)
    if not config.dry_run and (stopped := mass_change_stop(context.instance)):
        raise dg.Failure(
            description=(
                f"Not sent: the last whole-history plan ({PENDING_ASSET}) was stopped by the "
                f"mass-change guard, and none has passed since. {stopped}"
            ),
            allow_retries=False,
        )
    _ensure_mart(context, chaser_object, duckdb, settings, window)
    scope = f"dated {describe_window(window)}" if chaser_object.partitioned else "all"
    clock = clock_from(config.as_of)

    def progress(report: SyncReport) -> None:
        done = sum(report.confirmed.values()) + report.failed
        if done % 10_000 < 100:
            context.log.info(
                "%s: %d of %d rows confirmed or rejected",
                chaser_object.name,
                done,
                report.attempted,
            )

    with chaser_session(
        chaser, duckdb, sync_state, initial_load=config.initial_load, deadline=config.deadline()
    ) as session:
        try:
            target = session.open_target(context, clock())
            context.log.info("Syncing %s (%s) to %s", chaser_object.name, scope, session.display)
            with session.state.lock(target, wait_seconds=sync_state.lock_wait_seconds):
                report = sync_object(
                    session.state,
                    target,
                    session.make_client,
                    chaser_object,
                    window=window,
                    options=config.options(),
                    run_id=context.run.run_id,
                    clock=clock,
                    on_progress=progress,
                )
        except (ChaserError, StateLockTimeout, MassChangeError) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        counts = month_counts(
            session.state,
            target,
            chaser_object,
            months,
            run_id=context.run.run_id,
            first_month=history_start.replace(day=1).isoformat(),
            last_month=month_key(utc_now()),
        )
        log_metadata = {} if config.dry_run else sync_log_metadata(session.state)
        budget = session.budget
        display = session.display
        waiver_over_at = session.waiver_over_at
    _log_outcome(context, report, chaser_object)
    fallback = budget.fallback_message()
    if waiver_over_at is not None:
        fallback = budget.waiver_over_message(waiver_over_at)
        context.log.info(fallback)
    elif fallback:
        context.log.warning(fallback)
    metadata: dict[str, object] = {}
    if months:
        # First, so each month's own window (set per month, overriding it) leads in the UI.
        metadata["window"] = describe_window(window)
        if len(months) > 1:
            metadata["run_window"] = describe_window(window)
        _add_month_metadata(context, report, counts, history_start, describe_window(window))
    metadata.update(_metadata(report, display))
    metadata["forecast"] = budget.forecast(report.planned_requests)
    if fallback:
        metadata["initial_load_fell_back"] = fallback
    if not config.dry_run:
        # Not an event of this step: the step's own materializations stay its asset's alone.
        context.instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=SYNC_LOG,
                metadata={
                    **log_metadata,
                    "appended_by": f"{chaser_object.sync_asset} in run {context.run.run_id}",
                },
            )
        )
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            rejection_rate_result(report, config.max_rejection_share, chaser_object.sync_asset)
        ],
    )


def sync_asset(chaser_object: ChaserObject, settings: Settings) -> dg.AssetsDefinition:
    """The asset that upserts one mart into Chaser (monthly partitions for documents)."""
    name = chaser_object.sync_asset
    partitioned = chaser_object.partitioned
    # customers wait for the whole-history plan (and its mass-change decision); the documents
    # wait for their customers
    deps = [PENDING_ASSET] if chaser_object is CUSTOMERS else [CUSTOMERS.sync_asset]
    # BackfillPolicy is beta in Dagster 1.13; a warning at every load helps nobody.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        decorator = dg.asset(
            name=name,
            description=DESCRIPTIONS[chaser_object.name],
            group_name=GROUP,
            deps=[chaser_object.mart, *deps],
            kinds={"chaser"},
            pool=CHASER_API_POOL,
            partitions_def=monthly_partitions(settings) if partitioned else None,
            backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
            # a monthly sync runs only when a month changed, so a quiet day would turn it red;
            # the data-lag check says whether Chaser is behind the ledger instead
            freshness_policy=None if partitioned else daily_freshness(settings),
            check_specs=[rejection_rate_spec(name)],
        )

    @decorator
    def _sync(
        context: dg.AssetExecutionContext,
        config: SyncConfig,
        duckdb: DuckDBResource,
        chaser: ChaserResource,
        sync_state: SyncStateResource,
    ) -> dg.MaterializeResult:
        return run_sync_step(
            context,
            chaser_object,
            config,
            duckdb,
            chaser,
            sync_state,
            settings,
        )

    return _sync


def sync_log_metadata(state: SyncState) -> dict[str, object]:
    """Rows in the sync log, what the last day added, and the query to read its failures."""
    state.fold()
    [(rows,)] = state.query(f"select count(*) from {LOG_TABLE}")
    recent = state.query(
        f"""select object, action, count(*) from {LOG_TABLE}
        where logged_at > $1 group by object, action order by object, action""",
        [utc_now() - timedelta(days=1)],
    )
    return {
        "dagster/row_count": rows,
        "last_24h": dg.MetadataValue.md(
            "\n".join(f"- {o} {a}: {n}" for o, a, n in recent) or "nothing logged"
        ),
        "query": dg.MetadataValue.md(
            f"```sql\nselect * from {LOG_TABLE} where action = 'failed' "
            "order by logged_at desc\n```"
        ),
        "read_it_with": "chaser-pipeline report",
    }


# Every sync step appends to the log and records a materialization of it (outside the step's own
# events); the log has no step of its own, so no job waits for (or warns about) sync assets it
# does not run.
SYNC_LOG = dg.AssetKey("chaser_sync_log")


def sync_log_spec() -> dg.AssetSpec:
    return dg.AssetSpec(
        SYNC_LOG,
        group_name=GROUP,
        deps=[o.sync_asset for o in CHASER_OBJECTS.values()],
        kinds={"duckdb"},
        description="Append-only log of every row sent, rejected or held back: target, run, key, "
        "action, status, message. Written by each sync step (a materialization per step), never "
        "built.",
        metadata={"dagster/table_name": LOG_TABLE},
    )


def pending_now(
    duckdb: DuckDBResource,
    sync_state: SyncStateResource,
    target: Target,
    settings: Settings,
    now: datetime,
    options: SyncOptions | None = None,
    *,
    rebuild: bool = False,
    log: dg.DagsterLogManager | None = None,
) -> Pending:
    """What `target` does not hold as the ledger says, planned
    over the whole history now (or as last planned, when nothing it depends on changed since).
    `rebuild`: a run outside the incremental job (the data-lag check) lands the ledger and
    builds the whole-history models first when this DuckDB never landed one (a fresh disk)."""
    with duckdb_connection(duckdb) as con:
        if rebuild:
            ensure_run_local_ledger(log or logging.getLogger(__name__), con, settings)
        state = sync_state.open(con, duckdb.database)
        pending, _ = cached_pending(
            state,
            target,
            models_dir(),
            history_start=settings.history_start_date,
            now=now,
            options=options,
        )
        return pending


def pending_months_asset(settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(
        name=PENDING_ASSET,
        group_name=GROUP,
        deps=whole_history_models(models_dir()),
        kinds={"duckdb"},
        # it asks Chaser which organisation the credentials belong to: one request
        pool=CHASER_API_POOL,
    )
    def chaser_pending_months(
        context: dg.AssetExecutionContext,
        config: PendingConfig,
        duckdb: DuckDBResource,
        chaser: ChaserResource,
        sync_state: SyncStateResource,
    ) -> dg.MaterializeResult:
        """What Chaser does not hold as the ledger says, every object over the whole history:
        the months to sync, and the one mass-change decision of the sync (before any send)."""
        now = utc_now()
        with chaser_session(chaser, duckdb, sync_state) as session:
            target = session.open_target(context, now)
            forecast_text = session.budget.forecast
        # re-executed alone in a fresh pod (after the mass-change guard stopped the run, say),
        # it lands the ledger and builds the models first rather than find nothing pending
        pending = pending_now(
            duckdb,
            sync_state,
            target,
            settings,
            now,
            config.options(),
            rebuild=True,
            log=context.log,
        )
        try:
            check_mass_change(pending, config.options())
        except MassChangeError as exc:
            # kept in the event log: every sync step refuses to send until a whole-history plan
            # passes (confirmed, or the ledger put right), so a monthly run queued before, a
            # backfill or a step materialized from the UI cannot send what the guard stopped
            context.log_event(
                dg.AssetObservation(
                    asset_key=PENDING_ASSET, metadata={MASS_CHANGE_STOPPED: str(exc)}
                )
            )
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        forecast = forecast_text(pending.requests)
        context.log.info(
            "Documents Chaser does not hold as the ledger says: %s; months to sync: %s; "
            "sending them takes %s",
            pending.documents or "none",
            ", ".join(pending.months) or "none",
            forecast,
        )
        metadata = pending.as_metadata()
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "forecast": forecast,
                "changed_months": dg.MetadataValue.json(metadata["changed_months"]),
                "pending_documents": dg.MetadataValue.json(metadata["pending_documents"]),
            }
        )

    return chaser_pending_months


@dg.definitions
def chaser_sync() -> dg.Definitions:
    """The sync assets of every Chaser object, the sync log, pending months and the lag check."""
    settings = load_settings()
    return dg.Definitions(
        assets=[
            *(sync_asset(o, settings) for o in CHASER_OBJECTS.values()),
            sync_log_spec(),
            pending_months_asset(settings),
        ],
        asset_checks=[
            data_lag_check(settings, pending_now),
            drift_sample_check(settings),
        ],
    )
