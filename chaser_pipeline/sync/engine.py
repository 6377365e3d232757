"""One sync of one Chaser object: plan, guard, send, report. Nothing here knows Dagster.

Only rows whose payload differs from what Chaser last confirmed are sent, in bulk batches of 100;
Chaser's answers are committed batch by batch (see `sender`), so a run killed at any point loses
at most the few batches sent but not yet recorded, and the next run sends nothing already
confirmed (a batch applied by Chaser but not recorded is sent again: bulk upsert is idempotent
by key).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import date, datetime

import duckdb

from chaser_pipeline.chaser.client import ChaserClient, display_url
from chaser_pipeline.chaser.encoding import dumps, encode_payload
from chaser_pipeline.chaser.errors import ChaserError
from chaser_pipeline.chaser.send_process import (
    SendProcess,
    SendProcessUnavailable,
    sends_from_process,
)
from chaser_pipeline.db import WHOLE_HISTORY, utc_now
from chaser_pipeline.sync.journal import log_held_back, record_gone
from chaser_pipeline.sync.objects import ChaserObject
from chaser_pipeline.sync.pending import Pending
from chaser_pipeline.sync.plan import (
    SyncOptions,
    build_plan,
    defer_unarchived_moves,
    payload_columns,
    planned_requests,
    previously_synced,
    stuck_withdrawals,
)
from chaser_pipeline.sync.report import SyncReport
from chaser_pipeline.sync.sender import Sender
from chaser_pipeline.sync.state import STATE_TABLE, WITHDRAWN_HASH_PREFIX, SyncState, Target

log = logging.getLogger(__name__)


class MassChangeError(RuntimeError):
    """A run would update an unusual share of previously synced rows; nothing was sent."""


def check_target(
    state: SyncState,
    url: str,
    client_factory: Callable[[], ChaserClient],
    *,
    run_id: str,
    now: datetime,
    before_asking: Callable[[], None] | None = None,
    credentials: str | None = None,
) -> tuple[Target, bool]:
    """The target behind `url`: the organisation Chaser answers for the credentials, checked
    once per run (a later step of the same run reuses the answer). True when it is new to this
    pipeline, which then starts from nothing for it. `before_asking` runs just before the
    request to Chaser, when there is one; `credentials` (ChaserTarget.credentials) are noted
    with the target, so `SyncState.last_target` finds it again without asking."""
    if run_id and (known := state.checked_in_run(url, run_id)) is not None:
        return known, False
    if before_asking is not None:
        before_asking()

    async def organisation() -> dict:
        async with client_factory() as client:
            return await client.organisation.get()

    found = asyncio.run(organisation())
    organisation_id = str(found.get("id") or found.get("organisation_id") or "")
    if not organisation_id:
        raise ChaserError(
            f"GET /v1/organisation at {display_url(url)} answered without an organisation id"
        )
    target = Target(url, organisation_id, str(found.get("name") or ""))
    return target, state.record_target(target, run_id=run_id, now=now, credentials=credentials)


def sync_object(
    state: SyncState,
    target: Target,
    client_factory: Callable[[], ChaserClient] | None,
    chaser_object: ChaserObject,
    *,
    window: tuple[date, date] = WHOLE_HISTORY,
    options: SyncOptions | None = None,
    run_id: str = "",
    clock: Callable[[], datetime] = utc_now,
    on_progress: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """Plan and (unless dry run) send one object's rows in scope; return what happened.

    Call it holding the target's lock (`state.lock`): the plan then sees every answer an
    earlier sync recorded, and nobody else sends meanwhile."""
    options = options or SyncOptions()
    started = time.monotonic()
    now = clock()
    con = state.con
    state.refresh(target)
    report = SyncReport(object_name=chaser_object.name, window=window, dry_run=options.dry_run)
    report.planned = build_plan(con, chaser_object, window, options, now, target=target)
    report.previously_synced = previously_synced(con)
    report.held_back_by_rules = held_back_by_rules(con, chaser_object)
    # withdrawals: deleted in the ledger, or archived under the parent a row left
    report.withdrawals = planned_withdrawals(con, chaser_object) + report.planned["archive"]
    report.planned_requests = planned_requests(con, chaser_object)
    columns = payload_columns(con, chaser_object)
    report.samples = sample_payloads(con, columns, options.sample_size)
    if options.dry_run:
        report.duration_seconds = time.monotonic() - started
        return report
    log_held_back(state, target, chaser_object, run_id=run_id, now=now)
    stuck = stuck_withdrawals(con, chaser_object, target)
    check_withdrawal_share(con, chaser_object, target, len(stuck), options)
    if report.attempted or stuck:
        assert client_factory is not None

        async def run() -> None:
            async with client_factory() as client:
                if stuck:
                    added = await plan_withdrawals_as_held(
                        state, client, chaser_object, target, stuck, run_id=run_id, now=now
                    )
                    report.planned["update"] += added
                    report.withdrawals += added

                try:
                    async with contextlib.AsyncExitStack() as stack:
                        endpoint = None
                        if sends_from_process(
                            client, report.planned_requests, options.send_process_min_requests
                        ):
                            # the waiver's first load: HTTP in a process of its own, so the
                            # journal and the plan's reads take none of its CPU
                            try:
                                sending = await stack.enter_async_context(SendProcess(client))
                            except SendProcessUnavailable as exc:
                                report.send_process_unavailable = str(exc)
                                log.warning(
                                    "Initial load: %s sent from this process (a process of "
                                    "its own could not start: %s)",
                                    chaser_object.name,
                                    exc,
                                )
                            else:
                                endpoint = sending.endpoint(chaser_object.name)
                                report.sent_from_process = True
                                log.info(
                                    "Initial load: %s sent from a process of its own (pid %d)",
                                    chaser_object.name,
                                    sending.pid,
                                )

                        def sender() -> Sender:
                            return Sender(
                                state,
                                target,
                                client,
                                chaser_object,
                                report,
                                run_id=run_id,
                                clock=clock,
                                on_progress=on_progress,
                                endpoint=endpoint,
                            )

                        if report.planned["archive"]:
                            # archives under the parents rows left, answered and recorded
                            # before any row is sent under its new parent (see
                            # plan._plan_left_routes)
                            await sender().send(columns, ("archive",))
                            state.refresh(target)  # the working copy of a PostgreSQL state too
                            report.deferred = defer_unarchived_moves(con, chaser_object, target)
                        await sender().send(columns)
                finally:
                    report.requests = client.stats.write_requests
                    report.all_requests = client.stats.requests
                    report.retries = client.stats.retries
                    report.rate_limited = client.stats.rate_limited
                    report.budget_wait_seconds = client.stats.budget_wait_seconds

        asyncio.run(run())
    report.duration_seconds = time.monotonic() - started
    return report


async def plan_withdrawals_as_held(
    state: SyncState,
    client: ChaserClient,
    chaser_object: ChaserObject,
    target: Target,
    keys: list[str],
    *,
    run_id: str,
    now: datetime,
) -> int:
    """Add to sync_plan, first in sending order, each of `keys` as Chaser holds it with the
    withdrawn status: the contract's "sent once more with status DELETED (other fields as last
    sent)", read back from Chaser because the ledger's last version cannot be sent. One read
    request per key (these rows are rare), once: a key Chaser no longer holds is journaled as
    gone (folded with the sender's answers), so it is not read again at the next run."""
    con = state.con
    endpoint = client.endpoint(chaser_object.name)
    held, gone = [], []
    for key in keys:
        record = await endpoint.find_by_key(key)
        if record is None:
            gone.append(key)
        else:
            record = {**record, "status": chaser_object.withdrawn_status}
            held.append([json.dumps(record, default=str)])
    if gone:
        record_gone(state, target, chaser_object, gone, run_id=run_id, now=now)
    if not held:
        return 0
    con.execute("create or replace temp table sync_withdrawals (payload varchar)")
    con.executemany("insert into sync_withdrawals values (?)", held)
    columns = con.execute(f"describe {chaser_object.mart}").fetchall()
    # text and numbers as their text (exact decimals); lists and structs (addresses) as JSON
    casts = ", ".join(
        f'cast({_json_value(kind)}(w.payload, \'$."{name}"\') as {kind}) as "{name}"'
        for name, kind, *_ in columns
    )
    con.execute(
        f"""insert into sync_plan by name
        select m.*,
            '{WITHDRAWN_HASH_PREFIX}' || md5(to_json(m)::varchar) as sync_payload_hash,
            ({chaser_object.chase_sql})::decimal(18, 2) as sync_chase_measure,
            s.payload_hash as sync_confirmed_hash,
            s.chaser_id as sync_chaser_id,
            false as sync_first_send,
            'update' as sync_ready_action,
            'update' as sync_action,
            s.chase_measure as sync_confirmed_measure,
            0 as sync_priority
        from (select {casts} from sync_withdrawals as w) as m
        left join {STATE_TABLE} as s
            on s.target = $target and s.object = $object
            and s.key = m."{chaser_object.key}"
        """,
        {"target": target.key, "object": chaser_object.name},
    )
    con.execute("drop table sync_withdrawals")
    return len(held)


def _json_value(kind: str) -> str:
    """The JSON function that reads a value of DuckDB type `kind` exactly."""
    nested = kind.endswith("]") or kind.startswith(("STRUCT", "MAP"))
    return "json_extract" if nested else "json_extract_string"


def sample_payloads(con: duckdb.DuckDBPyConnection, columns: list[str], n: int) -> list[dict]:
    """The first `n` payloads the plan would send, as Chaser would receive them."""
    select = ", ".join(f'"{c}"' for c in columns)
    rows = con.sql(
        f"select {select} from sync_plan where sync_action in ('create', 'update') limit $1",
        params=[n],
    ).to_arrow_table()
    return [json.loads(dumps(encode_payload(r))) for r in rows.to_pylist()]


def check_withdrawal_share(
    con: duckdb.DuckDBPyConnection,
    chaser_object: ChaserObject,
    target: Target,
    withdrawals: int,
    options: SyncOptions,
) -> None:
    """This step's own guard on the withdrawals the mart cannot carry (read back from Chaser one
    by one, then sent DELETED): a step run outside the incremental job (materialized alone, or
    re-executed in a fresh pod) had no whole-history plan decide, and a warehouse URL pointed at
    an empty database would withdraw everything Chaser holds of the object."""
    if options.confirm_mass_change or withdrawals < options.mass_change_min_rows:
        return
    ((held,),) = con.execute(
        f"""select count(*) from {STATE_TABLE}
        where target = $target and object = $object and payload_hash is not null
        and not starts_with(payload_hash, '{WITHDRAWN_HASH_PREFIX}')""",
        {"target": target.key, "object": chaser_object.name},
    ).fetchall()
    if held and withdrawals / held > options.mass_change_share:
        raise MassChangeError(
            f"Stopped before sending anything: {withdrawals} of {held} {chaser_object.name} "
            f"that Chaser holds are missing from the landed ledger and would be withdrawn "
            f"({withdrawals / held:.0%}, above the {options.mass_change_share:.0%} guard). Check "
            "CHASER_WAREHOUSE_URL points at the ledger; if they really were deleted, run "
            "`chaser-pipeline sync --confirm-mass-change`."
        )


def check_mass_change(pending: Pending, options: SyncOptions) -> None:
    """One decision per sync, before anything is sent: stop when the sync would update an
    unusual share of what the target holds of any object, every month counted together. An
    object the target holds nothing of yet (a first load) is expected to take everything."""
    if options.confirm_mass_change:
        return
    unusual = []
    for name, counts in pending.planned.items():
        updates, before = counts["update"], pending.previously_synced.get(name, 0)
        share = updates / before if before else 0.0
        if updates >= options.mass_change_min_rows and share > options.mass_change_share:
            unusual.append(f"{updates} of {before} {name} ({share:.0%})")
    if unusual:
        raise MassChangeError(
            f"Stopped before sending anything: this sync would update {', '.join(unusual)} "
            f"that Chaser holds, above the {options.mass_change_share:.0%} guard. If the ledger "
            "really changed that much (a re-mapped column, a currency fix), run "
            "`chaser-pipeline sync --confirm-mass-change` (in Dagster: run config "
            "`confirm_mass_change: true` on chaser_pending_months)."
        )


def planned_withdrawals(con: duckdb.DuckDBPyConnection, chaser_object: ChaserObject) -> int:
    """Rows the plan sends because their key was deleted from the ledger (withdrawals: DELETED
    documents, ARCHIVED customers and contacts); 0 before any extract recorded a deletion."""
    try:
        ((n,),) = con.execute(
            f"""select count(*) from sync_plan as p
            join landing.deleted_keys as d
                on d.table_name = $table and d.key = p."{chaser_object.key}"
            where p.sync_action in ('create', 'update')""",
            {"table": chaser_object.source_table},
        ).fetchall()
    except duckdb.CatalogException:
        return 0
    return n


def held_back_by_rules(con: duckdb.DuckDBPyConnection, chaser_object: ChaserObject) -> int:
    """Rows of this object that chaser_rejections holds back (0 before the models ran)."""
    try:
        ((n,),) = con.execute(
            "select count(*) from chaser_rejections where entity = ? and severity = 'held_back'",
            [chaser_object.ledger_entity],
        ).fetchall()
    except duckdb.CatalogException:
        return 0
    return n
