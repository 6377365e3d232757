"""Monthly partitions by issue month, shared by the model and sync stages."""

from datetime import date, timedelta

import dagster as dg

from chaser_pipeline.db import WHOLE_HISTORY
from chaser_pipeline.settings import Settings


def monthly_partitions(settings: Settings) -> dg.MonthlyPartitionsDefinition:
    """Months from CHASER_HISTORY_START; the current month is included as it fills."""
    return dg.MonthlyPartitionsDefinition(start_date=f"{settings.history_start}-01", end_offset=1)


def describe_window(window: tuple[date, date]) -> str:
    """A window (start, end exclusive) as people read it, both days included:
    (2024-01-01, 2024-04-01) is "2024-01-01 to 2024-03-31"."""
    start, end = window
    last = (end - timedelta(days=1)).isoformat()
    if start == WHOLE_HISTORY[0] and end == WHOLE_HISTORY[1]:
        return "everything"
    if start == WHOLE_HISTORY[0]:
        # the first partition: it carries every document dated before the history start
        return f"everything up to {last}"
    if end == WHOLE_HISTORY[1]:
        # the current month's partition: it carries every document dated after it too
        return f"everything from {start.isoformat()}"
    return f"{start.isoformat()} to {last}"
