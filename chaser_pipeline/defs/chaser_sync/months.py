"""Each month's own figures in a sync that covers several months (a single-run backfill).

The sync engine reports per Chaser object and window. Right after it, on the same connection,
its plan (`sync_plan`, one row per document in scope with its action), the log rows of this run
(read from wherever the sync state lives) and the held-back rows of `chaser_rejections` tell each
month's share: a group by the document's month.
"""

from __future__ import annotations

from chaser_pipeline.db import table_exists
from chaser_pipeline.sync.objects import ChaserObject
from chaser_pipeline.sync.state import LOG_TABLE, SyncState, Target

# SyncSummary fields that add up over months; the others (requests, retries, durations) are the
# run's, whatever months it covered.
MONTH_FIELDS = (
    "planned_create",
    "planned_update",
    "unchanged",
    "held_back_waiting_for_customer",
    "held_back_by_rules",
    "skipped_not_worth_sending",
    "created",
    "updated",
    "rejected_by_chaser",
)
_PLANNED = {
    "create": "planned_create",
    "update": "planned_update",
    "unchanged": "unchanged",
    "held_back": "held_back_waiting_for_customer",
    "skipped": "skipped_not_worth_sending",
}
_ANSWERED = {"create": "created", "update": "updated", "failed": "rejected_by_chaser"}
# Where a held-back document's date is: a model holding every row of its ledger table.
_ISSUED = {
    "invoice": ("stg_invoices", "invoice_id", "issue_date"),
    "credit_note": ("stg_credit_notes", "credit_note_id", "issue_date"),
    "overpayment": ("int_overpayments", "overpayment_id", "paid_at"),
}

_MONTH_OF_DATE = "substr({column}::varchar, 1, 7) || '-01'"


def _partition_month(month: str, first: str | None, last: str | None) -> str:
    """The partition that carries a document of `month`: the first or the last one for a month
    outside them."""
    if first and month < first:
        return first
    if last and month > last:
        return last
    return month


def month_counts(
    state: SyncState,
    target: Target,
    chaser_object: ChaserObject,
    months: list[str],
    *,
    run_id: str,
    first_month: str | None = None,
    last_month: str | None = None,
) -> dict[str, dict[str, int]]:
    """For each month (partition key YYYY-MM-01): the MONTH_FIELDS counts of this run. Documents
    dated before `first_month` (the history start) count in it, and those dated after
    `last_month` (the current month) in that one: their partitions carry them."""
    con = state.con
    counts = {month: dict.fromkeys(MONTH_FIELDS, 0) for month in months}
    if not months:
        return counts

    def add(rows: list[tuple[str, str, int]], fields: dict[str, str]) -> None:
        for month, action, n in rows:
            if month is None:
                continue  # no date: no month's partition holds it (the run's figures count it)
            month = _partition_month(month, first_month, last_month)
            if month in counts and action in fields:
                counts[month][fields[action]] += n

    month_of_plan = _MONTH_OF_DATE.format(column="p.date")
    add(
        con.execute(
            f"select {month_of_plan}, sync_action, count(*) from sync_plan as p group by all"
        ).fetchall(),
        _PLANNED,
    )
    answered = state.query_arrow(
        f"""select key, action from {LOG_TABLE}
        where target = $1 and run_id = $2 and object = $3 and action in ('create', 'update',
            'failed')""",
        [target.key, run_id, chaser_object.name],
    )
    con.register("month_counts_answered", answered)
    try:
        add(
            con.execute(
                f"""select {month_of_plan}, l.action, count(*)
                from month_counts_answered as l
                join sync_plan as p on p.{chaser_object.key} = l.key
                group by all"""
            ).fetchall(),
            _ANSWERED,
        )
    finally:
        con.unregister("month_counts_answered")
    issued = _ISSUED.get(chaser_object.ledger_entity)
    if issued and table_exists(con, "chaser_rejections") and table_exists(con, issued[0]):
        staging, key, dated = issued
        month_of_issue = _MONTH_OF_DATE.format(column=f"s.{dated}")
        held: dict[str, int] = {}
        for month, n in con.execute(
            f"""select {month_of_issue}, count(*)
            from chaser_rejections as r
            join {staging} as s on s.{key} = r.key
            where r.entity = $entity and r.severity = 'held_back'
            group by 1""",
            {"entity": chaser_object.ledger_entity},
        ).fetchall():
            if month is None:
                continue
            month = _partition_month(month, first_month, last_month)
            held[month] = held.get(month, 0) + n
        for month, n in held.items():
            if month in counts:
                counts[month]["held_back_by_rules"] = n
    return counts
