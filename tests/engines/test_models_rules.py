"""LEDGER_CONTRACT.md "What Chaser must hold" and "Never sent": the SQL models on hand-computed ledgers."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

import duckdb
import pytest
import yaml

from chaser_pipeline.models.build import build_model
from chaser_pipeline.models.field_rules import (
    e164_phone_number,
    register_field_rules,
    valid_email_address,
)
from chaser_pipeline.paths import models_dir
from tests.support.models import (
    NOT_SENT,
    Case,
    allocation,
    assert_case,
    build,
    build_models,
    credit_note,
    customer,
    invoice,
    landed_ledger,
    on_account,
    payment,
    project,
    rows,
)

__all__ = ["build"]  # fixture

D = Decimal
MART_COLUMNS = {
    "chaser_customers": [
        "external_id",
        "company_name",
        "contact_first_name",
        "contact_last_name",
        "contact_email_address",
        "phone_number",
        "mobile_number",
        "status",
        "addresses",
    ],
    "chaser_invoices": [
        "invoice_id",
        "invoice_number",
        "customer_external_id",
        "status",
        "currency_code",
        "sub_total",
        "total",
        "amount_paid",
        "amount_due",
        "date",
        "due_date",
        "fully_paid_date",
    ],
    "chaser_credit_notes": [
        "credit_note_id",
        "credit_note_number",
        "customer_external_id",
        "currency_code",
        "date",
        "total",
        "remaining_credit",
        "status",
    ],
    "chaser_contact_persons": [
        "external_id",
        "contact_first_name",
        "contact_last_name",
        "contact_email_address",
        "phone_number",
        "mobile_number",
        "status",
        "customer_external_id",
    ],
    "chaser_overpayments": [
        "overpayment_id",
        "customer_external_id",
        "currency_code",
        "date",
        "total",
        "remaining_credit",
        "status",
    ],
    "chaser_rejections": ["entity", "key", "reason_code", "detail", "severity"],
}


def at(day: int, hour: int = 9, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A time in March 2024."""
    return datetime(2024, 3, day, hour, minute, second, micro)


CASES = [
    Case(
        "partial payment",
        [customer(), invoice(total="100.00"), payment("P-1", "40.00", at(10))],
        invoices={
            "INV-1": {
                "status": "AUTHORISED",
                "amount_paid": D("40.00"),
                "amount_due": D("60.00"),
                "fully_paid_date": None,
            }
        },
    ),
    Case(
        "payment plus credit completes invoice at the allocation's time",
        [
            customer(),
            invoice(total="100.00"),
            payment("P-1", "60.00", at(10)),
            credit_note(total="50.00"),
            allocation("A-1", "40.00", at(12, 14, 30, 15, 250_000)),
        ],
        invoices={
            "INV-1": {
                "status": "PAID",
                "amount_paid": D("100.00"),
                "amount_due": D("0.00"),
                "fully_paid_date": "2024-03-12T14:30:15.250Z",
            }
        },
        credit_notes={"CN-1": {"status": "ACTIVE", "remaining_credit": D("10.00")}},
    ),
    Case(
        "reversed payment counts as never made",
        [
            customer(),
            invoice(total="100.00"),
            payment("P-1", "100.00", at(10), is_reversed=True),
            payment("P-2", "30.00", at(11)),
        ],
        invoices={
            "INV-1": {"status": "AUTHORISED", "amount_paid": D("30.00"), "amount_due": D("70.00")}
        },
    ),
    Case(
        "overpayment is PAID with nothing due and reported",
        [
            customer(),
            invoice(total="100.00"),
            payment("P-1", "70.00", at(10)),
            payment("P-2", "50.00", at(11, 16)),
        ],
        invoices={
            "INV-1": {
                "status": "PAID",
                "amount_paid": D("100.00"),
                "amount_due": D("0.00"),
                "fully_paid_date": "2024-03-11T16:00:00.000Z",
            }
        },
        # the 20.00 past the total is P-2's unapplied cash
        overpayments={
            "P-2": {
                "customer_external_id": "C-1",
                "currency_code": "GBP",
                "date": "2024-03-11T16:00:00.000Z",
                "total": D("20.00"),
                "remaining_credit": D("20.00"),
                "status": "ACTIVE",
            },
            "P-1": NOT_SENT,
        },
        rejections={("invoice", "INV-1", "overpaid", "reported")},
    ),
    Case(
        "payments at the same time are ordered by id",
        [
            customer(),
            invoice(total="100.00"),
            payment("P-2", "50.00", at(10)),
            payment("P-1", "50.00", at(10)),
            payment("P-3", "50.00", at(11)),
        ],
        invoices={"INV-1": {"status": "PAID", "fully_paid_date": "2024-03-10T09:00:00.000Z"}},
        rejections={("invoice", "INV-1", "overpaid", "reported")},
    ),
    Case(
        "a payment or allocation without an amount counts as nothing, in the fully paid date too",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="50.00"),
            payment("P-0", None, at(1)),
            allocation("A-0", None, at(2)),
            payment("P-1", "100.00", at(20)),
        ],
        invoices={
            "INV-1": {
                "status": "PAID",
                "amount_paid": D("100.00"),
                "fully_paid_date": "2024-03-20T09:00:00.000Z",
            }
        },
        rejections={
            ("payment", "P-0", "missing_amount", "reported"),
            ("allocation", "A-0", "missing_amount", "reported"),
        },
    ),
    Case(
        "zero-total invoice is PAID on its issue date",
        [customer(), invoice(total="0.00")],
        invoices={
            "INV-1": {
                "status": "PAID",
                "amount_paid": D("0.00"),
                "amount_due": D("0.00"),
                "fully_paid_date": "2024-03-05T00:00:00.000Z",
            }
        },
    ),
    Case(
        "source PAID with money due goes out AUTHORISED and is reported",
        [customer(), invoice(total="100.00", status=" paid "), payment("P-1", "40.00", at(10))],
        invoices={
            "INV-1": {
                "status": "AUTHORISED",
                "amount_paid": D("40.00"),
                "amount_due": D("60.00"),
                "fully_paid_date": None,
            }
        },
        rejections={("invoice", "INV-1", "paid_with_amount_due", "reported")},
    ),
    Case(
        "draft, voided and deleted statuses pass through",
        [
            customer(),
            invoice("INV-1", status="draft", total="100.00"),
            invoice("INV-2", status="VOIDED", total="100.00"),
            invoice("INV-3", status="Deleted", total="100.00"),
            invoice("INV-4", status="SUBMITTED", total="100.00"),
            payment("P-1", "100.00", at(10), invoice_id="INV-2"),
        ],
        invoices={
            "INV-1": {"status": "DRAFT", "amount_due": D("100.00"), "fully_paid_date": None},
            "INV-2": {"status": "VOIDED", "amount_due": D("0.00"), "fully_paid_date": None},
            "INV-3": {"status": "DELETED"},
            "INV-4": {"status": "SUBMITTED"},
        },
    ),
    Case(
        "refund from a credit note reduces its remaining credit and touches no invoice",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="50.00"),
            allocation("A-1", "20.00", at(12), invoice_id=None),
        ],
        invoices={
            "INV-1": {"status": "AUTHORISED", "amount_paid": D("0.00"), "amount_due": D("100.00")}
        },
        credit_notes={"CN-1": {"status": "ACTIVE", "remaining_credit": D("30.00")}},
    ),
    Case(
        "allocation from a VOIDED credit note is ignored on both sides and reported",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="100.00", status="VOIDED"),
            allocation("A-1", "100.00", at(12)),
        ],
        invoices={
            "INV-1": {"status": "AUTHORISED", "amount_paid": D("0.00"), "amount_due": D("100.00")}
        },
        credit_notes={"CN-1": {"status": "VOIDED", "remaining_credit": D("100.00")}},
        rejections={("allocation", "A-1", "allocation_source_not_usable", "reported")},
    ),
    Case(
        "credit partly used stays ACTIVE with the remainder",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="50.00"),
            allocation("A-1", "20.00", at(12)),
            allocation("A-2", "30.00", at(13), is_reversed=True),
        ],
        invoices={"INV-1": {"amount_paid": D("20.00"), "amount_due": D("80.00")}},
        credit_notes={"CN-1": {"status": "ACTIVE", "remaining_credit": D("30.00")}},
    ),
    Case(
        "credit fully used is PAID with nothing remaining",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="50.00"),
            allocation("A-1", "50.00", at(12)),
        ],
        invoices={"INV-1": {"status": "AUTHORISED", "amount_paid": D("50.00")}},
        credit_notes={"CN-1": {"status": "PAID", "remaining_credit": D("0.00")}},
    ),
    Case(
        "over-allocated credit has no remaining credit and is reported",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="50.00"),
            allocation("A-1", "30.00", at(12)),
            allocation("A-2", "30.00", at(13), invoice_id=None),
        ],
        credit_notes={"CN-1": {"status": "PAID", "remaining_credit": D("0.00")}},
        rejections={("credit_note", "CN-1", "over_allocated", "reported")},
    ),
    Case(
        "duplicate keys: latest updated_at wins, the others are reported",
        [
            customer(),
            customer(company_name="Old name", updated_at=datetime(2024, 1, 1)),
            invoice(total="80.00", updated_at=datetime(2024, 6, 2)),
            invoice(total="100.00", updated_at=datetime(2024, 6, 1)),
            payment("P-1", "10.00", at(10)),
            payment("P-1", "10.00", at(10), updated_at=datetime(2024, 1, 1)),
        ],
        customers={"C-1": {"company_name": "Company C-1"}},
        invoices={"INV-1": {"total": D("80.00"), "amount_paid": D("10.00")}},
        rejections={
            ("customer", "C-1", "duplicate_key", "held_back"),
            ("invoice", "INV-1", "duplicate_key", "held_back"),
            ("payment", "P-1", "duplicate_key", "held_back"),
        },
    ),
    Case(
        "unknown customer holds back its invoice",
        [customer(), invoice(customer_id="C-404"), credit_note(customer_id="C-404")],
        invoices={"INV-1": NOT_SENT},
        credit_notes={"CN-1": NOT_SENT},
        rejections={
            ("invoice", "INV-1", "unknown_customer", "held_back"),
            ("credit_note", "CN-1", "unknown_customer", "held_back"),
        },
    ),
    Case(
        "customer without company name is held back; its documents reach the marts, reported",
        [
            customer(),
            customer("C-2", company_name="   "),
            invoice("INV-1"),
            invoice("INV-2", customer_id="C-2"),
            credit_note("CN-2", customer_id="C-2"),
        ],
        customers={"C-1": {"status": "ACTIVE"}, "C-2": NOT_SENT},
        invoices={
            "INV-1": {"status": "AUTHORISED"},
            "INV-2": {"status": "AUTHORISED", "customer_external_id": "C-2"},
        },
        credit_notes={"CN-2": {"status": "ACTIVE", "customer_external_id": "C-2"}},
        rejections={
            ("customer", "C-2", "missing_company_name", "held_back"),
            ("invoice", "INV-2", "customer_held_back", "reported"),
            ("credit_note", "CN-2", "customer_held_back", "reported"),
        },
    ),
    Case(
        "currency must be ISO 4217 (any case)",
        [
            customer(),
            invoice("INV-1", currency_code=" eur "),
            invoice("INV-2", currency_code="GBPX"),
            invoice("INV-3", currency_code=None),
            credit_note(currency_code="XYZ"),
        ],
        invoices={"INV-1": {"currency_code": "EUR"}, "INV-2": NOT_SENT, "INV-3": NOT_SENT},
        credit_notes={"CN-1": NOT_SENT},
        rejections={
            ("invoice", "INV-2", "invalid_currency", "held_back"),
            ("invoice", "INV-3", "invalid_currency", "held_back"),
            ("credit_note", "CN-1", "invalid_currency", "held_back"),
        },
    ),
    Case(
        "negative invoice total is held back",
        [customer(), invoice(total="-5.00")],
        invoices={"INV-1": NOT_SENT},
        rejections={("invoice", "INV-1", "negative_total", "held_back")},
    ),
    Case(
        "missing number or dates are held back",
        [
            customer(),
            invoice("INV-1", invoice_number=None),
            invoice("INV-2", invoice_number="  "),
            invoice("INV-3", issue_date=None),
            invoice("INV-4", due_date=None),
            credit_note("CN-1", credit_note_number=""),
            credit_note("CN-2", issue_date=None),
        ],
        invoices={"INV-1": NOT_SENT, "INV-2": NOT_SENT, "INV-3": NOT_SENT, "INV-4": NOT_SENT},
        credit_notes={"CN-1": NOT_SENT, "CN-2": NOT_SENT},
        rejections={
            ("invoice", "INV-1", "missing_invoice_number", "held_back"),
            ("invoice", "INV-2", "missing_invoice_number", "held_back"),
            ("invoice", "INV-3", "missing_issue_date", "held_back"),
            ("invoice", "INV-4", "missing_due_date", "held_back"),
            ("credit_note", "CN-1", "missing_credit_note_number", "held_back"),
            ("credit_note", "CN-2", "missing_issue_date", "held_back"),
        },
    ),
    Case(
        "unknown status is held back",
        [customer(), invoice(status="OPEN")],
        invoices={"INV-1": NOT_SENT},
        rejections={("invoice", "INV-1", "unknown_status", "held_back")},
    ),
    Case(
        "float-unsafe amounts 0.10 + 0.20 pay 0.30 exactly",
        [
            customer(),
            invoice(total="0.30"),
            payment("P-1", "0.10", at(10)),
            payment("P-2", "0.20", at(11)),
        ],
        invoices={
            "INV-1": {
                "status": "PAID",
                "total": D("0.30"),
                "amount_paid": D("0.30"),
                "amount_due": D("0.00"),
                "fully_paid_date": "2024-03-11T09:00:00.000Z",
            }
        },
    ),
    Case(
        "payments and allocations to unknown documents are reported and ignored",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="50.00"),
            payment("P-1", "10.00", at(10), invoice_id="INV-404"),
            payment("P-2", "10.00", at(10), invoice_id="INV-405", is_reversed=True),
            allocation("A-1", "10.00", at(10), credit_note_id="CN-404"),
            allocation("A-2", "10.00", at(10), invoice_id="INV-404"),
        ],
        invoices={"INV-1": {"amount_paid": D("0.00")}},
        credit_notes={"CN-1": {"remaining_credit": D("50.00")}},
        rejections={
            ("payment", "P-1", "orphan_payment", "reported"),
            ("allocation", "A-1", "orphan_allocation", "reported"),
            ("allocation", "A-2", "orphan_allocation", "reported"),
        },
    ),
    Case(
        "mobile normalised to E.164 with the default country; junk left out and reported",
        [
            customer("C-1", mobile="07700 900123"),
            customer("C-2", mobile="+44 (0)7700 900124"),
            customer("C-3", mobile="ring the office"),
        ],
        customers={
            "C-1": {"mobile_number": "+447700900123"},
            "C-2": {"mobile_number": "+447700900124"},
            "C-3": {"mobile_number": None},
        },
        rejections={("customer", "C-3", "invalid_mobile_number", "reported")},
    ),
    Case(
        "numbers without a country code are read in the customer's own country when known",
        [
            customer("C-1", mobile="415-555-0123", phone="(415) 555-0100", country="US"),
            customer("C-2", mobile="07700 900123", country="United Kingdom"),
        ],
        customers={
            "C-1": {"mobile_number": "+14155550123", "phone_number": "+14155550100"},
            "C-2": {"mobile_number": "+447700900123"},
        },
    ),
    Case(
        "phone normalised where it parses, else sent as given and reported",
        [customer("C-1", phone="020 7946 0018"), customer("C-2", phone="ext. 42")],
        customers={"C-1": {"phone_number": "+442079460018"}, "C-2": {"phone_number": "ext. 42"}},
        rejections={("customer", "C-2", "invalid_phone_number", "reported")},
    ),
    Case(
        "invalid e-mail left out and reported",
        [customer("C-1", email=" ap@Acme.CO.UK "), customer("C-2", email="accounts at acme")],
        customers={
            "C-1": {"contact_email_address": "ap@acme.co.uk"},
            "C-2": {"contact_email_address": None},
        },
        rejections={("customer", "C-2", "invalid_email", "reported")},
    ),
    Case(
        "one Billing address when any address column is set",
        [
            customer(
                "C-1",
                address_line1=" 1 High Street ",
                city="London",
                postal_code="N1 9GU",
                country="GB",
            ),
            customer("C-2", region="Kent"),
            customer("C-3", address_line1="  "),
            customer("C-4", is_archived=True),
        ],
        customers={
            "C-1": {
                "addresses": [
                    {
                        "address_line1": "1 High Street",
                        "address_line2": None,
                        "city": "London",
                        "region": None,
                        "postal_code": "N1 9GU",
                        "country": "GB",
                        "address_type": "Billing",
                    }
                ],
                "status": "ACTIVE",
            },
            "C-2": {
                "addresses": [
                    {
                        "address_line1": None,
                        "address_line2": None,
                        "city": None,
                        "region": "Kent",
                        "postal_code": None,
                        "country": None,
                        "address_type": "Billing",
                    }
                ]
            },
            "C-3": {"addresses": None},
            "C-4": {"addresses": None, "status": "ARCHIVED"},
        },
    ),
    Case(
        "dates exactly in the Chaser format",
        [
            customer(),
            invoice(total="10.00", issue_date=date(2024, 3, 5), due_date=date(2024, 4, 4)),
            payment("P-1", "10.00", at(20, 23, 59, 59, 999_999)),
            credit_note(issue_date=date(2024, 3, 10)),
        ],
        invoices={
            "INV-1": {
                "date": "2024-03-05T00:00:00.000Z",
                "due_date": "2024-04-04T00:00:00.000Z",
                "fully_paid_date": "2024-03-20T23:59:59.999Z",
            }
        },
        credit_notes={"CN-1": {"date": "2024-03-10T00:00:00.000Z"}},
    ),
    Case(
        "time orders before id: the running sum follows paid_at, not payment_id",
        [
            customer(),
            invoice(total="100.00"),
            payment("P-1", "50.00", at(12)),
            payment("P-2", "50.00", at(11)),
            payment("P-3", "50.00", at(13)),
        ],
        # by time: P-2 (50), P-1 (100 reached, 12th), P-3; by id it would be the 11th
        invoices={"INV-1": {"status": "PAID", "fully_paid_date": "2024-03-12T09:00:00.000Z"}},
        rejections={("invoice", "INV-1", "overpaid", "reported")},
    ),
    Case(
        "ties on time are broken by id: a negative movement at the same time sorts by its id",
        [
            customer(),
            invoice(total="100.00"),
            # same instant: P-1 (-100) sorts before P-2 (+100), so the sum is 0 at the 10th, not 100
            payment("P-2", "100.00", at(10)),
            payment("P-1", "-100.00", at(10)),
            payment("P-3", "100.00", at(14)),
        ],
        invoices={
            "INV-1": {
                "status": "PAID",
                "amount_paid": D("100.00"),
                "fully_paid_date": "2024-03-14T09:00:00.000Z",
            }
        },
    ),
    Case(
        "a payment and an allocation at the same time are ordered by id across both kinds",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="100.00"),
            # ids compare as text across kinds: "A-1" < "P-1"; the sum reaches 100 at P-1, same time
            payment("P-1", "60.00", at(10, 12)),
            allocation("A-1", "40.00", at(10, 12)),
        ],
        invoices={"INV-1": {"status": "PAID", "fully_paid_date": "2024-03-10T12:00:00.000Z"}},
        credit_notes={"CN-1": {"status": "ACTIVE", "remaining_credit": D("60.00")}},
    ),
    Case(
        "a reversed allocation is left out of the running sum",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="100.00"),
            allocation("A-1", "100.00", at(10), is_reversed=True),
            payment("P-1", "100.00", at(12)),
        ],
        invoices={
            "INV-1": {
                "status": "PAID",
                "amount_paid": D("100.00"),
                "fully_paid_date": "2024-03-12T09:00:00.000Z",
            }
        },
        credit_notes={"CN-1": {"status": "ACTIVE", "remaining_credit": D("100.00")}},
    ),
    Case(
        "an allocation from a VOIDED credit note is left out of the running sum",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="100.00", status="voided"),
            allocation("A-1", "100.00", at(10)),
            payment("P-1", "100.00", at(12)),
        ],
        invoices={
            "INV-1": {
                "status": "PAID",
                "amount_paid": D("100.00"),
                "fully_paid_date": "2024-03-12T09:00:00.000Z",
            }
        },
        credit_notes={"CN-1": {"status": "VOIDED", "remaining_credit": D("100.00")}},
        rejections={("allocation", "A-1", "allocation_source_not_usable", "reported")},
    ),
    Case(
        "allocation from a DELETED credit note (any case) is not applied",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="100.00", status=" Deleted "),
            allocation("A-1", "100.00", at(12)),
        ],
        invoices={
            "INV-1": {
                "status": "AUTHORISED",
                "amount_paid": D("0.00"),
                "amount_due": D("100.00"),
                "fully_paid_date": None,
            }
        },
        credit_notes={"CN-1": {"status": "DELETED", "remaining_credit": D("100.00")}},
        rejections={("allocation", "A-1", "allocation_source_not_usable", "reported")},
    ),
    Case(
        "allocations from DRAFT and SUBMITTED credit notes pay nothing: credit not yet issued",
        [
            customer(),
            invoice(total="100.00"),
            credit_note("CN-D", total="30.00", status="draft"),
            credit_note("CN-S", total="70.00", status="SUBMITTED"),
            allocation("A-1", "30.00", at(11), credit_note_id="CN-D"),
            allocation("A-2", "70.00", at(12), credit_note_id="CN-S"),
        ],
        invoices={
            "INV-1": {
                "status": "AUTHORISED",
                "amount_paid": D("0.00"),
                "amount_due": D("100.00"),
                "fully_paid_date": None,
            }
        },
        # DRAFT and SUBMITTED pass through, with all their credit
        credit_notes={
            "CN-D": {"status": "DRAFT", "remaining_credit": D("30.00")},
            "CN-S": {"status": "SUBMITTED", "remaining_credit": D("70.00")},
        },
        rejections={
            ("allocation", "A-1", "allocation_source_not_usable", "reported"),
            ("allocation", "A-2", "allocation_source_not_usable", "reported"),
        },
    ),
    Case(
        "payment reversed after the invoice reached PAID: AUTHORISED again, no fully_paid_date",
        [
            customer(),
            invoice(total="100.00", status="PAID"),
            payment("P-1", "60.00", at(10)),
            payment("P-2", "40.00", at(11)),
            # the bank bounced P-2 later: the ledger re-sent the row with a later updated_at
            payment("P-2", "40.00", at(11), is_reversed=True, updated_at=datetime(2024, 6, 3)),
        ],
        invoices={
            "INV-1": {
                "status": "AUTHORISED",
                "amount_paid": D("60.00"),
                "amount_due": D("40.00"),
                "fully_paid_date": None,
            }
        },
        rejections={
            ("payment", "P-2", "duplicate_key", "held_back"),
            ("invoice", "INV-1", "paid_with_amount_due", "reported"),
        },
    ),
    Case(
        "an older reversed row does not undo a later un-reversed one (latest updated_at wins)",
        [
            customer(),
            invoice(total="100.00"),
            payment("P-1", "100.00", at(10), is_reversed=True, updated_at=datetime(2024, 5, 1)),
            payment("P-1", "100.00", at(10), updated_at=datetime(2024, 6, 3)),
        ],
        invoices={"INV-1": {"status": "PAID", "fully_paid_date": "2024-03-10T09:00:00.000Z"}},
        rejections={("payment", "P-1", "duplicate_key", "held_back")},
    ),
    Case(
        "duplicate payment and allocation rows count once",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="50.00"),
            payment("P-1", "30.00", at(10)),
            payment("P-1", "30.00", at(10)),
            payment("P-1", "30.00", at(10), updated_at=datetime(2024, 1, 1)),
            allocation("A-1", "20.00", at(11)),
            allocation("A-1", "20.00", at(11)),
        ],
        invoices={"INV-1": {"amount_paid": D("50.00"), "amount_due": D("50.00")}},
        credit_notes={"CN-1": {"remaining_credit": D("30.00")}},
        rejections={
            ("payment", "P-1", "duplicate_key", "held_back"),
            ("allocation", "A-1", "duplicate_key", "held_back"),
        },
    ),
    Case(
        "payments and allocations without a key are each counted and reported once per kind",
        [
            customer(),
            invoice(total="100.00"),
            credit_note(total="50.00"),
            payment(None, "40.00", at(10)),
            payment("  ", "30.00", at(11)),
            payment(None, "5.00", at(11), invoice_id="INV-404"),
            allocation(None, "30.00", at(12)),
        ],
        invoices={
            "INV-1": {
                "status": "PAID",
                "amount_paid": D("100.00"),
                "fully_paid_date": "2024-03-12T09:00:00.000Z",
            }
        },
        credit_notes={"CN-1": {"remaining_credit": D("20.00")}},
        rejections={
            ("payment", "(missing)", "missing_key", "reported"),
            ("allocation", "(missing)", "missing_key", "reported"),
        },
    ),
    Case(
        "a settling payment without a time: PAID, no fully_paid_date, reported",
        [
            customer(),
            invoice(total="100.00"),
            payment("P-1", "40.00", at(10)),
            payment("P-2", "60.00", None),
        ],
        invoices={"INV-1": {"status": "PAID", "fully_paid_date": None}},
        rejections={("invoice", "INV-1", "fully_paid_date_unknown", "reported")},
    ),
    Case(
        "source PAID and fully paid stays PAID and is not reported",
        [customer(), invoice(total="100.00", status="Paid"), payment("P-1", "100.00", at(10))],
        invoices={"INV-1": {"status": "PAID", "fully_paid_date": "2024-03-10T09:00:00.000Z"}},
    ),
    Case(
        "overpaid VOIDED invoice passes through with nothing due and is reported",
        [customer(), invoice(total="100.00", status="voided"), payment("P-1", "150.00", at(10))],
        invoices={
            "INV-1": {
                "status": "VOIDED",
                "amount_paid": D("100.00"),
                "amount_due": D("0.00"),
                "fully_paid_date": None,
            }
        },
        rejections={("invoice", "INV-1", "overpaid", "reported")},
    ),
    Case(
        "credit note statuses: any case; PAID at 0 remaining, ACTIVE while credit remains",
        [
            customer(),
            invoice(total="100.00"),
            credit_note("CN-1", total="40.00", status=" paid "),
            credit_note("CN-2", total="40.00", status="authorised"),
            credit_note("CN-3", total="40.00", status="Paid"),
            allocation("A-1", "40.00", at(11), credit_note_id="CN-1"),
            allocation("A-2", "10.00", at(11), credit_note_id="CN-2"),
        ],
        credit_notes={
            "CN-1": {"status": "PAID", "remaining_credit": D("0.00")},
            "CN-2": {"status": "ACTIVE", "remaining_credit": D("30.00")},
            # the ledger says PAID, but nothing was used: ACTIVE with the whole credit
            "CN-3": {"status": "ACTIVE", "remaining_credit": D("40.00")},
        },
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_ledger_rule(case: Case, build) -> None:
    assert_case(build(case.ledger), case)


def test_marts_have_exactly_the_payload_columns_and_types(build) -> None:
    con = build(CASES[1].ledger)
    for mart, columns in MART_COLUMNS.items():
        assert [d[0] for d in con.execute(f"select * from {mart}").description] == columns
    types = dict(
        con.execute("select column_name, column_type from (describe chaser_invoices)").fetchall()
    )
    for money in ("sub_total", "total", "amount_paid", "amount_due"):
        assert types[money] == "DECIMAL(18,2)"
    types = dict(
        con.execute(
            "select column_name, column_type from (describe chaser_credit_notes)"
        ).fetchall()
    )
    assert types["total"] == types["remaining_credit"] == "DECIMAL(18,2)"


def test_rejection_detail_names_the_values(build) -> None:
    con = build(CASES[3].ledger)  # overpayment: 120.00 applied to a 100.00 invoice
    [detail] = con.execute("select detail from chaser_rejections").fetchone()
    assert "INV-1" in detail and "120.00" in detail and "20.00" in detail and "GBP" in detail


def test_march_window_builds_march_invoices_counting_later_payments(build) -> None:
    ledger = [
        customer(),
        invoice("INV-FEB", issue_date=date(2024, 2, 29)),
        invoice("INV-MAR", issue_date=date(2024, 3, 1), total="100.00"),
        invoice("INV-MAR-END", issue_date=date(2024, 3, 31)),
        invoice("INV-APR", issue_date=date(2024, 4, 1)),
        payment("P-1", "30.00", at(15), invoice_id="INV-MAR"),
        payment("P-2", "70.00", datetime(2024, 5, 2, 10, 0), invoice_id="INV-MAR"),
        credit_note("CN-MAR", issue_date=date(2024, 3, 10)),
        credit_note("CN-APR", issue_date=date(2024, 4, 10)),
    ]
    con = build(ledger, window_start=date(2024, 3, 1), window_end=date(2024, 4, 1))
    invoices = {row["invoice_id"]: row for row in rows(con, "chaser_invoices")}
    assert set(invoices) == {"INV-MAR", "INV-MAR-END"}
    assert invoices["INV-MAR"]["status"] == "PAID"
    assert invoices["INV-MAR"]["amount_paid"] == D("100.00")
    assert invoices["INV-MAR"]["fully_paid_date"] == "2024-05-02T10:00:00.000Z"
    assert [r["credit_note_id"] for r in rows(con, "chaser_credit_notes")] == ["CN-MAR"]
    # unpartitioned models keep the whole history
    assert con.execute("select count(*) from int_invoice_balances").fetchone()[0] == 4


def test_mobile_without_country_code_is_read_in_the_configured_default_country(tmp_path) -> None:
    con = landed_ledger(
        tmp_path / "pipeline.duckdb",
        [
            customer("C-1", mobile="06 12 34 56 78"),
            customer("C-2", mobile="07700 900123", country="GB"),
        ],
    )
    try:
        build_models(con, project(), default_country="FR")
        assert con.execute(
            "select external_id, mobile_number from chaser_customers order by 1"
        ).fetchall() == [("C-1", "+33612345678"), ("C-2", "+447700900123")]
    finally:
        con.close()


MONTHS_LEDGER = [
    customer(),
    customer("C-2", company_name=""),
    invoice("INV-JAN", issue_date=date(2024, 1, 31), total="100.00"),
    invoice("INV-FEB-1", issue_date=date(2024, 2, 1), total="50.00"),
    invoice("INV-FEB-2", issue_date=date(2024, 2, 29), total="0.00", status="paid"),
    invoice("INV-MAR", issue_date=date(2024, 3, 1), total="80.00"),
    invoice("INV-MAR-HELD", issue_date=date(2024, 3, 15), customer_id="C-2"),
    invoice("INV-APR", issue_date=date(2024, 4, 30), total="10.00", status="draft"),
    # money arrives in later months than the invoice was issued
    payment("P-1", "60.00", datetime(2024, 2, 3, 8), invoice_id="INV-JAN"),
    payment("P-2", "40.00", datetime(2024, 5, 3, 8), invoice_id="INV-JAN"),
    payment("P-3", "80.00", datetime(2024, 3, 2, 8), invoice_id="INV-MAR", is_reversed=True),
    credit_note("CN-FEB", total="30.00", issue_date=date(2024, 2, 10)),
    credit_note("CN-APR", total="30.00", issue_date=date(2024, 4, 1)),
    allocation(
        "A-1", "30.00", datetime(2024, 6, 1, 8), invoice_id="INV-FEB-1", credit_note_id="CN-FEB"
    ),
    allocation(
        "A-2", "5.00", datetime(2024, 4, 2, 8), invoice_id="INV-MAR", credit_note_id="CN-APR"
    ),
    # cash on account in February, applied in April; a surplus paid in May
    on_account("P-OA", "90.00", datetime(2024, 2, 20, 8)),
    allocation(
        "A-3",
        "20.00",
        datetime(2024, 4, 3, 8),
        invoice_id="INV-MAR",
        credit_note_id=None,
        payment_id="P-OA",
    ),
    payment("P-4", "15.00", datetime(2024, 5, 9, 8), invoice_id="INV-JAN"),
]


@pytest.mark.parametrize("mart", ["chaser_invoices", "chaser_credit_notes", "chaser_overpayments"])
def test_whole_history_build_equals_the_union_of_monthly_partition_writes(build, mart) -> None:
    con = build(MONTHS_LEDGER)
    whole = sorted(con.execute(f"select * from {mart}").fetchall())
    assert len(whole) >= 2, "the fixture must spread rows over several months"
    model = project().models[mart]
    con.execute(f"drop table {mart}")
    for month in range(1, 7):  # Jan..Jun 2024, through the framework's partition write
        build_model(con, model, (date(2024, month, 1), date(2024, month + 1, 1)))
    assert sorted(con.execute(f"select * from {mart}").fetchall()) == whole


def test_money_is_decimal_in_every_model(build) -> None:
    con = build(MONTHS_LEDGER)
    paths = sorted(models_dir().rglob("*.sql"))
    assert len(paths) >= 12
    for sql_path in paths:
        # the code, not its comments: no binary float, no average, no division on money
        sql = re.sub(r"--[^\n]*", "", sql_path.read_text().lower())
        for word in ("double", "float", "real", "avg(", " / "):
            assert word not in sql, f"{sql_path.name} uses {word!r} in a money model"
        types = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_name = $t and (column_name like '%amount' or column_name in "
            "('total', 'sub_total', 'amount_paid', 'amount_due', 'remaining_credit'))",
            {"t": sql_path.stem},
        ).fetchall()
        for column, type_ in types:
            assert type_.startswith("DECIMAL(") and type_.endswith(",2)"), (sql_path.stem, column)


def test_every_model_has_a_contract_describing_its_columns(build) -> None:
    con = build(CASES[1].ledger)
    paths = sorted(models_dir().rglob("*.sql"))
    assert len(paths) >= 12
    for sql_path in paths:
        contract = yaml.safe_load(sql_path.with_suffix(".yml").read_text())
        assert contract["description"], sql_path.stem
        built = [d[0] for d in con.execute(f"select * from {sql_path.stem}").description]
        assert list(contract["columns"]) == built, sql_path.stem
        if sql_path.stem in {"chaser_invoices", "chaser_credit_notes", "chaser_overpayments"}:
            assert contract["partitioned_by"] == "date"
        if sql_path.stem in MART_COLUMNS:
            assert contract["checks"], sql_path.stem


@pytest.mark.parametrize(
    ("typed", "country", "expected"),
    [
        ("07700 900123", "GB", "+447700900123"),
        ("+44 7700 900123", "US", "+447700900123"),
        ("0044 7700 900123", "GB", "+447700900123"),
        ("(212) 555-0100", "US", "+12125550100"),
        ("12", "GB", None),
        ("call me", "GB", None),
    ],
    ids=["national GB", "international", "00 prefix", "national US", "too short", "words"],
)
def test_e164_phone_number(typed: str, country: str, expected: str | None) -> None:
    assert e164_phone_number(typed, country) == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ap@acme.co.uk", "ap@acme.co.uk"),
        ("AP@ACME.CO.UK", "AP@acme.co.uk"),
        ("ap@acme", None),
        ("ap..x@acme.co.uk", None),
        ("no at sign", None),
    ],
    ids=["plain", "domain lower-cased", "no dot in domain", "double dot", "no @"],
)
def test_valid_email_address(typed: str, expected: str | None) -> None:
    assert valid_email_address(typed) == expected


def test_field_rules_udfs_are_vectorised_and_null_safe() -> None:
    con = duckdb.connect()
    try:
        register_field_rules(con, "gb")
        register_field_rules(con, "GB")  # again on the same connection: replaced, not an error
        rows = con.execute(
            "select chaser_e164(v, null), chaser_valid_email(v), chaser_is_iso4217(v) "
            "from (values ('07700 900123'), (null), ('GBP'), ('a@b.co')) as t(v)"
        ).fetchall()
        assert rows == [
            ("+447700900123", None, False),
            (None, None, False),
            (None, None, True),
            (None, "a@b.co", False),
        ]
        with pytest.raises(ValueError, match="CHASER_DEFAULT_COUNTRY"):
            register_field_rules(con, "Narnia")
    finally:
        con.close()
