"""A whole pipeline in a temporary folder: demo warehouse, pipeline DuckDB, emulator on loopback."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from chaser_pipeline.chaser.encoding import dumps, encode_payload
from chaser_pipeline.cli.headless import SyncRun, run_sync
from chaser_pipeline.definitions import defs as load_defs
from chaser_pipeline.demo.generator import generate_demo_warehouse
from chaser_pipeline.emulator import EmulatorStore, run_emulator_in_thread
from chaser_pipeline.sync.objects import CHASER_OBJECTS

API_KEY, API_SECRET = "test-key", "test-secret-never-logged"
AS_OF = "2026-11-21T00:00:00"


@dataclass
class Pipeline:
    root: Path
    warehouse: Path
    duckdb_path: Path
    emulator_state: Path
    url: str
    defs: dg.Definitions
    instance: dg.DagsterInstance

    def sync(self, **kwargs: Any) -> SyncRun:
        kwargs.setdefault("as_of", AS_OF)
        return run_sync(self.defs, self.instance, echo=lambda _line: None, **kwargs)

    def ledger(self, sql: str, params: list | None = None) -> None:
        con = duckdb.connect(str(self.warehouse))
        try:
            con.execute(sql, params or [])
        finally:
            con.close()

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(self.duckdb_path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def store(self) -> EmulatorStore:
        return EmulatorStore(self.emulator_state)

    def chaser(self, object_name: str) -> dict[str, dict]:
        """What Chaser holds, by key, without Chaser's own id."""
        store = self.store()
        try:
            key = CHASER_OBJECTS[object_name].key
            return {
                r[key]: {k: v for k, v in r.items() if k != "id"}
                for r in store.records(object_name)
            }
        finally:
            store.close()

    def write_requests(self, object_name: str | None = None) -> int:
        store = self.store()
        try:
            return store.write_request_count(object_name)
        finally:
            store.close()

    def expected(self, object_name: str) -> dict[str, dict]:
        """The mart rows the sync state says Chaser confirmed, encoded as Chaser received them."""
        chaser_object = CHASER_OBJECTS[object_name]
        con = duckdb.connect(str(self.duckdb_path), read_only=True)
        try:
            table = con.sql(
                f"""select m.* from {chaser_object.mart} m
                join chaser_sync.holdings h on h.object = $1 and h.key = m.{chaser_object.key}""",
                params=[object_name],
            ).to_arrow_table()
        finally:
            con.close()
        return {
            row[chaser_object.key]: json.loads(dumps(encode_payload(row)), parse_float=Decimal)
            for row in table.to_pylist()
        }


def make_pipeline(
    root: Path,
    *,
    invoices: int = 400,
    customers: int = 60,
    credit_notes: int = 60,
    seed: int = 7,
    env: dict[str, str] | None = None,
    **emulator: Any,
) -> Pipeline:
    """A demo warehouse of that size, an emulator (options: `emulator`) and the environment a run
    reads (plus `env`, e.g. budget or timeout variables), the code location loaded from it."""
    warehouse = generate_demo_warehouse(
        root / "warehouse.duckdb",
        invoices=invoices,
        customers=customers,
        credit_notes=credit_notes,
        seed=seed,
    ).path
    state = root / "chaser.sqlite3"
    handle = run_emulator_in_thread(state, api_key=API_KEY, api_secret=API_SECRET, **emulator)
    duckdb_path = root / "pipeline.duckdb"
    # The code location reads its settings from the environment, as it does in production; the
    # test's autouse fixture clears these variables again for the next test.
    os.environ.update(
        {
            "CHASER_WAREHOUSE_URL": f"duckdb:///{warehouse}",
            "CHASER_DUCKDB_PATH": str(duckdb_path),
            "CHASER_API_URL": handle.url,
            "CHASER_API_KEY": API_KEY,
            "CHASER_API_SECRET": API_SECRET,
            **(env or {}),
        }
    )
    pipeline = Pipeline(
        root=root,
        warehouse=warehouse,
        duckdb_path=duckdb_path,
        emulator_state=state,
        url=handle.url,
        defs=load_defs(),
        instance=dg.DagsterInstance.ephemeral(),
    )
    pipeline.handle = handle  # type: ignore[attr-defined]
    return pipeline
