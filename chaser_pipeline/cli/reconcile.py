"""`chaser-pipeline reconcile`: read back what Chaser holds, report drift, repair the sync state.

Runs without Dagster: settings, the pipeline's DuckDB (its models must be built: a
`chaser-pipeline sync --dry-run` builds them without sending), the sync state wherever it lives,
and the Chaser target, under the target's lock.
"""

from __future__ import annotations

import argparse
import sys

from chaser_pipeline.db import utc_now
from chaser_pipeline.settings import ConfigError, Settings, load_settings

TARGET_LOCK_WAIT_SECONDS = 600.0


def _target(settings: Settings):
    from chaser_pipeline.chaser.target import BuiltinEmulator, ChaserApi

    if settings.uses_emulator:
        return BuiltinEmulator(settings.duckdb_path.with_name("chaser_emulator.sqlite3"))
    assert settings.api_url and settings.api_key and settings.api_secret
    return ChaserApi(settings.api_url, settings.api_key, settings.api_secret)


def _state(settings: Settings, con):
    from chaser_pipeline.sync.state import DuckDBState

    if settings.state_url is not None:
        from chaser_pipeline.sync.postgres_state import PostgresState

        return PostgresState(con, settings.state_url)
    return DuckDBState(con, settings.duckdb_path.parent)


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Report drift between Chaser and the models; with --apply, repair the state."""
    from chaser_pipeline.chaser.errors import ChaserError
    from chaser_pipeline.paths import models_dir
    from chaser_pipeline.preflight import check_local_paths, open_duckdb
    from chaser_pipeline.sync.engine import check_target
    from chaser_pipeline.sync.objects import CHASER_OBJECTS
    from chaser_pipeline.sync.reconcile import reconcile
    from chaser_pipeline.sync.state import StateLockTimeout

    objects = [o.strip() for o in args.objects.split(",")] if args.objects else None
    unknown = sorted(set(objects or []) - set(CHASER_OBJECTS))
    if unknown:
        print(f"chaser-pipeline reconcile: unknown objects {unknown}", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        check_local_paths(settings)
        con = open_duckdb(settings.duckdb_path)
    except ConfigError as exc:
        print(f"chaser-pipeline: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        missing = [
            o.mart
            for o in CHASER_OBJECTS.values()
            if not con.execute(
                "select count(*) from information_schema.tables where table_name = ?", [o.mart]
            ).fetchone()[0]
        ]
        if missing:
            print(
                f"chaser-pipeline reconcile: the models are not built ({', '.join(missing)} "
                "missing): run `chaser-pipeline sync --dry-run` first (it builds them and "
                "sends nothing)",
                file=sys.stderr,
            )
            return 2
        state = _state(settings, con)
        chaser_target = _target(settings)
        with chaser_target.connect() as connection:
            print(f"chaser-pipeline reconcile: reading back {connection.display}")
            now = utc_now()
            target, _ = check_target(
                state,
                connection.identity,
                connection.make_client,
                run_id=f"reconcile-{now}",
                now=now,
                credentials=chaser_target.credentials,
            )
            with state.lock(target, wait_seconds=TARGET_LOCK_WAIT_SECONDS):
                report = reconcile(
                    state,
                    target,
                    connection.make_client,
                    models_dir(),
                    objects=objects,
                    apply=args.apply,
                    now=now,
                )
    except (ChaserError, ConfigError, StateLockTimeout) as exc:
        print(f"chaser-pipeline reconcile: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        con.close()
    for drift in report.objects.values():
        print(f"  {drift.summary()}")
        for label, keys in (("differ", drift.differing), ("unknown to the ledger", drift.unknown)):
            if keys:
                print(f"    {label}: {', '.join(keys[:10])}{' ...' if len(keys) > 10 else ''}")
    fixes = sum(len(d.differing) for d in report.objects.values())
    if args.apply:
        print(
            f"chaser-pipeline reconcile: the state now holds what Chaser holds; the next sync "
            f"puts back the {fixes} that differ, and sends whatever else the ledger says "
            f"Chaser lacks ({report.requests} requests read back)"
        )
    else:
        print(
            f"chaser-pipeline reconcile: nothing changed ({report.requests} requests read back); "
            "run with --apply to repair the state, so the next sync sends the fixes"
        )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    reconcile = sub.add_parser(
        "reconcile",
        help="read back what Chaser holds, report drift, and with --apply repair the sync state",
    )
    reconcile.add_argument(
        "--apply",
        action="store_true",
        help="replace the sync state with what Chaser holds, so the next sync sends the fixes",
    )
    reconcile.add_argument(
        "--objects", default="", help="comma-separated Chaser objects (default: every object)"
    )
    reconcile.set_defaults(func=cmd_reconcile)
