"""DuckDB helpers shared by landing, models and the sync engine."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime

import duckdb

# The window that covers every document: what an unpartitioned build or plan binds.
WHOLE_HISTORY: tuple[date, date] = (date(1, 1, 1), date(9999, 12, 31))


def utc_now() -> datetime:
    """Now, as the naive UTC timestamp the pipeline stores in DuckDB."""
    return datetime.now(UTC).replace(tzinfo=None)


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
