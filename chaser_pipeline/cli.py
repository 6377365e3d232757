"""`chaser-pipeline`: sync headless through Dagster, make demo data, serve the Chaser emulator."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

from chaser_pipeline.config import ConfigError, load_settings
from chaser_pipeline.paths import data_dir

SYNC_ASSETS = ("sync_chaser_customers", "sync_chaser_invoices", "sync_chaser_credit_notes")
EXTRACT_ASSETS = tuple(
    f"ledger_{t}"
    for t in ("customers", "invoices", "payments", "credit_notes", "credit_allocations")
)


def _dagster_home() -> Path:
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if not home:
        # Runs must be recorded somewhere a user can open with `dagster dev` later.
        home = str(data_dir() / "dagster_home")
        os.environ["DAGSTER_HOME"] = home
    path = Path(home)
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        # Every run that calls the Chaser API shares one pool: overlapping runs stay in budget.
        config.write_text("concurrency:\n  pools:\n    default_limit: 1\n")
    return path


def contiguous_ranges(months: list[str]) -> list[tuple[str, str]]:
    """Group sorted month keys (YYYY-MM-01) into runs of consecutive months."""
    ranges: list[tuple[str, str]] = []
    for key in sorted(months):
        day = date.fromisoformat(key)
        if ranges:
            last = date.fromisoformat(ranges[-1][1])
            following = date(last.year + last.month // 12, last.month % 12 + 1, 1)
            if day == following:
                ranges[-1] = (ranges[-1][0], key)
                continue
        ranges.append((key, key))
    return ranges


def _sync_run_config(args: argparse.Namespace, assets: tuple[str, ...]) -> dict:
    ops: dict[str, dict] = {}
    sync_config = {"dry_run": args.dry_run, "confirm_mass_change": args.confirm_mass_change}
    for name in assets:
        if name in SYNC_ASSETS:
            ops[name] = {"config": sync_config}
        if name in EXTRACT_ASSETS and args.full_refresh:
            ops[name] = {"config": {"full_refresh": True}}
    return {"ops": ops}


def _print_sync(result, names: tuple[str, ...]) -> None:
    for name in names:
        materializations = result.asset_materializations_for_node(name)
        if not materializations:
            continue
        # A range run attaches the same metadata to every month it covers: print it once.
        mat = materializations[0]
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        partitions = sorted(m.partition for m in materializations if m.partition)
        where = f" [{partitions[0]} .. {partitions[-1]}]" if partitions else ""
        line = (
            f"  {name}{where}: {meta.get('created', 0)} created, {meta.get('updated', 0)} updated, "
            f"{meta.get('unchanged', 0)} unchanged, "
            f"{meta.get('held_back_waiting_for_customer', 0)} waiting for their customer, "
            f"{meta.get('held_back_by_rules', 0)} held back by data rules, "
            f"{meta.get('skipped_not_worth_sending', 0)} not worth sending, "
            f"{meta.get('rejected_by_chaser', 0)} rejected by Chaser "
            f"({meta.get('write_requests', 0)} write requests)"
        )
        if meta.get("dry_run"):
            line += (
                f"; dry run: would create {meta.get('planned_create')} and update "
                f"{meta.get('planned_update')}"
            )
        print(line)
        if name == "sync_chaser_customers":
            print(f"  target: {meta.get('target')}")


def cmd_sync(args: argparse.Namespace) -> int:
    """Run extract, models, checks and sync through Dagster, in-process; non-zero on failure."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"chaser-pipeline: configuration error: {exc}", file=sys.stderr)
        return 2
    home = _dagster_home()
    import dagster as dg

    from chaser_pipeline.assets.sync import changed_months_from_metadata
    from chaser_pipeline.definitions import defs
    from chaser_pipeline.jobs import MONTHLY_ASSETS

    instance = dg.DagsterInstance.get()
    print(f"chaser-pipeline sync: runs recorded in DAGSTER_HOME={home}")
    print(
        f"  warehouse: {settings.warehouse.display if settings.warehouse else 'bundled demo warehouse'}"
    )
    print(f"  pipeline DuckDB: {settings.duckdb_path}")
    incremental = defs.resolve_job_def("chaser_incremental_sync")
    names = tuple(k.to_user_string() for k in incremental.asset_layer.executable_asset_keys)
    result = incremental.execute_in_process(
        instance=instance, run_config=_sync_run_config(args, names), raise_on_error=False
    )
    _print_sync(result, ("sync_chaser_customers",))
    if not result.success:
        print(
            f"chaser-pipeline: run {result.run_id} failed; see `dagster dev` or the log above",
            file=sys.stderr,
        )
        return 1
    [pending] = result.asset_materializations_for_node("chaser_pending_months")
    months = changed_months_from_metadata(dict(pending.metadata))
    print(
        f"  months with changes: {len(months)}"
        + (f" ({months[0]} .. {months[-1]})" if months else "")
    )
    monthly = defs.resolve_job_def("chaser_monthly_sync")
    failed = False
    for start, end in contiguous_ranges(months):
        tags = {
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        }
        result = monthly.execute_in_process(
            instance=instance,
            run_config=_sync_run_config(args, tuple(MONTHLY_ASSETS)),
            tags=tags,
            raise_on_error=False,
        )
        _print_sync(result, ("sync_chaser_invoices", "sync_chaser_credit_notes"))
        if not result.success:
            print(
                f"chaser-pipeline: run {result.run_id} for {start}..{end} failed", file=sys.stderr
            )
            failed = True
    if failed:
        return 1
    print("chaser-pipeline sync: done" + (" (dry run: nothing was sent)" if args.dry_run else ""))
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from chaser_pipeline.demo_data import generate_demo_warehouse
    from chaser_pipeline.warehouse import demo_warehouse_path

    out = args.out or demo_warehouse_path()
    summary = generate_demo_warehouse(Path(out), scale=args.scale, seed=args.seed)
    rows = ", ".join(f"{n} {name}" for name, n in summary.rows.items())
    print(f"Wrote {summary.path} in {summary.seconds:.1f} s: {rows}")
    print(f"Point the pipeline at it with CHASER_WAREHOUSE_URL=duckdb:///{Path(out).resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaser-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sync = sub.add_parser("sync", help="run extract, models, checks and sync once, through Dagster")
    sync.add_argument("--dry-run", action="store_true", help="plan and report; send nothing")
    sync.add_argument("--full-refresh", action="store_true", help="re-extract every ledger row")
    sync.add_argument(
        "--confirm-mass-change", action="store_true", help="send even past the mass-change guard"
    )
    sync.set_defaults(func=cmd_sync)

    demo = sub.add_parser("demo-data", help="write a demo ledger warehouse (DuckDB)")
    demo.add_argument(
        "--scale", type=float, default=1.0, help="1 = 3,000 invoices; 333.34 = 1,000,000"
    )
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--out", type=Path, default=None, help="default: data/demo_warehouse.duckdb")
    demo.set_defaults(func=cmd_demo_data)

    from chaser_pipeline.emulator.server import build_parser, faults_from_args, serve

    emulator = sub.add_parser("emulator", help="serve the local Chaser emulator over HTTP")
    build_parser(emulator)

    def cmd_emulator(args: argparse.Namespace) -> int:
        serve(
            args.state,
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            api_secret=args.api_secret,
            faults=faults_from_args(args),
            log_level=args.log_level,
        )
        return 0

    emulator.set_defaults(func=cmd_emulator)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
