"""Kill trials: a `chaser-pipeline sync` SIGKILLed at any moment (extracting, building models,
sending customers, contact persons, invoices, credit notes or overpayments), then run again,
leaves Chaser holding exactly what one clean sync leaves, no record twice, and re-sends at most
the batches that were sent but not yet recorded when it died (`MAX_UNRECORDED_BATCHES`, 96; a
bulk upsert sent again rewrites the same rows and creates nothing).

Each kill is placed by polling for a marker of progress (a step started in the Dagster event
log, or the emulator holding the first write of an object), never by sleeping."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from chaser_pipeline.emulator import EmulatorStore, FaultConfig
from chaser_pipeline.sync.sender import MAX_UNRECORDED_BATCHES
from tests.support.pipeline import make_pipeline
from tests.support.trials import (
    FAST,
    LEDGER,
    NO_LIMIT,
    DagsterProgress,
    Traffic,
    assert_exact,
    kill_group,
    resent_writes,
    run_sync_cli,
    start_sync,
    sync_env,
    wait_for,
)

pytestmark = pytest.mark.slow

# Each answer takes a little while, so the kill lands while the step is still sending.
LATENCY = FaultConfig(latency_ms=100)


@dataclass(frozen=True)
class KillPoint:
    """When to kill: `reached(steps started, emulator store)` turns true."""

    reached: Callable[[set[str], EmulatorStore], bool]


def _step(name: str) -> KillPoint:
    return KillPoint(lambda steps, _store: name in steps)


def _writes(object_name: str, count: int = 1) -> KillPoint:
    return KillPoint(lambda _steps, store: store.write_request_count(object_name) >= count)


KILL_POINTS = {
    "extract": _step("ledger_payments"),
    "models": _step("int_invoice_balances"),
    "customers": _writes("customers"),
    "contact-persons": _writes("contact_persons", 3),
    "invoices": _writes("invoices"),
    "credit-notes": _writes("credit_notes"),
    "overpayments": _writes("overpayments"),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_sync_killed_then_run_again_leaves_chaser_exact(tmp_path, clean_cli_sync, point):
    golden, golden_counts, clean_traffic = clean_cli_sync
    pipeline = make_pipeline(tmp_path, env=FAST, rate_limit=NO_LIMIT, faults=LATENCY, **LEDGER)
    home = tmp_path / "dagster_home"
    env = sync_env(pipeline, home, **FAST)
    progress = DagsterProgress(home)
    store = EmulatorStore(pipeline.emulator_state)
    process = start_sync(env, tmp_path / "killed.log")
    try:
        wait_for(
            lambda: (
                process.poll() is not None or KILL_POINTS[point].reached(progress.started(), store)
            ),
            240,
            f"the sync to reach {point}",
        )
        assert process.poll() is None, (
            "the sync ended before the kill: " + (tmp_path / "killed.log").read_text()[-2000:]
        )
        kill_group(process)
        assert process.returncode == -signal.SIGKILL
        again = run_sync_cli(env)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        assert_exact(pipeline.emulator_state, golden, golden_counts)
        resent = resent_writes(Traffic.read(pipeline.emulator_state), clean_traffic)
    finally:
        kill_group(process)
        progress.close()
        store.close()
        pipeline.handle.stop()  # type: ignore[attr-defined]
    assert resent <= MAX_UNRECORDED_BATCHES
