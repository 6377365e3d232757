"""Concurrent syncs on one Chaser target: two `chaser-pipeline sync` processes on the same state
(one Dagster home: the second says so and skips; two Dagster homes: they take turns), two
workers sharing only a PostgreSQL state, and the UI's scheduled job run beside a CLI sync,
never send a row twice: Chaser ends exactly as after one clean sync, having applied exactly the
writes one clean sync applies."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chaser_pipeline.defs.automation.jobs import INCREMENTAL_JOB
from tests.support.pipeline import make_pipeline
from tests.support.trials import (
    FAST,
    LEDGER,
    NO_LIMIT,
    DagsterProgress,
    Traffic,
    assert_exact,
    kill_group,
    run_sync_cli,
    start_sync,
    sync_env,
    wait_for,
)

pytestmark = pytest.mark.slow


def _finish(process: subprocess.Popen, timeout: float = 600) -> int:
    try:
        return process.wait(timeout=timeout)
    finally:
        kill_group(process)


def _assert_sent_once(pipeline, clean_cli_sync) -> None:
    golden, golden_counts, clean_traffic = clean_cli_sync
    assert_exact(pipeline.emulator_state, golden, golden_counts)
    assert Traffic.read(pipeline.emulator_state).applied_writes == clean_traffic.applied_writes


def test_a_second_sync_on_the_same_dagster_home_says_so_and_skips(tmp_path, clean_cli_sync):
    pipeline = make_pipeline(tmp_path, env=FAST, rate_limit=NO_LIMIT, **LEDGER)
    env = sync_env(pipeline, tmp_path / "dagster_home", **FAST)
    progress = DagsterProgress(tmp_path / "dagster_home")
    first = start_sync(env, tmp_path / "first.log")
    try:
        wait_for(lambda: first.poll() is not None or progress.started(), 240, "the first sync")
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
        second = run_sync_cli(env)
        assert second.returncode == 1
        assert "another `chaser-pipeline sync` is running on" in second.stderr
        assert _finish(first) == 0, (tmp_path / "first.log").read_text()[-2000:]
        _assert_sent_once(pipeline, clean_cli_sync)
    finally:
        kill_group(first)
        progress.close()
        pipeline.handle.stop()  # type: ignore[attr-defined]


def test_two_syncs_with_different_dagster_homes_take_turns(tmp_path, clean_cli_sync):
    pipeline = make_pipeline(tmp_path, env=FAST, rate_limit=NO_LIMIT, **LEDGER)
    homes = [tmp_path / "home_a", tmp_path / "home_b"]
    processes = [
        start_sync(sync_env(pipeline, home, **FAST), tmp_path / f"{home.name}.log")
        for home in homes
    ]
    try:
        for process, home in zip(processes, homes, strict=True):
            assert _finish(process) == 0, (tmp_path / f"{home.name}.log").read_text()[-3000:]
        _assert_sent_once(pipeline, clean_cli_sync)
    finally:
        for process in processes:
            kill_group(process)
        pipeline.handle.stop()  # type: ignore[attr-defined]


def test_the_scheduled_job_beside_a_cli_sync_sends_nothing_twice(tmp_path, clean_cli_sync):
    """The daily schedule's job, run as the UI's daemon would (its own process and Dagster
    home), while `chaser-pipeline sync` runs the whole sync."""
    pipeline = make_pipeline(tmp_path, env=FAST, rate_limit=NO_LIMIT, **LEDGER)
    cli_env = sync_env(pipeline, tmp_path / "cli_home", **FAST)
    ui_env = sync_env(pipeline, tmp_path / "ui_home", **FAST)
    scheduled = subprocess.Popen(
        [
            *(sys.executable, "-m", "dagster", "job", "execute"),
            *("-m", "chaser_pipeline.definitions", "-j", INCREMENTAL_JOB),
            *("--tags", '{"dagster/schedule_name": "chaser_daily_sync"}'),
        ],
        env=ui_env,
        stdout=open(tmp_path / "scheduled.log", "w"),  # noqa: SIM115 (the child owns it)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    cli = start_sync(cli_env, tmp_path / "cli.log")
    try:
        assert _finish(cli) == 0, (tmp_path / "cli.log").read_text()[-3000:]
        assert _finish(scheduled) == 0, (tmp_path / "scheduled.log").read_text()[-3000:]
        _assert_sent_once(pipeline, clean_cli_sync)
    finally:
        kill_group(cli)
        kill_group(scheduled)
        pipeline.handle.stop()  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_two_syncs_sharing_a_postgresql_state_send_each_row_once(
    tmp_path, postgres_url, clean_cli_sync
):
    """Two workers with their own pipeline DuckDB (nothing local shared) and one PostgreSQL
    state: only the state's lock keeps them from sending the same rows at once."""
    pipeline = make_pipeline(tmp_path, env=FAST, rate_limit=NO_LIMIT, **LEDGER)
    workers = ("worker_a", "worker_b")
    processes = [
        start_sync(
            sync_env(
                pipeline,
                tmp_path / name / "dagster_home",
                **FAST,
                CHASER_DUCKDB_PATH=str(tmp_path / name / "pipeline.duckdb"),
                CHASER_STATE_URL=postgres_url,
            ),
            tmp_path / f"{name}.log",
        )
        for name in workers
    ]
    try:
        for process, name in zip(processes, workers, strict=True):
            assert _finish(process) == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
        _assert_sent_once(pipeline, clean_cli_sync)
    finally:
        for process in processes:
            kill_group(process)
        pipeline.handle.stop()  # type: ignore[attr-defined]
