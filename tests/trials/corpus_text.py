"""Corpus kinds: text, recipients, relations between rows, amounts and sources."""

from __future__ import annotations

from datetime import datetime

from tests.support.ledger import contact, credit_note, invoice
from tests.trials.corpus_base import (
    AS_GIVEN,
    HELD,
    NORMALISED,
    REPORTED,
    D,
    Kind,
    alloc,
    cn,
    co,
    inv,
    pay,
)

CONTROL = "Ctrl\x07\x1b[31m\tCo\r\nLtd"
LONG = "L" * 10_000
INJECTION = "Robert'); DROP TABLE customers; --"
SCRIPT = "<script>alert('x')</script>"
RTL = "\u202eexe.sgnidloH\u202c Ltd \U0001f4b8"
KEY_INJECTION = "K-INJ'; drop table ledger.invoices; --"


def text() -> list[Kind]:
    def named(key: str, what: str, name: str) -> Kind:
        return Kind(
            f"company name with {what}",
            "customers",
            AS_GIVEN,
            rows={"customers": [co(key, company_name=name)]},
            chaser=(("customers", key, {"company_name": name}),),
        )

    return [
        named("K-CTRL", "control characters", CONTROL),
        named("K-LONG", "10,000 characters", LONG),
        named("K-SQLI", "an SQL injection", INJECTION),
        named("K-RTL", "a right-to-left override and an emoji", RTL),
        named("K-NUL", "a NUL character", "Nul\x00 Ltd"),
        Kind(
            "invoice number with a <script> tag",
            "invoices",
            AS_GIVEN,
            rows={"invoices": [inv("K-XSS", invoice_number=SCRIPT)]},
            chaser=(("invoices", "K-XSS", {"invoice_number": SCRIPT}),),
        ),
        Kind(
            "key with an SQL injection",
            "invoices",
            AS_GIVEN,
            rows={"invoices": [inv(KEY_INJECTION)]},
            chaser=(("invoices", KEY_INJECTION, {"status": "AUTHORISED"}),),
        ),
        Kind(
            "missing company name",
            "customers",
            HELD,
            rows={"customers": [co("K-NONAME", company_name="  ")]},
            rejection=("customer", "K-NONAME", "missing_company_name", HELD),
            detail="K-NONAME",
            chaser=(("customers", "K-NONAME", None),),
        ),
        Kind(
            "address list with one invalid address",
            "customers",
            REPORTED,
            rows={"customers": [co("K-MAIL", email="a@firm.co.uk, not-an-address; b@firm.co.uk")]},
            rejection=("customer", "K-MAIL", "invalid_email", REPORTED),
            detail="'not-an-address'",
            chaser=(
                ("customers", "K-MAIL", {"contact_email_address": "a@firm.co.uk"}),
                (
                    "contact_persons",
                    "K-MAIL:b@firm.co.uk",
                    {"contact_email_address": "b@firm.co.uk"},
                ),
            ),
        ),
        Kind(
            "only invalid addresses",
            "customers",
            REPORTED,
            rows={"customers": [co("K-NOMAIL", email="accounts at firm dot com")]},
            rejection=("customer", "K-NOMAIL", "invalid_email", REPORTED),
            detail="no one to e-mail",
            chaser=(("customers", "K-NOMAIL", {"company_name": "Company K-NOMAIL"}),),
        ),
        Kind(
            "mobile number that is no number",
            "customers",
            REPORTED,
            rows={"customers": [co("K-MOB", mobile="call reception")]},
            rejection=("customer", "K-MOB", "invalid_mobile_number", REPORTED),
            detail="'call reception'",
            chaser=(("customers", "K-MOB", {"company_name": "Company K-MOB"}),),
        ),
        Kind(
            "phone number that is no number",
            "customers",
            REPORTED,
            rows={"customers": [co("K-TEL", phone="ext. 12")]},
            rejection=("customer", "K-TEL", "invalid_phone_number", REPORTED),
            detail="'ext. 12'",
            chaser=(("customers", "K-TEL", {"phone_number": "ext. 12"}),),
        ),
        Kind(
            "mobile in national form",
            "customers",
            NORMALISED,
            rows={"customers": [co("K-MOB-GB", mobile="07700 900123")]},
            chaser=(("customers", "K-MOB-GB", {"mobile_number": "+447700900123"}),),
        ),
        Kind(
            "contact with an invalid address",
            "contacts",
            REPORTED,
            rows={"contacts": [contact("K-CT-MAIL", "C-OK", email="grace@")]},
            rejection=("contact_person", "K-CT-MAIL", "invalid_email", REPORTED),
            detail="'grace@'",
        ),
    ]


def relations() -> list[Kind]:
    return [
        Kind(
            "payment to an unknown invoice",
            "payments",
            REPORTED,
            rows={"payments": [pay("K-ORPH", "NO-SUCH-INVOICE", "10.00")]},
            rejection=("payment", "K-ORPH", "orphan_payment", REPORTED),
            detail="NO-SUCH-INVOICE",
        ),
        Kind(
            "invoice of an unknown customer",
            "invoices",
            HELD,
            rows={"invoices": [invoice("K-UNC", customer_id="NO-SUCH-CUSTOMER")]},
            # the corpus also holds a keyless customer, which may be it: the reason says so
            rejection=("invoice", "K-UNC", "customer_key_missing", HELD),
            detail="NO-SUCH-CUSTOMER",
            chaser=(("invoices", "K-UNC", None),),
        ),
        Kind(
            "credit note of an unknown customer",
            "credit_notes",
            HELD,
            rows={"credit_notes": [credit_note("K-CN-UNC", customer_id="NO-SUCH-CUSTOMER")]},
            rejection=("credit_note", "K-CN-UNC", "customer_key_missing", HELD),
            detail="NO-SUCH-CUSTOMER",
            chaser=(("credit_notes", "K-CN-UNC", None),),
        ),
        Kind(
            "allocation to an unknown invoice",
            "credit_allocations",
            REPORTED,
            rows={
                "credit_notes": [cn("K-AUI-CN")],
                "credit_allocations": [alloc("K-AUI", "K-AUI-CN", "NO-SUCH-INVOICE", "5.00")],
            },
            rejection=("allocation", "K-AUI", "orphan_allocation", REPORTED),
            detail="NO-SUCH-INVOICE",
            chaser=(("credit_notes", "K-AUI-CN", {"remaining_credit": D("50.00")}),),
        ),
        Kind(
            "allocation of credit in another currency",
            "credit_allocations",
            REPORTED,
            rows={
                "invoices": [inv("K-FX-I")],
                "credit_notes": [cn("K-FX-CN", currency_code="EUR")],
                "credit_allocations": [alloc("K-FX", "K-FX-CN", "K-FX-I", "5.00")],
            },
            rejection=("allocation", "K-FX", "allocation_other_currency", REPORTED),
            detail="K-FX",
            chaser=(("invoices", "K-FX-I", {"amount_due": D("100.00")}),),
        ),
        Kind(
            "allocation of another customer's credit",
            "credit_allocations",
            REPORTED,
            rows={
                "invoices": [inv("K-OC-I")],
                "credit_notes": [credit_note("K-OC-CN", customer_id="C-OK2")],
                "credit_allocations": [alloc("K-OC", "K-OC-CN", "K-OC-I", "5.00")],
            },
            rejection=("allocation", "K-OC", "allocation_other_customer", REPORTED),
            detail="K-OC",
            chaser=(("invoices", "K-OC-I", {"amount_due": D("100.00")}),),
        ),
    ]


def more() -> list[Kind]:
    return [
        Kind(
            "payment without an amount",
            "payments",
            REPORTED,
            rows={
                "invoices": [inv("K-NOAMT-I")],
                "payments": [pay("K-NOAMT", "K-NOAMT-I", "1") | {"amount": None}],
            },
            rejection=("payment", "K-NOAMT", "missing_amount", REPORTED),
            detail="has no amount",
            chaser=(("invoices", "K-NOAMT-I", {"amount_due": D("100.00")}),),
        ),
        Kind(
            "allocation without an amount",
            "credit_allocations",
            REPORTED,
            rows={
                "invoices": [inv("K-ANOAMT-I")],
                "credit_notes": [cn("K-ANOAMT-CN")],
                "credit_allocations": [
                    alloc("K-ANOAMT", "K-ANOAMT-CN", "K-ANOAMT-I", "1") | {"amount": None}
                ],
            },
            rejection=("allocation", "K-ANOAMT", "missing_amount", REPORTED),
            detail="has no amount",
            chaser=(("invoices", "K-ANOAMT-I", {"amount_due": D("100.00")}),),
        ),
        Kind(
            "cash on account naming no customer",
            "payments",
            HELD,
            rows={"payments": [pay("K-OA-NOC", None, "10.00", currency_code="GBP")]},
            rejection=("overpayment", "K-OA-NOC", "missing_customer_id", HELD),
            detail="names no customer",
            chaser=(("overpayments", "K-OA-NOC", None),),
        ),
        Kind(
            "cash on account with no currency",
            "payments",
            HELD,
            rows={"payments": [pay("K-OA-NOCUR", None, "10.00", customer_id="C-OK")]},
            rejection=("overpayment", "K-OA-NOCUR", "invalid_currency", HELD),
            detail="currency (none)",
            chaser=(("overpayments", "K-OA-NOCUR", None),),
        ),
        Kind(
            "allocation naming both a credit note and a payment",
            "credit_allocations",
            REPORTED,
            rows={
                "invoices": [inv("K-TWO-I")],
                "credit_notes": [cn("K-TWO-CN")],
                "credit_allocations": [
                    alloc("K-TWO", "K-TWO-CN", "K-TWO-I", "5.00", payment_id="G-P1")
                ],
            },
            rejection=("allocation", "K-TWO", "allocation_two_sources", REPORTED),
            detail="names both",
            chaser=(("invoices", "K-TWO-I", {"amount_due": D("100.00")}),),
        ),
        Kind(
            "allocation naming no source",
            "credit_allocations",
            REPORTED,
            rows={
                "invoices": [inv("K-NOSRC-I")],
                "credit_allocations": [alloc("K-NOSRC", None, "K-NOSRC-I", "5.00")],
            },
            rejection=("allocation", "K-NOSRC", "orphan_allocation", REPORTED),
            detail="from no credit note or payment",
            chaser=(("invoices", "K-NOSRC-I", {"amount_due": D("100.00")}),),
        ),
        Kind(
            "contact of an unknown customer",
            "contacts",
            HELD,
            rows={"contacts": [contact("K-CT-UNC", "NO-SUCH-CUSTOMER")]},
            rejection=("contact_person", "K-CT-UNC", "customer_key_missing", HELD),
            detail="NO-SUCH-CUSTOMER",
            chaser=(("contact_persons", "K-CT-UNC", None),),
        ),
        Kind(
            "duplicate contact_id (latest wins)",
            "contacts",
            HELD,
            rows={
                "contacts": [
                    contact("K-CT-DUP", "C-OK", first_name="Old"),
                    contact("K-CT-DUP", "C-OK", first_name="New", updated_at=datetime(2024, 2, 2)),
                ]
            },
            rejection=("contact_person", "K-CT-DUP", "duplicate_key", HELD),
            detail="2 rows",
            chaser=(("contact_persons", "K-CT-DUP", {"contact_first_name": "New"}),),
        ),
        Kind(
            "invoice without a number",
            "invoices",
            HELD,
            rows={"invoices": [inv("K-NONUM", invoice_number=None)]},
            rejection=("invoice", "K-NONUM", "missing_invoice_number", HELD),
            detail="no invoice number",
            chaser=(("invoices", "K-NONUM", None),),
        ),
        Kind(
            "invoice without a sub-total",
            "invoices",
            AS_GIVEN,
            rows={"invoices": [inv("K-NOSUB", sub_total=None)]},
            chaser=(("invoices", "K-NOSUB", {"total": D("100.00")}),),
        ),
        Kind(
            "customer with is_archived NULL",
            "customers",
            NORMALISED,
            rows={"customers": [co("K-ARCHNULL", is_archived=None)]},
            chaser=(("customers", "K-ARCHNULL", {"status": "ACTIVE"}),),
        ),
    ]
