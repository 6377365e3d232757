"""The long trials: SIGKILLs of `chaser-pipeline sync` at random moments and repeated rounds of
mixed faults, on a bigger ledger than the standing suite (tests/trials), each followed by a
clean sync and compared with what one clean sync leaves in Chaser.

    .venv/bin/python -m benchmarks.trials_long [--seed 1] [--kills 10] [--fault-rounds 3]
        [--invoices 1500]

A kill lands after a random number of the emulator's requests (drawn from those a clean sync
makes) or at the start of a random extract or model step. Prints one table: trials run, how
many survived (Chaser exact, nothing twice), rows lost, duplicate records, and the most batches
a trial re-sent (applied writes beyond those of a clean sync). Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from chaser_pipeline.emulator import EmulatorStore, FaultConfig
from tests.support.pipeline import make_pipeline
from tests.support.trials import (
    FAST,
    NO_LIMIT,
    DagsterProgress,
    Traffic,
    holdings,
    kill_group,
    record_counts,
    resent_writes,
    restart_emulator,
    run_sync_cli,
    start_sync,
    sync_env,
    wait_for,
)

STEPS = ("ledger_customers", "ledger_payments", "stg_invoices", "int_invoice_balances")


@dataclass
class Tally:
    kind: str
    trials: int = 0
    landed: int = 0  # kills that hit a running sync (a fault round always counts)
    survived: int = 0
    lost_rows: int = 0
    duplicates: int = 0
    max_resent: int = 0
    seconds: list[float] = field(default_factory=list)

    def row(self) -> str:
        mean = sum(self.seconds) / len(self.seconds) if self.seconds else 0.0
        return (
            f"{self.kind:<13} {self.trials:>6} {self.landed:>7} {self.survived:>8} "
            f"{self.lost_rows:>9} {self.duplicates:>10} {self.max_resent:>14} {mean:>9.1f}"
        )


@dataclass(frozen=True)
class Clean:
    held: dict
    counts: dict
    traffic: Traffic


def _pipeline(root: Path, ledger: dict, **emulator):
    root.mkdir(parents=True)
    return make_pipeline(root, env=FAST, rate_limit=NO_LIMIT, **ledger, **emulator)


def _score(tally: Tally, pipeline, clean: Clean, landed: bool, ok: bool, started: float) -> None:
    held = holdings(pipeline.emulator_state)
    counts = record_counts(pipeline.emulator_state)
    lost = sum(
        1
        for name, rows in clean.held.items()
        for key, row in rows.items()
        if held[name].get(key) != row
    )
    duplicates = sum(counts[name] - len(held[name]) for name in counts)
    resent = resent_writes(Traffic.read(pipeline.emulator_state), clean.traffic)
    tally.trials += 1
    tally.landed += landed
    tally.survived += ok and not lost and not duplicates and counts == clean.counts
    tally.lost_rows += lost
    tally.duplicates += duplicates
    tally.max_resent = max(tally.max_resent, resent)
    tally.seconds.append(time.monotonic() - started)


def _kill_moment(rng: random.Random, clean: Clean):
    """A predicate over (steps started, store) that turns true at a random moment."""
    if rng.random() < 0.3:
        step = rng.choice(STEPS)
        return f"step {step}", lambda steps, _store: step in steps
    total = sum(clean.traffic.applied_writes.values())
    after = rng.randint(1, max(1, total))
    return f"after {after} writes", lambda _steps, store: store.write_request_count() >= after


def kill_trial(root: Path, ledger: dict, clean: Clean, rng: random.Random, tally: Tally) -> str:
    started = time.monotonic()
    pipeline = _pipeline(root, ledger, faults=FaultConfig(latency_ms=20))
    env = sync_env(pipeline, root / "dagster_home", **FAST)
    what, reached = _kill_moment(rng, clean)
    progress, store = DagsterProgress(root / "dagster_home"), EmulatorStore(pipeline.emulator_state)
    process = start_sync(env)
    try:
        wait_for(
            lambda: process.poll() is not None or reached(progress.started(), store), 900, what
        )
        kill_group(process)
        landed = process.returncode == -signal.SIGKILL
        ok = run_sync_cli(env, timeout=1800).returncode == 0
    finally:
        kill_group(process)
        progress.close()
        store.close()
        pipeline.handle.stop()  # type: ignore[attr-defined]
    _score(tally, pipeline, clean, landed, ok, started)
    return what


def fault_round(root: Path, ledger: dict, clean: Clean, seed: int, tally: Tally) -> None:
    """429s (short Retry-After), 5xx and dropped writes at random, every attempt exposed; then a
    clean run on the same Chaser."""
    started = time.monotonic()
    faults = FaultConfig(rate_429=0.1, retry_after=0.05, rate_5xx=0.1, rate_drop=0.1, seed=seed)
    pipeline = _pipeline(root, ledger, faults=faults)
    env = sync_env(pipeline, root / "dagster_home", **FAST)
    try:
        run_sync_cli(env, timeout=1800)  # may fail: retries are finite
        restart_emulator(pipeline, rate_limit=NO_LIMIT)  # Chaser is well again
        ok = run_sync_cli(env, timeout=1800).returncode == 0
    finally:
        pipeline.handle.stop()  # type: ignore[attr-defined]
    _score(tally, pipeline, clean, True, ok, started)


def clean_sync(root: Path, ledger: dict) -> Clean:
    pipeline = _pipeline(root, ledger)
    try:
        done = run_sync_cli(sync_env(pipeline, root / "dagster_home", **FAST), timeout=1800)
        if done.returncode != 0:
            raise SystemExit(f"the clean sync failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        state = pipeline.emulator_state
        return Clean(holdings(state), record_counts(state), Traffic.read(state))
    finally:
        pipeline.handle.stop()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--fault-rounds", type=int, default=3)
    parser.add_argument("--invoices", type=int, default=1500)
    args = parser.parse_args()
    ledger = {
        "invoices": args.invoices,
        "customers": max(10, args.invoices // 10),
        "credit_notes": max(10, args.invoices // 10),
        "seed": args.seed,
    }
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="chaser-trials-"))
    os.environ["DAGSTER_HOME"] = str(tmp / "bench_home")  # make_pipeline loads the definitions
    (tmp / "bench_home").mkdir()
    try:
        started = time.monotonic()
        clean = clean_sync(tmp / "clean", ledger)
        writes = sum(clean.traffic.applied_writes.values())
        print(
            f"clean sync: {sum(clean.counts.values())} records, {writes} write requests, "
            f"{time.monotonic() - started:.0f} s"
        )
        kills, faults = Tally("kill"), Tally("fault rounds")
        for number in range(args.kills):
            what = kill_trial(tmp / f"kill{number}", ledger, clean, rng, kills)
            print(f"  kill {number + 1}/{args.kills} ({what}): {kills.survived} survived so far")
        for number in range(args.fault_rounds):
            fault_round(tmp / f"faults{number}", ledger, clean, args.seed * 100 + number, faults)
            print(f"  fault round {number + 1}/{args.fault_rounds}: {faults.survived} survived")
        print(
            f"\nledger: {ledger['customers']} customers, {ledger['invoices']} invoices, "
            f"{ledger['credit_notes']} credit notes; seed {args.seed}"
        )
        print(
            f"{'kind':<13} {'trials':>6} {'landed':>7} {'survived':>8} {'lost rows':>9} "
            f"{'duplicates':>10} {'max re-sent':>14} {'mean s':>9}"
        )
        print(kills.row())
        print(faults.row())
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
