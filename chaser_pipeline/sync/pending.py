"""What Chaser does not hold yet, worked out by comparing payloads, not by guessing from timestamps.

A document is pending when the payload the models would produce for it now (the mart's own SQL
over the whole history, built from the whole-history intermediate models) would be created,
updated or held back by the sync plan: the same plan the sync runs, against the hashes Chaser
confirmed. Its month is pending too when the mart still holds the document in another month (its
issue date moved) or holds it no longer may (it is now held back), so that partition is rebuilt.

Comparing payloads catches every way a month can change: a late-committed row, a payment moved
to another invoice, a credit note voided after it paid an invoice, a customer fixed after it was
rejected. Each pending document carries the time of its newest ledger change, for the data-lag
check.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from chaser_pipeline.db import WHOLE_HISTORY, month_key, utc_now
from chaser_pipeline.models.build import model_query
from chaser_pipeline.models.project import Model, ModelProject, as_project
from chaser_pipeline.sync.objects import CHASER_OBJECTS, ChaserObject
from chaser_pipeline.sync.plan import (
    SyncOptions,
    build_plan,
    customer_lands_sql,
    planned_requests,
    previously_synced,
    stuck_withdrawals,
)
from chaser_pipeline.sync.state import SyncState, Target

# The newest ledger change behind each document (its own row, its payments and allocations, and
# the credit notes whose allocations count on it), from the de-duplicated staging models.
CHANGED_AT_SQL = {
    "invoices": """
        select invoice_id as key, max(changed_at) as changed_at from (
            select invoice_id, greatest(updated_at, deleted_at) as changed_at from stg_invoices
            union all
            select invoice_id, greatest(updated_at, deleted_at) from stg_payments
            union all
            select invoice_id, greatest(updated_at, deleted_at) from stg_credit_allocations
            union all
            select a.invoice_id, greatest(c.updated_at, c.deleted_at)
            from stg_credit_allocations as a
            join stg_credit_notes as c on c.credit_note_id = a.credit_note_id
            union all
            select a.invoice_id, greatest(p.updated_at, p.deleted_at)
            from stg_credit_allocations as a
            join stg_payments as p on p.payment_id = a.payment_id
        ) group by invoice_id""",
    "credit_notes": """
        select credit_note_id as key, max(changed_at) as changed_at from (
            select credit_note_id, greatest(updated_at, deleted_at) as changed_at
            from stg_credit_notes
            union all
            select credit_note_id, greatest(updated_at, deleted_at) from stg_credit_allocations
        ) group by credit_note_id""",
    "customers": """
        select customer_id as key, greatest(updated_at, deleted_at) as changed_at
        from stg_customers""",
    # a contact person comes from a ledger contact, or from an address in its customer's email
    "contact_persons": """
        select p.external_id as key,
            max(coalesce(
                greatest(c.updated_at, c.deleted_at), greatest(u.updated_at, u.deleted_at)
            )) as changed_at
        from int_contact_persons as p
        left join stg_contacts as c on c.contact_id = p.external_id
        left join stg_customers as u on u.customer_id = p.customer_id
        group by p.external_id""",
    "overpayments": """
        select payment_id as key, max(changed_at) as changed_at from (
            select payment_id, greatest(updated_at, deleted_at) as changed_at from stg_payments
            union all
            select payment_id, greatest(updated_at, deleted_at) from stg_credit_allocations
            where payment_id is not null
        ) group by payment_id""",
}


@dataclass
class Pending:
    """Documents Chaser does not hold as the ledger says they should be, and their months."""

    months: list[str] = field(default_factory=list)  # partition keys, YYYY-MM-01
    documents: dict[str, int] = field(default_factory=dict)  # per Chaser object
    oldest_change: datetime | None = None
    oldest_change_by_month: dict[str, datetime] = field(default_factory=dict)
    # per Chaser object: the whole-history plan's rows by action, and rows Chaser confirmed
    planned: dict[str, Counter[str]] = field(default_factory=dict)
    previously_synced: dict[str, int] = field(default_factory=dict)
    # per Chaser object: the write (bulk) requests sending everything pending takes
    requests_by_object: dict[str, int] = field(default_factory=dict)
    # documents issued before the history start that Chaser does not hold as the ledger says:
    # the first month's partition carries them
    before_history_start: int = 0

    @property
    def requests(self) -> int:
        """Write requests the sync of everything pending makes, every object together."""
        return sum(self.requests_by_object.values())

    @property
    def total(self) -> int:
        return sum(self.documents.values())

    @property
    def updates(self) -> int:
        """Rows Chaser holds that this sync would update, every object and month together."""
        return sum(counts["update"] for counts in self.planned.values())

    @property
    def synced(self) -> int:
        return sum(self.previously_synced.values())

    def as_metadata(self) -> dict[str, Any]:
        """Plain values for the pending-months asset's metadata; `months_from_metadata` reads
        them back."""
        return {
            "changed_months": list(self.months),
            "changed_month_count": len(self.months),
            "pending_documents": dict(self.documents),
            "oldest_pending_change": str(self.oldest_change or ""),
            "documents_before_history_start": self.before_history_start,
            "planned_requests": self.requests,
            "planned_requests_by_object": dict(self.requests_by_object),
        }


def months_from_metadata(metadata: Mapping[str, Any]) -> list[str]:
    """The months a pending-months materialization asked to sync (plain or Dagster values)."""
    value = metadata.get("changed_months")
    raw = getattr(value, "value", value) or []
    return list(json.loads(raw) if isinstance(raw, str) else raw)


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, _, name = table.rpartition(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_name = $name and table_schema = $schema",
            {"name": name, "schema": schema or "main"},
        ).fetchone()[0]
    )


def compute_pending(
    state: SyncState,
    target: Target,
    models_dir: Path | ModelProject,
    *,
    history_start: date,
    now: datetime,
    options: SyncOptions | None = None,
) -> Pending:
    """Plan every object over the whole history against what `target` confirmed, without
    sending; collect what is pending."""
    options = options or SyncOptions()
    con = state.con
    state.refresh(target)
    pending = Pending()
    project = as_project(models_dir)
    con.execute(
        "create or replace temp table pending_documents ("
        "object varchar, key varchar, month varchar, changed_at timestamp)"
    )
    changed = _ChangedAt(con)
    try:
        _collect_all(con, pending, target, project, history_start, now, options, changed)
    except BaseException:
        # a failed check leaves no whole-history table on the connection; its error is the one
        # to see, not one of the cleanup's
        with contextlib.suppress(duckdb.Error):
            changed.drop()
        raise
    changed.drop()
    _summarise(con, pending)
    return pending


def _collect_all(
    con: duckdb.DuckDBPyConnection,
    pending: Pending,
    target: Target,
    project: ModelProject,
    history_start: date,
    now: datetime,
    options: SyncOptions,
    changed: _ChangedAt,
) -> None:
    """Fill pending_documents: every object's plan and moved documents, the stuck withdrawals,
    the months of documents outside the partitions, and the held-back changes."""
    for chaser_object in CHASER_OBJECTS.values():
        model = project.models.get(chaser_object.mart)
        if model is None or any(
            not _exists(con, upstream)
            for upstream in model.model_refs
            if upstream in project.models
        ):
            continue  # nothing built yet: nothing can be pending
        _collect(con, pending, target, chaser_object, model, history_start, now, options, changed)
    # Deleted documents Chaser holds whose last version is held back: withdrawn as Chaser
    # holds them by the next sync of their object, whatever its months (the current one here)
    for chaser_object in CHASER_OBJECTS.values():
        keys = stuck_withdrawals(con, chaser_object, target)
        if keys:
            # updates of what Chaser holds: the mass-change guard counts them (a warehouse URL
            # pointed at an empty database on a fresh disk would otherwise withdraw everything)
            pending.planned.setdefault(chaser_object.name, Counter())["update"] += len(keys)
            # ... of rows Chaser holds that the plan, over what the ledger has, does not count
            pending.previously_synced[chaser_object.name] = pending.previously_synced.get(
                chaser_object.name, 0
            ) + len(keys)
            con.execute(
                """insert into pending_documents
                select $object, k.key, $month, d.deleted_at
                from unnest($keys) as k(key)
                left join (
                    select key, max(deleted_at) as deleted_at from landing.deleted_keys
                    where table_name = $table group by key
                ) as d on d.key = k.key""",
                {
                    "object": chaser_object.name,
                    "month": month_key(utc_now()) if chaser_object.partitioned else None,
                    "table": chaser_object.source_table,
                    "keys": keys,
                },
            )
    # The first partition also holds every document issued before the history start.
    ((pending.before_history_start,),) = con.execute(
        """select count(distinct (object, key)) from pending_documents
        where key is not null and month < $start""",
        {"start": history_start.isoformat()},
    ).fetchall()
    con.execute(
        "update pending_documents set month = $start where month < $start",
        {"start": history_start.isoformat()},
    )
    # ... and the current month's partition (Dagster's, by the real clock, whatever the plan's
    # `now`) every document dated after it: an invoice issued ahead of time
    con.execute(
        "update pending_documents set month = $current where month > $current",
        {"current": month_key(utc_now())},
    )
    _collect_outstanding(con, changed)


class _ChangedAt:
    """Each object's newest ledger change per document (CHANGED_AT_SQL), worked out once per
    pending check into a temp table: the plan's documents, the mart's moved ones and the
    held-back ones all read it (over the whole history, invoices' is a group-by over every
    payment and allocation: at 1M invoices it was a second of the check, paid three times)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.built: list[str] = []  # the tables made so far, by this check

    def table(self, name: str) -> str:
        table = f"pending_changed_{name}"
        if table not in self.built:
            self.con.execute(f"create or replace temp table {table} as {CHANGED_AT_SQL[name]}")
            self.built.append(table)
        return table

    def drop(self) -> None:
        for table in self.built:
            self.con.execute(f"drop table if exists {table}")
        self.built.clear()


def _collect(
    con: duckdb.DuckDBPyConnection,
    pending: Pending,
    target: Target,
    chaser_object: ChaserObject,
    model: Model,
    history_start: date,
    now: datetime,
    options: SyncOptions,
    changed: _ChangedAt,
) -> None:
    """Add one object's pending documents (and the months to rebuild) to pending_documents."""
    name, key = chaser_object.name, chaser_object.key
    sql, params = model_query(model)
    con.execute(f"create or replace temp table pending_source as {sql}", params)
    # counted, never sent: a payload is hashed only to compare it with one Chaser confirmed
    planned = build_plan(
        con,
        chaser_object,
        WHOLE_HISTORY,
        options,
        now,
        target=target,
        source="pending_source",
        hash_unconfirmed=False,
    )
    synced = previously_synced(con)
    pending.planned[name], pending.previously_synced[name] = planned, synced
    pending.requests_by_object[name] = planned_requests(con, chaser_object, customers_landing=True)
    month = "substr(p.date, 1, 7) || '-01'" if chaser_object.partitioned else "null"
    con.execute(
        f"""insert into pending_documents
        select $object, p.{key}, {month}, c.changed_at
        from sync_plan as p
        left join {changed.table(name)} as c on c.key = p.{key}
        where p.sync_action in ('create', 'update') or (
            p.sync_action = 'held_back' and {customer_lands_sql(chaser_object)})""",
        {"object": name},
    )
    # a mart a fresh disk made empty (ensure_run_local_ledger) holds nothing a month was built from
    mart_built = _exists(con, chaser_object.mart) and bool(
        con.execute(f"select exists (select 1 from {chaser_object.mart})").fetchone()[0]
    )
    if chaser_object.partitioned and not mart_built and not synced:
        # first run: the whole history is one backfill, every month from the start built (a
        # run-local DuckDB rebuilt on a fresh disk, whose state Chaser has answered, is not a
        # first run: only the months of pending documents are, or every day would be all)
        con.execute(
            """insert into pending_documents
            select $object, null, strftime(month, '%Y-%m-01'), null
            from range($start::date, (select max(date[:10])::date from pending_source)
                + interval 1 day, interval 1 month) as t(month)""",
            {"object": name, "start": history_start},
        )
    elif chaser_object.partitioned and mart_built:
        # the mart holds the document in another month, or no longer may hold it: that
        # month's partition must be rebuilt (and its sync will send the change if any); a moved
        # document's new month too: one never sent plans no create, and without its new month
        # rebuilt it would fall out of the mart
        con.execute(
            f"""insert into pending_documents
            select $object, m.{key}, month, c.changed_at
            from {chaser_object.mart} as m
            left join pending_source as w on w.{key} = m.{key}
            left join {changed.table(name)} as c on c.key = m.{key},
            unnest([substr(m.date, 1, 7) || '-01', substr(w.date, 1, 7) || '-01']) as t(month)
            where (w.{key} is null or substr(w.date, 1, 7) <> substr(m.date, 1, 7))
            and month is not null""",
            {"object": name},
        )


# Ledger changes Chaser has not received that no sync can send until the ledger is fixed: a
# document Chaser holds whose new version is held back (stale in Chaser), and a payment or
# allocation held back (its invoice goes without it). They count in the data lag, not in the
# months to sync.
_OUTSTANDING_SQL = """
    select o.object, r.key, null, c.changed_at
    from chaser_rejections as r
    join (values
        ('customer', 'customers'), ('contact_person', 'contact_persons'),
        ('invoice', 'invoices'), ('credit_note', 'credit_notes'),
        ('overpayment', 'overpayments')
    ) as o(entity, object) on o.entity = r.entity
    left join ({changed}) as c on c.object = o.object and c.key = r.key
    where r.severity = 'stale_in_chaser'
    union all
    select 'payments', r.key, null, greatest(p.updated_at, p.deleted_at)
    from chaser_rejections as r
    left join stg_payments as p on p.payment_id = r.key
    where r.severity = 'held_back' and r.entity = 'payment'
    union all
    select 'payments', r.key, null, greatest(a.updated_at, a.deleted_at)
    from chaser_rejections as r
    left join stg_credit_allocations as a on a.allocation_id = r.key
    where r.severity = 'held_back' and r.entity = 'allocation'
"""


def _collect_outstanding(con: duckdb.DuckDBPyConnection, changed: _ChangedAt) -> None:
    """Add the held-back changes Chaser has not received (see _OUTSTANDING_SQL)."""
    if not all(_exists(con, t) for t in ("chaser_rejections", "int_contact_persons")):
        return  # the models are not built yet: nothing is known to be held back
    every = "\nunion all\n".join(
        f"select '{name}' as object, key, changed_at from {changed.table(name)}"
        for name in CHANGED_AT_SQL
    )
    con.execute(f"insert into pending_documents {_OUTSTANDING_SQL.format(changed=every)}")


def _summarise(con: duckdb.DuckDBPyConnection, pending: Pending) -> None:
    pending.documents = dict(
        con.execute(
            "select object, count(distinct key) from pending_documents "
            "where key is not null group by 1"
        ).fetchall()
    )
    (pending.oldest_change,) = con.execute(
        "select min(changed_at) from pending_documents"
    ).fetchone()
    by_month = con.execute(
        "select month, min(changed_at) from pending_documents where month is not null "
        "group by 1 order by 1"
    ).fetchall()
    pending.months = [m for m, _ in by_month]
    pending.oldest_change_by_month = {m: t for m, t in by_month if t is not None}


def sync_range(months: list[str]) -> tuple[str, str] | None:
    """The one range of months (first, last) a sync of these pending months runs over.

    One range, not one run per stretch of consecutive months: each object's changes are then
    sent in one priority order (stop-chasing first) across every month, so a run cut short
    leaves the least harmful remainder; months in between that did not change are rebuilt and
    planned, and send nothing."""
    return (min(months), max(months)) if months else None
