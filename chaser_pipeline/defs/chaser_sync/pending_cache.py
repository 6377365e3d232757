"""What is pending, worked out once per state of its inputs (a quiet day computes nothing).

Pending documents are a whole-history plan (seconds at a million invoices), asked for twice a
run: by `chaser_pending_months` and by the data-lag check. The answer depends only on the models'
tables (known by the versions they were built from, `chaser_versions.model_builds`), the sync
state of the Chaser target it is planned for, the code that plans, the plan's options, the history
start and the day (the skip rule for long-paid invoices counts days), so it is kept in
`chaser_versions.pending` under a hash of all of them and computed again only when one changed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import duckdb

import chaser_pipeline.sync.pending as pending_module
import chaser_pipeline.sync.plan as plan_module
from chaser_pipeline.db import table_exists, table_fingerprint
from chaser_pipeline.models.versions import BUILDS_TABLE
from chaser_pipeline.sync.pending import Pending, compute_pending
from chaser_pipeline.sync.plan import SyncOptions
from chaser_pipeline.sync.state import ATTEMPTED_TABLE, STATE_TABLE, SyncState, Target

CACHE_TABLE = "chaser_versions.pending"
# Sync tables the plan reads besides the models (holdings: what Chaser holds, if kept).
SYNC_TABLES = (STATE_TABLE, ATTEMPTED_TABLE, "chaser_sync.holdings")


def pending_version(
    con: duckdb.DuckDBPyConnection,
    target: Target,
    models_dir: Path,
    history_start: date,
    now: datetime,
    options: SyncOptions | None = None,
    *,
    include_day: bool = True,
) -> str:
    """A hash of everything the pending documents are computed from (the sync tables as the
    working copy holds them for `target`: refresh it first). `include_day=False` leaves the
    day out: for a plan known to find nothing, a later day finds nothing either (the one rule
    that counts days only stops more never-sent invoices from being sent as time passes)."""
    options = options or SyncOptions()
    digest = hashlib.sha256()

    def add(text: str) -> None:
        digest.update(text.encode() + b"\0")

    add(f"{target.key}|{history_start.isoformat()}")
    # the options the plan reads (the mass-change guard reads the plan, it does not change it)
    add(f"{options.dry_run}|{options.skip_invisible_unsent}|{options.skip_paid_older_than_days}")
    for source in (pending_module.__file__, plan_module.__file__):
        add(hashlib.sha256(Path(source).read_bytes()).hexdigest())
    for path in sorted(Path(models_dir).rglob("*")):
        if path.suffix in (".sql", ".yml", ".yaml"):
            add(f"{path.relative_to(models_dir)}={hashlib.sha256(path.read_bytes()).hexdigest()}")
    builds = _recorded_builds(con)
    models = [
        name
        for (name,) in con.execute(
            "select table_name from duckdb_tables() "
            "where database_name = current_database() and schema_name = 'main' order by 1"
        ).fetchall()
    ]
    for name in models:
        # a model the pipeline built counts by the versions it was built from (a lookup, where
        # a fingerprint would read the whole table); any other table by its fingerprint
        add(f"main.{name}={builds.get(name) or table_fingerprint(con, f'main.{name}')}")
    for table in SYNC_TABLES:
        add(f"{table}={table_fingerprint(con, table)}")
    base = digest.hexdigest()[:24]
    return with_day(base, now) if include_day else base


def with_day(plan_inputs: str, now: datetime) -> str:
    """The version of a day's plan from the version of its other inputs."""
    return hashlib.sha256(f"{plan_inputs}|{now.date().isoformat()}".encode()).hexdigest()[:24]


def _recorded_builds(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Model -> the versions its table (or each of its partitions) was last built from."""
    if not table_exists(con, BUILDS_TABLE):
        return {}
    return dict(
        con.execute(
            f"""select model, string_agg(partition_key || ':' || input_version, ','
                order by partition_key)
            from {BUILDS_TABLE} group by model"""
        ).fetchall()
    )


def _to_json(pending: Pending) -> str:
    return json.dumps(
        {
            "months": pending.months,
            "documents": pending.documents,
            "oldest_change": pending.oldest_change.isoformat() if pending.oldest_change else None,
            "oldest_change_by_month": {
                m: t.isoformat() for m, t in pending.oldest_change_by_month.items()
            },
            "planned": {name: dict(counts) for name, counts in pending.planned.items()},
            "previously_synced": pending.previously_synced,
            "requests_by_object": pending.requests_by_object,
            "before_history_start": pending.before_history_start,
        }
    )


def _from_json(text: str) -> Pending:
    raw = json.loads(text)
    return Pending(
        months=list(raw["months"]),
        documents=dict(raw["documents"]),
        oldest_change=datetime.fromisoformat(raw["oldest_change"])
        if raw["oldest_change"]
        else None,
        oldest_change_by_month={
            m: datetime.fromisoformat(t) for m, t in raw["oldest_change_by_month"].items()
        },
        planned={name: Counter(counts) for name, counts in raw["planned"].items()},
        previously_synced=dict(raw["previously_synced"]),
        requests_by_object={name: int(n) for name, n in raw["requests_by_object"].items()},
        before_history_start=int(raw["before_history_start"]),
    )


def cached_pending(
    state: SyncState,
    target: Target,
    models_dir: Path,
    *,
    history_start: date,
    now: datetime,
    options: SyncOptions | None = None,
) -> tuple[Pending, bool]:
    """What `target` does not hold as the ledger says now, and whether it came from the cache."""
    options = options or SyncOptions()
    con = state.con
    # folds a killed run's journal first: the state as the plan reads it
    state.refresh(target)
    con.execute("create schema if not exists chaser_versions")
    con.execute(
        f"create table if not exists {CACHE_TABLE} "
        "(input_version varchar, pending varchar, computed_at timestamp)"
    )
    plan_inputs = pending_version(
        con, target, models_dir, history_start, now, options, include_day=False
    )
    version = with_day(plan_inputs, now)
    row = con.execute(
        f"select pending from {CACHE_TABLE} where input_version = $version", {"version": version}
    ).fetchone()
    if row is not None:
        return _from_json(row[0]), True
    pending = compute_pending(
        state, target, models_dir, history_start=history_start, now=now, options=options
    )
    con.execute(f"delete from {CACHE_TABLE}")
    con.execute(
        f"insert into {CACHE_TABLE} values ($version, $pending, $now)",
        {"version": version, "pending": _to_json(pending), "now": now},
    )
    return pending, False
