"""The freshness policy of the extract and daily sync assets: a daily pipeline is stale after a missed
day (warn 13 h, fail 26 h unless CHASER_FRESHNESS_WARN_HOURS / _FAIL_HOURS say otherwise)."""

from datetime import timedelta

import dagster as dg

from chaser_pipeline.settings import Settings


def daily_freshness(settings: Settings) -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=settings.freshness_fail_hours),
        warn_window=timedelta(hours=settings.freshness_warn_hours),
    )
