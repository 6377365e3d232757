"""The daily incremental sync (cron and timezone from CHASER_SYNC_CRON / CHASER_SYNC_TIMEZONE)."""

import os

import dagster as dg

from chaser_pipeline.jobs import incremental_sync_job

DEFAULT_CRON = "0 5 * * *"
DEFAULT_TIMEZONE = "UTC"

daily_sync_schedule = dg.ScheduleDefinition(
    name="chaser_daily_sync",
    job=incremental_sync_job,
    cron_schedule=os.environ.get("CHASER_SYNC_CRON", "").strip() or DEFAULT_CRON,
    execution_timezone=os.environ.get("CHASER_SYNC_TIMEZONE", "").strip() or DEFAULT_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: land ledger changes, rebuild models, sync customers; changed months follow.",
)
