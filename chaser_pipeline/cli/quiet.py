"""The quiet check of `chaser-pipeline sync`: a day with nothing to do costs an extract, not a
Dagster run.

After a sync whose runs all succeeded, sent nothing and left nothing pending, the sync records
a marker in the pipeline's DuckDB (`chaser_versions.quiet_sync`): digests of the settings and
of the code, and a fingerprint of everything a next run would plan from (the landed ledger's
versions, the models as built, the sync state, attempted keys and holdings of the Chaser target;
the inputs `chaser_pending_months` caches its plan under, the day left out).

The next plain `chaser-pipeline sync` checks before it starts any Dagster run:
1. a marker exists, and the settings and the code are the ones it was recorded with (checked
   before any data moves, so a configuration the definitions would refuse still fails first);
2. the extract of every ledger table, run as the extract assets run it, lands nothing: an
   extract that would change what is landed is rolled back (`land_changes=False`), and the
   jobs run as usual, their own extracts landing it;
3. the fingerprint, taken again, equals the marker's.
When all three hold, a run could only plan what the last one planned, nothing: the sync records
each extract (with its real figures) and each daily sync asset as a materialization reported
without a run (their freshness policies count it), prints the same summary and stops. Anything
else runs the jobs; the marker is cleared by every sync that does not end quiet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from chaser_pipeline.db import table_exists, utc_now
from chaser_pipeline.defs.chaser_sync.pending_cache import pending_version
from chaser_pipeline.ledger.contract import LEDGER_TABLES, LedgerTable
from chaser_pipeline.ledger.extract import ExtractOptions, ExtractResult, extract_table
from chaser_pipeline.ledger.landing import landed_version
from chaser_pipeline.ledger.warehouse import Warehouse
from chaser_pipeline.paths import PACKAGE_DIR, models_dir, sql_dir
from chaser_pipeline.preflight import open_duckdb
from chaser_pipeline.settings import Secret, Settings, WarehouseURL
from chaser_pipeline.sync.state import DuckDBState, SyncState

if TYPE_CHECKING:
    import dagster as dg

MARKER_TABLE = "chaser_versions.quiet_sync"
# What the check's materializations carry, beside an extract's own figures.
QUIET_CHECK = "quiet_check"


@dataclass(frozen=True)
class Marker:
    settings: str
    code: str
    fingerprint: str
    run_ids: tuple[str, ...]
    recorded_at: datetime


@dataclass
class QuietCheck:
    """What the check found: quiet or not, why, and the extracts it ran."""

    quiet: bool
    reason: str
    marker: Marker | None = None
    extracts: list[tuple[LedgerTable, ExtractResult, str]] = field(default_factory=list)
    seconds: float = 0.0


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def settings_digest(settings: Settings) -> str:
    """Every setting a run reads; secrets (an API key names the organisation, a URL may carry
    a password) enter only hashed, and the digest itself is one-way."""
    parts = []
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, WarehouseURL):
            value = value.raw
        if isinstance(value, Secret):
            value = hashlib.sha256(value.get().encode()).hexdigest()
        parts.append(f"{f.name}={value}")
    return _digest(parts)


def code_digest() -> str:
    """The package's Python, the extract SQL and the models: an upgrade or an edit runs the
    jobs once (its models may build differently, its plan differ)."""
    parts = []
    for root in (PACKAGE_DIR, sql_dir(), models_dir()):
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".sql", ".yml", ".yaml") and "__pycache__" not in path.parts:
                parts.append(
                    f"{path.relative_to(root)}={hashlib.sha256(path.read_bytes()).hexdigest()}"
                )
    return _digest(parts)


def open_state(con: duckdb.DuckDBPyConnection, settings: Settings) -> SyncState:
    """The sync state as the sync assets open it (`SyncStateResource.open`)."""
    if settings.state_url is not None:
        from chaser_pipeline.sync.postgres_state import PostgresState

        return PostgresState(con, settings.state_url)
    return DuckDBState(con, settings.duckdb_path.parent)


def fingerprint(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    """What a next run plans from: the landed versions, and the pending plan's inputs (models
    as built, the sync tables of the last Chaser target, after folding what a killed run left)."""
    state = open_state(con, settings)
    target = state.last_target()
    state.refresh(target)
    parts = [landed_version(con, table) for table in LEDGER_TABLES.values()]
    parts.append(
        pending_version(
            con,
            target,
            models_dir(),
            settings.history_start_date,
            utc_now(),
            include_day=False,
        )
    )
    return _digest(parts)


def _ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists chaser_versions")
    con.execute(
        f"create table if not exists {MARKER_TABLE} (settings varchar, code varchar, "
        "fingerprint varchar, run_ids varchar, recorded_at timestamp)"
    )


def read_marker(con: duckdb.DuckDBPyConnection) -> Marker | None:
    if not table_exists(con, MARKER_TABLE):
        return None
    rows = con.execute(
        f"select settings, code, fingerprint, run_ids, recorded_at from {MARKER_TABLE}"
    ).fetchall()
    if not rows:
        return None
    settings, code, print_, run_ids, recorded_at = rows[0]
    return Marker(settings, code, print_, tuple(json.loads(run_ids)), recorded_at)


def record(settings: Settings, run_ids: list[str]) -> None:
    """Mark the pipeline's DuckDB quiet after a sync that succeeded, sent nothing and left
    nothing pending."""
    con = open_duckdb(settings.duckdb_path)
    try:
        _ensure_table(con)
        marker = (
            settings_digest(settings),
            code_digest(),
            fingerprint(con, settings),
            json.dumps(run_ids),
            utc_now(),
        )
        con.execute(f"delete from {MARKER_TABLE}")
        con.execute(f"insert into {MARKER_TABLE} values (?, ?, ?, ?, ?)", list(marker))
    finally:
        con.close()


def clear(settings: Settings) -> None:
    """Forget the marker: the last sync did something, failed, or was not a plain one."""
    if not Path(settings.duckdb_path).exists():
        return
    con = open_duckdb(settings.duckdb_path)
    try:
        if table_exists(con, MARKER_TABLE):
            con.execute(f"delete from {MARKER_TABLE}")
    finally:
        con.close()


def check(settings: Settings) -> QuietCheck:
    """Whether this sync has nothing to do (see the module's docstring)."""
    started = time.perf_counter()
    if not Path(settings.duckdb_path).exists():
        return QuietCheck(False, "no pipeline DuckDB yet (a first sync)")
    try:
        con = open_duckdb(settings.duckdb_path)
        try:
            result = _check(con, settings)
        finally:
            con.close()
    except Exception as exc:  # the jobs' own steps report it, with the fix
        # never the exception's text here: a driver's message may quote a URL with its password
        result = QuietCheck(False, f"the check could not finish ({type(exc).__name__})")
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def _check(con: duckdb.DuckDBPyConnection, settings: Settings) -> QuietCheck:
    marker = read_marker(con)
    if marker is None:
        return QuietCheck(False, "the last sync did not end quiet")
    if marker.settings != settings_digest(settings):
        return QuietCheck(False, "the settings changed since the last sync", marker)
    if marker.code != code_digest():
        return QuietCheck(False, "the code, SQL or models changed since the last sync", marker)
    warehouse = Warehouse.from_url(settings.warehouse.raw.get() if settings.warehouse else None)
    found = QuietCheck(False, "", marker)
    for table in LEDGER_TABLES.values():
        extract = extract_table(
            con, warehouse, table, now=utc_now(), options=ExtractOptions(), land_changes=False
        )
        if not extract.landed.kept:
            found.reason = (
                f"the warehouse changed: {table.name} has {extract.landed.changes} key(s) "
                "new, changed, deleted or back"
            )
            return found
        found.extracts.append((table, extract, landed_version(con, table)))
    if fingerprint(con, settings) != marker.fingerprint:
        found.reason = "the models, the sync state or Chaser's holdings changed since"
        return found
    found.quiet = True
    found.reason = (
        f"nothing changed since the sync of {marker.recorded_at:%Y-%m-%d %H:%M:%S} UTC "
        f"(runs {', '.join(marker.run_ids)})"
    )
    return found


def report(instance: dg.DagsterInstance, result: QuietCheck, warehouse: str) -> int:
    """Record the check in the Dagster instance: each extract and each daily (unpartitioned)
    sync asset as a materialization reported without a run, with its data version unchanged,
    so the UI shows when the ledger was last read and the freshness policies count the day.
    Returns how many were recorded."""
    import dagster as dg
    from dagster._core.definitions.data_version import DATA_VERSION_TAG

    from chaser_pipeline.defs.ledger.assets import extract_metadata
    from chaser_pipeline.sync.objects import CHASER_OBJECTS

    note = f"quiet check, no run: {result.reason}"
    events = []
    for table, extract, version in result.extracts:
        metadata = {**extract_metadata(table, extract, warehouse), QUIET_CHECK: note}
        events.append(
            dg.AssetMaterialization(
                asset_key=f"ledger_{table.name}",
                metadata=metadata,
                tags={DATA_VERSION_TAG: version},
            )
        )
    for chaser_object in CHASER_OBJECTS.values():
        if chaser_object.partitioned:
            continue
        events.append(
            dg.AssetMaterialization(
                asset_key=chaser_object.sync_asset,
                description="Nothing to send: the ledger, the models and the sync state are "
                "as the last sync left them.",
                metadata={
                    QUIET_CHECK: note,
                    "created": 0,
                    "updated": 0,
                    "write_requests": 0,
                    "last_sync_runs": ", ".join(result.marker.run_ids if result.marker else ()),
                },
            )
        )
    for event in events:
        instance.report_runless_asset_event(event)
    return len(events)
