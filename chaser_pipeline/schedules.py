"""The daily incremental sync (cron and timezone from CHASER_SYNC_CRON / CHASER_SYNC_TIMEZONE)."""

import os

import dagster as dg

from chaser_pipeline.jobs import data_lag_job, incremental_sync_job

DEFAULT_CRON = "0 5 * * *"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_DATA_LAG_CRON = "30 * * * *"
TIMEZONE = os.environ.get("CHASER_SYNC_TIMEZONE", "").strip() or DEFAULT_TIMEZONE

daily_sync_schedule = dg.ScheduleDefinition(
    name="chaser_daily_sync",
    job=incremental_sync_job,
    cron_schedule=os.environ.get("CHASER_SYNC_CRON", "").strip() or DEFAULT_CRON,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: land ledger changes, rebuild models, sync customers; changed months follow.",
)

data_lag_schedule = dg.ScheduleDefinition(
    name="chaser_data_lag_check",
    job=data_lag_job,
    cron_schedule=os.environ.get("CHASER_DATA_LAG_CRON", "").strip() or DEFAULT_DATA_LAG_CRON,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: how far Chaser is behind the ledger (catches months a sync skipped).",
)
