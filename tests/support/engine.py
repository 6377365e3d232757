"""The whole pipeline through its engines alone, no Dagster: a warehouse file in, the extract, the
models, the sync of customers, the pending months, and each month's marts and sync, against an
emulated Chaser on loopback. What `chaser-pipeline sync` does, in well under a second a run."""

from __future__ import annotations

import random
import shutil
import socket
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from chaser_pipeline.chaser.client import ChaserClient
from chaser_pipeline.db import WHOLE_HISTORY, document_window
from chaser_pipeline.emulator import EmulatorStore, run_emulator_in_thread
from chaser_pipeline.ledger.contract import LEDGER_TABLES
from chaser_pipeline.ledger.extract import ExtractOptions, extract_table
from chaser_pipeline.ledger.warehouse import Warehouse
from chaser_pipeline.models.build import build_model, run_models
from chaser_pipeline.settings import parse_warehouse_url
from chaser_pipeline.sync.engine import check_mass_change, check_target, sync_object
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.pending import Pending, compute_pending, sync_range
from chaser_pipeline.sync.plan import SyncOptions
from chaser_pipeline.sync.report import SyncReport
from chaser_pipeline.sync.state import DuckDBState
from tests.support.models import project, whole_history

API_KEY, API_SECRET = "engine-key", "engine-secret"
HISTORY_START = date(2023, 1, 1)
OVERLAP = timedelta(minutes=60)
# When the shared demo pipeline of the engine tests made its first run (tests/engines/conftest.py)
DEMO_FIRST_RUN = datetime(2026, 11, 21)


@dataclass
class EngineRun:
    """What one run did: what it found pending, and every sync's report."""

    pending: Pending
    reports: list[SyncReport] = field(default_factory=list)

    @property
    def sent(self) -> int:
        """Rows Chaser confirmed or refused in this run."""
        return sum(sum(r.confirmed.values()) + r.failed for r in self.reports)


def quiet_port() -> int:
    """A free loopback port below Linux's ephemeral range (32768 up), so that neither a client
    connection nor a server asking for port 0 takes it while a closed pipeline waits to be
    served again on it (`EnginePipeline.clone`)."""
    for port in random.sample(range(20_000, 32_000), 50):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port between 20000 and 32000")


def _window(first: str, last: str) -> tuple[date, date]:
    """[first month, the month after the last): what a range run builds and syncs (the first
    partition holds every document issued before the history start too)."""
    start, final = date.fromisoformat(first), date.fromisoformat(last)
    end = date(final.year + final.month // 12, final.month % 12 + 1, 1)
    return document_window(start, end, HISTORY_START)


class EnginePipeline:
    """A pipeline DuckDB fed from a warehouse file, synced into a loopback emulator."""

    def __init__(self, root: Path, warehouse: Path, **emulator: Any) -> None:
        self.root = root
        self.warehouse = warehouse
        self.con = duckdb.connect(str(root / "pipeline.duckdb"))
        self.emulator_state = root / "chaser.sqlite3"
        self.emulator_options = emulator
        self.handle = run_emulator_in_thread(
            self.emulator_state, api_key=API_KEY, api_secret=API_SECRET, **emulator
        )
        self.project = project()
        self.state = DuckDBState(self.con, root)
        self.target, _ = check_target(
            self.state, self.handle.url, self.client, run_id="engine-setup", now=datetime.now()
        )

    def close(self) -> None:
        self.con.close()
        self.handle.stop()

    @classmethod
    def first_run(
        cls, root: Path, warehouse: Path, now: datetime
    ) -> tuple[EnginePipeline, EngineRun]:
        """A new pipeline's first run, closed afterwards, ready to `clone` for each test; on a
        quiet port, as the clones serve Chaser again on the same one."""
        pipeline = cls(root, warehouse, port=quiet_port())
        try:
            return pipeline, pipeline.run(now)
        finally:
            pipeline.close()

    def clone(self, root: Path) -> EnginePipeline:
        """A copy of this closed pipeline in `root` (its warehouse must sit in its own root): the
        warehouse, the pipeline DuckDB and Chaser's store, served again on the same port, so
        Chaser is the same target. Copying a few files is far cheaper than a first run again."""
        shutil.copytree(self.root, root, dirs_exist_ok=True)
        warehouse = root / self.warehouse.relative_to(self.root)
        return EnginePipeline(
            root, warehouse, **{**self.emulator_options, "port": self.handle.port}
        )

    def client(self) -> ChaserClient:
        return ChaserClient(self.handle.url, API_KEY, API_SECRET)

    def ledger(self, sql: str, params: list | None = None) -> None:
        """Change the warehouse, as the ledger's own application would."""
        with duckdb.connect(str(self.warehouse)) as con:
            con.execute(sql, params or [])

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()

    def extract(self, now: datetime, *, full_refresh: bool = False) -> None:
        source = Warehouse(parse_warehouse_url(f"duckdb:///{self.warehouse}"))
        options = ExtractOptions(full_refresh=full_refresh, overlap=OVERLAP)
        for table in LEDGER_TABLES.values():
            extract_table(self.con, source, table, now=now, options=options)

    def run(self, now: datetime, options: SyncOptions | None = None) -> EngineRun:
        """Extract, whole-history models, the whole-history plan and its mass-change decision,
        customers, then one range over the pending months."""
        options = options or SyncOptions()
        self.extract(now)
        run_models(self.con, self.project, only=whole_history())
        pending = compute_pending(
            self.state,
            self.target,
            self.project,
            history_start=HISTORY_START,
            now=now,
            options=options,
        )
        check_mass_change(pending, options)  # one decision, before anything is sent
        # customers first, then the other whole-history objects (contact persons)
        reports = [
            self._sync(chaser_object, WHOLE_HISTORY, options, now)
            for chaser_object in CHASER_OBJECTS.values()
            if not chaser_object.partitioned
        ]
        # one range over every pending month, as the headless sync and the sensor run them
        if months := sync_range(pending.months):
            window = _window(*months)
            for chaser_object in CHASER_OBJECTS.values():
                if chaser_object.partitioned:
                    build_model(self.con, self.project.models[chaser_object.mart], window)
                    reports.append(self._sync(chaser_object, window, options, now))
        return EngineRun(pending, reports)

    def _sync(self, chaser_object, window, options: SyncOptions, now: datetime) -> SyncReport:
        return sync_object(
            self.state,
            self.target,
            self.client,
            chaser_object,
            window=window,
            options=options,
            run_id=f"engine-{now.isoformat()}",
            clock=lambda: now,
        )

    def chaser(self, object_name: str) -> dict[str, dict]:
        """What Chaser holds, by key, without Chaser's own id."""
        with EmulatorStore(self.emulator_state) as store:
            key = CHASER_OBJECTS[object_name].key
            return {
                r[key]: {k: v for k, v in r.items() if k != "id"}
                for r in store.records(object_name)
            }

    def write_requests(self, object_name: str | None = None) -> int:
        with EmulatorStore(self.emulator_state) as store:
            return store.write_request_count(object_name)

    def held_invoice(self, invoice_id: str) -> tuple[Decimal, Decimal, str]:
        """Amount paid, amount due and status of one invoice as Chaser holds it."""
        sent = self.chaser("invoices")[invoice_id]
        return Decimal(str(sent["amount_paid"])), Decimal(str(sent["amount_due"])), sent["status"]
