"""Extract assets: one per ledger table (contacts included), run config reaches the engine, and the
metadata says what was read, what was deleted, what looks wrong and which optional parts are used;
a failure names what to fix and never a password. (The rules themselves: tests/engines.)"""

from __future__ import annotations

from decimal import Decimal

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from chaser_pipeline.defs.ledger.assets import extract_assets as build_extract_assets
from chaser_pipeline.defs.ledger.resources import WarehouseResource
from chaser_pipeline.ledger.contract import LEDGER_TABLES
from chaser_pipeline.settings import load_settings
from tests.support.ledger import (
    contact,
    customer,
    invoice,
    payment,
    write_duckdb_ledger,
    write_postgres_ledger,
)

extract_assets = build_extract_assets(load_settings())

LEDGER = {
    "customers": [customer("C-1"), customer("C-2")],
    "invoices": [
        invoice("I-1", total="0.10"),
        invoice("I-2", total="12345678.91", updated_at="2024-03-02 10:00:00"),
        invoice("I-3", total="0.30", updated_at="2024-03-03 10:00:00"),
        invoice("I-2099", updated_at="2099-01-01 00:00:00"),
    ],
    "payments": [payment("P-1", amount=Decimal("0.10")), payment(None)],
    "contacts": [contact("K-1")],
}


def run_extract(
    tmp_path, url: str, *, config: dict | None = None, selection=None
) -> dg.ExecuteInProcessResult:
    assets = extract_assets if selection is None else selection
    run_config = None
    if config:
        run_config = {"ops": {a.key.path[-1]: {"config": config} for a in assets}}
    return dg.materialize(
        assets,
        resources={
            "warehouse": WarehouseResource(url=url),
            "duckdb": DuckDBResource(database=str(tmp_path / "pipeline.duckdb")),
        },
        instance=dg.DagsterInstance.ephemeral(),
        run_config=run_config,
    )


def landed(tmp_path, table: str, order: str) -> list[tuple]:
    con = duckdb.connect(str(tmp_path / "pipeline.duckdb"), read_only=True)
    try:
        return con.execute(f"select * from landing.{table} order by {order}").fetchall()
    finally:
        con.close()


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [mat] = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in mat.metadata.items()}


def test_one_asset_per_ledger_table_with_its_landing_columns():
    assert sorted(a.key.path[-1] for a in extract_assets) == sorted(
        f"ledger_{name}" for name in LEDGER_TABLES
    )
    [payments] = [a for a in extract_assets if a.key.path[-1] == "ledger_payments"]
    schema = payments.specs_by_key[payments.key].metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns] == LEDGER_TABLES["payments"].column_names
    assert "optional" in schema.columns[-1].description


def test_first_run_metadata_says_what_landed_and_what_looks_wrong(tmp_path):
    wh = write_duckdb_ledger(tmp_path / "wh.duckdb", LEDGER)
    result = run_extract(tmp_path, f"duckdb:///{wh}")
    assert result.success
    invoices = metadata(result, "ledger_invoices")
    assert (invoices["rows_fetched"], invoices["rows_inserted"]) == (4, 4)
    assert invoices["dagster/row_count"] == 4
    assert invoices["cursor"] == "2024-03-03 10:00:00"  # the 2099 row never moves it
    assert (invoices["updated_at_future_rows"], invoices["updated_at_future_keys"]) == (
        1,
        ["I-2099"],
    )
    assert invoices["full_compare"] is True and invoices["full_compare_reason"] == "first extract"
    assert (invoices["deleted_keys_new"], invoices["deleted_keys_total"]) == (0, 0)
    assert "optional_in_use" not in invoices
    payments = metadata(result, "ledger_payments")
    assert payments["null_key_rows"] == 1
    assert payments["optional_in_use"] == ["payments.customer_id", "payments.currency_code"]
    contacts = metadata(result, "ledger_contacts")
    assert (contacts["optional_in_use"], contacts["dagster/row_count"]) == (["contacts"], 1)
    assert landed(tmp_path, "invoices", "invoice_id")[1][6] == Decimal("12345678.91")


def test_run_config_reaches_the_engine_and_deletes_are_counted(tmp_path):
    wh = write_duckdb_ledger(tmp_path / "wh.duckdb", LEDGER)
    assert run_extract(tmp_path, f"duckdb:///{wh}").success
    con = duckdb.connect(str(wh))
    con.execute("delete from ledger.invoices where invoice_id = 'I-2'")
    con.close()
    result = run_extract(tmp_path, f"duckdb:///{wh}", config={"overlap_minutes": 0})
    invoices = metadata(result, "ledger_invoices")
    assert invoices["full_compare"] is False
    assert invoices["fetched_since"] == "2024-03-03 10:00:00"  # the cursor, no overlap
    assert (invoices["deleted_keys_new"], invoices["deleted_keys_total"]) == (1, 1)
    assert invoices["keys_read"] == 3
    assert len(landed(tmp_path, "invoices", "invoice_id")) == 4  # I-2's last row stays
    result = run_extract(tmp_path, f"duckdb:///{wh}", config={"full_compare_every_days": 0})
    invoices = metadata(result, "ledger_invoices")
    assert invoices["full_compare"] is True and invoices["deleted_keys_new"] == 0


def test_a_negative_interval_fails_naming_the_run_config_key(tmp_path):
    wh = write_duckdb_ledger(tmp_path / "wh.duckdb", LEDGER)
    [ledger_invoices] = [a for a in extract_assets if a.key.path[-1] == "ledger_invoices"]
    with pytest.raises(Exception, match="full_compare_every_days must be zero or more"):
        run_extract(
            tmp_path,
            f"duckdb:///{wh}",
            config={"full_compare_every_days": -1},
            selection=[ledger_invoices],
        )


def test_a_contract_violation_fails_the_run_naming_table_column_and_file(tmp_path):
    wh = write_duckdb_ledger(tmp_path / "wh.duckdb", LEDGER)
    con = duckdb.connect(str(wh))
    con.execute("alter table ledger.invoices alter column total type double")
    con.close()
    [ledger_invoices] = [a for a in extract_assets if a.key.path[-1] == "ledger_invoices"]
    with pytest.raises(Exception) as failure:
        run_extract(tmp_path, f"duckdb:///{wh}", selection=[ledger_invoices])
    message = str(failure.value)
    assert "'invoices'" in message and "sql/invoices.sql" in message
    assert "'total' is double, a binary float" in message


@pytest.mark.postgres
def test_extract_from_postgresql_streams_exact_decimals_and_is_incremental(tmp_path, postgres_url):
    write_postgres_ledger(postgres_url, LEDGER)
    result = run_extract(tmp_path, postgres_url)
    assert result.success
    assert [(r[0], r[6]) for r in landed(tmp_path, "invoices", "invoice_id")][:3] == [
        ("I-1", Decimal("0.10")),
        ("I-2", Decimal("12345678.91")),
        ("I-2099", Decimal("100.00")),
    ]
    write_postgres_ledger(
        postgres_url, {"invoices": [invoice("I-9", updated_at="2024-05-01 00:00:00")]}
    )
    result = run_extract(tmp_path, postgres_url, config={"overlap_minutes": 0})
    meta = metadata(result, "ledger_invoices")
    # the 2099 row is read again every run (it is after the cursor), unchanged
    assert (meta["rows_fetched"], meta["rows_inserted"], meta["rows_unchanged"]) == (2, 1, 1)
    assert landed(tmp_path, "payments", "payment_id")[0][2] == Decimal("0.10")


@pytest.mark.postgres
def test_postgres_password_never_appears_in_metadata_or_errors(tmp_path, postgres_url):
    secret_url = postgres_url.replace("postgres@", "postgres:s3cr3t-pw@")
    write_postgres_ledger(postgres_url, LEDGER)
    [ledger_customers] = [a for a in extract_assets if a.key.path[-1] == "ledger_customers"]
    result = run_extract(tmp_path, secret_url, selection=[ledger_customers])  # trust auth
    meta = metadata(result, "ledger_customers")
    assert "s3cr3t-pw" not in str(meta) and "***" in meta["warehouse"]
    bad = secret_url.replace("127.0.0.1:5432", "127.0.0.1:1")
    (tmp_path / "bad").mkdir()
    with pytest.raises(Exception) as failure:
        run_extract(tmp_path / "bad", bad, selection=[ledger_customers])
    assert "s3cr3t-pw" not in str(failure.value)
    assert "CHASER_WAREHOUSE_URL" in str(failure.value)
    assert "Connection refused" in str(failure.value)
