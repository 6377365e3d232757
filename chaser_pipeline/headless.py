"""One whole sync, headless, through Dagster: what `chaser-pipeline sync` runs.

First the incremental job (extract, whole-history models and their checks, customers, pending
months), then the monthly job for every month with changes (consecutive months in one range run;
all history on the first run). Runs are recorded in the given Dagster instance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from chaser_pipeline.assets.sync import changed_months_from_metadata
from chaser_pipeline.jobs import MONTHLY_ASSETS

SYNC_ASSETS = ("sync_chaser_customers", "sync_chaser_invoices", "sync_chaser_credit_notes")
HEADLESS_TAG = "chaser_pipeline/headless"


@dataclass
class SyncRun:
    """What a headless sync did: success, runs, months, and each sync asset's metadata."""

    success: bool = True
    run_ids: list[str] = field(default_factory=list)
    months: list[str] = field(default_factory=list)
    # asset name -> list of metadata dicts, one per run that materialized it
    metadata: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def total(self, field_name: str, assets: tuple[str, ...] = SYNC_ASSETS) -> int:
        return sum(int(m.get(field_name, 0) or 0) for a in assets for m in self.metadata.get(a, []))


def contiguous_ranges(months: list[str]) -> list[tuple[str, str]]:
    """Group month keys (YYYY-MM-01) into runs of consecutive months."""
    ranges: list[tuple[str, str]] = []
    for key in sorted(months):
        day = date.fromisoformat(key)
        if ranges:
            last = date.fromisoformat(ranges[-1][1])
            following = date(last.year + last.month // 12, last.month % 12 + 1, 1)
            if day == following:
                ranges[-1] = (ranges[-1][0], key)
                continue
        ranges.append((key, key))
    return ranges


def _run_config(
    assets: list[str], sync_config: dict[str, Any], full_refresh: bool, log_level: str
) -> dict:
    ops: dict[str, dict] = {}
    for name in assets:
        if name in SYNC_ASSETS and sync_config:
            ops[name] = {"config": sync_config}
        if name.startswith("ledger_") and full_refresh:
            ops[name] = {"config": {"full_refresh": True}}
    return {"ops": ops, "loggers": {"console": {"config": {"log_level": log_level}}}}


def _collect(result: dg.ExecuteInProcessResult, run: SyncRun, echo: Callable[[str], None]) -> None:
    run.run_ids.append(result.run_id)
    for name in SYNC_ASSETS:
        materializations = result.asset_materializations_for_node(name)
        if not materializations:
            continue
        # A range run attaches the same metadata to every month it covers: count it once.
        meta = {k: getattr(v, "value", v) for k, v in materializations[0].metadata.items()}
        run.metadata.setdefault(name, []).append(meta)
        partitions = sorted(m.partition for m in materializations if m.partition)
        where = f" [{partitions[0]} .. {partitions[-1]}]" if partitions else ""
        line = (
            f"  {name}{where}: {meta.get('created', 0)} created, {meta.get('updated', 0)} updated, "
            f"{meta.get('unchanged', 0)} unchanged, "
            f"{meta.get('held_back_waiting_for_customer', 0)} waiting for their customer, "
            f"{meta.get('skipped_not_worth_sending', 0)} not worth sending, "
            f"{meta.get('rejected_by_chaser', 0)} rejected by Chaser, "
            f"{meta.get('write_requests', 0)} write requests"
        )
        if meta.get("dry_run"):
            line += (
                f" (dry run: would create {meta.get('planned_create')}, "
                f"update {meta.get('planned_update')})"
            )
        echo(line)


def recover_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark runs left STARTED by a killed `chaser-pipeline sync` as failed and free their slots.

    Call only while holding the headless lock: then no other headless sync is alive, so any of
    its runs still marked as running was abandoned. Without this, a killed run would keep its
    `chaser_api` pool slot forever and the next sync would wait for it.
    """
    abandoned = instance.get_runs(
        filters=dg.RunsFilter(
            tags={HEADLESS_TAG: "true"},
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
        )
    )
    for dagster_run in abandoned:
        instance.report_run_failed(
            dagster_run, message="Abandoned: the chaser-pipeline sync that started it was killed."
        )
        instance.event_log_storage.free_concurrency_slots_for_run(dagster_run.run_id)
    return [r.run_id for r in abandoned]


def run_sync(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    *,
    dry_run: bool = False,
    full_refresh: bool = False,
    confirm_mass_change: bool = False,
    as_of: str = "",
    log_level: str = "INFO",
    echo: Callable[[str], None] = print,
) -> SyncRun:
    sync_config: dict[str, Any] = {}
    if dry_run:
        sync_config["dry_run"] = True
    if confirm_mass_change:
        sync_config["confirm_mass_change"] = True
    if as_of:
        sync_config["as_of"] = as_of
    run = SyncRun()
    tags = {HEADLESS_TAG: "true"}
    for run_id in recover_abandoned_runs(instance):
        echo(f"  marked run {run_id} as failed: it was abandoned by a killed sync")
    incremental = defs.resolve_job_def("chaser_incremental_sync")
    names = [k.to_user_string() for k in incremental.asset_layer.executable_asset_keys]
    result = incremental.execute_in_process(
        instance=instance,
        run_config=_run_config(names, sync_config, full_refresh, log_level),
        tags=tags,
        raise_on_error=False,
    )
    _collect(result, run, echo)
    if not result.success:
        echo(f"  run {result.run_id} failed: open it in the Dagster UI for the step that failed")
        run.success = False
        return run
    [pending] = result.asset_materializations_for_node("chaser_pending_months")
    run.months = changed_months_from_metadata(dict(pending.metadata))
    if run.months:
        echo(
            f"  months with ledger changes: {len(run.months)} ({run.months[0]} .. {run.months[-1]})"
        )
    else:
        echo("  months with ledger changes: none")
    monthly = defs.resolve_job_def("chaser_monthly_sync")
    for start, end in contiguous_ranges(run.months):
        result = monthly.execute_in_process(
            instance=instance,
            run_config=_run_config(list(MONTHLY_ASSETS), sync_config, False, log_level),
            tags={
                **tags,
                "dagster/asset_partition_range_start": start,
                "dagster/asset_partition_range_end": end,
            },
            raise_on_error=False,
        )
        _collect(result, run, echo)
        if not result.success:
            echo(f"  run {result.run_id} for {start} .. {end} failed")
            run.success = False
    if not dry_run:
        lag = defs.resolve_job_def("chaser_data_lag_check").execute_in_process(
            instance=instance,
            run_config=_run_config([], {}, False, log_level),
            tags=tags,
            raise_on_error=False,
        )
        run.run_ids.append(lag.run_id)
        for evaluation in lag.get_asset_check_evaluations():
            description = evaluation.description or ""
            echo(
                f"  data lag: {description} ({'ok' if evaluation.passed else evaluation.severity.value})"
            )
    return run
