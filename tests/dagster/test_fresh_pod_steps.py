"""A step run on its own in a fresh pod (production: CHASER_STATE_URL on PostgreSQL, every run on
an empty disk) does its job there: a sync step re-executed from failure, or materialized alone,
lands the ledger and builds its mart for its window instead of failing on a missing table (or
planning from an empty one), and `chaser_pending_months` run alone finds the months a full
incremental run finds instead of reporting nothing pending."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from chaser_pipeline.definitions import defs as load_defs
from tests.support.pipeline import AS_OF, Pipeline, make_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _config(*syncs: str) -> dict:
    return {"ops": {name: {"config": {"as_of": AS_OF}} for name in syncs}}


def _new_pod(p: Pipeline, folder: Path) -> None:
    """An empty working folder, the same warehouse, Chaser and state: the code loaded again."""
    folder.mkdir(parents=True)
    os.environ["CHASER_DUCKDB_PATH"] = str(folder / "pipeline.duckdb")
    p.duckdb_path = folder / "pipeline.duckdb"
    p.defs = load_defs()


def _incremental(p: Pipeline, **options) -> dg.ExecuteInProcessResult:
    return p.defs.resolve_job_def("chaser_incremental_sync").execute_in_process(
        instance=p.instance, run_config=_config("sync_chaser_customers"), **options
    )


@pytest.fixture
def pipeline(tmp_path, postgres_url, monkeypatch):
    monkeypatch.setenv("CHASER_DUCKDB_PATH", os.environ.get("CHASER_DUCKDB_PATH", ""))
    p = make_pipeline(tmp_path / "shared", invoices=300, env={"CHASER_STATE_URL": postgres_url})
    try:
        yield p
    finally:
        p.handle.stop()


def test_a_sync_step_re_executed_alone_in_a_fresh_pod_builds_its_mart(tmp_path, pipeline):
    p = pipeline
    _new_pod(p, tmp_path / "pod-1")
    assert _incremental(p).success
    before = p.chaser("invoices")
    # the monthly run's mart step succeeded in one pod, its sync step failed; "re-execute from
    # failure" runs the sync step alone, in another
    _new_pod(p, tmp_path / "pod-2")
    result = p.defs.resolve_job_def("chaser_monthly_sync").execute_in_process(
        instance=p.instance,
        run_config=_config("sync_chaser_invoices"),
        partition_key="2024-03-01",
        asset_selection=[dg.AssetKey("sync_chaser_invoices")],
        raise_on_error=False,
    )
    assert result.success
    sent = {k for k, v in p.chaser("invoices").items() if k not in before}
    assert sent and all(
        v["date"].startswith("2024-03") for k, v in p.chaser("invoices").items() if k in sent
    )


def test_pending_months_run_alone_in_a_fresh_pod_finds_what_the_full_run_finds(tmp_path, pipeline):
    p = pipeline
    _new_pod(p, tmp_path / "pod-1")
    full = _incremental(p)
    [planned] = full.asset_materializations_for_node("chaser_pending_months")
    # re-executed from failure (the mass-change guard stopped it, say), in a new pod
    _new_pod(p, tmp_path / "pod-2")
    alone = _incremental(p, asset_selection=[dg.AssetKey("chaser_pending_months")])
    [again] = alone.asset_materializations_for_node("chaser_pending_months")
    # the months (the documents differ: the first run has sent the customers since)
    assert again.metadata["changed_months"].value == planned.metadata["changed_months"].value
    assert len(planned.metadata["changed_months"].value) > 40


def _open_invoice(p: Pipeline) -> str:
    return next(k for k, v in sorted(p.chaser("invoices").items()) if v["status"] == "AUTHORISED")


def test_an_invoice_deleted_while_no_disk_kept_it_is_withdrawn(tmp_path, pipeline):
    """A hard delete is found by comparing the warehouse's keys with the landed ones; a fresh
    disk lands everything again and has nothing to compare. The keys the state holds that the
    landing does not are the deletions then: the invoice is sent DELETED, as Chaser held it."""
    p = pipeline
    _new_pod(p, tmp_path / "pod-1")
    assert p.sync().success
    key = _open_invoice(p)
    for table in ("payments", "credit_allocations", "invoices"):
        p.ledger(f"delete from ledger.{table} where invoice_id = ?", [key])
    _new_pod(p, tmp_path / "pod-2")
    run = p.sync()
    assert run.success and run.months
    assert p.chaser("invoices")[key]["status"] == "DELETED"
    _new_pod(p, tmp_path / "pod-3")
    before = p.write_requests()
    assert p.sync().success and p.write_requests() == before  # once


def test_a_warehouse_emptied_on_a_fresh_disk_is_stopped_by_the_mass_change_guard(
    tmp_path, pipeline
):
    """CHASER_WAREHOUSE_URL pointed at a database whose ledger is empty, on a fresh disk: every
    key the state holds is missing from the landing. The guard counts those withdrawals and
    stops the sync before anything is sent (and before any read-back)."""
    p = pipeline
    _new_pod(p, tmp_path / "pod-1")
    assert p.sync().success
    for table in ("credit_allocations", "payments", "credit_notes", "invoices", "contacts"):
        p.ledger(f"delete from ledger.{table}")
    _new_pod(p, tmp_path / "pod-2")
    before = p.write_requests()
    run = p.sync()
    assert not run.success and p.write_requests() == before
    assert all(v["status"] != "DELETED" for v in p.chaser("invoices").values())


def _month_with_invoices_and_credit_notes(p: Pipeline) -> str:
    [(month,)] = p.query(
        """select i.month from (
            select substr(date, 1, 7) || '-01' as month from chaser_invoices group by 1) as i
        join (
            select substr(date, 1, 7) || '-01' as month, count(*) as n
            from chaser_credit_notes group by 1) as c using (month)
        where month >= '2024-01-01' and month < '2026-10-01'
        order by c.n desc, month limit 1"""
    )
    return month


def test_two_sync_steps_re_executed_together_in_a_fresh_pod_both_send(tmp_path, pipeline):
    """The first step to land the ledger on the fresh disk also makes the other monthly marts,
    empty: the second step builds its own month all the same, rather than plan from an empty
    mart and report success with nothing sent (found by review)."""
    p = pipeline
    _new_pod(p, tmp_path / "pod-1")
    assert p.sync().success
    month = _month_with_invoices_and_credit_notes(p)
    # the month's documents change; its monthly run's mart steps succeed, both syncs fail;
    # "re-execute from failure" runs the two sync steps together, in a new pod
    p.ledger(
        "update ledger.invoices set due_date = due_date + 1, updated_at = '2026-11-20 10:00' "
        "where strftime(issue_date::date, '%Y-%m-01') = ?",
        [month],
    )
    p.ledger(
        "update ledger.credit_notes set credit_note_number = credit_note_number || '-R', "
        "updated_at = '2026-11-20 10:00' where strftime(issue_date::date, '%Y-%m-01') = ?",
        [month],
    )
    invoices, credit_notes = p.write_requests("invoices"), p.write_requests("credit_notes")
    _new_pod(p, tmp_path / "pod-2")
    result = p.defs.resolve_job_def("chaser_monthly_sync").execute_in_process(
        instance=p.instance,
        run_config=_config("sync_chaser_invoices", "sync_chaser_credit_notes"),
        partition_key=month,
        asset_selection=[
            dg.AssetKey("sync_chaser_invoices"),
            dg.AssetKey("sync_chaser_credit_notes"),
        ],
        raise_on_error=False,
    )
    assert result.success
    assert p.write_requests("invoices") > invoices
    assert p.write_requests("credit_notes") > credit_notes
