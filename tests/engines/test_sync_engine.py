"""Sync engine contract, without Dagster: answers a killed run committed count before the next plan,
a customer Chaser refuses holds back its documents until it lands, a document Chaser may hold
from an unrecorded batch is never skipped, stop-chasing changes go first,
and a withdrawn overpayment reaches Chaser."""

from __future__ import annotations

import pytest

from chaser_pipeline.db import WHOLE_HISTORY, utc_now
from chaser_pipeline.emulator import EmulatorStore, FaultConfig
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.plan import SyncOptions, build_plan
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


def test_stop_chasing_changes_go_first_then_new_documents_then_the_rest(tmp_path):
    """Within a run, the writes that stop or reduce chasing are sent before any other, so a run
    cut short (budget, crash, deadline) leaves the least harmful remainder."""
    from chaser_pipeline.sync.batches import planned_batches

    with emulated_chaser(tmp_path) as chaser:
        invoices = [(f"I-{i:03d}", "C-1") for i in range(300)]
        con = mart_db(tmp_path / "p.duckdb", [("C-1", "Good Ltd")], invoices)
        chaser.sync(con, "customers", run_id="r1")
        assert chaser.sync(con, "invoices", run_id="r1").confirmed["create"] == 300
        # 100 get paid, 100 get a later due date (chased as much as before), 100 new ones
        con.execute(
            """update chaser_invoices set status = 'PAID', amount_paid = total, amount_due = 0,
            fully_paid_date = '2024-03-20T00:00:00.000Z' where invoice_id >= 'I-200'"""
        )
        con.execute(
            """update chaser_invoices set due_date = '2024-05-31T00:00:00.000Z'
            where invoice_id < 'I-100'"""
        )
        con.executemany(
            """insert into chaser_invoices values (?, 'N-1', 'C-1', 'AUTHORISED', 'GBP', 10.00,
            12.00, 0.00, 12.00, '2024-03-01T00:00:00.000Z', '2024-03-31T00:00:00.000Z', null)""",
            [(f"J-{i:03d}",) for i in range(100)],
        )
        state, target = chaser.state(con)
        build_plan(
            con, CHASER_OBJECTS["invoices"], WHOLE_HISTORY, SyncOptions(), utc_now(), target=target
        )
        columns = [r[0] for r in con.execute("describe chaser_invoices").fetchall()]
        writer = state.writer()
        try:
            sent = [
                key
                for chunk in planned_batches(
                    con, writer, target, CHASER_OBJECTS["invoices"], columns, chunk_rows=100
                )
                for batch in chunk
                for key in batch.rows["sync_key"].to_pylist()
            ]
        finally:
            writer.close()
        assert len(sent) == 300
        assert all(key >= "I-200" for key in sent[:100])  # paid: Chaser stops chasing
        assert all(key.startswith("J-") for key in sent[100:200])  # new documents
        assert all(key < "I-100" for key in sent[200:])  # the rest


def test_a_sync_cut_short_by_its_deadline_has_sent_the_stop_chasing_changes(tmp_path):
    """A run cut short leaves the least harmful remainder: with the budget allowing two requests
    a second and a deadline before the third, what reached Chaser is invoices being paid."""
    import time

    from chaser_pipeline.chaser.budget import RequestBudget
    from chaser_pipeline.chaser.errors import ChaserError
    from chaser_pipeline.emulator.rate_limit import RateLimitConfig

    limit = RateLimitConfig(requests_per_minute=None)
    with emulated_chaser(tmp_path, rate_limit=limit) as chaser:
        invoices = [(f"I-{i:03d}", "C-1") for i in range(600)]
        con = mart_db(tmp_path / "p.duckdb", [("C-1", "Good Ltd")], invoices)
        chaser.sync(con, "customers", run_id="r1")
        assert chaser.sync(con, "invoices", run_id="r1").confirmed["create"] == 600
        # 300 re-dated first in key order, then 300 paid: the paid ones must still go first
        con.execute(
            """update chaser_invoices set due_date = '2024-05-31T00:00:00.000Z'
            where invoice_id < 'I-300'"""
        )
        con.execute(
            """update chaser_invoices set status = 'PAID', amount_paid = total, amount_due = 0,
            fully_paid_date = '2024-03-20T00:00:00.000Z' where invoice_id >= 'I-300'"""
        )
        budget = RequestBudget(2, window_seconds=1.0)
        # the third request's room comes after a second, under a second before the deadline
        slow = chaser.clients(budget=budget, max_in_flight=1, deadline=time.time() + 1.8)
        with pytest.raises(ChaserError):
            chaser.sync(con, "invoices", slow, run_id="r2")
        with chaser.store() as store:
            paid = {r["invoice_id"] for r in store.records("invoices") if r["status"] == "PAID"}
            redated = {
                r["invoice_id"]
                for r in store.records("invoices")
                if r["due_date"].startswith("2024-05-31")
            }
        assert 100 <= len(paid) < 300 and redated == set()
        # what Chaser confirmed before the deadline is on record: the next run sends the rest
        rest = chaser.sync(con, "invoices", run_id="r3")
        assert rest.confirmed["update"] == 600 - len(paid)


def test_a_withdrawn_overpayment_reaches_chaser_as_voided_then_deleted(tmp_path):
    """Overpayments take a credit note's statuses (CHASER_API.md: model them on credit notes): a
    reversed payment's overpayment is sent VOIDED and a removed one DELETED, once each, so
    Chaser stops counting cash the customer no longer has on account."""
    con = mart_db(tmp_path / "p.duckdb", [("C-1", "Good Ltd")], [])
    con.execute(
        """create table chaser_overpayments (overpayment_id varchar,
        customer_external_id varchar, currency_code varchar, date varchar,
        total decimal(18, 2), remaining_credit decimal(18, 2), status varchar)"""
    )
    con.execute(
        """insert into chaser_overpayments values
        ('P-1', 'C-1', 'GBP', '2024-03-07T00:00:00.000Z', 50.00, 50.00, 'ACTIVE'),
        ('P-2', 'C-1', 'GBP', '2024-03-08T00:00:00.000Z', 20.00, 20.00, 'ACTIVE')"""
    )
    with emulated_chaser(tmp_path) as chaser:
        chaser.sync(con, "customers", run_id="r1")
        assert chaser.sync(con, "overpayments", run_id="r1").confirmed["create"] == 2
        con.execute(
            """update chaser_overpayments set remaining_credit = 0,
            status = case overpayment_id when 'P-1' then 'VOIDED' else 'DELETED' end"""
        )
        withdrawn = chaser.sync(con, "overpayments", run_id="r2")
        assert (withdrawn.confirmed["update"], withdrawn.failed) == (2, 0)
        assert chaser.sync(con, "overpayments", run_id="r3").planned["unchanged"] == 2
        with EmulatorStore(tmp_path / "c.sqlite3") as store:
            held = {r["overpayment_id"]: r["status"] for r in store.records("overpayments")}
    assert held == {"P-1": "VOIDED", "P-2": "DELETED"}


def test_a_step_of_its_own_does_not_withdraw_most_of_what_chaser_holds(tmp_path):
    """A sync step run outside the incremental job (materialized alone, or re-executed in a
    fresh pod) has no whole-history plan deciding for it: when most of what Chaser holds of the
    object is missing from the landed ledger (a warehouse URL pointed at an empty database),
    it stops before reading anything back or sending, unless confirmed; a few missing keys are
    withdrawn as usual."""
    from chaser_pipeline.sync.engine import MassChangeError

    invoices = [(f"I-{i:03}", "C-1") for i in range(60)]
    with emulated_chaser(tmp_path) as chaser:
        con = mart_db(tmp_path / "p.duckdb", [("C-1", "Good Ltd")], invoices)
        chaser.sync(con, "customers", run_id="r1")
        assert chaser.sync(con, "invoices", run_id="r1").confirmed["create"] == 60
        # the landed ledger now holds only I-000 .. I-009: 50 of 60 invoices are missing
        con.execute("create schema landing")
        con.execute("create table landing.invoices (invoice_id varchar)")
        con.execute("insert into landing.invoices select invoice_id from chaser_invoices limit 10")
        con.execute("create table landing.deleted_keys (table_name varchar, key varchar)")
        con.execute(
            "create table chaser_rejections (entity varchar, key varchar, severity varchar)"
        )
        con.execute("delete from chaser_invoices where invoice_id >= 'I-010'")
        writes = chaser.store()
        before = writes.request_count()
        with pytest.raises(MassChangeError, match="50 of 60 invoices"):
            chaser.sync(con, "invoices", run_id="r2")
        assert writes.request_count() == before  # not even a read back
        confirmed = chaser.sync(
            con, "invoices", run_id="r3", options=SyncOptions(confirm_mass_change=True)
        )
        assert confirmed.withdrawals == 50 and confirmed.confirmed["update"] == 50
        writes.close()
        with EmulatorStore(tmp_path / "c.sqlite3") as store:
            held = {r["invoice_id"]: r["status"] for r in store.records("invoices")}
        assert sum(s == "DELETED" for s in held.values()) == 50


def test_a_plan_that_only_counts_decides_as_the_plan_that_sends(tmp_path):
    """The pending check plans with `hash_unconfirmed=False` (no hash for a payload Chaser has
    no confirmed one to compare with): every row gets the action, priority and confirmed
    hash of the full plan, and every hash it does compute is the full plan's."""
    with emulated_chaser(tmp_path) as chaser:
        invoices = [(f"I-{i}", "C-1") for i in range(6)] + [("I-8", "C-3"), ("I-9", "C-2")]
        con = mart_db(
            tmp_path / "p.duckdb", [("C-1", "Good Ltd"), ("C-2", "Late Ltd")], invoices[:4]
        )
        chaser.sync(con, "customers", run_id="r1")
        assert chaser.sync(con, "invoices", run_id="r1").confirmed["create"] == 4
        con.execute("update chaser_invoices set total = 13.00 where invoice_id = 'I-1'")
        con.execute(
            """update chaser_invoices set status = 'PAID', amount_paid = total, amount_due = 0,
            fully_paid_date = '2024-03-20T00:00:00.000Z' where invoice_id = 'I-2'"""
        )
        # a customer Chaser does not hold yet: its invoice waits for it
        con.execute(
            "insert into chaser_customers values "
            "('C-3', 'New Ltd', null, null, null, null, null, 'ACTIVE', null)"
        )
        con.executemany(
            """insert into chaser_invoices values (?, 'N-1', ?, 'AUTHORISED', 'GBP', 10.00,
            12.00, 0.00, 12.00, '2024-03-01T00:00:00.000Z', '2024-03-31T00:00:00.000Z', null)""",
            invoices[4:],
        )
        # a refused row is retried whatever its hash
        con.execute("update chaser_sync.state set last_status = 'failed' where key = 'I-3'")
        _, target = chaser.state(con)
        plans = {}
        for hash_unconfirmed in (True, False):
            build_plan(
                con,
                CHASER_OBJECTS["invoices"],
                WHOLE_HISTORY,
                SyncOptions(),
                utc_now(),
                target=target,
                hash_unconfirmed=hash_unconfirmed,
            )
            plans[hash_unconfirmed] = con.execute(
                """select invoice_id, sync_action, sync_priority, sync_confirmed_hash,
                sync_payload_hash from sync_plan order by invoice_id"""
            ).fetchall()
        full, counted = plans[True], plans[False]
        assert [r[:4] for r in counted] == [r[:4] for r in full]
        assert {r[0]: r[1] for r in full} == {
            "I-0": "unchanged",
            "I-1": "update",
            "I-2": "update",
            "I-3": "update",
            "I-4": "create",
            "I-5": "create",
            "I-8": "held_back",
            "I-9": "create",
        }
        assert all(r[4] is not None for r in full)
        for (key, _, _, confirmed, counted_hash), full_row in zip(counted, full, strict=True):
            assert counted_hash == (full_row[4] if confirmed is not None else None), key
