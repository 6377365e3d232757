"""The landed ledger in the pipeline's DuckDB: `landing.<table>`, `landing.deleted_keys` and each
table's extract state, and the one transaction that merges a staged extract into them.

- `landing.<table>` has every contract column, optional ones included, whatever the warehouse
  returns. Rows are merged by key: keys whose rows changed are replaced by the incoming rows (all
  of them, so duplicate keys in the source stay visible to the models); a re-run of the same
  window changes nothing.
- Rows with a NULL key are landed too (the models hold them back and report them). Having no key,
  they cannot be merged: the landed NULL-key rows of a table are replaced as a whole by the
  warehouse's current NULL-key rows whenever the extract reads them (see `extract.py`), so they
  never pile up and leave once the warehouse gives them a key.
- A key gone from the warehouse keeps its last row and gets a row in
  `landing.deleted_keys(table_name, key, deleted_at)`; a key that comes back leaves it.
- `landing._extract_state`: per table, the cursor (the newest `updated_at` landed that is not
  after the run's now, so one row dated 2099 never stalls the extract), when the state was
  written, and when every row was last compared (`full_compared_at`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import duckdb

from chaser_pipeline.db import short_hash, table_fingerprint, transaction
from chaser_pipeline.ledger.contract import LedgerTable

EPOCH = datetime(1900, 1, 1)
STATE_TABLE = "landing._extract_state"
DELETED_KEYS_TABLE = "landing.deleted_keys"
DELETED_KEYS_COLUMNS = (("table_name", "VARCHAR"), ("key", "VARCHAR"), ("deleted_at", "TIMESTAMP"))


@dataclass(frozen=True)
class ExtractState:
    """What the last extract of a table left behind; all None before the first one."""

    cursor: datetime | None = None
    landed_at: datetime | None = None
    full_compared_at: datetime | None = None


@dataclass(frozen=True)
class MergeResult:
    inserted: int  # keys new to the landed table
    updated: int  # keys whose rows changed
    unchanged: int  # keys fetched again with identical rows
    changed_behind_cursor: int  # changed keys no incremental read would have fetched
    null_key_rows: int  # landed rows with a NULL key, after the merge
    deleted_new: int  # keys found gone from the warehouse by this run
    deleted_returned: int  # deleted keys back in the warehouse
    deleted_total: int  # keys of this table in landing.deleted_keys, after the merge
    row_count: int  # rows in the landed table afterwards
    cursor: datetime | None
    # False: the merge would have changed what is landed and was rolled back (a probe's
    # `land_changes=False`); the counts say what it would have landed
    kept: bool = True

    @property
    def changes(self) -> int:
        """Keys this merge landed (or would have): new, changed, deleted or back."""
        return self.inserted + self.updated + self.deleted_new + self.deleted_returned


def ensure_landing(con: duckdb.DuckDBPyConnection, table: LedgerTable) -> None:
    """Create the landing tables, or add what an older version of the pipeline did not have."""
    con.execute("create schema if not exists landing")
    columns = ", ".join(f"{c} {t}" for c, t in table.columns)
    con.execute(f"create table if not exists landing.{table.name} ({columns})")
    for column, kind in table.columns:
        # Optional columns are last in the contract, so ADD COLUMN keeps the contract's order.
        con.execute(f"alter table landing.{table.name} add column if not exists {column} {kind}")
    con.execute(
        f"create table if not exists {STATE_TABLE} ("
        "table_name varchar primary key, cursor_at timestamp, landed_at timestamp)"
    )
    con.execute(f"alter table {STATE_TABLE} add column if not exists full_compared_at timestamp")
    ensure_deleted_keys(con)


def ensure_deleted_keys(con: duckdb.DuckDBPyConnection) -> None:
    """`landing.deleted_keys`, empty until an extract finds a key gone from the warehouse."""
    con.execute("create schema if not exists landing")
    columns = ", ".join(f"{c} {t}" for c, t in DELETED_KEYS_COLUMNS)
    con.execute(f"create table if not exists {DELETED_KEYS_TABLE} ({columns})")


def read_state(con: duckdb.DuckDBPyConnection, table: LedgerTable) -> ExtractState:
    ensure_landing(con, table)
    row = con.execute(
        f"select cursor_at, landed_at, full_compared_at from {STATE_TABLE} where table_name = ?",
        [table.name],
    ).fetchall()
    # fetchall, not fetchone: DuckDB refuses to register a stream while a result is unfinished.
    return ExtractState(*row[0]) if row else ExtractState()


def incremental_since(cursor: datetime | None, overlap: timedelta) -> datetime:
    """The lower bound of an incremental read: the cursor minus the overlap (late commits)."""
    return EPOCH if cursor is None else cursor - overlap


class _WouldChange(Exception):
    """Raised inside a probe's merge transaction to roll it back."""

    def __init__(self, result: MergeResult) -> None:
        super().__init__("the merge would change what is landed")
        self.result = result


def merge(
    con: duckdb.DuckDBPyConnection,
    table: LedgerTable,
    incoming: str,
    *,
    now: datetime,
    full: bool,
    warehouse_keys: str | None,
    null_key_rows: str | None,
    behind: datetime | None = None,
    land_changes: bool = True,
) -> MergeResult:
    """Merge the staged table `incoming` into `landing.<table>` in one transaction.

    `full`: `incoming` holds every row of the warehouse, so a landed row it lacks for a key it
    has is stale too (a duplicate gone). `warehouse_keys`: a relation with column `key` holding
    every key the warehouse has (None: no key-set comparison). `null_key_rows`: a relation whose
    rows replace every landed NULL-key row (None: they stay). `behind`: an incremental read's
    lower bound, to count changes with an older `updated_at` (only meaningful when `full`).
    `land_changes=False`: a probe; when the merge would change what is landed (rows, NULL-key
    rows or deleted keys: the landed version), it is rolled back whole and the result says so
    (`kept=False`); when it changes nothing, the extract state it records is kept.
    """
    target, key = f"landing.{table.name}", table.key
    keyed = f"{key} is not null"
    try:
        with transaction(con):
            version_before = None if land_changes else landed_version(con, table)
            ((landed_before,),) = con.execute(f"select count(*) from {target}").fetchall()
            (fetched_keys,) = con.execute(
                f"select count(distinct {key}) from {incoming} where {keyed}"
            ).fetchall()[0]
            if landed_before:
                # Only landed rows of incoming keys are compared, so a small batch stays cheap.
                _find_changed(con, target, key, incoming, full=full)
                (changed,) = con.execute("select count(*) from _landing_changed").fetchall()[0]
                (inserted,) = con.execute(
                    f"select count(*) from _landing_changed c "
                    f"where not exists (select 1 from {target} t where t.{key} = c.{key})"
                ).fetchall()[0]
            else:
                # Nothing landed yet (a first extract, or a run-local DuckDB rebuilt): every keyed
                # row is new and there is nothing to compare with (the comparison hashes every
                # column of every row: 2.0 of the 2.4 s of landing 2M payments); every incoming
                # key is a changed one, listed only when the rows behind the cursor are counted
                changed = inserted = fetched_keys
                if behind is not None:
                    con.execute(
                        f"create or replace temp table _landing_changed as "
                        f"select distinct {key} from {incoming} where {keyed}"
                    )
            changed_behind = 0
            if behind is not None:
                (changed_behind,) = con.execute(
                    f"select count(*) from _landing_changed c where not exists ("
                    f"select 1 from {incoming} i where i.{key} = c.{key} and i.updated_at > ?)",
                    [behind],
                ).fetchall()[0]
            if landed_before:
                con.execute(
                    f"delete from {target} where {key} in (select {key} from _landing_changed)"
                )
                con.execute(
                    f"insert into {target} select * from {incoming} i "
                    f"where i.{key} in (select {key} from _landing_changed)"
                )
            else:
                con.execute(f"insert into {target} select * from {incoming} where {keyed}")
            if null_key_rows is not None:
                con.execute(f"delete from {target} where {key} is null")
                con.execute(f"insert into {target} select * from {null_key_rows}")
            deleted = None
            if warehouse_keys:
                deleted = _record_deleted_keys(
                    con, table, warehouse_keys, now, landed_before=landed_before > 0
                )
            row_count, null_keys, cursor = con.execute(
                f"select count(*), count(*) filter (where {key} is null), "
                f"max(updated_at) filter (where updated_at <= ?) from {target}",
                [now],
            ).fetchall()[0]
            (deleted_total,) = con.execute(
                f"select count(*) from {DELETED_KEYS_TABLE} where table_name = ?", [table.name]
            ).fetchall()[0]
            con.execute(
                f"insert or replace into {STATE_TABLE} (table_name, cursor_at, landed_at, "
                "full_compared_at) values ($table, $cursor, $now, "
                f"case when $full then $now else (select full_compared_at from {STATE_TABLE} "
                "where table_name = $table) end)",
                {"table": table.name, "cursor": cursor, "now": now, "full": full},
            )
            con.execute("drop table if exists _landing_changed")
            new, returned = deleted or (0, 0)
            result = MergeResult(
                inserted=inserted,
                updated=changed - inserted,
                unchanged=fetched_keys - changed,
                changed_behind_cursor=changed_behind,
                null_key_rows=null_keys,
                deleted_new=new,
                deleted_returned=returned,
                deleted_total=deleted_total,
                row_count=row_count,
                cursor=cursor,
            )
            if version_before is not None and landed_version(con, table) != version_before:
                raise _WouldChange(result)
    except _WouldChange as rolled_back:
        return replace(rolled_back.result, kept=False)
    return result


def landed_version(con: duckdb.DuckDBPyConnection, table: LedgerTable) -> str:
    """The landed table's data version: unchanged when an extract landed nothing, so the UI
    (and the models, which fingerprint their inputs the same way) see nothing new downstream."""
    parts = [table_fingerprint(con, f"landing.{table.name}")]
    # Keys gone from the warehouse are recorded beside the landed rows, where the ledger stage
    # keeps them: a deletion is a change too.
    parts.append(table_fingerprint(con, DELETED_KEYS_TABLE))
    return short_hash(parts)


def _find_changed(
    con: duckdb.DuckDBPyConnection, target: str, key: str, incoming: str, *, full: bool
) -> None:
    """`_landing_changed`: the keys whose incoming rows differ from their landed rows (and, when
    `full`, whose landed rows include one the warehouse no longer has)."""
    keyed = f"{key} is not null"
    landed = f"select * from {target} t where exists (select 1 from {incoming} i where i.{key} = t.{key})"
    sql = (
        f"create or replace temp table _landing_changed as select distinct {key} from "
        f"(select * from {incoming} where {keyed} except {landed})"
    )
    if full:
        sql += (
            f" union select distinct {key} from "
            f"({landed} except select * from {incoming} where {keyed})"
        )
    con.execute(sql)


def _record_deleted_keys(
    con: duckdb.DuckDBPyConnection,
    table: LedgerTable,
    warehouse_keys: str,
    now: datetime,
    *,
    landed_before: bool,
) -> tuple[int, int]:
    """Keys landed but no longer in the warehouse join `deleted_keys` (their last row stays in
    `landing.<table>`); deleted keys the warehouse has again leave it. Returns (new, returned).
    `warehouse_keys` always holds the incoming keys, so when nothing was landed before this
    merge no landed key can be missing from it."""
    target, key = f"landing.{table.name}", table.key
    (returned,) = con.execute(
        f"delete from {DELETED_KEYS_TABLE} d where d.table_name = ? "
        f"and exists (select 1 from {warehouse_keys} w where w.key = d.key)",
        [table.name],
    ).fetchall()[0]
    if not landed_before:
        return 0, returned
    (new,) = con.execute(
        f"""insert into {DELETED_KEYS_TABLE}
        select ?, gone.key, ? from (
            select distinct {key} as key from {target} t
            where {key} is not null
            and not exists (select 1 from {warehouse_keys} w where w.key = t.{key})
        ) gone
        where not exists (
            select 1 from {DELETED_KEYS_TABLE} d where d.table_name = ? and d.key = gone.key
        )""",
        [table.name, now, table.name],
    ).fetchall()[0]
    return new, returned
