"""Versions of the models' inputs, so a model whose inputs and code did not change is not rebuilt.

A model's input version hashes its code version (its SQL and YAML), the build settings (the
default country of the phone rules), the field rules' own source, and a fingerprint of every
table its SQL reads: the table's columns, its row count and the sum of its rows' hashes (order
does not matter, and DuckDB hashes millions of rows in a few tens of milliseconds); an upstream
model's table counts by the version it was built from. A model is a function of those inputs, so
equal versions mean an equal table.

Builds are recorded in `chaser_versions.model_builds` (one row per model and partition; '' for a
whole table) in the pipeline's DuckDB, beside the tables they describe: a fresh or wiped
database has no records, and everything is built again. Nothing here imports Dagster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from pathlib import Path

import duckdb

from chaser_pipeline.db import table_exists, table_fingerprint
from chaser_pipeline.models.names import MODEL_SCHEMA
from chaser_pipeline.models.project import Model

SCHEMA = "chaser_versions"
BUILDS_TABLE = f"{SCHEMA}.model_builds"
WHOLE_TABLE = ""  # the partition key of a whole-table build

_FIELD_RULES_SOURCE = Path(__file__).with_name("field_rules.py")


def read_tables(model: Model) -> tuple[str, ...]:
    """Every table the model's SQL reads, as `schema.table` (CTEs and table functions left out),
    found when the model was parsed (`load_model`), not parsed again."""
    return model.read_tables


def input_version(
    con: duckdb.DuckDBPyConnection,
    model: Model,
    *,
    settings: Iterable[str] = (),
    tables: Sequence[str] | None = None,
    models: Collection[str] = (),
) -> str:
    """A hash of everything the model's table is computed from (see the module docstring).

    A table of one of `models` (the project's models) built whole by this pipeline stands for
    the version it was built from, which says as much as its rows and costs a lookup instead of
    a scan; any other table is fingerprinted."""
    digest = hashlib.sha256()
    for part in (
        model.code_version,
        *settings,
        hashlib.sha256(_FIELD_RULES_SOURCE.read_bytes()).hexdigest(),
    ):
        digest.update(part.encode() + b"\0")
    for table in tables if tables is not None else read_tables(model):
        schema, _, name = table.rpartition(".")
        built = (
            _whole_table_version(con, name)
            if schema in ("", MODEL_SCHEMA) and name in models
            else None
        )
        state = f"built from {built}" if built else table_fingerprint(con, table)
        digest.update(f"{table}={state}".encode() + b"\0")
    return digest.hexdigest()[:24]


def model_input_version(
    con: duckdb.DuckDBPyConnection,
    model: Model,
    *,
    default_country: str,
    models: Collection[str],
) -> str:
    """The input version a model's build is recorded under: its SQL and YAML, the one setting the
    models read (the default country, for phone numbers), and every table it reads."""
    return input_version(
        con, model, settings=[default_country], tables=read_tables(model), models=models
    )


def _whole_table_version(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    if not table_exists(con, f"{MODEL_SCHEMA}.{name}") or not table_exists(con, BUILDS_TABLE):
        return None
    row = con.execute(
        f"select input_version from {BUILDS_TABLE} where model = $model and partition_key = ''",
        {"model": name},
    ).fetchone()
    return row[0] if row else None


def ensure_builds_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(
        f"""create table if not exists {BUILDS_TABLE} (
            model varchar not null,
            partition_key varchar not null,  -- '' for a whole table
            input_version varchar not null,
            built_at timestamp not null)"""
    )


def is_current(
    con: duckdb.DuckDBPyConnection, model: Model, partition_keys: Sequence[str], version: str
) -> bool:
    """True when the model's table exists and every partition was last built from `version`."""
    if not table_exists(con, f"{MODEL_SCHEMA}.{model.name}"):
        return False
    ensure_builds_table(con)
    ((current,),) = con.execute(
        f"""select count(distinct partition_key) from {BUILDS_TABLE}
        where model = $model and input_version = $version and list_contains($keys, partition_key)""",
        {"model": model.name, "version": version, "keys": list(partition_keys)},
    ).fetchall()
    return current == len(set(partition_keys))


def last_built_at(con: duckdb.DuckDBPyConnection, model: Model) -> datetime | None:
    ensure_builds_table(con)
    ((built_at,),) = con.execute(
        f"select max(built_at) from {BUILDS_TABLE} where model = $model", {"model": model.name}
    ).fetchall()
    return built_at


def record_build(
    con: duckdb.DuckDBPyConnection,
    model: Model,
    partition_keys: Sequence[str],
    version: str,
    now: datetime,
) -> None:
    """Record that these partitions (or the whole table, WHOLE_TABLE) now hold `version`'s rows.

    A whole-table build of a partitioned model forgets its partitions' records."""
    ensure_builds_table(con)
    keys = list(partition_keys)
    if WHOLE_TABLE in keys:
        con.execute(f"delete from {BUILDS_TABLE} where model = $model", {"model": model.name})
    else:
        con.execute(
            f"delete from {BUILDS_TABLE} where model = $model "
            "and (partition_key = '' or list_contains($keys, partition_key))",
            {"model": model.name, "keys": keys},
        )
    con.execute(
        f"insert into {BUILDS_TABLE} select $model, unnest($keys), $version, $now",
        {"model": model.name, "keys": keys, "version": version, "now": now},
    )
