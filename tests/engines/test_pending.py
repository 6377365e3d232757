"""Change detection contract: every way the ledger can change a document reaches Chaser on the next
run, found by comparing payloads (late rows, moved payments, voided credit, moved issue dates);
and the request forecast of what is pending is exactly the write requests the sync then makes
(the emulator's request log), on a first load and on an incremental change with contact persons;
the engines alone, on a small demo ledger, against the emulator over loopback."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta

import duckdb
import pytest

from chaser_pipeline.db import WHOLE_HISTORY, document_window, month_key
from chaser_pipeline.defs.partitions import describe_window
from chaser_pipeline.emulator import EmulatorStore
from chaser_pipeline.models.build import run_models
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.pending import compute_pending
from tests.support.engine import DEMO_FIRST_RUN as FIRST_RUN
from tests.support.engine import HISTORY_START, EnginePipeline, EngineRun
from tests.support.models import whole_history

NEXT_RUN = datetime(2026, 11, 21, 6)


@pytest.fixture
def pipeline(tmp_path, demo_first_run):
    """The demo ledger after its first run (FIRST_RUN), a copy of its own for each test."""
    done, first = demo_first_run
    assert first.sent > 0 and first.pending.months
    p = done.clone(tmp_path)
    yield p
    p.close()


def truth(p: EnginePipeline, invoice_id: str) -> tuple:
    """What the ledger says now: amount paid, amount due and status of one invoice."""
    [row] = p.query(
        "select paid_amount, due_amount, invoice_status from int_invoice_balances "
        "where invoice_id = ?",
        [invoice_id],
    )
    return row


def open_invoices(p: EnginePipeline, n: int) -> list[str]:
    rows = p.query(
        """select invoice_id from chaser_invoices
        where status = 'AUTHORISED' and amount_due > 5 order by invoice_id limit ?""",
        [n],
    )
    return [r[0] for r in rows]


def assert_nothing_pending(p: EnginePipeline) -> None:
    before = p.write_requests()
    again = p.run(NEXT_RUN)
    assert again.pending.months == [] and again.pending.total == 0
    assert p.write_requests() == before


def test_a_late_committed_row_inside_the_overlap_reaches_chaser(pipeline):
    p = pipeline
    [invoice_id] = open_invoices(p, 1)
    [(cursor,)] = p.query(
        "select cursor_at from landing._extract_state where table_name = 'payments'"
    )
    # committed late: its updated_at is older than the cursor the last run saw
    p.ledger(
        "insert into ledger.payments (payment_id, invoice_id, amount, paid_at, is_reversed, updated_at) "
        "values ('P-LATE', ?, 1.00, ?, false, ?)",
        [invoice_id, cursor, cursor.replace(minute=max(cursor.minute - 30, 0))],
    )
    p.run(NEXT_RUN)
    assert p.held_invoice(invoice_id) == truth(p, invoice_id)
    assert_nothing_pending(p)


def test_a_payment_moved_to_another_invoice_updates_both(pipeline):
    p = pipeline
    [(payment_id, old_invoice)] = p.query(
        """select s.payment_id, s.invoice_id from stg_payments s
        join chaser_invoices i on i.invoice_id = s.invoice_id
        where not s.is_reversed and s.payment_amount > 1 and i.status = 'AUTHORISED'
        order by s.payment_id limit 1"""
    )
    [new_invoice] = [i for i in open_invoices(p, 2) if i != old_invoice][:1]
    p.ledger(
        "update ledger.payments set invoice_id = ?, updated_at = timestamp '2026-11-20 09:00' "
        "where payment_id = ?",
        [new_invoice, payment_id],
    )
    run = p.run(NEXT_RUN)
    assert run.pending.documents == {"invoices": 2}
    assert p.held_invoice(old_invoice) == truth(p, old_invoice)
    assert p.held_invoice(new_invoice) == truth(p, new_invoice)
    assert_nothing_pending(p)


def test_voiding_a_credit_note_resends_the_invoices_it_paid(pipeline):
    p = pipeline
    rows = p.query(
        """select a.credit_note_id, a.invoice_id from stg_credit_allocations a
        join chaser_invoices i on i.invoice_id = a.invoice_id
        join chaser_credit_notes c on c.credit_note_id = a.credit_note_id
        where not a.is_reversed and a.invoice_id is not null and c.date[:7] <> i.date[:7]
        order by a.allocation_id limit 1"""
    )
    assert rows, "the demo ledger has credit applied across months"
    [(credit_note_id, invoice_id)] = rows
    before = truth(p, invoice_id)
    p.ledger(
        "update ledger.credit_notes set status = 'VOIDED', "
        "updated_at = timestamp '2026-11-20 09:30' where credit_note_id = ?",
        [credit_note_id],
    )
    p.run(NEXT_RUN)
    assert truth(p, invoice_id) != before
    assert p.held_invoice(invoice_id) == truth(p, invoice_id)
    assert_nothing_pending(p)


def move_forty_days(p: EnginePipeline, invoice_id: str, old_date: str) -> str:
    """Move an invoice's issue date 40 days on in the ledger and run: both its months were
    pending; its date in the mart now."""
    p.ledger(
        "update ledger.invoices set issue_date = issue_date + interval 40 day, "
        "updated_at = timestamp '2026-11-20 10:00' where invoice_id = ?",
        [invoice_id],
    )
    run = p.run(NEXT_RUN)
    [(new_date,)] = p.query("select date from chaser_invoices where invoice_id = ?", [invoice_id])
    assert new_date[:7] != old_date[:7]
    assert {old_date[:7] + "-01", new_date[:7] + "-01"} <= set(run.pending.months)
    return new_date


def test_an_invoice_moved_to_another_month_leaves_its_old_month_clean(pipeline):
    p = pipeline
    [invoice_id] = open_invoices(p, 1)
    [(old_date,)] = p.query("select date from chaser_invoices where invoice_id = ?", [invoice_id])
    new_date = move_forty_days(p, invoice_id, old_date)
    assert p.query("select count(*) from chaser_invoices where invoice_id = ?", [invoice_id]) == [
        (1,)
    ]
    assert p.chaser("invoices")[invoice_id]["date"] == new_date
    assert_nothing_pending(p)


def test_an_unsent_invoice_moved_to_another_month_stays_in_the_mart(pipeline):
    """A document never sent (not worth a first send) plans no create when its issue date
    moves, so only its old month was rebuilt and it fell out of the mart: its new month is
    pending too."""
    p = pipeline
    [(invoice_id, old_date)] = p.query(
        """select invoice_id, date from chaser_invoices
        where invoice_id not in (select key from chaser_sync.state where object = 'invoices')
        and date < '2026-01' order by invoice_id limit 1"""
    )
    new_date = move_forty_days(p, invoice_id, old_date)
    assert p.query("select date from chaser_invoices where invoice_id = ?", [invoice_id]) == [
        (new_date,)
    ]
    assert invoice_id not in p.chaser("invoices")  # still not worth sending
    assert_nothing_pending(p)


def test_an_invoice_issued_ahead_of_time_reaches_chaser_in_the_current_month(pipeline):
    """An invoice dated after the current month is in no month Dagster has yet: the current
    month's partition carries it (as the first carries everything before the history start),
    so the changed-months sensor, which keeps only known months, no longer drops it."""
    p = pipeline
    [invoice_id] = open_invoices(p, 1)
    ahead = date.today() + timedelta(days=70)
    p.ledger(
        "update ledger.invoices set issue_date = ?, due_date = ?, "
        "updated_at = timestamp '2026-11-20 10:00' where invoice_id = ?",
        [ahead, ahead + timedelta(days=30), invoice_id],
    )
    run = p.run(NEXT_RUN)
    assert run.pending.months[-1] == month_key(date.today())
    assert p.chaser("invoices")[invoice_id]["date"][:10] == ahead.isoformat()
    current = document_window(date.today().replace(day=1), date(2099, 1, 1), date(2023, 1, 1))
    assert current[1] == WHOLE_HISTORY[1]
    assert describe_window(current) == f"everything from {date.today():%Y-%m}-01"
    assert_nothing_pending(p)


def test_a_deleted_invoice_whose_last_version_is_held_back_is_withdrawn_as_chaser_holds_it(
    pipeline,
):
    """LEDGER_CONTRACT.md: a document Chaser holds whose row is gone is sent once more as
    DELETED, "other fields as last sent". When its last landed version breaks a rule (a due date
    blanked, then the row deleted) the mart cannot carry it: the withdrawal is read back from
    Chaser and sent with status DELETED, once."""
    p = pipeline
    [invoice_id] = open_invoices(p, 1)
    held = p.chaser("invoices")[invoice_id]
    assert held["status"] == "AUTHORISED"
    p.ledger(
        "update ledger.invoices set due_date = null, "
        "updated_at = timestamp '2026-11-20 10:00' where invoice_id = ?",
        [invoice_id],
    )
    p.run(NEXT_RUN)
    assert p.chaser("invoices")[invoice_id] == held  # stale in Chaser: the new version waits
    p.ledger("delete from ledger.invoices where invoice_id = ?", [invoice_id])
    p.run(NEXT_RUN + timedelta(hours=1))
    withdrawn = p.chaser("invoices")[invoice_id]
    assert withdrawn == {**held, "status": "DELETED"}  # other fields as Chaser held them
    assert_nothing_pending(p)  # once; and nothing of it is stale in Chaser any more


def test_a_held_back_withdrawal_chaser_no_longer_holds_is_read_back_once(pipeline):
    """Removed from Chaser by hand before the ledger deleted it: nothing to withdraw, and the
    one read that found so is not spent again at every run."""
    p = pipeline
    [invoice_id] = open_invoices(p, 1)
    p.ledger(
        "update ledger.invoices set due_date = null, "
        "updated_at = timestamp '2026-11-20 10:00' where invoice_id = ?",
        [invoice_id],
    )
    p.run(NEXT_RUN)
    with sqlite3.connect(p.emulator_state) as chaser:
        chaser.execute("delete from invoices where key = ?", (invoice_id,))
    p.ledger("delete from ledger.invoices where invoice_id = ?", [invoice_id])
    p.run(NEXT_RUN + timedelta(hours=1))
    assert invoice_id not in p.chaser("invoices")
    assert p.query(
        "select action from chaser_sync.log where object = 'invoices' and key = ? "
        "order by logged_at desc limit 1",
        [invoice_id],
    ) == [("gone",)]
    assert_nothing_pending(p)  # not pending again: no run asks Chaser for it again


def test_a_deleted_customer_whose_last_version_is_held_back_is_archived_as_chaser_holds_it(
    pipeline,
):
    p = pipeline
    [(customer_id,)] = p.query(
        "select min(external_id) from chaser_customers where status = 'ACTIVE' "
        "and len(addresses) > 0"
    )
    held = p.chaser("customers")[customer_id]
    p.ledger(
        "update ledger.customers set company_name = null, "
        "updated_at = timestamp '2026-11-20 10:00' where customer_id = ?",
        [customer_id],
    )
    p.run(NEXT_RUN)
    p.ledger("delete from ledger.customers where customer_id = ?", [customer_id])
    p.run(NEXT_RUN + timedelta(hours=1))
    assert p.chaser("customers")[customer_id] == {**held, "status": "ARCHIVED"}


def test_an_open_invoice_issued_before_the_history_start_reaches_chaser(tmp_path, demo_ledger):
    """No document is left out by the partitioning: the first month's partition carries every
    open document issued before CHASER_HISTORY_START, and the run says how many there are."""
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(demo_ledger.read_bytes())
    p = EnginePipeline(tmp_path, warehouse)
    try:
        p.ledger(
            """insert into ledger.invoices
            select 'INV-OLD-1', 'OLD-1', customer_id, 'AUTHORISED', 'GBP', 80.00, 96.00,
                date '2022-06-15', date '2022-07-15', timestamp '2022-06-15 09:00'
            from ledger.customers where company_name <> '' order by customer_id limit 1"""
        )
        first = p.run(FIRST_RUN)
        assert first.pending.before_history_start >= 1
        assert first.pending.months[0] == "2023-01-01"
        held = p.chaser("invoices")["INV-OLD-1"]
        assert held["status"] == "AUTHORISED" and held["date"].startswith("2022-06-15")
        assert_nothing_pending(p)
    finally:
        p.close()


# ---- when the pending changes were made (the data-lag check's figures) ----------------------


def pending_now(p: EnginePipeline, now: datetime):
    """What a run at `now` would find pending, without sending anything."""
    p.extract(now)
    run_models(p.con, p.project, only=whole_history())
    return compute_pending(p.state, p.target, p.project, history_start=HISTORY_START, now=now)


def test_each_pending_month_carries_the_time_of_its_newest_ledger_change(pipeline):
    """The data-lag check reads, per pending month, the oldest of its documents' newest ledger
    changes, and over everything the oldest change Chaser has not received, held-back versions
    included (a customer's, in no month). A document's change is its newest row behind it (here
    a payment committed after the invoice); a second check on the same connection sees the
    ledger as it is then, and leaves no working table behind."""
    p = pipeline
    paid, stale = open_invoices(p, 2)
    months = dict(
        p.query(
            "select invoice_id, substr(date, 1, 7) || '-01' from chaser_invoices "
            "where invoice_id in (?, ?)",
            [paid, stale],
        )
    )
    paid_at = datetime(2026, 11, 21, 2)
    p.ledger(
        "insert into ledger.payments (payment_id, invoice_id, amount, paid_at, is_reversed, "
        "updated_at) values ('P-LAG', ?, 1.00, ?, false, ?)",
        [paid, paid_at, paid_at],
    )
    # Chaser holds it; its new version breaks a rule: outstanding (stale in Chaser), and its
    # month is rebuilt, since the mart may no longer hold it
    blanked_at = datetime(2026, 11, 21, 1)
    p.ledger(
        "update ledger.invoices set due_date = null, updated_at = ? where invoice_id = ?",
        [blanked_at, stale],
    )

    # a customer Chaser holds whose new version is held back: a change in no month at all, and
    # the oldest one Chaser has not received
    renamed_at = datetime(2026, 11, 21, 0, 30)
    [(customer,)] = p.query(
        """select external_id from chaser_customers where external_id not in (
            select customer_external_id from chaser_invoices where invoice_id in (?, ?))
        order by external_id limit 1""",
        [paid, stale],
    )
    p.ledger(
        "update ledger.customers set company_name = null, updated_at = ? where customer_id = ?",
        [renamed_at, customer],
    )

    def expected(paid_change: datetime) -> dict[str, datetime]:
        by_month = {months[paid]: paid_change}
        by_month[months[stale]] = min(blanked_at, by_month.get(months[stale], blanked_at))
        return by_month

    first = pending_now(p, NEXT_RUN)
    assert first.documents == {"invoices": 2, "customers": 1}
    assert first.oldest_change_by_month == expected(paid_at)
    assert first.oldest_change == renamed_at
    # the payment changed again: the same connection's next check sees the new time
    moved_at = datetime(2026, 11, 21, 3)
    p.ledger(
        "update ledger.payments set amount = 2.00, updated_at = ? where payment_id = 'P-LAG'",
        [moved_at],
    )
    again = pending_now(p, NEXT_RUN + timedelta(hours=1))
    assert again.oldest_change_by_month == expected(moved_at)
    assert again.oldest_change == renamed_at
    left = "select table_name from information_schema.tables where table_name like 'pending_chang%'"
    assert p.query(left) == []


def test_a_check_that_fails_part_way_leaves_no_working_table_and_says_why(pipeline):
    """A pending check that fails after it built the newest-change tables (here the rejections
    table was replaced by one without its columns) raises the database's own error and leaves
    none of those whole-history tables on the connection."""
    p = pipeline
    p.con.execute("create or replace table chaser_rejections as select 1 as unrelated")
    with pytest.raises(duckdb.BinderException, match="severity"):
        compute_pending(p.state, p.target, p.project, history_start=HISTORY_START, now=NEXT_RUN)
    left = "select table_name from information_schema.tables where table_name like 'pending_chang%'"
    assert p.query(left) == []


# ---- the request forecast -------------------------------------------------------------------


def writes_by_object(p: EnginePipeline) -> dict[str, int]:
    """Write requests in the emulator's log so far, per Chaser object (every status)."""
    with EmulatorStore(p.emulator_state) as store:
        assert store.request_count(status=429) == 0, "the forecast is checked without retries"
        return {name: store.write_request_count(name) for name in CHASER_OBJECTS}


def assert_forecast_was_exact(run: EngineRun, before: dict[str, int], after: dict[str, int]):
    made = {name: after[name] - before[name] for name in CHASER_OBJECTS}
    assert run.pending.requests_by_object == made
    assert run.pending.requests == sum(made.values())
    # each sync step's own forecast, made just before it sent, says the same
    assert {r.object_name: r.planned_requests for r in run.reports} == {
        name: n for name, n in made.items() if name in {r.object_name for r in run.reports}
    }


def contact_routes(p: EnginePipeline, since_seq: int) -> list[str]:
    """The customer of each contact-person request since `since_seq`, in the log's order."""
    with EmulatorStore(p.emulator_state) as store:
        return [
            r.path.split("/")[4]
            for r in store.request_log("contact_persons")
            if r.seq > since_seq and r.is_write
        ]


def last_seq(p: EnginePipeline) -> int:
    with EmulatorStore(p.emulator_state) as store:
        return max((r.seq for r in store.request_log()), default=0)


@pytest.mark.slow
def test_the_forecast_is_the_write_requests_the_sync_makes(tmp_path, demo_ledger):
    """First load: documents and contact persons wait for customers that land in the same sync,
    and still count. Then a change of every kind, the stop-chasing ones among them (a contact
    archived beside a new one of the same customer, invoices paid beside new ones): each
    object's requests are ceil(rows / 100), contact persons one request per customer with a
    change, and the forecast says so before anything is sent."""
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(demo_ledger.read_bytes())
    p = EnginePipeline(tmp_path, warehouse)
    try:
        before = writes_by_object(p)
        first = p.run(FIRST_RUN)
        assert first.pending.requests_by_object["contact_persons"] > 1
        assert_forecast_was_exact(first, before, writes_by_object(p))

        [(archived, customer_a), (_, customer_b)] = p.query(
            """select external_id, customer_external_id from chaser_contact_persons
            where status = 'ACTIVE' and external_id like 'CT-%'
            qualify row_number() over (partition by customer_external_id order by external_id) = 1
            order by customer_external_id limit 2"""
        )
        [(renamed,)] = p.query(
            "select external_id from chaser_customers where status = 'ACTIVE' "
            "and external_id not in (?, ?) order by external_id limit 1",
            [customer_a, customer_b],
        )
        paid, redated = open_invoices(p, 2), open_invoices(p, 3)[2]
        [(credit_note,)] = p.query(
            "select credit_note_id from chaser_credit_notes where status = 'ACTIVE' "
            "order by credit_note_id limit 1"
        )
        at = "timestamp '2026-11-20 09:00'"
        p.ledger(
            f"update ledger.contacts set is_archived = true, updated_at = {at} "
            "where contact_id = ?",
            [archived],
        )
        p.ledger(
            f"""insert into ledger.contacts values
            ('CT-NEW-1', ?, 'Nia', 'Khan', 'nia.khan@example.com', null, null, false, {at}),
            ('CT-NEW-2', ?, 'Ola', 'Berg', 'ola.berg@example.com', null, null, false, {at}),
            ('CT-NEW-3', 'C-NEW', 'Ana', 'Ruiz', 'ana.ruiz@example.com', null, null, false, {at})""",
            [customer_a, customer_b],
        )
        p.ledger(
            f"""insert into ledger.customers
            select 'C-NEW', 'Newco Trading Ltd', contact_first_name, contact_last_name,
                'accounts@newco.example.com', phone, mobile, address_line1, address_line2, city,
                region, postal_code, country, false, {at}
            from ledger.customers where customer_id = ?""",
            [renamed],
        )
        p.ledger(
            f"update ledger.customers set company_name = company_name || ' Group', "
            f"updated_at = {at} where customer_id = ?",
            [renamed],
        )
        p.ledger(
            f"""insert into ledger.invoices values
            ('INV-NEW-1', 'N-1', 'C-NEW', 'AUTHORISED', 'GBP', 100.00, 120.00,
                date '2026-11-10', date '2026-12-10', {at}),
            ('INV-NEW-2', 'N-2', ?, 'AUTHORISED', 'GBP', 50.00, 60.00,
                date '2026-11-12', date '2026-12-12', {at})""",
            [renamed],
        )
        for i, invoice_id in enumerate(paid):
            [(due,)] = p.query(
                "select amount_due from chaser_invoices where invoice_id = ?", [invoice_id]
            )
            p.ledger(
                f"""insert into ledger.payments (payment_id, invoice_id, amount, paid_at,
                    is_reversed, updated_at) values (?, ?, ?, {at}, false, {at})""",
                [f"P-PAID-{i}", invoice_id, due],
            )
        p.ledger(
            f"update ledger.invoices set due_date = due_date + interval 7 day, "
            f"updated_at = {at} where invoice_id = ?",
            [redated],
        )
        p.ledger(
            f"update ledger.credit_notes set credit_note_number = 'CN-RENUMBERED', "
            f"updated_at = {at} where credit_note_id = ?",
            [credit_note],
        )

        before, seq = writes_by_object(p), last_seq(p)
        change = p.run(NEXT_RUN)
        after = writes_by_object(p)
        assert_forecast_was_exact(change, before, after)
        routes = contact_routes(p, seq)
        # one request per customer whose contact persons changed, the archived one's included
        assert sorted(routes) == sorted(set(routes))
        assert {f"ext_{c}" for c in (customer_a, customer_b, "C-NEW")} <= set(routes)
        # fewer than 100 changed rows of each document object: one request each
        assert {n: after[n] - before[n] for n in ("customers", "invoices", "credit_notes")} == {
            "customers": 1,
            "invoices": 1,
            "credit_notes": 1,
        }
        assert_nothing_pending(p)
    finally:
        p.close()
