"""The planned rows to send, read from DuckDB as Arrow and cut into bulk requests of 100.

The rows never become Python objects one by one: DuckDB writes each payload's JSON (`to_json` of
the mart columns), byte for byte what `dumps(encode_payload(row))` writes for these columns
(money DECIMAL(18,2) as 10.50, dates already Chaser text; tests/engines/test_payload_encoding.py
proves it on every object), and Arrow joins a batch's payloads into the request's JSON array.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from chaser_pipeline.chaser.bulk import BULK_LIMIT, BulkOutcome
from chaser_pipeline.chaser.encoding import EncodedEntries, RawJSON
from chaser_pipeline.sync.objects import ChaserObject
from chaser_pipeline.sync.plan import payload_json_sql
from chaser_pipeline.sync.state import StateWriter, Target

# Rows read from DuckDB at a time: 50 requests' worth.
CHUNK_ROWS = 50 * BULK_LIMIT


@dataclass(frozen=True)
class Batch:
    """Up to 100 rows to send: `rows` (Arrow: sync_key, sync_payload_hash, sync_action,
    sync_first_send, sync_chase_measure, sync_payload) and the same rows as one bulk request's
    encoded entries."""

    rows: pa.Table
    entries: EncodedEntries
    route: str | None = None  # the parent (customer) a routed object's request goes to


def planned_batches(
    con: duckdb.DuckDBPyConnection,
    writer: StateWriter,
    target: Target,
    chaser_object: ChaserObject,
    columns: list[str],
    *,
    actions: tuple[str, ...] = ("create", "update"),
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[list[Batch]]:
    """The plan's rows to send, in batches of at most 100 (of one parent each for a routed
    object), a chunk of batches at a time.

    Before a chunk is handed out, the keys in it that Chaser has never answered for are
    committed to the state's `attempted` table (through `writer`): a run killed after Chaser
    applied a batch but before it was recorded must still count those documents as sent (so a
    later change, even to a status not worth a first send, is sent too). `con` stays busy until
    the iterator ends."""
    stream = con.sql(_batch_query(chaser_object, columns, actions)).to_arrow_reader(chunk_rows)
    try:
        pending: pa.Table | None = None
        for record_batch in stream:
            table = pa.Table.from_batches([record_batch])
            pending = table if pending is None else pa.concat_tables([pending, table])
            if pending.num_rows >= chunk_rows:
                # the last batch may go on in the next record batch: keep it back
                last = pending["sync_batch"][-1].as_py()
                whole = pending.num_rows - pc.sum(pc.equal(pending["sync_batch"], last)).as_py()
                if whole:
                    yield _chunk(writer, target, chaser_object, pending.slice(0, whole))
                    pending = pending.slice(whole)
        if pending is not None and pending.num_rows:
            yield _chunk(writer, target, chaser_object, pending)
    finally:
        stream.close()


def _batch_query(chaser_object: ChaserObject, columns: list[str], actions: tuple[str, ...]) -> str:
    """The rows to send with their request number (`sync_batch`), in sending order: stop-chasing
    changes first, then new rows, then the rest (sync_priority), so a run cut short leaves the
    least harmful remainder.

    Requests are full across priorities: ceil(rows / 100) of them for the object, or per parent
    for a routed one (a customer's contact persons go in one request, its archived ones first),
    as `plan.planned_requests` forecasts; a request is sent with the most urgent of its rows."""
    route = f'"{chaser_object.route_column}"' if chaser_object.route_column else "null::varchar"
    rows = f"""
        select "{chaser_object.key}" as sync_key, sync_payload_hash, sync_action,
            sync_first_send, sync_chase_measure, sync_priority, {route} as sync_route,
            {payload_json_sql(columns)} as sync_payload,
            (row_number() over (
                partition by sync_route order by sync_priority, sync_key) - 1) // {BULK_LIMIT}
                as sync_part
        from sync_plan where sync_action in ({", ".join(f"'{a}'" for a in actions)})"""
    if not chaser_object.route_column:
        # one sequence of requests: the n-th holds the n-th hundred rows in sending order
        return f"""select *, sync_part + 1 as sync_batch from ({rows})
            order by sync_batch, sync_priority, sync_key"""
    return f"""
        with numbered as ({rows}),
        requests as (
            select *, min(sync_priority) over (partition by sync_route, sync_part)
                as sync_request_priority
            from numbered
        )
        select * exclude (sync_request_priority), dense_rank() over (
            order by sync_request_priority, sync_route, sync_part) as sync_batch
        from requests
        order by sync_batch, sync_priority, sync_key"""


def _chunk(
    writer: StateWriter, target: Target, chaser_object: ChaserObject, rows: pa.Table
) -> list[Batch]:
    """Mark a chunk's never-answered keys as attempted, then cut it into its requests."""
    rows = rows.combine_chunks()
    first = rows.filter(rows["sync_first_send"])
    if first.num_rows:
        writer.attempted(
            pa.table(
                {
                    "target": pa.array([target.key] * first.num_rows, pa.string()),
                    "object": pa.array([chaser_object.name] * first.num_rows, pa.string()),
                    "key": first["sync_key"],
                }
            )
        )
    ends = pc.run_end_encode(rows["sync_batch"].combine_chunks()).run_ends.to_pylist()
    starts = [0, *ends[:-1]]
    offsets = pa.array([0, *ends], pa.int32())
    payloads = rows["sync_payload"].combine_chunks()
    arrays = pc.binary_join(pa.ListArray.from_arrays(offsets, payloads), ",")
    batches = []
    for start, end, array in zip(starts, ends, arrays.to_pylist(), strict=True):
        batch = rows.slice(start, end - start)
        entries = EncodedEntries(
            f"[{array}]",
            batch.num_rows,
            functools.partial(_entry, batch),
            functools.partial(_lengths, batch),
        )
        batches.append(Batch(batch, entries, batch["sync_route"][0].as_py()))
    return batches


def _entry(rows: pa.Table, index: int) -> RawJSON:
    return RawJSON(rows["sync_payload"][index].as_py(), rows["sync_key"][index].as_py())


def _lengths(rows: pa.Table) -> tuple[list[int], list[str | None]]:
    lengths = pc.utf8_length(rows["sync_payload"]).to_pylist()  # characters, as str slices
    return lengths, rows["sync_key"].to_pylist()


def settled_part(batch: Batch, outcome: BulkOutcome) -> tuple[Batch, BulkOutcome]:
    """The rows of a batch Chaser answered before the request failed part-way, with their
    answers re-indexed, so they are recorded like any settled batch."""
    answered = sorted({*outcome.accepted, *(f.index for f in outcome.failed)})
    position = {index: i for i, index in enumerate(answered)}
    rows = batch.rows.take(pa.array(answered, pa.int64()))
    part = BulkOutcome(
        failed=[replace(f, index=position[f.index]) for f in outcome.failed],
        accepted=[position[i] for i in outcome.accepted],
        chaser_ids={position[i]: cid for i, cid in outcome.chaser_ids.items() if i in position},
    )
    entries = EncodedEntries("[]", rows.num_rows, functools.partial(_entry, rows))
    return Batch(rows, entries, batch.route), part
