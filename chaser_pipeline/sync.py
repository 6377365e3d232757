"""Sending the marts to Chaser: only what changed, in bulk, with per-row state committed per batch.

Nothing here knows Dagster. The plan is one SQL statement in DuckDB: each mart row's payload hash
is compared with the hash Chaser last confirmed (schema `chaser_sync`). Rows go out in bulk
batches of 100; what Chaser answers for each batch is committed within a few tens of
milliseconds (the writer gathers what settles meanwhile into one commit), so a run killed at
any point loses at most the few batches sent but not yet recorded (never more than
MAX_UNRECORDED_BATCHES), and the next run sends nothing already confirmed (a batch applied by
Chaser but not yet recorded is sent again: bulk upsert is idempotent by key).

Each commit is one append to `chaser_sync.journal`, a table with no index. The journal is folded
into the state (one row per resource and key, kept unique by the fold rather than by a primary
key, whose index DuckDB would rewrite at every checkpoint) and into the log, in one transaction,
at the end of every send and before anything reads the state (`ensure_sync_tables`), so a
killed run's confirmations count before the next plan.

The rows to send never become Python objects one by one: DuckDB writes each payload's JSON,
Arrow joins a batch's payloads into the request's JSON array, and the journal is appended from
Arrow columns.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from chaser_pipeline.chaser.client import BULK_LIMIT, BulkOutcome, ChaserClient
from chaser_pipeline.chaser.encoding import EncodedEntries, RawJSON, dumps, encode_payload
from chaser_pipeline.db import WHOLE_HISTORY, transaction, utc_now

log = logging.getLogger(__name__)

STATE = "chaser_sync.state"
LOG = "chaser_sync.log"
ATTEMPTED = "chaser_sync.attempted"
# Answers committed batch by batch during a send, not yet folded into STATE and LOG.
JOURNAL = "chaser_sync.journal"

INVISIBLE_INVOICE = ("DRAFT", "SUBMITTED", "VOIDED", "DELETED")


@dataclass(frozen=True)
class SyncSpec:
    """How one mart maps onto one Chaser noun."""

    resource: str  # Chaser noun: customers | invoices | credit_notes
    mart: str
    key: str
    entity: str  # as in chaser_rejections
    partitioned: bool
    # SQL over the mart row `m`: true when Chaser would not show the document (never worth a
    # first send); None for resources that are always sent.
    invisible_sql: str | None = None
    customer_column: str | None = None


SPECS: dict[str, SyncSpec] = {
    "customers": SyncSpec("customers", "chaser_customers", "external_id", "customer", False),
    "invoices": SyncSpec(
        "invoices",
        "chaser_invoices",
        "invoice_id",
        "invoice",
        True,
        invisible_sql="m.status in ('DRAFT', 'SUBMITTED', 'VOIDED', 'DELETED')",
        customer_column="customer_external_id",
    ),
    "credit_notes": SyncSpec(
        "credit_notes",
        "chaser_credit_notes",
        "credit_note_id",
        "credit_note",
        True,
        # Only ACTIVE credit notes appear on statements.
        invisible_sql="m.status <> 'ACTIVE'",
        customer_column="customer_external_id",
    ),
}


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    confirm_mass_change: bool = False
    mass_change_share: float = 0.5
    mass_change_min_rows: int = 50
    skip_invisible_unsent: bool = True
    skip_paid_older_than_days: int | None = 183
    sample_size: int = 3


@dataclass
class SyncReport:
    resource: str
    window: tuple[date, date]
    planned: Counter[str] = field(default_factory=Counter)
    confirmed: Counter[str] = field(default_factory=Counter)  # create / update
    failed: int = 0
    held_back_by_rules: int = 0
    previously_synced: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    duration_seconds: float = 0.0
    samples: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (key, message), first few
    dry_run: bool = False

    @property
    def attempted(self) -> int:
        return self.planned["create"] + self.planned["update"]

    @property
    def rejection_share(self) -> float:
        return self.failed / self.attempted if self.attempted else 0.0

    @property
    def rows_per_second(self) -> float:
        sent = sum(self.confirmed.values()) + self.failed
        return sent / self.duration_seconds if self.duration_seconds else 0.0


class MassChangeError(RuntimeError):
    """A run would update an unusual share of previously synced rows; nothing was sent."""


def ensure_sync_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the sync tables if needed, and fold in what a killed run left in the journal."""
    con.execute("create schema if not exists chaser_sync")
    con.execute(
        f"""create table if not exists {STATE} (
            resource varchar not null,
            key varchar not null,
            payload_hash varchar,        -- hash of the payload Chaser last confirmed
            confirmed_at timestamp,
            chaser_id varchar,
            last_status varchar not null, -- confirmed | failed
            last_error varchar,
            last_attempt_at timestamp not null)"""
    )
    # Keys a run started to send: a killed run may have delivered them without recording it.
    con.execute(f"create table if not exists {ATTEMPTED} (resource varchar, key varchar)")
    con.execute(
        f"""create table if not exists {LOG} (
            run_id varchar, resource varchar, key varchar, action varchar,
            http_status integer, message varchar, logged_at timestamp)"""
    )
    con.execute(
        f"""create table if not exists {JOURNAL} (
            run_id varchar, resource varchar, key varchar, action varchar,
            http_status integer, message varchar, logged_at timestamp,
            payload_hash varchar, chaser_id varchar)"""
    )
    fold_journal(con)


def fold_journal(con: duckdb.DuckDBPyConnection) -> int:
    """Move the journal into the state (newest answer per key) and the log; return rows moved.

    Keys new to the state are appended and known keys updated in place: the state needs no
    primary key (whose index DuckDB would rewrite at every checkpoint) to stay one row per key."""
    ((rows,),) = con.execute(f"select count(*) from {JOURNAL}").fetchall()
    if not rows:
        return 0
    with transaction(con):
        con.execute(
            f"""create or replace temp table sync_fold as
            select j.*, s.key is not null as sync_known
            from (
                select * from (
                    select *, row_number() over (
                        partition by resource, key order by journal_row desc) as newest
                    from (select *, rowid as journal_row from {JOURNAL})
                )
                where newest = 1
            ) as j
            left join {STATE} as s on s.resource = j.resource and s.key = j.key"""
        )
        con.execute(
            f"""update {STATE} as s set
                -- a failure keeps the last confirmed payload: the row is in Chaser as it was
                payload_hash = coalesce(f.payload_hash, s.payload_hash),
                confirmed_at = if(f.payload_hash is null, s.confirmed_at, f.logged_at),
                chaser_id = coalesce(f.chaser_id, s.chaser_id),
                last_status = if(f.action = 'failed', 'failed', 'confirmed'),
                last_error = if(f.action = 'failed', f.message, null),
                last_attempt_at = f.logged_at
            from sync_fold as f
            where f.sync_known and s.resource = f.resource and s.key = f.key"""
        )
        con.execute(
            f"""insert into {STATE}
            select resource, key, payload_hash,
                if(payload_hash is null, null, logged_at),
                chaser_id,
                if(action = 'failed', 'failed', 'confirmed'),
                if(action = 'failed', message, null),
                logged_at
            from sync_fold where not sync_known"""
        )
        con.execute(
            f"""insert into {LOG}
            select run_id, resource, key, action, http_status, message, logged_at
            from {JOURNAL} order by rowid"""
        )
        con.execute(f"delete from {JOURNAL}")
    con.execute("drop table if exists sync_fold")
    return rows


def _window_text(window: tuple[date, date]) -> tuple[str, str]:
    return window[0].isoformat(), window[1].isoformat()


def build_plan(
    con: duckdb.DuckDBPyConnection,
    spec: SyncSpec,
    window: tuple[date, date],
    options: SyncOptions,
    now: datetime,
    *,
    source: str | None = None,
) -> Counter[str]:
    """Create temp table `sync_plan` (the mart rows in scope, their hash and action); return counts.

    `source` replaces the mart table by a relation with the same columns (the pending check plans
    the payloads the models would produce now)."""
    ensure_sync_tables(con)
    scope = "true"
    params: dict[str, Any] = {"resource": spec.resource}
    if spec.partitioned:
        # Dates are ISO strings, so the month window compares correctly as text.
        scope = "m.date >= $window_start and m.date < $window_end"
        params["window_start"], params["window_end"] = _window_text(window)
    customer_pending = "false"
    if spec.customer_column:
        customer_pending = f"""not exists (
            select 1 from {STATE} c where c.resource = 'customers'
            and c.key = m.{spec.customer_column} and c.payload_hash is not null)"""
        if options.dry_run:
            # A dry run sends no customer: plan as if those the customers mart holds had landed.
            customer_pending += f""" and not exists (
                select 1 from {SPECS["customers"].mart} c
                where c.{SPECS["customers"].key} = m.{spec.customer_column})"""
    skip_rules = []
    if options.skip_invisible_unsent and spec.invisible_sql:
        skip_rules.append(spec.invisible_sql)
    if options.skip_paid_older_than_days is not None and spec.resource == "invoices":
        # Chaser archives a PAID invoice 6 months after it was paid: not worth a first send.
        params["paid_cutoff"] = (now - timedelta(days=options.skip_paid_older_than_days)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
        skip_rules.append("(m.status = 'PAID' and m.fully_paid_date < $paid_cutoff)")
    skip = " or ".join(skip_rules) or "false"
    con.execute(
        f"""create or replace temp table sync_plan as
        with scoped as (
            select
                m.*,
                md5(to_json(m)::varchar) as sync_payload_hash
            from {source or spec.mart} as m
            where {scope}
        ),
        planned as (
            select
                m.*,
                s.payload_hash as sync_confirmed_hash,
                s.chaser_id as sync_chaser_id,
                -- Chaser has never answered for it, and no run has started to send it
                s.key is null and a.key is null as sync_first_send,
                case
                    -- a document waits for its customer to be accepted by Chaser first
                    when {customer_pending} then 'held_back'
                    -- once sent (or sending was attempted: a killed run may have delivered
                    -- it), every later change is sent; never sent and not worth it: skip
                    when sync_first_send and ({skip}) then 'skipped'
                    when s.payload_hash is null then 'create'
                    -- failed rows are retried every run until they succeed
                    when s.last_status = 'failed' or s.payload_hash <> m.sync_payload_hash
                        then 'update'
                    else 'unchanged'
                end as sync_action
            from scoped as m
            left join {STATE} as s
                on s.resource = $resource
                and s.key = m.{spec.key}
            left join (select distinct key from {ATTEMPTED} where resource = $resource) as a
                on a.key = m.{spec.key}
        )
        select * from planned""",
        params,
    )
    return Counter(
        dict(con.execute("select sync_action, count(*) from sync_plan group by 1").fetchall())
    )


def _payload_columns(con: duckdb.DuckDBPyConnection, spec: SyncSpec) -> list[str]:
    return [r[0] for r in con.execute(f"describe {spec.mart}").fetchall()]


@dataclass(frozen=True)
class Batch:
    """Up to 100 rows to send: `rows` (Arrow: sync_key, sync_payload_hash,
    sync_action, sync_payload) and the same rows as one bulk request's encoded entries."""

    rows: pa.Table
    entries: EncodedEntries


def _entry(rows: pa.Table, index: int) -> RawJSON:
    return RawJSON(rows["sync_payload"][index].as_py(), rows["sync_key"][index].as_py())


def _batches(
    con: duckdb.DuckDBPyConnection,
    columns: list[str],
    key: str,
    *,
    resource: str,
    chunk_rows: int = 50 * BULK_LIMIT,
) -> Iterator[list[Batch]]:
    """The planned rows to send, in batches of 100 (a chunk of batches at a time).

    One streaming query: DuckDB writes each payload's JSON (`to_json` of the mart columns), byte
    for byte what `dumps(encode_payload(row))` writes for these columns (money DECIMAL(18,2) as
    10.50, dates already Chaser text), which tests/test_payload_encoding.py proves on every
    resource. Arrow joins each batch's entries into the JSON array the request sends, so a
    million rows never become a million Python objects.

    Before a chunk is handed out, the keys in it that Chaser has never answered for are
    committed to `chaser_sync.attempted`: a run killed after Chaser applied a batch but before
    it was recorded must still count those documents as sent (so a later change, even to a
    status not worth a first send, is sent too). `con` stays busy until the iterator ends."""
    # In the plan's order: sorting a million rows first would hold back the first request
    # for half a second, and Chaser does not care about the order within a resource.
    stream = con.sql(
        f"""select "{key}" as sync_key, sync_payload_hash, sync_action, sync_first_send,
            {payload_json_sql(columns)} as sync_payload
        from sync_plan where sync_action in ('create', 'update')"""
    ).to_arrow_reader(chunk_rows)
    marker = con.cursor()
    try:
        pending: pa.Table | None = None
        for record_batch in stream:
            table = pa.Table.from_batches([record_batch])
            pending = table if pending is None else pa.concat_tables([pending, table])
            whole = pending.num_rows - pending.num_rows % BULK_LIMIT
            if whole >= chunk_rows:
                yield _chunk(marker, resource, pending.slice(0, whole))
                pending = pending.slice(whole)
        if pending is not None and pending.num_rows:
            yield _chunk(marker, resource, pending)
    finally:
        marker.close()
        stream.close()


def _chunk(marker: duckdb.DuckDBPyConnection, resource: str, rows: pa.Table) -> list[Batch]:
    """Mark a chunk's never-answered keys as attempted, then cut it into batches of 100."""
    rows = rows.combine_chunks()
    marker.register("sync_chunk", rows)
    try:
        marker.execute(
            f"""insert into {ATTEMPTED}
            select $resource, sync_key from sync_chunk where sync_first_send""",
            {"resource": resource},
        )
    finally:
        marker.unregister("sync_chunk")
    offsets = pa.array([*range(0, rows.num_rows, BULK_LIMIT), rows.num_rows], pa.int32())
    payloads = rows["sync_payload"].combine_chunks()
    arrays = pc.binary_join(pa.ListArray.from_arrays(offsets, payloads), ",")
    batches = []
    for i, array in enumerate(arrays.to_pylist()):
        batch = rows.slice(i * BULK_LIMIT, BULK_LIMIT)
        entries = EncodedEntries(f"[{array}]", batch.num_rows, functools.partial(_entry, batch))
        batches.append(Batch(batch, entries))
    return batches


def payload_json_sql(columns: list[str]) -> str:
    """SQL rendering one mart row as its Chaser payload JSON text."""
    fields = ", ".join(f'"{c}" := "{c}"' for c in columns)
    return f"to_json(struct_pack({fields}))::varchar"


def record_batches(
    con: duckdb.DuckDBPyConnection,
    spec: SyncSpec,
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
                f"{size} {spec.resource} sent in one request; the sync stops without recording "
                "these batches, and the next run sends them again"
            )
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
        parts.append(
            pa.table(
                {
                    "key": rows["sync_key"],
                    "action": action,
                    "http_status": http_status,
                    "message": message,
                    "payload_hash": payload_hash,
                    "chaser_id": chaser_id,
                }
            )
        )
    if not parts:
        return Counter()
    journal_rows = pa.concat_tables(parts)
    con.register("sync_batch", journal_rows)
    try:
        con.execute(
            f"""insert into {JOURNAL}
            select $run_id, $resource, key, action, coalesce(http_status, 200), message, $now,
                payload_hash, chaser_id
            from sync_batch""",
            {"run_id": run_id, "resource": spec.resource, "now": now},
        )
    finally:
        con.unregister("sync_batch")
    counts = pc.value_counts(journal_rows["action"])
    return Counter({str(c["values"]): int(c["counts"]) for c in counts.to_pylist()})


def log_held_back(
    con: duckdb.DuckDBPyConnection, spec: SyncSpec, *, run_id: str, now: datetime
) -> None:
    if not spec.customer_column:
        return
    con.execute(
        f"""insert into {LOG}
        select $run_id, $resource, {spec.key}, 'held_back', null,
            'customer ' || {spec.customer_column} || ' has not been accepted by Chaser yet; '
            || 'sent automatically once it is', $now
        from sync_plan where sync_action = 'held_back'""",
        {"run_id": run_id, "resource": spec.resource, "now": now},
    )


def sample_payloads(con: duckdb.DuckDBPyConnection, columns: list[str], n: int) -> list[dict]:
    select = ", ".join(f'"{c}"' for c in columns)
    rows = con.sql(
        f"select {select} from sync_plan where sync_action in ('create', 'update') limit $1",
        params=[n],
    ).to_arrow_table()
    return [json.loads(dumps(encode_payload(r))) for r in rows.to_pylist()]


def check_mass_change(report: SyncReport, options: SyncOptions) -> None:
    updates, before = report.planned["update"], report.previously_synced
    if options.confirm_mass_change or before == 0 or updates < options.mass_change_min_rows:
        return
    share = updates / before
    if share > options.mass_change_share:
        raise MassChangeError(
            f"Stopped before sending: this run would update {updates} of {before} previously synced "
            f"{report.resource} ({share:.0%}, above the {options.mass_change_share:.0%} guard). "
            "If the ledger really changed that much (a re-mapped column, a currency fix), run again "
            "with run config `confirm_mass_change: true`."
        )


# Batches sent but not yet recorded in the state (in flight, or settled and waiting for the
# commit under way): what a killed run may have to send again.
MAX_UNRECORDED_BATCHES = 48
# A commit costs DuckDB about the same for one batch or twenty (~1.5 ms of CPU, shared with the
# requests), so once a batch settles the writer lets others settle for this long and commits
# them together.
COMMIT_GATHER_SECONDS = 0.025


async def _send(
    con: duckdb.DuckDBPyConnection,
    client: ChaserClient,
    spec: SyncSpec,
    columns: list[str],
    report: SyncReport,
    *,
    run_id: str,
    clock: Callable[[], datetime],
    on_progress: Callable[[SyncReport], None] | None,
) -> None:
    """Send the planned rows; record each batch Chaser answered as soon as it can be committed.

    State is written by one thread on its own connection, so requests keep flowing while DuckDB
    commits (it releases the GIL). A batch Chaser answered is committed within
    COMMIT_GATHER_SECONDS (plus the commit under way), together with the others that settled
    meanwhile. At most MAX_UNRECORDED_BATCHES are ever sent but unrecorded; a killed run sends
    just those again, harmlessly (bulk upsert is idempotent by key).
    """
    noun = getattr(client, spec.resource)
    loop = asyncio.get_running_loop()
    window = asyncio.Semaphore(max(MAX_UNRECORDED_BATCHES, client.max_in_flight * 2))
    settled: asyncio.Queue[tuple[Batch, BulkOutcome] | None] = asyncio.Queue()
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chaser-sync-state")
    state_con = con.cursor()
    failures: list[BaseException] = []

    def count(recorded: Counter[str], batches: list[tuple[Batch, BulkOutcome]]) -> None:
        report.confirmed.update({a: n for a, n in recorded.items() if a != "failed"})
        report.failed += recorded["failed"]
        for _, outcome in batches:
            for f in outcome.failed[: max(0, 10 - len(report.failures))]:
                report.failures.append((str(f.key), f.message))
        if on_progress:
            on_progress(report)

    async def record_settled() -> None:
        while True:
            batches = [await settled.get()]
            if batches[0] is not None:
                await asyncio.sleep(COMMIT_GATHER_SECONDS)  # let more settle: one commit for all
            while not settled.empty():
                batches.append(settled.get_nowait())
            done = [b for b in batches if b is not None]
            try:
                if done and not failures:
                    recorded = await loop.run_in_executor(
                        writer,
                        functools.partial(
                            record_batches, state_con, spec, done, run_id=run_id, now=clock()
                        ),
                    )
                    count(recorded, done)
            except BaseException as exc:  # surfaced by the sending loop, which stops
                failures.append(exc)
            for _ in done:
                window.release()
            if len(done) < len(batches):
                return

    async def send(batch: Batch) -> None:
        try:
            outcome = await noun.bulk_upsert(batch.entries)
        except BaseException:
            window.release()
            raise
        settled.put_nowait((batch, outcome))

    recorder = asyncio.create_task(record_settled())
    sending: set[asyncio.Task] = set()
    # Chunks are read from DuckDB on their own thread: the next one is read while this one is
    # sent, so requests keep flowing (DuckDB releases the GIL while it works).
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chaser-sync-read")
    chunks = _batches(con, columns, spec.key, resource=spec.resource)
    reading = loop.run_in_executor(reader, next, chunks, None)
    try:
        while (chunk := await reading) is not None:
            reading = loop.run_in_executor(reader, next, chunks, None)
            for batch in chunk:
                await window.acquire()
                if failures:
                    raise failures[0]
                for task in [t for t in sending if t.done()]:
                    sending.discard(task)
                    task.result()  # a batch that failed hard (credentials, Chaser down) stops
                sending.add(asyncio.create_task(send(batch)))
        for task in asyncio.as_completed(sending):
            await task
    finally:
        # `con` is free once a chunk being read ahead is done; its error (if any) is moot.
        await asyncio.wait([reading])
        if not reading.cancelled():
            reading.exception()
        reader.shutdown(wait=True)
        chunks.close()
        # Whatever happened, let the batches already sent finish and record what Chaser
        # confirmed, so nothing it holds is forgotten.
        if sending:
            await asyncio.wait(sending)
        settled.put_nowait(None)
        await recorder
        writer.shutdown(wait=True)
        state_con.close()
        fold_journal(con)
    if failures:
        raise failures[0]


def sync_resource(
    con: duckdb.DuckDBPyConnection,
    client_factory: Callable[[], ChaserClient] | None,
    spec: SyncSpec,
    *,
    window: tuple[date, date] = WHOLE_HISTORY,
    options: SyncOptions = SyncOptions(),
    run_id: str = "",
    clock: Callable[[], datetime] = utc_now,
    on_progress: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """Plan and (unless dry run) send one resource's rows in scope; return what happened."""
    started = time.monotonic()
    now = clock()
    report = SyncReport(resource=spec.resource, window=window, dry_run=options.dry_run)
    report.planned = build_plan(con, spec, window, options, now)
    ((report.previously_synced,),) = con.execute(
        "select count(*) from sync_plan where sync_confirmed_hash is not null"
    ).fetchall()
    report.held_back_by_rules = _held_back_by_rules(con, spec)
    columns = _payload_columns(con, spec)
    report.samples = sample_payloads(con, columns, options.sample_size)
    if options.dry_run:
        report.duration_seconds = time.monotonic() - started
        return report
    check_mass_change(report, options)
    log_held_back(con, spec, run_id=run_id, now=now)
    if report.attempted:
        assert client_factory is not None

        async def run() -> None:
            async with client_factory() as client:
                try:
                    await _send(
                        con,
                        client,
                        spec,
                        columns,
                        report,
                        run_id=run_id,
                        clock=clock,
                        on_progress=on_progress,
                    )
                finally:
                    report.requests = client.stats.write_requests
                    report.retries = client.stats.retries
                    report.rate_limited = client.stats.rate_limited

        asyncio.run(run())
    report.duration_seconds = time.monotonic() - started
    return report


def _held_back_by_rules(con: duckdb.DuckDBPyConnection, spec: SyncSpec) -> int:
    try:
        ((n,),) = con.execute(
            "select count(*) from chaser_rejections where entity = ? and severity = 'held_back'",
            [spec.entity],
        ).fetchall()
    except duckdb.CatalogException:
        return 0
    return n
