"""Sync engine contract, without Dagster: answers a killed run committed count before the next plan,
a customer Chaser refuses holds back its documents until it lands, the mass-change guard stops
before sending, and a document Chaser may hold from an unrecorded batch is never skipped."""

from __future__ import annotations

import pytest

from chaser_pipeline.db import WHOLE_HISTORY
from chaser_pipeline.emulator import FaultConfig
from chaser_pipeline.sync.engine import MassChangeError
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.plan import SyncOptions
from tests.support.marts import emulated_chaser, mart_db


def test_answers_a_killed_run_committed_to_the_journal_count_before_the_next_plan(tmp_path):
    """A run killed after committing a batch's answers but before folding them into the state
    must not send those rows again: the next plan folds the journal first."""
    from chaser_pipeline.db import utc_now
    from chaser_pipeline.sync.plan import build_plan

    with emulated_chaser(tmp_path) as chaser:
        con = mart_db(
            tmp_path / "p.duckdb", [("C-1", "Good Ltd")], [("I-1", "C-1"), ("I-2", "C-1")]
        )
        assert chaser.sync(con, "customers", run_id="r1").confirmed["create"] == 1
        assert chaser.sync(con, "invoices", run_id="r1").confirmed["create"] == 2
        _, target = chaser.state(con)
        con.execute("update chaser_invoices set total = 13.00 where invoice_id = 'I-1'")
        build_plan(
            con, CHASER_OBJECTS["invoices"], WHOLE_HISTORY, SyncOptions(), utc_now(), target=target
        )
        [(new_hash,)] = con.execute(
            "select sync_payload_hash from sync_plan where invoice_id = 'I-1'"
        ).fetchall()
        # what the killed run's writer committed: Chaser confirmed the update of I-1
        con.execute(
            """insert into chaser_sync.journal (target, run_id, object, key, action, http_status,
                message, logged_at, payload_hash, chaser_id)
            values (?, 'killed', 'invoices', 'I-1', 'update', 200, null, now()::timestamp, ?,
                null)""",
            [target.key, new_hash],
        )
        writes = chaser.store()
        before = writes.write_request_count("invoices")
        report = chaser.sync(con, "invoices", run_id="r2")
        assert dict(report.planned) == {"unchanged": 2}
        assert writes.write_request_count("invoices") == before
        writes.close()
        assert con.execute(
            "select payload_hash from chaser_sync.state where key = 'I-1'"
        ).fetchall() == [(new_hash,)]
        assert con.execute(
            "select count(*) from chaser_sync.log where run_id = 'killed' and key = 'I-1'"
        ).fetchall() == [(1,)]
        assert con.execute("select count(*) from chaser_sync.journal").fetchall() == [(0,)]
        assert con.execute(
            "select count(*) - count(distinct (object, key)) from chaser_sync.state"
        ).fetchall() == [(0,)]


def test_a_customer_chaser_refuses_holds_back_its_invoices_until_it_lands(tmp_path):
    with emulated_chaser(tmp_path) as chaser:
        # Chaser requires a company name; the blank one is refused by Chaser itself.
        con = mart_db(
            tmp_path / "p.duckdb",
            [("C-1", "Good Ltd"), ("C-2", "")],
            [("I-1", "C-1"), ("I-2", "C-2")],
        )
        customers = chaser.sync(con, "customers", run_id="r1")
        assert (sum(customers.confirmed.values()), customers.failed) == (1, 1)
        invoices = chaser.sync(con, "invoices", run_id="r1")
        assert invoices.planned["held_back"] == 1 and sum(invoices.confirmed.values()) == 1
        [(message,)] = con.execute(
            "select message from chaser_sync.log where key = 'I-2' and action = 'held_back'"
        ).fetchall()
        assert "C-2" in message
        [(status, error)] = con.execute(
            "select last_status, last_error from chaser_sync.state where key = 'C-2'"
        ).fetchall()
        assert status == "failed" and "company_name" in error

        # Fixed in the ledger: the customer lands, and the held-back invoice follows.
        con.execute(
            "update chaser_customers set company_name = 'Fixed Ltd' where external_id = 'C-2'"
        )
        assert chaser.sync(con, "customers", run_id="r2").confirmed["create"] == 1
        again = chaser.sync(con, "invoices", run_id="r2")
        assert again.confirmed["create"] == 1 and again.planned["unchanged"] == 1
        store = chaser.store()
        assert sorted(r["invoice_id"] for r in store.records("invoices")) == ["I-1", "I-2"]
        store.close()


def test_mass_change_guard_stops_before_sending_and_a_flag_confirms(tmp_path):
    with emulated_chaser(tmp_path) as chaser:
        con = mart_db(tmp_path / "p.duckdb", [(f"C-{i}", f"Co {i}") for i in range(200)], [])
        first = chaser.sync(con, "customers", run_id="r1")  # first run: no guard
        assert first.confirmed["create"] == 200
        con.execute(
            "update chaser_customers set company_name = company_name || ' Ltd' where external_id < 'C-5'"
        )
        store = chaser.store()
        before = store.write_request_count("customers")
        with pytest.raises(MassChangeError, match=r"update \d+ of 200 previously synced customers"):
            chaser.sync(con, "customers", run_id="r2")
        assert store.write_request_count("customers") == before
        confirmed = chaser.sync(
            con, "customers", run_id="r3", options=SyncOptions(confirm_mass_change=True)
        )
        assert confirmed.confirmed["update"] > 100
        store.close()


def test_a_document_chaser_may_hold_from_an_unrecorded_batch_is_never_skipped(tmp_path):
    from chaser_pipeline.chaser.errors import TransportError

    # Every write is applied by Chaser, then its connection drops (once per distinct request).
    faults = FaultConfig(rate_drop=1.0, first_attempt_only=True)
    with emulated_chaser(tmp_path, faults=faults) as chaser:
        patient = chaser.clients(backoff_base=0.01)
        impatient = chaser.clients(max_retries=0)  # gives up on the lost answer, as a killed run
        con = mart_db(tmp_path / "p.duckdb", [("C-1", "Good Ltd")], [("I-1", "C-1")])
        chaser.state(con)  # the target is checked once, before the faults matter
        assert chaser.sync(con, "customers", patient, run_id="r1").confirmed["create"] == 1
        with pytest.raises(TransportError):
            chaser.sync(con, "invoices", impatient, run_id="r1")
        store = chaser.store()
        assert [r["status"] for r in store.records("invoices")] == ["AUTHORISED"]
        assert con.execute(
            "select count(*) from chaser_sync.state where key = 'I-1'"
        ).fetchone() == (0,)

        # Voided since: never worth a first send, but Chaser may hold it, so it must be sent.
        con.execute("update chaser_invoices set status = 'VOIDED' where invoice_id = 'I-1'")
        report = chaser.sync(con, "invoices", patient, run_id="r2")
        assert report.planned["skipped"] == 0 and report.confirmed["create"] == 1
        assert [r["status"] for r in store.records("invoices")] == ["VOIDED"]
        store.close()
