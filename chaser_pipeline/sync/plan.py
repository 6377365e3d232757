"""The sync plan: one SQL statement that decides, for every mart row in scope, what to do with it.

Each row's payload hash is compared with the hash Chaser last confirmed: `create` (Chaser has
never confirmed it), `update` (changed, or refused last time), `unchanged`, `held_back` (its
customer is not in Chaser yet) or `skipped` (never sent and not worth a first send). The plan is
the temp table `sync_plan`, which the batches, the samples and the pending check read.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from chaser_pipeline.chaser.bulk import BULK_LIMIT
from chaser_pipeline.ledger.contract import LEDGER_TABLES
from chaser_pipeline.sync.objects import CUSTOMERS, INVOICES, ChaserObject
from chaser_pipeline.sync.state import (
    ATTEMPTED_TABLE,
    STATE_TABLE,
    WITHDRAWN_HASH_PREFIX,
    Target,
    prepare_duckdb,
)


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    confirm_mass_change: bool = False
    mass_change_share: float = 0.5
    mass_change_min_rows: int = 50
    skip_invisible_unsent: bool = True
    skip_paid_older_than_days: int | None = 183
    sample_size: int = 3
    # An initial load (the waiver: no pacing) of at least this many write requests of one
    # object is sent from a process of its own (chaser.send_process); 0: never.
    send_process_min_requests: int = 20


def _window_text(window: tuple[date, date]) -> tuple[str, str]:
    return window[0].isoformat(), window[1].isoformat()


def build_plan(
    con: duckdb.DuckDBPyConnection,
    chaser_object: ChaserObject,
    window: tuple[date, date],
    options: SyncOptions,
    now: datetime,
    *,
    target: Target,
    source: str | None = None,
    hash_unconfirmed: bool = True,
) -> Counter[str]:
    """Create temp table `sync_plan` (the mart rows in scope, their hash and action, against what
    `target` confirmed); return counts. The working copy must be current (`SyncState.refresh`).

    `source` replaces the mart table by a relation with the same columns (the pending check plans
    the payloads the models would produce now). `hash_unconfirmed=False` (a plan that is only
    counted, never sent: the pending check) hashes a payload only where Chaser confirmed one to
    compare it with; every other row's `sync_payload_hash` is NULL and its action the same. A
    payload hash is most of a plan's cost (10M invoices never sent: every one of them)."""
    prepare_duckdb(con)
    scope = "true"
    params: dict[str, Any] = {"object": chaser_object.name, "target": target.key}
    if chaser_object.partitioned:
        # Dates are ISO strings, so the month window compares correctly as text.
        scope = "m.date >= $window_start and m.date < $window_end"
        params["window_start"], params["window_end"] = _window_text(window)
    # a payload is hashed where the plan keeps its hash (to record it once sent) or compares it
    hashed = "true" if hash_unconfirmed else "s.payload_hash is not null"
    customer_pending = _waits_for_customer_sql(chaser_object, options)
    skip = _not_worth_sending_sql(chaser_object, options, now, params)
    con.execute(
        f"""create or replace temp table sync_plan as
        with scoped as (
            select
                m as sync_payload,
                m.*,
                ({chaser_object.chase_sql})::decimal(18, 2) as sync_chase_measure
            from {source or chaser_object.mart} as m
            where {scope}
        ),
        planned as (
            select
                m.* exclude (sync_payload, sync_chase_measure),
                case when {hashed}
                    then md5(to_json(m.sync_payload)::varchar) end as sync_payload_hash,
                m.sync_chase_measure,
                s.payload_hash as sync_confirmed_hash,
                s.chaser_id as sync_chaser_id,
                -- Chaser has never answered for it, and no run has started to send it
                s.key is null and a.key is null as sync_first_send,
                -- what to do with the row once its customer is in Chaser
                case
                    -- once sent (or sending was attempted: a killed run may have delivered
                    -- it), every later change is sent; never sent and not worth it: skip
                    when sync_first_send and ({skip}) then 'skipped'
                    when s.payload_hash is null then 'create'
                    -- failed rows are retried every run until they succeed
                    when s.last_status = 'failed' or s.payload_hash <> sync_payload_hash
                        then 'update'
                    else 'unchanged'
                end as sync_ready_action,
                -- a document waits for its customer to be accepted by Chaser first
                case when {customer_pending} then 'held_back' else sync_ready_action end
                    as sync_action,
                s.chase_measure as sync_confirmed_measure
            from scoped as m
            left join {STATE_TABLE} as s
                on s.target = $target
                and s.object = $object
                and s.key = m.{chaser_object.key}
            left join (
                select distinct key from {ATTEMPTED_TABLE}
                where target = $target and object = $object
            ) as a
                on a.key = m.{chaser_object.key}
        )
        select
            *,
            -- what goes first when a run may be cut short (budget, crash, deadline): changes
            -- that stop or reduce chasing (paid, voided, withdrawn, less due, more credit,
            -- archived), then new rows, then the rest; a row confirmed before chase measures
            -- were kept counts as reducing when it no longer chases at all
            case
                when sync_action = 'update'
                    and sync_chase_measure < coalesce(sync_confirmed_measure, 1e15) then 0
                when sync_action = 'create' then 1
                else 2
            end as sync_priority
        from planned""",
        params,
    )
    if chaser_object.left_route_status:
        _plan_left_routes(con, chaser_object, params)
    return Counter(
        dict(con.execute("select sync_action, count(*) from sync_plan group by 1").fetchall())
    )


def _plan_left_routes(
    con: duckdb.DuckDBPyConnection, chaser_object: ChaserObject, params: dict[str, Any]
) -> None:
    """Add to sync_plan, first in sending order, each row that moved to another parent (a
    contact person whose customer changed) as it must now read under the parent Chaser last
    confirmed it under: with `left_route_status` (ARCHIVED), so the old customer stops sending
    its reminders to that person. The row itself goes to its new parent as planned, in the same
    run (in another request). Sent once: it is recorded under a withdrawn hash (left out of the
    holdings), and the row's confirmed route is then the new parent's. Rows confirmed before
    routes were kept have none, and are not archived anywhere (nothing says where they were).

    Their action is `archive`: the sync sends these first and on their own (`engine`), and the
    row's move to its new parent only once Chaser confirmed the archive, so the archive's answer
    is recorded before the new parent's and a run cut short in between still owes it. Counted
    apart from updates (the mass-change guard counts what Chaser holds being changed)."""
    route, status = chaser_object.route_column, chaser_object.left_route_status
    con.execute(
        f"""insert into sync_plan by name
        select
            m.* exclude (sync_payload_hash, sync_chase_measure, sync_first_send,
                sync_ready_action, sync_action, sync_priority),
            '{WITHDRAWN_HASH_PREFIX}' || 'left-' || md5(to_json(m)::varchar) as sync_payload_hash,
            ({chaser_object.chase_sql})::decimal(18, 2) as sync_chase_measure,
            false as sync_first_send,
            'archive' as sync_ready_action,
            'archive' as sync_action,
            0 as sync_priority
        from (
            select p.* exclude ("{route}", status) replace (
                s.payload_hash as sync_confirmed_hash,
                s.chaser_id as sync_chaser_id,
                s.chase_measure as sync_confirmed_measure
            ), s.route as "{route}", '{status}' as status
            from sync_plan as p
            join {STATE_TABLE} as s
                on s.target = $target and s.object = $object and s.key = p."{chaser_object.key}"
            where s.route is not null and s.route <> p."{route}"
                and s.payload_hash is not null
                and not starts_with(s.payload_hash, '{WITHDRAWN_HASH_PREFIX}')
                -- archived there already (confirmed so): nothing to stop
                and coalesce(s.chase_measure, 1) <> 0
        ) as m""",
        {"target": params["target"], "object": params["object"]},
    )


def stuck_withdrawals(
    con: duckdb.DuckDBPyConnection, chaser_object: ChaserObject, target: Target
) -> list[str]:
    """Keys the ledger deleted that Chaser holds but the mart cannot carry, so no DELETED
    (ARCHIVED) would ever reach Chaser, which would chase them for ever:

    - deleted keys whose last landed version a model rule holds back (a due date blanked, then
      the invoice deleted);
    - keys this pipeline sent that the landing does not hold at all: deleted from the warehouse
      while no disk kept their last row (a production run pod lands the ledger afresh, and a
      hard delete then lands nothing to compare). A record reconcile adopted from Chaser that
      the ledger never knew is left alone (`adopted`): never withdrawn on a guess.

    The sync sends them as Chaser holds them (`engine.plan_withdrawals_as_held`); the pending
    months count them (and the mass-change guard), so a run of their object comes."""
    if chaser_object.withdrawn_status is None:
        return []
    ledger_key = LEDGER_TABLES[chaser_object.source_table].key
    try:
        rows = con.execute(
            f"""select distinct d.key from landing.deleted_keys as d
            join {STATE_TABLE} as s
                on s.target = $target and s.object = $object and s.key = d.key
            join chaser_rejections as r
                on r.entity = $entity and r.key = d.key and r.severity = 'held_back'
            where d.table_name = $table and s.payload_hash is not null
                and not starts_with(s.payload_hash, '{WITHDRAWN_HASH_PREFIX}')
            union
            select s.key from {STATE_TABLE} as s
            where s.target = $target and s.object = $object and s.payload_hash is not null
                and not starts_with(s.payload_hash, '{WITHDRAWN_HASH_PREFIX}')
                and s.last_status <> 'adopted'
                and not exists (
                    select 1 from landing.{chaser_object.source_table} as l
                    where trim(l."{ledger_key}") = s.key)
            order by 1""",
            {
                "target": target.key,
                "object": chaser_object.name,
                "entity": chaser_object.ledger_entity,
                "table": chaser_object.source_table,
            },
        ).fetchall()
    except duckdb.CatalogException:
        return []  # nothing landed or modelled yet
    return [key for (key,) in rows]


def _waits_for_customer_sql(chaser_object: ChaserObject, options: SyncOptions) -> str:
    """SQL over the mart row `m`: true while Chaser has not confirmed the row's customer."""
    if not chaser_object.customer_column:
        return "false"
    waits = f"""not exists (
        select 1 from {STATE_TABLE} c where c.target = $target and c.object = 'customers'
        and c.key = m.{chaser_object.customer_column} and c.payload_hash is not null)"""
    if options.dry_run:
        # A dry run sends no customer: plan as if those the customers mart holds had landed.
        waits += f""" and not exists (
            select 1 from {CUSTOMERS.mart} c
            where c.{CUSTOMERS.key} = m.{chaser_object.customer_column})"""
    return waits


def _not_worth_sending_sql(
    chaser_object: ChaserObject, options: SyncOptions, now: datetime, params: dict[str, Any]
) -> str:
    """SQL over the mart row `m`: true when a row never sent is not worth a first send."""
    rules = []
    if options.skip_invisible_unsent and chaser_object.invisible_sql:
        rules.append(chaser_object.invisible_sql)
    if options.skip_paid_older_than_days is not None and chaser_object is INVOICES:
        # Chaser archives a PAID invoice 6 months after it was paid: not worth a first send.
        params["paid_cutoff"] = (now - timedelta(days=options.skip_paid_older_than_days)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
        rules.append("(m.status = 'PAID' and m.fully_paid_date < $paid_cutoff)")
    return " or ".join(rules) or "false"


def payload_json_sql(columns: list[str]) -> str:
    """SQL rendering one mart row as its Chaser payload JSON text."""
    fields = ", ".join(f'"{c}" := "{c}"' for c in columns)
    return f"to_json(struct_pack({fields}))::varchar"


def mart_columns(con: duckdb.DuckDBPyConnection, chaser_object: ChaserObject) -> list[str]:
    """The mart's columns, in order: what the plan hashes."""
    return [r[0] for r in con.execute(f"describe {chaser_object.mart}").fetchall()]


def payload_columns(con: duckdb.DuckDBPyConnection, chaser_object: ChaserObject) -> list[str]:
    """The mart's columns but the routing one: the payload's fields."""
    return [c for c in mart_columns(con, chaser_object) if c != chaser_object.route_column]


def customer_lands_sql(chaser_object: ChaserObject, row: str = "p") -> str:
    """SQL over a planned row `row` waiting for its customer: the customer is one the models
    send, so it lands in this sync (unless Chaser refuses it) and the row follows. A row whose
    customer the models hold back waits for the ledger to fix it."""
    if not chaser_object.customer_column:
        return "false"
    return f"""exists (
        select 1 from {CUSTOMERS.mart} as c
        where c.{CUSTOMERS.key} = {row}.{chaser_object.customer_column})"""


def previously_synced(con: duckdb.DuckDBPyConnection) -> int:
    """Rows of the plan Chaser confirmed before (an archive under a left parent is the same
    row again, not counted twice)."""
    ((n,),) = con.execute(
        """select count(*) from sync_plan
        where sync_confirmed_hash is not null and sync_action <> 'archive'"""
    ).fetchall()
    return n


def defer_unarchived_moves(
    con: duckdb.DuckDBPyConnection, chaser_object: ChaserObject, target: Target
) -> int:
    """After the archives were sent: leave out of this run the rows whose archive under the
    parent they left Chaser has not confirmed (refused, or not sent), so their move is sent
    only after it and the archive stays owed (the state still names the old parent). Returns
    how many were deferred."""
    key = f'"{chaser_object.key}"'
    con.execute(
        f"""update sync_plan set sync_action = 'deferred'
        where sync_action in ('create', 'update') and {key} in (
            select a.{key} from sync_plan as a
            where a.sync_action = 'archive' and not exists (
                select 1 from {STATE_TABLE} as s
                where s.target = $target and s.object = $object and s.key = a.{key}
                and s.payload_hash = a.sync_payload_hash))""",
        {"target": target.key, "object": chaser_object.name},
    )
    ((n,),) = con.execute(
        "select count(*) from sync_plan where sync_action = 'deferred'"
    ).fetchall()
    return n


def planned_requests(
    con: duckdb.DuckDBPyConnection, chaser_object: ChaserObject, *, customers_landing: bool = False
) -> int:
    """Write (bulk) requests sending the plan takes: ceil(rows / 100) for the object, or per
    parent for a routed one (contact persons: one request per customer with changes), exactly
    as `batches` cuts them. Reads (one GET /v1/organisation per run) are not counted, nor
    retries.

    With `customers_landing`, rows held back only because their customer is not in Chaser yet
    count too when the customer is one this sync sends (a first load: every document waits for
    its customer, which lands minutes before it): what a whole sync (customers first, then the
    rest) sends, as the pending months forecast it."""
    rows = "p.sync_action in ('create', 'update', 'archive')"
    if customers_landing and chaser_object.customer_column:
        rows = f"""({rows}) or (p.sync_action = 'held_back'
            and p.sync_ready_action in ('create', 'update')
            and {customer_lands_sql(chaser_object)})"""
    group = f'p."{chaser_object.route_column}"' if chaser_object.route_column else "1"
    ((requests,),) = con.execute(
        f"""select coalesce(sum(ceil(rows / {BULK_LIMIT})), 0)::bigint from (
            select {group} as request_group, count(*) as rows from sync_plan as p
            where {rows} group by request_group)"""
    ).fetchall()
    return requests
