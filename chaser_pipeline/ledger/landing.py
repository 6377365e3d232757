"""Landing an extract in the pipeline's DuckDB: incremental by updated_at, merged by key.

The first run copies everything. Later runs fetch rows changed since the stored cursor minus an
overlap, and merge them by key in one transaction: keys whose rows changed are replaced by the
incoming rows (all of them, so duplicate keys in the source stay visible to the models), and a
re-run of the same window changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from chaser_pipeline.db import transaction
from chaser_pipeline.ledger.contract import LedgerTable, normalise_batches, validate_schema

EPOCH = datetime(1900, 1, 1)
STATE_TABLE = "landing._extract_state"


@dataclass(frozen=True)
class LandingResult:
    fetched: int
    inserted: int  # keys new to the landed table
    updated: int  # keys whose rows changed
    unchanged: int  # keys fetched again with identical rows (the overlap)
    deleted: int  # rows dropped by a full refresh because the source no longer has them
    row_count: int  # rows in the landed table afterwards
    cursor: datetime | None  # newest updated_at landed
    since: datetime  # the lower bound the query ran with


def ensure_landing_table(con: duckdb.DuckDBPyConnection, table: LedgerTable) -> None:
    con.execute("create schema if not exists landing")
    columns = ", ".join(f"{c} {t}" for c, t in table.columns)
    con.execute(f"create table if not exists landing.{table.name} ({columns})")
    con.execute(
        f"create table if not exists {STATE_TABLE} ("
        "table_name varchar primary key, cursor_at timestamp, landed_at timestamp)"
    )


def stored_cursor(con: duckdb.DuckDBPyConnection, table: LedgerTable) -> datetime | None:
    ensure_landing_table(con, table)
    row = con.execute(
        f"select cursor_at from {STATE_TABLE} where table_name = ?", [table.name]
    ).fetchone()
    return row[0] if row else None


def fetch_since(cursor: datetime | None, overlap: timedelta, full_refresh: bool) -> datetime:
    """The lower bound for the next query: everything on a first run or a full refresh."""
    if full_refresh or cursor is None:
        return EPOCH
    return cursor - overlap


def land(
    con: duckdb.DuckDBPyConnection,
    table: LedgerTable,
    reader: pa.RecordBatchReader,
    *,
    since: datetime,
    full_refresh: bool,
    now: datetime,
) -> LandingResult:
    """Validate the stream's columns against the contract, then merge it in one transaction."""
    validate_schema(table, reader.schema)  # before anything is written
    ensure_landing_table(con, table)
    target = f"landing.{table.name}"
    key = table.key
    casts = ", ".join(f"cast({c} as {t}) as {c}" for c, t in table.columns)
    con.register("extract_stream", normalise_batches(reader))
    try:
        with transaction(con):
            con.execute(
                f"create or replace temp table incoming as select {casts} from extract_stream"
            )
            (fetched,) = con.execute("select count(*) from incoming").fetchone()
            # Keys with at least one row not already landed verbatim: only these are rewritten.
            con.execute(
                f"create or replace temp table changed_keys as "
                f"select distinct {key} from (select * from incoming except select * from {target})"
            )
            (inserted,) = con.execute(
                f"select count(*) from changed_keys where {key} not in (select {key} from {target})"
            ).fetchone()
            (changed,) = con.execute("select count(*) from changed_keys").fetchone()
            (fetched_keys,) = con.execute(f"select count(distinct {key}) from incoming").fetchone()
            deleted = 0
            if full_refresh:
                (deleted,) = con.execute(
                    f"select count(*) from {target} where {key} not in (select {key} from incoming)"
                ).fetchone()
                con.execute(f"delete from {target} where {key} not in (select {key} from incoming)")
            con.execute(f"delete from {target} where {key} in (select {key} from changed_keys)")
            con.execute(
                f"insert into {target} select * from incoming "
                f"where {key} in (select {key} from changed_keys)"
            )
            row_count, cursor = con.execute(
                f"select count(*), max(updated_at) from {target}"
            ).fetchone()
            con.execute(
                f"insert or replace into {STATE_TABLE} values (?, ?, ?)", [table.name, cursor, now]
            )
            con.execute("drop table incoming")
            con.execute("drop table changed_keys")
    finally:
        con.unregister("extract_stream")
    return LandingResult(
        fetched=fetched,
        inserted=inserted,
        updated=changed - inserted,
        unchanged=fetched_keys - changed,
        deleted=deleted,
        row_count=row_count,
        cursor=cursor,
        since=since,
    )
