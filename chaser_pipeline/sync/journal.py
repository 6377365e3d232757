"""Chaser's answers as journal rows, and the rows a plan holds back as log rows.

The sender hands every settled batch to `record_batches`, which builds the batch's journal rows
column by column from its Arrow rows (no Python object per row) and appends them in one commit
through the state's writer; the state folds the journal into its state and log later (see
`state`).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from chaser_pipeline.sync.objects import ChaserObject
from chaser_pipeline.sync.state import WITHDRAWN_HASH_PREFIX, StateWriter, SyncState, Target

if TYPE_CHECKING:
    from chaser_pipeline.chaser.bulk import BulkOutcome
    from chaser_pipeline.sync.batches import Batch


def record_batches(
    writer: StateWriter,
    target: Target,
    chaser_object: ChaserObject,
    batches: list[tuple[Batch, BulkOutcome]],
    *,
    run_id: str,
    now: datetime,
) -> Counter[str]:
    """Commit what Chaser confirmed (and refused) for settled batches: one journal append.

    Returns the rows recorded by action (create, update, failed)."""
    parts = []
    for batch, outcome in batches:
        size = batch.rows.num_rows
        if len(outcome.accepted) + len(outcome.failed) != size:
            raise RuntimeError(
                f"Chaser's answer covers {len(outcome.accepted) + len(outcome.failed)} of "
                f"{size} {chaser_object.name} sent in one request; the sync stops without "
                "recording these batches, and the next run sends them again"
            )
        parts.append(_answers(batch.rows, outcome))
    if not parts:
        return Counter()
    answers = pa.concat_tables(parts)
    rows = answers.num_rows
    journal = pa.table(
        {
            "target": pa.array([target.key] * rows, pa.string()),
            "run_id": pa.array([run_id] * rows, pa.string()),
            "object": pa.array([chaser_object.name] * rows, pa.string()),
            "key": answers["key"],
            "action": answers["action"],
            "http_status": pc.fill_null(answers["http_status"], 200),
            "message": answers["message"],
            "logged_at": pa.array([now] * rows, pa.timestamp("us")),
            "payload_hash": answers["payload_hash"],
            "chaser_id": answers["chaser_id"],
            "chase_measure": answers["chase_measure"],
            "route": answers["route"],
        }
    )
    writer.journal(journal)
    counts = pc.value_counts(answers["action"])
    return Counter({str(c["values"]): int(c["counts"]) for c in counts.to_pylist()})


def _answers(rows: pa.Table, outcome: BulkOutcome) -> pa.Table:
    """One batch's answers: accepted rows keep their action and hash, refused ones fail."""
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
            "chase_measure": rows["sync_chase_measure"],
            "route": rows["sync_route"].cast(pa.string()),
        }
    )


def record_gone(
    state: SyncState,
    target: Target,
    chaser_object: ChaserObject,
    keys: list[str],
    *,
    run_id: str,
    now: datetime,
) -> None:
    """Journal the withdrawals Chaser needs no more (it holds the row no longer): under a
    withdrawn hash, so they are not read back again at every run."""
    n = len(keys)
    rows = pa.table(
        {
            "target": pa.array([target.key] * n, pa.string()),
            "run_id": pa.array([run_id] * n, pa.string()),
            "object": pa.array([chaser_object.name] * n, pa.string()),
            "key": pa.array(keys, pa.string()),
            "action": pa.array(["gone"] * n, pa.string()),
            "http_status": pa.array([404] * n, pa.int32()),
            "message": pa.array(
                ["deleted in the ledger, and Chaser no longer holds it: nothing to withdraw"] * n,
                pa.string(),
            ),
            "logged_at": pa.array([now] * n, pa.timestamp("us")),
            "payload_hash": pa.array([f"{WITHDRAWN_HASH_PREFIX}gone"] * n, pa.string()),
            "chaser_id": pa.nulls(n, pa.string()),
            "chase_measure": pa.array([0] * n, pa.decimal128(18, 2)),
            "route": pa.nulls(n, pa.string()),
        }
    )
    writer = state.writer()
    try:
        writer.journal(rows)
    finally:
        writer.close()


def log_held_back(
    state: SyncState,
    target: Target,
    chaser_object: ChaserObject,
    *,
    run_id: str,
    now: datetime,
) -> None:
    """Log the planned rows that wait for their customer."""
    if not chaser_object.customer_column:
        return
    rows = state.con.sql(
        f"""select $target as target, $run_id as run_id, $object as object,
            {chaser_object.key} as key, 'held_back' as action, null::integer as http_status,
            'customer ' || {chaser_object.customer_column} || ' has not been accepted by Chaser '
                || 'yet; sent automatically once it is' as message,
            $now::timestamp as logged_at
        from sync_plan where sync_action = 'held_back'""",
        params={"target": target.key, "run_id": run_id, "object": chaser_object.name, "now": now},
    ).to_arrow_table()
    if rows.num_rows:
        state.log_rows(rows)
