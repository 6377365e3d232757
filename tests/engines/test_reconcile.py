"""Recovery from Chaser: a state rebuilt by reconcile matches the lost one row for row (and the
next run sends nothing), a record edited by hand in Chaser is reported and put back, and a
record the ledger does not know is reported, never withdrawn on a guess."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import pytest

from chaser_pipeline.chaser.encoding import dumps
from chaser_pipeline.demo.generator import generate_demo_warehouse
from chaser_pipeline.sync.reconcile import reconcile
from tests.support.engine import EnginePipeline

FIRST_RUN = datetime(2026, 11, 21)
STATE_ROW = """select object, key, payload_hash, chaser_id, chase_measure from chaser_sync.state
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
    assert "HAND-1" in p.chaser("invoices")  # reported, never withdrawn on a guess


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
