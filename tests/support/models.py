"""Tiny helpers to build the SQL models on a hand-made landed ledger, without Dagster.

`landed_ledger(path, rows)` creates the `landing` schema with the contract's five tables in a DuckDB
file and inserts the given rows; `build_models(con, models_dir, params)` runs every model through
`chaser_pipeline.models.build.run_models`. The row builders (`customer`,
`invoice`, ...) fill in a valid default for every column a test does not name.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from chaser_pipeline.models.build import run_models

LANDING_COLUMNS: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": "VARCHAR",
        "company_name": "VARCHAR",
        "contact_first_name": "VARCHAR",
        "contact_last_name": "VARCHAR",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "mobile": "VARCHAR",
        "address_line1": "VARCHAR",
        "address_line2": "VARCHAR",
        "city": "VARCHAR",
        "region": "VARCHAR",
        "postal_code": "VARCHAR",
        "country": "VARCHAR",
        "is_archived": "BOOLEAN",
        "updated_at": "TIMESTAMP",
    },
    "invoices": {
        "invoice_id": "VARCHAR",
        "invoice_number": "VARCHAR",
        "customer_id": "VARCHAR",
        "status": "VARCHAR",
        "currency_code": "VARCHAR",
        "sub_total": "DECIMAL(18,2)",
        "total": "DECIMAL(18,2)",
        "issue_date": "DATE",
        "due_date": "DATE",
        "updated_at": "TIMESTAMP",
    },
    "payments": {
        "payment_id": "VARCHAR",
        "invoice_id": "VARCHAR",
        "amount": "DECIMAL(18,2)",
        "paid_at": "TIMESTAMP",
        "is_reversed": "BOOLEAN",
        "updated_at": "TIMESTAMP",
    },
    "credit_notes": {
        "credit_note_id": "VARCHAR",
        "credit_note_number": "VARCHAR",
        "customer_id": "VARCHAR",
        "status": "VARCHAR",
        "currency_code": "VARCHAR",
        "total": "DECIMAL(18,2)",
        "issue_date": "DATE",
        "updated_at": "TIMESTAMP",
    },
    "credit_allocations": {
        "allocation_id": "VARCHAR",
        "credit_note_id": "VARCHAR",
        "invoice_id": "VARCHAR",
        "amount": "DECIMAL(18,2)",
        "allocated_at": "TIMESTAMP",
        "is_reversed": "BOOLEAN",
        "updated_at": "TIMESTAMP",
    },
}

UPDATED = datetime(2024, 6, 1, 9, 0, 0)


def customer(customer_id: str = "C-1", **columns: Any) -> dict[str, Any]:
    """A valid, sendable customer row; keyword arguments override columns."""
    row = {
        "customer_id": customer_id,
        "company_name": f"Company {customer_id}",
        "contact_first_name": "Ada",
        "contact_last_name": "Lovelace",
        "email": "accounts@company.co.uk",
        "phone": None,
        "mobile": None,
        "address_line1": None,
        "address_line2": None,
        "city": None,
        "region": None,
        "postal_code": None,
        "country": None,
        "is_archived": False,
        "updated_at": UPDATED,
    }
    return _override("customers", row, columns)


def invoice(invoice_id: str = "INV-1", total: str = "100.00", **columns: Any) -> dict[str, Any]:
    """A valid AUTHORISED GBP invoice of C-1 issued 2024-03-05; keyword arguments override columns."""
    row = {
        "invoice_id": invoice_id,
        "invoice_number": f"N-{invoice_id}",
        "customer_id": "C-1",
        "status": "AUTHORISED",
        "currency_code": "GBP",
        "sub_total": Decimal(total),
        "total": Decimal(total),
        "issue_date": date(2024, 3, 5),
        "due_date": date(2024, 4, 4),
        "updated_at": UPDATED,
    }
    return _override("invoices", row, columns)


def payment(
    payment_id: str, amount: str, paid_at: datetime, invoice_id: str = "INV-1", **columns: Any
) -> dict[str, Any]:
    """A non-reversed payment; keyword arguments override columns."""
    row = {
        "payment_id": payment_id,
        "invoice_id": invoice_id,
        "amount": Decimal(amount),
        "paid_at": paid_at,
        "is_reversed": False,
        "updated_at": UPDATED,
    }
    return _override("payments", row, columns)


def credit_note(
    credit_note_id: str = "CN-1", total: str = "50.00", **columns: Any
) -> dict[str, Any]:
    """A valid AUTHORISED GBP credit note of C-1 issued 2024-03-10; keyword arguments override."""
    row = {
        "credit_note_id": credit_note_id,
        "credit_note_number": f"N-{credit_note_id}",
        "customer_id": "C-1",
        "status": "AUTHORISED",
        "currency_code": "GBP",
        "total": Decimal(total),
        "issue_date": date(2024, 3, 10),
        "updated_at": UPDATED,
    }
    return _override("credit_notes", row, columns)


def allocation(
    allocation_id: str,
    amount: str,
    allocated_at: datetime,
    invoice_id: str | None = "INV-1",
    credit_note_id: str = "CN-1",
    **columns: Any,
) -> dict[str, Any]:
    """A non-reversed allocation of credit (invoice_id None: a cash refund); kwargs override."""
    row = {
        "allocation_id": allocation_id,
        "credit_note_id": credit_note_id,
        "invoice_id": invoice_id,
        "amount": Decimal(amount),
        "allocated_at": allocated_at,
        "is_reversed": False,
        "updated_at": UPDATED,
    }
    return _override("credit_allocations", row, columns)


def _override(table: str, row: dict[str, Any], columns: dict[str, Any]) -> dict[str, Any]:
    unknown = set(columns) - set(LANDING_COLUMNS[table])
    if unknown:
        raise TypeError(f"landing.{table} has no column(s) {sorted(unknown)}")
    return {**row, **columns, "__table__": table}


def landed_ledger(path: Path, rows: list[dict[str, Any]]) -> duckdb.DuckDBPyConnection:
    """A DuckDB file at `path` holding the `landing` schema's five tables with `rows` inserted."""
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists landing")
    for table, columns in LANDING_COLUMNS.items():
        ddl = ", ".join(f"{name} {type_}" for name, type_ in columns.items())
        con.execute(f"create or replace table landing.{table} ({ddl})")
        table_rows = [r for r in rows if r["__table__"] == table]
        if table_rows:
            placeholders = ", ".join("?" for _ in columns)
            con.executemany(
                f"insert into landing.{table} values ({placeholders})",
                [[r[name] for name in columns] for r in table_rows],
            )
    return con


def build_models(
    con: duckdb.DuckDBPyConnection,
    models_dir: Path,
    params: dict[str, Any] | None = None,
    default_country: str = "GB",
) -> None:
    """Build every model with the framework's own runner (the one the assets use).

    `params` may bound the partitioned marts to a window: `window_start`, `window_end`.
    """
    window = (params["window_start"], params["window_end"]) if params else None
    run_models(con, models_dir, window, default_country=default_country)
