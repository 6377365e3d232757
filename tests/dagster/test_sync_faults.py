"""Sync under faults through Dagster: a `chaser-pipeline sync` killed mid-sync and re-run leaves
Chaser complete with no duplicate or lost write; Chaser's rejection rate is a blocking check."""

from __future__ import annotations

import dagster as dg
import pytest

from chaser_pipeline.emulator import EmulatorStore, FaultConfig, run_emulator_in_thread
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from tests.support.marts import mart_db
from tests.support.pipeline import API_KEY, API_SECRET, make_pipeline
from tests.support.trials import kill_group, run_sync_cli, start_sync, sync_env, wait_for

pytestmark = pytest.mark.slow


def test_a_run_killed_mid_sync_and_rerun_leaves_chaser_complete(tmp_path):
    # Slow Chaser down so the kill lands while invoices are being sent.
    pipeline = make_pipeline(tmp_path, invoices=1500, faults=FaultConfig(latency_ms=40))
    env = sync_env(pipeline, tmp_path / "dagster_home")
    process = start_sync(env)
    store = EmulatorStore(pipeline.emulator_state)
    try:
        wait_for(lambda: store.write_request_count("invoices") >= 3, 120, "invoice writes")
        kill_group(process)
        partial = store.count("invoices")
        assert partial > 0
        rerun = run_sync_cli(env)
        assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
        expected = pipeline.expected("invoices")
        held = pipeline.chaser("invoices")
        assert held == expected  # complete: nothing lost
        # no duplicates: one record per key, and only batches in flight at the kill were resent
        assert store.count("invoices") == len(expected)
        rewritten = sum(store.write_count("invoices", key) - 1 for key in expected)
        assert rewritten <= 8 * 100
    finally:
        store.close()
        kill_group(process)
        pipeline.handle.stop()


def test_rejection_threshold_is_a_blocking_check_that_fails_the_sync(tmp_path):
    from dagster_duckdb import DuckDBResource

    from chaser_pipeline.defs.chaser_sync.assets import sync_asset
    from chaser_pipeline.defs.chaser_sync.resources import ChaserApiResource, SyncStateResource
    from chaser_pipeline.settings import load_settings

    sync_chaser_customers = sync_asset(CHASER_OBJECTS["customers"], load_settings())

    # 2 of 10 customers refused by Chaser (blank company name): 20% > the 1% default.
    rows = [(f"C-{i}", "" if i < 2 else f"Co {i}") for i in range(10)]
    mart_db(tmp_path / "p.duckdb", rows, []).close()
    with run_emulator_in_thread(
        tmp_path / "c.sqlite3", api_key=API_KEY, api_secret=API_SECRET
    ) as emu:
        resources = {
            "duckdb": DuckDBResource(database=str(tmp_path / "p.duckdb")),
            "chaser": ChaserApiResource(api_url=emu.url, api_key=API_KEY, api_secret=API_SECRET),
            "sync_state": SyncStateResource(),
        }
        result = dg.materialize(
            [sync_chaser_customers],
            resources=resources,
            raise_on_error=False,
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert not result.success
        [evaluation] = result.get_asset_check_evaluations()
        assert evaluation.check_name == "rejection_rate" and not evaluation.passed
        assert evaluation.metadata["rejected"].value == 2
        # the good rows still landed, and the failures are on record for the next run
        store = EmulatorStore(tmp_path / "c.sqlite3")
        assert store.count("customers") == 8
        store.close()

        # The next run retries exactly the two refused rows; a lenient threshold lets it pass.
        lenient = dg.materialize(
            [sync_chaser_customers],
            resources=resources,
            raise_on_error=False,
            instance=dg.DagsterInstance.ephemeral(),
            run_config={"ops": {"sync_chaser_customers": {"config": {"max_rejection_share": 1.0}}}},
        )
        assert lenient.success
        [retry] = lenient.get_asset_check_evaluations()
        assert retry.passed and retry.metadata["attempted"].value == 2
