"""Sync state in PostgreSQL (CHASER_STATE_URL): what Chaser confirmed survives losing the whole
working folder, a killed run's journal is folded before the next plan, the lock holds across
connections, and the end of an organisation's waiver is kept for every worker."""

from __future__ import annotations

import pytest

from chaser_pipeline.db import utc_now
from chaser_pipeline.settings import Secret
from chaser_pipeline.sync.engine import check_target, sync_object
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.postgres_state import PostgresState
from chaser_pipeline.sync.state import StateLockTimeout, Target
from tests.support.marts import emulated_chaser, mart_db

pytestmark = pytest.mark.postgres

CUSTOMERS = [("C-1", "Good Ltd"), ("C-2", "Other Ltd")]
INVOICES = [("I-1", "C-1"), ("I-2", "C-2"), ("I-3", "C-2")]


def _sync_all(state, chaser, run_id: str) -> dict[str, int]:
    target, _ = check_target(state, chaser.url, chaser.clients(), run_id=run_id, now=utc_now())
    sent = {}
    for name in ("customers", "invoices"):
        report = sync_object(state, target, chaser.clients(), CHASER_OBJECTS[name], run_id=run_id)
        sent[name] = sum(report.confirmed.values())
    return sent


def test_a_fresh_working_folder_sends_nothing_chaser_already_holds(tmp_path, postgres_url):
    url = Secret(postgres_url)
    with emulated_chaser(tmp_path) as chaser:
        first_folder = tmp_path / "run1"
        first_folder.mkdir()
        con = mart_db(first_folder / "p.duckdb", CUSTOMERS, INVOICES)
        assert _sync_all(PostgresState(con, url), chaser, "r1") == {"customers": 2, "invoices": 3}
        con.close()

        # a new container: an empty working folder, the same marts rebuilt, the same state
        second_folder = tmp_path / "run2"
        second_folder.mkdir()
        con = mart_db(second_folder / "p.duckdb", CUSTOMERS, INVOICES)
        before = chaser.store().write_request_count()
        assert _sync_all(PostgresState(con, url), chaser, "r2") == {"customers": 0, "invoices": 0}
        assert chaser.store().write_request_count() == before

        # a change still goes, once
        con.execute("update chaser_invoices set total = 13.00 where invoice_id = 'I-2'")
        assert _sync_all(PostgresState(con, url), chaser, "r3") == {"customers": 0, "invoices": 1}
        state = PostgresState(con, url)
        [(rows, keys)] = state.query(
            "select count(*), count(distinct (target, object, key)) from chaser_sync.state"
        )
        assert rows == keys == 5
        [(logged,)] = state.query("select count(*) from chaser_sync.log")
        assert logged == 6


def test_the_lock_is_held_across_connections(tmp_path, postgres_url):
    url = Secret(postgres_url)
    with emulated_chaser(tmp_path) as chaser:
        con = mart_db(tmp_path / "p.duckdb", CUSTOMERS, INVOICES)
        first = PostgresState(con, url)
        target, _ = check_target(first, chaser.url, chaser.clients(), run_id="r1", now=utc_now())
        other = PostgresState(mart_db(tmp_path / "q.duckdb", [], []), url)
        with (
            first.lock(target, wait_seconds=1),
            pytest.raises(StateLockTimeout, match=target.organisation_id),
            other.lock(target, wait_seconds=0.5),
        ):
            pass
        with other.lock(target, wait_seconds=0.5):
            pass


def test_the_end_of_a_waiver_is_kept_for_every_worker(tmp_path, postgres_url):
    """When Chaser ended a target's first-day waiver (a 429 to an initial load) is kept in
    PostgreSQL: a worker with another working folder paces its initial load from the start."""
    url = Secret(postgres_url)
    target = Target("https://chaser.example", "org-1")
    first = PostgresState(mart_db(tmp_path / "p.duckdb", [], []), url)
    assert first.waiver_over_at(target) is None
    first.note_waiver_over(target, 1_700_000_000.5)
    first.note_waiver_over(target, 1_700_000_100.0)  # the first 429 stays
    other = PostgresState(mart_db(tmp_path / "q.duckdb", [], []), url)
    assert other.waiver_over_at(target) == 1_700_000_000.5
    assert other.waiver_over_at(Target("https://chaser.example", "org-2")) is None
