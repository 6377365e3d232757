"""Reading the source warehouse as a stream of Arrow record batches (DuckDB file or PostgreSQL).

PostgreSQL goes through ADBC's driver, which returns Arrow batches that DuckDB reads directly:
rows never pass through Python one tuple at a time. The DuckDB postgres extension is not used
(extensions are downloaded at run time, which cannot be relied on).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa

from chaser_pipeline.paths import data_dir
from chaser_pipeline.settings import ConfigError, WarehouseURL, parse_warehouse_url

log = logging.getLogger(__name__)

BATCH_ROWS = 100_000
DEMO_SEED = 42


def demo_warehouse_path() -> Path:
    return data_dir() / "demo_warehouse.duckdb"


def ensure_demo_warehouse(path: Path | None = None, *, scale: float = 1.0) -> Path:
    """Create the bundled demo warehouse on first use (once, even with parallel steps)."""
    path = path or demo_warehouse_path()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            from chaser_pipeline.demo.generator import generate_demo_warehouse

            log.info("No CHASER_WAREHOUSE_URL: creating the demo warehouse at %s", path)
            generate_demo_warehouse(path, scale=scale, seed=DEMO_SEED)
    return path


class ExtractQueryError(RuntimeError):
    """An extract query could not run against the warehouse; names the SQL file to edit, or the
    variable (CHASER_WAREHOUSE_URL) when the warehouse itself is at fault."""


# PostgreSQL SQLSTATE classes that are the connection's or the server's fault, not the query's.
_SERVER_STATES = ("08", "53", "57P", "58")


class Warehouse:
    """A source warehouse: `session()` opens one connection for an extract's queries."""

    def __init__(self, url: WarehouseURL | None) -> None:
        self.url = url

    @classmethod
    def from_url(cls, raw: str | None) -> Warehouse:
        return cls(parse_warehouse_url(raw) if raw else None)

    @property
    def display(self) -> str:
        """Where the data comes from, safe to log (passwords masked)."""
        if self.url is None:
            return f"demo warehouse ({demo_warehouse_path()})"
        return self.url.display

    @property
    def kind(self) -> str:
        return "duckdb" if self.url is None else self.url.kind

    def check(self) -> None:
        """Fail before any data moves if the warehouse cannot be reached."""
        if self.url is not None and self.url.kind == "duckdb" and not self.url.duckdb_path.exists():
            raise ConfigError(
                f"CHASER_WAREHOUSE_URL points at a DuckDB file that does not exist: {self.url.duckdb_path}"
            )

    @contextlib.contextmanager
    def session(self) -> Iterator[WarehouseSession]:
        """One connection for several queries. PostgreSQL reads them all from one snapshot
        (a read-only REPEATABLE READ transaction), so a key set and the rows agree."""
        self.check()
        if self.url is None or self.url.kind == "duckdb":
            with self._duckdb() as con:
                yield WarehouseSession(self, duckdb_con=con)
        else:
            with self._postgres() as conn:
                yield WarehouseSession(self, pg_conn=conn)

    @contextlib.contextmanager
    def stream(
        self, sql: str, since: datetime, *, sql_file: str = "the extract query"
    ) -> Iterator[pa.RecordBatchReader]:
        """Run one extract query with its cursor bound as $1; yield an Arrow batch stream."""
        with self.session() as session, session.stream(sql, since, sql_file=sql_file) as reader:
            yield reader

    @contextlib.contextmanager
    def _duckdb(self) -> Iterator[Any]:
        import duckdb

        path = self.url.duckdb_path if self.url else ensure_demo_warehouse()
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise ConfigError(
                f"Cannot open the DuckDB warehouse {path}: {_first_line(exc)}. Check "
                "CHASER_WAREHOUSE_URL (a DuckDB file that no other process is writing to)."
            ) from None
        try:
            # The cursor is naive UTC; a TIMESTAMPTZ column compared with `$1::timestamp`
            # reads it in the session time zone (the process's, by default), so pin UTC.
            # ICU, which provides the setting, is built into the duckdb Python wheel.
            con.execute("set TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def _postgres(self) -> Iterator[Any]:
        import adbc_driver_postgresql.dbapi as pg

        try:
            conn = pg.connect(self.url.raw.get(), autocommit=True)
        except Exception as exc:  # the driver's message may quote the URL: never re-raise it
            raise ConfigError(
                f"Cannot connect to the PostgreSQL warehouse {self.url.display}: "
                f"{_sentence(self.scrub(_postgres_reason(exc)))} Check CHASER_WAREHOUSE_URL "
                "(host, port, database, user and password)."
            ) from None
        try:
            cur = conn.cursor()
            try:
                # As for DuckDB: the naive UTC cursor against a timestamptz column is read in
                # the session time zone (the server's or database's default), so pin UTC.
                cur.execute("set time zone 'UTC'")
                cur.execute("begin transaction isolation level repeatable read read only")
            except Exception as exc:
                raise ConfigError(
                    f"The PostgreSQL warehouse {self.url.display} refused to start a read-only "
                    f"session: {_sentence(self.scrub(_postgres_reason(exc)))} "
                    "Check CHASER_WAREHOUSE_URL."
                ) from None
            yield conn
        finally:
            conn.close()

    def scrub(self, text: str) -> str:
        """A driver message with any password from the URL masked."""
        if self.url is None:
            return text
        password = urlsplit(self.url.raw.get()).password
        text = text.replace(self.url.raw.get(), self.url.display)
        return text.replace(password, "***") if password else text

    def query_error(self, exc: BaseException, sql_file: str) -> Exception:
        """What a user reads when a query fails: the SQL file to edit, or CHASER_WAREHOUSE_URL
        when the connection or the server is at fault."""
        state = str(getattr(exc, "sqlstate", "") or "")
        reason = _sentence(
            self.scrub(_postgres_reason(exc) if self.kind == "postgresql" else _first_line(exc))
        )
        if self.kind == "postgresql" and (
            state.startswith(_SERVER_STATES) or (not state and _is_connection_failure(exc))
        ):
            return ExtractQueryError(
                f"The PostgreSQL warehouse {self.display} failed while running {sql_file}: "
                f"{reason} Check that the server is up and CHASER_WAREHOUSE_URL is right, "
                "then run again."
            )
        if state == "42501":
            return ExtractQueryError(
                f"{sql_file} failed against {self.display}: {reason} Grant the user in "
                f"CHASER_WAREHOUSE_URL SELECT on the tables {sql_file} reads, or edit {sql_file}."
            )
        return ExtractQueryError(
            f"{sql_file} failed against {self.display}: {reason} "
            f"Edit {sql_file} so it returns the contract's columns from your warehouse."
        )


class WarehouseSession:
    """An open warehouse connection; `stream` runs one query at a time on it."""

    def __init__(self, warehouse: Warehouse, *, duckdb_con: Any = None, pg_conn: Any = None):
        self.warehouse = warehouse
        self._duckdb = duckdb_con
        self._pg = pg_conn

    @contextlib.contextmanager
    def stream(
        self, sql: str, since: datetime, *, sql_file: str = "the extract query"
    ) -> Iterator[pa.RecordBatchReader]:
        """Run an extract query with its cursor bound as $1; yield an Arrow batch stream. Read
        it to the end before the next query. A failure while it is read is the caller's to map
        (`Warehouse.query_error`)."""
        import adbc_driver_manager
        import duckdb

        try:
            if self._duckdb is not None:
                reader = self._duckdb.sql(sql, params=[since]).to_arrow_reader(BATCH_ROWS)
            else:
                cur = self._pg.cursor()
                literal = with_cursor_literal(sql, since)
                if literal is not None:
                    cur.execute(literal)  # streamed by COPY: memory stays flat
                else:
                    cur.execute(sql, parameters=[since.isoformat(sep=" ")])
                reader = cur.fetch_record_batch()
        except (duckdb.Error, adbc_driver_manager.Error) as exc:
            raise self.warehouse.query_error(exc, sql_file) from None
        yield reader


def with_cursor_literal(sql: str, since: datetime) -> str | None:
    """The extract query with its cursor parameter `$1` written in as a quoted literal, or None
    when the query cannot be tokenized (it is then bound as a parameter).

    ADBC's PostgreSQL driver streams a query's rows with COPY only when nothing is bound: with a
    parameter it holds the whole result in memory before the first batch (6.1M payments: 1.7 GB
    before a row was read, 2.1 GB peak; with the literal 0.16 GB). The value is the pipeline's
    own timestamp, never user text, and a quoted literal takes the type the query gives `$1`
    (`$1::timestamp`) as the bound text did. Only `$1` tokens are replaced: never one inside a
    string or a comment, nor `$10`."""
    from sqlglot.dialects.postgres import Postgres
    from sqlglot.errors import SqlglotError
    from sqlglot.tokens import TokenType

    try:
        tokens = Postgres().tokenize(sql)
    except SqlglotError:
        return None
    value = f"'{since.isoformat(sep=' ')}'"
    pieces, position = [], 0
    for token, following in itertools.pairwise(tokens):
        if (
            token.token_type == TokenType.PARAMETER
            and following.token_type == TokenType.NUMBER
            and following.text == "1"
            and following.start == token.end + 1
        ):
            pieces += [sql[position : token.start], value]
            position = following.end + 1
    return "".join([*pieces, sql[position:]])


def _sentence(text: str) -> str:
    """Text ending as a sentence does, so the advice after it reads on."""
    return text if text.endswith((".", "?", "!")) else f"{text}."


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _postgres_reason(exc: BaseException) -> str:
    """libpq's own words without the driver's prefixes and the echoed query: 'relation "x" does
    not exist', 'connection to server at "h", port 1 failed: Connection refused'."""
    text = str(exc).strip()
    text = text.split("\nQuery was:", 1)[0]
    for prefix in ("Failed to connect:", "Failed to prepare query:", "Failed to execute query:"):
        if prefix in text:
            text = text.split(prefix, 1)[1]
    text = text.replace("could not begin COPY:", "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("LINE ", "^"))]
    reason = "; ".join(lines) or type(exc).__name__
    reason = reason.replace("ERROR:  ", "").replace("FATAL:  ", "")
    state = getattr(exc, "sqlstate", None)
    return f"{reason} (SQLSTATE {state})" if state else reason


def _is_connection_failure(exc: BaseException) -> bool:
    import adbc_driver_manager

    return isinstance(exc, adbc_driver_manager.OperationalError)
