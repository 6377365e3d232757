"""Small hand-written ledgers in the contract's shape, in DuckDB or PostgreSQL warehouses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from chaser_pipeline.ledger.contract import LEDGER_TABLES

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"

Rows = Mapping[str, Sequence[Mapping[str, Any]]]

PG_TYPES = {
    "VARCHAR": "varchar",
    "DECIMAL(18,2)": "numeric(18,2)",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
}


def postgres_available() -> str | None:
    """None when the test PostgreSQL server answers, else why not."""
    try:
        import adbc_driver_postgresql.dbapi as pg

        conn = pg.connect(POSTGRES_ADMIN_URL)
        conn.close()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _complete(table: str, row: Mapping[str, Any]) -> list[Any]:
    cols = LEDGER_TABLES[table].column_names
    unknown = set(row) - set(cols)
    assert not unknown, f"{table}: unknown columns {unknown}"
    return [row.get(c) for c in cols]


def write_duckdb_ledger(path: Path, rows: Rows) -> Path:
    """Create (or add to) a DuckDB warehouse with schema `ledger` holding the given rows."""
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema if not exists ledger")
        for name, table in LEDGER_TABLES.items():
            columns = ", ".join(f"{c} {t}" for c, t in table.columns)
            con.execute(f"create table if not exists ledger.{name} ({columns})")
            marks = ", ".join("?" for _ in table.columns)
            for row in rows.get(name, ()):
                con.execute(f"insert into ledger.{name} values ({marks})", _complete(name, row))
    finally:
        con.close()
    return path


def write_postgres_ledger(url: str, rows: Rows) -> None:
    """Create (or add to) schema `ledger` in a PostgreSQL database."""
    import adbc_driver_postgresql.dbapi as pg

    conn = pg.connect(url, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("create schema if not exists ledger")
        for name, table in LEDGER_TABLES.items():
            columns = ", ".join(f"{c} {PG_TYPES[t]}" for c, t in table.columns)
            cur.execute(f"create table if not exists ledger.{name} ({columns})")
            for row in rows.get(name, ()):
                values = _complete(name, row)
                marks = ", ".join(
                    f"${i + 1}::{PG_TYPES[t]}" for i, (_, t) in enumerate(table.columns)
                )
                cur.execute(
                    f"insert into ledger.{name} values ({marks})",
                    parameters=[_pg_text(v) for v in values],
                )
    finally:
        conn.close()


def _pg_text(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (Decimal, date, datetime)):
        return str(value)
    return value


def invoice(
    invoice_id: str,
    *,
    total: str = "100.00",
    updated_at: str = "2024-03-01 10:00:00",
    customer_id: str = "C-1",
    issue_date: str = "2024-03-01",
    **extra: Any,
) -> dict:
    row = {
        "invoice_id": invoice_id,
        "invoice_number": f"N-{invoice_id}",
        "customer_id": customer_id,
        "status": "AUTHORISED",
        "currency_code": "GBP",
        "sub_total": Decimal(total),
        "total": Decimal(total),
        "issue_date": date.fromisoformat(issue_date),
        "due_date": date.fromisoformat(issue_date),
        "updated_at": datetime.fromisoformat(updated_at),
    }
    row.update(extra)
    return row


def customer(customer_id: str, *, updated_at: str = "2024-01-01 09:00:00", **extra: Any) -> dict:
    row = {
        "customer_id": customer_id,
        "company_name": f"Company {customer_id}",
        "email": f"{customer_id.lower()}@example.com",
        "is_archived": False,
        "updated_at": datetime.fromisoformat(updated_at),
    }
    row.update(extra)
    return row
