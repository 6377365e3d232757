"""`chaser-pipeline`: sync headless through Dagster, open the Dagster UI on the same runs, report
what was held back or refused, make demo data, serve the Chaser emulator."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from chaser_pipeline.cli import quiet
from chaser_pipeline.cli import reconcile as reconcile_command
from chaser_pipeline.cli.home import dagster_home, default_dagster_home, workspace_file
from chaser_pipeline.preflight import check_local_paths
from chaser_pipeline.settings import ConfigError, Settings, load_settings


def cmd_sync(args: argparse.Namespace) -> int:
    """Run extract, models, checks and sync through Dagster, in-process; non-zero on failure."""
    # the budget flags are the variables' values for this run (settings read them)
    for flag, variable in (
        (args.requests_per_minute, "CHASER_API_REQUESTS_PER_MINUTE"),
        (args.max_in_flight, "CHASER_API_MAX_IN_FLIGHT"),
    ):
        if flag is not None:
            os.environ[variable] = str(flag)
    try:
        settings = load_settings()
        # every local place the run needs, checked before any data moves
        home_setting = os.environ.get("DAGSTER_HOME", "").strip()
        check_local_paths(
            settings,
            dagster_home=Path(home_setting) if home_setting else default_dagster_home(),
        )
    except ConfigError as exc:
        print(f"chaser-pipeline: configuration error: {exc}", file=sys.stderr)
        return 2
    home = dagster_home()
    if not args.verbose:
        # Library notices (beta APIs, DuckDB's Arrow copies) are for developers, not this summary.
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    print(f"chaser-pipeline sync: runs recorded in DAGSTER_HOME={home}")
    warehouse = settings.warehouse.display if settings.warehouse else "bundled demo warehouse"
    print(f"  warehouse: {warehouse}")
    print(f"  pipeline DuckDB: {settings.duckdb_path}")
    print(f"  Chaser: {settings.api_url or 'built-in emulator (no CHASER_API_KEY set)'}")
    # the quiet check stands in for a plain sync only; any option asks for the jobs
    plain = not (args.dry_run or args.full_refresh or args.confirm_mass_change or args.always_run)
    from chaser_pipeline.defs.automation.runs import sync_lock

    with sync_lock(home) as held:
        if not held:
            print(
                f"chaser-pipeline: another `chaser-pipeline sync` is running on {home}",
                file=sys.stderr,
            )
            return 1
        found = quiet.check(settings) if plain else None
        if found is not None and found.quiet:
            status = _quiet_sync(settings, found, warehouse)
            if status is not None:
                return status
        elif found is not None:
            print(f"  quiet check ({found.seconds:.2f} s): {found.reason}: running the jobs")
        status = _run_jobs(args, settings)
    return status


def _quiet_sync(settings: Settings, found: quiet.QuietCheck, warehouse: str) -> int | None:
    """Nothing to do: record the check in the Dagster instance, print the usual summary; None
    when it could not be recorded (the jobs run instead, and report what is wrong)."""
    import dagster as dg

    from chaser_pipeline.cli.headless import recover_abandoned_runs

    try:
        instance = dg.DagsterInstance.get()
        try:
            for run_id in recover_abandoned_runs(instance):
                print(f"  marked run {run_id} as failed: it was abandoned by a killed sync")
            recorded = quiet.report(instance, found, warehouse)
        finally:
            instance.dispose()
    except Exception as exc:  # the jobs record in the same instance and say what is wrong
        print(
            f"  quiet check ({found.seconds:.2f} s): nothing changed, but the check could not be "
            f"recorded in the Dagster instance ({type(exc).__name__}): running the jobs"
        )
        return None
    print(f"  quiet check ({found.seconds:.2f} s): {found.reason}")
    print(
        "  no Dagster run started: the ledger landed nothing and nothing waits for Chaser "
        f"({recorded} materializations reported without a run; --always-run runs the jobs)"
    )
    print("  months with ledger changes: none")
    _print_held_back(settings)
    print("chaser-pipeline sync: done: 0 created, 0 updated, 0 rejected by Chaser")
    print("  details: chaser-pipeline report; the runs: chaser-pipeline ui")
    return 0


def _run_jobs(args: argparse.Namespace, settings: Settings) -> int:
    """The Dagster runs of one sync (see `chaser_pipeline.cli.headless`): the quiet mark is
    cleared before they start and recorded after a sync (not a dry run) that succeeded when the
    plan of what it left sends nothing (`quiet.record`)."""
    import dagster as dg

    from chaser_pipeline.cli.headless import run_sync
    from chaser_pipeline.definitions import defs as load_defs

    try:
        defs = load_defs()
    except ConfigError as exc:
        print(f"chaser-pipeline: configuration error: {exc}", file=sys.stderr)
        return 2
    # before any run starts: a sync killed half-way must never leave the quiet mark behind
    if problem := quiet.clear(settings):
        print(f"  {problem}")
    run = run_sync(
        defs,
        dg.DagsterInstance.get(),
        dry_run=args.dry_run,
        full_refresh=args.full_refresh,
        confirm_mass_change=args.confirm_mass_change,
        initial_load=args.initial_load,
        log_level="DEBUG" if args.verbose else "INFO",
    )
    total = run.summary()
    if run.success and not args.dry_run:
        print(f"  {quiet.record(settings, run)}")
    if not run.success:
        print(
            "chaser-pipeline sync: FAILED (what failed is above; every event: chaser-pipeline ui)",
            file=sys.stderr,
        )
        return 1
    note = " (dry run: nothing was sent)" if args.dry_run else ""
    _print_held_back(settings)
    print(
        f"chaser-pipeline sync: done{note}: {total.created} created, "
        f"{total.updated} updated, {total.rejected_by_chaser} rejected by Chaser"
    )
    print("  details: chaser-pipeline report; the runs: chaser-pipeline ui")
    return 0


def _print_held_back(settings: Settings) -> None:
    from chaser_pipeline.cli.report import (
        ReportError,
        held_back_by_reason,
        held_back_line,
        open_read_only,
    )

    try:
        con = open_read_only(settings.duckdb_path)
    except ReportError as exc:
        print(f"  held back by the models' rules: not known ({exc})")
        return
    try:
        print(f"  {held_back_line(held_back_by_reason(con))}")
    finally:
        con.close()


def _settings_or_exit() -> Settings | None:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"chaser-pipeline: configuration error: {exc}", file=sys.stderr)
        return None


def cmd_ui(args: argparse.Namespace) -> int:
    """Replace this process with `dagster dev` on the pipeline's Dagster home."""
    if _settings_or_exit() is None:
        return 2
    home = dagster_home()
    command = [
        sys.executable,
        # `dagster dev` suggests `dg dev`, which only the dev install has: this is the way here
        "-W",
        "ignore:Function `dev_command` is superseded",
        "-m",
        "dagster",
        "dev",
        "--workspace",
        str(workspace_file(home)),
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    print(f"chaser-pipeline ui: http://{args.host}:{args.port} (runs in DAGSTER_HOME={home})")
    sys.stdout.flush()
    os.execv(sys.executable, command)
    return 0  # not reached


def _open_read_only(command: str):
    """(settings, the pipeline DuckDB read-only); either is None once it printed why not."""
    from chaser_pipeline.cli.report import ReportError, open_read_only

    settings = _settings_or_exit()
    if settings is None:
        return None, None
    try:
        return settings, open_read_only(settings.duckdb_path)
    except ReportError as exc:
        print(f"chaser-pipeline {command}: {exc}", file=sys.stderr)
        return settings, None


def cmd_report(args: argparse.Namespace) -> int:
    """Print what was held back, refused, waiting or stale, and the months that need a sync."""
    from chaser_pipeline.cli.report import write_report
    from chaser_pipeline.db import utc_now
    from chaser_pipeline.paths import models_dir

    settings, con = _open_read_only("report")
    if con is None:
        return 2 if settings is None else 1
    try:
        print(f"chaser-pipeline report: {settings.duckdb_path}")
        write_report(
            con, models_dir=models_dir(), history_start=settings.history_start_date, now=utc_now()
        )
    finally:
        con.close()
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    """Run one read-only query on the pipeline's DuckDB and print the rows."""
    import duckdb

    from chaser_pipeline.cli.report import run_sql

    settings, con = _open_read_only("sql")
    if con is None:
        return 2 if settings is None else 1
    try:
        run_sql(con, args.query)
    except duckdb.Error as exc:
        print(f"chaser-pipeline sql: {exc}", file=sys.stderr)
        return 1
    finally:
        con.close()
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from chaser_pipeline.demo.generator import generate_demo_warehouse
    from chaser_pipeline.ledger.warehouse import demo_warehouse_path

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
    sync.add_argument(
        "--initial-load",
        action="store_true",
        help="the Chaser organisation is in its first 24 hours (no request limit yet): send "
        "without pacing until Chaser's first 429, then keep to the budget",
    )
    sync.add_argument(
        "--requests-per-minute",
        type=int,
        default=None,
        help="Chaser's request budget (default: CHASER_API_REQUESTS_PER_MINUTE, else 200)",
    )
    sync.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        help="requests in flight at once (default: CHASER_API_MAX_IN_FLIGHT, else 4)",
    )
    sync.add_argument(
        "--always-run",
        action="store_true",
        help="run the Dagster jobs even when the quiet check finds nothing changed since the "
        "last sync that sent nothing",
    )
    sync.add_argument("--verbose", action="store_true", help="print every Dagster event")
    sync.set_defaults(func=cmd_sync)

    reconcile_command.add_parser(sub)
    ui = sub.add_parser("ui", help="start the Dagster UI (dagster dev) on the runs `sync` recorded")
    ui.add_argument("--port", type=int, default=3000, help="default: 3000")
    ui.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    ui.set_defaults(func=cmd_ui)

    report = sub.add_parser(
        "report",
        help="held back by reason, refused by Chaser, waiting, stale, months that need a sync",
    )
    report.set_defaults(func=cmd_report)

    sql = sub.add_parser("sql", help="run a read-only SQL query on the pipeline's DuckDB")
    sql.add_argument("query", help="e.g. \"select * from chaser_sync.log where action = 'failed'\"")
    sql.set_defaults(func=cmd_sql)

    demo = sub.add_parser("demo-data", help="write a demo ledger warehouse (DuckDB)")
    demo.add_argument(
        "--scale", type=float, default=1.0, help="1 = 3,000 invoices; 333.34 = 1,000,000"
    )
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--out", type=Path, default=None, help="default: data/demo_warehouse.duckdb")
    demo.set_defaults(func=cmd_demo_data)

    from chaser_pipeline.emulator.server import build_parser
    from chaser_pipeline.emulator.server import main as emulator_main

    emulator = sub.add_parser("emulator", help="serve the local Chaser emulator over HTTP")
    build_parser(emulator)
    raw = list(sys.argv[1:] if argv is None else argv)
    # the emulator parses its own options (the same ones as `python -m chaser_pipeline.emulator`)
    emulator.set_defaults(func=lambda _args: emulator_main(raw[raw.index("emulator") + 1 :]))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
