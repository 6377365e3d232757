"""DuckDB helpers shared by landing, models and the sync engine: transactions, the clock, and
table fingerprints."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import duckdb

# The window that covers every document: what an unpartitioned build or plan binds.
WHOLE_HISTORY: tuple[date, date] = (date(1, 1, 1), date(9999, 12, 31))


def document_window(
    start: date, end: date, history_start: date, today: date | None = None
) -> tuple[date, date]:
    """The issue dates a monthly partition [start, end) holds. The first partition also holds
    every document issued before the history start (CHASER_HISTORY_START), and the partition
    of the current month (the last there is) every document dated after it, so no document is
    left out by the partitioning: an invoice issued ahead of time is in no month Dagster has
    yet, and the changed-months sensor dropped it."""
    today = today or utc_now().date()
    return (
        WHOLE_HISTORY[0] if start <= history_start else start,
        WHOLE_HISTORY[1] if today < end else end,
    )


def month_key(day: date | datetime) -> str:
    """The monthly partition key (YYYY-MM-01) of a day."""
    return f"{day:%Y-%m}-01"


def utc_now() -> datetime:
    """Now, as the naive UTC timestamp the pipeline stores in DuckDB."""
    return datetime.now(UTC).replace(tzinfo=None)


def clock_from(as_of: str) -> Callable[[], datetime]:
    """A run's clock: fixed at `as_of` (ISO, read as UTC) when given, else the real one."""
    if as_of:
        fixed = datetime.fromisoformat(as_of)
        if fixed.tzinfo is not None:  # an offset given: the same instant in UTC
            fixed = fixed.astimezone(UTC)
        fixed = fixed.replace(tzinfo=None)
        return lambda: fixed
    return utc_now


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All statements in the body commit together, or none do."""
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether `schema.table` (or a bare name, in `main`) exists, as a table or a view."""
    schema, _, name = table.rpartition(".")
    ((n,),) = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = $schema and table_name = $name",
        {"schema": schema or "main", "name": name},
    ).fetchall()
    return n > 0


def table_fingerprint(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """What a table holds, in a few tens of characters: its columns, its row count and the sum of
    its rows' hashes (row order does not matter); "missing" when it does not exist.

    Two fingerprints are equal when the tables hold the same rows. DuckDB hashes a few million
    rows in a few tens of milliseconds."""
    if not table_exists(con, table):
        return "missing"
    schema, _, name = table.rpartition(".")
    relation = f'"{schema or "main"}"."{name}"'
    columns = con.execute(f"describe {relation}").fetchall()
    ((rows, total),) = con.execute(
        f"select count(*), coalesce(sum(hash(t)), 0)::varchar from {relation} as t"
    ).fetchall()
    shape = ",".join(f"{c[0]} {c[1]}" for c in columns)
    return f"{shape}|{rows}|{total}"


def short_hash(parts: list[str]) -> str:
    """A version string of a few parts: 24 hex characters of their SHA-256."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]
