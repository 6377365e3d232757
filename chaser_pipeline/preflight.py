"""Checks that fail fast, before any data moves, on local places a run cannot use, naming the
variable to fix: the pipeline's DuckDB (CHASER_DUCKDB_PATH), Dagster's home (DAGSTER_HOME) and the
PostgreSQL sync state (CHASER_STATE_URL).

Opening the pipeline's DuckDB also goes through `open_duckdb` during a run: another process may
hold the file for a while (a sync of its own), so it waits a bounded time, then fails saying who
holds it, instead of retrying silently for minutes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb

from chaser_pipeline.settings import ConfigError, Settings

# How long a run waits for another process to let go of the pipeline's DuckDB file.
DUCKDB_LOCK_WAIT_SECONDS = 60.0

# DuckDB's own memory on the pipeline's connections (landing, models, plans, pending months):
# above it, joins, sorts and temp tables spill into `<file>.tmp` beside the DuckDB file, so 10M
# invoices fit in bounded memory (DuckDB's default is 80% of the machine's RAM).
DUCKDB_MEMORY_LIMIT = "2GB"


def _writable_folder(path: Path, variable: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{variable}: cannot create the folder {path} ({exc.strerror}); "
            "point it at a folder this user can write"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{variable}: the folder {path} is not writable by this user; point it at one that is"
        )


def open_duckdb(
    path: Path, *, wait_seconds: float = DUCKDB_LOCK_WAIT_SECONDS, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open the pipeline's DuckDB; a file that is not DuckDB, or that another process holds
    longer than `wait_seconds`, fails with a message naming CHASER_DUCKDB_PATH."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            message = str(exc)
            if "not a valid DuckDB database file" in message:
                raise ConfigError(
                    f"CHASER_DUCKDB_PATH: {path} exists but is not a DuckDB file; point "
                    "CHASER_DUCKDB_PATH at a new file (the pipeline creates it) or at the "
                    "pipeline's own DuckDB"
                ) from None
            if "lock" not in message.lower():
                raise ConfigError(f"CHASER_DUCKDB_PATH: cannot open {path}: {message}") from None
            if time.monotonic() >= deadline:
                holder = message.split("Conflicting lock is held in", 1)[-1].split(". See")[0]
                raise ConfigError(
                    f"CHASER_DUCKDB_PATH: {path} is held by another process "
                    f"({holder.strip()}) for more than {wait_seconds:.0f} s: wait for it to "
                    "finish (another sync?) or point CHASER_DUCKDB_PATH elsewhere"
                ) from None
            time.sleep(0.25)  # another process holds the file: poll until the deadline
            continue
        con.execute(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        return con


def _duckdb_file(path: Path) -> None:
    """An existing pipeline DuckDB must be a DuckDB file (its header says DUCK at byte 8);
    whether another process holds it is for `open_duckdb` to wait out during the run."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(12)
    except OSError as exc:
        raise ConfigError(
            f"CHASER_DUCKDB_PATH: cannot read {path} ({exc.strerror}); point it at a file this "
            "user can read and write"
        ) from None
    if header and header[8:12] != b"DUCK":
        raise ConfigError(
            f"CHASER_DUCKDB_PATH: {path} exists but is not a DuckDB file; point "
            "CHASER_DUCKDB_PATH at a new file (the pipeline creates it) or at the pipeline's own "
            "DuckDB"
        )
    if not os.access(path, os.W_OK):
        raise ConfigError(f"CHASER_DUCKDB_PATH: {path} is not writable by this user")


def check_local_paths(settings: Settings, *, dagster_home: Path | None = None) -> None:
    """Fail before any data moves when a local place the run needs cannot be used."""
    _writable_folder(settings.duckdb_path.parent, "CHASER_DUCKDB_PATH")
    if settings.duckdb_path.exists():
        _duckdb_file(settings.duckdb_path)
    if dagster_home is not None:
        _writable_folder(dagster_home, "DAGSTER_HOME")
    if settings.state_url is not None:
        from chaser_pipeline.sync.postgres_state import connect

        connect(settings.state_url).close()
