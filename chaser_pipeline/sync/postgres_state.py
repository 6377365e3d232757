"""The sync state in PostgreSQL (CHASER_STATE_URL), written through ADBC's Arrow-native driver.

PostgreSQL holds the truth: every answer, attempted key, target and budget window is written
there (journal appends of Arrow batches, one commit each), folded there, and read back into the
pipeline's DuckDB (the working copy the plan reads) before each plan. A run that starts in an
empty working folder therefore knows everything earlier runs sent. One sync sends to a target at
a time: a session-level advisory lock per target, which holds across machines.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from chaser_pipeline.db import transaction
from chaser_pipeline.settings import ConfigError, Secret, mask_url
from chaser_pipeline.sync.state import (
    _FOLD,
    ATTEMPTED_TABLE,
    CREDENTIALS_TABLE,
    JOURNAL_TABLE,
    LOG_TABLE,
    REQUESTS_TABLE,
    SCHEMA,
    STATE_COLUMNS,
    STATE_TABLE,
    TARGET_COLUMNS,
    TARGETS_TABLE,
    WAIVER_TABLE,
    StateLockTimeout,
    StateWriter,
    SyncState,
    Target,
    _ddl,
    _record_target_duckdb,
    append_duckdb,
    prepare_duckdb,
    replacement_rows,
)

# Serialises the DDL of concurrent first runs (CREATE ... IF NOT EXISTS is not race-free).
_DDL_LOCK = "chaser_pipeline:ddl"
_FOLD_LOCK = "chaser_pipeline:fold"


def connect(url: Secret) -> Any:
    """An ADBC connection to CHASER_STATE_URL; a failure names the variable, never the password."""
    import adbc_driver_postgresql.dbapi as pg

    try:
        return pg.connect(url.get())
    except Exception as exc:  # the driver's message may quote the URL: never re-raise it
        raise ConfigError(
            f"Cannot connect to the PostgreSQL sync state {mask_url(url.get())} "
            f"({type(exc).__name__}); check CHASER_STATE_URL"
        ) from None


class _PostgresWriter(StateWriter):
    """Appends from the sender's writer thread, on its own connection."""

    def __init__(self, url: Secret) -> None:
        self.conn = connect(url)

    def _ingest(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows:
            with self.conn.cursor() as cur:
                cur.adbc_ingest(table.split(".")[1], rows, mode="append", db_schema_name=SCHEMA)
            self.conn.commit()

    def journal(self, rows: pa.Table) -> None:
        self._ingest(JOURNAL_TABLE, rows)

    def attempted(self, rows: pa.Table) -> None:
        self._ingest(ATTEMPTED_TABLE, rows)

    def log(self, rows: pa.Table) -> None:
        self._ingest(LOG_TABLE, rows)

    def close(self) -> None:
        self.conn.close()


class PostgresState(SyncState):
    """The sync tables in PostgreSQL, with a working copy in the pipeline's DuckDB."""

    def __init__(self, con: duckdb.DuckDBPyConnection, url: Secret) -> None:
        super().__init__(con)
        self._url = url
        self._prepare_remote()

    @property
    def display(self) -> str:
        return f"PostgreSQL at {mask_url(self._url.get())} (CHASER_STATE_URL)"

    def _prepare_remote(self) -> None:
        """Create the sync tables if they are missing, at every opening (a few milliseconds): no
        process-wide memory of it, so a schema dropped or restored under a long-lived code server
        is made again rather than failing every later run."""
        conn = connect(self._url)
        try:
            with conn.cursor() as cur:
                cur.execute("select pg_advisory_xact_lock(hashtextextended($1, 0))", [_DDL_LOCK])
                for statement in _ddl("postgresql"):
                    cur.execute(statement)
                # tables of versions before the route was kept; an ALTER would take the table's
                # exclusive lock at every opening, so only when the column is missing
                cur.execute(
                    """select table_name from information_schema.tables as t
                    where table_schema = $1 and table_name in ('state', 'journal')
                    and not exists (select 1 from information_schema.columns as c
                        where c.table_schema = t.table_schema and c.table_name = t.table_name
                        and c.column_name = 'route')""",
                    [SCHEMA],
                )
                for (table,) in cur.fetchall():
                    cur.execute(f"alter table {SCHEMA}.{table} add column route varchar")
            conn.commit()
        finally:
            conn.close()

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        conn = connect(self._url)
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def lock(self, target: Target, *, wait_seconds: float) -> Iterator[None]:
        with self._session() as conn, conn.cursor() as cur:
            deadline = time.monotonic() + wait_seconds
            while True:
                cur.execute("select pg_try_advisory_lock(hashtextextended($1, 0))", [target.key])
                (held,) = cur.fetchone()
                conn.commit()
                if held:
                    break
                if time.monotonic() >= deadline:
                    raise StateLockTimeout(
                        f"another sync is sending to {target.display} and did not finish within "
                        f"{wait_seconds:.0f} s; this one sent nothing: run it again once the "
                        "other has finished"
                    )
                time.sleep(0.2)  # another worker holds the lock: poll until the deadline
            try:
                yield
            finally:
                cur.execute("select pg_advisory_unlock(hashtextextended($1, 0))", [target.key])
                conn.commit()

    def _fold_remote(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute(f"select count(*) from {JOURNAL_TABLE}")
            if cur.fetchone()[0]:
                # one fold at a time across workers: two would apply the same answers twice
                cur.execute("select pg_advisory_xact_lock(hashtextextended($1, 0))", [_FOLD_LOCK])
                for statement in _FOLD:
                    cur.execute(statement)
        conn.commit()

    def fold(self) -> None:
        with self._session() as conn:
            self._fold_remote(conn)

    def refresh(self, target: Target) -> None:
        """Fold in PostgreSQL, then make the working copy `target`'s rows only: the models read
        what Chaser holds from it (the holdings view), and other pipelines sharing the
        database send to organisations of their own."""
        prepare_duckdb(self.con)
        with self._session() as conn:
            self._fold_remote(conn)
            tables = {}
            with conn.cursor() as cur:
                # the working copy's own columns, named: a newer version's extra column in the
                # shared database is none of this one's business
                for table, columns in (
                    (STATE_TABLE, STATE_COLUMNS),
                    (ATTEMPTED_TABLE, ("target", "object", "key")),
                    (TARGETS_TABLE, TARGET_COLUMNS),
                ):
                    cur.execute(
                        f"select {', '.join(columns)} from {table} where target = $1",
                        [target.key],
                    )
                    tables[table] = cur.fetch_arrow_table()
            conn.commit()
        with transaction(self.con):
            for table, rows in tables.items():
                self.con.execute(f"delete from {table}")
                append_duckdb(self.con, table, rows)

    def writer(self) -> StateWriter:
        return _PostgresWriter(self._url)

    def replace(self, target: Target, object_name: str, rows: pa.Table, *, now: datetime) -> None:
        state_rows, attempted = replacement_rows(target, object_name, rows, now)
        with self._session() as conn, conn.cursor() as cur:
            for table in (STATE_TABLE, ATTEMPTED_TABLE):
                cur.execute(
                    f"delete from {table} where target = $1 and object = $2",
                    [target.key, object_name],
                )
            for table, data in ((STATE_TABLE, state_rows), (ATTEMPTED_TABLE, attempted)):
                if data.num_rows:
                    cur.adbc_ingest(table.split(".")[1], data, mode="append", db_schema_name=SCHEMA)
            conn.commit()
        self.refresh(target)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._session() as conn, conn.cursor() as cur:
            cur.execute(sql, list(params) if params else None)
            rows = cur.fetchall()
            conn.commit()
        return rows

    def query_arrow(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        with self._session() as conn, conn.cursor() as cur:
            cur.execute(sql, list(params) if params else None)
            rows = cur.fetch_arrow_table()
            conn.commit()
        return rows

    def record_target(
        self, target: Target, *, run_id: str, now: datetime, credentials: str | None = None
    ) -> bool:
        with self._session() as conn, conn.cursor() as cur:
            cur.execute(
                f"""insert into {TARGETS_TABLE} (target, url, organisation_id, organisation_name,
                    first_seen_at, last_checked_at, checked_run_id)
                values ($1, $2, $3, $4, $5, $5, $6)
                on conflict (target) do update set last_checked_at = excluded.last_checked_at,
                    checked_run_id = excluded.checked_run_id,
                    organisation_name = excluded.organisation_name
                returning (xmax = 0)""",
                [
                    target.key,
                    target.url,
                    target.organisation_id,
                    target.organisation_name,
                    now,
                    run_id,
                ],
            )
            (new,) = cur.fetchone()
            if credentials is not None:
                cur.execute(
                    f"""insert into {CREDENTIALS_TABLE} (credentials, target, last_reached_at)
                    values ($1, $2, $3)
                    on conflict (credentials) do update set target = excluded.target,
                        last_reached_at = excluded.last_reached_at""",
                    [credentials, target.key, now],
                )
            conn.commit()
        _record_target_duckdb(self.con, target, run_id, now, credentials)
        return bool(new)

    def recent_requests(self, target: Target) -> list[float]:
        with self._session() as conn, conn.cursor() as cur:
            cur.execute(
                f"select sent_at from {REQUESTS_TABLE} where target = $1 and sent_at > $2 order by sent_at",
                [target.key, time.time() - 60],
            )
            rows = cur.fetchall()
            conn.commit()
        return [r[0] for r in rows]

    def note_waiver_over(self, target: Target, at: float) -> None:
        with self._session() as conn, conn.cursor() as cur:
            cur.execute(
                f"insert into {WAIVER_TABLE} values ($1, $2) on conflict do nothing",
                [target.key, at],
            )
            conn.commit()

    def save_requests(self, target: Target, times: Sequence[float]) -> None:
        with self._session() as conn, conn.cursor() as cur:
            cur.execute(f"delete from {REQUESTS_TABLE} where target = $1", [target.key])
            if times:
                cur.adbc_ingest(
                    "requests",
                    pa.table({"target": [target.key] * len(times), "sent_at": list(times)}),
                    mode="append",
                    db_schema_name=SCHEMA,
                )
            conn.commit()
