"""One whole sync, headless, through Dagster: what `chaser-pipeline sync` runs.

First the incremental job (extract, whole-history models and their checks, customers, pending
months), then the monthly job for every month with changes (consecutive months in one range run;
all history on the first run). Runs are recorded in the given Dagster instance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from operator import add
from typing import Any

import dagster as dg

from chaser_pipeline.defs.automation.jobs import (
    DATA_LAG_JOB,
    INCREMENTAL_JOB,
    MONTHLY_ASSETS,
    MONTHLY_JOB,
)
from chaser_pipeline.defs.automation.runs import HOST_TAG, recover_abandoned_runs, this_host
from chaser_pipeline.defs.automation.sensors import HEADLESS_TAG
from chaser_pipeline.defs.chaser_sync.checks import PENDING_ASSET
from chaser_pipeline.defs.chaser_sync.months import MONTH_FIELDS
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.pending import months_from_metadata, sync_range
from chaser_pipeline.sync.report import SyncSummary

SYNC_ASSETS = tuple(o.sync_asset for o in CHASER_OBJECTS.values())


@dataclass
class SyncRun:
    """What a headless sync did: success, runs, months, and each sync asset's summaries."""

    success: bool = True
    run_ids: list[str] = field(default_factory=list)
    months: list[str] = field(default_factory=list)
    # asset name -> one summary per run that materialized it
    summaries: dict[str, list[SyncSummary]] = field(default_factory=dict)

    def summary(self, assets: tuple[str, ...] = SYNC_ASSETS) -> SyncSummary:
        """Every run's figures for these sync assets, added up."""
        return reduce(add, (s for a in assets for s in self.summaries.get(a, [])), SyncSummary())


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
        summary = run_summary(materializations)
        run.summaries.setdefault(name, []).append(summary)
        partitions = sorted(m.partition for m in materializations if m.partition)
        where = f" [{partitions[0]} .. {partitions[-1]}]" if partitions else ""
        echo(f"  {name}{where}: {describe(summary)}")


# Lines of a failed step's message the summary prints.
_FAILURE_LINES = 12


def step_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """Each failed step with the message of the error that failed it (the innermost cause: the
    sentence that names the variable, file, table or row to fix), not its traceback."""
    lines = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data and data.user_failure_data.description:
            message = data.user_failure_data.description
        else:
            error = data.error
            while error is not None and error.cause is not None:
                error = error.cause
            message = error.message if error is not None else "failed with no error recorded"
        text = [line for line in message.strip().splitlines() if line.strip()][:_FAILURE_LINES]
        lines.append(f"  {event.step_key} failed: {text[0] if text else message.strip()}")
        lines.extend(f"    {line.strip()}" for line in text[1:])
    return lines


def run_summary(materializations: list[dg.AssetMaterialization]) -> SyncSummary:
    """One run's figures for a sync asset: a range run records each month's own counts, added up
    here; its requests, retries and durations are the run's, on every month: taken once."""
    summaries = [SyncSummary.from_metadata(m.metadata) for m in materializations]
    added = {name: sum(getattr(s, name) for s in summaries) for name in MONTH_FIELDS}
    return dataclasses.replace(summaries[0], **added)


def describe(summary: SyncSummary) -> str:
    """One line of a sync's figures, as the summary prints them."""
    line = (
        f"{summary.created} created, {summary.updated} updated, {summary.unchanged} unchanged, "
        f"{summary.held_back_waiting_for_customer} waiting for their customer, "
        f"{summary.skipped_not_worth_sending} not worth sending, "
        f"{summary.rejected_by_chaser} rejected by Chaser, "
        f"{summary.write_requests} write requests"
    )
    if summary.dry_run:
        line += (
            f" (dry run: would create {summary.planned_create}, update {summary.planned_update})"
        )
    return line


def run_sync(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    *,
    dry_run: bool = False,
    full_refresh: bool = False,
    confirm_mass_change: bool = False,
    initial_load: bool = False,
    as_of: str = "",
    log_level: str = "INFO",
    echo: Callable[[str], None] = print,
) -> SyncRun:
    """The incremental job, then one monthly run over the changed months, then (unless a dry
    run) the data-lag check; every run recorded in `instance`."""
    sync_config: dict[str, Any] = {}
    if dry_run:
        sync_config["dry_run"] = True
    if initial_load:
        sync_config["initial_load"] = True
    if as_of:
        sync_config["as_of"] = as_of
    if confirm_mass_change:
        sync_config["confirm_mass_change"] = True
    pending_config = {"confirm_mass_change": True} if confirm_mass_change else {}
    runner = _Runner(defs, instance, sync_config, pending_config, log_level, echo)
    for run_id in recover_abandoned_runs(instance):
        echo(f"  marked run {run_id} as failed: it was abandoned by a killed sync")
    if runner.incremental(full_refresh):
        runner.monthly()
        if dry_run:
            pass
        elif runner.run.months or runner.pending_documents or runner.planned_requests:
            runner.data_lag()
        else:
            # Nothing waits for Chaser: the check could only say so, in a run of its own.
            echo(
                "  data lag: none, no ledger change waits for Chaser "
                "(the hourly chaser_data_lag_check keeps watching)"
            )
    return runner.run


class _Runner:
    """Executes the jobs of one headless sync in-process and collects what they did."""

    def __init__(
        self,
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
        sync_config: dict[str, Any],
        pending_config: dict[str, Any],
        log_level: str,
        echo: Callable[[str], None],
    ) -> None:
        self.defs = defs
        self.instance = instance
        self.sync_config = sync_config
        self.pending_config = pending_config
        self.log_level = log_level
        self.echo = echo
        self.run = SyncRun()
        self.pending_documents = 0
        self.planned_requests = 0

    def _execute(
        self, job: str, assets: list[str], tags: dict[str, str], full_refresh: bool = False
    ) -> dg.ExecuteInProcessResult:
        config = self.sync_config if job != DATA_LAG_JOB else {}
        run_config = _run_config(assets, config, full_refresh, self.log_level)
        if self.pending_config and PENDING_ASSET in assets:
            run_config["ops"][PENDING_ASSET] = {"config": self.pending_config}
        return self.defs.resolve_job_def(job).execute_in_process(
            instance=self.instance,
            run_config=run_config,
            tags={HEADLESS_TAG: "true", HOST_TAG: this_host(), **tags},
            raise_on_error=False,
        )

    def incremental(self, full_refresh: bool) -> bool:
        """Extract, whole-history models, customers, pending months; False when it failed."""
        job = self.defs.resolve_job_def(INCREMENTAL_JOB)
        names = [k.to_user_string() for k in job.asset_layer.executable_asset_keys]
        result = self._execute(INCREMENTAL_JOB, names, {}, full_refresh)
        _collect(result, self.run, self.echo)
        if not result.success:
            self._failed(result, "")
            return False
        [pending] = result.asset_materializations_for_node(PENDING_ASSET)
        months = self.run.months = months_from_metadata(dict(pending.metadata))
        documents = pending.metadata.get("pending_documents")
        self.pending_documents = sum(dict(getattr(documents, "value", None) or {}).values())
        requests = pending.metadata.get("planned_requests")
        self.planned_requests = int(getattr(requests, "value", requests) or 0)
        if months:
            self.echo(f"  months with ledger changes: {len(months)} ({months[0]} .. {months[-1]})")
        else:
            self.echo("  months with ledger changes: none")
        if forecast := pending.metadata.get("forecast"):
            self.echo(f"  sending what is pending takes {getattr(forecast, 'value', forecast)}")
        return True

    def _failed(self, result: dg.ExecuteInProcessResult, what: str) -> None:
        for line in step_failures(result):
            self.echo(line)
        self.echo(f"  run {result.run_id}{what} failed (its events: chaser-pipeline ui, Runs)")
        self.run.success = False

    def monthly(self) -> None:
        """One range run of the monthly job over every changed month."""
        months = sync_range(self.run.months)
        if months is None:
            return
        start, end = months
        tags = {
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        }
        result = self._execute(MONTHLY_JOB, list(MONTHLY_ASSETS), tags)
        _collect(result, self.run, self.echo)
        if not result.success:
            self._failed(result, f" for {start} .. {end}")

    def data_lag(self) -> None:
        result = self._execute(DATA_LAG_JOB, [], {})
        self.run.run_ids.append(result.run_id)
        if not result.success:  # the sync's sends stand; what kept the check from its answer
            for line in step_failures(result):
                self.echo(line)
            self.echo(f"  data lag: not checked, run {result.run_id} failed")
        for evaluation in result.get_asset_check_evaluations():
            status = "ok" if evaluation.passed else evaluation.severity.value
            self.echo(f"  data lag: {evaluation.description or ''} ({status})")
