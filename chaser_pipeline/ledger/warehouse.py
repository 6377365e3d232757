"""Reading the source warehouse as a stream of Arrow record batches (DuckDB file or PostgreSQL).

PostgreSQL goes through ADBC's driver, which returns Arrow batches that DuckDB reads directly:
rows never pass through Python one tuple at a time. The DuckDB postgres extension is not used
(extensions are downloaded at run time, which cannot be relied on).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

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
    """An extract query could not run against the warehouse; names the SQL file to edit."""


class Warehouse:
    """A source warehouse; `stream(sql, since)` yields a RecordBatchReader of the query's rows."""

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
    def stream(
        self, sql: str, since: datetime, *, sql_file: str = "the extract query"
    ) -> Iterator[pa.RecordBatchReader]:
        """Run an extract query with its cursor bound as $1; yield an Arrow batch stream."""
        self.check()
        with self._query_errors(sql_file), self._stream(sql, since) as reader:
            yield reader

    @contextlib.contextmanager
    def _query_errors(self, sql_file: str) -> Iterator[None]:
        import adbc_driver_manager
        import duckdb

        try:
            yield
        except (duckdb.Error, adbc_driver_manager.Error) as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ExtractQueryError(
                f"{sql_file} failed against {self.display}: {first_line}. "
                f"Edit {sql_file} so it returns the contract's columns from your warehouse."
            ) from None

    @contextlib.contextmanager
    def _stream(self, sql: str, since: datetime) -> Iterator[pa.RecordBatchReader]:
        if self.url is None or self.url.kind == "duckdb":
            import duckdb

            path = self.url.duckdb_path if self.url else ensure_demo_warehouse()
            con = duckdb.connect(str(path), read_only=True)
            try:
                # The cursor is naive UTC; a TIMESTAMPTZ column compared with `$1::timestamp`
                # reads it in the session time zone (the process's, by default), so pin UTC.
                # ICU, which provides the setting, is built into the duckdb Python wheel.
                con.execute("set TimeZone = 'UTC'")
                yield con.sql(sql, params=[since]).to_arrow_reader(BATCH_ROWS)
            finally:
                con.close()
        else:
            import adbc_driver_postgresql.dbapi as pg

            try:
                conn = pg.connect(self.url.raw.get())
            except Exception as exc:  # the driver's message may quote the URL: never re-raise it
                raise ConfigError(
                    f"Cannot connect to the PostgreSQL warehouse {self.url.display} "
                    f"({type(exc).__name__}); check CHASER_WAREHOUSE_URL"
                ) from None
            try:
                cur = conn.cursor()
                # As for DuckDB: the naive UTC cursor against a timestamptz column is read in the
                # session time zone (the server's or database's default), so pin UTC.
                cur.execute("set time zone 'UTC'")
                cur.execute(sql, parameters=[since.isoformat(sep=" ")])
                yield cur.fetch_record_batch()
            finally:
                conn.close()
