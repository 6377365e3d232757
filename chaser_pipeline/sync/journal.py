"""The sync state in DuckDB (schema `chaser_sync`): what Chaser confirmed, per object and key.

- `state`: one row per object and key, the hash of the payload Chaser last confirmed.
- `attempted`: keys a run started to send (a killed run may have delivered them unrecorded).
- `journal`: Chaser's answers, appended batch by batch while a sync sends; no index, so an append
  costs next to nothing.
- `log`: append-only, every row sent, refused or held back.

The journal is folded into the state (newest answer per key) and the log in one transaction, at
the end of every send and before anything reads the state (`ensure_sync_tables`), so a killed
run's confirmations count before the next plan. The state is kept one row per key by the fold,
not by a primary key, whose index DuckDB would rewrite at every checkpoint.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from chaser_pipeline.db import transaction
from chaser_pipeline.sync.objects import ChaserObject

if TYPE_CHECKING:
    from chaser_pipeline.chaser.bulk import BulkOutcome
    from chaser_pipeline.sync.batches import Batch

STATE_TABLE = "chaser_sync.state"
LOG_TABLE = "chaser_sync.log"
ATTEMPTED_TABLE = "chaser_sync.attempted"
JOURNAL_TABLE = "chaser_sync.journal"


def ensure_sync_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the sync tables if needed, and fold in what a killed run left in the journal."""
    con.execute("create schema if not exists chaser_sync")
    _rename_resource_columns(con)
    con.execute(
        f"""create table if not exists {STATE_TABLE} (
            object varchar not null,
            key varchar not null,
            payload_hash varchar,        -- hash of the payload Chaser last confirmed
            confirmed_at timestamp,
            chaser_id varchar,
            last_status varchar not null, -- confirmed | failed
            last_error varchar,
            last_attempt_at timestamp not null)"""
    )
    con.execute(f"create table if not exists {ATTEMPTED_TABLE} (object varchar, key varchar)")
    con.execute(
        f"""create table if not exists {LOG_TABLE} (
            run_id varchar, object varchar, key varchar, action varchar,
            http_status integer, message varchar, logged_at timestamp)"""
    )
    con.execute(
        f"""create table if not exists {JOURNAL_TABLE} (
            run_id varchar, object varchar, key varchar, action varchar,
            http_status integer, message varchar, logged_at timestamp,
            payload_hash varchar, chaser_id varchar)"""
    )
    fold_journal(con)


def _rename_resource_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Sync tables written by versions before 0.2 call the object column `resource`."""
    old = con.execute(
        """select table_schema || '.' || table_name from information_schema.columns
        where table_schema = 'chaser_sync' and column_name = 'resource'"""
    ).fetchall()
    for (table,) in old:
        con.execute(f"alter table {table} rename column resource to object")


def fold_journal(con: duckdb.DuckDBPyConnection) -> int:
    """Move the journal into the state (newest answer per key) and the log; return rows moved.

    Keys new to the state are appended and known keys updated in place: the state needs no
    primary key (whose index DuckDB would rewrite at every checkpoint) to stay one row per key."""
    ((rows,),) = con.execute(f"select count(*) from {JOURNAL_TABLE}").fetchall()
    if not rows:
        return 0
    with transaction(con):
        con.execute(
            f"""create or replace temp table sync_fold as
            select j.*, s.key is not null as sync_known
            from (
                select * from (
                    select *, row_number() over (
                        partition by object, key order by journal_row desc) as newest
                    from (select *, rowid as journal_row from {JOURNAL_TABLE})
                )
                where newest = 1
            ) as j
            left join {STATE_TABLE} as s on s.object = j.object and s.key = j.key"""
        )
        con.execute(
            f"""update {STATE_TABLE} as s set
                -- a failure keeps the last confirmed payload: the row is in Chaser as it was
                payload_hash = coalesce(f.payload_hash, s.payload_hash),
                confirmed_at = if(f.payload_hash is null, s.confirmed_at, f.logged_at),
                chaser_id = coalesce(f.chaser_id, s.chaser_id),
                last_status = if(f.action = 'failed', 'failed', 'confirmed'),
                last_error = if(f.action = 'failed', f.message, null),
                last_attempt_at = f.logged_at
            from sync_fold as f
            where f.sync_known and s.object = f.object and s.key = f.key"""
        )
        con.execute(
            f"""insert into {STATE_TABLE}
            select object, key, payload_hash,
                if(payload_hash is null, null, logged_at),
                chaser_id,
                if(action = 'failed', 'failed', 'confirmed'),
                if(action = 'failed', message, null),
                logged_at
            from sync_fold where not sync_known"""
        )
        con.execute(
            f"""insert into {LOG_TABLE}
            select run_id, object, key, action, http_status, message, logged_at
            from {JOURNAL_TABLE} order by rowid"""
        )
        con.execute(f"delete from {JOURNAL_TABLE}")
    con.execute("drop table if exists sync_fold")
    return rows


def record_batches(
    con: duckdb.DuckDBPyConnection,
    chaser_object: ChaserObject,
    batches: list[tuple[Batch, BulkOutcome]],
    *,
    run_id: str,
    now: datetime,
) -> Counter[str]:
    """Commit what Chaser confirmed (and refused) for settled batches: one append to the journal.

    Built column by column from the batches' Arrow rows; returns the rows recorded by action
    (create, update, failed)."""
    parts = []
    for batch, outcome in batches:
        rows, size = batch.rows, batch.rows.num_rows
        if len(outcome.accepted) + len(outcome.failed) != size:
            raise RuntimeError(
                f"Chaser's answer covers {len(outcome.accepted) + len(outcome.failed)} of "
                f"{size} {chaser_object.name} sent in one request; the sync stops without "
                "recording these batches, and the next run sends them again"
            )
        parts.append(_journal_rows(rows, outcome))
    if not parts:
        return Counter()
    journal_rows = pa.concat_tables(parts)
    con.register("sync_batch", journal_rows)
    try:
        con.execute(
            f"""insert into {JOURNAL_TABLE}
            select $run_id, $object, key, action, coalesce(http_status, 200), message, $now,
                payload_hash, chaser_id
            from sync_batch""",
            {"run_id": run_id, "object": chaser_object.name, "now": now},
        )
    finally:
        con.unregister("sync_batch")
    counts = pc.value_counts(journal_rows["action"])
    return Counter({str(c["values"]): int(c["counts"]) for c in counts.to_pylist()})


def _journal_rows(rows: pa.Table, outcome: BulkOutcome) -> pa.Table:
    """One batch's journal rows: accepted rows keep their action and hash, refused ones fail."""
    size = rows.num_rows
    action, payload_hash = rows["sync_action"], rows["sync_payload_hash"]
    http_status = pa.nulls(size, pa.int32())
    message = pa.nulls(size, pa.string())
    if outcome.failed:
        failed = {f.index: f for f in outcome.failed}
        accepted = pa.array([i not in failed for i in range(size)])
        action = pc.if_else(accepted, action, "failed")
        payload_hash = pc.if_else(accepted, payload_hash, pa.scalar(None, pa.string()))
        http_status = pa.array(
            [failed[i].status if i in failed else None for i in range(size)], pa.int32()
        )
        message = pa.array(
            [failed[i].message if i in failed else None for i in range(size)], pa.string()
        )
    chaser_id = (
        pa.array([outcome.chaser_ids.get(i) for i in range(size)], pa.string())
        if outcome.chaser_ids
        else pa.nulls(size, pa.string())
    )
    return pa.table(
        {
            "key": rows["sync_key"],
            "action": action,
            "http_status": http_status,
            "message": message,
            "payload_hash": payload_hash,
            "chaser_id": chaser_id,
        }
    )


def log_held_back(
    con: duckdb.DuckDBPyConnection, chaser_object: ChaserObject, *, run_id: str, now: datetime
) -> None:
    """Log the planned rows that wait for their customer."""
    if not chaser_object.customer_column:
        return
    con.execute(
        f"""insert into {LOG_TABLE}
        select $run_id, $object, {chaser_object.key}, 'held_back', null,
            'customer ' || {chaser_object.customer_column} || ' has not been accepted by Chaser '
            || 'yet; sent automatically once it is', $now
        from sync_plan where sync_action = 'held_back'""",
        {"run_id": run_id, "object": chaser_object.name, "now": now},
    )
