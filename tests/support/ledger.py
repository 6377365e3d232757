"""Small hand-written ledgers in the contract's shape, in DuckDB or PostgreSQL warehouses, with or
without the contract's optional parts, and extract queries to match."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from chaser_pipeline.ledger.contract import LEDGER_TABLES, LedgerTable
from chaser_pipeline.ledger.extract import ExtractOptions, ExtractResult, extract_table
from chaser_pipeline.ledger.warehouse import Warehouse

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


def warehouse_columns(table: LedgerTable, optional: bool) -> list[tuple[str, str]]:
    """A warehouse table's columns: every contract column, or only the required ones."""
    return [(c, t) for c, t in table.columns if optional or c not in table.optional_columns]


def warehouse_tables(optional: bool) -> list[LedgerTable]:
    """The ledger tables a warehouse holds: all of them, or only the required ones."""
    return [t for t in LEDGER_TABLES.values() if optional or not t.optional]


def _complete(table: str, row: Mapping[str, Any], columns: list[tuple[str, str]]) -> list[Any]:
    names = [c for c, _ in columns]
    unknown = set(row) - set(names)
    assert not unknown, f"{table}: unknown columns {unknown}"
    return [row.get(c) for c in names]


def write_duckdb_ledger(path: Path, rows: Rows, *, optional: bool = True) -> Path:
    """Create (or add to) a DuckDB warehouse with schema `ledger` holding the given rows.
    `optional=False`: no optional column and no `contacts` table (a minimal warehouse)."""
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema if not exists ledger")
        for table in warehouse_tables(optional):
            columns = warehouse_columns(table, optional)
            ddl = ", ".join(f"{c} {t}" for c, t in columns)
            con.execute(f"create table if not exists ledger.{table.name} ({ddl})")
            marks = ", ".join("?" for _ in columns)
            for row in rows.get(table.name, ()):
                con.execute(
                    f"insert into ledger.{table.name} values ({marks})",
                    _complete(table.name, row, columns),
                )
    finally:
        con.close()
    return path


def write_postgres_ledger(url: str, rows: Rows, *, optional: bool = True) -> None:
    """Create (or add to) schema `ledger` in a PostgreSQL database (see write_duckdb_ledger)."""
    import adbc_driver_postgresql.dbapi as pg

    conn = pg.connect(url, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("create schema if not exists ledger")
        for table in warehouse_tables(optional):
            columns = warehouse_columns(table, optional)
            ddl = ", ".join(f"{c} {PG_TYPES[t]}" for c, t in columns)
            cur.execute(f"create table if not exists ledger.{table.name} ({ddl})")
            marks = ", ".join(f"${i + 1}::{PG_TYPES[t]}" for i, (_, t) in enumerate(columns))
            for row in rows.get(table.name, ()):
                cur.execute(
                    f"insert into ledger.{table.name} values ({marks})",
                    parameters=[_pg_text(v) for v in _complete(table.name, row, columns)],
                )
    finally:
        conn.close()


def write_sql_folder(folder: Path, *, optional: bool = True) -> Path:
    """Extract queries for a warehouse written by this module: one file per table it holds,
    selecting its columns (`optional=False`: no optional column, and no contacts.sql)."""
    folder.mkdir(parents=True, exist_ok=True)
    for table in warehouse_tables(optional):
        columns = ",\n    ".join(c for c, _ in warehouse_columns(table, optional))
        (folder / f"{table.name}.sql").write_text(
            f"select\n    {columns}\nfrom ledger.{table.name}\n"
            "where updated_at > $1::timestamp or updated_at is null\n"
        )
    return folder


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
    updated_at: str | None = "2024-03-01 10:00:00",
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
        "updated_at": datetime.fromisoformat(updated_at) if updated_at else None,
    }
    row.update(extra)
    return row


def customer(customer_id: str, *, updated_at: str = "2024-01-01 09:00:00", **extra: Any) -> dict:
    row = {
        "customer_id": customer_id,
        "company_name": f"Company {customer_id}",
        "email": f"{(customer_id or 'nobody').lower()}@example.com",
        "is_archived": False,
        "updated_at": datetime.fromisoformat(updated_at),
    }
    row.update(extra)
    return row


def payment(payment_id: str | None, invoice_id: str | None = "I-1", **extra: Any) -> dict:
    row = {
        "payment_id": payment_id,
        "invoice_id": invoice_id,
        "amount": Decimal("10.00"),
        "paid_at": datetime(2024, 3, 5),
        "is_reversed": False,
        "updated_at": datetime(2024, 3, 5),
    }
    row.update(extra)
    return row


def credit_note(credit_note_id: str | None, *, total: str = "50.00", **extra: Any) -> dict:
    row = {
        "credit_note_id": credit_note_id,
        "credit_note_number": f"N-{credit_note_id}",
        "customer_id": "C-1",
        "status": "AUTHORISED",
        "currency_code": "GBP",
        "total": Decimal(total),
        "issue_date": date(2024, 3, 10),
        "updated_at": datetime(2024, 3, 10),
    }
    row.update(extra)
    return row


def allocation(
    allocation_id: str | None,
    credit_note_id: str | None = "CN-1",
    invoice_id: str | None = "I-1",
    **extra: Any,
) -> dict:
    row = {
        "allocation_id": allocation_id,
        "credit_note_id": credit_note_id,
        "invoice_id": invoice_id,
        "amount": Decimal("10.00"),
        "allocated_at": datetime(2024, 3, 12),
        "is_reversed": False,
        "updated_at": datetime(2024, 3, 12),
    }
    row.update(extra)
    return row


def contact(contact_id: str | None, customer_id: str = "C-1", **extra: Any) -> dict:
    row = {
        "contact_id": contact_id,
        "customer_id": customer_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"{(contact_id or 'nobody').lower()}@example.com",
        "is_archived": False,
        "updated_at": datetime(2024, 2, 1),
    }
    row.update(extra)
    return row


class LedgerWarehouse:
    """A small source warehouse for a test: a DuckDB file or a PostgreSQL database."""

    def __init__(self, kind: str, *, path: Path | None = None, url: str | None = None) -> None:
        self.kind = kind
        self.path = path
        self.url = url if url is not None else f"duckdb:///{path}"

    def write(self, rows: Rows, *, optional: bool = True) -> LedgerWarehouse:
        """Create the ledger tables (if need be) and add the rows."""
        if self.kind == "duckdb":
            write_duckdb_ledger(self.path, rows, optional=optional)
        else:
            write_postgres_ledger(self.url, rows, optional=optional)
        return self

    def execute(self, sql: str) -> None:
        """Change the warehouse as the ledger's own application would (SQL both engines read)."""
        if self.kind == "duckdb":
            with duckdb.connect(str(self.path)) as con:
                con.execute(sql)
        else:
            import adbc_driver_postgresql.dbapi as pg

            conn = pg.connect(self.url, autocommit=True)
            try:
                conn.cursor().execute(sql)
            finally:
                conn.close()


def ledger_warehouse(request, tmp_path: Path) -> LedgerWarehouse:
    """For a fixture parametrized with "duckdb" and "postgresql": an empty warehouse of that kind
    (the PostgreSQL one is a fresh database from the `postgres_url` fixture)."""
    if request.param == "duckdb":
        return LedgerWarehouse("duckdb", path=tmp_path / "warehouse.duckdb")
    return LedgerWarehouse("postgresql", url=request.getfixturevalue("postgres_url"))


class Landing:
    """The pipeline's DuckDB in a test, fed from a LedgerWarehouse by the extract engine."""

    def __init__(self, path: Path, warehouse: LedgerWarehouse, sql_folder: Path | None = None):
        self.con = duckdb.connect(str(path))
        self.warehouse = warehouse
        self.sql_folder = sql_folder

    def close(self) -> None:
        self.con.close()

    def extract(
        self,
        table: str,
        now: str | datetime,
        *,
        full_refresh: bool = False,
        overlap_minutes: int = 0,
        full_compare_every_days: float = 7,
        land_changes: bool = True,
    ) -> ExtractResult:
        """One extract of one table at `now` (no overlap unless asked: exact windows);
        `land_changes=False`: the quiet check's probe."""
        options = ExtractOptions(
            full_refresh=full_refresh,
            overlap=timedelta(minutes=overlap_minutes),
            full_compare_every=timedelta(days=full_compare_every_days),
        )
        return extract_table(
            self.con,
            Warehouse.from_url(self.warehouse.url),
            LEDGER_TABLES[table],
            now=datetime.fromisoformat(now) if isinstance(now, str) else now,
            options=options,
            sql_folder=self.sql_folder,
            land_changes=land_changes,
        )

    def rows(self, table: str, *columns: str) -> list[tuple]:
        """Landed rows (the named columns, else all), sorted."""
        selected = ", ".join(columns) if columns else "*"
        return self.con.execute(
            f"select {selected} from landing.{table} order by all nulls first"
        ).fetchall()

    def deleted(self) -> list[tuple]:
        """landing.deleted_keys as (table_name, key, deleted_at), sorted."""
        return self.con.execute("select * from landing.deleted_keys order by all").fetchall()
