"""Time the pending-months computation (whole-history plan against the confirmed hashes).

Runs in every incremental job (chaser_pending_months) and in the hourly data-lag check.

    .venv/bin/python -m benchmarks.pending [--scale 333.34]

Prints wall times and peak RSS; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime
from pathlib import Path

import duckdb

from chaser_pipeline.demo.generator import generate_demo_warehouse
from chaser_pipeline.ledger.contract import LEDGER_TABLES
from chaser_pipeline.models.build import run_models
from chaser_pipeline.paths import models_dir
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.pending import compute_pending
from chaser_pipeline.sync.plan import SyncOptions, build_plan
from chaser_pipeline.sync.state import STATE_TABLE, DuckDBState, Target

NOW = datetime(2026, 11, 21)
START = date(2023, 1, 1)
TARGET = Target(url="http://benchmark.invalid", organisation_id="benchmark")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=333.34)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chaser-pending-") as tmp:
        warehouse = Path(tmp) / "wh.duckdb"
        with ProcessPoolExecutor(max_workers=1) as pool:
            pool.submit(generate_demo_warehouse, warehouse, scale=args.scale).result()
        con = duckdb.connect(str(Path(tmp) / "p.duckdb"))
        con.execute("attach ? as wh (read_only)", [str(warehouse)])
        con.execute("create schema landing")
        for name in LEDGER_TABLES:
            con.execute(f"create table landing.{name} as select * from wh.ledger.{name}")
        con.execute("detach wh")
        started = time.perf_counter()
        run_models(con, models_dir())
        print(f"models: {time.perf_counter() - started:.1f} s")

        state = DuckDBState(con, lock_dir=Path(tmp))
        started = time.perf_counter()
        first = compute_pending(state, TARGET, models_dir(), history_start=START, now=NOW)
        print(
            f"pending, nothing in Chaser yet: {time.perf_counter() - started:.2f} s, "
            f"{first.documents} documents, {len(first.months)} months"
        )
        # Everything Chaser would get is confirmed, as after a complete sync.
        for chaser_object in CHASER_OBJECTS.values():
            state.refresh(TARGET)
            build_plan(
                con,
                chaser_object,
                (date(1, 1, 1), date(9999, 12, 31)),
                SyncOptions(),
                NOW,
                target=TARGET,
            )
            con.execute(
                f"""insert into {STATE_TABLE} by name select $t as target, $o as object,
                {chaser_object.key} as key, sync_payload_hash as payload_hash,
                $now as confirmed_at, 'confirmed' as last_status, $now as last_attempt_at
                from sync_plan where sync_action in ('create', 'update')""",
                {"t": TARGET.key, "o": chaser_object.name, "now": NOW},
            )
        started = time.perf_counter()
        synced = compute_pending(state, TARGET, models_dir(), history_start=START, now=NOW)
        print(
            f"pending, Chaser up to date: {time.perf_counter() - started:.2f} s, "
            f"{synced.total} documents (held back waiting for a customer), {len(synced.months)} months"
        )
        con.close()
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
