"""The demo warehouse: a DuckDB file holding the ledger contract's tables (the optional `contacts`
table and optional columns included), with every awkward case the pipeline must handle, generated
in SQL so a million invoices take about a minute.

Every value comes from `hash(seed, tag, row)` inside DuckDB, so one seed always gives the same rows
(with the same DuckDB version). Dates are fixed (invoices issued 2023-01-01 .. 2026-11-15, no event
after 2026-11-19), never "today", so runs and tests agree.

Special cases are placed by a stride permutation of the row number (`(i * 7919 + offset) % m`), not
by chance, so each one occurs an exact share of rows at any scale (at least 3 times at scale 1) and
for any seed. `SCENARIOS` below is the map the models engineer tests against.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from chaser_pipeline.models.inputs import ledger_columns

SQL_DIR = Path(__file__).parent / "sql"

# Invoices generated (with their payments) per range: bounds the generator's memory (about
# 1.5 GB for a range of 1M invoices, with everything else it holds).
INVOICES_PER_RANGE = 500_000
# DuckDB's own memory while generating: without a cap it keeps every block it wrote (80% of the
# machine's RAM by default), so the ledger tables written range by range would add up.
MEMORY_LIMIT = "1GB"

# Rows per unit of scale; payments (~2 per invoice) and allocations (~2 per credit note) follow.
CUSTOMERS_PER_SCALE = 300
INVOICES_PER_SCALE = 3_000
CREDIT_NOTES_PER_SCALE = 300

FIRST_ISSUE_DATE = "2023-01-01"
LAST_ISSUE_DATE = "2026-11-15"
LAST_EVENT_DATE = "2026-11-19"  # no payment, allocation or update after this day

# The contract's columns, names, order and types (optional ones last), as the package keeps them.
LEDGER_DDL: dict[str, str] = {
    name: ", ".join(
        f"{column} {kind}" + (" NOT NULL" if column == "updated_at" else "")
        for column, kind in columns
    )
    for name, columns in ledger_columns().items()
}

# Scenario buckets: invoices use (i * 7919 + offset) % 1000; customers, credit notes and
# contacts % 100.
SCENARIOS: dict[str, dict[str, str]] = {
    "customers": {
        "missing_company_name": "bucket 0: company_name NULL; bucket 1: company_name ''",
        "no_address": "buckets 2-4: every address column NULL",
        "bad_email": "bucket 5 'anna@', bucket 6 'anna.acme.example.com', bucket 7 'anna smith@…'",
        "null_email": "buckets 8-11: email NULL",
        "junk_mobile": "bucket 12 mobile 'n/a', bucket 13 mobile '12'",
        "junk_phone": "bucket 14: phone 'tbc' or '12'",
        "us_numbers": "buckets 15-16: +1 415 555 01xx numbers, country 'US' (16: no +1 on mobile)",
        "duplicate_key": "bucket 17: customer_id twice; the later updated_at has accounts@ email",
        "partial_address": "bucket 18 postal_code+country only; bucket 19 line1+city only",
        "several_emails": "bucket 20 'first.last@…; accounts@…', bucket 21 'accounts@…, first@…, "
        "first@' (the last invalid), bucket 22 'Finance@… first@…' (space-separated): the first "
        "valid address is the customer's, the others become contact persons",
        "archived": "random ~6% is_archived = true",
    },
    "invoices": {
        "unknown_customer": "buckets 0-9: customer_id beyond the last customer (C-<n+1..n+1000>)",
        "bad_currency": "buckets 10-19: currency_code ['ZZZ', 'EURO', '', 'XXY'][1 + bucket % 4]",
        "negative_total": "buckets 20-24: sub_total and total < 0, no payments",
        "missing_number": "buckets 25-26: invoice_number ''; buckets 27-29: NULL",
        "missing_issue_date": "buckets 30-34: issue_date NULL (due_date kept)",
        "duplicate_key": "buckets 35-44: invoice_id twice; older row is a DRAFT with a lower total",
        "zero_total": "buckets 45-54: sub_total = total = 0.00, no payments",
        "float_cents": "buckets 55-59: total 0.30 paid by 0.10 then 0.20",
        "float_pounds": "buckets 60-64: total 300.30 paid by 100.10 then 200.20",
        "paid_status_money_due": "buckets 65-74: status PAID/Paid but payments < total",
        "overpaid": "buckets 75-89: status PAID, a full payment then a second one (sum > total)",
        "bounced_then_paid": "buckets 90-99: full payment reversed, then paid again later",
        "refund_then_paid": "buckets 100-104: paid in full, refunded in full (a negative "
        "payment), paid in full again: fully paid at the last payment",
        "before_history": "buckets 105-109: issued in December 2022, before the first month of "
        "history, and still open",
        "held_customer_paid": "buckets 110-114: billed to a customer without a company name "
        "(held back), and paid in full",
        "paid_from_account": "buckets 115-124: no payment of its own; cash received on account "
        "(up to 20 days before, sometimes more than the total) is applied to it in full by a "
        "credit_allocations row naming the payment (payment_id)",
        "credited": "buckets 900-999: credit note raised against it, payments cover the rest",
        "normal": "everything else: unpaid / partial / full in 1-5 payments; ~5% bounced extra",
    },
    "credit_notes": {
        "unknown_customer": "buckets 0-1: customer_id beyond the last customer, no allocations",
        "bad_currency": "bucket 2: currency_code 'ZZZ', no allocations",
        "duplicate_key": "bucket 3: credit_note_id twice; older row DRAFT with updated_at earlier",
        "voided_with_allocations": "buckets 4-7: VOIDED/voided, allocated in full to its invoice",
        "draft": "buckets 8-9 DRAFT/draft, bucket 10 Submitted: no allocations",
        "deleted_with_allocation": "bucket 11: DELETED, allocated in full to its invoice",
        "refund": "buckets 12-15: one allocation with invoice_id NULL for the whole credit",
        "over_allocated": "buckets 16-19: full allocation to the invoice plus a refund on top",
        "reversed_allocation": "buckets 20-23: full allocation reversed, then a partial one",
        "unknown_invoice": "buckets 24-25: allocation to INV-<n+1..> that does not exist",
        "unknown_credit_note": "buckets 26-27: extra allocation from CN-<n+1..> to its invoice",
        "unallocated": "buckets 28-33: no allocation, whole credit remaining",
        "fully_used": "buckets 34-59: 1-4 allocations to its invoice summing to the total",
        "partly_used": "buckets 60-79: 1-3 allocations using 30-90% of the credit",
        "other_currency": "buckets 80-81: in EUR (GBP when the invoice is EUR), allocated in full "
        "to its invoice: ignored on both sides, the invoice keeps that much due",
        "other_customer": "bucket 82: another customer's, allocated in full to the invoice: "
        "ignored on both sides",
        "draft_allocated": "bucket 83: DRAFT/draft, allocated in full to its invoice: ignored",
        "negative_total": "bucket 84: total < 0, no allocations, among good ones of its month",
        "split_with_refund": "buckets 85-99: 1-3 allocations to the invoice, the rest refunded",
    },
    "payments": {
        "optional_columns": "customer_id and currency_code on every payment (the invoice's; "
        "NULL for payments to invoices the extract never sees)",
        "on_account": "invoice_id NULL: the funding of every paid_from_account invoice, and "
        "n_invoices // 300 prepayments never applied (random customer, its currency)",
        "refund": "refund_then_paid invoices: a negative payment between two full ones",
    },
    "contacts": {
        "per_customer": "1-3 contacts per customer (2 on average), CT-0000001 onwards",
        "unknown_customer": "bucket 0: customer_id beyond the last customer",
        "no_last_name": "bucket 1: last_name NULL",
        "bad_email": "bucket 2: 'name@' (invalid)",
        "null_email": "bucket 3: email NULL",
        "two_addresses": "bucket 4: two addresses; the first is used, the other reported",
        "junk_phone": "bucket 5: phone 'ext. 12'",
        "archived": "buckets 7-16: is_archived = true (ARCHIVED in Chaser)",
        "duplicate_key": "bucket 17: contact_id twice; the older row's first_name is 'Former'",
        "junk_mobile": "bucket 41: mobile 'n/a'",
        "phones": "buckets 6-40: phone 020 7946 1xxx; buckets 42-70: mobile 07700 901xxx or "
        "+44 7700 901xxx",
    },
}


@dataclass(frozen=True)
class DemoSummary:
    """What `generate_demo_warehouse` wrote: rows per ledger table and how long it took."""

    path: Path
    customers: int
    invoices: int
    payments: int
    credit_notes: int
    credit_allocations: int
    contacts: int
    seconds: float

    @property
    def rows(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in LEDGER_DDL}


def generate_demo_warehouse(
    path: Path,
    *,
    scale: float = 1.0,
    seed: int = 42,
    overwrite: bool = True,
    customers: int | None = None,
    invoices: int | None = None,
    credit_notes: int | None = None,
) -> DemoSummary:
    """Write a demo ledger warehouse (DuckDB, schema `ledger`) to `path`, atomically.

    Scale 1 is 300 customers (~600 contacts), 3,000 invoices (~6,000 payments), 300 credit notes
    (~600 allocations); `customers`, `invoices` and `credit_notes` override a count. Contacts,
    payments and allocations follow from the customers, invoices and credit notes. The file is built beside `path` and
    renamed into place, so a reader never sees a half-written warehouse.
    """
    started = time.perf_counter()
    path = Path(path)
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    counts = {
        "n_customers": customers if customers is not None else _scaled(CUSTOMERS_PER_SCALE, scale),
        "n_invoices": invoices if invoices is not None else _scaled(INVOICES_PER_SCALE, scale),
        "n_credit_notes": (
            credit_notes if credit_notes is not None else _scaled(CREDIT_NOTES_PER_SCALE, scale)
        ),
    }
    for name, value in counts.items():
        if value < 1:
            raise ValueError(f"{name.removeprefix('n_')} must be at least 1, got {value}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    _remove(partial)
    try:
        con = duckdb.connect(str(partial))
        try:
            con.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
            _build(con, seed=seed, **counts)
            rows = {
                name: con.table(f"ledger.{name}").count("*").fetchall()[0][0] for name in LEDGER_DDL
            }
            con.execute("checkpoint")
        finally:
            con.close()
        os.replace(partial, path)
    finally:
        _remove(partial)
    return DemoSummary(path=path, seconds=time.perf_counter() - started, **rows)


def _scaled(per_scale: int, scale: float) -> int:
    return max(1, round(per_scale * scale))


def _remove(partial: Path) -> None:
    for leftover in (partial, partial.with_name(partial.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _build(
    con: duckdb.DuckDBPyConnection,
    *,
    seed: int,
    n_customers: int,
    n_invoices: int,
    n_credit_notes: int,
) -> None:
    settings = {
        "seed": seed,
        "bucket_offset": seed % 1000,
        "n_customers": n_customers,
        "n_invoices": n_invoices,
        "n_credit_notes": n_credit_notes,
    }
    for name, value in settings.items():
        con.execute(f"set variable {name} = $value", {"value": value})
    con.execute("create schema ledger")
    for name, columns in LEDGER_DDL.items():
        con.execute(f"create table ledger.{name} ({columns})")
    sql = _statements()
    for step in ("01", "02", "03"):
        con.execute(sql[step])
    # The credit notes need every credited invoice: those alone, over the whole range.
    _set_range(con, 1, n_invoices + 1, credited_only=True)
    for step in ("04", "05", "06"):
        con.execute(sql[step])
    con.execute(
        "create temp table cash_rows (i bigint, payment_id varchar, invoice_id varchar, "
        "cents bigint, allocated_at timestamp)"
    )
    # Then the invoices and their payments range by range, in invoice order (so the rows, their
    # ids and their order in the file are those of one pass over everything): the memory a
    # range takes is bounded, whatever the scale. The last range also holds the payments
    # numbered after the invoices (orphans and cash on account, i up to 3 * n_invoices).
    for lo in range(1, n_invoices + 1, INVOICES_PER_RANGE):
        last = lo + INVOICES_PER_RANGE > n_invoices
        _set_range(con, lo, 3 * n_invoices + 2 if last else lo + INVOICES_PER_RANGE)
        for step in ("04", "07", "08", "09", "10", "11"):
            con.execute(sql[step])
        con.execute(
            "set variable pay_offset = getvariable('pay_offset') + (select count(*) from pay_rows)"
        )
    for step in ("12", "13", "14"):
        con.execute(sql[step])
    for name in (
        "customer_rows",
        "inv_base",
        "inv_plan",
        "cn_base",
        "alloc_rows",
        "pay_rows",
        "cash_rows",
    ):
        con.execute(f"drop table if exists {name}")


def _set_range(
    con: duckdb.DuckDBPyConnection, lo: int, hi: int, *, credited_only: bool = False
) -> None:
    con.execute("set variable lo = $lo::bigint", {"lo": lo})
    con.execute("set variable hi = $hi::bigint", {"hi": hi})
    con.execute("set variable credited_only = $c", {"c": credited_only})
    if credited_only:
        con.execute("set variable pay_offset = 0::bigint")


def _statements() -> dict[str, str]:
    """The generator's SQL, one file per step, by its number ("01" .. "14")."""
    return {path.name[:2]: path.read_text() for path in sorted(SQL_DIR.glob("*.sql"))}
