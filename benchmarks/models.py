"""Benchmark: build every SQL model over a demo warehouse (default ~1M invoices, 2M payments).

Runs the framework's own `run_models` (plain DuckDB, no Dagster run), so the figures are the SQL
and the framework's writes, not Dagster's per-step process overhead. Landing is copied straight
from the warehouse's `ledger.*` into `landing.*` with ATTACH (the extract step is not measured).
Prints wall time per model and in total, and the peak RSS of this process; asserts nothing.

    ./.venv/bin/python -m benchmarks.models [--scale 333.34] [--keep DIR] [--partition 2024-03-01]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import duckdb

from chaser_pipeline.demo.generator import generate_demo_warehouse
from chaser_pipeline.models.build import build_model
from chaser_pipeline.models.field_rules import register_field_rules
from chaser_pipeline.models.inputs import ledger_columns
from chaser_pipeline.models.project import ModelProject
from chaser_pipeline.paths import models_dir
from chaser_pipeline.settings import DEFAULT_COUNTRY


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (the kernel's high-water mark, not a sample)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def land(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    con.execute("attach $path as warehouse (read_only)", {"path": str(warehouse)})
    con.execute("create schema if not exists landing")
    # every ledger table the models read (the optional contacts table included)
    for name in ledger_columns():
        con.execute(
            f"create or replace table landing.{name} as select * from warehouse.ledger.{name}"
        )
    con.execute("detach warehouse")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=333.34)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="folder to keep the warehouse and pipeline DB in")
    parser.add_argument(
        "--partition", help="also time one month's partition write of the partitioned marts"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="chaser-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        warehouse, pipeline = folder / "warehouse.duckdb", folder / "pipeline.duckdb"
        pipeline.unlink(missing_ok=True)

        started = time.perf_counter()
        # In a child process, so the peak memory below is the models' alone.
        with ProcessPoolExecutor(max_workers=1) as pool:
            summary = pool.submit(
                generate_demo_warehouse, warehouse, scale=args.scale, seed=args.seed
            ).result()
        print(f"demo warehouse: {summary.rows} in {time.perf_counter() - started:.1f} s")

        con = duckdb.connect(str(pipeline))
        try:
            started = time.perf_counter()
            land(con, warehouse)
            print(f"landing (ATTACH copy): {time.perf_counter() - started:.1f} s")

            started = time.perf_counter()
            project = ModelProject(models_dir())
            print(
                f"model definitions: {len(project.models)} models in {time.perf_counter() - started:.2f} s"
            )
            register_field_rules(con, DEFAULT_COUNTRY)

            print(f"\n{'model':28s} {'rows':>11s} {'seconds':>8s} {'peak MB':>8s}")
            total_started = time.perf_counter()
            for model in project.models.values():
                build = build_model(con, model)
                print(
                    f"{model.name:28s} {build.row_count:>11,d} {build.seconds:>8.2f} "
                    f"{peak_rss_mb():>8.0f}"
                )
            print(
                f"{'total (all models)':28s} {'':>11s} {time.perf_counter() - total_started:>8.2f}"
            )

            if args.partition:
                start = date.fromisoformat(args.partition)
                end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
                print(f"\npartition write [{start}, {end}):")
                for model in project.models.values():
                    if model.partitioned_by:
                        build = build_model(con, model, (start, end))
                        print(f"{model.name:28s} {build.row_count:>11,d} {build.seconds:>8.2f}")
        finally:
            con.close()
        print(f"\npeak RSS (landing and models, this process): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
