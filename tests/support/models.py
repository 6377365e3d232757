"""Tiny helpers to build the SQL models on a hand-made landed ledger, without Dagster.

`landed_ledger(path, rows)` creates the `landing` schema in a DuckDB file, shaped as the extract
lands it (every contract column, optional ones included, `contacts` and `deleted_keys` always), and
inserts the given rows; `holding(...)` rows go to `chaser_sync.holdings` (what Chaser holds).
`build_models(con, models, params)` runs every model (a folder, or the session's loaded
`project()`) through
`chaser_pipeline.models.build.run_models`. The row builders (`customer`, `invoice`, ...) fill in a
valid default for every column a test does not name.

`Case` states a ledger and the mart rows and rejections expected from it; `assert_case` checks a
built database against it, and the `build` fixture lands and builds a ledger in a fresh file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chaser_pipeline.models.build import run_models
from chaser_pipeline.models.inputs import HOLDINGS_COLUMNS, landing_columns
from chaser_pipeline.models.project import ModelProject, whole_history_models
from chaser_pipeline.paths import models_dir

# The landed shape the extract writes (design.md): every contract column, optional ones included,
# `landing.contacts` always, and `landing.deleted_keys`.
LANDING_COLUMNS: dict[str, dict[str, str]] = {
    name: dict(columns) for name, columns in landing_columns().items()
}
HOLDINGS_DDL = ", ".join(f"{name} {kind}" for name, kind in HOLDINGS_COLUMNS)


@functools.cache
def project() -> ModelProject:
    """The package's own models, loaded (every SQL file parsed) once per test session: tests only
    read the project, and parsing it again for each build would cost more than the build."""
    return ModelProject(models_dir())


@functools.cache
def whole_history() -> tuple[str, ...]:
    """Names of the package's models built over the whole history, read once per session."""
    return tuple(whole_history_models(models_dir()))


UPDATED = datetime(2024, 6, 1, 9, 0, 0)


def customer(customer_id: str | None = "C-1", **columns: Any) -> dict[str, Any]:
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


def _money(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def invoice(
    invoice_id: str | None = "INV-1", total: str | None = "100.00", **columns: Any
) -> dict[str, Any]:
    """A valid AUTHORISED GBP invoice of C-1 issued 2024-03-05; keyword arguments override columns."""
    row = {
        "invoice_id": invoice_id,
        "invoice_number": f"N-{invoice_id}",
        "customer_id": "C-1",
        "status": "AUTHORISED",
        "currency_code": "GBP",
        "sub_total": _money(total),
        "total": _money(total),
        "issue_date": date(2024, 3, 5),
        "due_date": date(2024, 4, 4),
        "updated_at": UPDATED,
    }
    return _override("invoices", row, columns)


def payment(
    payment_id: str | None,
    amount: str | None,
    paid_at: datetime | str | None,
    invoice_id: str | None = "INV-1",
    **columns: Any,
) -> dict[str, Any]:
    """A non-reversed payment; keyword arguments override columns."""
    row = {
        "payment_id": payment_id,
        "invoice_id": invoice_id,
        "amount": _money(amount),
        "paid_at": paid_at,
        "is_reversed": False,
        "updated_at": UPDATED,
        "customer_id": None,
        "currency_code": None,
    }
    return _override("payments", row, columns)


def on_account(
    payment_id: str | None,
    amount: str,
    paid_at: datetime | str | None,
    customer_id: str | None = "C-1",
    **columns: Any,
) -> dict[str, Any]:
    """Money received on account (no invoice): a GBP payment of `customer_id`; kwargs override."""
    columns = {"invoice_id": None, "customer_id": customer_id, "currency_code": "GBP", **columns}
    return payment(payment_id, amount, paid_at, **columns)


def credit_note(
    credit_note_id: str | None = "CN-1", total: str | None = "50.00", **columns: Any
) -> dict[str, Any]:
    """A valid AUTHORISED GBP credit note of C-1 issued 2024-03-10; keyword arguments override."""
    row = {
        "credit_note_id": credit_note_id,
        "credit_note_number": f"N-{credit_note_id}",
        "customer_id": "C-1",
        "status": "AUTHORISED",
        "currency_code": "GBP",
        "total": _money(total),
        "issue_date": date(2024, 3, 10),
        "updated_at": UPDATED,
    }
    return _override("credit_notes", row, columns)


def allocation(
    allocation_id: str | None,
    amount: str,
    allocated_at: datetime,
    invoice_id: str | None = "INV-1",
    credit_note_id: str | None = "CN-1",
    **columns: Any,
) -> dict[str, Any]:
    """A non-reversed allocation of credit (invoice_id None: a cash refund); kwargs override.
    Cash received on account applied later: `credit_note_id=None, payment_id=...`."""
    row = {
        "allocation_id": allocation_id,
        "credit_note_id": credit_note_id,
        "invoice_id": invoice_id,
        "amount": _money(amount),
        "allocated_at": allocated_at,
        "is_reversed": False,
        "updated_at": UPDATED,
        "payment_id": None,
    }
    return _override("credit_allocations", row, columns)


def contact(contact_id: str | None = "CT-1", customer_id: str = "C-1", **columns: Any) -> dict:
    """A ledger contact of `customer_id` with a valid address; keyword arguments override."""
    row = {
        "contact_id": contact_id,
        "customer_id": customer_id,
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace@company.co.uk",
        "phone": None,
        "mobile": None,
        "is_archived": False,
        "updated_at": UPDATED,
    }
    return _override("contacts", row, columns)


def deleted(table: str, key: str, deleted_at: datetime = UPDATED) -> dict[str, Any]:
    """A key the extract found gone from the warehouse (its last row stays landed)."""
    row = {"table_name": table, "key": key, "deleted_at": deleted_at}
    return _override("deleted_keys", row, {})


def holding(chaser_object: str, key: str, payload_hash: str = "confirmed") -> dict[str, Any]:
    """A row Chaser holds, as the sync confirmed it (`chaser_sync.holdings`)."""
    return {"object": chaser_object, "key": key, "payload_hash": payload_hash, "__table__": None}


def _override(table: str, row: dict[str, Any], columns: dict[str, Any]) -> dict[str, Any]:
    unknown = set(columns) - set(LANDING_COLUMNS[table])
    if unknown:
        raise TypeError(f"landing.{table} has no column(s) {sorted(unknown)}")
    return {**row, **columns, "__table__": table}


def landed_ledger(path: Path, rows: list[dict[str, Any]]) -> duckdb.DuckDBPyConnection:
    """A DuckDB file at `path` holding the landed ledger with `rows` inserted (and the `holding`
    rows in `chaser_sync.holdings`, created only when there are some)."""
    con = duckdb.connect(str(path))
    held = [r for r in rows if r["__table__"] is None]
    if held:
        con.execute("create schema if not exists chaser_sync")
        con.execute(f"create table chaser_sync.holdings ({HOLDINGS_DDL})")
        con.executemany(
            "insert into chaser_sync.holdings values (?, ?, ?)",
            [[r["object"], r["key"], r["payload_hash"]] for r in held],
        )
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


def land_warehouse(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    """Land every ledger table of a warehouse file (the demo's, say) as the extract would: the
    whole table, every contract column, and no deleted keys yet."""
    con.execute("attach ? as wh (read_only)", [str(warehouse)])
    con.execute("create schema if not exists landing")
    for table, columns in LANDING_COLUMNS.items():
        if table == "deleted_keys":
            ddl = ", ".join(f"{name} {type_}" for name, type_ in columns.items())
            con.execute(f"create table landing.{table} ({ddl})")
        else:
            con.execute(
                f"create table landing.{table} as select {', '.join(columns)} from wh.ledger.{table}"
            )
    con.execute("detach wh")


def build_models(
    con: duckdb.DuckDBPyConnection,
    models_dir: Path | ModelProject,
    params: dict[str, Any] | None = None,
    default_country: str = "GB",
) -> None:
    """Build every model with the framework's own runner (the one the assets use).

    `params` may bound the partitioned marts to a window: `window_start`, `window_end`.
    """
    window = (params["window_start"], params["window_end"]) if params else None
    run_models(con, models_dir, window, default_country=default_country)


# Each mart by the column Chaser matches its rows on.
MART_KEYS = {
    "chaser_customers": "external_id",
    "chaser_invoices": "invoice_id",
    "chaser_credit_notes": "credit_note_id",
    "chaser_contact_persons": "external_id",
    "chaser_overpayments": "overpayment_id",
}
NOT_SENT = None  # expected "row": the row must be absent from its mart


@dataclass
class Case:
    """A ledger, and what the marts and chaser_rejections must hold once it is built."""

    id: str
    ledger: list[dict[str, Any]]
    # expected mart rows by key (only the columns named are compared), or NOT_SENT
    customers: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    credit_notes: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    contact_persons: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    overpayments: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    # the whole of chaser_rejections: (entity, key, reason_code, severity)
    rejections: set[tuple[str, str, str, str]] = field(default_factory=set)


def rows(con: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, Any]]:
    """Every row of `table` as a dict."""
    cursor = con.execute(f"select * from {table}")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def assert_case(con: duckdb.DuckDBPyConnection, case: Case) -> None:
    """The built marts hold the case's expected rows, and chaser_rejections exactly its set."""
    for mart, expected in (
        ("chaser_customers", case.customers),
        ("chaser_invoices", case.invoices),
        ("chaser_credit_notes", case.credit_notes),
        ("chaser_contact_persons", case.contact_persons),
        ("chaser_overpayments", case.overpayments),
    ):
        by_key = {row[MART_KEYS[mart]]: row for row in rows(con, mart)}
        for key, columns in expected.items():
            if columns is NOT_SENT:
                assert key not in by_key, f"{mart} must not send {key}"
                continue
            assert key in by_key, f"{mart} must send {key}"
            assert {c: by_key[key][c] for c in columns} == columns, f"{mart} {key}"
    found = rows(con, "chaser_rejections")
    got = {(r["entity"], r["key"], r["reason_code"], r["severity"]) for r in found}
    assert got == case.rejections, (
        f"unexpected {sorted(got - case.rejections)}, missing {sorted(case.rejections - got)}"
    )
    for r in found:
        # a reader can act on it: a sentence naming the row (keyless rows are listed by content)
        assert r["detail"].endswith("."), r
        assert r["key"] == "(missing)" or r["key"] in r["detail"], r


@pytest.fixture
def build(tmp_path: Path):
    """Land `rows` in a fresh DuckDB file, build every model, return the open connection."""
    connections: list[duckdb.DuckDBPyConnection] = []

    def _build(ledger: list[dict[str, Any]], **params: Any) -> duckdb.DuckDBPyConnection:
        con = landed_ledger(tmp_path / f"pipeline_{len(connections)}.duckdb", ledger)
        connections.append(con)
        build_models(con, project(), params)
        return con

    yield _build
    for con in connections:
        con.close()
