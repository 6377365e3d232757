"""Benchmark: the pipeline at 1M and 10M invoices: demo generator, full extract from PostgreSQL,
models, a dry run from scratch, and `reconcile` (requests read back, minutes at Chaser's budget).

Each phase runs in a fresh process (spawned), so its wall time and peak RSS (the kernel's
high-water mark, `ru_maxrss`) are its own:

- `generate`: the demo warehouse (DuckDB file) at `--scale` (333.34 ~ 1M invoices, 3333.4 ~ 10M);
- `extract`: the demo ledger copied into a fresh PostgreSQL database (ADBC COPY, not timed as a
  phase), then the first extract of every ledger table into an empty pipeline DuckDB (every row
  read and landed, as when a run-local DuckDB is rebuilt); the database is dropped after;
- `models`: every SQL model over what `extract` landed (`run_models`, no Dagster);
- `dry-run`: from scratch in an empty pipeline DuckDB: extract from the DuckDB warehouse, every
  model, then the pending months (`compute_pending`: the whole-history plan of every object
  against an empty state); nothing is sent. The engine path of `chaser-pipeline sync --dry-run`
  without Dagster's per-step overhead;
- `floor` (not in the default phases): every model again over the same landed ledger, first as
  the product builds them (`run_models`), then each as an in-memory temporary table with a 20 GB
  memory limit: nothing written to the file, nothing compressed. Not something the product could
  do; it says how much of the models' time is computation and how much is writing;
- `reconcile`: loads the emulator with everything the models send (the sync engine, budget
  lifted), then `reconcile` reads it all back against the emulator with the budget lifted. The
  figure for Chaser is the number of read requests (the emulator's request log) ÷ 200 a minute:
  a FORECAST, not a run at the real budget. `--forecast-only` counts the requests from the
  models' rows instead of loading the emulator (pages of 100; contact persons one list per
  customer).

    .venv/bin/python -m benchmarks.scale [--scale 333.34] [--phases generate,extract,models,dry-run,reconcile]

Prints figures; asserts only correctness (row counts, request counts), never time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

PHASES = ("generate", "extract", "models", "dry-run", "reconcile")
EXTRA_PHASES = ("floor",)
NOW = datetime(2026, 11, 21)
HISTORY_START = date(2023, 1, 1)
BUDGET_PER_MINUTE = 200


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system), less sensitive than wall time to what
    else runs on the machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def figures(started: float, **extra) -> dict:
    """A phase's wall time since `started`, this process's CPU time and peak RSS, and `extra`."""
    return {
        "wall": time.perf_counter() - started,
        "cpu": cpu_seconds(),
        "peak": peak_rss_mb(),
        **extra,
    }


def in_child(function, *args, **kwargs):
    """Run in a fresh (spawned) process: wall time, peak RSS and CPU are its own."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args, **kwargs).result()


def load_average() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _generate(path: str, scale: float) -> dict:
    from chaser_pipeline.demo.generator import generate_demo_warehouse

    started = time.perf_counter()
    summary = generate_demo_warehouse(Path(path), scale=scale)
    return figures(started, rows=summary.rows)


def _extract(url: str, pipeline: str) -> dict:

    from chaser_pipeline.ledger.contract import LEDGER_TABLES
    from chaser_pipeline.ledger.extract import ExtractOptions, extract_table
    from chaser_pipeline.ledger.warehouse import Warehouse
    from chaser_pipeline.preflight import open_duckdb

    started = time.perf_counter()
    warehouse = Warehouse.from_url(url)
    con = open_duckdb(Path(pipeline))
    rows = {}
    try:
        for table in LEDGER_TABLES.values():
            result = extract_table(con, warehouse, table, now=NOW, options=ExtractOptions())
            rows[table.name] = result.landed.row_count
    finally:
        con.close()
    return figures(started, rows=rows)


def _models(pipeline: str) -> dict:
    from chaser_pipeline.models.build import run_models
    from chaser_pipeline.paths import models_dir
    from chaser_pipeline.preflight import open_duckdb

    started = time.perf_counter()
    con = open_duckdb(Path(pipeline))
    try:
        builds = run_models(con, models_dir())
    finally:
        con.close()
    return figures(started, rows={name: b.row_count for name, b in builds.items()})


def _pending(pipeline: str) -> dict:
    from chaser_pipeline.paths import models_dir
    from chaser_pipeline.preflight import open_duckdb
    from chaser_pipeline.sync.pending import compute_pending
    from chaser_pipeline.sync.state import DuckDBState, Target

    started = time.perf_counter()
    con = open_duckdb(Path(pipeline))
    try:
        state = DuckDBState(con, lock_dir=Path(pipeline).parent)
        target = Target(url="http://benchmark.invalid", organisation_id="benchmark")
        pending = compute_pending(state, target, models_dir(), history_start=HISTORY_START, now=NOW)
    finally:
        con.close()
    return figures(
        started, documents=pending.documents, months=len(pending.months), requests=pending.requests
    )


def _dry_run(warehouse: str, pipeline: str) -> dict:
    """Extract, models and pending months from scratch, in this one process."""
    started = time.perf_counter()
    steps = {"extract": _extract(f"duckdb:///{warehouse}", pipeline)}
    steps["models"] = _models(pipeline)
    steps["pending"] = _pending(pipeline)
    return figures(started, steps=steps)


def _models_unwritten(pipeline: str) -> dict:
    """Every model as an in-memory temporary table (see `floor` in the module's docstring)."""
    from chaser_pipeline.models.build import ensure_model_inputs, model_query, quote
    from chaser_pipeline.models.field_rules import register_field_rules
    from chaser_pipeline.models.project import as_project
    from chaser_pipeline.paths import models_dir
    from chaser_pipeline.preflight import open_duckdb
    from chaser_pipeline.settings import DEFAULT_COUNTRY

    started = time.perf_counter()
    con = open_duckdb(Path(pipeline))
    steps = {}
    try:
        con.execute("set memory_limit = '20GB'")
        register_field_rules(con, DEFAULT_COUNTRY)  # as run_models registers them
        ensure_model_inputs(con)
        for name, model in as_project(models_dir()).models.items():
            step = time.perf_counter()
            sql, params = model_query(model)  # the whole history, as run_models builds it
            con.execute(f"create or replace temp table {quote(name)} as\n{sql}", params)
            steps[name] = time.perf_counter() - step
    finally:
        con.close()
    return figures(started, steps=steps)


def phase_floor(warehouse: Path, folder: Path) -> None:
    pipeline = folder / "pipeline-floor.duckdb"
    pipeline.unlink(missing_ok=True)
    show("(extract from DuckDB)", in_child(_extract, f"duckdb:///{warehouse}", str(pipeline)))
    written = in_child(_models, str(pipeline))
    show("models, written", written)
    unwritten = in_child(_models_unwritten, str(pipeline))
    show("models, unwritten (temporary)", unwritten)
    for name, seconds in unwritten["steps"].items():
        print(f"  {name:<26s} {seconds:6.1f} s")
    pipeline.unlink(missing_ok=True)


def show(label: str, figures: dict) -> None:
    print(
        f"{label:<34s} wall {figures['wall']:7.1f} s   CPU {figures.get('cpu', 0):7.1f} s   peak RSS {figures['peak']:7,.0f} MB   "
        f"({load_average()}, {datetime.now(UTC):%H:%M} UTC)",
        flush=True,
    )


def phase_extract(warehouse: Path, folder: Path, admin_url: str) -> None:
    from benchmarks.key_set import drop_postgres, load_into_postgres

    url, seconds = load_into_postgres(warehouse, admin_url)
    try:
        print(f"  (copied into PostgreSQL in {seconds:.1f} s)", flush=True)
        pipeline = folder / "pipeline-pg.duckdb"
        pipeline.unlink(missing_ok=True)  # a first extract: every row read and landed
        figures = in_child(_extract, url, str(pipeline))
        show("full extract from PostgreSQL", figures)
        print(f"  rows landed: {figures['rows']}")
    finally:
        drop_postgres(url, admin_url)


def phase_dry_run(warehouse: Path, folder: Path) -> None:
    pipeline = folder / "pipeline-dry.duckdb"
    pipeline.unlink(missing_ok=True)
    figures = in_child(_dry_run, str(warehouse), str(pipeline))
    show("dry run from scratch", figures)
    for name, step in figures["steps"].items():
        print(f"  {name:<10s} {step['wall']:7.1f} s  (peak so far {step['peak']:,.0f} MB)")
    pending = figures["steps"]["pending"]
    print(
        f"  pending: {pending['documents']}, {pending['months']} months, "
        f"{pending['requests']:,d} write requests planned"
    )
    pipeline.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=333.34)
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--keep", type=Path, help="folder to keep the warehouse in (reused)")
    parser.add_argument("--forecast-only", action="store_true", help="reconcile: count only")
    args = parser.parse_args()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES) - set(EXTRA_PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}")
    print(f"scale {args.scale}, {os.cpu_count()} CPUs, {load_average()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="chaser-scale-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        warehouse = folder / "warehouse.duckdb"
        if "generate" in phases or not warehouse.exists():
            figures = in_child(_generate, str(warehouse), args.scale)
            show("demo generator", figures)
            print(f"  rows: {figures['rows']}")
        if "extract" in phases:
            phase_extract(warehouse, folder, args.postgres_url)
        if "models" in phases:
            pipeline = folder / "pipeline-pg.duckdb"
            if not pipeline.exists():
                show(
                    "(extract from DuckDB for models)",
                    in_child(_extract, f"duckdb:///{warehouse}", str(pipeline)),
                )
            figures = in_child(_models, str(pipeline))
            show("models", figures)
        if "dry-run" in phases:
            phase_dry_run(warehouse, folder)
        if "floor" in phases:
            phase_floor(warehouse, folder)
        if "reconcile" in phases:
            from benchmarks.scale_reconcile import phase_reconcile

            phase_reconcile(warehouse, folder, forecast_only=args.forecast_only)
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
