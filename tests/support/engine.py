"""The whole pipeline through its engines alone, no Dagster: a warehouse file in, the extract, the
models, the sync of customers, the pending months, and each month's marts and sync, against an
emulated Chaser on loopback. What `chaser-pipeline sync` does, in well under a second a run."""

from __future__ import annotations

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
from chaser_pipeline.models.project import ModelProject, whole_history_models
from chaser_pipeline.paths import models_dir
from chaser_pipeline.settings import parse_warehouse_url
from chaser_pipeline.sync.engine import check_mass_change, check_target, sync_object
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.pending import Pending, compute_pending, sync_range
from chaser_pipeline.sync.plan import SyncOptions
from chaser_pipeline.sync.report import SyncReport
from chaser_pipeline.sync.state import DuckDBState

API_KEY, API_SECRET = "engine-key", "engine-secret"
HISTORY_START = date(2023, 1, 1)
OVERLAP = timedelta(minutes=60)


@dataclass
class EngineRun:
    """What one run did: what it found pending, and every sync's report."""

    pending: Pending
    reports: list[SyncReport] = field(default_factory=list)

    @property
    def sent(self) -> int:
        """Rows Chaser confirmed or refused in this run."""
        return sum(sum(r.confirmed.values()) + r.failed for r in self.reports)


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
        self.handle = run_emulator_in_thread(
            self.emulator_state, api_key=API_KEY, api_secret=API_SECRET, **emulator
        )
        self.project = ModelProject(models_dir())
        self.state = DuckDBState(self.con, root)
        self.target, _ = check_target(
            self.state, self.handle.url, self.client, run_id="engine-setup", now=datetime.now()
        )

    def close(self) -> None:
        self.con.close()
        self.handle.stop()

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
        run_models(self.con, models_dir(), only=whole_history_models(models_dir()))
        pending = compute_pending(
            self.state,
            self.target,
            models_dir(),
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
