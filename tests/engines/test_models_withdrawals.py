"""LEDGER_CONTRACT.md "What Chaser must stop showing" and the allocation rules: withdrawals, held-back customers, stale documents, allocations that count, rows without a key, and no bad row blocking a month."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from chaser_pipeline.models.contract import contract_queries, find_violations
from chaser_pipeline.models.rules import mart_rules
from tests.support.models import (
    NOT_SENT,
    Case,
    allocation,
    assert_case,
    build,
    contact,
    credit_note,
    customer,
    deleted,
    holding,
    invoice,
    on_account,
    payment,
    project,
    rows,
)

__all__ = ["build"]  # fixture

D = Decimal


def at(day: int, hour: int = 9) -> datetime:
    """A time in March 2024."""
    return datetime(2024, 3, day, hour)


WITHDRAWALS = [
    Case(
        "a deleted invoice goes out DELETED with the fields of its last landed version",
        [
            customer(),
            invoice(total="100.00"),
            payment("P-1", "40.00", at(10)),
            deleted("invoices", "INV-1", datetime(2024, 6, 2, 7)),
        ],
        invoices={
            "INV-1": {
                "status": "DELETED",
                "total": D("100.00"),
                "amount_paid": D("40.00"),
                "amount_due": D("60.00"),
                "date": "2024-03-05T00:00:00.000Z",
            }
        },
        rejections={("invoice", "INV-1", "deleted_in_ledger", "reported")},
    ),
    Case(
        "a deleted credit note goes out DELETED and its allocations pay nothing",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="50.00"),
            allocation("A-1", "50.00", at(12)),
            deleted("credit_notes", "CN-1"),
        ],
        invoices={"INV-1": {"status": "AUTHORISED", "amount_paid": D("0.00")}},
        credit_notes={"CN-1": {"status": "DELETED", "remaining_credit": D("50.00")}},
        rejections={
            ("credit_note", "CN-1", "deleted_in_ledger", "reported"),
            ("allocation", "A-1", "allocation_source_not_usable", "reported"),
        },
    ),
    Case(
        "a deleted customer is ARCHIVED; its documents still go",
        [customer(), invoice(), deleted("customers", "C-1")],
        customers={"C-1": {"status": "ARCHIVED", "company_name": "Company C-1"}},
        invoices={"INV-1": {"status": "AUTHORISED", "customer_external_id": "C-1"}},
        rejections={("customer", "C-1", "deleted_in_ledger", "reported")},
    ),
    Case(
        "deleted payments and allocations count as never made (a key landed with spaces, "
        "deleted as landed)",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="50.00"),
            payment("P-1", "60.00", at(10)),
            payment(" P-2 ", "40.00", at(11)),
            allocation("A-1", "10.00", at(12)),
            deleted("payments", " P-2 "),
            deleted("credit_allocations", "A-1"),
        ],
        invoices={
            "INV-1": {"status": "AUTHORISED", "amount_paid": D("60.00"), "amount_due": D("40.00")}
        },
        credit_notes={"CN-1": {"remaining_credit": D("50.00")}},
        rejections={
            ("payment", "P-2", "deleted_in_ledger", "reported"),
            ("allocation", "A-1", "deleted_in_ledger", "reported"),
        },
    ),
    Case(
        "a key respelled in the warehouse ('P-1 ' fixed to 'P-1', 'INV-1 ' to 'INV-1') leaves "
        "only its old spelling deleted: the payment still pays, the invoice is still owed",
        [
            customer(),
            invoice("INV-1 ", total="100.00"),
            invoice("INV-1", total="100.00"),
            deleted("invoices", "INV-1 "),
            invoice("INV-2", total="100.00"),
            payment("P-1 ", "100.00", at(6), invoice_id="INV-2"),
            payment("P-1", "100.00", at(6), invoice_id="INV-2"),
            deleted("payments", "P-1 "),
        ],
        invoices={
            "INV-1": {"status": "AUTHORISED", "amount_due": D("100.00")},
            "INV-2": {"status": "PAID", "amount_paid": D("100.00"), "amount_due": D("0.00")},
        },
    ),
    Case(
        "a key deleted from another table withdraws nothing here",
        [customer(), invoice(), deleted("credit_notes", "INV-1")],
        invoices={"INV-1": {"status": "AUTHORISED"}},
    ),
]

HELD_BACK_CUSTOMERS = [
    Case(
        "a customer Chaser holds loses its company name: its invoice is paid all the same",
        [
            customer("C-2", company_name=None),
            invoice("INV-2", customer_id="C-2", total="100.00"),
            payment("P-1", "100.00", at(10), invoice_id="INV-2"),
            holding("customers", "C-2"),
            holding("invoices", "INV-2"),
        ],
        customers={"C-2": NOT_SENT},
        invoices={
            "INV-2": {
                "status": "PAID",
                "amount_due": D("0.00"),
                "fully_paid_date": "2024-03-10T09:00:00.000Z",
            }
        },
        rejections={
            ("customer", "C-2", "missing_company_name", "held_back"),
            ("customer", "C-2", "stale_in_chaser", "stale_in_chaser"),
            ("invoice", "INV-2", "customer_held_back", "reported"),
        },
    ),
    Case(
        "documents naming a customer the ledger does not hold are held back",
        [customer(), invoice(customer_id="C-404"), credit_note(customer_id="C-404")],
        invoices={"INV-1": NOT_SENT},
        credit_notes={"CN-1": NOT_SENT},
        rejections={
            ("invoice", "INV-1", "unknown_customer", "held_back"),
            ("credit_note", "CN-1", "unknown_customer", "held_back"),
        },
    ),
    Case(
        "documents naming no customer are held back as such",
        [customer(), invoice(customer_id="  "), credit_note(customer_id=None)],
        invoices={"INV-1": NOT_SENT},
        credit_notes={"CN-1": NOT_SENT},
        rejections={
            ("invoice", "INV-1", "missing_customer_id", "held_back"),
            ("credit_note", "CN-1", "missing_customer_id", "held_back"),
        },
    ),
]

STALE = [
    Case(
        "an invoice Chaser holds whose new version fails a rule is stale in Chaser",
        [
            customer(),
            invoice("INV-1", due_date=None),
            invoice("INV-2", due_date=None),
            credit_note(total="-5.00"),
            holding("invoices", "INV-1"),
            holding("credit_notes", "CN-1"),
            holding("customers", "C-1"),
        ],
        invoices={"INV-1": NOT_SENT, "INV-2": NOT_SENT},
        credit_notes={"CN-1": NOT_SENT},
        rejections={
            ("invoice", "INV-1", "missing_due_date", "held_back"),
            ("invoice", "INV-1", "stale_in_chaser", "stale_in_chaser"),
            # never sent: held back, not stale
            ("invoice", "INV-2", "missing_due_date", "held_back"),
            ("credit_note", "CN-1", "negative_total", "held_back"),
            ("credit_note", "CN-1", "stale_in_chaser", "stale_in_chaser"),
        },
    ),
]

ALLOCATIONS = [
    Case(
        "a EUR credit note never pays a GBP invoice: ignored on both sides",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="100.00", currency_code="EUR"),
            allocation("A-1", "100.00", at(12)),
        ],
        invoices={
            "INV-1": {"status": "AUTHORISED", "amount_paid": D("0.00"), "amount_due": D("100.00")}
        },
        credit_notes={"CN-1": {"status": "ACTIVE", "remaining_credit": D("100.00")}},
        rejections={("allocation", "A-1", "allocation_other_currency", "reported")},
    ),
    Case(
        "another customer's credit note never pays an invoice",
        [
            customer(),
            customer("C-2"),
            invoice(total="100.00"),
            credit_note(total="30.00", customer_id="C-2"),
            allocation("A-1", "30.00", at(12)),
            payment("P-1", "70.00", at(13)),
        ],
        invoices={"INV-1": {"status": "AUTHORISED", "amount_due": D("30.00")}},
        credit_notes={"CN-1": {"remaining_credit": D("30.00")}},
        rejections={("allocation", "A-1", "allocation_other_customer", "reported")},
    ),
    Case(
        "credit never pays a DRAFT, VOIDED or deleted invoice; a SUBMITTED one it does",
        [
            customer(),
            invoice("INV-D", status="draft", total="10.00"),
            invoice("INV-V", status="VOIDED", total="10.00"),
            invoice("INV-S", status="submitted", total="10.00"),
            invoice("INV-X", total="10.00"),
            credit_note(total="100.00"),
            allocation("A-1", "10.00", at(12), invoice_id="INV-D"),
            allocation("A-2", "10.00", at(12), invoice_id="INV-V"),
            allocation("A-3", "10.00", at(12), invoice_id="INV-S"),
            allocation("A-4", "10.00", at(12), invoice_id="INV-X"),
            deleted("invoices", "INV-X"),
        ],
        invoices={
            "INV-D": {"status": "DRAFT", "amount_paid": D("0.00")},
            "INV-V": {"status": "VOIDED", "amount_paid": D("0.00")},
            "INV-S": {"status": "SUBMITTED", "amount_paid": D("10.00")},
            "INV-X": {"status": "DELETED", "amount_paid": D("0.00")},
        },
        credit_notes={"CN-1": {"remaining_credit": D("90.00")}},
        rejections={
            ("allocation", "A-1", "allocation_invoice_not_payable", "reported"),
            ("allocation", "A-2", "allocation_invoice_not_payable", "reported"),
            ("allocation", "A-4", "allocation_invoice_not_payable", "reported"),
            ("invoice", "INV-X", "deleted_in_ledger", "reported"),
        },
    ),
    Case(
        "an allocation naming both a credit note and a payment is ignored",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="50.00"),
            on_account("P-OA", "50.00", at(8)),
            allocation("A-1", "50.00", at(12), payment_id="P-OA"),
        ],
        invoices={"INV-1": {"amount_paid": D("0.00")}},
        credit_notes={"CN-1": {"remaining_credit": D("50.00")}},
        overpayments={"P-OA": {"remaining_credit": D("50.00"), "status": "ACTIVE"}},
        rejections={("allocation", "A-1", "allocation_two_sources", "reported")},
    ),
]

NEGATIVE_TOTALS = [
    Case(
        "a negative credit note is held back row by row; the good ones in its month go",
        [
            customer(),
            credit_note("CN-1", total="20.00"),
            credit_note("CN-2", total="-20.00"),
            credit_note("CN-3", total="0.00", status="PAID"),
        ],
        credit_notes={
            "CN-1": {"status": "ACTIVE", "total": D("20.00")},
            "CN-2": NOT_SENT,
            "CN-3": {"status": "PAID", "remaining_credit": D("0.00")},
        },
        rejections={("credit_note", "CN-2", "negative_total", "held_back")},
    ),
    Case(
        "credit given back beyond what was used would exceed the total: held back",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="20.00"),
            allocation("A-1", "-30.00", at(12), invoice_id=None),
        ],
        credit_notes={"CN-1": NOT_SENT},
        rejections={("credit_note", "CN-1", "negative_allocated", "held_back")},
    ),
]

FULLY_PAID = [
    Case(
        "pay 100, refund -100, pay 100: fully paid at the second 100",
        [
            customer(),
            invoice(total="100.00"),
            payment("P-1", "100.00", at(10)),
            payment("P-2", "-100.00", at(11)),
            payment("P-3", "100.00", at(14, 16)),
        ],
        invoices={
            "INV-1": {
                "status": "PAID",
                "amount_paid": D("100.00"),
                "fully_paid_date": "2024-03-14T16:00:00.000Z",
            }
        },
        overpayments={"P-1": NOT_SENT, "P-3": NOT_SENT},
    ),
    Case(
        "the final stretch may start with credit after a dip below the total",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="40.00"),
            payment("P-1", "100.00", at(10)),
            payment("P-2", "-40.00", at(11)),
            allocation("A-1", "40.00", at(12, 15)),
            payment("P-3", "5.00", at(13)),
        ],
        # running: 100, 60, 100, 105: at or above 100 from A-1 on
        invoices={"INV-1": {"status": "PAID", "fully_paid_date": "2024-03-12T15:00:00.000Z"}},
        credit_notes={"CN-1": {"status": "PAID", "remaining_credit": D("0.00")}},
        # P-3 took the invoice past its total
        overpayments={"P-3": {"total": D("5.00"), "remaining_credit": D("5.00")}},
        rejections={("invoice", "INV-1", "overpaid", "reported")},
    ),
    Case(
        "more refunded than paid: nothing paid, the whole total due, never more",
        [customer(), invoice(total="100.00"), payment("P-1", "-30.00", at(10))],
        invoices={
            "INV-1": {"status": "AUTHORISED", "amount_paid": D("0.00"), "amount_due": D("100.00")}
        },
        rejections={("invoice", "INV-1", "applied_below_zero", "reported")},
    ),
]

UNREADABLE_DATES = [
    Case(
        "dates Chaser cannot write are held back or left out, never sent",
        [
            customer(),
            invoice("INV-1", issue_date=date(9999, 12, 31), due_date="10000-01-30"),
            invoice("INV-2", total="10.00"),
            payment("P-1", "10.00", "10000-01-01 00:00:00", invoice_id="INV-2"),
            credit_note(issue_date="10000-01-01"),
            on_account("P-OA", "5.00", "10000-01-01 00:00:00"),
        ],
        invoices={
            "INV-1": NOT_SENT,
            "INV-2": {"status": "PAID", "fully_paid_date": None},
        },
        credit_notes={"CN-1": NOT_SENT},
        overpayments={"P-OA": NOT_SENT},
        rejections={
            ("invoice", "INV-1", "date_out_of_range", "held_back"),
            ("invoice", "INV-2", "fully_paid_date_unknown", "reported"),
            ("credit_note", "CN-1", "date_out_of_range", "held_back"),
            ("overpayment", "P-OA", "date_out_of_range", "held_back"),
        },
    ),
]

MISSING_KEYS = [
    Case(
        "documents and customers without a key are held back, listed once per kind",
        [
            customer(),
            customer(None, company_name="Nameless Ltd"),
            customer("  ", company_name="Blank Ltd"),
            invoice(None, invoice_number="SI-1"),
            invoice(None, invoice_number="SI-2"),
            invoice("INV-1"),
            credit_note(None),
            contact(None),
        ],
        invoices={"INV-1": {"status": "AUTHORISED"}},
        rejections={
            ("customer", "(missing)", "missing_key", "held_back"),
            ("invoice", "(missing)", "missing_key", "held_back"),
            ("credit_note", "(missing)", "missing_key", "held_back"),
            ("contact_person", "(missing)", "missing_key", "held_back"),
        },
    ),
    Case(
        "documents of a customer whose row has no id are reported as such",
        [
            customer(None, company_name="Acme Ltd"),
            invoice(customer_id="C-9"),
            credit_note(customer_id="C-9"),
        ],
        invoices={"INV-1": NOT_SENT},
        credit_notes={"CN-1": NOT_SENT},
        rejections={
            ("customer", "(missing)", "missing_key", "held_back"),
            ("invoice", "INV-1", "customer_key_missing", "held_back"),
            ("credit_note", "CN-1", "customer_key_missing", "held_back"),
        },
    ),
    Case(
        "a payment without a payment_id still pays its invoice, and is reported naming it",
        [
            customer(),
            invoice(total="2782.30"),
            payment(None, "2782.30", at(10)),
        ],
        invoices={"INV-1": {"status": "PAID", "amount_due": D("0.00")}},
        rejections={("payment", "(missing)", "missing_key", "reported")},
    ),
]

CASES = (
    WITHDRAWALS
    + HELD_BACK_CUSTOMERS
    + STALE
    + ALLOCATIONS
    + NEGATIVE_TOTALS
    + FULLY_PAID
    + UNREADABLE_DATES
    + MISSING_KEYS
)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_ledger_rule(case: Case, build) -> None:
    assert_case(build(case.ledger), case)


def test_a_stale_report_names_the_field_and_the_reason(build) -> None:
    con = build(STALE[0].ledger)
    [detail] = con.execute(
        "select detail from chaser_rejections where key = 'INV-1' and severity = 'stale_in_chaser'"
    ).fetchone()
    assert "due_date" in detail and "missing_due_date" in detail and "Chaser holds" in detail


def test_a_payment_without_a_key_is_reported_naming_its_invoice(build) -> None:
    con = build(MISSING_KEYS[2].ledger)
    [detail] = con.execute("select detail from chaser_rejections").fetchone()
    assert "2782.30 to invoice INV-1" in detail


def test_documents_of_a_keyless_customer_are_not_said_to_be_missing_from_the_ledger(build):
    con = build(MISSING_KEYS[1].ledger)
    [detail] = con.execute("select detail from chaser_rejections where key = 'INV-1'").fetchone()
    assert "without a customer_id" in detail and "Acme Ltd" in detail
    assert "not in the ledger" not in detail


def test_a_withdrawal_says_when_the_row_went_and_what_chaser_gets(build) -> None:
    con = build(WITHDRAWALS[0].ledger)
    [detail] = con.execute("select detail from chaser_rejections").fetchone()
    assert "2024-06-02 07:00:00" in detail and "DELETED" in detail


BAD_ROWS = [
    customer(),
    customer("C-2", company_name=""),
    customer(None),
    invoice("INV-OK", total="100.00"),
    invoice("INV-C2", customer_id="C-2"),
    invoice(None),
    invoice("INV-NUM", invoice_number=None),
    invoice("INV-ISS", issue_date=None),
    invoice("INV-DUE", due_date=None),
    invoice("INV-FAR", due_date="12000-01-01"),
    invoice("INV-ST", status="OPEN"),
    invoice("INV-CUR", currency_code="EURO"),
    invoice("INV-TOT", total=None),
    invoice("INV-NEG", total="-1.00"),
    invoice("INV-CUS", customer_id="C-404"),
    invoice("INV-NOC", customer_id=None),
    invoice("INV-DEL"),
    payment("P-1", "150.00", at(10), invoice_id="INV-OK"),
    payment("P-2", "-500.00", at(11), invoice_id="INV-C2"),
    payment("P-3", "10.00", "10000-01-01 00:00:00", invoice_id="INV-DEL"),
    credit_note("CN-OK", total="10.00"),
    credit_note("CN-NEG", total="-10.00"),
    credit_note("CN-CUR", currency_code=None),
    credit_note("CN-NUM", credit_note_number=" "),
    credit_note("CN-ST", status="OPEN"),
    credit_note("CN-OVR", total="5.00"),
    credit_note("CN-UND", total="5.00"),
    credit_note("CN-EUR", total="5.00", currency_code="EUR"),
    allocation("A-1", "9.00", at(12), invoice_id="INV-OK", credit_note_id="CN-OVR"),
    allocation("A-2", "-9.00", at(12), invoice_id=None, credit_note_id="CN-UND"),
    allocation("A-3", "5.00", at(12), invoice_id="INV-OK", credit_note_id="CN-EUR"),
    on_account("P-OA", "20.00", at(8)),
    on_account("P-OA2", "20.00", at(8), customer_id=None),
    on_account("P-OA3", "-20.00", at(8)),
    on_account("P-OA4", "20.00", at(8), currency_code="XXX1"),
    on_account("P-OA5", "20.00", None),
    allocation("A-4", "50.00", at(13), invoice_id="INV-C2", credit_note_id=None, payment_id="P-OA"),
    contact("CT-1", email="a@b.co; nope"),
    contact("CT-2", customer_id="C-404"),
    contact("CT-3", customer_id="C-2", mobile="n/a"),
    # found by review: each of these failed a blocking check, so one row stopped every sync
    customer("C-3", mobile="+49 151 234567890123"),  # 17 digits: "possible", not E.164
    contact("CT-4", mobile="+49 151 234567890123"),
    contact("CT-5", customer_id=None, mobile="n/a"),  # no customer: details said nothing
    contact("CT-6", customer_id=None, phone="ext. 9"),
    contact("CT-7", customer_id=None, email="x; grace@a.co.uk, ada@a.co.uk"),
    payment("P-DUP", "1.00", at(10), invoice_id="INV-OK", updated_at=None),
    payment("P-DUP", "1.00", at(10), invoice_id="INV-OK", updated_at=None),
    on_account("P-OA6", "50.00", at(8)),  # a negative allocation of cash: credit above total
    allocation("A-5", "-20.00", at(12), invoice_id=None, credit_note_id=None, payment_id="P-OA6"),
    deleted("invoices", "INV-DEL"),
    holding("contact_persons", "C-1:gone@company.co.uk"),
    holding("overpayments", "P-1"),
    holding("overpayments", "P-9"),
]


def test_no_blocking_check_fails_on_a_ledger_of_bad_rows(build) -> None:
    """One bad ledger row never blocks a month: every row a blocking check would refuse is held
    back before its mart, so the marts pass every contract check and every ERROR ledger rule."""
    con = build(BAD_ROWS)
    loaded = project()
    failures = {}
    for model in loaded.models.values():
        for query in contract_queries(model):
            found = find_violations(con, query)
            if found.count:
                failures[(model.name, query.name)] = found.examples
    for rule in mart_rules():
        if rule.severity == "ERROR":
            found = find_violations(con, rule.query)
            if found.count:
                failures[(rule.model, rule.query.name)] = found.examples
    assert failures == {}
    # the rows found by review are held back or reported, each with words
    rejections = rows(con, "chaser_rejections")
    found = {(r["entity"], r["key"], r["reason_code"], r["severity"]) for r in rejections}
    assert {
        ("customer", "C-3", "invalid_mobile_number", "reported"),
        ("contact_person", "CT-4", "invalid_mobile_number", "reported"),
        ("contact_person", "CT-5", "invalid_mobile_number", "reported"),
        ("contact_person", "CT-6", "invalid_phone_number", "reported"),
        ("contact_person", "CT-7", "invalid_email", "reported"),
        ("payment", "P-DUP", "duplicate_key", "held_back"),
        ("overpayment", "P-OA6", "negative_allocated", "held_back"),
    } <= found
    assert [r for r in rejections if not r["detail"]] == []
    # and the good rows all went
    assert {r["invoice_id"] for r in rows(con, "chaser_invoices")} == {
        "INV-OK",
        "INV-C2",
        "INV-DEL",
    }
    assert {r["credit_note_id"] for r in rows(con, "chaser_credit_notes")} == {
        "CN-OK",
        "CN-OVR",
        "CN-EUR",
    }
