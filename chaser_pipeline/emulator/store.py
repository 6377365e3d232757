"""The emulator's state: one SQLite file that every emulator process and a curious user can open.

One table per Chaser object (Chaser id, scope, key, payload as received, timestamps, how often it
was written), a `requests` log of every request with the object it addressed, so tests and
benchmarks can count requests per object, and `emulator_meta` (when the organisation was
created, for its 24-hour waiver). A key is unique within its scope: the customer's Chaser id for
contact persons, '' for the other objects. WAL mode and a busy timeout let several processes
share the file.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaser_pipeline.chaser.encoding import dumps, loads
from chaser_pipeline.emulator.rules import FILTER_OPS, OBJECTS

_SCHEMA = [
    *(
        f"""create table if not exists {object_name} (
            id text primary key,
            scope text not null default '',
            key text not null,
            payload text not null,
            created_at text not null,
            updated_at text not null,
            write_count integer not null default 1,
            unique (scope, key)
        )"""
        for object_name in OBJECTS
    ),
    "create table if not exists emulator_meta (name text primary key, value text not null)",
    """create table if not exists requests (
        seq integer primary key autoincrement,
        at real not null,
        method text not null,
        path text not null,
        object text,
        is_write integer not null,
        status integer not null,
        entries integer,
        fault text,
        counted integer not null default 0
    )""",
]


# State files written before objects had a scope: add it (keys stay unique on their own there).
_MIGRATIONS = [
    (
        "requests",
        "counted",
        "alter table requests add column counted integer not null default 0",
    ),
    *(
        (
            object_name,
            "scope",
            f"alter table {object_name} add column scope text not null default ''",
            f"create unique index if not exists {object_name}_scope_key on {object_name} (scope, key)",
        )
        for object_name in OBJECTS
    ),
]

ORGANISATION_CREATED_AT = "organisation_created_at"


class KeyExists(Exception):
    """A create or a key change would duplicate a key."""


@dataclass(frozen=True)
class RequestLogRow:
    """One request the emulator answered (or dropped after answering: fault='drop')."""

    seq: int
    at: float  # unix time when the request arrived
    method: str
    path: str
    object_name: str | None
    is_write: bool
    status: int
    entries: int | None
    fault: str | None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_sequence = itertools.count()


def new_id(prefix: str) -> str:
    """A Chaser-like id, unique across processes and increasing with time.

    Time-ordered ids append at the end of the primary-key index; random ones (uuid4) cost
    twice as much per insert on a table of a million invoices.
    """
    return (
        f"{prefix}_{time.time_ns():016x}{os.getpid() & 0xFFFF:04x}{next(_sequence) & 0xFFFFFF:06x}"
    )


def _table(object_name: str) -> str:
    if object_name not in OBJECTS:
        raise ValueError(f"unknown object {object_name!r}; one of {sorted(OBJECTS)}")
    return object_name


class EmulatorStore:
    """Read and write the emulator's SQLite state; one instance per thread."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE.
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
        )
        self._db.execute(f"pragma busy_timeout = {int(busy_timeout_ms)}")
        self._db.execute("pragma journal_mode = wal")
        self._db.execute("pragma synchronous = normal")
        with self.transaction():
            for statement in _SCHEMA:
                self._db.execute(statement)
            for table, column, *statements in _MIGRATIONS:
                columns = {row[1] for row in self._db.execute(f"pragma table_info({table})")}
                if column not in columns:
                    for statement in statements:
                        self._db.execute(statement)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmulatorStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; the write lock is taken up front so readers-then-writers never deadlock."""
        self._db.execute("begin immediate")
        try:
            yield
        except BaseException:
            self._db.execute("rollback")
            raise
        self._db.execute("commit")

    # ---- reads -------------------------------------------------------------------------

    @staticmethod
    def _record(object_name: str, chaser_id: str, scope: str, payload: str) -> dict[str, Any]:
        record = loads(payload)
        record["id"] = chaser_id
        if OBJECTS[object_name].belongs_to_customer:
            record["customer_id"] = scope
        return record

    def get(self, object_name: str, chaser_id: str, scope: str = "") -> dict[str, Any] | None:
        row = self._db.execute(
            f"select id, scope, payload from {_table(object_name)} where id = ? and scope = ?",
            (chaser_id, scope),
        ).fetchone()
        return self._record(object_name, *row) if row else None

    def get_by_key(self, object_name: str, key: str, scope: str = "") -> dict[str, Any] | None:
        row = self._db.execute(
            f"select id, scope, payload from {_table(object_name)} where key = ? and scope = ?",
            (key, scope),
        ).fetchone()
        return self._record(object_name, *row) if row else None

    def ids_by_key(self, object_name: str, keys: Iterable[str], scope: str = "") -> dict[str, str]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                self._db.execute(
                    f"select key, id from {_table(object_name)} "
                    f"where scope = ? and key in ({marks})",
                    [scope, *chunk],
                ).fetchall()
            )
        return found

    def page(
        self,
        object_name: str,
        *,
        page: int,
        limit: int,
        filters: Sequence[tuple[str, str, Any]] = (),
        scope: str = "",
    ) -> tuple[int, list[dict[str, Any]]]:
        """(total_count, records of one page) in insertion order; filters are (field, op, value)."""
        where, params = self._where(filters, scope)
        table = _table(object_name)
        total = self._db.execute(f"select count(*) from {table}{where}", params).fetchone()[0]
        rows = self._db.execute(
            f"select id, scope, payload from {table}{where} order by rowid limit ? offset ?",
            [*params, limit, page * limit],
        ).fetchall()
        return total, [self._record(object_name, *row) for row in rows]

    @staticmethod
    def _where(filters: Sequence[tuple[str, str, Any]], scope: str) -> tuple[str, list[Any]]:
        clauses: list[str] = ["scope = ?"]
        params: list[Any] = [scope]
        for field, op, value in filters:
            # The JSON path is a bound parameter; only the operator (from a fixed map) is spliced.
            column = "id" if field == "id" else "json_extract(payload, ?)"
            if field != "id":
                params.append(f'$."{field}"')
            sql_op = FILTER_OPS[op]
            if op in ("in", "nin"):
                values = list(value)
                clauses.append(f"{column} {sql_op} ({','.join('?' * len(values))})")
                params.extend(values)
            else:
                clauses.append(f"{column} {sql_op} ?")
                params.append(value)
        return " where " + " and ".join(clauses), params

    def count(self, object_name: str) -> int:
        return self._db.execute(f"select count(*) from {_table(object_name)}").fetchone()[0]

    def records(self, object_name: str) -> list[dict[str, Any]]:
        """Every stored payload of an object (with Chaser's `id`, and the `customer_id` of a
        contact person), in insertion order."""
        rows = self._db.execute(
            f"select id, scope, payload from {_table(object_name)} order by rowid"
        )
        return [self._record(object_name, *row) for row in rows]

    def write_count(self, object_name: str, key: str, scope: str | None = None) -> int:
        """How many times the record with this key was written (0: never); `scope` None adds
        up every scope (every customer's contact person with this external id)."""
        sql = f"select coalesce(sum(write_count), 0) from {_table(object_name)} where key = ?"
        params: list[Any] = [key]
        if scope is not None:
            sql += " and scope = ?"
            params.append(scope)
        return self._db.execute(sql, params).fetchone()[0]

    def meta(self, name: str) -> str | None:
        row = self._db.execute("select value from emulator_meta where name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str) -> None:
        self._db.execute(
            "insert into emulator_meta (name, value) values (?, ?) "
            "on conflict(name) do update set value = excluded.value",
            (name, value),
        )

    def counted_since(self, since: float) -> list[float]:
        """Arrival times of the requests the request limit counted since `since`, oldest first:
        what a restarted emulator's window starts from."""
        rows = self._db.execute(
            "select at from requests where at > ? and counted = 1 order by at", (since,)
        )
        return [row[0] for row in rows]

    def request_log(self, object_name: str | None = None) -> list[RequestLogRow]:
        sql = "select seq, at, method, path, object, is_write, status, entries, fault from requests"
        params: tuple[Any, ...] = ()
        if object_name is not None:
            sql += " where object = ?"
            params = (object_name,)
        rows = self._db.execute(sql + " order by seq", params).fetchall()
        return [RequestLogRow(*row[:5], bool(row[5]), *row[6:]) for row in rows]

    def request_count(self, object_name: str | None = None, *, status: int | None = None) -> int:
        """Requests that reached the emulator, for one object or all, with one status or any."""
        sql = "select count(*) from requests where 1 = 1"
        params: list[Any] = []
        if object_name is not None:
            sql += " and object = ?"
            params.append(object_name)
        if status is not None:
            sql += " and status = ?"
            params.append(status)
        return self._db.execute(sql, params).fetchone()[0]

    def write_request_count(
        self, object_name: str | None = None, *, succeeded_only: bool = False
    ) -> int:
        """Write requests (POST/PUT) that reached the emulator, for one object or all."""
        sql = "select count(*) from requests where is_write = 1"
        params: list[Any] = []
        if object_name is not None:
            sql += " and object = ?"
            params.append(object_name)
        if succeeded_only:
            sql += " and status < 300"
        return self._db.execute(sql, params).fetchone()[0]

    # ---- writes (call inside transaction()) --------------------------------------------

    def insert(
        self, object_name: str, key: str, payload: dict[str, Any], id_prefix: str, scope: str = ""
    ) -> str:
        chaser_id = new_id(id_prefix)
        now = _now()
        try:
            self._db.execute(
                f"insert into {_table(object_name)} "
                "(id, scope, key, payload, created_at, updated_at) values (?, ?, ?, ?, ?, ?)",
                (chaser_id, scope, key, dumps(payload).decode(), now, now),
            )
        except sqlite3.IntegrityError as exc:
            raise KeyExists(key) from exc
        return chaser_id

    def delete(self, object_name: str, chaser_id: str, scope: str = "") -> bool:
        cursor = self._db.execute(
            f"delete from {_table(object_name)} where id = ? and scope = ?", (chaser_id, scope)
        )
        return cursor.rowcount > 0

    def replace(self, object_name: str, chaser_id: str, key: str, payload: dict[str, Any]) -> None:
        try:
            self._db.execute(
                f"update {_table(object_name)} set key = ?, payload = ?, updated_at = ?, "
                "write_count = write_count + 1 where id = ?",
                (key, dumps(payload).decode(), _now(), chaser_id),
            )
        except sqlite3.IntegrityError as exc:
            raise KeyExists(key) from exc

    def upsert_many(
        self,
        object_name: str,
        entries: Sequence[tuple[str, dict[str, Any]]],
        id_prefix: str,
        scope: str = "",
    ) -> tuple[list[tuple[int, str]], int]:
        """Upsert (key, payload) pairs; return ([(index, new id)], modified count)."""
        existing = self.ids_by_key(object_name, (key for key, _ in entries), scope)
        now = _now()
        inserted: list[tuple[int, str]] = []
        rows = []
        modified = 0
        for index, (key, payload) in enumerate(entries):
            if key in existing:
                modified += 1
                chaser_id = existing[key]
            else:
                chaser_id = new_id(id_prefix)
                existing[key] = chaser_id
                inserted.append((index, chaser_id))
            rows.append((chaser_id, scope, key, dumps(payload).decode(), now, now))
        self._db.executemany(
            f"insert into {_table(object_name)} (id, scope, key, payload, created_at, updated_at) "
            "values (?, ?, ?, ?, ?, ?) on conflict(scope, key) do update set "
            "payload = excluded.payload, updated_at = excluded.updated_at, "
            "write_count = write_count + 1",
            rows,
        )
        return inserted, modified

    def log_request(
        self,
        *,
        at: float,
        method: str,
        path: str,
        object_name: str | None,
        is_write: bool,
        status: int,
        entries: int | None,
        fault: str | None,
        counted: bool = False,
    ) -> None:
        self._db.execute(
            "insert into requests "
            "(at, method, path, object, is_write, status, entries, fault, counted) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (at, method, path, object_name, int(is_write), status, entries, fault, int(counted)),
        )
