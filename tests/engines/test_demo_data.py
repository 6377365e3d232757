"""The demo warehouse speaks LEDGER_CONTRACT.md exactly (optional parts included), is deterministic, holds every case, and the models show each one."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from chaser_pipeline.demo import generator as demo_data
from chaser_pipeline.demo.generator import DemoSummary, generate_demo_warehouse
from chaser_pipeline.models.build import run_models
from chaser_pipeline.models.contract import contract_queries, find_violations
from chaser_pipeline.models.rules import mart_rules
from tests.support.models import land_warehouse, project

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
        ("customer_id", "VARCHAR"),
        ("currency_code", "VARCHAR"),
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
        ("payment_id", "VARCHAR"),
    ],
    "contacts": [
        ("contact_id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("first_name", "VARCHAR"),
        ("last_name", "VARCHAR"),
        ("email", "VARCHAR"),
        ("phone", "VARCHAR"),
        ("mobile", "VARCHAR"),
        ("is_archived", "BOOLEAN"),
        ("updated_at", "TIMESTAMP"),
    ],
}

# The contract's money rules, as views, so the cases below can be stated as outcomes.
CONTRACT_VIEWS = """
create temp view live_credit_notes as
select * from ledger.credit_notes
where upper(status) not in ('DRAFT', 'SUBMITTED', 'VOIDED', 'DELETED');
create temp view latest_invoices as
select * from ledger.invoices
qualify row_number() over (partition by invoice_id order by updated_at desc) = 1;
create temp view counted_allocations as
-- credit from an issued credit note, or cash on account, of the invoice's customer and currency
select a.*
from ledger.credit_allocations a
join latest_invoices i using (invoice_id)
left join live_credit_notes n using (credit_note_id)
left join ledger.payments p on p.payment_id = a.payment_id
where not a.is_reversed and upper(i.status) not in ('DRAFT', 'VOIDED', 'DELETED')
  and (n.customer_id = i.customer_id and n.currency_code = i.currency_code
       or p.customer_id = i.customer_id and p.currency_code = i.currency_code);
create temp view invoice_applied as
select
    i.invoice_id,
    i.status,
    i.total,
    coalesce((select sum(amount) from ledger.payments p
              where p.invoice_id = i.invoice_id and not p.is_reversed), 0)
    + coalesce((select sum(a.amount) from counted_allocations a
                where a.invoice_id = i.invoice_id), 0)
        as applied
from latest_invoices i;
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
    # issues 11 and 12
    "several addresses, one invalid": r"""from ledger.customers
        where regexp_matches(email, '[,;]') and regexp_matches(email, '@(,|;|$)')""",
    "several addresses separated by a space": r"""from ledger.customers
        where regexp_full_match(email, '\S+@\S+ \S+@\S+')""",
    "invoice before the history start, open": """from invoice_applied i
        join ledger.invoices using (invoice_id)
        where issue_date < date '2023-01-01' and applied = 0""",
    "customer without company name, invoice paid in full": """from invoice_applied i
        join latest_invoices using (invoice_id)
        where applied = i.total and i.total > 0 and customer_id in
        (select customer_id from ledger.customers where coalesce(company_name, '') = '')""",
    "pay, refund, pay": """from (select invoice_id from ledger.payments group by all
        having list(sign(amount) order by paid_at) = [1, -1, 1])""",
    "EUR credit allocated to a GBP invoice": """from ledger.credit_allocations a
        join ledger.credit_notes n using (credit_note_id)
        join latest_invoices i using (invoice_id)
        where n.currency_code = 'EUR' and i.currency_code = 'GBP'""",
    "DRAFT credit note allocated": """from ledger.credit_allocations a
        join ledger.credit_notes n using (credit_note_id)
        where upper(n.status) = 'DRAFT' and a.invoice_id is not null""",
    "another customer's credit note allocated": """from ledger.credit_allocations a
        join ledger.credit_notes n using (credit_note_id)
        join latest_invoices i using (invoice_id)
        where n.customer_id <> i.customer_id""",
    "negative credit note in a month with good ones": """from ledger.credit_notes n
        where total < 0 and exists (select 1 from ledger.credit_notes g where g.total > 0
            and date_trunc('month', g.issue_date) = date_trunc('month', n.issue_date))""",
    "payment with customer and currency": """from ledger.payments
        where invoice_id is not null and customer_id is not null and currency_code is not null""",
    "cash on account": """from ledger.payments where invoice_id is null
        and customer_id is not null and currency_code is not null""",
    "cash on account applied later": """from ledger.credit_allocations a
        join ledger.payments p using (payment_id)
        where p.invoice_id is null and a.credit_note_id is null and a.allocated_at > p.paid_at""",
    "cash on account never applied": """from ledger.payments p where invoice_id is null
        and payment_id not in (select payment_id from ledger.credit_allocations
                               where payment_id is not null)""",
    "contact": "from ledger.contacts where customer_id in (select customer_id from ledger.customers)",
    "contact archived": "from ledger.contacts where is_archived",
    "contact with an invalid address": "from ledger.contacts where email like '%@'",
    "contact with two addresses": "from ledger.contacts where email like '%;%'",
    "contact of an unknown customer": """from ledger.contacts
        where customer_id not in (select customer_id from ledger.customers)""",
    "duplicate contact_id": """from (select contact_id from ledger.contacts
        group by all having count(*) > 1 and count(distinct updated_at) = count(*))""",
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
    from chaser_pipeline.models.inputs import ledger_columns

    assert {n: list(columns) for n, columns in ledger_columns().items()} == CONTRACT_COLUMNS


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
    assert 500 <= summary.contacts <= 700  # two per customer on average
    assert summary.rows == {
        "customers": summary.customers,
        "invoices": summary.invoices,
        "payments": summary.payments,
        "credit_notes": summary.credit_notes,
        "credit_allocations": summary.credit_allocations,
        "contacts": summary.contacts,
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
        "issue date outside 2022-12-01..2026-11-15": """select count(*) from ledger.invoices
            where issue_date not between date '2022-12-01' and date '2026-11-15'""",
        "paid invoice before the history start": """select count(*) from invoice_applied
            join ledger.invoices using (invoice_id)
            where issue_date < date '2023-01-01' and applied > 0""",
        "updated_at after 2026-11-20": """select count(*) from (
            select updated_at from ledger.customers union all
            select updated_at from ledger.invoices union all
            select updated_at from ledger.payments union all
            select updated_at from ledger.credit_notes union all
            select updated_at from ledger.credit_allocations union all
            select updated_at from ledger.contacts)
            where updated_at >= timestamp '2026-11-20'""",
        "payment before its invoice": """select count(*) from ledger.payments p
            join ledger.invoices i using (invoice_id) where p.paid_at <= i.issue_date""",
        "allocation before its credit note": """select count(*) from ledger.credit_allocations a
            join ledger.credit_notes n using (credit_note_id) where a.allocated_at <= n.issue_date""",
        "allocation before its invoice": """select count(*) from ledger.credit_allocations a
            join ledger.invoices i using (invoice_id) where a.allocated_at <= i.issue_date""",
        "cash applied before it was received": """select count(*) from ledger.credit_allocations a
            join ledger.payments p using (payment_id) where a.allocated_at <= p.paid_at""",
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
    assert (first.year, first.month) == (2022, 12) and last.year == 2026


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


@pytest.fixture(scope="module")
def built(warehouse, tmp_path_factory) -> duckdb.DuckDBPyConnection:
    """The models built on the scale-1 demo warehouse, as the README's first command builds them."""
    summary, _ = warehouse
    con = duckdb.connect(str(tmp_path_factory.mktemp("pipeline") / "pipeline.duckdb"))
    land_warehouse(con, summary.path)
    run_models(con, project())
    yield con
    con.close()


# What the models make of each case: a query counting rows that show it in the marts or reports.
MODEL_CASES: dict[str, str] = {
    "held-back customer's invoice paid in its mart": """from chaser_invoices i
        join chaser_rejections r on r.key = i.invoice_id and r.reason_code = 'customer_held_back'
        where i.status = 'PAID' and i.amount_due = 0""",
    "open invoice before the history start in its mart": """from chaser_invoices
        where date < '2023-01-01' and status = 'AUTHORISED' and amount_due > 0""",
    "EUR credit on a GBP invoice ignored": """from chaser_rejections
        where reason_code = 'allocation_other_currency'""",
    "DRAFT credit ignored": """from chaser_rejections
        where reason_code = 'allocation_source_not_usable' and detail like '%is DRAFT%'""",
    "another customer's credit ignored": """from chaser_rejections
        where reason_code = 'allocation_other_customer'""",
    "ignored credit leaves money due on a PAID-in-the-ledger invoice": """from chaser_rejections
        where reason_code = 'paid_with_amount_due' and key in (
            select l.invoice_id from chaser_rejections a
            join landing.credit_allocations l on l.allocation_id = a.key
            where a.reason_code like 'allocation_%')""",
    "negative credit note held back": """from chaser_rejections
        where entity = 'credit_note' and reason_code = 'negative_total'""",
    "pay, refund, pay: fully paid at the last payment": """from chaser_invoices i
        join (select invoice_id, max(paid_at) as last_paid_at from landing.payments
              group by all having list(sign(amount) order by paid_at) = [1, -1, 1]) p
            using (invoice_id)
        where i.fully_paid_date = strftime(p.last_paid_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z'""",
    "contact person from a ledger contact": """from chaser_contact_persons
        where external_id like 'CT-%' and status = 'ACTIVE'""",
    "archived contact": "from chaser_contact_persons where status = 'ARCHIVED'",
    "contact person from an extra address": """from chaser_contact_persons
        where external_id like 'C-%:%@%'""",
    "invalid address among valid ones reported": """from chaser_rejections
        where entity = 'customer' and reason_code = 'invalid_email'
        and detail like '%valid ones are used%'""",
    "cash on account partly applied": """from chaser_overpayments
        where remaining_credit > 0 and remaining_credit < total""",
    "cash on account used up": "from chaser_overpayments where status = 'PAID'",
    "cash on account never applied": """from chaser_overpayments o
        join landing.payments p on p.payment_id = o.overpayment_id
        where p.invoice_id is null and o.remaining_credit = o.total""",
    "invoice paid from cash on account": """from chaser_invoices
        where status = 'PAID' and invoice_id in (select invoice_id from landing.credit_allocations
            where payment_id is not null)""",
    "overpaid invoice's surplus is an overpayment": """from chaser_rejections
        where reason_code = 'overpaid' and detail like '%overpayment PAY-%'""",
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_the_models_show_every_case(built, case):
    count = built.execute(f"select count(*) {MODEL_CASES[case]}").fetchall()[0][0]
    assert count >= 2, f"{case}: {count} rows"


def test_no_blocking_check_fails_on_the_demo(built):
    failing = {
        (model.name, query.name): find_violations(built, query).count
        for model in project().models.values()
        for query in contract_queries(model)
    } | {
        (rule.model, rule.query.name): find_violations(built, rule.query).count
        for rule in mart_rules()
        if rule.severity == "ERROR"
    }
    assert {check: n for check, n in failing.items() if n} == {}
