"""Automation contract: a ledger change triggers a sync of exactly its month, schedule and sensor
start on, a scheduled tick waits for the run it would collide with, the data-lag check fails when
the ledger moved and Chaser did not, and API calls share a pool."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from chaser_pipeline.definitions import defs as load_defs
from chaser_pipeline.defs.automation.jobs import MONTHLY_ASSETS
from chaser_pipeline.defs.automation.runs import HOST_TAG, sync_lock
from chaser_pipeline.defs.automation.sensors import HEADLESS_TAG
from chaser_pipeline.defs.chaser_sync.assets import CHASER_API_POOL
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.state import DuckDBState, Target
from tests.support.pipeline import AS_OF, Pipeline, make_pipeline

CHANGE_AT = "2026-11-20 10:00:00"
LAG_CHECK_OP = "chaser_pending_months_chaser_data_lag"


def sync_config(*syncs: str) -> dict:
    return {name: {"config": {"as_of": AS_OF}} for name in syncs}


def run_incremental(p: Pipeline, *, dry_run: bool = False, **kwargs) -> dg.ExecuteInProcessResult:
    ops = sync_config("sync_chaser_customers")
    if dry_run:
        ops["sync_chaser_customers"]["config"]["dry_run"] = True
    job = p.defs.resolve_job_def("chaser_incremental_sync")
    result = job.execute_in_process(instance=p.instance, run_config={"ops": ops}, **kwargs)
    assert result.success
    return result


def run_month(p: Pipeline, month: str, **kwargs) -> dg.ExecuteInProcessResult:
    result = p.defs.resolve_job_def("chaser_monthly_sync").execute_in_process(
        instance=p.instance,
        partition_key=month,
        run_config={"ops": sync_config("sync_chaser_invoices", "sync_chaser_credit_notes")},
        **kwargs,
    )
    assert result.success
    return result


def evaluate_sensor(p: Pipeline, cursor: str | None):
    context = dg.build_sensor_context(instance=p.instance, definitions=p.defs, cursor=cursor)
    data = p.defs.resolve_sensor_def("chaser_changed_months_sensor").evaluate_tick(context)
    return data, context.cursor


def lag_check(p: Pipeline, as_of: str) -> dg.AssetCheckEvaluation:
    """Run the data-lag check's own job, as its hourly schedule does."""
    result = p.defs.resolve_job_def("chaser_data_lag_check").execute_in_process(
        instance=p.instance, run_config={"ops": {LAG_CHECK_OP: {"config": {"as_of": as_of}}}}
    )
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def old_open_invoice(p: Pipeline) -> tuple[str, str]:
    [(invoice_id, month)] = p.query(
        """select invoice_id, substr(date, 1, 7) || '-01' from chaser_invoices
        where status = 'AUTHORISED' and amount_due > 1 and date < '2025-01'
        order by invoice_id limit 1"""
    )
    return invoice_id, month


def pay(p: Pipeline, invoice_id: str, at: str = CHANGE_AT) -> None:
    p.ledger(
        """insert into ledger.payments
        (payment_id, invoice_id, amount, paid_at, is_reversed, updated_at) values
        ('P-AUTO-1', ?, 1.00, ?::timestamp, false, ?::timestamp)""",
        [invoice_id, at, at],
    )


@pytest.fixture
def pipeline(tmp_path):
    p = make_pipeline(tmp_path)
    yield p
    p.instance.dispose()
    p.handle.stop()


def test_schedule_and_sensor_start_running_and_target_the_right_jobs():
    defs = load_defs()
    daily_sync_schedule = defs.resolve_schedule_def("chaser_daily_sync")
    changed_months_sensor = defs.resolve_sensor_def("chaser_changed_months_sensor")
    assert daily_sync_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert daily_sync_schedule.job_name == "chaser_incremental_sync"
    assert changed_months_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert changed_months_sensor.job_name == "chaser_monthly_sync"


@pytest.mark.parametrize(
    ("schedule", "blocking", "not_blocking"),
    [
        (
            "chaser_daily_sync",
            ["chaser_incremental_sync", "chaser_monthly_sync"],
            ["chaser_data_lag_check"],
        ),
        ("chaser_data_lag_check", ["chaser_data_lag_check"], ["chaser_incremental_sync"]),
        ("chaser_drift_sample", ["chaser_drift_sample"], ["chaser_monthly_sync"]),
    ],
)
def test_a_schedule_skips_its_tick_while_a_run_it_would_collide_with_has_not_finished(
    schedule, blocking, not_blocking
):
    """A first load at Chaser's budget sends for hours, holding the pipeline's DuckDB and the
    chaser_api pool: a daily sync started then would fail on the file's lock, and hourly checks
    would pile up waiting for the pool. The tick is skipped with the run named; once that run
    has finished (whatever its outcome) the next tick runs."""
    defs = load_defs()
    definition = defs.resolve_schedule_def(schedule)
    with dg.instance_for_test() as instance:

        def tick() -> dg.ScheduleExecutionData:
            context = dg.build_schedule_context(instance=instance)
            return definition.evaluate_tick(context)

        assert len(tick().run_requests) == 1
        for job_name in not_blocking:
            instance.create_run_for_job(defs.resolve_job_def(job_name))
        assert len(tick().run_requests) == 1
        for job_name in blocking:
            run = instance.create_run_for_job(defs.resolve_job_def(job_name))
            data = tick()
            assert not data.run_requests
            assert f"Run {run.run_id} of {job_name} has not finished" in data.skip_message
            instance.report_run_failed(run)
        assert len(tick().run_requests) == 1


def test_freshness_is_asked_of_what_runs_every_day_not_of_the_monthly_syncs():
    """The extracts and the customer syncs run daily, so a missed day is stale; a monthly sync
    runs only when a month changed, so a quiet day (a weekend) would turn it red although
    nothing waits for Chaser: the data-lag check judges those."""
    defs = load_defs()

    def freshness(name: str):
        [spec] = [s for s in defs.resolve_assets_def(name).specs if s.key.to_user_string() == name]
        return spec.freshness_policy

    for chaser_object in CHASER_OBJECTS.values():
        policy = freshness(chaser_object.sync_asset)
        assert (policy is None) == chaser_object.partitioned, chaser_object.sync_asset
    assert freshness("ledger_invoices") is not None


def test_every_step_that_calls_chaser_declares_the_chaser_api_pool():
    defs = load_defs()
    callers = {o.sync_asset for o in CHASER_OBJECTS.values()} | {
        "chaser_pending_months",  # checks which organisation the credentials belong to
    }
    for asset in defs.assets:
        if isinstance(asset, dg.AssetSpec):
            continue  # no step: the sync log, written by the sync steps
        names = {key.to_user_string() for key in asset.keys}
        pool = asset.op.pool
        if names & callers:
            assert pool == CHASER_API_POOL, names
            assert asset.required_resource_keys >= {"chaser"}
        else:
            # nothing else talks to Chaser, so nothing else needs the pool
            assert "chaser" not in asset.required_resource_keys, names
    # asset checks too: the daily drift sample reads pages from Chaser
    for checks in defs.asset_checks:
        if "chaser" in checks.required_resource_keys:
            assert checks.op.pool == CHASER_API_POOL, checks.check_keys
    drift = defs.resolve_job_def("chaser_drift_sample")
    assert [node.pool for node in drift.graph.node_defs] == [CHASER_API_POOL]
    # the data-lag check calls nothing, but reads the DuckDB a sending step holds: it waits in
    # the pool for that step rather than fail on the file's lock
    lag = defs.resolve_job_def("chaser_data_lag_check")
    assert [node.pool for node in lag.graph.node_defs] == [CHASER_API_POOL]
    monthly = defs.resolve_job_def("chaser_monthly_sync")
    assert {node.name for node in monthly.graph.node_defs if node.pool == CHASER_API_POOL} == {
        "sync_chaser_invoices",
        "sync_chaser_credit_notes",
        "sync_chaser_overpayments",
    }
    assert set(MONTHLY_ASSETS) >= {"sync_chaser_invoices", "sync_chaser_credit_notes"}


@pytest.mark.slow
def test_a_payment_on_an_old_invoice_syncs_exactly_that_month_and_that_invoice(pipeline, tmp_path):
    p = pipeline
    assert p.sync().success
    # from here on a persistent instance: the sensor reads its event log (build_sensor_context
    # refuses an ephemeral one); the full first sync stays in memory, which is much faster
    p.instance.dispose()
    (tmp_path / "dagster_home").mkdir()
    p.instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home"))
    nothing, _ = evaluate_sensor(p, None)
    assert not nothing.run_requests

    invoice_id, month = old_open_invoice(p)
    pay(p, invoice_id)
    run_incremental(p)
    data, cursor = evaluate_sensor(p, None)
    assert [r.partition_key for r in data.run_requests] == [month]
    [request] = data.run_requests
    assert request.run_key
    # the materialization is consumed: the next tick with the new cursor requests nothing
    again, _ = evaluate_sensor(p, cursor)
    assert not again.run_requests

    store = p.store()
    seq = max((r.seq for r in store.request_log()), default=0)
    store.close()
    result = run_month(p, request.partition_key, tags=request.tags)
    store = p.store()
    writes = [(r.object_name, r.entries) for r in store.request_log() if r.is_write and r.seq > seq]
    store.close()
    assert writes == [("invoices", 1)]
    [materialization] = result.asset_materializations_for_node("sync_chaser_invoices")
    assert materialization.partition == month
    assert materialization.metadata["updated"].value == 1


@pytest.mark.slow
def test_the_sensor_requests_the_months_only_once_the_incremental_run_has_finished(
    pipeline, tmp_path
):
    """chaser_pending_months materializes before the incremental run syncs customers: a monthly
    run started then would build its marts while the customers' sync holds the pipeline's
    DuckDB (failing on its lock) or send invoices ahead of their customers. The sensor waits
    for the run to finish, and reads the same materialization again on the next tick."""
    p = pipeline
    assert p.sync().success
    p.instance.dispose()
    (tmp_path / "dagster_home").mkdir()
    p.instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home"))
    invoice_id, month = old_open_invoice(p)
    pay(p, invoice_id)
    [(url, organisation)] = p.query(
        "select url, organisation_id from chaser_sync.targets order by last_checked_at desc limit 1"
    )
    results: list[dg.ExecuteInProcessResult] = []
    # the customers' sync step waits for this lock: the run is held after its pending months
    holder = DuckDBState(duckdb.connect(), p.duckdb_path.parent)
    with holder.lock(Target(url, organisation), wait_seconds=5):
        run = threading.Thread(target=lambda: results.append(run_incremental(p)))
        run.start()
        deadline = time.monotonic() + 120
        pending = dg.AssetKey("chaser_pending_months")
        while p.instance.get_latest_materialization_event(pending) is None:
            assert time.monotonic() < deadline and run.is_alive(), "no pending months"
            time.sleep(0.05)  # polling the event log, with a deadline
        data, cursor = evaluate_sensor(p, None)
        assert not data.run_requests
        assert "is still running" in data.skip_message
        assert cursor is None
    run.join(timeout=300)
    assert results and results[0].success
    data, cursor = evaluate_sensor(p, None)
    assert [r.partition_key for r in data.run_requests] == [month]
    again, _ = evaluate_sensor(p, cursor)
    assert not again.run_requests


@pytest.mark.slow
def test_first_run_requests_one_range_run_covering_every_pending_month(pipeline, tmp_path):
    """All history is pending after the first incremental run: a run per month would start
    dozens of runs on one DuckDB file, and would send each month's changes in turn instead of
    the stop-chasing changes of every month first; one range run covers them all."""
    p = pipeline
    (tmp_path / "dagster_home").mkdir()
    p.instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home"))
    result = run_incremental(p)
    [pending] = result.asset_materializations_for_node("chaser_pending_months")
    changed = pending.metadata["changed_months"].value
    assert len(changed) > 24
    data, _ = evaluate_sensor(p, None)
    covered = []
    for request in data.run_requests:
        start = request.partition_key or request.tags["dagster/asset_partition_range_start"]
        end = request.partition_key or request.tags["dagster/asset_partition_range_end"]
        covered.extend(m for m in changed if start <= m <= end)
    assert sorted(covered) == sorted(changed)
    [request] = data.run_requests
    assert request.partition_key is None
    assert request.tags["dagster/asset_partition_range_start"] == changed[0]
    assert request.tags["dagster/asset_partition_range_end"] == changed[-1]


@pytest.mark.slow
def test_sensor_skips_pending_months_of_headless_syncs_and_dry_runs(pipeline, tmp_path):
    """`chaser-pipeline sync` runs its own monthly syncs, and a dry run must never lead to
    real sends: neither run's pending months may start monthly runs."""
    p = pipeline
    (tmp_path / "dagster_home").mkdir()
    p.instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home"))

    run_incremental(p, dry_run=True)
    data, cursor = evaluate_sensor(p, None)
    assert not data.run_requests
    assert "dry run" in data.skip_message

    run_incremental(p, tags={HEADLESS_TAG: "true"})
    data, cursor = evaluate_sensor(p, cursor)
    assert not data.run_requests
    assert "chaser-pipeline sync" in data.skip_message

    # the same change set from a scheduled (non-headless, real) run is requested
    run_incremental(p)
    data, _ = evaluate_sensor(p, cursor)
    assert data.run_requests


@pytest.mark.slow
def test_data_lag_check_fails_when_the_ledger_moved_and_chaser_did_not(pipeline):
    p = pipeline
    assert p.sync().success
    invoice_id, month = old_open_invoice(p)
    pay(p, invoice_id)
    # the change is landed, no monthly sync yet; the incremental run leaves the lag check to its
    # own schedule, so it never judges changes it has just landed
    result = run_incremental(p)
    assert not result.get_asset_check_evaluations() or all(
        e.check_name != "chaser_data_lag" for e in result.get_asset_check_evaluations()
    )
    early = lag_check(p, "2026-11-20T11:00:00")  # 1 h after the change
    assert early.passed
    assert early.metadata["lag_hours"].value == 1
    late = lag_check(p, "2026-11-21T06:00:00")  # 20 h: over warn_hours
    assert not late.passed
    assert late.severity == dg.AssetCheckSeverity.WARN
    stale = lag_check(p, "2026-11-21T16:00:00")  # 30 h: over error_hours
    assert not stale.passed
    assert stale.severity == dg.AssetCheckSeverity.ERROR
    assert stale.metadata["lag_hours"].value == 30
    assert stale.metadata["months_behind"].value == [month]

    run_month(p, month)
    synced = lag_check(p, "2026-11-21T16:00:00")
    assert synced.passed, synced.description


def test_the_daily_sync_waits_for_the_pipelines_assets_materialized_from_the_asset_graph():
    """A first load or backfill launched from the UI's asset graph runs as `__ASSET_JOB`: the
    daily sync's tick waits for it as for a run of its own jobs."""
    defs = load_defs()
    schedule = defs.resolve_schedule_def("chaser_daily_sync")
    asset_job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(
            asset_job, asset_selection=frozenset({dg.AssetKey("sync_chaser_invoices")})
        )
        data = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
        assert not data.run_requests
        assert f"Run {run.run_id} of __ASSET_JOB has not finished" in data.skip_message


def test_a_killed_syncs_runs_hold_no_tick_up_and_a_live_syncs_do(tmp_path, monkeypatch):
    """`chaser-pipeline sync` runs the jobs in its own process while it holds the sync lock of
    its Dagster home. Its runs hold the daily tick up while it lives; once it was killed, the
    tick marks its abandoned runs failed (their pool slots freed) and runs. A headless run of
    another host (a shared run storage) is never taken for this host's."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    defs = load_defs()
    schedule = defs.resolve_schedule_def("chaser_daily_sync")
    job = defs.resolve_job_def("chaser_incremental_sync")
    with dg.instance_for_test() as instance:

        def tick() -> dg.ScheduleExecutionData:
            return schedule.evaluate_tick(dg.build_schedule_context(instance=instance))

        run = instance.create_run_for_job(job, tags={HEADLESS_TAG: "true"})
        # the home `chaser-pipeline sync` locks: DAGSTER_HOME
        with sync_lock(Path(os.environ["DAGSTER_HOME"])) as held:  # the sync is alive
            assert held
            data = tick()
            assert not data.run_requests
            assert run.run_id in data.skip_message
        assert len(tick().run_requests) == 1
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE

        elsewhere = instance.create_run_for_job(
            job, tags={HEADLESS_TAG: "true", HOST_TAG: "another-host"}
        )
        data = tick()
        assert not data.run_requests
        assert elsewhere.run_id in data.skip_message
