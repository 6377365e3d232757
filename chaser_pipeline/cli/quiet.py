"""The quiet check of `chaser-pipeline sync`: a day with nothing to do costs an extract, not a
Dagster run.

After a sync whose runs all succeeded, when the whole-history plan of the state it left sends
nothing, the sync records a marker in the pipeline's DuckDB (`chaser_versions.quiet_sync`): the
Chaser organisation its runs checked, digests of the settings and of the code, and a fingerprint
of everything a next run would plan from (the landed ledger's versions, the models as built, the
sync state, attempted keys and holdings of that organisation: the inputs `chaser_pending_months`
caches its plan under, the day left out). That plan is found in the plan cache under the inputs
as they are after the sync: the one `chaser_pending_months` made in a run that sent nothing, or
the one the data-lag check made after the day's sends; none is found when another worker sharing
a PostgreSQL state changed it meanwhile, and then nothing is marked. Nor is anything marked while
a whole-history model is out of date: three models read which documents Chaser holds
(`chaser_sync.holding_keys`), so after sends that created or withdrew documents the first sync
runs the jobs, which rebuild them (sends that only updated documents leave them current).

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
else runs the jobs; the marker is cleared before any run starts.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from chaser_pipeline.chaser.client import display_url
from chaser_pipeline.db import short_hash, table_exists, utc_now
from chaser_pipeline.defs.chaser_sync.pending_cache import CACHE_TABLE, pending_version, with_day
from chaser_pipeline.ledger.contract import LEDGER_TABLES, LedgerTable
from chaser_pipeline.ledger.extract import ExtractOptions, ExtractResult, extract_table
from chaser_pipeline.ledger.landing import landed_version
from chaser_pipeline.ledger.warehouse import Warehouse
from chaser_pipeline.models.project import ModelProject, whole_history_models
from chaser_pipeline.models.versions import WHOLE_TABLE, is_current, model_input_version
from chaser_pipeline.paths import PACKAGE_DIR, models_dir, sql_dir
from chaser_pipeline.preflight import open_duckdb
from chaser_pipeline.settings import Settings, mask_url
from chaser_pipeline.sync.state import TARGETS_TABLE, Target, open_state

if TYPE_CHECKING:
    import dagster as dg

    from chaser_pipeline.cli.headless import SyncRun

MARKER_TABLE = "chaser_versions.quiet_sync"
# What the check's materializations carry, beside an extract's own figures.
QUIET_CHECK = "quiet_check"


MARKER_COLUMNS = (
    ("target_url", "varchar"),
    ("organisation_id", "varchar"),
    ("salt", "varchar"),
    ("settings", "varchar"),
    ("code", "varchar"),
    ("fingerprint", "varchar"),
    ("run_ids", "varchar"),
    ("recorded_at", "timestamp"),
)
# Libraries whose upgrade can change what the models or the plan produce (JSON rendering,
# hashes, phone and e-mail normalisation, country codes, SQL typing).
LIBRARIES = ("duckdb", "pyarrow", "sqlglot", "phonenumbers", "email-validator", "pycountry")
# How long clearing the mark waits for the pipeline's DuckDB (the jobs then wait their own).
CLEAR_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Marker:
    target: Target
    salt: str
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


def settingsshort_hash(settings: Settings, salt: str) -> str:
    """The settings that decide what is planned and where it goes. URLs enter without their
    passwords (a new password for the same database changes nothing); the API key, which names
    the organisation, only salted and hashed; the secret not at all. Pacing, crons, freshness
    and timeouts are left out: they change how a run goes, not what it sends."""
    key = settings.api_key.get() if settings.api_key else ""
    parts = [
        f"warehouse={mask_url(settings.warehouse.raw.get()) if settings.warehouse else ''}",
        f"duckdb={settings.duckdb_path}",
        f"api_url={display_url(settings.api_url) if settings.api_url else ''}",
        f"api_key={hashlib.sha256(f'{salt}|{key}'.encode()).hexdigest()}",
        f"state={mask_url(settings.state_url.get()) if settings.state_url else ''}",
        f"country={settings.default_country}",
        f"history_start={settings.history_start}",
    ]
    return short_hash(parts)


def codeshort_hash() -> str:
    """The package's Python, the extract SQL, the models and the libraries that shape what they
    produce: an upgrade or an edit runs the jobs once (its models may build differently, its
    plan differ)."""
    parts = []
    for root in (PACKAGE_DIR, sql_dir(), models_dir()):
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".sql", ".yml", ".yaml") and "__pycache__" not in path.parts:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                parts.append(f"{path.relative_to(root)}={digest}")
    for library in LIBRARIES:
        try:
            parts.append(f"{library}=={importlib.metadata.version(library)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{library} missing")
    return short_hash(parts)


def plan_inputs(con: duckdb.DuckDBPyConnection, settings: Settings, target: Target) -> str:
    """What the whole-history plan for `target` is computed from, the day left out, after
    folding what a killed run left and reading the state where it lives."""
    state = open_state(con, settings.duckdb_path, settings.state_url)
    state.refresh(target)
    return pending_version(
        con, target, models_dir(), settings.history_start_date, utc_now(), include_day=False
    )


def fingerprint(con: duckdb.DuckDBPyConnection, inputs: str) -> str:
    """What a next run plans from: the landed versions and the plan's inputs."""
    return short_hash([*(landed_version(con, t) for t in LEDGER_TABLES.values()), inputs])


def _ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    """The marker table as this version writes it (an older shape is dropped: a mark is only
    ever a shortcut)."""
    con.execute("create schema if not exists chaser_versions")
    if table_exists(con, MARKER_TABLE):
        shape = [(c, t.lower()) for c, t, *_ in con.execute(f"describe {MARKER_TABLE}").fetchall()]
        if shape == list(MARKER_COLUMNS):
            return
        con.execute(f"drop table {MARKER_TABLE}")
    columns = ", ".join(f"{c} {t}" for c, t in MARKER_COLUMNS)
    con.execute(f"create table {MARKER_TABLE} ({columns})")


def read_marker(con: duckdb.DuckDBPyConnection) -> Marker | None:
    if not table_exists(con, MARKER_TABLE):
        return None
    _ensure_table(con)
    rows = con.execute(f"select * from {MARKER_TABLE}").fetchall()
    if not rows:
        return None
    url, organisation, salt, settings, code, print_, run_ids, recorded_at = rows[0]
    return Marker(
        Target(url, organisation),
        salt,
        settings,
        code,
        print_,
        tuple(json.loads(run_ids)),
        recorded_at,
    )


def _nothing_to_send(pending_json: str) -> bool:
    """Whether a cached whole-history plan sends nothing: no month to sync, no write request,
    no create, update or archive planned (held-back changes no sync can send do not count)."""
    plan = json.loads(pending_json)
    planned = sum(
        counts.get(action, 0)
        for counts in plan["planned"].values()
        for action in ("create", "update", "archive")
    )
    return not plan["months"] and not any(plan["requests_by_object"].values()) and planned == 0


def _stale_model(con: duckdb.DuckDBPyConnection, settings: Settings) -> str | None:
    """A whole-history model whose table is no longer built from what it reads now, if any.

    Models that read which documents Chaser holds go out of date when a sync creates or withdraws
    one; the plan cached after the sends was made from their tables as built before. A mark must vouch
    for models a run would not rebuild (parsing the models: about 0.4 s)."""
    project = ModelProject(models_dir())
    names = frozenset(project.models)
    for name in whole_history_models(models_dir()):
        model = project.models[name]
        version = model_input_version(
            con, model, default_country=settings.default_country, models=names
        )
        if not is_current(con, model, [WHOLE_TABLE], version):
            return name
    return None


def record(settings: Settings, run: SyncRun) -> str:
    """After a sync whose runs all succeeded: mark the pipeline's DuckDB quiet when the
    whole-history plan of the state as the sync left it sends nothing; what to print.

    That plan is the one `chaser_pending_months` cached in a run that sent nothing, or the one
    the data-lag check made after the monthly run sent the day's changes: it is looked up under
    the version of the inputs as they are now, so a state another worker changed meanwhile (or
    a plan of another organisation) finds none, and nothing is marked."""
    if not run.run_ids:
        return "not marked quiet: no run"
    try:
        con = open_duckdb(settings.duckdb_path, wait_seconds=CLEAR_WAIT_SECONDS)
        try:
            # the organisation this sync's runs asked Chaser about (each run notes it again)
            rows = con.execute(
                f"""select url, organisation_id from {TARGETS_TABLE}
                where list_contains($1, checked_run_id) order by last_checked_at desc limit 1""",
                [run.run_ids],
            ).fetchall()
            if not rows:
                return (
                    "not marked quiet: no Chaser organisation is noted as checked by this sync "
                    "(another worker checked it since?)"
                )
            target = Target(*rows[0])
            inputs = plan_inputs(con, settings, target)
            plan = (
                con.execute(
                    f"select pending from {CACHE_TABLE} where input_version = $1",
                    [with_day(inputs, utc_now())],
                ).fetchall()
                if table_exists(con, CACHE_TABLE)
                else []
            )
            if not plan:
                return (
                    "not marked quiet: no whole-history plan of the state as this sync left it "
                    "(it changed since, or nothing planned after the sends)"
                )
            if not _nothing_to_send(plan[0][0]):
                return "not marked quiet: the whole-history plan still has something to send"
            if stale := _stale_model(con, settings):
                return (
                    f"not marked quiet: {stale} was built before this sync's sends changed which "
                    "documents Chaser holds (the next run rebuilds it)"
                )
            salt = secrets.token_hex(16)
            marker = (
                target.url,
                target.organisation_id,
                salt,
                settingsshort_hash(settings, salt),
                codeshort_hash(),
                fingerprint(con, inputs),
                json.dumps(run.run_ids),
                utc_now(),
            )
            _ensure_table(con)
            con.execute(f"delete from {MARKER_TABLE}")
            con.execute(f"insert into {MARKER_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?)", marker)
        finally:
            con.close()
    except Exception as exc:  # the sync itself is done; only the shortcut is lost
        return f"not marked quiet ({type(exc).__name__}); the next sync runs the jobs"
    return "marked quiet: the next sync stops at the quiet check if nothing changes"


def clear(settings: Settings) -> str | None:
    """Forget the mark before any run starts (a sync killed half-way must not leave it); what
    to print when that failed."""
    if not Path(settings.duckdb_path).exists():
        return None
    try:
        con = open_duckdb(settings.duckdb_path, wait_seconds=CLEAR_WAIT_SECONDS)
        try:
            if table_exists(con, MARKER_TABLE):
                con.execute(f"delete from {MARKER_TABLE}")
        finally:
            con.close()
    except Exception as exc:  # the jobs open the same file next and report why they cannot
        return f"the quiet mark could not be cleared ({type(exc).__name__})"
    return None


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
        return QuietCheck(False, "the last sync left no quiet mark")
    if marker.settings != settingsshort_hash(settings, marker.salt):
        return QuietCheck(False, "the settings changed since the last sync", marker)
    if marker.code != codeshort_hash():
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
    if fingerprint(con, plan_inputs(con, settings, marker.target)) != marker.fingerprint:
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
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData,
    )
    from dagster._core.definitions.data_version import DATA_VERSION_TAG

    from chaser_pipeline.defs.chaser_sync.checks import REJECTION_RATE
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
    # the sync assets' blocking rejection-rate check, evaluated for the day's materialization
    # as a run's step evaluates it (nothing sent: nothing rejected)
    for chaser_object in CHASER_OBJECTS.values():
        if chaser_object.partitioned:
            continue
        key = dg.AssetKey(chaser_object.sync_asset)
        [materialized] = instance.fetch_materializations(key, limit=1).records
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name=REJECTION_RATE,
                passed=True,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"attempted": 0, "rejected": 0, QUIET_CHECK: note},
                description="0 of 0 rows sent were rejected by Chaser (quiet check: nothing "
                "to send)",
                target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
                    storage_id=materialized.storage_id,
                    run_id=materialized.run_id,
                    timestamp=materialized.timestamp,
                ),
            )
        )
    return len(events)
