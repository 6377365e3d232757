"""Monthly partitions by issue month, for invoices, credit notes and their syncs."""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg

from chaser_pipeline.config import load_settings


def monthly_partitions_from(history_start: str) -> dg.MonthlyPartitionsDefinition:
    """Months from CHASER_HISTORY_START (YYYY-MM); the current month is included as it fills."""
    return dg.MonthlyPartitionsDefinition(start_date=f"{history_start}-01", end_offset=1)


monthly_partitions = monthly_partitions_from(load_settings().history_start)


def month_key(day: date | datetime) -> str:
    """The partition key of the month a document was issued in."""
    return f"{day.year:04d}-{day.month:02d}-01"
