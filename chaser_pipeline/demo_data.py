"""The demo warehouse: a DuckDB file holding the ledger contract's five tables, with every awkward
case the pipeline must handle, generated in SQL so a million invoices take about a minute.

Every value comes from `hash(seed, tag, row)` inside DuckDB, so one seed always gives the same rows
(with the same DuckDB version). Dates are fixed (invoices issued 2023-01-01 .. 2026-11-15, no event
after 2026-11-19), never "today", so runs and tests agree.

Special cases are placed by a stride permutation of the row number (`(i * 7919 + offset) % m`), not
by chance, so each one occurs an exact share of rows at any scale (at least 3 times at scale 1) and
for any seed. `SCENARIOS` below is the map the models engineer tests against.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from chaser_pipeline.ledger import LEDGER_TABLES

# Rows per unit of scale; payments (~2 per invoice) and allocations (~2 per credit note) follow.
CUSTOMERS_PER_SCALE = 300
INVOICES_PER_SCALE = 3_000
CREDIT_NOTES_PER_SCALE = 300

FIRST_ISSUE_DATE = "2023-01-01"
LAST_ISSUE_DATE = "2026-11-15"
LAST_EVENT_DATE = "2026-11-19"  # no payment, allocation or update after this day

# The contract's columns, names, order and types, from the one place the package keeps them.
LEDGER_DDL: dict[str, str] = {
    name: ", ".join(
        f"{column} {kind}" + (" NOT NULL" if column == "updated_at" else "")
        for column, kind in table.columns
    )
    for name, table in LEDGER_TABLES.items()
}

# Scenario buckets: invoices use (i * 7919 + offset) % 1000, customers and credit notes % 100.
SCENARIOS: dict[str, dict[str, str]] = {
    "customers": {
        "missing_company_name": "bucket 0: company_name NULL; bucket 1: company_name ''",
        "no_address": "buckets 2-4: every address column NULL",
        "bad_email": "bucket 5 'anna@', bucket 6 'anna.acme.example.com', bucket 7 'anna smith@…'",
        "null_email": "buckets 8-11: email NULL",
        "junk_mobile": "bucket 12 mobile 'n/a', bucket 13 mobile '12'",
        "junk_phone": "bucket 14: phone 'tbc' or '12'",
        "us_numbers": "buckets 15-16: +1 415 555 01xx numbers, country 'US' (16: no +1 on mobile)",
        "duplicate_key": "bucket 17: customer_id twice; the later updated_at has accounts@ email",
        "partial_address": "bucket 18 postal_code+country only; bucket 19 line1+city only",
        "archived": "random ~6% is_archived = true",
    },
    "invoices": {
        "unknown_customer": "buckets 0-9: customer_id beyond the last customer (C-<n+1..n+1000>)",
        "bad_currency": "buckets 10-19: currency_code ['ZZZ', 'EURO', '', 'XXY'][1 + bucket % 4]",
        "negative_total": "buckets 20-24: sub_total and total < 0, no payments",
        "missing_number": "buckets 25-26: invoice_number ''; buckets 27-29: NULL",
        "missing_issue_date": "buckets 30-34: issue_date NULL (due_date kept)",
        "duplicate_key": "buckets 35-44: invoice_id twice; older row is a DRAFT with a lower total",
        "zero_total": "buckets 45-54: sub_total = total = 0.00, no payments",
        "float_cents": "buckets 55-59: total 0.30 paid by 0.10 then 0.20",
        "float_pounds": "buckets 60-64: total 300.30 paid by 100.10 then 200.20",
        "paid_status_money_due": "buckets 65-74: status PAID/Paid but payments < total",
        "overpaid": "buckets 75-89: status PAID, a full payment then a second one (sum > total)",
        "bounced_then_paid": "buckets 90-99: full payment reversed, then paid again later",
        "credited": "buckets 900-999: credit note raised against it, payments cover the rest",
        "normal": "everything else: unpaid / partial / full in 1-5 payments; ~5% bounced extra",
    },
    "credit_notes": {
        "unknown_customer": "buckets 0-1: customer_id beyond the last customer, no allocations",
        "bad_currency": "bucket 2: currency_code 'ZZZ', no allocations",
        "duplicate_key": "bucket 3: credit_note_id twice; older row DRAFT with updated_at earlier",
        "voided_with_allocations": "buckets 4-7: VOIDED/voided, allocated in full to its invoice",
        "draft": "buckets 8-9 DRAFT/draft, bucket 10 Submitted: no allocations",
        "deleted_with_allocation": "bucket 11: DELETED, allocated in full to its invoice",
        "refund": "buckets 12-15: one allocation with invoice_id NULL for the whole credit",
        "over_allocated": "buckets 16-19: full allocation to the invoice plus a refund on top",
        "reversed_allocation": "buckets 20-23: full allocation reversed, then a partial one",
        "unknown_invoice": "buckets 24-25: allocation to INV-<n+1..> that does not exist",
        "unknown_credit_note": "buckets 26-27: extra allocation from CN-<n+1..> to its invoice",
        "unallocated": "buckets 28-33: no allocation, whole credit remaining",
        "fully_used": "buckets 34-59: 1-4 allocations to its invoice summing to the total",
        "partly_used": "buckets 60-84: 1-3 allocations using 30-90% of the credit",
        "split_with_refund": "buckets 85-99: 1-3 allocations to the invoice, the rest refunded",
    },
}


@dataclass(frozen=True)
class DemoSummary:
    """What `generate_demo_warehouse` wrote: rows per ledger table and how long it took."""

    path: Path
    customers: int
    invoices: int
    payments: int
    credit_notes: int
    credit_allocations: int
    seconds: float

    @property
    def rows(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in LEDGER_DDL}


def generate_demo_warehouse(
    path: Path,
    *,
    scale: float = 1.0,
    seed: int = 42,
    overwrite: bool = True,
    customers: int | None = None,
    invoices: int | None = None,
    credit_notes: int | None = None,
) -> DemoSummary:
    """Write a demo ledger warehouse (DuckDB, schema `ledger`) to `path`, atomically.

    Scale 1 is 300 customers, 3,000 invoices (~6,000 payments), 300 credit notes (~600
    allocations); `customers`, `invoices` and `credit_notes` override a count. Payments and
    allocations follow from the invoices and credit notes. The file is built beside `path` and
    renamed into place, so a reader never sees a half-written warehouse.
    """
    started = time.perf_counter()
    path = Path(path)
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    counts = {
        "n_customers": customers if customers is not None else _scaled(CUSTOMERS_PER_SCALE, scale),
        "n_invoices": invoices if invoices is not None else _scaled(INVOICES_PER_SCALE, scale),
        "n_credit_notes": (
            credit_notes if credit_notes is not None else _scaled(CREDIT_NOTES_PER_SCALE, scale)
        ),
    }
    for name, value in counts.items():
        if value < 1:
            raise ValueError(f"{name.removeprefix('n_')} must be at least 1, got {value}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    _remove(partial)
    try:
        con = duckdb.connect(str(partial))
        try:
            _build(con, seed=seed, **counts)
            rows = {
                name: con.table(f"ledger.{name}").count("*").fetchall()[0][0] for name in LEDGER_DDL
            }
            con.execute("checkpoint")
        finally:
            con.close()
        os.replace(partial, path)
    finally:
        _remove(partial)
    return DemoSummary(path=path, seconds=time.perf_counter() - started, **rows)


def _scaled(per_scale: int, scale: float) -> int:
    return max(1, round(per_scale * scale))


def _remove(partial: Path) -> None:
    for leftover in (partial, partial.with_name(partial.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _build(
    con: duckdb.DuckDBPyConnection,
    *,
    seed: int,
    n_customers: int,
    n_invoices: int,
    n_credit_notes: int,
) -> None:
    settings = {
        "seed": seed,
        "bucket_offset": seed % 1000,
        "n_customers": n_customers,
        "n_invoices": n_invoices,
        "n_credit_notes": n_credit_notes,
    }
    for name, value in settings.items():
        con.execute(f"set variable {name} = $value", {"value": value})
    con.execute("create schema ledger")
    for name, columns in LEDGER_DDL.items():
        con.execute(f"create table ledger.{name} ({columns})")
    for statement in _STATEMENTS:
        con.execute(statement)
    for name in ("customer_rows", "inv_base", "inv_plan", "cn_base", "alloc_rows", "pay_rows"):
        con.execute(f"drop table if exists {name}")


_MACROS = """
create temp macro u(tag, i) as (hash(getvariable('seed'), tag, i) % 1000000007)::double / 1000000007;
create temp macro u2(tag, i, m) as
    (hash(getvariable('seed'), tag, i, m) % 1000000007)::double / 1000000007;
create temp macro ui(tag, i, n) as (hash(getvariable('seed'), tag, i) % n)::bigint;
create temp macro pick(choices, tag, i) as choices[1 + ui(tag, i, len(choices))];
create temp macro bucket(i, m) as ((i * 7919 + getvariable('bucket_offset')) % m)::int;
create temp macro money(cents) as (cents::bigint * 0.01)::decimal(18, 2);
create temp macro secs(x) as to_seconds(floor(x)::bigint);
"""

_CUSTOMERS = """
create temp table customer_rows as
with base as (
    select
        i,
        bucket(i, 100) as cb,
        pick(['Anna', 'Ben', 'Chloe', 'David', 'Emma', 'Farid', 'Grace', 'Hugo', 'Isla', 'Jack',
              'Kiran', 'Laura', 'Mohammed', 'Niamh', 'Oliver', 'Priya', 'Rhys', 'Sofia', 'Tom',
              'Zoe'], 'c.first', i) as first_name,
        pick(['Smith', 'Jones', 'Taylor', 'Brown', 'Williams', 'Wilson', 'Patel', 'Khan',
              'Evans', 'Thomas', 'Roberts', 'O''Neill', 'Walker', 'Wright', 'Hughes', 'Nguyen'],
             'c.last', i) as last_name,
        pick(['Acme', 'Northwind', 'Blue Harbour', 'Kestrel', 'Oakfield', 'Riverside', 'Summit',
              'Greenway', 'Ironbridge', 'Lark', 'Meridian', 'Pennine', 'Quayside', 'Thistle',
              'Westgate', 'Yellowhammer'], 'c.co1', i) as co1,
        pick(['Building', 'Catering', 'Design', 'Engineering', 'Foods', 'Logistics', 'Media',
              'Plumbing', 'Print', 'Software', 'Supplies', 'Textiles', 'Trading', 'Travel'],
             'c.co2', i) as co2,
        pick(['Ltd', 'Ltd', 'Limited', 'LLP', 'plc', 'Group', '& Sons', 'Holdings'], 'c.co3', i)
            as co3,
        pick(['example.com', 'example.co.uk', 'example.org', 'example.net'], 'c.dom', i) as tld,
        lpad(ui('c.mob', i, 1000)::varchar, 3, '0') as mob3,
        lpad(ui('c.tel', i, 1000)::varchar, 3, '0') as tel3,
        lpad(ui('c.us', i, 100)::varchar, 2, '0') as us2,
        ui('c.mobfmt', i, 8) as mob_fmt,
        ui('c.telfmt', i, 6) as tel_fmt,
        ui('c.city', i, 8) as city_ix,
        -- Every customer row changes at most 60 days after this, well before the last event day.
        timestamp '2022-06-01' + secs(u('c.upd', i) * 136000000) as first_updated_at
    from range(1, getvariable('n_customers') + 1) t(i)
),
shaped as (
    select
        *,
        lower(replace(co1, ' ', '')) || '.' || tld as domain,
        cb in (2, 3, 4) as no_address,
        cb in (15, 16) as is_us
    from base
),
versions as (
    -- A duplicate key: the source holds the customer twice, the later row after a change.
    select *, 1 as version from shaped
    union all
    select *, 2 as version from shaped where cb = 17
)
select
    i,
    version,
    format('C-{:06d}', i) as customer_id,
    case cb when 0 then null when 1 then '' else co1 || ' ' || co2 || ' ' || co3 end
        as company_name,
    case when u('c.nofirst', i) < 0.05 then null else first_name end as contact_first_name,
    case when u('c.nolast', i) < 0.05 then null else last_name end as contact_last_name,
    case
        when version = 2 then 'accounts@' || domain
        when cb = 5 then lower(first_name) || '@'
        when cb = 6 then lower(first_name) || '.' || domain
        when cb = 7 then lower(first_name) || ' ' || lower(last_name) || '@' || domain
        when cb between 8 and 11 then null
        else lower(first_name) || '.' || lower(replace(last_name, '''', '')) || '@' || domain
    end as email,
    case
        when cb = 14 then pick(['tbc', '12'], 'c.junkphone', i)
        when is_us then '+1 415 555 01' || us2
        when tel_fmt = 0 then '(020) 7946 0' || tel3
        when tel_fmt = 1 then '020 7946 0' || tel3
        when tel_fmt = 2 then '+44 20 7946 0' || tel3
        when tel_fmt = 3 then '02079460' || tel3
        when tel_fmt = 4 then '0161 496 0' || tel3
        else null
    end as phone,
    case
        when version = 2 then '07700 900' || lpad(((ui('c.mob', i, 1000) + 1) % 1000)::varchar, 3, '0')
        when cb = 12 then 'n/a'
        when cb = 13 then '12'
        when cb = 15 then '+1 (415) 555-01' || us2
        when cb = 16 then '415-555-01' || us2
        when mob_fmt = 0 then '07700 900' || mob3
        when mob_fmt = 1 then '+44 7700 900' || mob3
        when mob_fmt = 2 then '0044 7700 900' || mob3
        when mob_fmt = 3 then '7700900' || mob3
        when mob_fmt = 4 then '07700900' || mob3
        when mob_fmt = 5 then '+447700900' || mob3
        when mob_fmt = 6 then '07700-900-' || mob3
        else null
    end as mobile,
    case
        when no_address or cb = 18 then null
        when is_us then (100 + ui('c.no', i, 900))::varchar || ' Market Street'
        else (1 + ui('c.no', i, 200))::varchar || ' ' || pick(['High Street', 'Station Road',
            'Church Lane', 'Mill Road', 'Victoria Street', 'Park Avenue', 'Kings Road',
            'The Green'], 'c.street', i)
    end as address_line1,
    case
        when no_address or cb in (18, 19) or u('c.line2', i) >= 0.3 then null
        else pick(['Unit 4', 'Suite 210', 'Floor 2', 'Riverside Business Park'], 'c.l2', i)
    end as address_line2,
    case
        when no_address or cb = 18 then null
        when is_us then 'San Francisco'
        else ['London', 'Manchester', 'Leeds', 'Bristol', 'Glasgow', 'Cardiff', 'Belfast',
              'Norwich'][1 + city_ix]
    end as city,
    case
        when no_address or cb in (18, 19) then null
        when is_us then 'CA'
        when u('c.region', i) < 0.5 then null
        else ['Greater London', 'Greater Manchester', 'West Yorkshire', 'Bristol', 'Glasgow City',
              'South Glamorgan', 'County Antrim', 'Norfolk'][1 + city_ix]
    end as region,
    case
        when no_address or cb = 19 then null
        when is_us then '94105'
        else ['EC1A', 'M1', 'LS1', 'BS1', 'G1', 'CF10', 'BT1', 'NR1'][1 + city_ix] || ' '
            || (1 + ui('c.pc', i, 9))::varchar
            || pick(['AA', 'BD', 'EX', 'HQ', 'NP', 'TY', 'WZ'], 'c.pc2', i)
    end as postal_code,
    case
        when no_address or cb = 19 then null
        when is_us then 'US'
        else pick(['GB', 'GB', 'GB', 'United Kingdom', 'UK'], 'c.country', i)
    end as country,
    u('c.archived', i) < 0.06 as is_archived,
    case
        when version = 1 then first_updated_at
        else first_updated_at + secs(3600 + u('c.upd2', i) * 5000000)
    end as updated_at
from versions
"""

_INSERT_CUSTOMERS = """
insert into ledger.customers
select * exclude (i, version) from customer_rows order by i, version
"""

_INVOICE_BASE = """
create temp table inv_base as
with base as (
    select
        i,
        bucket(i, 1000) as cb,
        1 + floor(getvariable('n_customers') * pow(u('i.cust', i), 1.6))::bigint as customer_ix,
        date '2023-01-01' + ui('i.issue', i, 1415)::int as true_issue_date
    from range(1, getvariable('n_invoices') + 1) t(i)
),
scenarios as (
    select
        *,
        case
            when cb < 10 then 'unknown_customer'
            when cb < 20 then 'bad_currency'
            when cb < 25 then 'negative_total'
            when cb < 30 then 'missing_number'
            when cb < 35 then 'missing_issue_date'
            when cb < 45 then 'duplicate_key'
            when cb < 55 then 'zero_total'
            when cb < 60 then 'float_cents'
            when cb < 65 then 'float_pounds'
            when cb < 75 then 'paid_status_money_due'
            when cb < 90 then 'overpaid'
            when cb < 100 then 'bounced_then_paid'
            when cb >= 900 then 'credited'
            else 'normal'
        end as scenario,
        -- Amounts spread log-uniformly from 10.00 to 20,000.00 before VAT.
        floor(exp(ln(1000) + u('i.amount', i) * (ln(2000000) - ln(1000))))::bigint as random_cents
    from base
),
amounts as (
    select
        *,
        case scenario
            when 'zero_total' then 0
            when 'float_cents' then 25
            when 'float_pounds' then 25025
            when 'negative_total' then -random_cents
            else random_cents
        end as sub_cents
    from scenarios
)
select
    i,
    cb,
    scenario,
    format('INV-{:07d}', i) as invoice_id,
    case
        when scenario = 'missing_number' then case when cb < 27 then '' else null end
        -- Invoice numbers are not unique: some reuse a recent invoice's number.
        when i > 50 and u('i.numreuse', i) < 0.02 then
            format('SI-{:06d}', 100000 + i - 1 - ui('i.numfrom', i, 50))
        else format('SI-{:06d}', 100000 + i)
    end as invoice_number,
    case
        when scenario = 'unknown_customer' then
            format('C-{:06d}', getvariable('n_customers') + 1 + ui('i.unknown', i, 1000))
        else format('C-{:06d}', customer_ix)
    end as customer_id,
    case
        when scenario = 'bad_currency' then ['ZZZ', 'EURO', '', 'XXY'][1 + cb % 4]
        -- A customer is billed in one currency, mostly GBP.
        else pick(['GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP',
                   'GBP', 'GBP', 'GBP', 'EUR', 'EUR', 'EUR', 'USD', 'USD', 'AUD', 'CAD'],
                  'c.currency', customer_ix)
    end as currency_code,
    money(sub_cents) as sub_total,
    -- VAT at 20%, rounded to cents in decimal arithmetic: never a float.
    round(money(sub_cents) * 1.2, 2)::decimal(18, 2) as total,
    (round(money(sub_cents) * 1.2, 2) * 100)::bigint as total_cents,
    true_issue_date,
    case when scenario = 'missing_issue_date' then null else true_issue_date end as issue_date,
    true_issue_date + pick([14, 30, 30, 60], 'i.terms', i) as due_date,
    -- Lifecycle outside the payment story: drafts, submitted, voided and deleted documents.
    case
        when scenario <> 'normal' then 'live'
        when u('i.life', i) < 0.03 then 'draft'
        when u('i.life', i) < 0.05 then 'submitted'
        when u('i.life', i) < 0.07 then 'voided'
        when u('i.life', i) < 0.08 then 'deleted'
        else 'live'
    end as lifecycle,
    least(date_diff('day', true_issue_date, date '2026-11-19'), 120) * 86400 as pay_window_secs,
    true_issue_date::timestamp + secs(8 * 3600 + u('i.created', i) * 3600) as created_at
from amounts
"""

_CREDIT_NOTE_BASE = """
create temp table cn_base as
with credited as (
    select i, row_number() over (order by i) as j
    from inv_base
    where scenario = 'credited'
),
base as (
    select
        j,
        bucket(j, 100) as cb,
        1 + ui('n.cust', j, getvariable('n_customers')) as customer_ix
    from range(1, getvariable('n_credit_notes') + 1) t(j)
),
scenarios as (
    select
        base.*,
        case
            when base.cb < 2 then 'unknown_customer'
            when base.cb < 3 then 'bad_currency'
            when base.cb < 4 then 'duplicate_key'
            when base.cb < 8 then 'voided_with_allocations'
            when base.cb < 11 then 'draft'
            when base.cb < 12 then 'deleted_with_allocation'
            when base.cb < 16 then 'refund'
            when base.cb < 20 then 'over_allocated'
            when base.cb < 24 then 'reversed_allocation'
            when base.cb < 26 then 'unknown_invoice'
            when base.cb < 28 then 'unknown_credit_note'
            when base.cb < 34 then 'unallocated'
            when base.cb < 60 then 'fully_used'
            when base.cb < 85 then 'partly_used'
            else 'split_with_refund'
        end as scenario,
        inv.invoice_id,
        inv.customer_id as invoice_customer_id,
        inv.currency_code as invoice_currency_code,
        inv.total_cents as invoice_total_cents,
        inv.true_issue_date as invoice_issue_date
    from base
    left join credited using (j)
    left join inv_base inv on inv.i = credited.i
),
shaped as (
    select
        *,
        case
            when invoice_id is null then 1000 + ui('n.amount', j, 200000)
            -- A credit for the whole invoice now and then, else 5-50% of it.
            when scenario = 'fully_used' and u('n.whole', j) < 0.3 then invoice_total_cents
            else greatest(1, floor(invoice_total_cents * (0.05 + 0.45 * u('n.share', j))))::bigint
        end as total_cents,
        case
            when invoice_id is null then date '2023-01-01' + ui('n.issue', j, 1415)::int
            else least(invoice_issue_date + 1 + ui('n.issue', j, 30)::int, date '2026-11-15')
        end as issue_date
    from scenarios
)
select
    *,
    format('CN-{:07d}', j) as credit_note_id,
    format('CR-{:05d}', 1000 + j) as credit_note_number,
    case
        when scenario = 'unknown_customer' then
            format('C-{:06d}', getvariable('n_customers') + 1 + ui('n.unknown', j, 1000))
        else coalesce(invoice_customer_id, format('C-{:06d}', customer_ix))
    end as customer_id,
    case
        when scenario = 'bad_currency' then 'ZZZ'
        else coalesce(invoice_currency_code,
                      pick(['GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP', 'GBP',
                            'GBP', 'GBP', 'GBP', 'GBP', 'EUR', 'EUR', 'EUR', 'USD', 'USD', 'AUD',
                            'CAD'], 'c.currency', customer_ix))
    end as currency_code,
    case scenario
        when 'voided_with_allocations' then pick(['VOIDED', 'voided', 'Voided'], 'n.st', j)
        when 'draft' then case when cb = 10 then 'Submitted'
                               else pick(['DRAFT', 'draft'], 'n.st', j) end
        when 'deleted_with_allocation' then 'DELETED'
        when 'refund' then pick(['PAID', 'paid', 'Paid'], 'n.st', j)
        when 'split_with_refund' then pick(['PAID', 'paid'], 'n.st', j)
        -- The source may still say AUTHORISED for a fully used credit note.
        when 'fully_used' then pick(['PAID', 'AUTHORISED', 'authorised'], 'n.st', j)
        else pick(['AUTHORISED', 'AUTHORISED', 'AUTHORISED', 'authorised', 'Authorised'],
                  'n.st', j)
    end as status,
    issue_date::timestamp + to_seconds(9 * 3600) as created_at,
    least(date_diff('day', issue_date, date '2026-11-19'), 60) * 86400 as alloc_window_secs
from shaped
"""

_ALLOCATIONS = """
create temp table alloc_rows as
with spread as (
    select
        *,
        case scenario
            when 'partly_used' then floor(total_cents * (0.3 + 0.6 * u('a.part', j)))::bigint
            when 'unknown_credit_note' then floor(total_cents * (0.3 + 0.6 * u('a.part', j)))::bigint
            when 'split_with_refund' then floor(total_cents * (0.4 + 0.4 * u('a.part', j)))::bigint
            when 'unknown_invoice' then floor(total_cents * (0.2 + 0.5 * u('a.part', j)))::bigint
            else total_cents
        end as spread_cents,
        case scenario
            when 'refund' then null
            when 'unknown_invoice' then
                format('INV-{:07d}', getvariable('n_invoices') + 1 + ui('a.unknown', j, 1000))
            else invoice_id
        end as target_invoice_id
    from cn_base
    where scenario not in ('unknown_customer', 'bad_currency', 'draft', 'unallocated',
                           'reversed_allocation')
),
main_plan as (
    select
        *,
        case
            -- Never split a few pence into pieces.
            when spread_cents < 300 then 1
            when scenario in ('fully_used', 'duplicate_key') then 1 + ui('a.k', j, 4)
            when scenario in ('partly_used', 'split_with_refund') then 1 + ui('a.k', j, 3)
            else 1
        end as k
    from spread
),
main_pieces as (
    select *, unnest(generate_series(1, k)) as m from main_plan
),
main_rows as (
    -- Pieces of 60-100% of an even share each; the last piece takes what is left, to the cent.
    select
        j,
        m as seq,
        k,
        credit_note_id,
        target_invoice_id as invoice_id,
        case when m < k then floor(spread_cents / k * (0.6 + 0.4 * u2('a.piece', j, m)))::bigint
             else 0 end as raw_cents,
        spread_cents,
        false as is_reversed,
        0.7 * (m - 1 + u2('a.when', j, m)) / k as position
    from main_pieces
),
main_final as (
    select
        * exclude (raw_cents, spread_cents, k),
        case when seq = k then spread_cents - sum(raw_cents) over (partition by j)
             else raw_cents end as cents
    from main_rows
),
extra_rows as (
    -- The rest of the credit refunded as cash (split), or a refund on top of it (over-allocated).
    select j, 10 as seq, credit_note_id, null as invoice_id, false as is_reversed,
           0.75 + 0.2 * u('a.refund', j) as position,
           total_cents - floor(total_cents * (0.4 + 0.4 * u('a.part', j)))::bigint as cents
    from cn_base where scenario = 'split_with_refund'
    union all
    select j, 10, credit_note_id, null, false, 0.75 + 0.2 * u('a.refund', j),
           greatest(1, floor(total_cents * (0.1 + 0.4 * u('a.over', j))))::bigint
    from cn_base where scenario = 'over_allocated'
    union all
    -- Allocated in full, reversed, then allocated again in part.
    select j, 1, credit_note_id, invoice_id, true, 0.3 * u('a.when', j), total_cents
    from cn_base where scenario = 'reversed_allocation'
    union all
    select j, 2, credit_note_id, invoice_id, false, 0.4 + 0.5 * u('a.when2', j),
           greatest(1, floor(total_cents * (0.3 + 0.5 * u('a.part', j))))::bigint
    from cn_base where scenario = 'reversed_allocation'
    union all
    -- An allocation whose credit note the extract never saw.
    select j, 20,
           format('CN-{:07d}', getvariable('n_credit_notes') + 1 + ui('a.unknowncn', j, 1000)),
           invoice_id, false, 0.5 + 0.4 * u('a.when3', j),
           greatest(1, floor(total_cents * 0.1))::bigint
    from cn_base where scenario = 'unknown_credit_note'
),
all_rows as (
    select j, seq, credit_note_id, invoice_id, is_reversed, position, cents from main_final
    union all
    select j, seq, credit_note_id, invoice_id, is_reversed, position, cents from extra_rows
)
select
    all_rows.*,
    cn.created_at + secs(3600 + position * (cn.alloc_window_secs - 3600)) as allocated_at
from all_rows
join cn_base cn using (j)
"""

_PAYMENT_PLAN = """
create temp table inv_plan as
with credit_applied as (
    -- The contract's rule: non-reversed allocations from credit notes not VOIDED or DELETED.
    select a.invoice_id, sum(a.cents) as cents
    from alloc_rows a
    join cn_base cn on cn.credit_note_id = a.credit_note_id
    where not a.is_reversed
      and upper(cn.status) not in ('VOIDED', 'DELETED')
      and a.invoice_id is not null
    group by all
),
profiled as (
    select
        inv.*,
        coalesce(ca.cents, 0) as credit_cents,
        u('i.profile', i) as up,
        true_issue_date >= date '2026-09-15' as recent
    from inv_base inv
    left join credit_applied ca using (invoice_id)
)
select
    *,
    case
        when lifecycle <> 'live' or scenario in ('negative_total', 'zero_total') then 'none'
        when scenario in ('float_cents', 'float_pounds', 'overpaid', 'bounced_then_paid')
            then scenario
        when scenario = 'paid_status_money_due' then 'partial'
        when scenario = 'credited' then
            case when credit_cents >= total_cents or up < 0.3 then 'none' else 'rest' end
        when up < 0.12 or (recent and up < 0.55) then 'none'
        when up < 0.37 then 'partial'
        else 'full'
    end as profile,
    case
        when scenario in ('float_cents', 'float_pounds', 'overpaid', 'bounced_then_paid') then 2
        when scenario = 'credited' then 1 + ui('i.k', i, 2)
        when up < 0.37 then 1 + ui('i.k', i, 3)
        else 1 + ui('i.k', i, 5)
    end as k,
    case
        when scenario = 'credited' then total_cents - credit_cents
        when up < 0.37 or scenario = 'paid_status_money_due' then
            greatest(1, floor(total_cents * (0.2 + 0.6 * u('i.part', i))))::bigint
        else total_cents
    end as pay_cents
from profiled
"""

_PAYMENTS = """
create temp table pay_rows as
with pieces as (
    select *, unnest(generate_series(1, k)) as m
    from inv_plan
    where profile <> 'none'
),
raw as (
    select
        i,
        m as seq,
        invoice_id,
        k,
        profile,
        pay_cents,
        total_cents,
        created_at,
        pay_window_secs,
        case
            when profile = 'float_cents' then [10, 20][m]
            when profile = 'float_pounds' then [10010, 20020][m]
            when profile = 'bounced_then_paid' then total_cents
            when profile = 'overpaid' then
                case when m = 1 then total_cents
                     else greatest(1, floor(total_cents * (0.01 + 0.99 * u('p.over', i))))::bigint
                end
            when m < k then floor(pay_cents / k * (0.6 + 0.4 * u2('p.piece', i, m)))::bigint
            else 0
        end as raw_cents,
        profile = 'bounced_then_paid' and m = 1 as is_reversed,
        (m - 1 + u2('p.when', i, m)) / k as position
    from pieces
),
amounted as (
    select
        * exclude (raw_cents),
        case
            when profile in ('float_cents', 'float_pounds', 'bounced_then_paid', 'overpaid')
                then raw_cents
            when seq = k then pay_cents - sum(raw_cents) over (partition by i)
            else raw_cents
        end as cents
    from raw
),
timed as (
    select
        i,
        seq,
        invoice_id,
        cents,
        is_reversed,
        created_at + secs(3600 + position * (pay_window_secs - 7200)) as paid_at,
        profile
    from amounted
),
bounced as (
    -- Now and then a first payment bounces: the same amount, earlier, reversed.
    select i, 0 as seq, invoice_id, cents, true as is_reversed,
           created_at + secs(1800 + 0.5 * epoch(paid_at - created_at)) as paid_at, profile
    from timed
    join inv_base using (i, invoice_id)
    where seq = 1 and profile in ('partial', 'full') and u('p.bounce', i) < 0.05
),
orphans as (
    -- Payments against invoices the extract never saw.
    select
        getvariable('n_invoices') + i as i,
        1 as seq,
        format('INV-{:07d}', getvariable('n_invoices') + 1 + ui('p.orphan', i, 1000)) as invoice_id,
        100 + ui('p.orphanamount', i, 100000) as cents,
        false as is_reversed,
        timestamp '2023-01-02' + secs(u('p.orphanwhen', i) * 120000000) as paid_at,
        'orphan' as profile
    from range(1, greatest(1, getvariable('n_invoices') // 200) + 1) t(i)
)
select * from timed
union all select * from bounced
union all select * from orphans
"""

_INSERT_PAYMENTS = """
insert into ledger.payments
select
    format('PAY-{:08d}', row_number() over (order by i, seq)) as payment_id,
    invoice_id,
    money(cents) as amount,
    paid_at,
    is_reversed,
    paid_at as updated_at
from pay_rows
order by i, seq
"""

_INSERT_INVOICES = """
insert into ledger.invoices
with events as (
    select invoice_id, max(paid_at) as last_at from pay_rows group by all
    union all
    select invoice_id, max(allocated_at) from alloc_rows where invoice_id is not null group by all
),
last_event as (
    select invoice_id, max(last_at) as last_at from events group by all
),
current_rows as (
    select
        p.*,
        case
            when lifecycle = 'draft' then pick(['DRAFT', 'DRAFT', 'Draft', 'draft'], 'i.st', i)
            when lifecycle = 'submitted' then pick(['SUBMITTED', 'submitted'], 'i.st', i)
            when lifecycle = 'voided' then pick(['VOIDED', 'VOIDED', 'voided'], 'i.st', i)
            when lifecycle = 'deleted' then 'DELETED'
            -- The source says PAID although money is still due.
            when scenario = 'paid_status_money_due' then pick(['PAID', 'Paid'], 'i.st', i)
            when profile in ('full', 'float_cents', 'float_pounds', 'overpaid',
                             'bounced_then_paid')
                 or (scenario = 'credited' and profile = 'rest')
                 or (scenario = 'credited' and credit_cents >= total_cents)
                 or (scenario = 'zero_total' and u('i.zeropaid', i) < 0.5)
                then pick(['PAID', 'PAID', 'Paid', 'paid'], 'i.st', i)
            else pick(['AUTHORISED', 'AUTHORISED', 'AUTHORISED', 'authorised', 'Authorised'],
                      'i.st', i)
        end as status,
        greatest(created_at, coalesce(e.last_at, created_at)) as updated_at,
        2 as version
    from inv_plan p
    left join last_event e using (invoice_id)
),
versions as (
    select i, version, invoice_id, invoice_number, customer_id, status, currency_code,
           sub_total, total, issue_date, due_date, updated_at
    from current_rows
    union all
    -- A duplicate key: an earlier draft of the same invoice, for less, never cleaned up.
    select i, 1, invoice_id, invoice_number, customer_id, 'DRAFT', currency_code,
           round(sub_total * 0.9, 2), round(round(sub_total * 0.9, 2) * 1.2, 2),
           issue_date, due_date, true_issue_date::timestamp + to_seconds(7 * 3600)
    from current_rows
    where scenario = 'duplicate_key'
)
select * exclude (i, version) from versions order by i, version
"""

_INSERT_CREDIT_NOTES = """
insert into ledger.credit_notes
with last_event as (
    select credit_note_id, max(allocated_at) as last_at from alloc_rows group by all
),
versions as (
    select
        j,
        2 as version,
        cn.credit_note_id,
        credit_note_number,
        customer_id,
        status,
        currency_code,
        money(total_cents) as total,
        issue_date,
        greatest(created_at, coalesce(e.last_at, created_at)) as updated_at
    from cn_base cn
    left join last_event e using (credit_note_id)
    union all
    select j, 1, credit_note_id, credit_note_number, customer_id, 'DRAFT', currency_code,
           money(total_cents), issue_date, issue_date::timestamp + to_seconds(8 * 3600)
    from cn_base
    where scenario = 'duplicate_key'
)
select * exclude (j, version) from versions order by j, version
"""

_INSERT_ALLOCATIONS = """
insert into ledger.credit_allocations
select
    format('CA-{:07d}', row_number() over (order by j, seq)) as allocation_id,
    credit_note_id,
    invoice_id,
    money(cents) as amount,
    allocated_at,
    is_reversed,
    allocated_at as updated_at
from alloc_rows
order by j, seq
"""

_STATEMENTS = (
    _MACROS,
    _CUSTOMERS,
    _INSERT_CUSTOMERS,
    _INVOICE_BASE,
    _CREDIT_NOTE_BASE,
    _ALLOCATIONS,
    _PAYMENT_PLAN,
    _PAYMENTS,
    _INSERT_PAYMENTS,
    _INSERT_INVOICES,
    _INSERT_CREDIT_NOTES,
    _INSERT_ALLOCATIONS,
)
