"""`reconcile` at scale for benchmarks/scale.py, and the loaded emulator benchmarks/contacts.py
shares: an emulator (its own process, no request limit) holding everything the models send.

Reconcile is measured against the emulator with the budget lifted; what it would take at
Chaser's real budget is a forecast: read requests (the emulator's request log) ÷ 200 a minute.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.scale import (
    BUDGET_PER_MINUTE,
    NOW,
    _extract,
    _models,
    figures,
    in_child,
    show,
)

PAGE = 100


@dataclass(frozen=True)
class Emulator:
    """Where a running benchmark emulator listens, and its request log (SQLite)."""

    url: str
    secret: str
    state: str


def client_factory(emulator: Emulator):
    from benchmarks.sync import API_KEY
    from chaser_pipeline.chaser.budget import RequestBudget
    from chaser_pipeline.chaser.client import ChaserClient

    return lambda: ChaserClient(
        emulator.url, API_KEY, emulator.secret, max_in_flight=4, budget=RequestBudget(None)
    )


def target(emulator: Emulator):
    from chaser_pipeline.sync.state import Target

    return Target(url=emulator.url, organisation_id="benchmark")


def request_counts(emulator: Emulator) -> dict[str, tuple[int, int]]:
    """Per object: (all requests, write requests) in the emulator's log."""
    import sqlite3

    with sqlite3.connect(emulator.state) as db:
        rows = db.execute(
            "select coalesce(object, ''), count(*), sum(is_write) from requests group by 1"
        ).fetchall()
    return {name: (total, writes or 0) for name, total, writes in rows}


def load(emulator: Emulator, pipeline: str, objects: list[str] | None = None) -> dict:
    """Send every object the models hold (or `objects`) into the emulator; figures per object."""
    from chaser_pipeline.db import WHOLE_HISTORY
    from chaser_pipeline.preflight import open_duckdb
    from chaser_pipeline.sync.engine import sync_object
    from chaser_pipeline.sync.objects import CHASER_OBJECTS
    from chaser_pipeline.sync.plan import SyncOptions
    from chaser_pipeline.sync.state import DuckDBState

    started = time.perf_counter()
    con = open_duckdb(Path(pipeline))
    sent = {}
    try:
        state = DuckDBState(con, lock_dir=Path(pipeline).parent)
        for name in objects or list(CHASER_OBJECTS):
            report = sync_object(
                state,
                target(emulator),
                client_factory(emulator),
                CHASER_OBJECTS[name],
                window=WHOLE_HISTORY,
                options=SyncOptions(confirm_mass_change=True),
                run_id=f"bench-{time.time_ns()}",
                clock=lambda: datetime.now(UTC).replace(tzinfo=None),
            )
            sent[name] = {
                "confirmed": sum(report.confirmed.values()),
                "failed": report.failed,
                "requests": report.requests,
            }
    finally:
        con.close()
    return figures(started, sent=sent)


def _reconcile(emulator: Emulator, pipeline: str) -> dict:
    from chaser_pipeline.paths import models_dir
    from chaser_pipeline.preflight import open_duckdb
    from chaser_pipeline.sync.reconcile import reconcile
    from chaser_pipeline.sync.state import DuckDBState

    started = time.perf_counter()
    con = open_duckdb(Path(pipeline))
    try:
        state = DuckDBState(con, lock_dir=Path(pipeline).parent)
        report = reconcile(state, target(emulator), client_factory(emulator), models_dir(), now=NOW)
    finally:
        con.close()
    objects = {
        name: {"held": d.held, "in_step": d.in_step, "requests": d.requests}
        for name, d in report.objects.items()
    }
    return figures(started, objects=objects)


class EmulatorRunning:
    """A benchmark emulator process (no request limit) for the `with` block."""

    def __init__(self, folder: Path) -> None:
        from benchmarks.sync import EmulatorProcess

        state = folder / "emulator.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{state}{suffix}").unlink(missing_ok=True)
        secret = secrets.token_urlsafe(16)
        self.process = EmulatorProcess(state, secret, folder / "emulator.log")
        self.emulator = Emulator(self.process.url, secret, str(state))

    def __enter__(self) -> Emulator:
        return self.emulator

    def __exit__(self, *exc_info: object) -> None:
        self.process.stop()


def forecast(pipeline: str) -> dict[str, int]:
    """Read requests reconcile needs, from the marts' rows: pages of 100 per listed object,
    one list (or more, 100 per page) per customer for contact persons."""
    from chaser_pipeline.preflight import open_duckdb
    from chaser_pipeline.sync.objects import CHASER_OBJECTS

    con = open_duckdb(Path(pipeline), read_only=True)
    try:
        requests = {}
        for o in CHASER_OBJECTS.values():
            if o.route_column:
                ((n,),) = con.execute(
                    f"select coalesce(sum(ceil(n / {PAGE})), 0)::bigint from ("
                    f'select count(*) as n from {o.mart} group by "{o.route_column}")'
                ).fetchall()
            else:
                ((rows,),) = con.execute(f"select count(*) from {o.mart}").fetchall()
                n = math.floor(rows / PAGE) + 1
            requests[o.name] = n
    finally:
        con.close()
    return requests


def phase_reconcile(warehouse: Path, folder: Path, *, forecast_only: bool) -> None:
    pipeline = folder / "pipeline-reconcile.duckdb"
    if not pipeline.exists():
        in_child(_extract, f"duckdb:///{warehouse}", str(pipeline))
        in_child(_models, str(pipeline))
    if forecast_only:
        requests = forecast(str(pipeline))
        total = sum(requests.values())
        print(
            f"reconcile FORECAST (no emulator run): {total:,d} read requests "
            f"= {total / BUDGET_PER_MINUTE:,.0f} minutes at {BUDGET_PER_MINUTE}/min {requests}"
        )
        return
    with EmulatorRunning(folder) as emulator:
        loaded = in_child(load, emulator, str(pipeline))
        show("emulator load (budget lifted)", loaded)
        print(f"  sent: {loaded['sent']}")
        before = request_counts(emulator)
        figures = in_child(_reconcile, emulator, str(pipeline))
        after = request_counts(emulator)
    reads = {
        name: after.get(name, (0, 0))[0] - before.get(name, (0, 0))[0]
        for name in after
        if after.get(name, (0, 0))[0] - before.get(name, (0, 0))[0]
    }
    total = sum(reads.values())
    show("reconcile (emulator, budget lifted)", figures)
    for name, drift in figures["objects"].items():
        print(f"  {name:<16s} {drift}")
    print(
        f"  read requests (emulator log): {total:,d} {reads}; at Chaser's budget of "
        f"{BUDGET_PER_MINUTE}/min: {total / BUDGET_PER_MINUTE:,.1f} minutes (forecast: "
        f"requests ÷ {BUDGET_PER_MINUTE}, not run at the budget); "
        f"counted from the marts: {sum(forecast(str(pipeline)).values()):,d}"
    )
