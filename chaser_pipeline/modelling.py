"""SQL models: load `dbt_like_models/*.sql` + YAML contracts, parse dependencies and column lineage,
and build the models in DuckDB.

Nothing here imports Dagster: the Dagster assets (`chaser_pipeline.assets.models`) and checks
(`chaser_pipeline.checks`) are thin wrappers, and `run_models` builds every model with a plain
DuckDB connection (benchmarks, tests, debugging).

A model is one `<name>.sql` file (a single SELECT, DuckDB dialect) plus an optional `<name>.yml`:

    description: One line a finance user reads in the Dagster UI.
    partitioned_by: date            # only for partitioned marts
    checks:
      unique: [invoice_id]
      not_null: [invoice_id, invoice_number]
      accepted_values: {status: [DRAFT, PAID]}
      relationships: {customer_external_id: chaser_customers.external_id}
    columns:
      amount_due: Total minus amount paid; 0 when fully paid or overpaid.

Dependencies are read from the SQL with sqlglot, never declared by hand: `landing.<table>` is the
extract asset `ledger_<table>`, a bare model name is that model, CTE names and anything else (for
example lookup tables created by the field rules) are not dependencies.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
import yaml
from sqlglot import exp
from sqlglot.errors import SqlglotError

from chaser_pipeline.db import WHOLE_HISTORY, transaction
from chaser_pipeline.ledger import LEDGER_TABLES

log = logging.getLogger(__name__)

DIALECT = "duckdb"
LANDING_SCHEMA = "landing"
MODEL_SCHEMA = "main"
# The whole-history window an unpartitioned build binds to $window_start / $window_end.
WINDOW_PARAMETERS = frozenset({"window_start", "window_end"})

# Identifiers reach SQL text (file stems, YAML column names): only plain lowercase names pass.
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class ModelError(ValueError):
    """A model folder that cannot work; the message names the file to fix."""


def landing_asset_name(table: str) -> str:
    """The extract asset that lands `landing.<table>`."""
    return f"ledger_{table}"


def quote(identifier: str) -> str:
    """Double-quote an identifier that already passed the IDENTIFIER check."""
    if not IDENTIFIER.match(identifier):
        raise ModelError(f"not a plain SQL identifier: {identifier!r}")
    return f'"{identifier}"'


@dataclass(frozen=True)
class Contract:
    """A model's declared contract; each rule becomes one asset check."""

    unique: tuple[tuple[str, ...], ...] = ()
    not_null: tuple[str, ...] = ()
    accepted_values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    # column -> (model, column) it must exist in
    relationships: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def key_column(self) -> str | None:
        """The first single-column unique key: what examples of bad rows are named by."""
        return next((cols[0] for cols in self.unique if len(cols) == 1), None)


@dataclass(frozen=True)
class Model:
    """One SQL model, as read from its files."""

    name: str
    path: Path
    sql: str
    description: str
    partitioned_by: str | None
    contract: Contract
    column_descriptions: Mapping[str, str]
    model_refs: tuple[str, ...]  # bare table names that are not CTEs (models or lookup tables)
    landing_tables: tuple[str, ...]
    parameters: frozenset[str]  # named parameters ($name) the SQL uses
    code_version: str

    @property
    def table_name(self) -> str:
        return f"{MODEL_SCHEMA}.{self.name}"


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str  # DuckDB type as far as it is known statically, "" when not
    description: str


def _parse_contract(raw: Any, where: str) -> Contract:
    if raw is None:
        return Contract()
    if not isinstance(raw, Mapping):
        raise ModelError(f"{where}: `checks` must be a mapping")
    unknown = set(raw) - {"unique", "not_null", "accepted_values", "relationships"}
    if unknown:
        raise ModelError(f"{where}: unknown check kinds {sorted(unknown)}")

    def column(name: Any) -> str:
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            raise ModelError(f"{where}: {name!r} is not a plain lowercase column name")
        return name

    unique = tuple(
        tuple(column(c) for c in entry) if isinstance(entry, list) else (column(entry),)
        for entry in raw.get("unique") or ()
    )
    not_null = tuple(column(c) for c in raw.get("not_null") or ())
    accepted = {
        column(c): tuple(values) for c, values in (raw.get("accepted_values") or {}).items()
    }
    relationships: dict[str, tuple[str, str]] = {}
    for col, target in (raw.get("relationships") or {}).items():
        model, _, target_col = str(target).partition(".")
        if not target_col:
            raise ModelError(
                f"{where}: relationship {col}: expected `<model>.<column>`, got {target!r}"
            )
        relationships[column(col)] = (column(model), column(target_col))
    return Contract(unique, not_null, accepted, relationships)


def _header_comment(sql: str) -> str:
    lines = []
    for line in sql.lstrip().splitlines():
        if not line.startswith("--"):
            break
        text = line.lstrip("-").strip()
        if not text:
            break
        lines.append(text)
    return " ".join(lines)


def load_model(sql_path: Path) -> Model:
    """Read one model: its SQL, its YAML contract and the tables its SQL references."""
    name = sql_path.stem
    if not IDENTIFIER.match(name):
        raise ModelError(f"{sql_path.name}: model file names must be lowercase identifiers")
    sql = sql_path.read_text().strip().rstrip(";").strip()
    config: dict[str, Any] = {}
    for suffix in (".yml", ".yaml"):
        yml = sql_path.with_suffix(suffix)
        if yml.is_file():
            config = yaml.safe_load(yml.read_text()) or {}
            break
    where = f"{name}.yml"
    partitioned_by = config.get("partitioned_by")
    if partitioned_by is not None and not IDENTIFIER.match(str(partitioned_by)):
        raise ModelError(f"{where}: partitioned_by must be a column name, got {partitioned_by!r}")

    try:
        tree = sqlglot.parse_one(sql, dialect=DIALECT)
    except SqlglotError as e:
        raise ModelError(f"{sql_path.name}: cannot parse the SQL: {e}") from e
    if not isinstance(tree, exp.Query):
        raise ModelError(f"{sql_path.name}: a model is a single SELECT query")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    refs: set[str] = set()
    landing: set[str] = set()
    for table in tree.find_all(exp.Table):
        if not table.name:  # table functions such as range(10)
            continue
        if table.db == LANDING_SCHEMA:
            if table.name not in LEDGER_TABLES:
                raise ModelError(
                    f"{sql_path.name}: reads landing.{table.name}, which is not a ledger contract "
                    f"table ({', '.join(sorted(LEDGER_TABLES))})"
                )
            landing.add(table.name)
        elif (not table.db and table.name not in ctes) or table.db == MODEL_SCHEMA:
            refs.add(table.name)
    parameters = frozenset(p.name for p in tree.find_all(exp.Placeholder) if p.name)

    yml_text = "".join(
        p.read_text()
        for p in (sql_path.with_suffix(".yml"), sql_path.with_suffix(".yaml"))
        if p.is_file()
    )
    return Model(
        name=name,
        path=sql_path,
        sql=sql,
        description=str(config.get("description") or _header_comment(sql) or f"SQL model {name}."),
        partitioned_by=str(partitioned_by) if partitioned_by else None,
        contract=_parse_contract(config.get("checks"), where),
        column_descriptions={str(k): str(v) for k, v in (config.get("columns") or {}).items()},
        model_refs=tuple(sorted(refs)),
        landing_tables=tuple(sorted(landing)),
        parameters=parameters,
        code_version=hashlib.sha256((sql + "\0" + yml_text).encode()).hexdigest()[:16],
    )


def _topological_order(models: Mapping[str, Model]) -> list[str]:
    """Models ordered so each comes after the models it reads; a cycle names its files."""
    order: list[str] = []
    state: dict[str, str] = {}  # name -> "visiting" | "done"

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*path[path.index(name) :], name]
            raise ModelError(
                "dependency cycle between SQL models: "
                + " -> ".join(f"{n}.sql" for n in cycle)
                + "; a model cannot read itself, directly or through others"
            )
        state[name] = "visiting"
        for upstream in models[name].model_refs:
            if upstream in models:
                visit(upstream, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in sorted(models):
        visit(name, [])
    return order


class ModelProject:
    """Every model of a folder, in dependency order, with static columns and lineage."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        loaded = {m.name: m for m in (load_model(p) for p in sorted(self.models_dir.glob("*.sql")))}
        self.models: dict[str, Model] = {n: loaded[n] for n in _topological_order(loaded)}
        for model in self.models.values():
            for col, (target, _) in model.contract.relationships.items():
                if target not in self.models:
                    raise ModelError(
                        f"{model.name}.yml: relationship {col} points at {target!r}, which is not a model"
                    )
        self._lineage: dict[str, dict[str, list[tuple[str, str]]]] = {}

    def upstream_models(self, name: str) -> list[str]:
        return [r for r in self.models[name].model_refs if r in self.models]

    @cached_property
    def _typed(self) -> tuple[Any, dict[str, tuple[list[ColumnInfo], exp.Query | None]]]:
        """The sqlglot schema of every table, and per model its output columns + qualified tree.

        One pass in DAG order: each model's output columns join the schema, so `select *` in the
        models downstream expands. Cheap enough (~10 ms a model) to run when definitions load.
        """
        from sqlglot.schema import MappingSchema

        schema = MappingSchema(
            {LANDING_SCHEMA: {t.name: dict(t.columns) for t in LEDGER_TABLES.values()}},
            dialect=DIALECT,
        )
        result: dict[str, tuple[list[ColumnInfo], exp.Query | None]] = {}
        for model in self.models.values():
            try:
                columns, tree = _typed_columns(model, schema)
            except (SqlglotError, KeyError, ValueError) as e:
                log.warning("columns of model %s not known before it runs: %s", model.name, e)
                columns, tree = [], None
            result[model.name] = (columns, tree)
            if columns:
                schema.add_table(
                    exp.table_(model.name, db=MODEL_SCHEMA),
                    {c.name: c.type or "unknown" for c in columns},
                    dialect=DIALECT,
                )
        return schema, result

    def static_columns(self, name: str) -> list[ColumnInfo]:
        """Output columns (with types where sqlglot can infer them), known without running."""
        return self._typed[1][name][0]

    def column_lineage(self, name: str) -> dict[str, list[tuple[str, str]]]:
        """Output column -> [(upstream asset name, upstream column)], landing mapped to ledger_*.

        sqlglot lineage costs ~50 ms a model, too slow for every definitions load: it is computed
        on first use (the first materialization) and cached for the life of the process.
        """
        if name not in self._lineage:
            schema, typed = self._typed
            tree = typed[name][1]
            try:
                self._lineage[name] = {} if tree is None else _column_lineage(tree, schema)
            except (SqlglotError, KeyError, ValueError) as e:
                log.warning("column lineage of model %s not available: %s", name, e)
                self._lineage[name] = {}
        return self._lineage[name]


def _typed_columns(model: Model, schema: Any) -> tuple[list[ColumnInfo], exp.Query]:
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    tree = sqlglot.parse_one(model.sql, dialect=DIALECT)
    qualified = qualify(
        tree,
        dialect=DIALECT,
        schema=schema,
        db=MODEL_SCHEMA,
        validate_qualify_columns=False,
        identify=False,
    )
    typed = annotate_types(qualified, schema=schema, dialect=DIALECT)
    columns: list[ColumnInfo] = []
    for select in typed.selects:
        name = select.alias_or_name
        if not name or name == "*":
            raise ValueError("an output column could not be named (a `*` over an unknown table?)")
        dtype = select.type
        type_text = (
            ""
            if dtype is None or dtype.is_type(exp.DataType.Type.UNKNOWN)
            else dtype.sql(DIALECT).replace("TEXT", "VARCHAR")
        )
        columns.append(ColumnInfo(name, type_text, model.column_descriptions.get(name, "")))
    return columns, typed


def _column_lineage(tree: exp.Query, schema: Any) -> dict[str, list[tuple[str, str]]]:
    from sqlglot.lineage import lineage
    from sqlglot.optimizer.scope import build_scope

    nodes = lineage(None, tree, schema=schema, dialect=DIALECT, scope=build_scope(tree), copy=False)
    deps: dict[str, list[tuple[str, str]]] = {}
    for name, node in nodes.items():
        found: list[tuple[str, str]] = []
        for leaf in node.walk():
            if leaf.downstream or not isinstance(leaf.expression, exp.Table):
                continue
            table = leaf.expression
            db = table.db or MODEL_SCHEMA
            if (
                db not in (LANDING_SCHEMA, MODEL_SCHEMA)
                or schema.find(table, raise_on_missing=False) is None
            ):
                continue  # lookup tables from the field rules: not assets
            asset = landing_asset_name(table.name) if db == LANDING_SCHEMA else table.name
            dep = (asset, leaf.name.split(".")[-1])
            if dep not in found:
                found.append(dep)
        deps[name] = found
    return deps


# --- building models in DuckDB -------------------------------------------------------------------


@dataclass(frozen=True)
class ModelBuild:
    """What one model build did: rows written (in the window for a partition write) and time."""

    name: str
    row_count: int
    seconds: float
    window: tuple[date, date] | None


def register_configured_field_rules(
    con: duckdb.DuckDBPyConnection, default_country: str | None = None
) -> None:
    """Register the field-rule UDFs the SQL models call, with the configured default country
    (CHASER_DEFAULT_COUNTRY) unless one is given."""
    from chaser_pipeline.config import load_settings
    from chaser_pipeline.field_rules import register_field_rules

    register_field_rules(con, default_country or load_settings().default_country)


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
    models_dir: Path,
    window: tuple[date, date] | None = None,
    *,
    only: Sequence[str] | None = None,
    default_country: str | None = None,
) -> dict[str, ModelBuild]:
    """Build every model of `models_dir` (or those in `only`) in dependency order, without Dagster.

    `window` applies to partitioned models only (None: rebuild them over the whole history).
    """
    project = ModelProject(models_dir)
    register_configured_field_rules(con, default_country)
    builds: dict[str, ModelBuild] = {}
    for name, model in project.models.items():
        if only is None or name in only:
            builds[name] = build_model(con, model, window)
    return builds


def table_schema_rows(con: duckdb.DuckDBPyConnection, model: Model) -> list[tuple[str, str]]:
    """(column, DuckDB type) of the built table, from DESCRIBE."""
    return [(r[0], r[1]) for r in con.execute(f"describe {quote(model.name)}").fetchall()]


# --- contract rules as violation queries ---------------------------------------------------------


@dataclass(frozen=True)
class ViolationQuery:
    """A check as SQL: the query returns one row per violation (its key and the offending value)."""

    name: str
    description: str
    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)
    reads: tuple[str, ...] = ()  # other models the query reads (the check runs after them)


def contract_queries(model: Model) -> list[ViolationQuery]:
    """One violation query per contract rule kind and column, named for the UI."""
    contract = model.contract
    table = quote(model.name)
    key = contract.key_column
    key_sql = f"{quote(key)}::varchar" if key else "rowid::varchar"
    key_name = key or "rowid"
    queries: list[ViolationQuery] = []

    for columns in contract.unique:
        cols = ", ".join(quote(c) for c in columns)
        label = ", ".join(columns)
        queries.append(
            ViolationQuery(
                name=f"unique_{'_'.join(columns)}",
                description=f"No two rows of {model.name} share the same {label}.",
                sql=(
                    f"select {cols}, count(*) as duplicate_rows from {table} "
                    f"where {' and '.join(f'{quote(c)} is not null' for c in columns)} "
                    f"group by {cols} having count(*) > 1 order by {cols}"
                ),
            )
        )
    if contract.not_null:
        parts = [
            f"select {key_sql} as {quote(key_name)}, '{c}' as null_column from {table} "
            f"where {quote(c)} is null"
            for c in contract.not_null
        ]
        queries.append(
            ViolationQuery(
                name="not_null_columns",
                description=f"{', '.join(contract.not_null)} are never null in {model.name}.",
                sql=" union all ".join(parts),
            )
        )
    for column, values in contract.accepted_values.items():
        queries.append(
            ViolationQuery(
                name=f"accepted_values_{column}",
                description=f"{model.name}.{column} is one of {', '.join(map(str, values))}.",
                sql=(
                    f"select {key_sql} as {quote(key_name)}, {quote(column)} from {table} "
                    f"where {quote(column)} is not null "
                    f"and not list_contains($accepted, {quote(column)})"
                ),
                params={"accepted": list(values)},
            )
        )
    for column, (target, target_column) in contract.relationships.items():
        queries.append(
            ViolationQuery(
                name=f"relationship_{column}",
                description=f"Every {model.name}.{column} exists in {target}.{target_column}.",
                sql=(
                    f"select {key_sql} as {quote(key_name)}, t.{quote(column)} from {table} as t "
                    f"where t.{quote(column)} is not null and not exists ("
                    f"select 1 from {quote(target)} as r "
                    f"where r.{quote(target_column)} = t.{quote(column)})"
                ),
                reads=(target,),
            )
        )
    return queries


@dataclass(frozen=True)
class Violations:
    count: int
    examples: list[dict[str, Any]]


def find_violations(
    con: duckdb.DuckDBPyConnection, query: ViolationQuery, *, examples: int = 5
) -> Violations:
    """Count the query's rows and keep the first few as examples, in one pass."""
    cursor = con.execute(
        f"select count(*) over () as __violations, * from (\n{query.sql}\n) limit {int(examples)}",
        dict(query.params),
    )
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    count = rows[0][0] if rows else 0
    return Violations(
        count,
        [{n: _plain(v) for n, v in zip(names[1:], row[1:], strict=True)} for row in rows],
    )


def _plain(value: Any) -> Any:
    """A JSON-friendly example value (Decimal, dates -> text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
