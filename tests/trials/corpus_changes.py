"""Corpus kinds: changes between runs (updated_at, deletes, moves) and extract-level problems."""

from __future__ import annotations

from typing import Any

from tests.support.ledger import contact, invoice
from tests.trials.corpus_base import (
    HELD,
    LATER,
    NORMALISED,
    PAID,
    REFUSED,
    REPORTED,
    D,
    Kind,
    Refusal,
    co,
    inv,
    pay,
)


def changes() -> list[Kind]:
    def later(stage: int, sql: str) -> tuple[tuple[int, str], ...]:
        return ((stage, sql.replace("LATER", LATER)),)

    return [
        Kind(
            "updated_at NULL (read on every run, reported)",
            "invoices",
            REPORTED,
            rows={"invoices": [inv("K-NULLUPD", updated_at=None)]},
            later=later(2, "update ledger.invoices set total = 70 where invoice_id = 'K-NULLUPD'"),
            extract=("invoices", "null_updated_at_keys", "K-NULLUPD"),
            chaser=(("invoices", "K-NULLUPD", {"total": D("70.00")}),),
            chaser_stage=2,
        ),
        Kind(
            "updated_at in the future (the cursor stays at now)",
            "invoices",
            REPORTED,
            rows={"invoices": [inv("K-FUT", updated_at="2099-01-01 00:00:00"), inv("K-FUT-NEXT")]},
            later=later(
                2,
                "update ledger.invoices set total = 80, updated_at = LATER "
                "where invoice_id = 'K-FUT-NEXT'",
            ),
            extract=("invoices", "future_updated_at_keys", "K-FUT"),
            chaser=(("invoices", "K-FUT", {}), ("invoices", "K-FUT-NEXT", {"total": D("80.00")})),
            chaser_stage=2,
        ),
        Kind(
            "updated_at moved backwards (caught by the weekly full comparison)",
            "invoices",
            NORMALISED,
            rows={"invoices": [inv("K-BACK")]},
            later=later(
                2,
                "update ledger.invoices set total = 75, updated_at = timestamp '2024-02-01' "
                "where invoice_id = 'K-BACK'",
            ),
            chaser=(("invoices", "K-BACK", {"total": D("75.00")}),),
        ),
        Kind(
            "hard delete of a sent invoice",
            "invoices",
            REPORTED,
            rows={"invoices": [inv("K-DEL")]},
            later=later(2, "delete from ledger.invoices where invoice_id = 'K-DEL'"),
            rejection=("invoice", "K-DEL", "deleted_in_ledger", REPORTED),
            detail="K-DEL",
            chaser=(("invoices", "K-DEL", {"status": "DELETED"}),),
        ),
        Kind(
            "hard delete of the payment that settled a sent invoice",
            "payments",
            REPORTED,
            rows={"invoices": [inv("K-PDEL-I")], "payments": [pay("K-PDEL", "K-PDEL-I", "100.00")]},
            later=later(2, "delete from ledger.payments where payment_id = 'K-PDEL'"),
            rejection=("payment", "K-PDEL", "deleted_in_ledger", REPORTED),
            detail="counts as never made",
            chaser=(("invoices", "K-PDEL-I", {"status": "AUTHORISED", "amount_due": D("100.00")}),),
        ),
        Kind(
            "payment reversed after the invoice was sent as paid",
            "payments",
            NORMALISED,
            rows={"invoices": [inv("K-PREV-I")], "payments": [pay("K-PREV", "K-PREV-I", "100.00")]},
            later=later(
                2,
                "update ledger.payments set is_reversed = true, updated_at = LATER "
                "where payment_id = 'K-PREV'",
            ),
            chaser=(("invoices", "K-PREV-I", {"status": "AUTHORISED", "amount_due": D("100.00")}),),
        ),
        Kind(
            "deleted invoice coming back",
            "invoices",
            NORMALISED,
            rows={"invoices": [inv("K-BACKDEL")]},
            later=(
                (2, "delete from ledger.invoices where invoice_id = 'K-BACKDEL'"),
                (
                    3,
                    "insert into ledger.invoices (invoice_id, invoice_number, customer_id, status, "
                    "currency_code, sub_total, total, issue_date, due_date, updated_at) values "
                    "('K-BACKDEL', 'N-K-BACKDEL', 'C-OK', 'AUTHORISED', 'GBP', 90, 90, "
                    "date '2024-03-01', date '2024-03-01', timestamp '2024-06-08')",
                ),
            ),
            chaser=(("invoices", "K-BACKDEL", {"status": "AUTHORISED", "total": D("90.00")}),),
        ),
        Kind(
            "key padded with spaces",
            "invoices",
            NORMALISED,
            rows={"invoices": [inv(" K-PAD ")], "payments": [pay("K-PAD-P", "K-PAD", "100.00")]},
            chaser=(("invoices", "K-PAD", PAID),),
        ),
        Kind(
            "hard delete of a sent contact",
            "contacts",
            NORMALISED,
            rows={"contacts": [contact("K-CT-DEL", "C-OK")]},
            later=later(2, "delete from ledger.contacts where contact_id = 'K-CT-DEL'"),
            chaser=(("contact_persons", "K-CT-DEL", {"status": "ARCHIVED"}),),
        ),
        Kind(
            "hard delete of a sent customer",
            "customers",
            NORMALISED,
            rows={"customers": [co("K-DELC")]},
            later=later(2, "delete from ledger.customers where customer_id = 'K-DELC'"),
            chaser=(("customers", "K-DELC", {"status": "ARCHIVED"}),),
        ),
        Kind(
            "invoice moving to another customer after it was sent",
            "invoices",
            NORMALISED,
            rows={"invoices": [inv("K-MOVE")]},
            later=later(
                2,
                "update ledger.invoices set customer_id = 'C-OK2', updated_at = LATER "
                "where invoice_id = 'K-MOVE'",
            ),
            chaser=(("invoices", "K-MOVE", {"customer_external_id": "C-OK2"}),),
        ),
        Kind(
            "currency change after the invoice was sent",
            "invoices",
            NORMALISED,
            rows={"invoices": [inv("K-CURCH")]},
            later=later(
                2,
                "update ledger.invoices set currency_code = 'EUR', updated_at = LATER "
                "where invoice_id = 'K-CURCH'",
            ),
            chaser=(("invoices", "K-CURCH", {"currency_code": "EUR"}),),
        ),
        Kind(
            "sent invoice whose new version breaks a rule",
            "invoices",
            HELD,
            rows={"invoices": [inv("K-STALE")]},
            later=later(
                2,
                "update ledger.invoices set total = -1, updated_at = LATER "
                "where invoice_id = 'K-STALE'",
            ),
            rejection=("invoice", "K-STALE", "stale_in_chaser", "stale_in_chaser"),
            detail="keeps showing the version last sent",
            chaser=(("invoices", "K-STALE", {"total": D("100.00")}),),
        ),
        Kind(
            "sent customer losing its name while its invoice is paid",
            "customers",
            HELD,
            rows={
                "customers": [co("K-CST")],
                "invoices": [invoice("K-CST-I", customer_id="K-CST")],
            },
            later=later(
                2,
                "update ledger.customers set company_name = null, updated_at = LATER "
                "where customer_id = 'K-CST'; insert into ledger.payments (payment_id, "
                "invoice_id, amount, paid_at, is_reversed, updated_at) values ('K-CST-P', "
                "'K-CST-I', 100.00, LATER, false, LATER)",
            ),
            rejection=("customer", "K-CST", "stale_in_chaser", "stale_in_chaser"),
            detail="company_name",
            chaser=(
                ("customers", "K-CST", {"company_name": "Company K-CST"}),
                ("invoices", "K-CST-I", PAID),
            ),
        ),
    ]


def refusals() -> list[Kind]:
    def refused(name: str, table: str, expect: str = REFUSED, **refusal: Any) -> Kind:
        return Kind(name, table, expect, refusal=Refusal(**refusal))

    float_money = ("a binary float",)
    return [
        refused(
            "money as a binary float",
            "invoices",
            replace={"total": "total::double"},
            message=("'total' is double", *float_money, "sql/invoices.sql"),
        ),
        refused(
            "money with three decimals",
            "payments",
            replace={"amount": "(amount + 0.001)::decimal(18,3)"},
            message=("'amount'", "sql/payments.sql"),
        ),
        refused(
            "NaN money",
            "payments",
            replace={"amount": "'nan'::double"},
            message=("'amount'", *float_money),
        ),
        refused(
            "infinite money",
            "payments",
            replace={"amount": "'inf'::double"},
            message=("'amount'", *float_money),
        ),
        refused(
            "money too large for DECIMAL(18,2)",
            "invoices",
            replace={"total": "total::decimal(38,2) * 100000000000000"},
            message=("column 'total'", "invoice_id = 'G-I1'", "sql/invoices.sql"),
        ),
        refused(
            "missing required column",
            "payments",
            replace={"paid_at": None},
            message=("missing column 'paid_at'", "Edit sql/payments.sql"),
        ),
        refused(
            "date column as text",
            "invoices",
            replace={"due_date": "due_date::varchar"},
            message=("'due_date' is string, expected DATE", "sql/invoices.sql"),
        ),
        refused(
            "key column as a number",
            "invoices",
            replace={"invoice_id": "1"},
            message=("'invoice_id'", "sql/invoices.sql"),
        ),
        refused(
            "unexpected extra column",
            "customers",
            replace={"note": "'hello'"},
            message=("unexpected column(s) 'note'", "sql/customers.sql"),
        ),
        refused(
            "required SQL file missing",
            "invoices",
            drop_file=True,
            message=("sql/invoices.sql is missing", "required"),
        ),
        refused(
            "warehouse table missing",
            "credit_notes",
            replace={"__from__": "ledger.no_such_table"},
            message=("sql/credit_notes.sql failed against", "no_such_table"),
        ),
        refused(
            "updated_at with a time zone",
            "customers",
            NORMALISED,
            replace={"updated_at": "updated_at::timestamptz"},
            accepted=True,
        ),
        refused(
            "optional contacts table missing",
            "contacts",
            NORMALISED,
            drop_file=True,
            accepted=True,
            message=("contacts",),
        ),
        refused(
            "optional payment columns missing",
            "payments",
            NORMALISED,
            replace={"customer_id": None, "currency_code": None},
            accepted=True,
            message=("payments.customer_id", "payments.currency_code"),
        ),
        refused(
            "empty tables",
            "*",
            NORMALISED,
            replace={"__where__": "updated_at > $1::timestamp and false"},
            accepted=True,
        ),
    ]
