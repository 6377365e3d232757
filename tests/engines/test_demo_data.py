"""The demo warehouse speaks LEDGER_CONTRACT.md exactly, is deterministic, and holds every case."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from chaser_pipeline.demo import generator as demo_data
from chaser_pipeline.demo.generator import DemoSummary, generate_demo_warehouse

# Copied from LEDGER_CONTRACT.md on purpose: the test fails if the generator drifts from it.
CONTRACT_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "customers": [
        ("customer_id", "VARCHAR"),
        ("company_name", "VARCHAR"),
        ("contact_first_name", "VARCHAR"),
        ("contact_last_name", "VARCHAR"),
        ("email", "VARCHAR"),
        ("phone", "VARCHAR"),
        ("mobile", "VARCHAR"),
        ("address_line1", "VARCHAR"),
        ("address_line2", "VARCHAR"),
        ("city", "VARCHAR"),
        ("region", "VARCHAR"),
        ("postal_code", "VARCHAR"),
        ("country", "VARCHAR"),
        ("is_archived", "BOOLEAN"),
        ("updated_at", "TIMESTAMP"),
    ],
    "invoices": [
        ("invoice_id", "VARCHAR"),
        ("invoice_number", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("status", "VARCHAR"),
        ("currency_code", "VARCHAR"),
        ("sub_total", "DECIMAL(18,2)"),
        ("total", "DECIMAL(18,2)"),
        ("issue_date", "DATE"),
        ("due_date", "DATE"),
        ("updated_at", "TIMESTAMP"),
    ],
    "payments": [
        ("payment_id", "VARCHAR"),
        ("invoice_id", "VARCHAR"),
        ("amount", "DECIMAL(18,2)"),
        ("paid_at", "TIMESTAMP"),
        ("is_reversed", "BOOLEAN"),
        ("updated_at", "TIMESTAMP"),
    ],
    "credit_notes": [
        ("credit_note_id", "VARCHAR"),
        ("credit_note_number", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("status", "VARCHAR"),
        ("currency_code", "VARCHAR"),
        ("total", "DECIMAL(18,2)"),
        ("issue_date", "DATE"),
        ("updated_at", "TIMESTAMP"),
    ],
    "credit_allocations": [
        ("allocation_id", "VARCHAR"),
        ("credit_note_id", "VARCHAR"),
        ("invoice_id", "VARCHAR"),
        ("amount", "DECIMAL(18,2)"),
        ("allocated_at", "TIMESTAMP"),
        ("is_reversed", "BOOLEAN"),
        ("updated_at", "TIMESTAMP"),
    ],
}

# The contract's money rules, as views, so the cases below can be stated as outcomes.
CONTRACT_VIEWS = """
create temp view live_credit_notes as
select * from ledger.credit_notes where upper(status) not in ('VOIDED', 'DELETED');
create temp view invoice_applied as
select
    i.invoice_id,
    i.status,
    i.total,
    coalesce((select sum(amount) from ledger.payments p
              where p.invoice_id = i.invoice_id and not p.is_reversed), 0)
    + coalesce((select sum(a.amount) from ledger.credit_allocations a
                where a.invoice_id = i.invoice_id and not a.is_reversed
                  and a.credit_note_id in (select credit_note_id from live_credit_notes)), 0)
        as applied
from ledger.invoices i
qualify row_number() over (partition by i.invoice_id order by i.updated_at desc) = 1;
create temp view credit_note_allocated as
select
    n.credit_note_id,
    n.status,
    n.total,
    coalesce((select sum(amount) from ledger.credit_allocations a
              where a.credit_note_id = n.credit_note_id and not a.is_reversed), 0) as allocated
from ledger.credit_notes n
qualify row_number() over (partition by n.credit_note_id order by n.updated_at desc) = 1;
"""

# Every realism case: a query counting the rows that show it; each must find several at scale 1.
CASES: dict[str, str] = {
    # customers
    "customer id shape C-000123": r"from ledger.customers where regexp_full_match(customer_id, 'C-\d{6}')",
    "company name NULL": "from ledger.customers where company_name is null",
    "company name empty": "from ledger.customers where company_name = ''",
    "contact name NULL": "from ledger.customers where contact_first_name is null",
    "email valid-looking": r"from ledger.customers where regexp_full_match(email, '[a-z.]+@[a-z.]+\.[a-z]+')",
    "email bob@": "from ledger.customers where email like '%@'",
    "email without @": "from ledger.customers where email not like '%@%'",
    "email with a space": "from ledger.customers where email like '% %@%'",
    "email NULL": "from ledger.customers where email is null",
    "mobile 07700 900123": r"from ledger.customers where regexp_full_match(mobile, '07700 900\d{3}')",
    "mobile +44 7700 900456": r"from ledger.customers where regexp_full_match(mobile, '\+44 7700 900\d{3}')",
    "mobile 0044 7700 900789": "from ledger.customers where mobile like '0044 7700 900%'",
    "mobile 7700900123": r"from ledger.customers where regexp_full_match(mobile, '7700900\d{3}')",
    "mobile US +1": "from ledger.customers where mobile like '+1 %'",
    "mobile US without +1": "from ledger.customers where mobile like '415-555-%'",
    "mobile junk n/a": "from ledger.customers where mobile = 'n/a'",
    "mobile junk 12": "from ledger.customers where mobile = '12'",
    "mobile NULL": "from ledger.customers where mobile is null",
    "phone (020) 7946 0018": "from ledger.customers where phone like '(020) 7946 0%'",
    "phone US +1 415 555 0100": "from ledger.customers where phone like '+1 415 555 01__'",
    "phone junk": "from ledger.customers where phone in ('tbc', '12')",
    "no address at all": """from ledger.customers where coalesce(address_line1, address_line2, city,
        region, postal_code, country) is null""",
    "address partly missing": """from ledger.customers where address_line1 is null
        and postal_code is not null""",
    "address line2 missing only": """from ledger.customers where address_line1 is not null
        and address_line2 is null and city is not null""",
    "archived": "from ledger.customers where is_archived",
    "duplicate customer_id": """from (select customer_id from ledger.customers
        group by all having count(*) > 1 and count(distinct updated_at) = count(*))""",
    # invoices
    "invoice id shape INV-0000001": r"from ledger.invoices where regexp_full_match(invoice_id, 'INV-\d{7}')",
    "currency GBP": "from ledger.invoices where currency_code = 'GBP'",
    "currency EUR": "from ledger.invoices where currency_code = 'EUR'",
    "currency USD": "from ledger.invoices where currency_code = 'USD'",
    "currency AUD": "from ledger.invoices where currency_code = 'AUD'",
    "currency CAD": "from ledger.invoices where currency_code = 'CAD'",
    "status AUTHORISED": "from ledger.invoices where status = 'AUTHORISED'",
    "status authorised": "from ledger.invoices where status = 'authorised'",
    "status PAID": "from ledger.invoices where status = 'PAID'",
    "status Paid": "from ledger.invoices where status = 'Paid'",
    "status DRAFT": "from ledger.invoices where status = 'DRAFT'",
    "status submitted": "from ledger.invoices where status = 'submitted'",
    "status VOIDED": "from ledger.invoices where status = 'VOIDED'",
    "status DELETED": "from ledger.invoices where status = 'DELETED'",
    "due in 14 days": "from ledger.invoices where due_date - issue_date = 14",
    "due in 30 days": "from ledger.invoices where due_date - issue_date = 30",
    "due in 60 days": "from ledger.invoices where due_date - issue_date = 60",
    "invoice_number reused": """from (select invoice_number from ledger.invoices
        where invoice_number <> '' group by all having count(distinct invoice_id) > 1)""",
    "invoice unknown customer": """from ledger.invoices
        where customer_id not in (select customer_id from ledger.customers)""",
    "invoice of a customer without company name": """from ledger.invoices where customer_id in
        (select customer_id from ledger.customers where coalesce(company_name, '') = '')""",
    "currency ZZZ": "from ledger.invoices where currency_code = 'ZZZ'",
    "currency EURO": "from ledger.invoices where currency_code = 'EURO'",
    "currency empty": "from ledger.invoices where currency_code = ''",
    "negative total": "from ledger.invoices where total < 0",
    "invoice_number NULL": "from ledger.invoices where invoice_number is null",
    "invoice_number empty": "from ledger.invoices where invoice_number = ''",
    "issue_date NULL": "from ledger.invoices where issue_date is null",
    "duplicate invoice_id": """from (select invoice_id from ledger.invoices
        group by all having count(*) > 1 and count(distinct updated_at) = count(*))""",
    "zero total": "from ledger.invoices where total = 0",
    # payments, with the contract's rules applied
    "unpaid": "from invoice_applied where applied = 0 and total > 0",
    "partly paid": "from invoice_applied where applied > 0 and applied < total",
    "fully paid": "from invoice_applied where applied = total and total > 0",
    "several payments on one invoice": """from (select invoice_id from ledger.payments
        group by all having count(*) >= 3)""",
    "reversed payment": "from ledger.payments where is_reversed",
    "overpaid": "from invoice_applied where applied > total and total > 0",
    "PAID in the source with money due": """from invoice_applied
        where upper(status) = 'PAID' and applied < total""",
    "0.10 + 0.20 on a 0.30 invoice": """from invoice_applied i where total = 0.30 and applied = 0.30
        and (select list(amount order by paid_at) from ledger.payments p
             where p.invoice_id = i.invoice_id) = [0.10, 0.20]::decimal(18,2)[]""",
    "100.10 + 200.20 on a 300.30 invoice": """from invoice_applied i where total = 300.30
        and (select list(amount order by paid_at) from ledger.payments p
             where p.invoice_id = i.invoice_id) = [100.10, 200.20]::decimal(18,2)[]""",
    "payment to unknown invoice": """from ledger.payments
        where invoice_id not in (select invoice_id from ledger.invoices)""",
    "paid by payment and credit together": """from invoice_applied i where applied = total
        and invoice_id in (select invoice_id from ledger.payments where not is_reversed)
        and invoice_id in (select invoice_id from ledger.credit_allocations where not is_reversed)""",
    # credit notes and allocations
    "credit note AUTHORISED": "from ledger.credit_notes where status = 'AUTHORISED'",
    "credit note authorised": "from ledger.credit_notes where status = 'authorised'",
    "credit note DRAFT": "from ledger.credit_notes where upper(status) = 'DRAFT'",
    "credit note VOIDED mixed case": "from ledger.credit_notes where status = 'voided'",
    "credit note PAID": "from ledger.credit_notes where upper(status) = 'PAID'",
    "credit note unknown customer": """from ledger.credit_notes
        where customer_id not in (select customer_id from ledger.customers)""",
    "credit note currency ZZZ": "from ledger.credit_notes where currency_code = 'ZZZ'",
    "duplicate credit_note_id": """from (select credit_note_id from ledger.credit_notes
        group by all having count(*) > 1 and count(distinct updated_at) = count(*))""",
    "credit partly used": "from credit_note_allocated where allocated > 0 and allocated < total",
    "credit fully used": "from credit_note_allocated where allocated = total",
    "credit unallocated": "from credit_note_allocated where allocated = 0",
    "over-allocated credit": "from credit_note_allocated where allocated > total",
    "refund allocation": "from ledger.credit_allocations where invoice_id is null",
    "allocation from a VOIDED credit note": """from ledger.credit_allocations
        where credit_note_id in (select credit_note_id from ledger.credit_notes
                                 where upper(status) = 'VOIDED')""",
    "reversed allocation": "from ledger.credit_allocations where is_reversed",
    "allocation to unknown invoice": """from ledger.credit_allocations
        where invoice_id not in (select invoice_id from ledger.invoices)""",
    "allocation from unknown credit note": """from ledger.credit_allocations
        where credit_note_id not in (select credit_note_id from ledger.credit_notes)""",
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> tuple[DemoSummary, duckdb.DuckDBPyConnection]:
    summary = generate_demo_warehouse(tmp_path_factory.mktemp("demo") / "warehouse.duckdb")
    con = duckdb.connect(str(summary.path), read_only=True)
    con.execute(CONTRACT_VIEWS)
    yield summary, con
    con.close()


def _content_hash(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            table: con.execute(
                f"select md5(string_agg(t::varchar, chr(10) order by t::varchar)) "
                f"from ledger.{table} t"
            ).fetchall()[0][0]
            for table in CONTRACT_COLUMNS
        }
    finally:
        con.close()


def test_the_package_contract_matches_the_document():
    from chaser_pipeline.ledger.contract import LEDGER_TABLES

    assert {n: list(t.columns) for n, t in LEDGER_TABLES.items()} == CONTRACT_COLUMNS


@pytest.mark.parametrize("table", list(CONTRACT_COLUMNS))
def test_columns_names_order_and_types_are_the_contracts(warehouse, table):
    _, con = warehouse
    columns = con.execute(
        "select column_name, data_type, is_nullable from information_schema.columns "
        "where table_schema = 'ledger' and table_name = $table order by ordinal_position",
        {"table": table},
    ).fetchall()
    assert [(name, kind) for name, kind, _ in columns] == CONTRACT_COLUMNS[table]
    assert dict((name, nullable) for name, _, nullable in columns)["updated_at"] == "NO"


def test_only_the_ledger_schema_is_left_behind(warehouse):
    _, con = warehouse
    tables = con.execute(
        "select schema_name, table_name from duckdb_tables() order by all"
    ).fetchall()
    assert tables == sorted(("ledger", t) for t in CONTRACT_COLUMNS)


def test_scale_one_sizes(warehouse):
    summary, _ = warehouse
    # 1% of customers, invoices and credit notes are duplicate keys: extra rows.
    assert summary.customers == 303
    assert summary.invoices == 3030
    assert summary.credit_notes == 303
    assert 5_500 <= summary.payments <= 6_500
    assert 500 <= summary.credit_allocations <= 700
    assert summary.rows == {
        "customers": summary.customers,
        "invoices": summary.invoices,
        "payments": summary.payments,
        "credit_notes": summary.credit_notes,
        "credit_allocations": summary.credit_allocations,
    }
    assert summary.seconds > 0


@pytest.mark.parametrize("case", list(CASES))
def test_every_realism_case_occurs_several_times(warehouse, case):
    _, con = warehouse
    count = con.execute(f"select count(*) {CASES[case]}").fetchall()[0][0]
    assert count >= 2, f"{case}: {count} rows"


def test_each_bad_case_is_a_small_share(warehouse):
    _, con = warehouse
    invoices = con.execute("select count(distinct invoice_id) from ledger.invoices").fetchall()
    n = invoices[0][0]
    for case in (
        "invoice unknown customer",
        "negative total",
        "duplicate invoice_id",
        "issue_date NULL",
        "currency ZZZ",
    ):
        count = con.execute(f"select count(*) {CASES[case]}").fetchall()[0][0]
        assert count <= 0.02 * n, case
    gbp = con.execute(f"select count(*) {CASES['currency GBP']}").fetchall()[0][0]
    assert gbp > n / 2


def test_totals_are_sub_total_plus_vat_in_exact_decimals(warehouse):
    _, con = warehouse
    wrong = con.execute(
        "select count(*) from ledger.invoices where total <> round(sub_total * 1.2, 2)"
    ).fetchall()[0][0]
    assert wrong == 0
    total, sub_total = con.execute(
        "select total, sub_total from ledger.invoices where total = 0.30 limit 1"
    ).fetchall()[0]
    assert (total, sub_total) == (Decimal("0.30"), Decimal("0.25"))
    assert 0.10 + 0.20 != 0.30  # why the 0.30 invoice is there: a float sum would miss it


def test_time_runs_forward_and_stays_in_the_fixed_window(warehouse):
    _, con = warehouse
    checks = {
        "issue date outside 2023-01-01..2026-11-15": """select count(*) from ledger.invoices
            where issue_date not between date '2023-01-01' and date '2026-11-15'""",
        "updated_at after 2026-11-20": """select count(*) from (
            select updated_at from ledger.customers union all
            select updated_at from ledger.invoices union all
            select updated_at from ledger.payments union all
            select updated_at from ledger.credit_notes union all
            select updated_at from ledger.credit_allocations)
            where updated_at >= timestamp '2026-11-20'""",
        "payment before its invoice": """select count(*) from ledger.payments p
            join ledger.invoices i using (invoice_id) where p.paid_at <= i.issue_date""",
        "allocation before its credit note": """select count(*) from ledger.credit_allocations a
            join ledger.credit_notes n using (credit_note_id) where a.allocated_at <= n.issue_date""",
        "allocation before its invoice": """select count(*) from ledger.credit_allocations a
            join ledger.invoices i using (invoice_id) where a.allocated_at <= i.issue_date""",
        "payment updated_at is not paid_at": """select count(*) from ledger.payments
            where updated_at <> paid_at""",
        "invoice updated before its last payment": """select count(*) from ledger.invoices i
            join ledger.payments p using (invoice_id) where i.updated_at < p.paid_at
            and i.status <> 'DRAFT'""",
    }
    for what, sql in checks.items():
        assert con.execute(sql).fetchall()[0][0] == 0, what
    first, last = con.execute(
        "select min(issue_date), max(issue_date) from ledger.invoices"
    ).fetchall()[0]
    assert first.year == 2023 and last.year == 2026


def test_same_seed_gives_identical_content_and_another_seed_differs(tmp_path):
    first = generate_demo_warehouse(tmp_path / "a.duckdb", seed=7)
    again = generate_demo_warehouse(tmp_path / "b.duckdb", seed=7)
    other = generate_demo_warehouse(tmp_path / "c.duckdb", seed=8)
    assert _content_hash(first.path) == _content_hash(again.path)
    other_hash = _content_hash(other.path)
    assert all(other_hash[t] != h for t, h in _content_hash(first.path).items())


def _distinct_keys(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            table: con.execute(f"select count(distinct {key}) from ledger.{table}").fetchall()[0][0]
            for table, key in (
                ("customers", "customer_id"),
                ("invoices", "invoice_id"),
                ("credit_notes", "credit_note_id"),
            )
        }
    finally:
        con.close()


def test_counts_follow_scale_and_overrides(tmp_path):
    small = generate_demo_warehouse(tmp_path / "small.duckdb", scale=0.5)
    assert _distinct_keys(small.path) == {"customers": 150, "invoices": 1500, "credit_notes": 150}
    # Duplicate keys (1%) come on top of the distinct rows.
    assert 1500 < small.invoices <= 1515
    custom = generate_demo_warehouse(
        tmp_path / "custom.duckdb", customers=50, invoices=1000, credit_notes=10
    )
    assert _distinct_keys(custom.path) == {"customers": 50, "invoices": 1000, "credit_notes": 10}


def test_the_file_is_replaced_atomically(tmp_path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(b"the previous warehouse")

    def broken_build(con, **_):
        con.execute("create schema ledger")
        raise RuntimeError("disk full halfway")

    monkeypatch.setattr(demo_data, "_build", broken_build)
    with pytest.raises(RuntimeError, match="halfway"):
        generate_demo_warehouse(path, customers=10, invoices=10, credit_notes=10)
    assert path.read_bytes() == b"the previous warehouse"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warehouse.duckdb"]

    monkeypatch.undo()
    summary = generate_demo_warehouse(path, customers=10, invoices=10, credit_notes=10)
    assert summary.path == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warehouse.duckdb"]
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("select count(*) from ledger.invoices").fetchall()[0][0] >= 10
    finally:
        con.close()


def test_an_existing_file_is_kept_unless_overwrite(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        generate_demo_warehouse(path, overwrite=False, customers=10, invoices=10, credit_notes=10)
    assert path.read_bytes() == b"keep me"
