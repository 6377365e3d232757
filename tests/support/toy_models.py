"""A toy model project (three SQL models and a YAML contract) and a landed ledger to build it on."""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import pytest

from chaser_pipeline.ledger.contract import LEDGER_TABLES

STG_INVOICES = """
-- Invoices as landed, renamed and cast.
with source as (
    select * from landing.invoices
),
final as (
    select
        invoice_id,
        customer_id as customer_external_id,
        upper(status) as status,
        total,
        issue_date
    from source
)
select * from final
"""

STG_PAYMENTS = """
with source as (
    select * from landing.payments
)
select payment_id, invoice_id, amount from source where not is_reversed
"""

CHASER_INVOICES = """
with invoices as (
    select * from stg_invoices
    where issue_date >= $window_start and issue_date < $window_end
),
paid as (
    select invoice_id, sum(amount) as paid_amount from stg_payments group by invoice_id
),
currencies as (
    select * from ref_iso4217_currencies
),
final as (
    select
        i.invoice_id,
        i.customer_external_id,
        i.status,
        i.total,
        least(coalesce(p.paid_amount, 0), i.total) as amount_paid,
        strftime(i.issue_date, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' as date
    from invoices as i
    left join paid as p on p.invoice_id = i.invoice_id
)
select * from final
"""

CHASER_INVOICES_YML = """
description: Invoices as Chaser gets them.
partitioned_by: date
checks:
  unique: [invoice_id]
  not_null: [invoice_id, status]
  accepted_values:
    status: [AUTHORISED, PAID]
  relationships:
    invoice_id: stg_invoices.invoice_id
columns:
  amount_paid: Payments applied, capped at the total.
"""


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(textwrap.dedent(text).lstrip())


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    write(folder, "stg_invoices.sql", STG_INVOICES)
    write(folder, "stg_payments.sql", STG_PAYMENTS)
    write(folder, "chaser_invoices.sql", CHASER_INVOICES)
    write(folder, "chaser_invoices.yml", CHASER_INVOICES_YML)
    return folder


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A pipeline DuckDB with landed invoices (Jan-Feb 2024) and payments, plus a lookup table."""
    path = tmp_path / "p.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema landing")
        for table in ("invoices", "payments"):
            columns = ", ".join(f"{c} {t}" for c, t in LEDGER_TABLES[table].columns)
            con.execute(f"create table landing.{table} ({columns})")
        con.execute(
            """
            insert into landing.invoices
            select 'inv-' || x, 'N' || x, 'cus-1',
                   case when x % 2 = 0 then 'paid' else 'authorised' end, 'GBP',
                   10.00, 12.00, date '2024-01-01' + x::int, date '2024-04-01', now()::timestamp
            from range(50) t(x)
            """
        )
        con.execute(
            """
            insert into landing.payments
                (payment_id, invoice_id, amount, paid_at, is_reversed, updated_at)
            select 'pay-' || x, 'inv-' || x, 5.00, now()::timestamp, x = 3, now()::timestamp
            from range(20) t(x)
            """
        )
        con.execute("create table ref_iso4217_currencies as select 'GBP' as code")
    return path
