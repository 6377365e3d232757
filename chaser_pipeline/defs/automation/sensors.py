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

    @dg.sensor(
        job_name=MONTHLY_JOB,
        name="chaser_changed_months_sensor",
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="After each incremental run has finished, one monthly sync run covering "
        "every month its chaser_pending_months found changed.",
    )
    def chaser_changed_months_sensor(
        context: dg.SensorEvaluationContext,
    ) -> dg.SkipReason | list[dg.RunRequest]:
        """After each incremental run, request one monthly sync run covering every month with
        changes (the monthly assets run a range in one run, stop-chasing changes first).

        Only once that run has finished: `chaser_pending_months` materializes before the run
        syncs customers and contact persons (it is the mass-change decision before any send),
        and a monthly run started then would build its marts while the customers' sync holds
        the pipeline's DuckDB (for minutes at Chaser's budget on a first load) and fail on its
        lock, or send invoices ahead of their customers. The cursor is the storage id of the
        newest materialization handled, so one whose run is still going is read again.

        Not after a `chaser-pipeline sync` run (it syncs its own months) nor after a dry run (a
        dry run must never lead to real sends)."""
        after = int(context.cursor) if context.cursor else None
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(PENDING_ASSET), after_storage_id=after),
            limit=100,
            ascending=True,
        ).records
        handled, chosen, reasons = after, None, []
        for record in records:
            run = context.instance.get_run_by_id(record.run_id)
            if run is not None and not run.is_finished:
                reasons.append(
                    f"Run {record.run_id} found the pending months and is still running: its "
                    "months are requested once it has finished."
                )
                break
            handled = record.storage_id
            if run is not None and run.tags.get(HEADLESS_TAG) == "true":
                reasons.append(
                    f"Run {record.run_id} is a chaser-pipeline sync, which syncs its own months."
                )
            elif run is not None and _dry_run(run.run_config):
                reasons.append(
                    f"Run {record.run_id} was a dry run: its pending months are not sent."
                )
            else:
                # each plan covers the whole history: the newest real one says it all
                chosen = record
        if handled != after:
            context.update_cursor(str(handled))
        if chosen is None:
            return dg.SkipReason(" ".join(reasons) or "No incremental run since the last tick.")
        materialization = chosen.asset_materialization
        months = months_from_metadata(dict(materialization.metadata)) if materialization else []
        known = set(monthly_partitions(settings).get_partition_keys())
        wanted = [m for m in months if m in known]
        if not wanted:
            return dg.SkipReason("No month has ledger changes waiting for Chaser.")
        # One materialization of chaser_pending_months per incremental run: its run id and the
        # months make a run key unique per change set.
        start, end = sync_range(wanted)
        if start == end:
            return [dg.RunRequest(run_key=f"{chosen.run_id}:{start}", partition_key=start)]
        return [
            dg.RunRequest(
                run_key=f"{chosen.run_id}:{start}...{end}",
                tags={RANGE_START_TAG: start, RANGE_END_TAG: end},
            )
        ]

    return chaser_changed_months_sensor
