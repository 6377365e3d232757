"""Recovery from Chaser: a state rebuilt by reconcile matches the lost one row for row (and the
next run sends nothing), a record edited by hand in Chaser is reported and put back, and a
record the ledger does not know is reported, never withdrawn on a guess; a contact person that
moved customer while the state was lost is archived under the customer Chaser still holds it
under."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import pytest

from chaser_pipeline.chaser.encoding import dumps
from chaser_pipeline.demo.generator import generate_demo_warehouse
from chaser_pipeline.emulator import EmulatorStore
from chaser_pipeline.models.build import run_models
from chaser_pipeline.sync.reconcile import reconcile
from tests.support.engine import EnginePipeline
from tests.support.models import whole_history

FIRST_RUN = datetime(2026, 11, 21)
STATE_ROW = """select object, key, payload_hash, chaser_id, chase_measure, route from chaser_sync.state
    where payload_hash is not null order by object, key"""


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A demo ledger and its first run, done once: each test changes a copy of what it left."""
    root = tmp_path_factory.mktemp("first-run")
    warehouse = generate_demo_warehouse(
        root / "warehouse.duckdb", invoices=300, customers=40, credit_notes=40, seed=11
    ).path
    p, _ = EnginePipeline.first_run(root, warehouse, FIRST_RUN)
    return p


@pytest.fixture
def pipeline(tmp_path, first_run):
    p = first_run.clone(tmp_path)
    yield p
    p.close()


def run_reconcile(p: EnginePipeline, *, apply: bool):
    return reconcile(
        p.state, p.target, p.client, p.project, apply=apply, now=datetime(2026, 11, 22)
    )


def test_a_lost_state_is_rebuilt_row_for_row_and_nothing_is_sent_again(pipeline):
    p = pipeline
    lost = p.query(STATE_ROW)
    assert len(lost) > 100
    p.con.execute("delete from chaser_sync.state")
    p.con.execute("delete from chaser_sync.attempted")

    report = run_reconcile(p, apply=True)
    assert report.applied
    for drift in report.objects.values():
        assert drift.differing == [] and drift.unknown == [], drift.summary()
        assert drift.requests >= drift.held / 100
    assert p.query(STATE_ROW) == lost

    before = p.write_requests()
    again = p.run(datetime(2026, 11, 22, 6))
    assert again.pending.total == 0 and p.write_requests() == before


def test_a_contact_moved_while_the_state_was_lost_is_archived_where_chaser_holds_it(pipeline):
    p = pipeline
    [(contact_id, old, new)] = p.query(
        """select c.external_id, c.customer_external_id, (
            select min(external_id) from chaser_customers
            where external_id <> c.customer_external_id and status = 'ACTIVE')
        from chaser_contact_persons as c
        where c.status = 'ACTIVE' and c.external_id not like '%:%'
        order by 1 limit 1"""
    )
    p.con.execute("delete from chaser_sync.state")
    p.con.execute("delete from chaser_sync.attempted")
    p.ledger(
        """update ledger.contacts set customer_id = ?, updated_at = timestamp '2026-11-21 12:00'
        where contact_id = ?""",
        [new, contact_id],
    )
    p.extract(datetime(2026, 11, 22))
    run_models(p.con, p.project, only=whole_history())

    run_reconcile(p, apply=True)
    [(route,)] = p.query(
        "select route from chaser_sync.state where object = 'contact_persons' and key = ?",
        [contact_id],
    )
    assert route == old  # the copy that still chases, where the models no longer put it
    p.run(datetime(2026, 11, 22, 6))
    with EmulatorStore(p.emulator_state) as store:
        customers = {r["id"]: r["external_id"] for r in store.records("customers")}
        held = {
            customers[r["customer_id"]]: r["status"]
            for r in store.records("contact_persons")
            if r["external_id"] == contact_id
        }
    assert held == {old: "ARCHIVED", new: "ACTIVE"}


def test_an_edit_made_in_chaser_is_reported_and_put_back(pipeline):
    p = pipeline
    [(invoice_id, due)] = p.query(
        """select invoice_id, amount_due from chaser_invoices
        where status = 'AUTHORISED' order by invoice_id limit 1"""
    )
    edited = dict(p.chaser("invoices")[invoice_id], amount_due=0, status="PAID")
    with sqlite3.connect(p.emulator_state) as chaser:
        chaser.execute(
            "update invoices set payload = ? where key = ?", (dumps(edited).decode(), invoice_id)
        )
        # and one invoice nobody in the ledger ever raised
        chaser.execute(
            "insert into invoices (id, key, payload, created_at, updated_at) "
            "values ('inv_by_hand', 'HAND-1', ?, 'now', 'now')",
            (dumps(dict(edited, invoice_id="HAND-1")).decode(),),
        )
    before = p.write_requests()
    looked = run_reconcile(p, apply=False)
    assert looked.objects["invoices"].differing == [invoice_id]
    assert looked.objects["invoices"].unknown == ["HAND-1"]
    assert p.write_requests() == before  # reading back only
    assert p.run(datetime(2026, 11, 22, 6)).sent == 0  # without apply nothing changes

    run_reconcile(p, apply=True)
    fixed = p.run(datetime(2026, 11, 22, 7))
    assert fixed.sent == 1
    assert p.held_invoice(invoice_id)[1] == due
    # reported, never withdrawn on a guess: adopted, so the ledger's missing row is no deletion
    assert p.chaser("invoices")["HAND-1"]["status"] == "PAID"
    assert p.query("select last_status from chaser_sync.state where key = 'HAND-1'") == [
        ("adopted",)
    ]


def test_the_daily_sample_finds_a_record_edited_in_chaser(pipeline):
    from chaser_pipeline.sync.reconcile import sample_drift

    p = pipeline
    clean = sample_drift(p.state, p.target, p.client, "invoices", pages=50, seed=1)
    assert clean.records == len(p.chaser("invoices")) and clean.drifted == []
    [(invoice_id,)] = p.query("select min(invoice_id) from chaser_invoices")
    edited = dict(p.chaser("invoices")[invoice_id], due_date="2030-01-01T00:00:00.000Z")
    with sqlite3.connect(p.emulator_state) as chaser:
        chaser.execute(
            "update invoices set payload = ? where key = ?", (dumps(edited).decode(), invoice_id)
        )
    before = p.write_requests()
    found = sample_drift(p.state, p.target, p.client, "invoices", pages=50, seed=2)
    assert found.drifted == [invoice_id]
    assert p.write_requests() == before
    small = sample_drift(p.state, p.target, p.client, "invoices", pages=2, seed=3)
    assert small.records <= 200 and len(small.pages) <= 2
