"""Jobs: the incremental run (extract, whole-history models, customers) and the monthly sync."""

import dagster as dg

from chaser_pipeline.assets.sync import unpartitioned_model_keys

MONTHLY_ASSETS = [
    "chaser_invoices",
    "chaser_credit_notes",
    "sync_chaser_invoices",
    "sync_chaser_credit_notes",
]

incremental_sync_job = dg.define_asset_job(
    "chaser_incremental_sync",
    selection=dg.AssetSelection.groups("extract")
    | dg.AssetSelection.assets(
        *unpartitioned_model_keys(),
        "sync_chaser_customers",
        "chaser_pending_months",
        "chaser_sync_log",
    ),
    description="Land ledger changes, rebuild the whole-history models, sync customers, and find "
    "the months whose documents changed (the sensor then syncs exactly those months).",
)

monthly_sync_job = dg.define_asset_job(
    "chaser_monthly_sync",
    selection=dg.AssetSelection.assets(*MONTHLY_ASSETS),
    description="Rebuild and sync the invoices and credit notes of one month (or a range of months).",
)
