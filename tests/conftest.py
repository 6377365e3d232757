"""Shared fixtures: an isolated environment per test and a fresh PostgreSQL database on demand."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support.ledger import POSTGRES_ADMIN_URL, postgres_available

UNDER_CI = os.environ.get("CI", "").lower() == "true"

# Every variable the pipeline reads (.env.example lists them).
CHASER_VARIABLES = (
    "CHASER_WAREHOUSE_URL",
    "CHASER_DUCKDB_PATH",
    "CHASER_API_URL",
    "CHASER_API_KEY",
    "CHASER_API_SECRET",
    "CHASER_DEFAULT_COUNTRY",
    "CHASER_HISTORY_START",
    "CHASER_SYNC_CRON",
    "CHASER_SYNC_TIMEZONE",
    "CHASER_DATA_LAG_CRON",
    "CHASER_DRIFT_CRON",
    "CHASER_FRESHNESS_WARN_HOURS",
    "CHASER_FRESHNESS_FAIL_HOURS",
    "CHASER_STATE_URL",
    "CHASER_API_REQUESTS_PER_MINUTE",
    "CHASER_API_MAX_IN_FLIGHT",
    "CHASER_API_REQUEST_TIMEOUT",
    "CHASER_EMULATOR_API_KEY",
    "CHASER_EMULATOR_API_SECRET",
)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory, monkeypatch) -> None:
    """No test reads a developer's Chaser settings or writes outside its temporary folder."""
    home = tmp_path_factory.mktemp("env")
    for name in {*CHASER_VARIABLES, *(n for n in os.environ if n.startswith("CHASER_"))}:
        # set first so the teardown removes whatever the test put there too
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("CHASER_DUCKDB_PATH", str(home / "pipeline.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    (home / "dagster_home").mkdir()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A brand-new PostgreSQL database for one test, dropped afterwards."""
    import adbc_driver_postgresql.dbapi as pg

    reason = postgres_available()
    if reason:
        if UNDER_CI:
            pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
        pytest.skip(f"no PostgreSQL server: {reason}")
    name = f"chaser_test_{uuid.uuid4().hex[:12]}"
    admin = pg.connect(POSTGRES_ADMIN_URL, autocommit=True)
    try:
        admin.cursor().execute(f'create database "{name}"')
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.cursor().execute(f'drop database if exists "{name}" with (force)')
        admin.close()
