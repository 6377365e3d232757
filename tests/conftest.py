"""Shared fixtures: an isolated environment per test and an empty PostgreSQL database on demand."""

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


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """One brand-new PostgreSQL database per test session (per xdist worker), dropped at its end.
    `postgres_url` hands it to one test at a time, empty: creating a database costs ~0.3 s, so a
    database per test cost the fast layer ~8 s of its minute."""
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


def empty_postgres_database(url: str) -> None:
    """Close every other session on the database and drop every schema in it (the ledger, the
    sync state, whatever a test made), leaving an empty `public`: what a new database holds."""
    import adbc_driver_postgresql.dbapi as pg

    conn = pg.connect(url, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity "
            "where datname = current_database() and pid <> pg_backend_pid()"
        )
        cur.fetchall()
        cur.execute(
            "select nspname from pg_namespace "
            "where nspname not like 'pg\\_%' and nspname <> 'information_schema'"
        )
        for (schema,) in cur.fetchall():
            cur.execute(f'drop schema "{schema}" cascade')
        cur.execute("create schema public")
    finally:
        conn.close()


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """A PostgreSQL database for one test: fresh schemas only (every schema the test creates is
    dropped after it, and so is anything left before it), so tests never see each other's rows."""
    empty_postgres_database(postgres_database)
    yield postgres_database
    empty_postgres_database(postgres_database)
