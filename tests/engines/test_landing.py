"""Each ledger table lands from a DuckDB or PostgreSQL warehouse incrementally by updated_at, merged
by key, with every contract column; no row is lost on the way in (NULL keys, NULL or future or
backward updated_at)."""

from __future__ import annotations

import os
import time
from datetime import datetime
from decimal import Decimal

import duckdb
import pytest

from chaser_pipeline.ledger.contract import LEDGER_TABLES
from chaser_pipeline.ledger.landing import landed_version
from chaser_pipeline.ledger.warehouse import Warehouse, with_cursor_literal
from tests.support.ledger import (
    Landing,
    LedgerWarehouse,
    contact,
    invoice,
    ledger_warehouse,
    payment,
    write_sql_folder,
)

NOW = "2024-06-01 00:00:00"
LATER = "2024-06-02 00:00:00"

INVOICES = [
    invoice("I-1", total="0.10"),
    invoice("I-2", total="12345678.91", updated_at="2024-03-02 10:00:00"),
    invoice("I-3", total="0.30", updated_at="2024-03-03 10:00:00"),
]


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path) -> LedgerWarehouse:
    return ledger_warehouse(request, tmp_path)


@pytest.fixture
def landing(tmp_path, warehouse):
    landing = Landing(tmp_path / "pipeline.duckdb", warehouse)
    yield landing
    landing.close()


def test_first_run_copies_everything_with_exact_money(warehouse, landing):
    warehouse.write({"invoices": INVOICES})
    result = landing.extract("invoices", NOW)
    assert landing.rows("invoices", "invoice_id", "total") == [
        ("I-1", Decimal("0.10")),
        ("I-2", Decimal("12345678.91")),
        ("I-3", Decimal("0.30")),
    ]
    assert (result.rows_fetched, result.landed.inserted, result.landed.updated) == (3, 3, 0)
    assert result.full_compare == "first extract"
    assert result.landed.cursor == datetime(2024, 3, 3, 10)


def test_incremental_run_reads_only_rows_changed_since_the_cursor(warehouse, landing):
    warehouse.write({"invoices": INVOICES})
    landing.extract("invoices", NOW)
    warehouse.execute(
        "update ledger.invoices set total = 0.20, updated_at = timestamp '2024-04-01 00:00' "
        "where invoice_id = 'I-1'"
    )
    warehouse.write({"invoices": [invoice("I-4", updated_at="2024-04-02 00:00:00")]})
    result = landing.extract("invoices", LATER)
    assert result.full_compare == ""
    assert result.since == datetime(2024, 3, 3, 10)
    assert (result.rows_fetched, result.landed.inserted, result.landed.updated) == (2, 1, 1)
    assert landing.rows("invoices", "invoice_id", "total") == [
        ("I-1", Decimal("0.20")),
        ("I-2", Decimal("12345678.91")),
        ("I-3", Decimal("0.30")),
        ("I-4", Decimal("100.00")),
    ]


def test_rereading_the_same_window_changes_nothing(warehouse, landing):
    warehouse.write({"invoices": INVOICES})
    landing.extract("invoices", NOW)
    before = landing.rows("invoices")
    result = landing.extract("invoices", LATER, overlap_minutes=60 * 24 * 365)
    assert (result.rows_fetched, result.landed.inserted, result.landed.unchanged) == (3, 0, 3)
    assert landing.rows("invoices") == before


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_duplicate_keys_stay_visible_and_a_full_comparison_drops_one_gone(warehouse, landing):
    warehouse.write(
        {"invoices": [invoice("I-1"), invoice("I-1", total="5.00", updated_at="2024-03-09")]}
    )
    landing.extract("invoices", NOW)
    assert len(landing.rows("invoices")) == 2
    warehouse.execute("delete from ledger.invoices where total = 5.00")
    landing.extract("invoices", NOW)  # incremental: nothing after the cursor, both rows stay
    assert len(landing.rows("invoices")) == 2
    result = landing.extract("invoices", LATER, full_refresh=True)
    assert landing.rows("invoices", "invoice_id", "total") == [("I-1", Decimal("100.00"))]
    assert result.landed.updated == 1


def state_of(landing) -> list[tuple]:
    return landing.con.execute("select * from landing._extract_state order by all").fetchall()


PROBED_CHANGES = {
    "a row changed": lambda w: w.execute(
        "update ledger.payments set amount = 11.00, updated_at = timestamp '2024-06-02 12:00' "
        "where payment_id = 'P-1'"
    ),
    "a NULL-key row added behind the cursor": lambda w: w.write(
        {"payments": [payment(None, amount=Decimal("3.00"), updated_at=datetime(2024, 1, 1))]}
    ),
    "a key deleted": lambda w: w.execute("delete from ledger.payments where payment_id = 'P-2'"),
}


@pytest.mark.parametrize("change", list(PROBED_CHANGES))
def test_a_probe_lands_nothing_it_finds_changed_and_keeps_an_extract_that_changes_nothing(
    warehouse, landing, change
):
    """The quiet check of `chaser-pipeline sync` extracts with land_changes=False: a change of
    any kind (a row, a NULL-key row, a deletion) is rolled back whole, landing and extract
    state, and left for the jobs' own extract to land and report; an extract that changes
    nothing is kept, as the extract it is."""
    warehouse.write({"payments": [payment("P-1"), payment("P-2")]})
    landing.extract("payments", NOW)
    rows, state = landing.rows("payments"), state_of(landing)
    version = landed_version(landing.con, LEDGER_TABLES["payments"])

    quiet = landing.extract("payments", LATER, land_changes=False, overlap_minutes=60 * 24 * 365)
    assert quiet.landed.kept and quiet.landed.changes == 0 and quiet.rows_fetched == 2
    assert landing.rows("payments") == rows
    assert state_of(landing) != state  # kept: its run is recorded
    state = state_of(landing)

    PROBED_CHANGES[change](warehouse)
    probe = landing.extract("payments", "2024-06-03", land_changes=False)
    assert not probe.landed.kept
    assert landing.rows("payments") == rows and state_of(landing) == state
    assert landing.deleted() == []
    assert landed_version(landing.con, LEDGER_TABLES["payments"]) == version

    landed = landing.extract("payments", "2024-06-03")
    assert landed.landed.kept
    assert landed_version(landing.con, LEDGER_TABLES["payments"]) != version


def test_an_empty_landing_takes_every_row_as_the_comparison_would(warehouse, landing):
    """Into an empty landing table (a first extract, a run-local DuckDB rebuilt) rows are
    inserted without comparing them: what lands must be exactly what the row-by-row comparison
    then finds unchanged, duplicates and NULL keys included, and a key recorded as deleted in a
    restored state that the warehouse has leaves deleted_keys."""
    warehouse.write(
        {
            "payments": [
                payment("P-1"),
                payment("P-2", amount=Decimal("7.25")),
                payment("P-2", amount=Decimal("7.26"), updated_at=datetime(2024, 3, 9)),
                payment(None, amount=Decimal("2782.30")),
            ]
        }
    )
    landing.extract("customers", NOW)  # creates landing.deleted_keys
    landing.con.execute(
        "insert into landing.deleted_keys values ('payments', 'P-1', '2024-05-01'), "
        "('payments', 'P-9', '2024-05-01')"
    )
    first = landing.extract("payments", NOW)
    assert landing.rows("payments", "payment_id", "amount") == [
        (None, Decimal("2782.30")),
        ("P-1", Decimal("10.00")),
        ("P-2", Decimal("7.25")),
        ("P-2", Decimal("7.26")),
    ]
    landed = first.landed
    assert (landed.inserted, landed.updated, landed.unchanged, landed.null_key_rows) == (2, 0, 0, 1)
    assert (landed.deleted_new, landed.deleted_returned, landed.deleted_total) == (0, 1, 1)
    assert landing.deleted() == [("payments", "P-9", datetime(2024, 5, 1))]

    before = landing.rows("payments")
    again = landing.extract("payments", LATER, full_refresh=True)  # every row compared
    assert (again.landed.inserted, again.landed.updated, again.landed.unchanged) == (0, 0, 2)
    assert landing.rows("payments") == before


# Optional parts (LEDGER_CONTRACT.md "Recipients and unapplied cash")


def test_a_warehouse_without_the_optional_parts_lands_them_as_null_and_empty(tmp_path, warehouse):
    warehouse.write({"payments": [payment("P-1")]}, optional=False)
    landing = Landing(
        tmp_path / "pipeline.duckdb",
        warehouse,
        sql_folder=write_sql_folder(tmp_path / "sql", optional=False),
    )
    payments = landing.extract("payments", NOW)
    allocations = landing.extract("credit_allocations", NOW)
    contacts = landing.extract("contacts", NOW)
    assert landing.rows("payments", "payment_id", "customer_id", "currency_code") == [
        ("P-1", None, None)
    ]
    assert (payments.optional_in_use, payments.optional_missing) == (
        (),
        ("payments.customer_id", "payments.currency_code"),
    )
    assert allocations.optional_missing == ("credit_allocations.payment_id",)
    assert contacts.optional_missing == ("contacts",) and contacts.rows_fetched == 0
    for table in map(LEDGER_TABLES.get, ("payments", "credit_allocations", "contacts")):
        columns = landing.con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'landing' and table_name = ? order by ordinal_position",
            [table.name],
        ).fetchall()
        assert [c for (c,) in columns] == table.column_names, table.name
    landing.close()


def test_a_warehouse_with_the_optional_parts_lands_them(warehouse, landing):
    warehouse.write(
        {
            "payments": [payment("P-9", None, customer_id="C-1", currency_code="EUR")],
            "credit_allocations": [
                {
                    "allocation_id": "A-1",
                    "invoice_id": "I-1",
                    "payment_id": "P-9",
                    "amount": Decimal("5.00"),
                    "allocated_at": datetime(2024, 3, 6),
                    "is_reversed": False,
                    "updated_at": datetime(2024, 3, 6),
                }
            ],
            "contacts": [contact("K-1"), contact("K-2", is_archived=True)],
        }
    )
    payments = landing.extract("payments", NOW)
    allocations = landing.extract("credit_allocations", NOW)
    contacts = landing.extract("contacts", NOW)
    assert payments.optional_in_use == ("payments.customer_id", "payments.currency_code")
    assert allocations.optional_in_use == ("credit_allocations.payment_id",)
    assert contacts.optional_in_use == ("contacts",)
    assert landing.rows("payments", "payment_id", "invoice_id", "customer_id", "currency_code") == [
        ("P-9", None, "C-1", "EUR")
    ]
    assert landing.rows("credit_allocations", "allocation_id", "credit_note_id", "payment_id") == [
        ("A-1", None, "P-9")
    ]
    assert landing.rows("contacts", "contact_id", "is_archived") == [
        ("K-1", False),
        ("K-2", True),
    ]


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_contacts_sql_removed_later_counts_its_contacts_as_deleted(tmp_path, warehouse):
    sql = write_sql_folder(tmp_path / "sql")
    warehouse.write({"contacts": [contact("K-1")]})
    landing = Landing(tmp_path / "pipeline.duckdb", warehouse, sql_folder=sql)
    landing.extract("contacts", NOW)
    (sql / "contacts.sql").unlink()
    result = landing.extract("contacts", LATER)
    assert result.optional_missing == ("contacts",)
    assert landing.rows("contacts", "contact_id") == [("K-1",)]  # the last version stays
    assert landing.deleted() == [("contacts", "K-1", datetime(2024, 6, 2))]
    landing.close()


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_a_landing_table_from_before_the_optional_columns_gains_them_in_order(warehouse, landing):
    landing.con.execute("create schema landing")
    landing.con.execute(
        "create table landing.payments (payment_id varchar, invoice_id varchar, "
        "amount decimal(18,2), paid_at timestamp, is_reversed boolean, updated_at timestamp)"
    )
    landing.con.execute(
        "insert into landing.payments values ('P-0', 'I-0', 1, '2024-01-01', false, '2024-01-01')"
    )
    warehouse.write({"payments": [payment("P-1")]})
    landing.extract("payments", NOW)
    columns = [
        c
        for (c,) in landing.con.execute(
            "select column_name from (describe landing.payments)"
        ).fetchall()
    ]
    assert columns == LEDGER_TABLES["payments"].column_names
    assert landing.rows("payments", "payment_id") == [("P-0",), ("P-1",)]


# No row lost on the way in (issue 16)


def test_rows_with_a_null_key_are_landed_once_and_follow_the_warehouse(warehouse, landing):
    warehouse.write({"payments": [payment("P-1"), payment(None, amount=Decimal("2782.30"))]})
    first = landing.extract("payments", NOW)
    assert landing.rows("payments", "payment_id", "amount") == [
        (None, Decimal("2782.30")),
        ("P-1", Decimal("10.00")),
    ]
    assert first.landed.null_key_rows == 1

    again = landing.extract("payments", LATER)  # nothing changed: no second copy
    assert again.landed.null_key_rows == 1 and len(landing.rows("payments")) == 2

    # a second NULL-key row, dated before the cursor: the key set's NULL count shows it
    warehouse.write(
        {"payments": [payment(None, amount=Decimal("1.00"), updated_at=datetime(2024, 1, 1))]}
    )
    landing.extract("payments", "2024-06-03")
    assert landing.rows("payments", "payment_id", "amount") == [
        (None, Decimal("1.00")),
        (None, Decimal("2782.30")),
        ("P-1", Decimal("10.00")),
    ]

    # the ledger gives one a key: its NULL-key row leaves, the keyed row arrives
    warehouse.execute(
        "update ledger.payments set payment_id = 'P-2', updated_at = timestamp '2024-06-03' "
        "where amount = 2782.30"
    )
    result = landing.extract("payments", "2024-06-04")
    assert landing.rows("payments", "payment_id", "amount") == [
        (None, Decimal("1.00")),
        ("P-1", Decimal("10.00")),
        ("P-2", Decimal("2782.30")),
    ]
    assert result.landed.null_key_rows == 1
    assert landing.deleted() == []


def test_a_future_updated_at_is_reported_and_never_moves_the_cursor_past_now(warehouse, landing):
    warehouse.write(
        {"invoices": [invoice("I-1"), invoice("I-2099", updated_at="2099-01-01 00:00:00")]}
    )
    first = landing.extract("invoices", NOW)
    assert first.landed.cursor == datetime(2024, 3, 1, 10)  # not 2099
    assert (first.future_updated_at, first.future_updated_at_keys) == (1, ("I-2099",))
    warehouse.execute(
        "update ledger.invoices set total = 7, updated_at = timestamp '2024-05-01' "
        "where invoice_id = 'I-1'"
    )
    second = landing.extract("invoices", LATER)
    assert second.landed.updated == 1  # a change after the future row is still seen
    assert landing.rows("invoices", "invoice_id", "total") == [
        ("I-1", Decimal("7.00")),
        ("I-2099", Decimal("100.00")),
    ]
    assert second.landed.cursor == datetime(2024, 5, 1)


def test_a_null_updated_at_is_landed_reported_and_read_again_each_run(warehouse, landing):
    warehouse.write({"invoices": [invoice("I-1"), invoice("I-2", updated_at=None)]})
    first = landing.extract("invoices", NOW)
    assert [k for (k,) in landing.rows("invoices", "invoice_id")] == ["I-1", "I-2"]
    assert (first.null_updated_at, first.null_updated_at_keys) == (1, ("I-2",))
    assert first.landed.cursor == datetime(2024, 3, 1, 10)
    warehouse.execute("update ledger.invoices set total = 3 where invoice_id = 'I-2'")
    second = landing.extract("invoices", LATER)
    assert second.landed.updated == 1
    assert landing.rows("invoices", "invoice_id", "total") == [
        ("I-1", Decimal("100.00")),
        ("I-2", Decimal("3.00")),
    ]
    assert landing.deleted() == []


def test_a_periodic_full_comparison_catches_an_updated_at_moved_backwards(warehouse, landing):
    warehouse.write({"invoices": INVOICES})
    landing.extract("invoices", "2024-06-01")
    # changed, but dated before the cursor: no incremental read can see it
    warehouse.execute(
        "update ledger.invoices set total = 9.99, updated_at = timestamp '2024-01-01' "
        "where invoice_id = 'I-3'"
    )
    within = landing.extract("invoices", "2024-06-07 23:00:00")
    assert within.full_compare == "" and within.landed.updated == 0
    week = landing.extract("invoices", "2024-06-08 00:00:00")
    assert week.full_compare == "last full comparison at 2024-06-01 00:00"
    assert (week.landed.updated, week.landed.changed_behind_cursor) == (1, 1)
    assert landing.rows("invoices", "invoice_id", "total")[2] == ("I-3", Decimal("9.99"))
    assert week.full_compared_at == datetime(2024, 6, 8)
    state = landing.con.execute(
        "select full_compared_at from landing._extract_state where table_name = 'invoices'"
    ).fetchall()
    assert state == [(datetime(2024, 6, 8),)]
    assert landing.extract("invoices", "2024-06-09").full_compare == ""
    assert landing.extract("invoices", "2024-06-09", full_compare_every_days=0).full_compare


def test_an_emptied_landing_table_with_a_cursor_counts_the_changes_behind_it(warehouse, landing):
    """A landing table emptied by hand while its extract state keeps a cursor: the next full
    comparison lands every row without comparing them, and still counts the keys no incremental
    read would have fetched (the empty-table path with a lower bound)."""
    warehouse.write({"invoices": INVOICES})
    landing.extract("invoices", "2024-06-01")
    landing.con.execute("delete from landing.invoices")
    week = landing.extract("invoices", "2024-06-08 00:00:00")
    assert week.full_compare == "last full comparison at 2024-06-01 00:00"
    landed = week.landed
    assert (landed.inserted, landed.updated, landed.unchanged) == (3, 0, 0)
    assert landed.changed_behind_cursor == 3  # every row is dated March, long before the cursor
    assert [r[0] for r in landing.rows("invoices", "invoice_id")] == ["I-1", "I-2", "I-3"]


@pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)
def test_keys_the_cursor_missed_turn_the_run_into_a_full_comparison(warehouse, landing):
    warehouse.write({"invoices": INVOICES})
    landing.extract("invoices", NOW)
    warehouse.write({"invoices": [invoice("I-0", updated_at="2020-01-01 00:00:00")]})
    result = landing.extract("invoices", LATER)
    assert result.keys_missed_by_cursor == 1
    assert result.full_compare.startswith("1 key(s) in the warehouse were never landed")
    assert ("I-0",) in landing.rows("invoices", "invoice_id")


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


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param(
            "select * from t where updated_at > $1::timestamp or updated_at is null",
            "select * from t where updated_at > '2026-11-21 05:30:00.000001'::timestamp "
            "or updated_at is null",
            id="the contract's filter",
        ),
        pytest.param(
            "select '$1' as s, $10 as n -- since $1\nfrom t where a > $1 and b = $$ $1 $$",
            "select '$1' as s, $10 as n -- since $1\n"
            "from t where a > '2026-11-21 05:30:00.000001' and b = $$ $1 $$",
            id="strings, comments and $10 untouched",
        ),
        pytest.param("select 1 from t", "select 1 from t", id="no parameter"),
    ],
)
def test_the_postgres_cursor_is_written_in_so_copy_streams_the_rows(sql, expected):
    """ADBC's PostgreSQL driver holds a whole result in memory when a parameter is bound and
    streams it with COPY when none is (6.1M payments: 2.1 GB peak against 0.16 GB), so the
    cursor goes into the query as a literal; only real `$1` tokens are replaced."""
    assert with_cursor_literal(sql, datetime(2026, 11, 21, 5, 30, 0, 1)) == expected
