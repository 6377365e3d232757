"""Monthly partitions contract: a multi-month backfill is one run that lands every month in Chaser
with a materialization per month, and re-running a month sends nothing and rewrites identical rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tests.support.pipeline import API_KEY, API_SECRET, AS_OF, Pipeline, make_pipeline

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
MONTHLY_SYNCS = ("sync_chaser_invoices", "sync_chaser_credit_notes")


def months(first: str, count: int) -> list[str]:
    year, month = (int(x) for x in first.split("-")[:2])
    keys = []
    for _ in range(count):
        keys.append(f"{year:04d}-{month:02d}-01")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return keys


def as_of_config(*syncs: str) -> dict:
    return {"ops": {name: {"config": {"as_of": AS_OF}} for name in syncs}}


def run_incremental(p: Pipeline) -> dg.ExecuteInProcessResult:
    result = p.defs.resolve_job_def("chaser_incremental_sync").execute_in_process(
        instance=p.instance, run_config=as_of_config("sync_chaser_customers")
    )
    assert result.success
    return result


def invoices_in_chaser_by_month(
    p: Pipeline, first_month: str = "2023-01-01"
) -> dict[str, set[str]]:
    """Invoices Chaser holds by partition: the first month also carries every invoice issued
    before the history start."""
    by_month: dict[str, set[str]] = {}
    for key, row in p.chaser("invoices").items():
        by_month.setdefault(max(row["date"][:7] + "-01", first_month), set()).add(key)
    return by_month


def month_rows(p: Pipeline, month: str) -> list[tuple]:
    start, end = months(month, 2)
    return p.query(
        "select * from chaser_invoices where date >= ? and date < ? order by invoice_id",
        [start, end],
    )


@pytest.fixture
def pipeline(tmp_path):
    p = make_pipeline(tmp_path, invoices=600)
    yield p
    p.handle.stop()


def test_two_year_backfill_is_one_run_with_a_materialization_per_month(pipeline):
    p = pipeline
    run_incremental(p)
    assert p.write_requests("invoices") == 0
    wanted = months("2023-01", 24)
    monthly = p.defs.resolve_job_def("chaser_monthly_sync")
    result = monthly.execute_in_process(
        instance=p.instance,
        run_config=as_of_config(*MONTHLY_SYNCS),
        tags={
            "dagster/asset_partition_range_start": wanted[0],
            "dagster/asset_partition_range_end": wanted[-1],
        },
    )
    assert result.success
    # one run, one materialization per month for every asset of the job
    for asset in ("chaser_invoices", "sync_chaser_invoices", *MONTHLY_SYNCS):
        done = sorted(m.partition for m in result.asset_materializations_for_node(asset))
        assert done == wanted, asset
        assert p.instance.get_materialized_partitions(dg.AssetKey(asset)) == set(wanted), asset

    # Chaser holds exactly what the sync state says it confirmed, and only these months
    sent = p.chaser("invoices")
    assert sent == p.expected("invoices")
    by_month = invoices_in_chaser_by_month(p)
    assert set(by_month) <= set(wanted)
    # every month of the range with invoices worth sending reached Chaser
    worth_sending = {
        row[0]
        for row in p.query(
            """select distinct substr(date, 1, 7) || '-01' from chaser_invoices
            where status = 'AUTHORISED' and date >= ? and date < ?""",
            [wanted[0], months(wanted[-1], 2)[1]],
        )
    }
    assert len(worth_sending) >= 20
    assert worth_sending <= set(by_month)
    # each month's materialization carries that month's own figures: every mart row of the
    # month is in Chaser or accounted for as skipped / held back
    sync_events = result.asset_materializations_for_node("sync_chaser_invoices")
    model_events = result.asset_materializations_for_node("chaser_invoices")
    # the first month's partition also carries every invoice issued before the history start
    rows_by_month = dict(
        p.query(
            """select greatest(substr(date, 1, 7) || '-01', '2023-01-01'), count(*)
            from chaser_invoices group by 1"""
        )
    )
    for sync_event, model_event in zip(sync_events, model_events, strict=True):
        meta = {k: v.value for k, v in sync_event.metadata.items()}
        month = sync_event.partition
        in_month = rows_by_month.get(month, 0)
        assert model_event.metadata["dagster/row_count"].value == in_month, month
        assert len(by_month.get(month, ())) == meta["created"], month
        assert in_month == (
            meta["created"]
            + meta["skipped_not_worth_sending"]
            + meta["held_back_waiting_for_customer"]
        ), month
        assert meta["rejected_by_chaser"] == 0
        # the first month also holds every invoice issued before the history start
        first = month == wanted[0]
        assert meta["window"].startswith("everything up to" if first else month), meta["window"]
    assert len({e.metadata["created"].value for e in sync_events}) > 1

    # re-running one month: nothing sent, identical rows, a new materialization of that month
    month = wanted[5]
    before_rows = month_rows(p, month)
    assert before_rows
    before_writes = p.write_requests()
    again = monthly.execute_in_process(
        instance=p.instance, partition_key=month, run_config=as_of_config(*MONTHLY_SYNCS)
    )
    assert again.success
    assert p.write_requests() == before_writes
    assert month_rows(p, month) == before_rows
    [(after_total,)] = p.query("select count(*) from chaser_invoices")
    assert after_total == sum(rows_by_month.values())
    [materialization] = again.asset_materializations_for_node("sync_chaser_invoices")
    assert materialization.partition == month
    assert materialization.metadata["created"].value == 0
    assert materialization.metadata["updated"].value == 0
    assert materialization.metadata["write_requests"].value == 0
    assert p.chaser("invoices") == sent


def test_cli_partition_range_materializes_the_months_in_one_run(pipeline, tmp_path):
    """`dagster asset materialize --partition-range A...B` from the repo root, pointed by env."""
    p = pipeline
    run_incremental(p)
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    env = {
        **os.environ,
        "CHASER_WAREHOUSE_URL": f"duckdb:///{p.warehouse}",
        "CHASER_DUCKDB_PATH": str(p.duckdb_path),
        "CHASER_API_URL": p.url,
        "CHASER_API_KEY": API_KEY,
        "CHASER_API_SECRET": API_SECRET,
        "DAGSTER_HOME": str(dagster_home),
    }
    first, last = "2024-01-01", "2024-03-01"
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "asset",
            "materialize",
            "-m",
            "chaser_pipeline.definitions",
            "--select",
            "chaser_invoices,sync_chaser_invoices",
            "--partition-range",
            f"{first}...{last}",
            # runs in one process: the code location's default executor
            "--config-json",
            json.dumps(as_of_config("sync_chaser_invoices")),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        runs = instance.get_runs()
        assert len(runs) == 1
        assert runs[0].is_success
        assert instance.get_materialized_partitions(dg.AssetKey("sync_chaser_invoices")) == set(
            months("2024-01", 3)
        )
    finally:
        instance.dispose()
    by_month = invoices_in_chaser_by_month(p)
    assert set(by_month) == set(months("2024-01", 3))
    assert p.chaser("invoices") == p.expected("invoices")
