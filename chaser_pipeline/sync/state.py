"""Where the pipeline keeps what each Chaser target confirmed: the pipeline's DuckDB, or PostgreSQL.

Every row of the sync tables belongs to one **target**: a Chaser API base URL plus the
organisation id `GET /v1/organisation` answers (`Target`). A new target starts from nothing, so
pointing the pipeline at another Chaser never inherits what the first one was sent.

The pipeline's DuckDB always holds a working copy of the sync tables (schema `chaser_sync`): the
plan, the pending check and the models read it there. `DuckDBState` keeps them there and nowhere
else. `PostgresState` (CHASER_STATE_URL) writes every answer, attempted key, fold, target and
budget window to PostgreSQL too, and refreshes the working copy from PostgreSQL before each plan,
so a run in a fresh container (an empty working folder) knows everything earlier runs sent.

Tables (the same in both places):
- `state`: one row per target, object and key: the hash of the payload Chaser last confirmed.
- `attempted`: keys a run started to send (a killed run may have delivered them unrecorded).
- `journal`: Chaser's answers, appended batch by batch while a sync sends; folded into `state`
  and `log` at the end of every send and before anything reads the state.
- `log`: append-only, every row sent, refused or held back.
- `targets`: every Chaser target this pipeline has talked to, and when it was last checked.
- `target_credentials`: which target each set of credentials last reached (a hash of the URL
  and API key, never them), so a pipeline finds its own organisation when others share the
  state. A table of its own: pipelines of an older version read `targets` as it was.
- `requests`: the times of the target's recent requests (its budget window), across runs.
- `waiver_over`: when Chaser first answered 429 to an initial load of the target: its
  organisation's first-day waiver is over, so no later step or run sends unpaced again.

`chaser_sync.holdings` (DuckDB only) is what the most recently checked target holds: the models
read it to report documents Chaser holds whose new version cannot be sent.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from chaser_pipeline.chaser.client import display_url
from chaser_pipeline.db import transaction
from chaser_pipeline.models.inputs import HOLDING_KEYS_DDL
from chaser_pipeline.settings import Secret

SCHEMA = "chaser_sync"
STATE_TABLE = f"{SCHEMA}.state"
ATTEMPTED_TABLE = f"{SCHEMA}.attempted"
JOURNAL_TABLE = f"{SCHEMA}.journal"
LOG_TABLE = f"{SCHEMA}.log"
TARGETS_TABLE = f"{SCHEMA}.targets"
TARGET_COLUMNS = (
    "target",
    "url",
    "organisation_id",
    "organisation_name",
    "first_seen_at",
    "last_checked_at",
    "checked_run_id",
)
CREDENTIALS_TABLE = f"{SCHEMA}.target_credentials"
REQUESTS_TABLE = f"{SCHEMA}.requests"
WAIVER_TABLE = f"{SCHEMA}.waiver_over"

# The payload hash recorded for a withdrawal sent as Chaser held the row: never a mart row's hash,
# so the row is not withdrawn twice, a row that comes back to the ledger is sent again, and the
# holdings view leaves it out (Chaser holds it withdrawn: nothing of it is stale).
WITHDRAWN_HASH_PREFIX = "withdrawn-"
HOLDINGS_VIEW = f"{SCHEMA}.holdings"

# The journal's columns, in order, after its sequence number.
JOURNAL_COLUMNS = (
    "target",
    "run_id",
    "object",
    "key",
    "action",
    "http_status",
    "message",
    "logged_at",
    "payload_hash",
    "chaser_id",
    "chase_measure",
    "route",
)
STATE_COLUMNS = (
    "target",
    "object",
    "key",
    "payload_hash",
    "confirmed_at",
    "chaser_id",
    "last_status",
    "last_error",
    "last_attempt_at",
    "chase_measure",
    "route",
)
LOG_COLUMNS = (
    "target",
    "run_id",
    "object",
    "key",
    "action",
    "http_status",
    "message",
    "logged_at",
)


class StateLockTimeout(RuntimeError):
    """Another sync held the target's lock for longer than this one would wait."""


@dataclass(frozen=True)
class Target:
    """One Chaser organisation behind one API base URL: what every state row belongs to."""

    url: str  # the API base URL, or "builtin-emulator" for the emulator started per step
    organisation_id: str
    organisation_name: str = ""

    @property
    def key(self) -> str:
        return f"{self.url}|{self.organisation_id}"

    @property
    def display(self) -> str:
        """The target in words, safe for messages: the URL without user info or query (a
        gateway's password may sit there), and the organisation."""
        return f"{display_url(self.url)} (organisation {self.organisation_id})"

    @property
    def lock_id(self) -> str:
        """A short stable name of the target, for lock files and advisory locks."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]


def _ddl(kind: str) -> list[str]:
    """The sync tables' DDL for DuckDB or PostgreSQL (which gets keys and indexes)."""
    postgres = kind == "postgresql"
    seq = "seq bigserial" if postgres else f"seq bigint default nextval('{SCHEMA}.journal_seq')"
    statements = [f"create schema if not exists {SCHEMA}"]
    if not postgres:
        statements.append(f"create sequence if not exists {SCHEMA}.journal_seq")
    statements += [
        f"""create table if not exists {STATE_TABLE} (
            target varchar not null,
            object varchar not null,
            key varchar not null,
            payload_hash varchar,          -- hash of the payload Chaser last confirmed
            confirmed_at timestamp,
            chaser_id varchar,
            last_status varchar not null,  -- confirmed | failed | adopted (by reconcile)
            last_error varchar,
            last_attempt_at timestamp not null,
            -- how much Chaser chases on the confirmed payload (amount due, credit, active)
            chase_measure decimal(18, 2),
            -- the parent a routed row was confirmed under (a contact person's customer)
            route varchar
            {", primary key (target, object, key)" if postgres else ""})""",
        f"""create table if not exists {ATTEMPTED_TABLE} (
            target varchar not null, object varchar not null, key varchar not null)""",
        f"""create table if not exists {JOURNAL_TABLE} (
            {seq}, target varchar, run_id varchar, object varchar, key varchar,
            action varchar, http_status integer, message varchar, logged_at timestamp,
            payload_hash varchar, chaser_id varchar, chase_measure decimal(18, 2),
            route varchar)""",
        f"""create table if not exists {LOG_TABLE} (
            target varchar, run_id varchar, object varchar, key varchar, action varchar,
            http_status integer, message varchar, logged_at timestamp)""",
        f"""create table if not exists {TARGETS_TABLE} (
            target varchar not null, url varchar, organisation_id varchar,
            organisation_name varchar, first_seen_at timestamp, last_checked_at timestamp,
            checked_run_id varchar{", primary key (target)" if postgres else ""})""",
        f"""create table if not exists {CREDENTIALS_TABLE} (
            credentials varchar not null{" primary key" if postgres else ""},
            target varchar not null, last_reached_at timestamp)""",
        f"create table if not exists {REQUESTS_TABLE} (target varchar not null, sent_at double precision)",
        f"""create table if not exists {WAIVER_TABLE} (
            target varchar not null primary key, over_at double precision not null)""",
    ]
    if postgres:
        statements.append(
            f"create index if not exists attempted_key on {ATTEMPTED_TABLE} (target, object, key)"
        )

    return statements


# Folding the journal: the rows present when the fold starts are folded (and only those are
# deleted: an answer appended meanwhile waits for the next fold); the newest answer per key sets
# its status; the newest confirmed one what Chaser holds (payload hash, chase measure, route). A
# failure keeps what was confirmed before it (the row is in Chaser as it was), in this fold (a
# moved contact person archived under its old customer, then refused under the new one) or an
# earlier one. Plain SQL that DuckDB and PostgreSQL both run.
_NEWEST = """select * from (
        select *, row_number() over (
            partition by target, object, key order by seq desc) as newest
        from sync_journal {where}
    ) as ranked
    where newest = 1"""
_FOLD = [
    f"create temp table sync_journal as select * from {JOURNAL_TABLE}",
    f"""create temp table sync_fold as
    select j.*, c.payload_hash as confirmed_hash, c.logged_at as confirmed_logged_at,
        c.chaser_id as confirmed_chaser_id, c.chase_measure as confirmed_measure,
        c.route as confirmed_route, s.key is not null as sync_known
    from ({_NEWEST.format(where="")}) as j
    left join ({_NEWEST.format(where="where payload_hash is not null")}) as c
        on c.target = j.target and c.object = j.object and c.key = j.key
    left join {STATE_TABLE} as s
        on s.target = j.target and s.object = j.object and s.key = j.key""",
    f"""update {STATE_TABLE} as s set
        payload_hash = coalesce(f.confirmed_hash, s.payload_hash),
        confirmed_at = case
            when f.confirmed_hash is null then s.confirmed_at else f.confirmed_logged_at end,
        chaser_id = coalesce(f.chaser_id, f.confirmed_chaser_id, s.chaser_id),
        chase_measure = case
            when f.confirmed_hash is null then s.chase_measure else f.confirmed_measure end,
        route = case when f.confirmed_hash is null then s.route else f.confirmed_route end,
        last_status = case when f.action = 'failed' then 'failed' else 'confirmed' end,
        last_error = case when f.action = 'failed' then f.message end,
        last_attempt_at = f.logged_at
    from sync_fold as f
    where f.sync_known and s.target = f.target and s.object = f.object and s.key = f.key""",
    f"""insert into {STATE_TABLE} ({", ".join(STATE_COLUMNS)})
    select target, object, key, confirmed_hash, confirmed_logged_at,
        coalesce(chaser_id, confirmed_chaser_id),
        case when action = 'failed' then 'failed' else 'confirmed' end,
        case when action = 'failed' then message end,
        logged_at,
        confirmed_measure,
        confirmed_route
    from sync_fold where not sync_known""",
    f"""insert into {LOG_TABLE} ({", ".join(LOG_COLUMNS)})
    select target, run_id, object, key, action, http_status, message, logged_at
    from sync_journal order by seq""",
    f"delete from {JOURNAL_TABLE} where seq in (select seq from sync_journal)",
    "drop table sync_fold",
    "drop table sync_journal",
]


def prepare_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    """Create the working copy's tables if needed (renaming those of older versions)."""
    _migrate(con)
    for statement in _ddl("duckdb"):
        con.execute(statement)
    con.execute(
        f"""create or replace view {HOLDINGS_VIEW} as
        select object, key, payload_hash from {STATE_TABLE}
        where payload_hash is not null
        and not starts_with(payload_hash, '{WITHDRAWN_HASH_PREFIX}') and target = (
            select target from {TARGETS_TABLE} order by last_checked_at desc limit 1)"""
    )
    con.execute(HOLDING_KEYS_DDL)


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Sync tables of versions before 0.2: `resource` is `object`, no target column (their rows
    belong to a target nobody can check any more: "unknown"), and no journal sequence. The
    model build may have created `holdings` as an empty table before any sync ran."""
    columns = con.execute(
        """select table_name, column_name, table_type from information_schema.columns
        join information_schema.tables using (table_schema, table_name)
        where table_schema = 'chaser_sync'"""
    ).fetchall()
    tables: dict[str, set[str]] = {}
    for table, column, _kind in columns:
        if table != "holdings":
            tables.setdefault(table, set()).add(column)
    if any(t == "holdings" and kind == "BASE TABLE" for t, _, kind in columns):
        con.execute(f"drop table {HOLDINGS_VIEW}")
    for table, names in tables.items():
        if "resource" in names:
            con.execute(f"alter table {SCHEMA}.{table} rename column resource to object")
        if table in ("state", "attempted", "log") and "target" not in names:
            con.execute(f"alter table {SCHEMA}.{table} add column target varchar default 'unknown'")
        if table == "state" and "chase_measure" not in names:
            con.execute(f"alter table {STATE_TABLE} add column chase_measure decimal(18, 2)")
        if "route" not in names and (table == "state" or (table == "journal" and "seq" in names)):
            con.execute(f"alter table {SCHEMA}.{table} add column route varchar")
    if "journal" in tables and "seq" not in tables["journal"]:
        # an unfolded journal of an older version holds answers for the unknown target
        con.execute(f"alter table {JOURNAL_TABLE} rename to journal_v1")
        for statement in _ddl("duckdb"):
            con.execute(statement)
        con.execute(
            f"""insert into {JOURNAL_TABLE} ({", ".join(JOURNAL_COLUMNS)})
            select 'unknown', run_id, object, key, action, http_status, message, logged_at,
                payload_hash, chaser_id, null, null
            from {SCHEMA}.journal_v1 order by rowid"""
        )
        con.execute(f"drop table {SCHEMA}.journal_v1")


def fold_duckdb(con: duckdb.DuckDBPyConnection) -> int:
    """Fold the working copy's journal into its state and log; return the rows moved."""
    ((rows,),) = con.execute(f"select count(*) from {JOURNAL_TABLE}").fetchall()
    if rows:
        with transaction(con):
            for statement in _FOLD:
                con.execute(statement)
    return rows


def append_duckdb(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    """Append Arrow rows (named as the table's columns) to a working-copy table."""
    con.register("sync_rows", rows)
    try:
        columns = ", ".join(rows.column_names)
        con.execute(f"insert into {table} ({columns}) select {columns} from sync_rows")
    finally:
        con.unregister("sync_rows")


class StateWriter(ABC):
    """Writes a sync's answers and attempted keys from the sender's writer thread."""

    @abstractmethod
    def journal(self, rows: pa.Table) -> None:
        """Append answers (JOURNAL_COLUMNS, without seq) in one commit."""

    @abstractmethod
    def attempted(self, rows: pa.Table) -> None:
        """Append (target, object, key) rows a run is about to send, in one commit."""

    @abstractmethod
    def log(self, rows: pa.Table) -> None:
        """Append log rows that are not answers (rows held back), in one commit."""

    @abstractmethod
    def close(self) -> None: ...


class SyncState(ABC):
    """The sync tables of one pipeline; `con` is the pipeline's DuckDB (the working copy)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    @property
    @abstractmethod
    def display(self) -> str:
        """Where the state lives, safe for logs (no password)."""

    @abstractmethod
    def lock(self, target: Target, *, wait_seconds: float) -> contextlib.AbstractContextManager:
        """Hold the target's lock: one sync sends to a target at a time, across processes and
        machines. Waits up to `wait_seconds`, then raises StateLockTimeout."""

    @abstractmethod
    def refresh(self, target: Target) -> None:
        """Make the working copy current for `target` (fold what a killed run left)."""

    @abstractmethod
    def writer(self) -> StateWriter: ...

    @abstractmethod
    def fold(self) -> None:
        """Fold every journal into its state and log."""

    @abstractmethod
    def record_target(
        self, target: Target, *, run_id: str, now: datetime, credentials: str | None = None
    ) -> bool:
        """Note that `target` was checked in `run_id` with `credentials` (ChaserTarget's
        hash, never a secret); True when it is new to this pipeline."""

    @abstractmethod
    def recent_requests(self, target: Target) -> list[float]:
        """The target's request times (epoch seconds) of the last minute, as runs left them."""

    @abstractmethod
    def save_requests(self, target: Target, times: Sequence[float]) -> None: ...

    def waiver_over_at(self, target: Target) -> float | None:
        """When Chaser first refused an initial load of `target` with 429 (epoch seconds), or
        None: its organisation may still be in its first-day waiver."""
        rows = self.query(f"select over_at from {WAIVER_TABLE} where target = $1", [target.key])
        return float(rows[0][0]) if rows else None

    @abstractmethod
    def note_waiver_over(self, target: Target, at: float) -> None:
        """Record that Chaser answered 429 to an initial load of `target` at `at` (the first
        such time stays)."""

    @abstractmethod
    def replace(self, target: Target, object_name: str, rows: pa.Table, *, now: datetime) -> None:
        """Replace the target's state rows of one object by `rows` (key, payload_hash,
        chaser_id, chase_measure: what Chaser holds), all confirmed and attempted."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        """Rows of a read-only query on the sync tables where they live ($1, $2 parameters)."""

    @abstractmethod
    def query_arrow(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        """`query` as an Arrow table, to join in the working copy without a row-by-row copy."""

    def last_target(self) -> Target:
        """The target checked most recently, by whichever pipeline sharing the state; a target
        holding nothing when none ever was. A pipeline's own: `target_for`."""
        rows = self.query(
            f"""select url, organisation_id, organisation_name from {TARGETS_TABLE}
            order by last_checked_at desc limit 1"""
        )
        return Target(*rows[0]) if rows else Target("none", "none")

    def target_for(self, credentials: str) -> Target | None:
        """The target these credentials (ChaserTarget.credentials) last reached, without asking
        Chaser; None when no sync noted them (new or rotated credentials, or a state of an
        older version): then only Chaser can say, and nothing is guessed, since other
        pipelines sharing the state send to organisations of their own."""
        rows = self.query(
            f"""select t.url, t.organisation_id, t.organisation_name
            from {CREDENTIALS_TABLE} as c join {TARGETS_TABLE} as t on t.target = c.target
            where c.credentials = $1""",
            [credentials],
        )
        return Target(*rows[0]) if rows else None

    def checked_in_run(self, url: str, run_id: str) -> Target | None:
        """The target checked earlier in this run for `url`, if any (saves a request)."""
        prepare_duckdb(self.con)
        row = self.con.execute(
            f"""select url, organisation_id, organisation_name from {TARGETS_TABLE}
            where url = $1 and checked_run_id = $2 order by last_checked_at desc limit 1""",
            [url, run_id],
        ).fetchone()
        return Target(*row) if row else None

    def log_rows(self, rows: pa.Table) -> None:
        """Append rows (target, run_id, object, key, action, http_status, message, logged_at)
        to the log wherever the state lives."""
        writer = self.writer()
        try:
            writer.log(rows)
        finally:
            writer.close()


class _DuckDBWriter(StateWriter):
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con.cursor()

    def journal(self, rows: pa.Table) -> None:
        append_duckdb(self.con, JOURNAL_TABLE, rows)

    def attempted(self, rows: pa.Table) -> None:
        append_duckdb(self.con, ATTEMPTED_TABLE, rows)

    def log(self, rows: pa.Table) -> None:
        append_duckdb(self.con, LOG_TABLE, rows)

    def close(self) -> None:
        self.con.close()


class DuckDBState(SyncState):
    """The sync tables in the pipeline's DuckDB file only (the default)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lock_dir: Path) -> None:
        super().__init__(con)
        self.lock_dir = lock_dir

    @property
    def display(self) -> str:
        return "the pipeline's DuckDB (CHASER_DUCKDB_PATH)"

    @contextlib.contextmanager
    def lock(self, target: Target, *, wait_seconds: float) -> Iterator[None]:
        path = self.lock_dir / f".chaser-sync-{target.lock_id}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as handle:
            _flock_with_deadline(handle, wait_seconds, target)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def refresh(self, target: Target) -> None:
        prepare_duckdb(self.con)
        fold_duckdb(self.con)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        prepare_duckdb(self.con)
        return self.con.execute(sql, list(params)).fetchall()

    def query_arrow(self, sql: str, params: Sequence[object] = ()) -> pa.Table:
        prepare_duckdb(self.con)
        # con.sql streams the result into Arrow; a DB-API result would copy the rows once more
        return self.con.sql(sql, params=list(params) or None).to_arrow_table()

    def replace(self, target: Target, object_name: str, rows: pa.Table, *, now: datetime) -> None:
        prepare_duckdb(self.con)
        state_rows, attempted = replacement_rows(target, object_name, rows, now)
        with transaction(self.con):
            self.con.execute(
                f"delete from {STATE_TABLE} where target = $1 and object = $2",
                [target.key, object_name],
            )
            self.con.execute(
                f"delete from {ATTEMPTED_TABLE} where target = $1 and object = $2",
                [target.key, object_name],
            )
            append_duckdb(self.con, STATE_TABLE, state_rows)
            append_duckdb(self.con, ATTEMPTED_TABLE, attempted)

    def writer(self) -> StateWriter:
        return _DuckDBWriter(self.con)

    def fold(self) -> None:
        fold_duckdb(self.con)

    def record_target(
        self, target: Target, *, run_id: str, now: datetime, credentials: str | None = None
    ) -> bool:
        return _record_target_duckdb(self.con, target, run_id, now, credentials)

    def recent_requests(self, target: Target) -> list[float]:
        prepare_duckdb(self.con)
        cutoff = time.time() - 60
        rows = self.con.execute(
            f"select sent_at from {REQUESTS_TABLE} where target = $1 and sent_at > $2 order by sent_at",
            [target.key, cutoff],
        ).fetchall()
        return [r[0] for r in rows]

    def note_waiver_over(self, target: Target, at: float) -> None:
        prepare_duckdb(self.con)
        self.con.execute(
            f"insert into {WAIVER_TABLE} values ($1, $2) on conflict do nothing", [target.key, at]
        )

    def save_requests(self, target: Target, times: Sequence[float]) -> None:
        prepare_duckdb(self.con)
        with transaction(self.con):
            self.con.execute(f"delete from {REQUESTS_TABLE} where target = $1", [target.key])
            append_duckdb(
                self.con,
                REQUESTS_TABLE,
                pa.table({"target": [target.key] * len(times), "sent_at": list(times)}),
            )


def replacement_rows(
    target: Target, object_name: str, rows: pa.Table, now: datetime
) -> tuple[pa.Table, pa.Table]:
    """State and attempted rows for what Chaser holds (reconcile)."""
    n = rows.num_rows

    def constant(value: object, kind: pa.DataType) -> pa.Array:
        return pa.array([value] * n, kind)

    state_rows = pa.table(
        {
            "target": constant(target.key, pa.string()),
            "object": constant(object_name, pa.string()),
            "key": rows["key"],
            "payload_hash": rows["payload_hash"],
            "confirmed_at": constant(now, pa.timestamp("us")),
            "chaser_id": rows["chaser_id"],
            # a record the ledger does not know, adopted from Chaser: never withdrawn on a guess
            "last_status": rows["last_status"]
            if "last_status" in rows.column_names
            else constant("confirmed", pa.string()),
            "last_error": constant(None, pa.string()),
            "last_attempt_at": constant(now, pa.timestamp("us")),
            "chase_measure": rows["chase_measure"],
            "route": rows["route"] if "route" in rows.column_names else constant(None, pa.string()),
        }
    )
    attempted = state_rows.select(["target", "object", "key"])
    return state_rows, attempted


def _record_target_duckdb(
    con: duckdb.DuckDBPyConnection,
    target: Target,
    run_id: str,
    now: datetime,
    credentials: str | None,
) -> bool:
    prepare_duckdb(con)
    with transaction(con):
        known = con.execute(
            f"select count(*) from {TARGETS_TABLE} where target = $1", [target.key]
        ).fetchone()[0]
        if known:
            con.execute(
                f"""update {TARGETS_TABLE} set last_checked_at = $2, checked_run_id = $3,
                organisation_name = $4 where target = $1""",
                [target.key, now, run_id, target.organisation_name],
            )
        else:
            con.execute(
                f"""insert into {TARGETS_TABLE} (target, url, organisation_id, organisation_name,
                    first_seen_at, last_checked_at, checked_run_id)
                values ($1, $2, $3, $4, $5, $5, $6)""",
                [
                    target.key,
                    target.url,
                    target.organisation_id,
                    target.organisation_name,
                    now,
                    run_id,
                ],
            )
        if credentials is not None:
            con.execute(f"delete from {CREDENTIALS_TABLE} where credentials = $1", [credentials])
            con.execute(
                f"insert into {CREDENTIALS_TABLE} (credentials, target, last_reached_at) "
                "values ($1, $2, $3)",
                [credentials, target.key, now],
            )
    return not known


def _flock_with_deadline(handle, wait_seconds: float, target: Target) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StateLockTimeout(
                    f"another sync is sending to {target.display} and did not finish within "
                    f"{wait_seconds:.0f} s; "
                    "this one sent nothing: run it again once the other has finished"
                ) from None
            time.sleep(0.2)  # another process holds the lock: poll until the deadline


def open_state(
    con: duckdb.DuckDBPyConnection, duckdb_path: Path, state_url: Secret | None
) -> SyncState:
    """The sync state with `con` (the pipeline's DuckDB at `duckdb_path`) as its working copy:
    in PostgreSQL when `state_url` names it (CHASER_STATE_URL), else in that DuckDB."""
    if state_url is not None:
        from chaser_pipeline.sync.postgres_state import PostgresState

        return PostgresState(con, state_url)
    return DuckDBState(con, Path(duckdb_path).parent)
