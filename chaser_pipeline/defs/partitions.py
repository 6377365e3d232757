"""Monthly partitions by issue month, shared by the model and sync stages."""

import dagster as dg

from chaser_pipeline.settings import Settings


def monthly_partitions(settings: Settings) -> dg.MonthlyPartitionsDefinition:
    """Months from CHASER_HISTORY_START; the current month is included as it fills."""
    return dg.MonthlyPartitionsDefinition(start_date=f"{settings.history_start}-01", end_offset=1)
