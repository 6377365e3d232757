"""Time `chaser-pipeline sync` on a quiet day (nothing changed in the ledger) and after a change to
one month, as a user runs it: a fresh process each time, through Dagster, recorded in a Dagster
home, into the emulator as a new Chaser organisation (`chaser-pipeline emulator
--new-organisation`, its own process), so the first load runs with `--initial-load` in the
organisation's first-day waiver as the README advises; the quiet runs send nothing either way.

A quiet sync after one that left nothing to send stops at the quiet check (no Dagster run:
`chaser_pipeline.cli.quiet`); the first sync after sends that changed which documents Chaser
holds runs the jobs (it rebuilds the models that read them, and marks it); the jobs' path on a
quiet day is timed too, with `--always-run`.

    .venv/bin/python -m benchmarks.quiet_day [--scale 33.3] [--repeat 3]

Scale 33.3 is about 100,000 invoices; 333.34 about 1,000,000. Works in a temporary folder.
Prints wall times (and the steps of the last quiet run); asserts nothing about time, only that
a quiet run sends nothing and a changed month is the only one synced.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from benchmarks.sync import API_KEY, EmulatorProcess
from chaser_pipeline.demo.generator import generate_demo_warehouse


@contextlib.contextmanager
def new_organisation(root: Path) -> Iterator[dict[str, str]]:
    """The emulator as a new Chaser organisation (`--new-organisation`: Chaser's documented
    limit, waived for its first day) in its own process: the variables that point a sync at it."""
    secret = secrets.token_urlsafe(16)
    emulator = EmulatorProcess(
        root / "chaser_emulator.sqlite3",
        secret,
        root / "emulator.log",
        limit_args=("--new-organisation",),
    )
    try:
        yield {
            "CHASER_API_URL": emulator.url,
            "CHASER_API_KEY": API_KEY,
            "CHASER_API_SECRET": secret,
        }
    finally:
        emulator.stop()


def sync(env: dict[str, str], *options: str) -> tuple[float, str]:
    """One `chaser-pipeline sync` in a new process: its wall time and its summary (which ends
    with the process's CPU time: on a shared machine, wall time also counts waiting)."""
    started = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "chaser_pipeline.cli", "sync", *options],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"sync failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    summary = [line for line in done.stdout.splitlines() if not line.startswith("20")]
    return wall, "\n".join([*summary, f"cpu {cpu:.2f}"])


def timed(env: dict[str, str], repeat: int, expect: str, *options: str) -> str:
    """`repeat` quiet syncs: the median wall and CPU, and each wall."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, out = sync(env, *options)
        assert expect in out and "done: 0 created, 0 updated" in out, out
        walls.append(wall)
        cpus.append(cpu_of(out))
    return (
        f"{statistics.median(walls):6.2f} s wall, {statistics.median(cpus):6.2f} s CPU "
        f"(median of {repeat}; walls {', '.join(f'{w:.2f}' for w in walls)})"
    )


def cpu_of(summary: str) -> float:
    return float(summary.rsplit("cpu ", 1)[1])


def change_one_month(warehouse: Path) -> str:
    """A payment lands today on one March 2024 invoice that Chaser holds as unpaid."""
    con = duckdb.connect(str(warehouse))
    try:
        ((invoice_id,),) = con.execute(
            """select invoice_id from ledger.invoices
            where issue_date >= date '2024-03-01' and issue_date < date '2024-04-01'
            and upper(status) = 'AUTHORISED' and total > 1
            order by invoice_id limit 1"""
        ).fetchall()
        con.execute(
            """insert into ledger.payments
                (payment_id, invoice_id, amount, paid_at, is_reversed, updated_at)
            values ('PAY-QUIET-DAY', $invoice, 1.00, now()::timestamp, false, now()::timestamp)""",
            {"invoice": invoice_id},
        )
    finally:
        con.close()
    return invoice_id


def step_times(home: Path) -> list[tuple[str, float]]:
    """The steps of the newest incremental run, slowest first."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        [run] = instance.get_runs(
            filters=dg.RunsFilter(job_name="chaser_incremental_sync"), limit=1
        )
        started: dict[str, float] = {}
        steps = []
        for record in instance.get_records_for_run(run.run_id).records:
            entry = record.event_log_entry
            kind = entry.dagster_event.event_type_value if entry.dagster_event else ""
            if kind == "STEP_START":
                started[entry.step_key] = entry.timestamp
            elif kind == "STEP_SUCCESS":
                steps.append((entry.step_key, entry.timestamp - started[entry.step_key]))
        return sorted(steps, key=lambda s: -s[1])
    finally:
        instance.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=33.3, help="33.3: ~100k invoices")
    parser.add_argument("--repeat", type=int, default=3, help="quiet runs to time")
    args = parser.parse_args(argv)

    with (
        tempfile.TemporaryDirectory(prefix="chaser-quiet-day-") as folder,
        new_organisation(Path(folder)) as chaser,
    ):
        root = Path(folder)
        warehouse = root / "warehouse.duckdb"
        summary = generate_demo_warehouse(warehouse, scale=args.scale)
        print(f"demo warehouse, scale {args.scale}: {summary.rows['invoices']:,} invoices")
        env = {
            **os.environ,
            "CHASER_WAREHOUSE_URL": f"duckdb:///{warehouse}",
            "CHASER_DUCKDB_PATH": str(root / "pipeline.duckdb"),
            "DAGSTER_HOME": str(root / "dagster_home"),
        }
        env.update(chaser)

        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
        # as the README tells a new user: the first load inside the organisation's first day
        first, out = sync(env, "--initial-load")
        print(f"first sync (everything):         {first:6.2f} s wall, {cpu_of(out):6.2f} s CPU")
        # the jobs once more: they rebuild the models that read what Chaser holds, find nothing
        # to send, and mark it; they ask Chaser for the organisation and wait out the request
        # window the first load filled (its last requests were unpaced, in the waiver)
        wall, out = sync(env)
        assert "done: 0 created, 0 updated" in out and "marked quiet" in out, out
        print(f"jobs right after the first load: {wall:6.2f} s wall (waits out the window)")
        quiet = timed(env, args.repeat, "no Dagster run started")
        print(f"quiet day, the quiet check:        {quiet}")
        forced = timed(env, args.repeat, "0 created, 0 updated", "--always-run")
        print(f"quiet day, --always-run (the jobs): {forced}")
        invoice = change_one_month(warehouse)
        wall, out = sync(env)
        assert "months with ledger changes: 1 (2024-03-01 .. 2024-03-01)" in out, out
        assert "0 created, 1 updated" in out, out
        assert "the warehouse changed: payments" in out, out
        print(
            f"one payment on a March invoice:  {wall:6.2f} s wall, {cpu_of(out):6.2f} s CPU "
            f"(re-syncs {invoice}, March only)"
        )
        # it updated a document Chaser holds, which changes no model's input: it marked itself
        assert "marked quiet" in out, out
        print(f"quiet again, the quiet check:    {timed(env, args.repeat, 'no Dagster run')}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print("steps of the last incremental run, the change's (seconds):")
        for step, seconds in step_times(root / "dagster_home")[:8]:
            print(f"  {step:<55} {seconds:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
