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

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from chaser_pipeline.db import WHOLE_HISTORY
from chaser_pipeline.modelling import ModelProject, model_query
from chaser_pipeline.sync import SPECS, SyncOptions, build_plan, ensure_sync_tables

# The newest ledger change behind each document (its own row, its payments and allocations, and
# the credit notes whose allocations count on it), from the de-duplicated staging models.
CHANGED_AT_SQL = {
    "invoices": """
        select invoice_id as key, max(changed_at) as changed_at from (
            select invoice_id, updated_at as changed_at from stg_invoices
            union all
            select invoice_id, updated_at from stg_payments
            union all
            select invoice_id, updated_at from stg_credit_allocations
            union all
            select a.invoice_id, c.updated_at
            from stg_credit_allocations as a
            join stg_credit_notes as c on c.credit_note_id = a.credit_note_id
        ) group by invoice_id""",
    "credit_notes": """
        select credit_note_id as key, max(changed_at) as changed_at from (
            select credit_note_id, updated_at as changed_at from stg_credit_notes
            union all
            select credit_note_id, updated_at from stg_credit_allocations
        ) group by credit_note_id""",
    "customers": "select customer_id as key, updated_at as changed_at from stg_customers",
}


@dataclass
class Pending:
    """Documents Chaser does not hold as the ledger says they should be, and their months."""

    months: list[str] = field(default_factory=list)  # partition keys, YYYY-MM-01
    documents: dict[str, int] = field(default_factory=dict)  # per resource
    oldest_change: datetime | None = None
    oldest_change_by_month: dict[str, datetime] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.documents.values())


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
    con: duckdb.DuckDBPyConnection,
    models_dir: Path,
    *,
    history_start: date,
    now: datetime,
    options: SyncOptions | None = None,
) -> Pending:
    """Plan every resource over the whole history, without sending; collect what is pending."""
    options = options or SyncOptions()
    ensure_sync_tables(con)
    project = ModelProject(models_dir)
    con.execute(
        "create or replace temp table pending_documents ("
        "resource varchar, key varchar, month varchar, changed_at timestamp)"
    )
    for resource, spec in SPECS.items():
        model = project.models.get(spec.mart)
        if model is None or any(
            not _exists(con, upstream)
            for upstream in model.model_refs
            if upstream in project.models
        ):
            continue  # nothing built yet: nothing can be pending
        sql, params = model_query(model)
        con.execute(f"create or replace temp table pending_source as {sql}", params)
        build_plan(con, spec, WHOLE_HISTORY, options, now, source="pending_source")
        month = "substr(p.date, 1, 7) || '-01'" if spec.partitioned else "null"
        con.execute(
            f"""insert into pending_documents
            select $resource, p.{spec.key}, {month}, c.changed_at
            from sync_plan as p
            left join ({CHANGED_AT_SQL[resource]}) as c on c.key = p.{spec.key}
            where p.sync_action in ('create', 'update', 'held_back')""",
            {"resource": resource},
        )
        if spec.partitioned and not _exists(con, spec.mart):
            # first run: the whole history is one backfill, every month from the start built
            con.execute(
                """insert into pending_documents
                select $resource, null, strftime(month, '%Y-%m-01'), null
                from range($start::date, (select max(date[:10])::date from pending_source)
                    + interval 1 day, interval 1 month) as t(month)""",
                {"resource": resource, "start": history_start},
            )
        elif spec.partitioned:
            # the mart holds the document in another month, or no longer may hold it: that
            # month's partition must be rebuilt (and its sync will send the change if any)
            con.execute(
                f"""insert into pending_documents
                select $resource, m.{spec.key}, substr(m.date, 1, 7) || '-01', c.changed_at
                from {spec.mart} as m
                left join pending_source as w on w.{spec.key} = m.{spec.key}
                left join ({CHANGED_AT_SQL[resource]}) as c on c.key = m.{spec.key}
                where w.{spec.key} is null or substr(w.date, 1, 7) <> substr(m.date, 1, 7)""",
                {"resource": resource},
            )
    # Months before the history start are not partitions: nothing there is synced.
    con.execute(
        "delete from pending_documents where month is not null and month < $start",
        {"start": history_start.isoformat()},
    )
    pending = Pending()
    pending.documents = dict(
        con.execute(
            "select resource, count(distinct key) from pending_documents "
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
    return pending
