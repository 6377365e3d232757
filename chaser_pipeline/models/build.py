"""Building models in DuckDB: a whole table, or one window of a partitioned one, idempotently.

`run_models` builds a whole project in dependency order with a plain DuckDB connection (tests,
benchmarks, debugging); the Dagster assets call `build_model` one model at a time. Every build
first makes sure `chaser_sync.holdings` and `landing.deleted_keys` exist (empty before the first
sync or key-set comparison), since the models read what Chaser holds and what the ledger deleted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from chaser_pipeline.db import WHOLE_HISTORY, transaction
from chaser_pipeline.models.field_rules import register_field_rules
from chaser_pipeline.models.inputs import ensure_model_inputs
from chaser_pipeline.models.names import MODEL_SCHEMA, WINDOW_PARAMETERS, ModelError, quote
from chaser_pipeline.models.project import Model, ModelProject, as_project
from chaser_pipeline.settings import DEFAULT_COUNTRY


@dataclass(frozen=True)
class ModelBuild:
    """What one model build did: rows written (in the window for a partition write) and time."""

    name: str
    row_count: int
    seconds: float
    window: tuple[date, date] | None


def _bind(model: Model, window: tuple[date, date]) -> dict[str, Any]:
    # DuckDB rejects named parameters a statement does not use, so bind only what the SQL names.
    values = {"window_start": window[0], "window_end": window[1]}
    unknown = model.parameters - WINDOW_PARAMETERS
    if unknown:
        raise ModelError(f"{model.name}.sql uses unknown parameters {sorted(unknown)}")
    return {k: v for k, v in values.items() if k in model.parameters}


def model_query(
    model: Model, window: tuple[date, date] | None = None
) -> tuple[str, dict[str, Any]]:
    """A model's SQL and its bound parameters (the whole history unless a window is given)."""
    return model.sql, _bind(model, window or WHOLE_HISTORY)


def _column_names(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = $schema and table_name = $table order by ordinal_position",
            {"schema": MODEL_SCHEMA, "table": table},
        ).fetchall()
    ]


def build_model(
    con: duckdb.DuckDBPyConnection, model: Model, window: tuple[date, date] | None = None
) -> ModelBuild:
    """Build one model. `window` (start, end exclusive) only applies to a partitioned model.

    Unpartitioned (or window None): `create or replace table` with the whole-history window.
    Partitioned with a window: one transaction that creates the table if missing, deletes the
    window's rows and inserts the model's rows in the window, so a rewrite is idempotent.
    """
    started = time.perf_counter()
    table = quote(model.name)
    ensure_model_inputs(con)
    if model.partitioned_by is None or window is None:
        params = _bind(model, WHOLE_HISTORY)
        with transaction(con):
            con.execute(f"create or replace table {table} as\n{model.sql}", params)
        row_count = con.execute(f"select count(*) from {table}").fetchall()[0][0]
        return ModelBuild(model.name, row_count, time.perf_counter() - started, None)

    params = _bind(model, window)
    column = quote(model.partitioned_by)
    bounds = {"start_text": window[0].isoformat(), "end_text": window[1].isoformat()}
    in_window = f"{column}::varchar >= $start_text and {column}::varchar < $end_text"
    with transaction(con):
        existing = _column_names(con, model.name)
        if not existing:
            con.execute(f"create table {table} as select * from (\n{model.sql}\n) limit 0", params)
        else:
            probe = f"select * from (\n{model.sql}\n) limit 0"
            cursor = con.execute(probe, params)
            produced = [d[0] for d in cursor.description]
            cursor.fetchall()  # DuckDB 2 refuses new work while a result is unfinished
            if produced != existing:
                raise ModelError(
                    f"{model.name}.sql now returns columns {produced}, but table {model.table_name} "
                    f"holds {existing}: drop the table (`drop table {model.table_name}`) and "
                    "materialize every partition again"
                )
        con.execute(f"delete from {table} where {in_window}", bounds)
        con.execute(
            f"insert into {table} select * from (\n{model.sql}\n) where {in_window}",
            {**params, **bounds},
        )
    row_count = con.execute(f"select count(*) from {table} where {in_window}", bounds).fetchall()[
        0
    ][0]
    return ModelBuild(model.name, row_count, time.perf_counter() - started, window)


def run_models(
    con: duckdb.DuckDBPyConnection,
    models_dir: Path | ModelProject,
    window: tuple[date, date] | None = None,
    *,
    only: Sequence[str] | None = None,
    default_country: str = DEFAULT_COUNTRY,
) -> dict[str, ModelBuild]:
    """Build every model of `models_dir` (or those in `only`) in dependency order, without Dagster.

    `window` applies to partitioned models only (None: rebuild them over the whole history).
    """
    project = as_project(models_dir)
    register_field_rules(con, default_country)
    builds: dict[str, ModelBuild] = {}
    for name, model in project.models.items():
        if only is None or name in only:
            builds[name] = build_model(con, model, window)
    return builds


def table_schema_rows(con: duckdb.DuckDBPyConnection, model: Model) -> list[tuple[str, str]]:
    """(column, DuckDB type) of the built table, from DESCRIBE."""
    return [(r[0], r[1]) for r in con.execute(f"describe {quote(model.name)}").fetchall()]
