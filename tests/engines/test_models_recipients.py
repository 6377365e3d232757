"""LEDGER_CONTRACT.md "Recipients and unapplied cash": contact persons from split addresses and ledger contacts, and overpayments from cash on account and surpluses, on hand-computed ledgers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

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
)

__all__ = ["build"]  # fixture

D = Decimal


def at(day: int, hour: int = 9) -> datetime:
    """A time in March 2024."""
    return datetime(2024, 3, day, hour)


def cash(allocation_id: str, amount: str, when: datetime, payment_id: str, **columns) -> dict:
    """Cash received on account (or a surplus) applied later: an allocation naming a payment."""
    return allocation(
        allocation_id, amount, when, credit_note_id=None, payment_id=payment_id, **columns
    )


ADDRESSES = [
    Case(
        "several addresses: the first valid is the customer's, the other valid ones contacts",
        [customer(email="bad@; ap@Acme.co.uk, Finance@acme.co.uk  AP@acme.co.uk;;")],
        customers={"C-1": {"contact_email_address": "ap@acme.co.uk"}},
        contact_persons={
            "C-1:finance@acme.co.uk": {
                "contact_email_address": "Finance@acme.co.uk",
                "contact_first_name": None,
                "contact_last_name": None,
                "status": "ACTIVE",
                "customer_external_id": "C-1",
            },
            # the same address again, in another case, is the customer's own
            "C-1:ap@acme.co.uk": NOT_SENT,
        },
        rejections={("customer", "C-1", "invalid_email", "reported")},
    ),
    Case(
        "addresses separated by spaces; an archived customer's extra addresses are archived",
        [
            customer("C-1", email="a@x.co.uk b@x.co.uk"),
            customer("C-2", email="a@x.co.uk,b@x.co.uk", is_archived=True),
        ],
        customers={
            "C-1": {"contact_email_address": "a@x.co.uk"},
            "C-2": {"contact_email_address": "a@x.co.uk", "status": "ARCHIVED"},
        },
        contact_persons={
            "C-1:b@x.co.uk": {"status": "ACTIVE", "customer_external_id": "C-1"},
            "C-2:b@x.co.uk": {"status": "ARCHIVED", "customer_external_id": "C-2"},
        },
    ),
    Case(
        "no valid address at all: none sent, reported",
        [customer(email="accounts; at acme")],
        customers={"C-1": {"contact_email_address": None}},
        rejections={("customer", "C-1", "invalid_email", "reported")},
    ),
    Case(
        "an address gone from the customer's field is archived in Chaser",
        [
            customer(email="ap@a.co.uk"),
            holding("contact_persons", "C-1:old@a.co.uk"),
            holding("contact_persons", "C-1:ap@a.co.uk"),
            # a contact Chaser holds that the ledger never landed: nothing to say about it
            holding("contact_persons", "CT-9"),
        ],
        contact_persons={
            "C-1:old@a.co.uk": {
                "contact_email_address": "old@a.co.uk",
                "status": "ARCHIVED",
                "customer_external_id": "C-1",
            },
            # now the customer's own address: no longer a contact person
            "C-1:ap@a.co.uk": {"status": "ARCHIVED"},
            "CT-9": NOT_SENT,
        },
    ),
]

CONTACTS = [
    Case(
        "ledger contacts become contact persons, phones normalised like the customer's",
        [
            customer("C-1", country="US"),
            customer("C-2"),
            contact("CT-1", mobile="415-555-0123", phone="(415) 555-0100"),
            contact("CT-2", customer_id="C-2", mobile="07700 900123", phone="ext. 9"),
            contact("CT-3", customer_id="C-2", mobile="n/a", email=None),
        ],
        contact_persons={
            "CT-1": {
                "contact_first_name": "Grace",
                "contact_last_name": "Hopper",
                "contact_email_address": "grace@company.co.uk",
                "mobile_number": "+14155550123",
                "phone_number": "+14155550100",
                "status": "ACTIVE",
                "customer_external_id": "C-1",
            },
            "CT-2": {"mobile_number": "+447700900123", "phone_number": "ext. 9"},
            "CT-3": {"mobile_number": None, "contact_email_address": None},
        },
        rejections={
            ("contact_person", "CT-2", "invalid_phone_number", "reported"),
            ("contact_person", "CT-3", "invalid_mobile_number", "reported"),
        },
    ),
    Case(
        "a contact archived or removed in the ledger is ARCHIVED in Chaser",
        [
            customer(),
            contact("CT-1", is_archived=True),
            contact("CT-2"),
            contact("CT-3", is_archived=None),
            deleted("contacts", "CT-2"),
        ],
        contact_persons={
            "CT-1": {"status": "ARCHIVED"},
            "CT-2": {"status": "ARCHIVED", "contact_first_name": "Grace"},
            "CT-3": {"status": "ACTIVE"},
        },
        rejections={("contact_person", "CT-2", "deleted_in_ledger", "reported")},
    ),
    Case(
        "contacts of an unknown customer are held back; of a held-back one they reach the mart",
        [
            customer("C-2", company_name=None),
            contact("CT-1", customer_id="C-404"),
            contact("CT-2", customer_id="C-2"),
        ],
        contact_persons={"CT-1": NOT_SENT, "CT-2": {"customer_external_id": "C-2"}},
        rejections={
            ("customer", "C-2", "missing_company_name", "held_back"),
            ("contact_person", "CT-1", "unknown_customer", "held_back"),
            ("contact_person", "CT-2", "customer_held_back", "reported"),
        },
    ),
    Case(
        "a contact is one person: its first valid address, the others reported",
        [customer(), contact(email="x; grace@a.co.uk, ada@a.co.uk")],
        contact_persons={"CT-1": {"contact_email_address": "grace@a.co.uk"}},
        rejections={
            ("contact_person", "CT-1", "invalid_email", "reported"),
            ("contact_person", "CT-1", "extra_email_left_out", "reported"),
        },
    ),
    Case(
        "a contact landed twice: the latest row wins, the other is reported",
        [
            customer(),
            contact("CT-1", first_name="Old", updated_at=datetime(2024, 1, 1)),
            contact("CT-1"),
        ],
        contact_persons={"CT-1": {"contact_first_name": "Grace"}},
        rejections={("contact_person", "CT-1", "duplicate_key", "held_back")},
    ),
]

OVERPAYMENTS = [
    Case(
        "cash received on account is an overpayment, all of it unapplied",
        [customer(), on_account("P-OA", "200.00", at(8, 10))],
        overpayments={
            "P-OA": {
                "customer_external_id": "C-1",
                "currency_code": "GBP",
                "date": "2024-03-08T10:00:00.000Z",
                "total": D("200.00"),
                "remaining_credit": D("200.00"),
                "status": "ACTIVE",
            }
        },
    ),
    Case(
        "cash on account applied later pays invoices and lowers the remaining credit",
        [
            customer(),
            invoice("INV-1", total="100.00"),
            invoice("INV-2", total="80.00"),
            on_account("P-OA", "200.00", at(8)),
            cash("A-1", "100.00", at(12), "P-OA", invoice_id="INV-1"),
            cash("A-2", "60.00", at(13), "P-OA", invoice_id="INV-2"),
        ],
        invoices={
            "INV-1": {"status": "PAID", "fully_paid_date": "2024-03-12T09:00:00.000Z"},
            "INV-2": {"status": "AUTHORISED", "amount_paid": D("60.00"), "amount_due": D("20.00")},
        },
        overpayments={
            "P-OA": {"total": D("200.00"), "remaining_credit": D("40.00"), "status": "ACTIVE"}
        },
    ),
    Case(
        "cash on account used up (applied and refunded) is PAID",
        [
            customer(),
            invoice(total="100.00"),
            on_account("P-OA", "150.00", at(8)),
            cash("A-1", "100.00", at(12), "P-OA"),
            cash("A-2", "50.00", at(13), "P-OA", invoice_id=None),
        ],
        invoices={"INV-1": {"status": "PAID"}},
        overpayments={"P-OA": {"remaining_credit": D("0.00"), "status": "PAID"}},
    ),
    Case(
        "the surplus past an invoice's total is an overpayment, and can pay another invoice",
        [
            customer(),
            invoice("INV-1", total="100.00"),
            invoice("INV-2", total="30.00"),
            payment("P-1", "60.00", at(10)),
            payment("P-2", "70.00", at(11)),
            cash("A-1", "30.00", at(12), "P-2", invoice_id="INV-2"),
        ],
        invoices={
            "INV-1": {"status": "PAID", "amount_due": D("0.00")},
            "INV-2": {"status": "PAID", "fully_paid_date": "2024-03-12T09:00:00.000Z"},
        },
        # running sum 60, 130: P-2 took the invoice 30.00 past its total
        overpayments={
            "P-1": NOT_SENT,
            "P-2": {
                "date": "2024-03-11T09:00:00.000Z",
                "total": D("30.00"),
                "remaining_credit": D("0.00"),
                "status": "PAID",
            },
        },
        rejections={("invoice", "INV-1", "overpaid", "reported")},
    ),
    Case(
        "a refund on an overpaid invoice takes its surplus back, earliest surplus first",
        [
            customer(),
            invoice(total="100.00"),
            payment("P-1", "150.00", at(10)),
            payment("P-2", "20.00", at(11)),
            payment("P-3", "-60.00", at(12)),
        ],
        # surpluses 50 (P-1) and 20 (P-2); 110 applied at the end, so 10 is still unapplied
        invoices={"INV-1": {"status": "PAID", "fully_paid_date": "2024-03-10T09:00:00.000Z"}},
        overpayments={
            "P-1": {"total": D("50.00"), "remaining_credit": D("0.00"), "status": "PAID"},
            "P-2": {"total": D("20.00"), "remaining_credit": D("10.00"), "status": "ACTIVE"},
            "P-3": NOT_SENT,
        },
        rejections={("invoice", "INV-1", "overpaid", "reported")},
    ),
    Case(
        "a surplus that came from credit is no overpayment",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="30.00"),
            payment("P-1", "100.00", at(10)),
            allocation("A-1", "30.00", at(11)),
        ],
        invoices={"INV-1": {"status": "PAID", "fully_paid_date": "2024-03-10T09:00:00.000Z"}},
        overpayments={"P-1": NOT_SENT},
        rejections={("invoice", "INV-1", "overpaid", "reported")},
    ),
    Case(
        "cash applied from a payment that left nothing unapplied counts as the ledger says, "
        "and is reported",
        [
            customer(),
            invoice(total="100.00"),
            invoice("INV-2", total="50.00"),
            payment("P-1", "100.00", at(6)),
            cash("A-1", "50.00", at(12), "P-1", invoice_id="INV-2"),
        ],
        invoices={
            "INV-1": {"status": "PAID", "amount_due": D("0.00")},
            "INV-2": {"status": "PAID", "amount_due": D("0.00")},
        },
        rejections={("payment", "P-1", "over_applied", "reported")},
    ),
    Case(
        "cash on account in another currency or of another customer pays nothing",
        [
            customer(),
            customer("C-2"),
            invoice(total="100.00"),
            on_account("P-E", "50.00", at(8), currency_code="eur"),
            on_account("P-C2", "50.00", at(8), customer_id="C-2"),
            cash("A-1", "50.00", at(12), "P-E"),
            cash("A-2", "50.00", at(12), "P-C2"),
        ],
        invoices={"INV-1": {"amount_paid": D("0.00")}},
        overpayments={
            "P-E": {"currency_code": "EUR", "remaining_credit": D("50.00")},
            "P-C2": {"customer_external_id": "C-2", "remaining_credit": D("50.00")},
        },
        rejections={
            ("allocation", "A-1", "allocation_other_currency", "reported"),
            ("allocation", "A-2", "allocation_other_customer", "reported"),
        },
    ),
    Case(
        "cash on account the ledger says nothing about is held back, but still pays its invoice",
        [
            customer(),
            invoice(total="100.00"),
            on_account("P-X", "100.00", at(8), customer_id=None, currency_code=None),
            on_account("P-Y", "100.00", at(8), customer_id=None),
            cash("A-1", "100.00", at(12), "P-X"),
        ],
        invoices={"INV-1": {"status": "PAID", "amount_due": D("0.00")}},
        overpayments={"P-X": NOT_SENT, "P-Y": NOT_SENT},
        rejections={
            ("overpayment", "P-X", "invalid_currency", "held_back"),
            ("overpayment", "P-Y", "missing_customer_id", "held_back"),
        },
    ),
    Case(
        "reversed cash on account is VOIDED and pays nothing; removed cash is DELETED",
        [
            customer(),
            invoice(total="100.00"),
            on_account("P-R", "200.00", at(8), is_reversed=True),
            on_account("P-D", "50.00", at(8)),
            cash("A-1", "100.00", at(12), "P-R"),
            deleted("payments", "P-D"),
        ],
        invoices={"INV-1": {"amount_paid": D("0.00")}},
        overpayments={
            "P-R": {"total": D("200.00"), "remaining_credit": D("0.00"), "status": "VOIDED"},
            "P-D": {"total": D("50.00"), "remaining_credit": D("0.00"), "status": "DELETED"},
        },
        rejections={
            ("allocation", "A-1", "allocation_source_not_usable", "reported"),
            ("payment", "P-D", "deleted_in_ledger", "reported"),
        },
    ),
    Case(
        "an overpayment Chaser holds whose cash is no longer unapplied is VOIDED",
        [
            customer(),
            invoice(total="100.00"),
            payment("P-1", "100.00", at(10)),
            holding("overpayments", "P-1"),
        ],
        overpayments={
            "P-1": {
                "date": "2024-03-10T09:00:00.000Z",
                "total": D("0.00"),
                "remaining_credit": D("0.00"),
                "status": "VOIDED",
            }
        },
    ),
    Case(
        "money paid on an invoice without a usable total is no surplus",
        [
            customer(),
            invoice("INV-1", total=None),
            invoice("INV-2", total="-10.00"),
            payment("P-1", "50.00", at(10), invoice_id="INV-1"),
            payment("P-2", "50.00", at(10), invoice_id="INV-2"),
        ],
        overpayments={"P-1": NOT_SENT, "P-2": NOT_SENT},
        rejections={
            ("invoice", "INV-1", "missing_total", "held_back"),
            ("invoice", "INV-2", "negative_total", "held_back"),
        },
    ),
    Case(
        "more cash applied than was unapplied: no remaining credit, reported",
        [
            customer(),
            invoice(total="100.00"),
            on_account("P-OA", "50.00", at(8)),
            cash("A-1", "80.00", at(12), "P-OA"),
        ],
        invoices={"INV-1": {"amount_paid": D("80.00")}},
        overpayments={"P-OA": {"remaining_credit": D("0.00"), "status": "PAID"}},
        rejections={("overpayment", "P-OA", "over_applied", "reported")},
    ),
    Case(
        "negative cash on account is held back; a held-back customer's overpayment is reported",
        [
            customer(),
            customer("C-2", company_name=""),
            on_account("P-N", "-20.00", at(8)),
            on_account("P-2", "20.00", at(8), customer_id="C-2"),
        ],
        overpayments={"P-N": NOT_SENT, "P-2": {"customer_external_id": "C-2"}},
        rejections={
            ("customer", "C-2", "missing_company_name", "held_back"),
            ("overpayment", "P-N", "negative_total", "held_back"),
            ("overpayment", "P-2", "customer_held_back", "reported"),
        },
    ),
]

CASES = ADDRESSES + CONTACTS + OVERPAYMENTS


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_ledger_rule(case: Case, build) -> None:
    assert_case(build(case.ledger), case)


def test_an_overpaid_invoice_says_where_its_surplus_went(build) -> None:
    con = build(OVERPAYMENTS[3].ledger)
    [detail] = con.execute(
        "select detail from chaser_rejections where reason_code = 'overpaid'"
    ).fetchone()
    assert "30.00 more than its total" in detail and "overpayment P-2" in detail
    con = build(OVERPAYMENTS[5].ledger)
    [detail] = con.execute(
        "select detail from chaser_rejections where reason_code = 'overpaid'"
    ).fetchone()
    assert "No overpayment holds the surplus" in detail


def test_the_whole_field_of_a_split_address_is_kept_for_the_reader(build) -> None:
    con = build(ADDRESSES[0].ledger)
    [detail] = con.execute("select detail from chaser_rejections").fetchone()
    assert "'bad@'" in detail and "valid ones are used" in detail
