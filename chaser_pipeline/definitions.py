"""The chaser-pipeline code location: assembles Definitions, nothing else."""

import dagster as dg

from chaser_pipeline.assets.extract import extract_assets
from chaser_pipeline.assets.models import model_assets, model_checks
from chaser_pipeline.assets.sync import chaser_data_lag, sync_assets
from chaser_pipeline.checks import ledger_checks
from chaser_pipeline.jobs import data_lag_job, incremental_sync_job, monthly_sync_job
from chaser_pipeline.resources import build_resources
from chaser_pipeline.schedules import daily_sync_schedule, data_lag_schedule
from chaser_pipeline.sensors import changed_months_sensor


def build_definitions(resources: dict[str, object] | None = None) -> dg.Definitions:
    """The code location; `resources` replaces the ones built from the environment."""
    return dg.Definitions(
        assets=[*extract_assets, *model_assets, *sync_assets],
        asset_checks=[*model_checks, *ledger_checks, chaser_data_lag],
        jobs=[incremental_sync_job, monthly_sync_job, data_lag_job],
        schedules=[daily_sync_schedule, data_lag_schedule],
        sensors=[changed_months_sensor],
        resources=resources if resources is not None else build_resources(),
    )


defs = build_definitions()
