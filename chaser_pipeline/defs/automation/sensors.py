"""Change-driven runs: each month whose ledger data changed is re-synced, and only those months."""

import dagster as dg

from chaser_pipeline.defs.automation.jobs import MONTHLY_JOB
from chaser_pipeline.defs.chaser_sync.checks import PENDING_ASSET
from chaser_pipeline.defs.partitions import monthly_partitions
from chaser_pipeline.settings import Settings
from chaser_pipeline.sync.pending import months_from_metadata, sync_range

# Runs of `chaser-pipeline sync` carry this tag: they sync their own months.
HEADLESS_TAG = "chaser_pipeline/headless"

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def _dry_run(run_config: dict) -> bool:
    ops = run_config.get("ops") or {}
    config = (ops.get("sync_chaser_customers") or {}).get("config") or {}
    return bool(config.get("dry_run"))


def changed_months_sensor(settings: Settings) -> dg.SensorDefinition:
    """The sensor that follows each incremental run with the monthly runs it found needed."""

    @dg.asset_sensor(
        asset_key=dg.AssetKey(PENDING_ASSET),
        job_name=MONTHLY_JOB,
        name="chaser_changed_months_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
    )
    def chaser_changed_months_sensor(
        context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
    ) -> dg.SkipReason | list[dg.RunRequest]:
        """After each incremental run, request one monthly sync run covering every month with
        changes (the monthly assets run a range in one run, stop-chasing changes first).

        Not after a `chaser-pipeline sync` run (it syncs its months itself) nor after a dry run
        (a dry run must never lead to real sends)."""
        run = context.instance.get_run_by_id(asset_event.run_id)
        if run is not None and run.tags.get(HEADLESS_TAG) == "true":
            return dg.SkipReason(
                f"Run {asset_event.run_id} is a chaser-pipeline sync, which syncs its own months."
            )
        if run is not None and _dry_run(run.run_config):
            return dg.SkipReason(
                f"Run {asset_event.run_id} was a dry run: its pending months are not sent."
            )
        materialization = asset_event.asset_materialization
        months = months_from_metadata(dict(materialization.metadata)) if materialization else []
        known = set(monthly_partitions(settings).get_partition_keys())
        wanted = [m for m in months if m in known]
        if not wanted:
            return dg.SkipReason("No month has ledger changes waiting for Chaser.")
        # One materialization of chaser_pending_months per incremental run: its run id and the
        # months make a run key unique per change set (EventLogEntry carries no storage id).
        start, end = sync_range(wanted)
        if start == end:
            return [dg.RunRequest(run_key=f"{asset_event.run_id}:{start}", partition_key=start)]
        return [
            dg.RunRequest(
                run_key=f"{asset_event.run_id}:{start}...{end}",
                tags={RANGE_START_TAG: start, RANGE_END_TAG: end},
            )
        ]

    return chaser_changed_months_sensor
