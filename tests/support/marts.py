"""Hand-made marts in a pipeline DuckDB, and an emulated Chaser with a client factory, for sync
engine tests that need no models and no Dagster."""

from __future__ import annotations

import contextlib

import duckdb

from chaser_pipeline.emulator import run_emulator_in_thread

API_KEY, API_SECRET = "test-key", "test-secret-never-logged"


@contextlib.contextmanager
def emulated_chaser(tmp_path, **faults):
    """An emulated Chaser on loopback (state in tmp_path/c.sqlite3), and a factory of clients
    for it (keyword arguments go to ChaserClient)."""
    from chaser_pipeline.chaser.client import ChaserClient

    with run_emulator_in_thread(
        tmp_path / "c.sqlite3", api_key=API_KEY, api_secret=API_SECRET, **faults
    ) as emu:
        yield lambda **options: lambda: ChaserClient(emu.url, API_KEY, API_SECRET, **options)


def mart_db(path, customers: list[tuple], invoices: list[tuple]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute(
        """create or replace table chaser_customers (external_id varchar, company_name varchar,
        contact_first_name varchar, contact_last_name varchar, contact_email_address varchar,
        phone_number varchar, mobile_number varchar, status varchar,
        addresses struct(address_line1 varchar, address_line2 varchar, city varchar,
            region varchar, postal_code varchar, country varchar, address_type varchar)[])"""
    )
    con.execute(
        """create or replace table chaser_invoices (invoice_id varchar, invoice_number varchar,
        customer_external_id varchar, status varchar, currency_code varchar,
        sub_total decimal(18,2), total decimal(18,2), amount_paid decimal(18,2),
        amount_due decimal(18,2), date varchar, due_date varchar, fully_paid_date varchar)"""
    )
    for row in customers:
        con.execute(
            "insert into chaser_customers values (?, ?, null, null, null, null, null, 'ACTIVE', null)",
            row,
        )
    for row in invoices:
        con.execute(
            """insert into chaser_invoices values (?, 'N-1', ?, 'AUTHORISED', 'GBP', 10.00, 12.00,
            0.00, 12.00, '2024-03-01T00:00:00.000Z', '2024-03-31T00:00:00.000Z', null)""",
            row,
        )
    return con
