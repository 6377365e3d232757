"""Every extract failure names what to fix (variable, SQL file, table, column, row key), writes
nothing, never shows a password, and money that does not fit DECIMAL(18,2) exactly is refused."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pyarrow as pa
import pytest

from chaser_pipeline.ledger.contract import LEDGER_TABLES, ContractViolation, validate_schema
from chaser_pipeline.ledger.warehouse import ExtractQueryError
from chaser_pipeline.settings import ConfigError
from tests.support.ledger import (
    POSTGRES_ADMIN_URL,
    Landing,
    LedgerWarehouse,
    customer,
    invoice,
    ledger_warehouse,
    payment,
    write_sql_folder,
)

NOW = "2024-06-01 00:00:00"


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path) -> LedgerWarehouse:
    return ledger_warehouse(request, tmp_path)


@pytest.fixture
def landing(tmp_path, warehouse):
    landing = Landing(tmp_path / "pipeline.duckdb", warehouse)
    yield landing
    landing.close()


def sql_folder(tmp_path, **replace: str):
    """The test warehouse's SQL files, with `<table>=<new select list>` swapped in."""
    folder = write_sql_folder(tmp_path / "sql")
    for table, columns in replace.items():
        (folder / f"{table}.sql").write_text(
            f"select {columns} from ledger.{table} where updated_at > $1::timestamp"
        )
    return folder


# Columns


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
    assert "(and, optionally, customer_id, currency_code)" in message


def test_optional_columns_may_be_missing_but_never_mistyped():
    payments = LEDGER_TABLES["payments"]
    required = [(c, pa.string()) for c in payments.required_column_names]
    typed = {"amount": pa.decimal128(18, 2), "paid_at": pa.timestamp("us")}
    typed |= {"updated_at": pa.timestamp("us"), "is_reversed": pa.bool_()}
    schema = pa.schema([(c, typed.get(c, t)) for c, t in required])
    validate_schema(payments, schema)  # no optional column: fine
    with pytest.raises(ContractViolation, match="column 'currency_code' is int64, expected text"):
        validate_schema(payments, schema.append(pa.field("currency_code", pa.int64())))


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_contract_violation_names_table_column_and_file_and_writes_nothing(
    tmp_path, warehouse, landing
):
    warehouse.write({"invoices": [invoice("I-1")]})
    landing.extract("invoices", NOW)
    before = landing.rows("invoices")
    warehouse.execute("alter table ledger.invoices rename to invoices_raw")
    warehouse.execute(
        "create view ledger.invoices as select * replace (total::double as total, "
        "due_date::varchar as due_date, timestamp '2024-05-01' as updated_at) "
        "from ledger.invoices_raw"
    )
    with pytest.raises(ContractViolation) as failure:
        landing.extract("invoices", "2024-06-02")
    message = str(failure.value)
    assert "'invoices'" in message and "sql/invoices.sql" in message
    assert "'total' is double, a binary float" in message
    assert "'due_date' is string, expected DATE" in message
    assert landing.rows("invoices") == before


def test_a_query_that_cannot_run_names_the_sql_file(warehouse, landing):
    warehouse.write({"payments": [payment("P-1")]})
    warehouse.execute("alter table ledger.payments drop column paid_at")
    with pytest.raises(ExtractQueryError) as failure:
        landing.extract("payments", NOW)
    message = str(failure.value)
    assert "sql/payments.sql failed against" in message and "paid_at" in message
    assert "Edit sql/payments.sql" in message
    assert "OperationalError" not in message and "Query was" not in message


def test_a_missing_required_sql_file_is_named(tmp_path, warehouse):
    folder = write_sql_folder(tmp_path / "sql")
    (folder / "invoices.sql").unlink()
    landing = Landing(tmp_path / "pipeline.duckdb", warehouse.write({}), sql_folder=folder)
    with pytest.raises(ContractViolation, match=r"sql/invoices.sql is missing .*required"):
        landing.extract("invoices", NOW)
    landing.close()


# Money


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
@pytest.mark.parametrize(
    "expression",
    ["total::decimal(38,2) * 100000000000000", "99999999999999999::bigint"],
    ids=["decimal-38-2", "bigint"],
)
def test_duckdb_money_too_large_for_decimal_18_2_is_refused_naming_the_row(
    tmp_path, warehouse, expression
):
    warehouse.write({"invoices": [invoice("I-1"), invoice("I-2", total="1000.00")]})
    columns = ", ".join(
        f"{expression} as total" if c == "total" else c
        for c in LEDGER_TABLES["invoices"].column_names
    )
    landing = Landing(
        tmp_path / "pipeline.duckdb", warehouse, sql_folder=sql_folder(tmp_path, invoices=columns)
    )
    with pytest.raises(ContractViolation) as failure:
        landing.extract("invoices", NOW)
    message = str(failure.value)
    assert "Ledger table 'invoices', column 'total'" in message
    assert "invoice_id = 'I-2'" in message and "sql/invoices.sql" in message
    assert landing.con.execute("select count(*) from landing.invoices").fetchall() == [(0,)]
    landing.close()


@pytest.mark.postgres
def test_postgres_numeric_without_a_scale_is_refused_not_rounded(tmp_path, postgres_url):
    warehouse = LedgerWarehouse("postgresql", url=postgres_url).write(
        {"invoices": [invoice("I-1"), invoice("I-2"), invoice("I-3")]}
    )
    warehouse.execute("alter table ledger.invoices alter column total type numeric")
    warehouse.execute(
        "update ledger.invoices set total = case invoice_id when 'I-1' then 100.005 "
        "when 'I-2' then 100.000 else 100.5 end"
    )
    landing = Landing(tmp_path / "pipeline.duckdb", warehouse)
    with pytest.raises(ContractViolation) as failure:
        landing.extract("invoices", NOW)
    message = str(failure.value)
    assert "Ledger table 'invoices', column 'total': 1 value(s)" in message
    assert "invoice_id = 'I-1': 100.005" in message and "sql/invoices.sql" in message

    warehouse.execute("update ledger.invoices set total = 100.01 where invoice_id = 'I-1'")
    landing.extract("invoices", NOW)  # 100.000 and 100.5 fit exactly
    assert landing.rows("invoices", "invoice_id", "total") == [
        ("I-1", Decimal("100.01")),
        ("I-2", Decimal("100.00")),
        ("I-3", Decimal("100.50")),
    ]
    landing.close()


@pytest.mark.postgres
def test_postgres_numeric_with_more_than_two_decimals_is_refused_by_its_type(
    tmp_path, postgres_url
):
    warehouse = LedgerWarehouse("postgresql", url=postgres_url).write(
        {"invoices": [invoice("I-1")]}
    )
    warehouse.execute("alter table ledger.invoices alter column total type numeric(18,3)")
    landing = Landing(tmp_path / "pipeline.duckdb", warehouse)
    with pytest.raises(ContractViolation, match=r"'total' is PostgreSQL numeric\(18,3\)"):
        landing.extract("invoices", NOW)
    landing.close()


@pytest.mark.postgres
@pytest.mark.parametrize("declared", ["numeric", "numeric(18,2)"])
def test_postgres_not_a_number_is_refused(tmp_path, postgres_url, declared):
    warehouse = LedgerWarehouse("postgresql", url=postgres_url).write(
        {"payments": [payment("P-1")]}
    )
    warehouse.execute(f"alter table ledger.payments alter column amount type {declared}")
    warehouse.execute("update ledger.payments set amount = 'NaN'")
    landing = Landing(tmp_path / "pipeline.duckdb", warehouse)
    with pytest.raises(ContractViolation, match=r"column 'amount'.*payment_id = 'P-1': nan"):
        landing.extract("payments", NOW)
    landing.close()


# Text


@pytest.fixture
def sql_ascii_url():
    """A PostgreSQL database with encoding SQL_ASCII, which stores any bytes as text."""
    import adbc_driver_postgresql.dbapi as pg

    from tests.support.ledger import postgres_available

    if reason := postgres_available():
        pytest.skip(f"no PostgreSQL server: {reason}")
    name = f"chaser_test_ascii_{uuid.uuid4().hex[:12]}"
    admin = pg.connect(POSTGRES_ADMIN_URL, autocommit=True)
    try:
        admin.cursor().execute(
            f"create database \"{name}\" encoding 'SQL_ASCII' template template0 "
            "lc_collate 'C' lc_ctype 'C'"
        )
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.cursor().execute(f'drop database if exists "{name}" with (force)')
        admin.close()


@pytest.mark.postgres
def test_invalid_utf8_in_one_postgres_row_names_table_column_and_key(tmp_path, sql_ascii_url):
    warehouse = LedgerWarehouse("postgresql", url=sql_ascii_url).write(
        {"customers": [customer("C-1"), customer("C-2"), customer("C-3")]}
    )
    warehouse.execute(
        "update ledger.customers set company_name = E'Caf\\xe9 Ltd' where customer_id = 'C-2'"
    )
    landing = Landing(tmp_path / "pipeline.duckdb", warehouse)
    with pytest.raises(ContractViolation) as failure:
        landing.extract("customers", NOW)
    message = str(failure.value)
    assert "Ledger table 'customers', column 'company_name', row customer_id = 'C-2'" in message
    assert "not valid UTF-8 ('Caf\\xe9 Ltd')" in message and "sql/customers.sql" in message
    landing.close()


# Connections


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda url: url.replace("127.0.0.1:5432", "127.0.0.1:1"), "Connection refused"),
        (lambda url: url.rsplit("/", 1)[0] + "/no_such_db", 'database "no_such_db" does not exist'),
    ],
    ids=["refused", "no-database"],
)
def test_a_postgres_connection_failure_says_why_and_names_the_variable(
    tmp_path, postgres_url, change, reason
):
    url = change(postgres_url.replace("postgres@", "postgres:s3cr3t-pw@"))
    landing = Landing(tmp_path / "pipeline.duckdb", LedgerWarehouse("postgresql", url=url))
    with pytest.raises(ConfigError) as failure:
        landing.extract("invoices", NOW)
    message = str(failure.value)
    assert reason in message and "CHASER_WAREHOUSE_URL" in message
    assert "s3cr3t-pw" not in message and "postgres:***@" in message
    assert "OperationalError" not in message
    landing.close()


@pytest.mark.postgres
def test_a_postgres_permission_failure_names_the_user_and_the_file(tmp_path, postgres_url):
    import adbc_driver_postgresql.dbapi as pg

    LedgerWarehouse("postgresql", url=postgres_url).write({"invoices": [invoice("I-1")]})
    role = f"chaser_reader_{uuid.uuid4().hex[:8]}"
    admin = pg.connect(postgres_url, autocommit=True)
    try:
        admin.cursor().execute(f"create role {role} login")
        url = postgres_url.replace("postgres@", f"{role}@")
        landing = Landing(tmp_path / "pipeline.duckdb", LedgerWarehouse("postgresql", url=url))
        with pytest.raises(ExtractQueryError) as failure:
            landing.extract("invoices", NOW)
        message = str(failure.value)
        assert "permission denied" in message and "sql/invoices.sql" in message
        assert "Grant the user in CHASER_WAREHOUSE_URL SELECT" in message
        landing.close()
    finally:
        admin.cursor().execute(f"drop role if exists {role}")
        admin.close()


def test_a_file_that_is_not_duckdb_names_the_variable(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    path.write_text("not a database")
    landing = Landing(tmp_path / "pipeline.duckdb", LedgerWarehouse("duckdb", path=path))
    with pytest.raises(
        ConfigError, match=r"not a valid DuckDB database file.*CHASER_WAREHOUSE_URL"
    ):
        landing.extract("invoices", NOW)
    landing.close()
