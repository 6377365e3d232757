"""Freshness policies for the extract and sync assets (warn 13 h, fail 26 h unless configured)."""

import os
from datetime import timedelta

import dagster as dg

from chaser_pipeline.config import ConfigError


def _hours(name: str, default: float) -> timedelta:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return timedelta(hours=default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of hours (got {raw!r})") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive (got {raw!r})")
    return timedelta(hours=value)


def freshness_windows() -> tuple[timedelta, timedelta]:
    """(warn, fail) from CHASER_FRESHNESS_WARN_HOURS and CHASER_FRESHNESS_FAIL_HOURS."""
    warn = _hours("CHASER_FRESHNESS_WARN_HOURS", 13)
    fail = _hours("CHASER_FRESHNESS_FAIL_HOURS", 26)
    if warn >= fail:
        raise ConfigError(
            "CHASER_FRESHNESS_WARN_HOURS must be smaller than CHASER_FRESHNESS_FAIL_HOURS"
        )
    return warn, fail


def sync_freshness() -> dg.FreshnessPolicy:
    """A daily pipeline: stale after a missed day."""
    warn, fail = freshness_windows()
    return dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=warn)
