"""Helpers of the standing trials (tests/trials, benchmarks/trials_long.py): what Chaser holds,
compared exactly; the emulator's request log read as creates and re-sends; a `chaser-pipeline
sync` subprocess on a pipeline; polling with a deadline."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from chaser_pipeline.emulator import EmulatorStore, RateLimitConfig, run_emulator_in_thread
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from tests.support.pipeline import API_KEY, API_SECRET, Pipeline

OBJECTS = tuple(CHASER_OBJECTS)
# The trials' ledger: 10 customers, 60 invoices, 10 credit notes (a sync makes about 15 requests).
LEDGER = {"invoices": 60, "customers": 10, "credit_notes": 10, "seed": 7}
NO_LIMIT = RateLimitConfig(requests_per_minute=None)
# No pacing against a local emulator; a request unanswered for 5 s counts as unanswered.
FAST = {"CHASER_API_REQUESTS_PER_MINUTE": "0", "CHASER_API_REQUEST_TIMEOUT": "5"}
SYNC_COMMAND = [sys.executable, "-m", "chaser_pipeline.cli", "sync"]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)  # polling with a deadline, not waiting for a fixed time
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


# ---- what Chaser holds ------------------------------------------------------------------------


def holdings(state_path: Path) -> dict[str, dict[tuple[str, str], dict]]:
    """Every record the emulator holds, per object, keyed by (owning customer's external id or
    "", the object's key), without Chaser's own ids (which differ from one emulator to another).
    A key held twice is kept once here: compare `record_counts` for duplicates."""
    with EmulatorStore(state_path) as store:
        customer_keys = {r["id"]: r["external_id"] for r in store.records("customers")}
        held: dict[str, dict[tuple[str, str], dict]] = {}
        for name in OBJECTS:
            key = CHASER_OBJECTS[name].key
            rows = {}
            for record in store.records(name):
                owner = customer_keys.get(record.pop("customer_id", None), "")
                record.pop("id")
                rows[(owner, record[key])] = record
            held[name] = rows
    return held


def record_counts(state_path: Path) -> dict[str, int]:
    """Records stored per object, duplicates included."""
    with EmulatorStore(state_path) as store:
        return {name: store.count(name) for name in OBJECTS}


@dataclass(frozen=True)
class Traffic:
    """What the emulator's request log says about the writes it applied."""

    applied_writes: Counter[str]  # per object: writes answered 2xx (a dropped answer included)
    dropped: int  # writes applied whose answer was dropped (the client had to send them again)
    rate_limited: int
    server_errors: int
    forbidden: int
    unanswered: int  # silent or outage

    @classmethod
    def read(cls, state_path: Path) -> Traffic:
        with EmulatorStore(state_path) as store:
            log = store.request_log()
        applied = Counter(
            r.object_name for r in log if r.is_write and 200 <= r.status < 300 and r.object_name
        )
        return cls(
            applied_writes=applied,
            dropped=sum(1 for r in log if r.fault == "drop"),
            rate_limited=sum(1 for r in log if r.status == 429),
            server_errors=sum(1 for r in log if r.status >= 500),
            forbidden=sum(1 for r in log if r.status == 403),
            unanswered=sum(1 for r in log if r.fault in ("silent", "outage")),
        )


def resent_writes(trial: Traffic, clean: Traffic) -> int:
    """Applied writes beyond what one clean sync of the same ledger applies: requests Chaser
    applied twice (each at most rewrites rows it already holds, never a second record)."""
    return sum((trial.applied_writes - clean.applied_writes).values())


def assert_exact(state_path: Path, golden: dict[str, dict], golden_counts: dict[str, int]) -> None:
    """Chaser holds exactly what a clean sync of the same ledger leaves there, once each."""
    held = holdings(state_path)
    for name in OBJECTS:
        missing = golden[name].keys() - held[name].keys()
        extra = held[name].keys() - golden[name].keys()
        assert not missing and not extra, f"{name}: missing {sorted(missing)[:5]}, extra {extra}"
        wrong = [k for k in golden[name] if held[name][k] != golden[name][k]]
        assert not wrong, f"{name} differ from a clean sync: {wrong[:5]}"
    assert record_counts(state_path) == golden_counts  # no key held twice


# ---- runs ---------------------------------------------------------------------------------------


def failure_messages(instance: dg.DagsterInstance, run_ids: list[str]) -> list[str]:
    """The messages of every failed step of these runs, as the Dagster UI shows them."""
    messages = []
    for run_id in run_ids:
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
            data = entry.dagster_event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                messages.append(data.user_failure_data.description)
            elif data.error is not None:
                messages.append(data.error.message)
    return messages


def restart_emulator(pipeline: Pipeline, **options: Any) -> None:
    """Stop the pipeline's emulator (a fault ends with it) and start one on the same port and
    state file: the same Chaser organisation at the same URL, `options` its new faults."""
    port = pipeline.handle.port  # type: ignore[attr-defined]
    pipeline.handle.stop()  # type: ignore[attr-defined]
    pipeline.handle = run_emulator_in_thread(  # type: ignore[attr-defined]
        pipeline.emulator_state, port=port, api_key=API_KEY, api_secret=API_SECRET, **options
    )


def sync_env(pipeline: Pipeline, dagster_home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `chaser-pipeline sync` subprocess on this pipeline."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "CHASER_WAREHOUSE_URL": f"duckdb:///{pipeline.warehouse}",
        "CHASER_DUCKDB_PATH": str(pipeline.duckdb_path),
        "CHASER_API_URL": pipeline.url,
        "CHASER_API_KEY": API_KEY,
        "CHASER_API_SECRET": API_SECRET,
        "DAGSTER_HOME": str(dagster_home),
        **extra,
    }


def start_sync(env: dict[str, str], output: Path | None = None) -> subprocess.Popen:
    """`chaser-pipeline sync` in a session of its own (killed as a group); output to a file."""
    sink = open(output, "w") if output else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    try:
        return subprocess.Popen(
            SYNC_COMMAND,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if output:
            sink.close()


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the sync and everything it started; wait for it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def run_sync_cli(env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(SYNC_COMMAND, env=env, capture_output=True, text=True, timeout=timeout)


class DagsterProgress:
    """The steps that runs in a DAGSTER_HOME have started, read from its event log while another
    process (a `chaser-pipeline sync`) writes there.

    The SQLite files are read read-only and directly: opening a `DagsterInstance` on a home that
    another process is still creating races it to create the tables, and can crash it."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def started(self) -> set[str]:
        steps: set[str] = set()
        for path in (self.home / "history" / "runs").glob("*.db"):
            try:
                with contextlib.closing(
                    sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
                ) as con:
                    rows = con.execute(
                        "select step_key from event_logs where dagster_event_type = 'STEP_START'"
                    ).fetchall()
            except sqlite3.Error:
                continue  # not created yet, or being written: look again at the next poll
            steps.update(step for (step,) in rows if step)
        return steps

    def close(self) -> None:
        """Nothing held between polls."""
