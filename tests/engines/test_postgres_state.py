"""Sync state in PostgreSQL (CHASER_STATE_URL): what Chaser confirmed survives losing the whole
working folder, a killed run's journal is folded before the next plan, the lock holds across
connections, and the end of an organisation's waiver is kept for every worker."""

from __future__ import annotations

import duckdb
import pytest

from chaser_pipeline.db import utc_now
from chaser_pipeline.settings import Secret
from chaser_pipeline.sync.engine import check_target, sync_object
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.postgres_state import PostgresState
from chaser_pipeline.sync.state import DuckDBState, StateLockTimeout, Target
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


def test_each_pipeline_finds_its_own_organisation_among_those_sharing_the_state(
    tmp_path, postgres_url
):
    """Two pipelines' credentials reached two organisations through one state: each finds its
    own again (no request to Chaser), whichever was checked last. Credentials no sync noted
    (new, rotated) find nothing rather than another pipeline's organisation; a second key for
    one organisation does not take it from the first."""
    url = Secret(postgres_url)
    con = mart_db(tmp_path / "p.duckdb", CUSTOMERS, INVOICES)
    state = PostgresState(con, url)
    ours, theirs, older = (
        Target("https://api.example", "org-a"),
        Target("https://api.example", "org-b"),
        Target("https://api.example", "org-c"),
    )
    state.record_target(older, run_id="r0", now=utc_now())  # a worker that notes no credentials
    state.record_target(ours, run_id="r1", now=utc_now(), credentials="cred-a")
    state.record_target(theirs, run_id="r2", now=utc_now(), credentials="cred-b")
    assert state.last_target() == theirs  # checked last, by whoever
    assert state.target_for("cred-a") == ours
    assert state.target_for("cred-b") == theirs
    assert state.target_for("cred-new") is None
    state.record_target(ours, run_id="r3", now=utc_now(), credentials="cred-a2")  # a second key
    assert state.target_for("cred-a") == ours
    assert state.target_for("cred-a2") == ours
    state.record_target(ours, run_id="r4", now=utc_now())  # a later check without credentials
    assert state.target_for("cred-a") == ours
    # the working copy of a DuckDB state keeps them the same way
    local = DuckDBState(duckdb.connect(str(tmp_path / "local.duckdb")), tmp_path)
    local.record_target(ours, run_id="r1", now=utc_now(), credentials="cred-a")
    local.record_target(theirs, run_id="r2", now=utc_now(), credentials="cred-b")
    assert local.target_for("cred-a") == ours
    assert local.target_for("cred-new") is None


def test_an_older_versions_refresh_reads_the_shared_tables_by_their_columns(tmp_path, postgres_url):
    """Pipelines sharing the state upgrade one at a time: a column a newer version adds to a
    shared table never breaks the refresh of a working copy that does not have it."""
    url = Secret(postgres_url)
    with emulated_chaser(tmp_path) as chaser:
        con = mart_db(tmp_path / "p.duckdb", CUSTOMERS, INVOICES)
        state = PostgresState(con, url)
        _sync_all(state, chaser, "r1")
        state.query("alter table chaser_sync.targets add column added_later varchar")
        state.query("alter table chaser_sync.state add column added_later varchar")
        [target] = [
            Target(*r)
            for r in con.execute(
                "select url, organisation_id, organisation_name from chaser_sync.targets"
            ).fetchall()
        ]
        state.refresh(target)
        assert con.execute("select count(*) from chaser_sync.holdings").fetchone()[0] == 5


def test_the_working_copy_holds_only_the_organisation_refreshed(tmp_path, postgres_url):
    """The models read what Chaser holds from the working copy (the holdings view): after a
    refresh for one organisation it holds that organisation's rows only, whatever an earlier
    refresh brought in."""
    url = Secret(postgres_url)
    with emulated_chaser(tmp_path) as chaser:
        con = mart_db(tmp_path / "p.duckdb", CUSTOMERS, INVOICES)
        state = PostgresState(con, url)
        _sync_all(state, chaser, "r1")
        [ours] = [
            Target(*r)
            for r in con.execute(
                "select url, organisation_id, organisation_name from chaser_sync.targets"
            ).fetchall()
        ]
        other = Target("https://api.example", "org-other")
        state.record_target(other, run_id="r2", now=utc_now(), credentials="cred-other")
        state.query(
            "insert into chaser_sync.state (target, object, key, payload_hash, last_status, "
            "last_attempt_at) values ($1, 'customers', 'C-9', 'h', 'confirmed', now())",
            [other.key],
        )
        state.refresh(other)
        assert con.execute("select object, key from chaser_sync.holdings").fetchall() == [
            ("customers", "C-9")
        ]
        state.refresh(ours)
        for table in ("state", "attempted", "targets"):
            assert con.execute(f"select distinct target from chaser_sync.{table}").fetchall() == [
                (ours.key,)
            ], table
        assert con.execute("select count(*) from chaser_sync.holdings").fetchone()[0] == 5
