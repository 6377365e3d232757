"""The daily incremental sync, the hourly data-lag check and the daily drift sample, on the
configured crons.

A tick is skipped, with the reason shown in the UI, while a run it would collide with has not
finished: a first load at Chaser's budget can send for hours or days, and holds the pipeline's
DuckDB and the `chaser_api` pool meanwhile. A daily sync started then would fail on the file's
lock, and hourly checks would pile up waiting for the pool (a run worker, or a pod, each); the
next tick after the long run finished runs as usual."""

import dagster as dg

from chaser_pipeline.defs.automation.jobs import (
    DATA_LAG_JOB,
    DRIFT_JOB,
    INCREMENTAL_JOB,
    MONTHLY_JOB,
)
from chaser_pipeline.settings import ConfigError, Settings

# Runs that may still start, or hold what they need
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def unfinished_run(instance: dg.DagsterInstance, jobs: tuple[str, ...]) -> dg.RunRecord | None:
    """The newest run of any of `jobs` that has not finished, if any."""
    for job in jobs:
        records = instance.get_run_records(
            dg.RunsFilter(job_name=job, statuses=UNFINISHED), limit=1
        )
        if records:
            return records[0]
    return None


def _schedule(
    name: str,
    job: str,
    cron: str,
    variable: str,
    settings: Settings,
    description: str,
    waits_for: tuple[str, ...],
) -> dg.ScheduleDefinition:
    def evaluate(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        record = unfinished_run(context.instance, waits_for)
        if record is not None:
            run = record.dagster_run
            return dg.SkipReason(
                f"Run {run.run_id} of {run.job_name} has not finished ({run.status.value}); "
                f"this tick of {name} is skipped, the next one after it finishes runs."
            )
        return dg.RunRequest()

    try:
        return dg.ScheduleDefinition(
            name=name,
            job_name=job,
            cron_schedule=cron,
            execution_timezone=settings.sync_timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=description,
            execution_fn=evaluate,
        )
    except dg.DagsterInvalidDefinitionError:
        raise ConfigError(
            f"{variable} must be a cron schedule such as '0 5 * * *' (got {cron!r})"
        ) from None


def schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    return [
        _schedule(
            "chaser_daily_sync",
            INCREMENTAL_JOB,
            settings.sync_cron,
            "CHASER_SYNC_CRON",
            settings,
            "Daily: land ledger changes, rebuild models, sync customers; changed months follow. "
            "Skipped while an incremental or monthly run has not finished.",
            (INCREMENTAL_JOB, MONTHLY_JOB),
        ),
        _schedule(
            "chaser_data_lag_check",
            DATA_LAG_JOB,
            settings.data_lag_cron,
            "CHASER_DATA_LAG_CRON",
            settings,
            "Hourly: how far Chaser is behind the ledger (catches months a sync skipped). "
            "Skipped while the previous check has not finished.",
            (DATA_LAG_JOB,),
        ),
        _schedule(
            "chaser_drift_sample",
            DRIFT_JOB,
            settings.drift_cron,
            "CHASER_DRIFT_CRON",
            settings,
            "Daily: a few pages of what Chaser holds compared with the sync state. Skipped while "
            "the previous sample has not finished.",
            (DRIFT_JOB,),
        ),
    ]
