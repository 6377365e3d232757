"""Change-driven runs: each month whose ledger data changed is re-synced, and only those months."""

import dagster as dg

from chaser_pipeline.assets.sync import changed_months_from_metadata
from chaser_pipeline.headless import HEADLESS_TAG, contiguous_ranges
from chaser_pipeline.jobs import monthly_sync_job
from chaser_pipeline.partitions import monthly_partitions

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def _dry_run(run_config: dict) -> bool:
    ops = run_config.get("ops") or {}
    config = (ops.get("sync_chaser_customers") or {}).get("config") or {}
    return bool(config.get("dry_run"))


@dg.asset_sensor(
    asset_key=dg.AssetKey("chaser_pending_months"),
    job=monthly_sync_job,
    name="chaser_changed_months_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def changed_months_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """After each incremental run, request a monthly sync of every month with changes:
    one run per stretch of consecutive months (the monthly assets run a range in one run).

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
    months = changed_months_from_metadata(dict(materialization.metadata)) if materialization else []
    known = set(monthly_partitions.get_partition_keys(dynamic_partitions_store=context.instance))
    wanted = [m for m in months if m in known]
    if not wanted:
        return dg.SkipReason("No month has ledger changes waiting for Chaser.")
    # One materialization of chaser_pending_months per incremental run: its run id and the
    # months make a run key unique per change set (EventLogEntry carries no storage id).
    requests = []
    for start, end in contiguous_ranges(wanted):
        if start == end:
            requests.append(
                dg.RunRequest(run_key=f"{asset_event.run_id}:{start}", partition_key=start)
            )
        else:
            requests.append(
                dg.RunRequest(
                    run_key=f"{asset_event.run_id}:{start}...{end}",
                    tags={RANGE_START_TAG: start, RANGE_END_TAG: end},
                )
            )
    return requests
