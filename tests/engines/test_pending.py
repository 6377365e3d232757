"""Change detection contract: every way the ledger can change a document reaches Chaser on the next
run, found by comparing payloads (late rows, moved payments, voided credit, moved issue dates);
the engines alone, on a small demo ledger, against the emulator over loopback."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.support.engine import DEMO_FIRST_RUN as FIRST_RUN
from tests.support.engine import EnginePipeline

NEXT_RUN = datetime(2026, 11, 21, 6)


@pytest.fixture
def pipeline(tmp_path, demo_first_run):
    """The demo ledger after its first run (FIRST_RUN), a copy of its own for each test."""
    done, first = demo_first_run
    assert first.sent > 0 and first.pending.months
    p = done.clone(tmp_path)
    yield p
    p.close()


def truth(p: EnginePipeline, invoice_id: str) -> tuple:
    """What the ledger says now: amount paid, amount due and status of one invoice."""
    [row] = p.query(
        "select paid_amount, due_amount, invoice_status from int_invoice_balances "
        "where invoice_id = ?",
        [invoice_id],
    )
    return row


def open_invoices(p: EnginePipeline, n: int) -> list[str]:
    rows = p.query(
        """select invoice_id from chaser_invoices
        where status = 'AUTHORISED' and amount_due > 5 order by invoice_id limit ?""",
        [n],
    )
    return [r[0] for r in rows]


def assert_nothing_pending(p: EnginePipeline) -> None:
    before = p.write_requests()
    again = p.run(NEXT_RUN)
    assert again.pending.months == [] and again.pending.total == 0
    assert p.write_requests() == before


def test_a_late_committed_row_inside_the_overlap_reaches_chaser(pipeline):
    p = pipeline
    [invoice_id] = open_invoices(p, 1)
    [(cursor,)] = p.query(
        "select cursor_at from landing._extract_state where table_name = 'payments'"
    )
    # committed late: its updated_at is older than the cursor the last run saw
    p.ledger(
        "insert into ledger.payments (payment_id, invoice_id, amount, paid_at, is_reversed, updated_at) "
        "values ('P-LATE', ?, 1.00, ?, false, ?)",
        [invoice_id, cursor, cursor.replace(minute=max(cursor.minute - 30, 0))],
    )
    p.run(NEXT_RUN)
    assert p.held_invoice(invoice_id) == truth(p, invoice_id)
    assert_nothing_pending(p)


def test_a_payment_moved_to_another_invoice_updates_both(pipeline):
    p = pipeline
    [(payment_id, old_invoice)] = p.query(
        """select s.payment_id, s.invoice_id from stg_payments s
        join chaser_invoices i on i.invoice_id = s.invoice_id
        where not s.is_reversed and s.payment_amount > 1 and i.status = 'AUTHORISED'
        order by s.payment_id limit 1"""
    )
    [new_invoice] = [i for i in open_invoices(p, 2) if i != old_invoice][:1]
    p.ledger(
        "update ledger.payments set invoice_id = ?, updated_at = timestamp '2026-11-20 09:00' "
        "where payment_id = ?",
        [new_invoice, payment_id],
    )
    run = p.run(NEXT_RUN)
    assert run.pending.documents == {"invoices": 2}
    assert p.held_invoice(old_invoice) == truth(p, old_invoice)
    assert p.held_invoice(new_invoice) == truth(p, new_invoice)
    assert_nothing_pending(p)


def test_voiding_a_credit_note_resends_the_invoices_it_paid(pipeline):
    p = pipeline
    rows = p.query(
        """select a.credit_note_id, a.invoice_id from stg_credit_allocations a
        join chaser_invoices i on i.invoice_id = a.invoice_id
        join chaser_credit_notes c on c.credit_note_id = a.credit_note_id
        where not a.is_reversed and a.invoice_id is not null and c.date[:7] <> i.date[:7]
        order by a.allocation_id limit 1"""
    )
    assert rows, "the demo ledger has credit applied across months"
    [(credit_note_id, invoice_id)] = rows
    before = truth(p, invoice_id)
    p.ledger(
        "update ledger.credit_notes set status = 'VOIDED', "
        "updated_at = timestamp '2026-11-20 09:30' where credit_note_id = ?",
        [credit_note_id],
    )
    p.run(NEXT_RUN)
    assert truth(p, invoice_id) != before
    assert p.held_invoice(invoice_id) == truth(p, invoice_id)
    assert_nothing_pending(p)


def test_an_invoice_moved_to_another_month_leaves_its_old_month_clean(pipeline):
    p = pipeline
    [invoice_id] = open_invoices(p, 1)
    [(old_date,)] = p.query("select date from chaser_invoices where invoice_id = ?", [invoice_id])
    p.ledger(
        "update ledger.invoices set issue_date = issue_date + interval 40 day, "
        "updated_at = timestamp '2026-11-20 10:00' where invoice_id = ?",
        [invoice_id],
    )
    run = p.run(NEXT_RUN)
    [(new_date,)] = p.query("select date from chaser_invoices where invoice_id = ?", [invoice_id])
    assert new_date[:7] != old_date[:7]
    assert {old_date[:7] + "-01", new_date[:7] + "-01"} <= set(run.pending.months)
    assert p.query("select count(*) from chaser_invoices where invoice_id = ?", [invoice_id]) == [
        (1,)
    ]
    assert p.chaser("invoices")[invoice_id]["date"] == new_date
    assert_nothing_pending(p)


def test_an_open_invoice_issued_before_the_history_start_reaches_chaser(tmp_path, demo_ledger):
    """No document is left out by the partitioning: the first month's partition carries every
    open document issued before CHASER_HISTORY_START, and the run says how many there are."""
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(demo_ledger.read_bytes())
    p = EnginePipeline(tmp_path, warehouse)
    try:
        p.ledger(
            """insert into ledger.invoices
            select 'INV-OLD-1', 'OLD-1', customer_id, 'AUTHORISED', 'GBP', 80.00, 96.00,
                date '2022-06-15', date '2022-07-15', timestamp '2022-06-15 09:00'
            from ledger.customers where company_name <> '' order by customer_id limit 1"""
        )
        first = p.run(FIRST_RUN)
        assert first.pending.before_history_start >= 1
        assert first.pending.months[0] == "2023-01-01"
        held = p.chaser("invoices")["INV-OLD-1"]
        assert held["status"] == "AUTHORISED" and held["date"].startswith("2022-06-15")
        assert_nothing_pending(p)
    finally:
        p.close()
