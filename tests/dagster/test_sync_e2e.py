"""Sync contract end to end (demo warehouse -> Dagster -> emulator over loopback): Chaser holds
exactly the models' rows, and later runs send only what changed, never duplicating or losing a write."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from tests.support.pipeline import make_pipeline

pytestmark = pytest.mark.slow


@pytest.fixture
def pipeline(tmp_path):
    p = make_pipeline(tmp_path)
    yield p
    p.handle.stop()


def last_seq(pipeline) -> int:
    store = pipeline.store()
    try:
        log = store.request_log()
        return log[-1].seq if log else 0
    finally:
        store.close()


def test_first_run_lands_exactly_the_models_rows_and_a_second_run_sends_nothing(pipeline):
    run = pipeline.sync()
    assert run.success
    for object_name in ("customers", "invoices", "credit_notes"):
        expected = pipeline.expected(object_name)
        assert expected, object_name
        assert pipeline.chaser(object_name) == expected, object_name
    # every mart row is either in Chaser or accounted for (skipped as not worth a request)
    [(customers,)] = pipeline.query("select count(*) from chaser_customers")
    assert len(pipeline.chaser("customers")) == customers
    [(invoices, skipped_or_held)] = pipeline.query(
        """select count(*), count(*) filter (where s.key is null)
        from chaser_invoices m left join chaser_sync.state s
        on s.object = 'invoices' and s.key = m.invoice_id"""
    )
    assert len(pipeline.chaser("invoices")) == invoices - skipped_or_held
    # nothing vanished: each invoice not in Chaser was counted as skipped or held back
    invoice_runs = run.summaries["sync_chaser_invoices"]
    assert skipped_or_held == sum(
        m.skipped_not_worth_sending + m.held_back_waiting_for_customer for m in invoice_runs
    )
    # held back by the models' rules: each month counts its own (by issue month)
    [(held_back_by_rules,)] = pipeline.query(
        """select count(*) from chaser_rejections r join stg_invoices s on s.invoice_id = r.key
        where r.entity = 'invoice' and r.severity = 'held_back' and s.issue_date >= '2023-01-01'"""
    )
    assert held_back_by_rules > 0
    assert sum(m.held_back_by_rules for m in invoice_runs) == held_back_by_rules
    # bulk upsert: one write request per 100 rows, per Chaser object
    for object_name, asset in (
        ("customers", "sync_chaser_customers"),
        ("invoices", "sync_chaser_invoices"),
    ):
        sent = run.summary((asset,)).created
        assert pipeline.write_requests(object_name) == -(-sent // 100)

    # one state row per document, and nothing left unfolded in the journal
    assert pipeline.query(
        "select count(*) - count(distinct (object, key)) from chaser_sync.state"
    ) == [(0,)]
    assert pipeline.query("select count(*) from chaser_sync.journal") == [(0,)]

    # the sync log has no step of its own: each sync step records a materialization of it
    log_event = pipeline.instance.get_latest_materialization_event(dg.AssetKey("chaser_sync_log"))
    assert log_event is not None
    [(logged,)] = pipeline.query("select count(*) from chaser_sync.log")
    assert log_event.asset_materialization.metadata["dagster/row_count"].value == logged

    before = pipeline.write_requests()
    again = pipeline.sync()
    assert again.success
    assert pipeline.write_requests() == before
    assert again.months == []
    assert again.summary().created == again.summary().updated == 0


def test_one_new_payment_resends_exactly_that_invoice(pipeline):
    assert pipeline.sync().success
    [(invoice_id, due)] = pipeline.query(
        """select invoice_id, amount_due from chaser_invoices
        where status = 'AUTHORISED' and amount_due > 1 order by invoice_id limit 1"""
    )
    pipeline.ledger(
        """insert into ledger.payments
        (payment_id, invoice_id, amount, paid_at, is_reversed, updated_at) values
        ('P-NEW-1', ?, 1.00, timestamp '2026-11-20 10:00', false, timestamp '2026-11-20 10:00')""",
        [invoice_id],
    )
    seq = last_seq(pipeline)
    run = pipeline.sync()
    assert run.success
    assert len(run.months) == 1
    store = pipeline.store()
    writes = [r for r in store.request_log() if r.is_write and r.seq > seq]
    store.close()
    assert [(w.object_name, w.entries) for w in writes] == [("invoices", 1)]
    sent = pipeline.chaser("invoices")[invoice_id]
    assert str(sent["amount_due"]) == str(due - 1)
    assert run.summary().updated == 1


def test_one_new_allocation_resends_that_invoice_and_that_credit_note(pipeline):
    assert pipeline.sync().success
    [(credit_note_id, customer, remaining)] = pipeline.query(
        """select credit_note_id, customer_external_id, remaining_credit from chaser_credit_notes
        where status = 'ACTIVE' and remaining_credit >= 2 order by credit_note_id limit 1"""
    )
    [(invoice_id,)] = pipeline.query(
        """select invoice_id from chaser_invoices
        where status = 'AUTHORISED' and amount_due >= 2 and customer_external_id = ?
        order by invoice_id limit 1""",
        [customer],
    ) or pipeline.query(
        """select invoice_id from chaser_invoices
        where status = 'AUTHORISED' and amount_due >= 2 order by invoice_id limit 1"""
    )
    pipeline.ledger(
        """insert into ledger.credit_allocations
        (allocation_id, credit_note_id, invoice_id, amount, allocated_at, is_reversed, updated_at) values
        ('CA-NEW-1', ?, ?, 1.00, timestamp '2026-11-20 11:00', false, timestamp '2026-11-20 11:00')""",
        [credit_note_id, invoice_id],
    )
    seq = last_seq(pipeline)
    assert pipeline.sync().success
    store = pipeline.store()
    writes = sorted(
        (r.object_name, r.entries) for r in store.request_log() if r.is_write and r.seq > seq
    )
    store.close()
    assert writes == [("credit_notes", 1), ("invoices", 1)]
    assert str(pipeline.chaser("credit_notes")[credit_note_id]["remaining_credit"]) == str(
        remaining - 1
    )


def test_a_customer_fixed_after_a_rejection_lands_and_then_its_held_back_invoices(pipeline):
    assert pipeline.sync().success
    [(customer_id, n_invoices)] = pipeline.query(
        """select r.key, count(*) from chaser_rejections r
        join chaser_rejections i on i.entity = 'invoice' and i.reason_code = 'customer_held_back'
            and i.detail like '%' || r.key || '%'
        where r.entity = 'customer' and r.severity = 'held_back' and r.reason_code = 'missing_company_name'
        group by r.key order by r.key limit 1"""
    )
    assert customer_id not in pipeline.chaser("customers")
    pipeline.ledger(
        "update ledger.customers set company_name = 'Fixed Ltd', updated_at = timestamp '2026-11-20 12:00' "
        "where customer_id = ?",
        [customer_id],
    )
    run = pipeline.sync()
    assert run.success
    assert pipeline.chaser("customers")[customer_id]["company_name"] == "Fixed Ltd"
    landed = [
        i for i in pipeline.chaser("invoices").values() if i["customer_external_id"] == customer_id
    ]
    expected = {
        k
        for k, v in pipeline.expected("invoices").items()
        if v["customer_external_id"] == customer_id
    }
    assert {i["invoice_id"] for i in landed} == expected
    assert len(expected) >= 1 and n_invoices >= 1


def test_dry_run_sends_nothing_and_changes_no_state(pipeline):
    run = pipeline.sync(dry_run=True)
    assert run.success
    assert pipeline.write_requests() == 0
    assert pipeline.query("select count(*) from chaser_sync.state") == [(0,)]
    [customers] = run.summaries["sync_chaser_customers"]
    assert customers.dry_run is True
    assert customers.planned_create > 0
    event = pipeline.instance.get_latest_materialization_event(dg.AssetKey("sync_chaser_customers"))
    assert event.asset_materialization.metadata["sample_payloads"].value
    assert run.summary(("sync_chaser_invoices",)).planned_create > 0
    # its rejection-rate check does not speak of rows sent
    [check] = pipeline.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("sync_chaser_customers"), "rejection_rate")]
    ).values()
    description = check.event.dagster_event.event_specific_data.description
    assert description.startswith("dry run: nothing was sent"), description


def test_the_api_secret_never_reaches_logs_metadata_or_the_event_log(pipeline, caplog):
    from dagster._serdes import serialize_value

    from tests.support.pipeline import API_SECRET

    caplog.set_level("DEBUG")
    assert pipeline.sync().success
    events = []
    for run_id in pipeline.instance.get_run_ids():
        events.extend(pipeline.instance.all_logs(run_id))
        run = pipeline.instance.get_run_by_id(run_id)
        assert API_SECRET not in serialize_value(run)
    assert events
    assert all(API_SECRET not in serialize_value(event) for event in events)
    assert API_SECRET not in caplog.text
    assert any("sync_chaser_customers" in serialize_value(e) for e in events)


def test_the_daily_drift_check_warns_about_a_record_edited_in_chaser(pipeline):
    import sqlite3

    from chaser_pipeline.chaser.encoding import dumps

    assert pipeline.sync().success

    def drift_check() -> dg.AssetCheckEvaluation:
        result = pipeline.defs.resolve_job_def("chaser_drift_sample").execute_in_process(
            instance=pipeline.instance,
            run_config={
                "ops": {"chaser_sync_log_chaser_drift_sample": {"config": {"pages_per_object": 9}}}
            },
        )
        [evaluation] = result.get_asset_check_evaluations()
        return evaluation

    clean = drift_check()
    assert clean.passed and clean.metadata["records_read"].value > 100
    [(customer_id,)] = pipeline.query("select min(external_id) from chaser_customers")
    edited = dict(pipeline.chaser("customers")[customer_id], company_name="Edited By Hand Ltd")
    with sqlite3.connect(pipeline.emulator_state) as chaser:
        chaser.execute(
            "update customers set payload = ? where key = ?", (dumps(edited).decode(), customer_id)
        )
    found = drift_check()
    assert not found.passed and found.severity == dg.AssetCheckSeverity.WARN
    assert found.metadata["drifted"].value == {"customers": [customer_id]}
    assert "chaser-pipeline reconcile" in found.description

    # a lost state: everything read back is unknown to it
    with duckdb.connect(str(pipeline.duckdb_path)) as con:
        con.execute("delete from chaser_sync.state")
    lost = drift_check()
    assert not lost.passed and lost.severity == dg.AssetCheckSeverity.WARN
    assert "unknown to the sync state" in lost.description
    assert lost.metadata["unknown_to_the_state"].value


def test_pending_documents_are_planned_again_only_when_their_inputs_change(pipeline):
    from datetime import date, datetime

    import duckdb

    from chaser_pipeline.defs.chaser_sync.pending_cache import cached_pending
    from chaser_pipeline.paths import models_dir
    from chaser_pipeline.sync.state import DuckDBState

    assert pipeline.sync().success
    now = datetime(2026, 11, 21)
    con = duckdb.connect(str(pipeline.duckdb_path))
    try:
        state = DuckDBState(con, pipeline.duckdb_path.parent)
        target = state.last_target()

        def pending() -> tuple:
            return cached_pending(
                state, target, models_dir(), history_start=date(2023, 1, 1), now=now
            )

        first, _ = pending()
        again, cached = pending()
        assert cached and again == first
        assert first.total == 0
        # Chaser's confirmation of one invoice is forgotten: that invoice is pending again
        [(key, month)] = con.execute(
            """select s.key, substr(m.date, 1, 7) || '-01' from chaser_sync.state s
            join chaser_invoices m on m.invoice_id = s.key
            where s.object = 'invoices' and m.date >= '2023' limit 1"""
        ).fetchall()
        con.execute("delete from chaser_sync.state where object = 'invoices' and key = ?", [key])
        changed, cached = pending()
        assert not cached
        assert changed.documents == {"invoices": 1}
        assert changed.months == [month]
    finally:
        con.close()
