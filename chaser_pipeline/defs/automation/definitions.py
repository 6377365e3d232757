"""Automation: the jobs, their schedules, and the sensor that syncs exactly the changed months."""

import dagster as dg

from chaser_pipeline.defs.automation.jobs import (
    data_lag_job,
    drift_job,
    incremental_sync_job,
    monthly_sync_job,
)
from chaser_pipeline.defs.automation.schedules import schedules
from chaser_pipeline.defs.automation.sensors import changed_months_sensor
from chaser_pipeline.settings import load_settings


@dg.definitions
def automation() -> dg.Definitions:
    settings = load_settings()
    return dg.Definitions(
        jobs=[incremental_sync_job(), monthly_sync_job(), data_lag_job(), drift_job()],
        schedules=schedules(settings),
        sensors=[changed_months_sensor(settings)],
    )
