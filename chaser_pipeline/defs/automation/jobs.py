"""Jobs: the incremental run (extract, whole-history models, customers), the monthly sync of
invoices and credit notes, and the data-lag check on its own."""

from __future__ import annotations

import dagster as dg

from chaser_pipeline.defs.chaser_sync.checks import (
    DATA_LAG,
    DRIFT_SAMPLE,
    PENDING_ASSET,
    SYNC_LOG_ASSET,
)
from chaser_pipeline.models.project import whole_history_models
from chaser_pipeline.paths import models_dir
from chaser_pipeline.sync.objects import CHASER_OBJECTS

INCREMENTAL_JOB = "chaser_incremental_sync"
MONTHLY_JOB = "chaser_monthly_sync"
DATA_LAG_JOB = "chaser_data_lag_check"
DRIFT_JOB = "chaser_drift_sample"

MONTHLY_ASSETS = tuple(
    name for o in CHASER_OBJECTS.values() if o.partitioned for name in (o.mart, o.sync_asset)
)

# The data-lag check runs on its own: inside the incremental run it would see the changes just
# landed, which the monthly runs the sensor starts next have not had a chance to send.
DATA_LAG_CHECK = dg.AssetCheckKey(dg.AssetKey(PENDING_ASSET), DATA_LAG)
DRIFT_CHECK = dg.AssetCheckKey(dg.AssetKey(SYNC_LOG_ASSET), DRIFT_SAMPLE)


def incremental_sync_job() -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        INCREMENTAL_JOB,
        selection=(
            dg.AssetSelection.groups("extract")
            | dg.AssetSelection.assets(
                *whole_history_models(models_dir()),
                *(o.sync_asset for o in CHASER_OBJECTS.values() if not o.partitioned),
                PENDING_ASSET,
            )
        )
        - dg.AssetSelection.checks(DATA_LAG_CHECK, DRIFT_CHECK),
        description="Land ledger changes, rebuild the whole-history models, sync customers, and "
        "find the months whose documents changed (the sensor then syncs exactly those months).",
    )


def monthly_sync_job() -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        MONTHLY_JOB,
        selection=dg.AssetSelection.assets(*MONTHLY_ASSETS),
        description="Rebuild and sync the invoices and credit notes of one month (or a range of "
        "months).",
    )


def data_lag_job() -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        DATA_LAG_JOB,
        selection=dg.AssetSelection.checks(DATA_LAG_CHECK),
        description="How far Chaser is behind the ledger: fails when landed changes wait too long.",
    )


def drift_job() -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        DRIFT_JOB,
        selection=dg.AssetSelection.checks(DRIFT_CHECK),
        description="Read a few pages of what Chaser holds and compare them with the sync state.",
    )
