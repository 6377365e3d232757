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
    MONTHLY_ASSETS,
    MONTHLY_JOB,
)
from chaser_pipeline.defs.automation.runs import unfinished_work
from chaser_pipeline.defs.chaser_sync.checks import PENDING_ASSET
from chaser_pipeline.ledger.contract import LEDGER_TABLES
from chaser_pipeline.models.project import whole_history_models
from chaser_pipeline.paths import models_dir
from chaser_pipeline.settings import ConfigError, Settings
from chaser_pipeline.sync.objects import CHASER_OBJECTS


def _pipeline_assets() -> frozenset[dg.AssetKey]:
    """Every asset the daily sync's and the monthly sync's runs materialize."""
    names = {
        *MONTHLY_ASSETS,
        *whole_history_models(models_dir()),
        *(o.sync_asset for o in CHASER_OBJECTS.values()),
        *(f"ledger_{t.name}" for t in LEDGER_TABLES.values()),
        PENDING_ASSET,
    }
    return frozenset(dg.AssetKey(n) for n in names)


def _schedule(
    name: str,
    job: str,
    cron: str,
    variable: str,
    settings: Settings,
    description: str,
    waits_for: tuple[str, ...],
    assets: frozenset[dg.AssetKey] = frozenset(),
) -> dg.ScheduleDefinition:
    def evaluate(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        busy = unfinished_work(context.instance, waits_for, assets)
        if busy is not None:
            return dg.SkipReason(
                f"{busy}; this tick of {name} is skipped, the next one after it finishes runs."
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
            "Skipped while a run or backfill of the pipeline's assets has not finished.",
            (INCREMENTAL_JOB, MONTHLY_JOB),
            _pipeline_assets(),
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
