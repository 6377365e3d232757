"""The daily incremental sync and the hourly data-lag check, on the configured crons."""

import dagster as dg

from chaser_pipeline.defs.automation.jobs import DATA_LAG_JOB, DRIFT_JOB, INCREMENTAL_JOB
from chaser_pipeline.settings import ConfigError, Settings


def _schedule(
    name: str, job: str, cron: str, variable: str, settings: Settings, description: str
) -> dg.ScheduleDefinition:
    try:
        return dg.ScheduleDefinition(
            name=name,
            job_name=job,
            cron_schedule=cron,
            execution_timezone=settings.sync_timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=description,
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
            "Daily: land ledger changes, rebuild models, sync customers; changed months follow.",
        ),
        _schedule(
            "chaser_data_lag_check",
            DATA_LAG_JOB,
            settings.data_lag_cron,
            "CHASER_DATA_LAG_CRON",
            settings,
            "Hourly: how far Chaser is behind the ledger (catches months a sync skipped).",
        ),
        _schedule(
            "chaser_drift_sample",
            DRIFT_JOB,
            settings.drift_cron,
            "CHASER_DRIFT_CRON",
            settings,
            "Daily: a few pages of what Chaser holds compared with the sync state.",
        ),
    ]
