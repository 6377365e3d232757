"""Corpus kinds: keys, money, codes and dates."""

from __future__ import annotations

from datetime import datetime

from tests.support.ledger import contact, invoice
from tests.trials.corpus_base import (
    AS_GIVEN,
    HELD,
    LATER,
    MISSING,
    NORMALISED,
    PAID,
    REPORTED,
    D,
    Kind,
    alloc,
    cn,
    co,
    inv,
    pay,
)


def keys() -> list[Kind]:
    return [
        Kind(
            "null customer_id",
            "customers",
            HELD,
            rows={"customers": [co(None, company_name="Keyless Customer Ltd")]},
            rejection=("customer", MISSING, "missing_key", HELD),
            detail="Keyless Customer Ltd",
        ),
        Kind(
            "null invoice_id",
            "invoices",
            HELD,
            rows={"invoices": [inv(None, invoice_number="N-KEYLESS-INV")]},
            rejection=("invoice", MISSING, "missing_key", HELD),
            detail="N-KEYLESS-INV",
        ),
        Kind(
            "blank invoice_id",
            "invoices",
            HELD,
            rows={"invoices": [inv("   ", invoice_number="N-BLANK-INV")]},
            rejection=("invoice", MISSING, "missing_key", HELD),
            detail="N-BLANK-INV",
        ),
        Kind(
            "null payment_id (the payment still counts)",
            "payments",
            REPORTED,
            rows={"invoices": [inv("K-NP-I")], "payments": [pay(None, "K-NP-I", "100.00")]},
            rejection=("payment", MISSING, "missing_key", REPORTED),
            detail="to invoice K-NP-I",
            chaser=(("invoices", "K-NP-I", PAID),),
        ),
        Kind(
            "null payment_id arriving after the invoice was sent",
            "payments",
            REPORTED,
            rows={"invoices": [inv("K-NPL-I")]},
            later=(
                (
                    2,
                    "insert into ledger.payments (payment_id, invoice_id, amount, paid_at, "
                    f"is_reversed, updated_at) values (null, 'K-NPL-I', 100.00, {LATER}, false, "
                    f"{LATER})",
                ),
            ),
            rejection=("payment", MISSING, "missing_key", REPORTED),
            detail="to invoice K-NPL-I",
            chaser=(("invoices", "K-NPL-I", PAID),),
            chaser_stage=2,
        ),
        Kind(
            "null credit_note_id",
            "credit_notes",
            HELD,
            rows={"credit_notes": [cn(None, credit_note_number="N-KEYLESS-CN")]},
            rejection=("credit_note", MISSING, "missing_key", HELD),
            detail="N-KEYLESS-CN",
        ),
        Kind(
            "null allocation_id (the allocation still counts)",
            "credit_allocations",
            REPORTED,
            rows={
                "invoices": [inv("K-NA-I", total="30.00")],
                "credit_notes": [cn("K-NA-CN", total="30.00")],
                "credit_allocations": [alloc(None, "K-NA-CN", "K-NA-I", "30.00")],
            },
            rejection=("allocation", MISSING, "missing_key", REPORTED),
            detail="to invoice K-NA-I",
            chaser=(("invoices", "K-NA-I", PAID),),
        ),
        Kind(
            "null contact_id",
            "contacts",
            HELD,
            rows={"contacts": [contact(None, "C-OK", first_name="Keyless")]},
            rejection=("contact_person", MISSING, "missing_key", HELD),
            detail="Keyless",
        ),
        Kind(
            "invoice naming no customer",
            "invoices",
            HELD,
            rows={"invoices": [invoice("K-NOCUST", customer_id=None)]},
            rejection=("invoice", "K-NOCUST", "missing_customer_id", HELD),
            detail="names no customer",
            chaser=(("invoices", "K-NOCUST", None),),
        ),
        Kind(
            "duplicate customer_id (latest wins)",
            "customers",
            HELD,
            rows={
                "customers": [
                    co("K-DUPC", company_name="Old Name"),
                    co("K-DUPC", company_name="New Name", updated_at="2024-02-01 09:00:00"),
                ]
            },
            rejection=("customer", "K-DUPC", "duplicate_key", HELD),
            detail="2 rows",
            chaser=(("customers", "K-DUPC", {"company_name": "New Name"}),),
        ),
        Kind(
            "duplicate invoice_id (latest wins)",
            "invoices",
            HELD,
            rows={
                "invoices": [
                    inv("K-DUPI", total="10.00"),
                    inv("K-DUPI", total="20.00", updated_at="2024-03-02 10:00:00"),
                ]
            },
            rejection=("invoice", "K-DUPI", "duplicate_key", HELD),
            detail="2 rows",
            chaser=(("invoices", "K-DUPI", {"total": D("20.00")}),),
        ),
        Kind(
            "duplicate payment_id (latest wins)",
            "payments",
            HELD,
            rows={
                "invoices": [inv("K-DUPP-I")],
                "payments": [
                    pay("K-DUPP", "K-DUPP-I", "30.00"),
                    pay("K-DUPP", "K-DUPP-I", "50.00", updated_at=datetime(2024, 3, 6)),
                ],
            },
            rejection=("payment", "K-DUPP", "duplicate_key", HELD),
            detail="2 rows",
            chaser=(("invoices", "K-DUPP-I", {"amount_paid": D("50.00")}),),
        ),
        Kind(
            "duplicate credit_note_id (latest wins)",
            "credit_notes",
            HELD,
            rows={
                "credit_notes": [
                    cn("K-DUPCN", total="10.00"),
                    cn("K-DUPCN", total="15.00", updated_at=datetime(2024, 3, 11)),
                ]
            },
            rejection=("credit_note", "K-DUPCN", "duplicate_key", HELD),
            detail="2 rows",
            chaser=(("credit_notes", "K-DUPCN", {"total": D("15.00")}),),
        ),
    ]


def money() -> list[Kind]:
    return [
        Kind(
            "negative invoice total",
            "invoices",
            HELD,
            rows={"invoices": [inv("K-NEG-I", total="-5.00")]},
            rejection=("invoice", "K-NEG-I", "negative_total", HELD),
            detail="negative total of -5.00",
            chaser=(("invoices", "K-NEG-I", None),),
        ),
        Kind(
            "negative credit note total",
            "credit_notes",
            HELD,
            rows={"credit_notes": [cn("K-NEG-CN", total="-5.00")]},
            rejection=("credit_note", "K-NEG-CN", "negative_total", HELD),
            detail="negative",
            chaser=(("credit_notes", "K-NEG-CN", None),),
        ),
        Kind(
            "null invoice total",
            "invoices",
            HELD,
            rows={"invoices": [inv("K-NOTOT", total="0.00") | {"total": None}]},
            rejection=("invoice", "K-NOTOT", "missing_total", HELD),
            detail="no total",
            chaser=(("invoices", "K-NOTOT", None),),
        ),
        Kind(
            "negative allocation amount",
            "credit_allocations",
            HELD,
            rows={
                "invoices": [inv("K-NEGA-I", total="50.00")],
                "credit_notes": [cn("K-NEGA-CN", total="20.00")],
                "credit_allocations": [alloc("K-NEGA", "K-NEGA-CN", "K-NEGA-I", "-10.00")],
            },
            rejection=("credit_note", "K-NEGA-CN", "negative_allocated", HELD),
            detail="less than nothing",
            chaser=(("credit_notes", "K-NEGA-CN", None),),
        ),
        Kind(
            "allocation exceeding the credit",
            "credit_allocations",
            REPORTED,
            rows={
                "invoices": [inv("K-OA-I")],
                "credit_notes": [cn("K-OA-CN", total="10.00")],
                "credit_allocations": [alloc("K-OA", "K-OA-CN", "K-OA-I", "25.00")],
            },
            rejection=("credit_note", "K-OA-CN", "over_allocated", REPORTED),
            detail="15.00 more than its total",
            # the credit note, used up and never sent, is not worth a request; its credit counts
            chaser=(("invoices", "K-OA-I", {"amount_paid": D("25.00")}),),
        ),
        Kind(
            "payment past the invoice total",
            "payments",
            REPORTED,
            rows={"invoices": [inv("K-OVER-I")], "payments": [pay("K-OVER", "K-OVER-I", "150.00")]},
            rejection=("invoice", "K-OVER-I", "overpaid", REPORTED),
            detail="50.00 more than its total",
            chaser=(
                ("invoices", "K-OVER-I", PAID),
                ("overpayments", "K-OVER", {"remaining_credit": D("50.00")}),
            ),
        ),
        Kind(
            "refunds beyond what was paid",
            "payments",
            REPORTED,
            rows={"invoices": [inv("K-REF-I")], "payments": [pay("K-REF", "K-REF-I", "-30.00")]},
            rejection=("invoice", "K-REF-I", "applied_below_zero", REPORTED),
            detail="more refunded than paid",
            chaser=(("invoices", "K-REF-I", {"amount_paid": D("0.00")}),),
        ),
        Kind(
            "PAID in the ledger with money due",
            "invoices",
            REPORTED,
            rows={"invoices": [inv("K-PAIDDUE", status="PAID")]},
            rejection=("invoice", "K-PAIDDUE", "paid_with_amount_due", REPORTED),
            detail="sent as AUTHORISED",
            chaser=(("invoices", "K-PAIDDUE", {"status": "AUTHORISED"}),),
        ),
    ]


def codes() -> list[Kind]:
    def currency(key: str, code: str, expect: str, sent: str | None = None) -> Kind:
        return Kind(
            f"invoice currency {code!r}",
            "invoices",
            expect,
            rows={"invoices": [inv(key, currency_code=code)]},
            rejection=None if sent else ("invoice", key, "invalid_currency", HELD),
            detail="not an ISO 4217",
            chaser=(("invoices", key, {"currency_code": sent} if sent else None),),
        )

    return [
        currency("K-CUR-LOW", "gbp", NORMALISED, "GBP"),
        currency("K-CUR-PAD", " eur ", NORMALISED, "EUR"),
        currency("K-CUR-XXX", "XXX", HELD),
        currency("K-CUR-ZZZ", "ZZZ", HELD),
        currency("K-CUR-EMPTY", "", HELD),
        currency("K-CUR-SIGN", "US$", HELD),
        Kind(
            "credit note currency 'pounds'",
            "credit_notes",
            HELD,
            rows={"credit_notes": [cn("K-CN-CUR", currency_code="pounds")]},
            rejection=("credit_note", "K-CN-CUR", "invalid_currency", HELD),
            detail="POUNDS",
            chaser=(("credit_notes", "K-CN-CUR", None),),
        ),
        Kind(
            "unknown invoice status",
            "invoices",
            HELD,
            rows={"invoices": [inv("K-ST-OPEN", status="OPEN")]},
            rejection=("invoice", "K-ST-OPEN", "unknown_status", HELD),
            detail="status OPEN",
            chaser=(("invoices", "K-ST-OPEN", None),),
        ),
        Kind(
            "null invoice status",
            "invoices",
            HELD,
            rows={"invoices": [inv("K-ST-NULL", status=None)]},
            rejection=("invoice", "K-ST-NULL", "unknown_status", HELD),
            detail="(none)",
            chaser=(("invoices", "K-ST-NULL", None),),
        ),
        Kind(
            "lower-case invoice status",
            "invoices",
            NORMALISED,
            rows={"invoices": [inv("K-ST-LOW", status=" authorised ")]},
            chaser=(("invoices", "K-ST-LOW", {"status": "AUTHORISED"}),),
        ),
        Kind(
            "unknown credit note status",
            "credit_notes",
            HELD,
            rows={"credit_notes": [cn("K-CN-ST", status="REFUNDED")]},
            rejection=("credit_note", "K-CN-ST", "unknown_status", HELD),
            detail="REFUNDED",
            chaser=(("credit_notes", "K-CN-ST", None),),
        ),
    ]


def dates() -> list[Kind]:
    return [
        Kind(
            "issue date in 1900",
            "invoices",
            AS_GIVEN,
            rows={"invoices": [inv("K-1900", issue_date="1900-01-01")]},
            chaser=(("invoices", "K-1900", {"date": "1900-01-01T00:00:00.000Z"}),),
        ),
        Kind(
            "due date in year 10000",
            "invoices",
            HELD,
            sql=(
                "insert into ledger.invoices (invoice_id, invoice_number, customer_id, status, "
                "currency_code, sub_total, total, issue_date, due_date, updated_at) values "
                "('K-10000', 'N-K-10000', 'C-OK', 'AUTHORISED', 'GBP', 1, 1, date '2024-03-01', "
                "date '10000-01-01', timestamp '2024-03-01')",
            ),
            rejection=("invoice", "K-10000", "date_out_of_range", HELD),
            detail="10000-01-01",
            chaser=(("invoices", "K-10000", None),),
        ),
        Kind(
            "credit note issued in year 10000",
            "credit_notes",
            HELD,
            sql=(
                "insert into ledger.credit_notes (credit_note_id, credit_note_number, customer_id, "
                "status, currency_code, total, issue_date, updated_at) values ('K-CN-10000', "
                "'N-K-CN-10000', 'C-OK', 'AUTHORISED', 'GBP', 1, date '10000-01-01', "
                "timestamp '2024-03-01')",
            ),
            rejection=("credit_note", "K-CN-10000", "date_out_of_range", HELD),
            detail="10000",
            chaser=(("credit_notes", "K-CN-10000", None),),
        ),
        Kind(
            "due date before the issue date",
            "invoices",
            AS_GIVEN,
            rows={"invoices": [inv("K-DUEB", due_date=datetime(2024, 2, 1).date())]},
            chaser=(("invoices", "K-DUEB", {"due_date": "2024-02-01T00:00:00.000Z"}),),
        ),
        Kind(
            "no due date",
            "invoices",
            HELD,
            rows={"invoices": [inv("K-NODUE", due_date=None)]},
            rejection=("invoice", "K-NODUE", "missing_due_date", HELD),
            detail="no due date",
            chaser=(("invoices", "K-NODUE", None),),
        ),
        Kind(
            "settling payment dated year 10000",
            "payments",
            REPORTED,
            rows={"invoices": [inv("K-PAID10K")]},
            sql=(
                "insert into ledger.payments (payment_id, invoice_id, amount, paid_at, is_reversed,"
                " updated_at) values ('K-P10K', 'K-PAID10K', 100.00, timestamp '10000-01-01', "
                "false, timestamp '2024-03-05')",
            ),
            rejection=("invoice", "K-PAID10K", "fully_paid_date_unknown", REPORTED),
            detail="without a fully paid date",
            chaser=(("invoices", "K-PAID10K", PAID | {"fully_paid_date": None}),),
        ),
    ]
