"""Ledger rules end to end (demo warehouse -> `chaser-pipeline sync`'s run -> emulator over loopback):
a hard delete reaches Chaser as DELETED once; a customer that loses a required field keeps its old
version in Chaser while its invoice still goes out PAID; a foreign-currency allocation pays nothing;
one negative credit note is held back while the good ones of its month are sent; and a run after all
of that sends nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support.pipeline import make_pipeline

pytestmark = pytest.mark.slow

CHANGED_AT = "timestamp '2026-11-20 09:00'"


@pytest.fixture
def pipeline(tmp_path):
    p = make_pipeline(tmp_path)
    yield p
    p.handle.stop()


def _open_invoices(pipeline, limit: int) -> list[tuple]:
    return pipeline.query(
        """select i.invoice_id, i.customer_external_id, i.currency_code, i.amount_due
        from chaser_invoices i
        where i.status = 'AUTHORISED' and i.amount_due > 10
        order by i.invoice_id limit ?""",
        [limit],
    )


def test_ledger_rules_reach_chaser_and_a_quiet_run_after_them_sends_nothing(pipeline):
    assert pipeline.sync().success
    (
        (deleted, _, _, _),
        (paid, paid_customer, _, paid_due),
        (fx_invoice, fx_customer, cur, fx_due),
    ) = _open_invoices(pipeline, 3)
    assert paid_customer != fx_customer or paid != fx_invoice
    old_company = pipeline.chaser("customers")[paid_customer]["company_name"]
    other_currency = "EUR" if cur != "EUR" else "GBP"

    # A hard delete; a customer losing its company name while its invoice is paid in full; a
    # credit note in another currency allocated to an invoice; one negative credit note beside a
    # good one in the same month.
    pipeline.ledger("delete from ledger.invoices where invoice_id = ?", [deleted])
    pipeline.ledger(
        f"""insert into ledger.payments
        (payment_id, invoice_id, amount, paid_at, is_reversed, updated_at) values
        ('P-E2E-FULL', ?, ?, timestamp '2026-11-20 08:00', false, {CHANGED_AT})""",
        [paid, paid_due],
    )
    pipeline.ledger(
        f"update ledger.customers set company_name = null, updated_at = {CHANGED_AT} "
        "where customer_id = ?",
        [paid_customer],
    )
    pipeline.ledger(
        f"""insert into ledger.credit_notes
        (credit_note_id, credit_note_number, customer_id, status, currency_code, total, issue_date,
         updated_at) values
        ('CN-E2E-FX', 'CN-E2E-FX', ?, 'AUTHORISED', ?, 10.00, date '2026-11-02', {CHANGED_AT}),
        ('CN-E2E-NEG', 'CN-E2E-NEG', ?, 'AUTHORISED', ?, -5.00, date '2026-11-02', {CHANGED_AT}),
        ('CN-E2E-GOOD', 'CN-E2E-GOOD', ?, 'AUTHORISED', ?, 20.00, date '2026-11-02', {CHANGED_AT})""",
        [fx_customer, other_currency, fx_customer, cur, fx_customer, cur],
    )
    pipeline.ledger(
        f"""insert into ledger.credit_allocations
        (allocation_id, credit_note_id, invoice_id, amount, allocated_at, is_reversed, updated_at)
        values ('CA-E2E-FX', 'CN-E2E-FX', ?, 5.00, timestamp '2026-11-20 08:30', false,
        {CHANGED_AT})""",
        [fx_invoice],
    )

    assert pipeline.sync().success
    invoices = pipeline.chaser("invoices")
    credit_notes = pipeline.chaser("credit_notes")
    assert invoices[deleted]["status"] == "DELETED"
    assert invoices[paid]["status"] == "PAID"
    assert Decimal(str(invoices[paid]["amount_due"])) == 0
    assert pipeline.chaser("customers")[paid_customer]["company_name"] == old_company
    assert Decimal(str(invoices[fx_invoice]["amount_due"])) == fx_due
    assert Decimal(str(credit_notes["CN-E2E-FX"]["remaining_credit"])) == Decimal("10.00")
    assert "CN-E2E-GOOD" in credit_notes
    assert "CN-E2E-NEG" not in credit_notes
    held = pipeline.query("select severity, detail from chaser_rejections where key = 'CN-E2E-NEG'")
    assert held and held[0][0] == "held_back" and "negative" in held[0][1].lower()
    assert pipeline.query("select 1 from chaser_rejections where key = 'CA-E2E-FX'")

    writes = pipeline.write_requests()
    assert pipeline.sync().success
    assert pipeline.write_requests() == writes
