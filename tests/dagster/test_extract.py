"""Extract contract: each ledger table lands in DuckDB incrementally by updated_at, merged by key,
from a DuckDB or PostgreSQL warehouse; a contract violation fails naming the SQL file, writing nothing."""

from __future__ import annotations

import os
import time
from datetime import datetime
from decimal import Decimal

import dagster as dg
import duckdb
import pyarrow as pa
import pytest
from dagster_duckdb import DuckDBResource

from chaser_pipeline.defs.ledger.assets import extract_assets as build_extract_assets
from chaser_pipeline.defs.ledger.resources import WarehouseResource
from chaser_pipeline.ledger.contract import LEDGER_TABLES, ContractViolation, validate_schema
from chaser_pipeline.ledger.warehouse import Warehouse
from chaser_pipeline.settings import load_settings
from tests.support.ledger import customer, invoice, write_duckdb_ledger, write_postgres_ledger

extract_assets = build_extract_assets(load_settings())

LEDGER = {
    "customers": [customer("C-1"), customer("C-2")],
    "invoices": [
        invoice("I-1", total="0.10"),
        invoice("I-2", total="12345678.91", updated_at="2024-03-02 10:00:00"),
        invoice("I-3", total="0.30", updated_at="2024-03-03 10:00:00"),
    ],
    "payments": [
        {
            "payment_id": "P-1",
            "invoice_id": "I-1",
            "amount": Decimal("0.10"),
            "paid_at": datetime(2024, 3, 5),
            "is_reversed": False,
            "updated_at": datetime(2024, 3, 5),
        },
    ],
}


def run_extract(
    tmp_path, url: str, *, config: dict | None = None, selection=None
) -> dg.ExecuteInProcessResult:
    run_config = None
    if config:
        run_config = {"ops": {a.key.path[-1]: {"config": config} for a in extract_assets}}
    return dg.materialize(
        extract_assets if selection is None else selection,
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


def test_first_run_copies_everything_with_exact_money(tmp_path):
    wh = write_duckdb_ledger(tmp_path / "wh.duckdb", LEDGER)
    result = run_extract(tmp_path, f"duckdb:///{wh}")
    assert result.success
    rows = landed(tmp_path, "invoices", "invoice_id")
    assert [(r[0], r[6]) for r in rows] == [
        ("I-1", Decimal("0.10")),
        ("I-2", Decimal("12345678.91")),
        ("I-3", Decimal("0.30")),
    ]
    meta = metadata(result, "ledger_invoices")
    assert (meta["rows_fetched"], meta["rows_inserted"], meta["rows_updated"]) == (3, 3, 0)
    assert meta["dagster/row_count"] == 3
    assert meta["cursor"] == "2024-03-03 10:00:00"
    assert [c.name for c in meta["dagster/column_schema"].columns][:3] == [
        "invoice_id",
        "invoice_number",
        "customer_id",
    ]
    assert metadata(result, "ledger_credit_notes")["dagster/row_count"] == 0


def test_incremental_run_picks_up_exactly_the_changed_rows(tmp_path):
    wh = write_duckdb_ledger(tmp_path / "wh.duckdb", LEDGER)
    assert run_extract(tmp_path, f"duckdb:///{wh}").success
    con = duckdb.connect(str(wh))
    con.execute(
        "update ledger.invoices set total = 0.20, updated_at = timestamp '2024-04-01 00:00' "
        "where invoice_id = 'I-1'"
    )
    con.execute(
        "insert into ledger.invoices select * replace ('I-4' as invoice_id, "
        "timestamp '2024-04-02 00:00' as updated_at) from ledger.invoices where invoice_id = 'I-3'"
    )
    con.close()
    # no overlap: the query sees only rows changed after the cursor
    result = run_extract(tmp_path, f"duckdb:///{wh}", config={"overlap_minutes": 0})
    meta = metadata(result, "ledger_invoices")
    assert (meta["rows_fetched"], meta["rows_inserted"], meta["rows_updated"]) == (2, 1, 1)
    assert meta["fetched_since"] == "2024-03-03 10:00:00"
    assert metadata(result, "ledger_customers")["rows_fetched"] == 0
    rows = {r[0]: r[6] for r in landed(tmp_path, "invoices", "invoice_id")}
    assert rows == {
        "I-1": Decimal("0.20"),
        "I-2": Decimal("12345678.91"),
        "I-3": Decimal("0.30"),
        "I-4": Decimal("0.30"),
    }


def test_rerun_of_the_same_window_changes_nothing(tmp_path):
    wh = write_duckdb_ledger(tmp_path / "wh.duckdb", LEDGER)
    assert run_extract(tmp_path, f"duckdb:///{wh}").success
    before = landed(tmp_path, "invoices", "invoice_id")
    result = run_extract(tmp_path, f"duckdb:///{wh}", config={"overlap_minutes": 60 * 24 * 365})
    meta = metadata(result, "ledger_invoices")
    assert (
        meta["rows_fetched"],
        meta["rows_inserted"],
        meta["rows_updated"],
        meta["rows_unchanged"],
    ) == (3, 0, 0, 3)
    assert landed(tmp_path, "invoices", "invoice_id") == before


def test_duplicate_keys_in_the_source_stay_visible_to_the_models(tmp_path):
    dupes = {
        "invoices": [invoice("I-1"), invoice("I-1", total="5.00", updated_at="2024-03-09 00:00:00")]
    }
    wh = write_duckdb_ledger(tmp_path / "wh.duckdb", dupes)
    assert run_extract(tmp_path, f"duckdb:///{wh}").success
    assert len(landed(tmp_path, "invoices", "updated_at")) == 2


def test_full_refresh_drops_rows_the_source_no_longer_has(tmp_path):
    wh = write_duckdb_ledger(tmp_path / "wh.duckdb", LEDGER)
    assert run_extract(tmp_path, f"duckdb:///{wh}").success
    con = duckdb.connect(str(wh))
    con.execute("delete from ledger.invoices where invoice_id = 'I-2'")
    con.close()
    result = run_extract(tmp_path, f"duckdb:///{wh}", config={"full_refresh": True})
    assert metadata(result, "ledger_invoices")["rows_deleted"] == 1
    assert [r[0] for r in landed(tmp_path, "invoices", "invoice_id")] == ["I-1", "I-3"]


def test_contract_violation_fails_naming_table_column_and_file_and_writes_nothing(tmp_path):
    wh = write_duckdb_ledger(tmp_path / "wh.duckdb", LEDGER)
    assert run_extract(tmp_path, f"duckdb:///{wh}").success
    before = landed(tmp_path, "invoices", "invoice_id")
    con = duckdb.connect(str(wh))
    con.execute("alter table ledger.invoices rename to invoices_raw")
    con.execute(
        "create view ledger.invoices as select * replace (total::double as total, "
        "due_date::varchar as due_date, timestamp '2025-01-01' as updated_at) "
        "from ledger.invoices_raw"
    )
    con.close()
    [ledger_invoices] = [a for a in extract_assets if a.key.path[-1] == "ledger_invoices"]
    with pytest.raises(Exception) as failure:
        run_extract(tmp_path, f"duckdb:///{wh}", selection=[ledger_invoices])
    message = str(failure.value)
    assert "'invoices'" in message and "sql/invoices.sql" in message
    assert "'total' is double, a binary float" in message
    assert "'due_date' is string, expected DATE" in message
    assert landed(tmp_path, "invoices", "invoice_id") == before


def test_missing_or_extra_columns_are_named_with_the_file_to_edit():
    schema = pa.schema(
        [(c, pa.string()) for c in LEDGER_TABLES["payments"].column_names if c != "paid_at"]
        + [("note", pa.string())]
    )
    with pytest.raises(ContractViolation) as failure:
        validate_schema(LEDGER_TABLES["payments"], schema)
    message = str(failure.value)
    assert "missing column 'paid_at' (TIMESTAMP)" in message
    assert "unexpected column(s) 'note'" in message
    assert "Edit sql/payments.sql" in message


def test_a_query_that_cannot_run_names_the_sql_file(tmp_path):
    wh = write_duckdb_ledger(tmp_path / "wh.duckdb", LEDGER)
    con = duckdb.connect(str(wh))
    con.execute("alter table ledger.payments drop column paid_at")
    con.close()
    [ledger_payments] = [a for a in extract_assets if a.key.path[-1] == "ledger_payments"]
    with pytest.raises(Exception) as failure:
        run_extract(tmp_path, f"duckdb:///{wh}", selection=[ledger_payments])
    assert "sql/payments.sql failed against" in str(failure.value)
    assert "paid_at" in str(failure.value)


@pytest.mark.postgres
def test_extract_from_postgresql_streams_exact_decimals_and_is_incremental(tmp_path, postgres_url):
    write_postgres_ledger(postgres_url, LEDGER)
    result = run_extract(tmp_path, postgres_url)
    assert result.success
    assert [(r[0], r[6]) for r in landed(tmp_path, "invoices", "invoice_id")] == [
        ("I-1", Decimal("0.10")),
        ("I-2", Decimal("12345678.91")),
        ("I-3", Decimal("0.30")),
    ]
    meta = metadata(result, "ledger_invoices")
    assert (
        "postgres" not in str(meta["warehouse"])
        or "***" in str(meta["warehouse"])
        or "@" in str(meta["warehouse"])
    )
    write_postgres_ledger(
        postgres_url, {"invoices": [invoice("I-9", updated_at="2024-05-01 00:00:00")]}
    )
    result = run_extract(tmp_path, postgres_url, config={"overlap_minutes": 0})
    meta = metadata(result, "ledger_invoices")
    assert (meta["rows_fetched"], meta["rows_inserted"]) == (1, 1)
    assert landed(tmp_path, "payments", "payment_id")[0][2] == Decimal("0.10")


@pytest.mark.postgres
def test_postgres_password_never_appears_in_metadata_or_errors(tmp_path, postgres_url):
    secret_url = postgres_url.replace("postgres@", "postgres:s3cr3t-pw@")
    write_postgres_ledger(postgres_url, LEDGER)
    result = run_extract(tmp_path, secret_url)  # trust auth accepts any password
    meta = metadata(result, "ledger_customers")
    assert "s3cr3t-pw" not in str(meta) and "***" in meta["warehouse"]
    bad = secret_url.replace("127.0.0.1:5432", "127.0.0.1:1")
    with pytest.raises(Exception) as failure:
        run_extract(tmp_path / "x", bad) if (tmp_path / "x").mkdir() is None else None
    assert "s3cr3t-pw" not in str(failure.value)
    assert "CHASER_WAREHOUSE_URL" in str(failure.value)


# The cursor is naive UTC; a warehouse whose updated_at is timestamptz must still be read in UTC,
# whatever the session's time zone (here one behind UTC), or hours of changes are skipped.
TZ_QUERY = "select id from t where updated_at > $1::timestamp order by id"
TZ_SINCE = datetime(2026, 11, 18, 15, 0)  # rows at 16:00 and 20:00 UTC are both newer


@pytest.fixture
def process_behind_utc():
    """The process (so DuckDB's default session) runs in America/New_York; restored after."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_duckdb_timestamptz_cursor_is_read_in_utc(tmp_path, process_behind_utc):
    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table t (id int, updated_at timestamptz)")
    con.execute("insert into t values (1, '2026-11-18 16:00:00+00'), (2, '2026-11-18 20:00:00+00')")
    con.close()
    with Warehouse.from_url(f"duckdb:///{path}").stream(TZ_QUERY, TZ_SINCE) as reader:
        assert reader.read_all().column("id").to_pylist() == [1, 2]


@pytest.mark.postgres
def test_postgres_timestamptz_cursor_is_read_in_utc(postgres_url):
    import adbc_driver_postgresql.dbapi as pg

    database = postgres_url.rsplit("/", 1)[1]
    conn = pg.connect(postgres_url, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute(f"alter database \"{database}\" set timezone to 'America/New_York'")
        cur.execute("create table t (id int, updated_at timestamptz)")
        cur.execute(
            "insert into t values (1, '2026-11-18 16:00:00+00'), (2, '2026-11-18 20:00:00+00')"
        )
    finally:
        conn.close()
    with Warehouse.from_url(postgres_url).stream(TZ_QUERY, TZ_SINCE) as reader:
        assert reader.read_all().column("id").to_pylist() == [1, 2]
