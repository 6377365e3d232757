"""Runs that have not finished, and runs a killed `chaser-pipeline sync` left behind.

`chaser-pipeline sync` runs the jobs in its own process (headless runs, tagged HEADLESS_TAG)
while it holds SYNC_LOCK_FILE in the Dagster home: whoever holds that lock knows no headless
sync is alive, so any headless run still marked unfinished was abandoned by a killed one.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus

from chaser_pipeline.defs.automation.sensors import HEADLESS_TAG

SYNC_LOCK_FILE = "chaser-pipeline-sync.lock"

# Runs that may still start, or still hold what they need (the pipeline's DuckDB, a pool slot)
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@contextlib.contextmanager
def sync_lock(home: Path) -> Iterator[bool]:
    """Hold the headless sync lock of a Dagster home without waiting; yields False when a
    `chaser-pipeline sync` holds it."""
    with open(home / SYNC_LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def recover_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark runs a killed `chaser-pipeline sync` left unfinished as failed and free their slots.

    Call only while holding the sync lock: then no headless sync is alive, so any of its runs
    still marked unfinished was abandoned. Without this, a killed run would keep its
    `chaser_api` pool slot forever, the next sync would wait for it, and the schedules would
    skip every tick for it.
    """
    abandoned = instance.get_runs(
        filters=dg.RunsFilter(tags={HEADLESS_TAG: "true"}, statuses=UNFINISHED)
    )
    for dagster_run in abandoned:
        instance.report_run_failed(
            dagster_run, message="Abandoned: the chaser-pipeline sync that started it was killed."
        )
        instance.event_log_storage.free_concurrency_slots_for_run(dagster_run.run_id)
    return [r.run_id for r in abandoned]


def _recover_if_no_sync(instance: dg.DagsterInstance) -> set[str]:
    """`recover_abandoned_runs` when no headless sync holds the lock of the instance's home
    (none: an instance without a local home runs no headless syncs)."""
    try:
        home = Path(instance.root_directory)
    except Exception:  # an instance without a local home (PostgreSQL storage, Dagster+)
        return set()
    if not home.is_dir():
        return set()
    with sync_lock(home) as held:
        return set(recover_abandoned_runs(instance)) if held else set()


def unfinished_work(
    instance: dg.DagsterInstance, jobs: tuple[str, ...], assets: frozenset[dg.AssetKey]
) -> str | None:
    """What has not finished among the runs of `jobs`, the runs that materialize any of
    `assets` (launched from the asset graph, as `__ASSET_JOB`) and the asset backfills of any
    of them; None when nothing has. Headless runs a killed sync abandoned are marked failed
    first, so they never hold anything up."""
    runs = [
        r.dagster_run
        for r in instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED), limit=200)
    ]
    if any(r.tags.get(HEADLESS_TAG) == "true" for r in runs):
        recovered = _recover_if_no_sync(instance)
        runs = [r for r in runs if r.run_id not in recovered]
    for run in runs:
        if run.job_name in jobs or (assets & (run.asset_selection or frozenset())):
            return f"Run {run.run_id} of {run.job_name} has not finished ({run.status.value})"
    if assets:
        for backfill in instance.get_backfills(status=BulkActionStatus.REQUESTED):
            if assets & set(backfill.asset_selection or ()):
                return f"Backfill {backfill.backfill_id} has not finished"
    return None
