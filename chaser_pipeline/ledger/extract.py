"""One extract of one ledger table, without Dagster: what it reads from the warehouse, in which
order, and what it lands.

An incremental run (the usual one) reads, on one warehouse connection:
1. every key (`select <key> from (<sql>)`, cursor at the epoch): the key set, cheap;
2. the rows changed since the cursor minus the overlap;
3. only when the key set shows the NULL-key rows changed (their count differs from the landed
   one, or step 2 brought one): every NULL-key row (`... where <key> is null`).
Keys the warehouse has that were never landed (inserted with an `updated_at` behind the cursor)
turn the run into a full comparison at once.

A full comparison reads every row and compares each with its landed version, so it also catches
rows whose `updated_at` went backwards. It runs on the first extract, on `full_refresh`, when the
last one is older than `full_compare_every` (a week by default), and when keys were missed.

Either way the key set is compared with the landed one: keys gone from the warehouse are recorded
in `landing.deleted_keys` (their last row stays), keys back in the warehouse leave it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from chaser_pipeline.ledger.contract import LedgerTable
from chaser_pipeline.ledger.incoming import stage, stage_keys
from chaser_pipeline.ledger.landing import (
    EPOCH,
    ExtractState,
    MergeResult,
    incremental_since,
    merge,
    read_state,
)
from chaser_pipeline.ledger.queries import key_query, null_key_query
from chaser_pipeline.ledger.warehouse import Warehouse, WarehouseSession

INCOMING, KEYS, NULL_KEY_ROWS = "_extract_incoming", "_extract_keys", "_extract_null_key_rows"
EXAMPLES = 5


@dataclass(frozen=True)
class ExtractOptions:
    full_refresh: bool = False  # compare every row on this run
    overlap: timedelta = timedelta(minutes=60)  # re-read rows this much older than the cursor
    full_compare_every: timedelta = timedelta(days=7)  # zero: every run


@dataclass(frozen=True)
class ExtractResult:
    """What one extract read and landed; every field ends up in the asset's metadata."""

    table: str
    since: datetime  # the lower bound of the rows read
    full_compare: str  # why every row was compared on this run; "" when it was not
    full_compared_at: datetime | None  # the last run that compared every row
    rows_fetched: int  # rows read with all their columns
    keys_read: int  # keys read by the key-set query (0 when every row was read instead)
    keys_missed_by_cursor: int  # warehouse keys never landed, found by the key set
    landed: MergeResult
    optional_in_use: tuple[str, ...]  # "payments.customer_id", "contacts", ...
    optional_missing: tuple[str, ...]
    null_updated_at: int  # landed rows with no updated_at
    null_updated_at_keys: tuple[str, ...]
    future_updated_at: int  # landed rows whose updated_at is after the run's now
    future_updated_at_keys: tuple[str, ...]
    key_set_seconds: float  # reading the key set (the comparison itself is in the merge)
    seconds: float = field(default=0.0)


def extract_table(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    table: LedgerTable,
    *,
    now: datetime,
    options: ExtractOptions | None = None,
    sql_folder: Path | None = None,
    land_changes: bool = True,
) -> ExtractResult:
    """Read one ledger table from the warehouse and land it (see the module's docstring).

    `land_changes=False` probes: an extract that would change what is landed is rolled back
    (`result.landed.kept` is False, its counts say what it found); one that changes nothing is
    kept, as the extract it is."""
    started = time.perf_counter()
    options = options or ExtractOptions()
    state = read_state(con, table)
    sql = table.read_sql(sql_folder)
    try:
        if sql is None:
            run = _absent_table(con, table, now, land_changes)
        else:
            with warehouse.session() as session:
                run = _Run(con, session, table, sql, land_changes).go(state, options, now)
        landed, summary = run
    finally:
        for name in (INCOMING, KEYS, NULL_KEY_ROWS):
            con.execute(f"drop table if exists {name}")
    null_updated, null_keys, future_updated, future_keys = _updated_at_report(con, table, now)
    optional = [f"{table.name}.{c}" for c in table.optional_columns]
    in_use = [f"{table.name}.{c}" for c in summary.optional_columns]
    if table.optional:
        optional.append(table.name)
        in_use += [table.name] if sql is not None else []
    return ExtractResult(
        table=table.name,
        since=summary.since,
        full_compare=summary.full_compare,
        full_compared_at=now if summary.full_compare else state.full_compared_at,
        rows_fetched=summary.rows_fetched,
        keys_read=summary.keys_read,
        keys_missed_by_cursor=summary.keys_missed,
        landed=landed,
        optional_in_use=tuple(in_use),
        optional_missing=tuple(p for p in optional if p not in in_use),
        null_updated_at=null_updated,
        null_updated_at_keys=null_keys,
        future_updated_at=future_updated,
        future_updated_at_keys=future_keys,
        key_set_seconds=summary.key_set_seconds,
        seconds=round(time.perf_counter() - started, 3),
    )


def full_compare_reason(state: ExtractState, options: ExtractOptions, now: datetime) -> str:
    """Why this run must compare every row, or "" for an incremental run."""
    if state.landed_at is None:
        return "first extract"
    if options.full_refresh:
        return "full_refresh requested"
    if state.full_compared_at is None:
        return "no full comparison yet"
    if now - state.full_compared_at >= options.full_compare_every:
        return f"last full comparison at {state.full_compared_at:%Y-%m-%d %H:%M}"
    return ""


@dataclass
class _Summary:
    since: datetime = EPOCH
    full_compare: str = ""
    rows_fetched: int = 0
    keys_read: int = 0
    keys_missed: int = 0
    key_set_seconds: float = 0.0
    optional_columns: tuple[str, ...] = ()


class _Run:
    """The queries of one extract on one warehouse session, staged into temporary tables."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        session: WarehouseSession,
        table: LedgerTable,
        sql: str,
        land_changes: bool = True,
    ) -> None:
        self.con, self.session, self.table, self.sql = con, session, table, sql
        self.land_changes = land_changes
        self.target = f"landing.{table.name}"
        self.summary = _Summary()

    def go(
        self, state: ExtractState, options: ExtractOptions, now: datetime
    ) -> tuple[MergeResult, _Summary]:
        key = self.table.key
        reason = full_compare_reason(state, options, now)
        if reason:
            return self._full(reason, state, options, now), self.summary

        started = time.perf_counter()
        self._read_keys()
        self.summary.key_set_seconds = round(time.perf_counter() - started, 3)
        self.summary.since = incremental_since(state.cursor, options.overlap)
        self._read_rows(self.summary.since)
        (missed,) = self._count(
            f"select count(distinct w.key) from {KEYS} w where w.key is not null "
            f"and not exists (select 1 from {self.target} t where t.{key} = w.key) "
            f"and not exists (select 1 from {INCOMING} i where i.{key} = w.key)"
        )
        if missed:
            self.summary.keys_missed = missed
            reason = (
                f"{missed} key(s) in the warehouse were never landed (updated_at behind the cursor)"
            )
            return self._full(reason, state, options, now), self.summary

        (warehouse_nulls,) = self._count(f"select count(*) from {KEYS} where key is null")
        (landed_nulls,) = self._count(f"select count(*) from {self.target} where {key} is null")
        (incoming_nulls,) = self._count(f"select count(*) from {INCOMING} where {key} is null")
        null_rows = None
        if warehouse_nulls != landed_nulls or incoming_nulls:
            self._stage(null_key_query(self.sql, self.table), EPOCH, NULL_KEY_ROWS)
            null_rows = NULL_KEY_ROWS
        result = merge(
            self.con,
            self.table,
            INCOMING,
            now=now,
            full=False,
            warehouse_keys=(
                f"(select key from {KEYS} union all select {key} as key from {INCOMING})"
            ),
            null_key_rows=null_rows,
            land_changes=self.land_changes,
        )
        return result, self.summary

    def _full(
        self, reason: str, state: ExtractState, options: ExtractOptions, now: datetime
    ) -> MergeResult:
        self.summary.full_compare, self.summary.since = reason, EPOCH
        self._read_rows(EPOCH)
        return merge(
            self.con,
            self.table,
            INCOMING,
            now=now,
            full=True,
            warehouse_keys=f"(select {self.table.key} as key from {INCOMING})",
            null_key_rows=f"(select * from {INCOMING} where {self.table.key} is null)",
            behind=(incremental_since(state.cursor, options.overlap) if state.cursor else None),
            land_changes=self.land_changes,
        )

    def _read_keys(self) -> None:
        query = key_query(self.sql, self.table)
        with self.session.stream(query, EPOCH, sql_file=self.table.sql_file) as reader:
            stage_keys(self.con, self.table, reader, KEYS, **self._checks())
        (self.summary.keys_read,) = self._count(f"select count(*) from {KEYS}")

    def _read_rows(self, since: datetime) -> None:
        self.summary.optional_columns = self._stage(self.sql, since, INCOMING)
        (fetched,) = self._count(f"select count(*) from {INCOMING}")
        self.summary.rows_fetched += fetched

    def _stage(self, sql: str, since: datetime, name: str) -> tuple[str, ...]:
        with self.session.stream(sql, since, sql_file=self.table.sql_file) as reader:
            return stage(self.con, self.table, reader, name, **self._checks()).optional_columns

    def _checks(self) -> dict:
        warehouse = self.session.warehouse
        return {
            "check_text": warehouse.kind == "postgresql",
            "read_error": lambda exc: warehouse.query_error(exc, self.table.sql_file),
        }

    def _count(self, sql: str) -> tuple[int, ...]:
        return self.con.execute(sql).fetchall()[0]


def _absent_table(
    con: duckdb.DuckDBPyConnection, table: LedgerTable, now: datetime, land_changes: bool
) -> tuple[MergeResult, _Summary]:
    """An optional table without its SQL file lands empty: the warehouse has none of it, so any
    row landed before counts as deleted (and keeps its last version)."""
    columns = ", ".join(f"{c} {t}" for c, t in table.columns)
    con.execute(f"create or replace temp table {INCOMING} ({columns})")
    result = merge(
        con,
        table,
        INCOMING,
        now=now,
        full=True,
        warehouse_keys=f"(select {table.key} as key from {INCOMING})",
        null_key_rows=INCOMING,
        land_changes=land_changes,
    )
    return result, _Summary(full_compare=f"{table.sql_file} is absent: nothing to read")


def _updated_at_report(
    con: duckdb.DuckDBPyConnection, table: LedgerTable, now: datetime
) -> tuple[int, tuple[str, ...], int, tuple[str, ...]]:
    """Landed rows whose updated_at is NULL or after now: counts and a few keys of each."""
    report = []
    for condition, params in (("updated_at is null", []), ("updated_at > ?", [now])):
        where = f"from landing.{table.name} where {condition}"
        (count,) = con.execute(f"select count(*) {where}", params).fetchall()[0]
        keys = con.execute(
            f"select coalesce({table.key}, 'NULL') {where} "
            f"order by {table.key} nulls first limit {EXAMPLES}",
            params,
        ).fetchall()
        report += [count, tuple(k for (k,) in keys)]
    return tuple(report)
