"""A key gone from the warehouse keeps its last landed row and is listed in landing.deleted_keys
until it comes back; every extract run finds it by comparing key sets, reading only keys."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from chaser_pipeline.ledger.contract import LEDGER_TABLES
from chaser_pipeline.ledger.queries import key_query, nestable
from tests.support.ledger import (
    Landing,
    LedgerWarehouse,
    customer,
    invoice,
    ledger_warehouse,
    payment,
)

LEDGER = {
    "customers": [customer("C-1"), customer("C-2")],
    "invoices": [invoice("I-1"), invoice("I-2", total="250.00"), invoice("I-3")],
    "payments": [payment("P-1"), payment(None)],
}


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path) -> LedgerWarehouse:
    return ledger_warehouse(request, tmp_path).write(LEDGER)


@pytest.fixture
def landing(tmp_path, warehouse):
    landing = Landing(tmp_path / "pipeline.duckdb", warehouse)
    for table in ("customers", "invoices", "payments"):
        landing.extract(table, "2024-06-01")
    yield landing
    landing.close()


def test_a_deleted_key_keeps_its_last_row_and_is_recorded_once(warehouse, landing):
    warehouse.execute("delete from ledger.invoices where invoice_id = 'I-2'")
    result = landing.extract("invoices", "2024-06-02")
    assert result.full_compare == ""  # an ordinary incremental run sees it
    assert (result.landed.deleted_new, result.landed.deleted_total) == (1, 1)
    assert landing.deleted() == [("invoices", "I-2", datetime(2024, 6, 2))]
    assert ("I-2", Decimal("250.00")) in landing.rows("invoices", "invoice_id", "total")

    again = landing.extract("invoices", "2024-06-03")
    assert (again.landed.deleted_new, again.landed.deleted_total) == (0, 1)
    assert landing.deleted() == [("invoices", "I-2", datetime(2024, 6, 2))]


def test_a_key_that_comes_back_leaves_deleted_keys(warehouse, landing):
    warehouse.execute("delete from ledger.invoices where invoice_id = 'I-2'")
    landing.extract("invoices", "2024-06-02")
    warehouse.write(
        {"invoices": [invoice("I-2", total="260.00", updated_at="2024-06-02 12:00:00")]}
    )
    result = landing.extract("invoices", "2024-06-03")
    assert (result.landed.deleted_returned, result.landed.deleted_total) == (1, 0)
    assert landing.deleted() == []
    assert ("I-2", Decimal("260.00")) in landing.rows("invoices", "invoice_id", "total")


def test_deletes_are_counted_per_table_and_null_keys_never_count(warehouse, landing):
    warehouse.execute("delete from ledger.customers where customer_id = 'C-1'")
    warehouse.execute("delete from ledger.payments where payment_id = 'P-1'")
    customers = landing.extract("customers", "2024-06-02")
    invoices = landing.extract("invoices", "2024-06-02")
    payments = landing.extract("payments", "2024-06-02")
    assert (customers.landed.deleted_new, invoices.landed.deleted_new) == (1, 0)
    assert (payments.landed.deleted_new, payments.landed.null_key_rows) == (1, 1)
    assert landing.deleted() == [
        ("customers", "C-1", datetime(2024, 6, 2)),
        ("payments", "P-1", datetime(2024, 6, 2)),
    ]


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_full_refresh_records_deletes_instead_of_dropping_rows(warehouse, landing):
    warehouse.execute("delete from ledger.invoices where invoice_id = 'I-3'")
    result = landing.extract("invoices", "2024-06-02", full_refresh=True)
    assert result.full_compare == "full_refresh requested"
    assert result.keys_read == 0  # every row was read: no separate key query
    assert landing.deleted() == [("invoices", "I-3", datetime(2024, 6, 2))]
    assert len(landing.rows("invoices")) == 3


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_the_key_set_query_reads_no_other_column(tmp_path, warehouse, landing):
    # A column that fails whenever it is computed: the key-set query must never compute it.
    (tmp_path / "sql").mkdir()
    for table in LEDGER_TABLES.values():
        sql = table.read_sql()
        if table.name == "invoices":
            sql = sql.replace(
                "    status,", "    case when total > 0 then error('read') end as status,"
            )
        (tmp_path / "sql" / f"{table.name}.sql").write_text(sql)
    landing.sql_folder = tmp_path / "sql"
    warehouse.execute("delete from ledger.invoices where invoice_id = 'I-1'")
    result = landing.extract("invoices", "2024-06-02")  # no row changed after the cursor
    assert (result.keys_read, result.rows_fetched, result.landed.deleted_new) == (2, 0, 1)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select a from t", "select a from t"),
        ("select a from t;\n", "select a from t"),
        ("select a from t ;;\n-- the end\n\n", "select a from t"),
        ("-- head\nselect a from t -- why\nwhere b", "-- head\nselect a from t -- why\nwhere b"),
    ],
    ids=["plain", "semicolon", "semicolons-and-trailing-comment", "inner-comments-kept"],
)
def test_an_extract_query_nests_whatever_its_ending(sql, expected):
    assert nestable(sql) == expected
    nested = key_query(sql, LEDGER_TABLES["invoices"])
    assert nested == f"select invoice_id from (\n{expected}\n) as ledger_rows"
