"""Jobs: the incremental run (extract, whole-history models, customers) and the monthly sync."""

import dagster as dg

from chaser_pipeline.assets.sync import unpartitioned_model_keys

MONTHLY_ASSETS = [
    "chaser_invoices",
    "chaser_credit_notes",
    "sync_chaser_invoices",
    "sync_chaser_credit_notes",
]

# The data-lag check runs on its own: inside the incremental run it would see the changes just
# landed, which the monthly runs the sensor starts next have not had a chance to send.
DATA_LAG_CHECK = dg.AssetCheckKey(dg.AssetKey("chaser_pending_months"), "chaser_data_lag")

incremental_sync_job = dg.define_asset_job(
    "chaser_incremental_sync",
    selection=(
        dg.AssetSelection.groups("extract")
        | dg.AssetSelection.assets(
            *unpartitioned_model_keys(),
            "sync_chaser_customers",
            "chaser_pending_months",
            "chaser_sync_log",
        )
    )
    - dg.AssetSelection.checks(DATA_LAG_CHECK),
    description="Land ledger changes, rebuild the whole-history models, sync customers, and find "
    "the months whose documents changed (the sensor then syncs exactly those months).",
)

monthly_sync_job = dg.define_asset_job(
    "chaser_monthly_sync",
    selection=dg.AssetSelection.assets(*MONTHLY_ASSETS),
    description="Rebuild and sync the invoices and credit notes of one month (or a range of months).",
)

data_lag_job = dg.define_asset_job(
    "chaser_data_lag_check",
    selection=dg.AssetSelection.checks(DATA_LAG_CHECK),
    description="How far Chaser is behind the ledger: fails when landed changes wait too long.",
)
