"""Runs that have not finished, and runs a killed `chaser-pipeline sync` left behind.

`chaser-pipeline sync` runs the jobs in its own process (headless runs, tagged HEADLESS_TAG and
the host) while it holds SYNC_LOCK_FILE in its Dagster home (DAGSTER_HOME): whoever holds that
lock on that host knows no headless sync is alive there, so any headless run of that host still
marked unfinished was abandoned by a killed one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus

from chaser_pipeline.defs.automation.sensors import HEADLESS_TAG

SYNC_LOCK_FILE = "chaser-pipeline-sync.lock"
HOST_TAG = "chaser_pipeline/host"
ASSET_JOB = "__ASSET_JOB"

# Runs that may still start, or still hold what they need (the pipeline's DuckDB, a pool slot)
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# A run that has logged nothing for this long holds no tick up: its worker is taken for dead (a
# local `dagster dev` stopped mid-run leaves it STARTED, and nothing marks it failed). A sending
# step logs its progress about every half minute at Chaser's budget.
STALE_AFTER_SECONDS = 6 * 3600


def this_host() -> str:
    return socket.gethostname()


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
    """Mark runs a killed `chaser-pipeline sync` of this host left unfinished as failed and free
    their slots.

    Call only while holding the sync lock: then no headless sync is alive on this host, so any
    of its runs still marked unfinished was abandoned. Without this, a killed run would keep its
    `chaser_api` pool slot forever, the next sync would wait for it, and the schedules would
    skip every tick for it. Runs of older versions carry no host: they count as this host's.
    """
    host = this_host()
    abandoned = [
        r
        for r in instance.get_runs(
            filters=dg.RunsFilter(tags={HEADLESS_TAG: "true"}, statuses=UNFINISHED)
        )
        if r.tags.get(HOST_TAG, host) == host
    ]
    for dagster_run in abandoned:
        instance.report_run_failed(
            dagster_run, message="Abandoned: the chaser-pipeline sync that started it was killed."
        )
        instance.event_log_storage.free_concurrency_slots_for_run(dagster_run.run_id)
    return [r.run_id for r in abandoned]


def _recover_if_no_sync(instance: dg.DagsterInstance) -> set[str]:
    """`recover_abandoned_runs` when no headless sync holds the lock of this host's Dagster home
    (DAGSTER_HOME, the one `chaser-pipeline sync` locks); nothing when there is no such home or
    its lock cannot be taken (a read-only home)."""
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if not home or not Path(home).is_dir():
        return set()
    try:
        with sync_lock(Path(home)) as held:
            return set(recover_abandoned_runs(instance)) if held else set()
    except OSError:
        return set()


def _last_event_at(instance: dg.DagsterInstance, run: dg.DagsterRun) -> float | None:
    records = instance.get_records_for_run(run.run_id, limit=1, ascending=False).records
    return records[0].event_log_entry.timestamp if records else None


def unfinished_work(
    instance: dg.DagsterInstance, jobs: tuple[str, ...], assets: frozenset[dg.AssetKey]
) -> str | None:
    """What has not finished among the runs of `jobs`, the runs that materialize any of
    `assets` (launched from the asset graph, as `__ASSET_JOB`) and the asset backfills of any
    of them; None when nothing has. Headless runs a killed sync abandoned are marked failed
    first, and a run silent for STALE_AFTER_SECONDS is taken for dead: neither holds a tick
    up."""
    runs: dict[str, dg.DagsterRun] = {}
    for job in (*jobs, *((ASSET_JOB,) if assets else ())):
        for record in instance.get_run_records(
            dg.RunsFilter(job_name=job, statuses=UNFINISHED), limit=50
        ):
            runs[record.dagster_run.run_id] = record.dagster_run
    if any(r.tags.get(HEADLESS_TAG) == "true" for r in runs.values()):
        for run_id in _recover_if_no_sync(instance):
            runs.pop(run_id, None)
    now = time.time()
    for run in runs.values():
        if not (run.job_name in jobs or assets & (run.asset_selection or frozenset())):
            continue
        last = _last_event_at(instance, run)
        if last is not None and now - last > STALE_AFTER_SECONDS:
            continue
        return f"Run {run.run_id} of {run.job_name} has not finished ({run.status.value})"
    if assets:
        for backfill in instance.get_backfills(status=BulkActionStatus.REQUESTED):
            if assets & set(backfill.asset_selection or ()):
                return f"Backfill {backfill.backfill_id} has not finished"
    return None
