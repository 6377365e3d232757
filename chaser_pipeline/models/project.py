"""SQL models as a project: each `dbt_like_models/**/<name>.sql` with its YAML contract, read and
ordered by the tables its SQL reads.

A model is one `<name>.sql` file (a single SELECT, DuckDB dialect) plus an optional `<name>.yml`:

    description: One line a finance user reads in the Dagster UI.
    partitioned_by: date            # only for partitioned marts
    checks:
      unique: [invoice_id]
      not_null: [invoice_id, invoice_number]
      accepted_values: {status: [DRAFT, PAID]}
      relationships: {customer_external_id: int_customers.customer_id}
    columns:
      amount_due: Total minus amount paid; 0 when fully paid or overpaid.

Dependencies are read from the SQL with sqlglot, never declared by hand: `landing.<table>` is the
extract asset `ledger_<table>`, a bare model name is that model, CTE names and anything else (for
example lookup tables created by the field rules, `landing.deleted_keys` written beside the ledger
tables, or `chaser_sync.holdings`) are not dependencies. Nothing here imports Dagster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from sqlglot import exp
from sqlglot.errors import SqlglotError

from chaser_pipeline.models.inputs import DELETED_KEYS, landing_columns
from chaser_pipeline.models.lineage import ColumnInfo, StaticTypes, static_types
from chaser_pipeline.models.names import (
    DIALECT,
    IDENTIFIER,
    LANDING_SCHEMA,
    MODEL_SCHEMA,
    ModelError,
)


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
    # every table the SQL reads as `schema.table` (CTEs and table functions left out): what its
    # input version hashes
    read_tables: tuple[str, ...]

    @property
    def table_name(self) -> str:
        return f"{MODEL_SCHEMA}.{self.name}"


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


def _yaml_text(sql_path: Path) -> str:
    """The model's YAML contract beside its SQL (`.yml` or `.yaml`), "" when it has none."""
    for suffix in (".yml", ".yaml"):
        yml = sql_path.with_suffix(suffix)
        if yml.is_file():
            return yml.read_text()
    return ""


def load_model(sql_path: Path) -> Model:
    """Read one model: its SQL, its YAML contract and the tables its SQL references."""
    name = sql_path.stem
    if not IDENTIFIER.match(name):
        raise ModelError(f"{sql_path.name}: model file names must be lowercase identifiers")
    sql = sql_path.read_text().strip().rstrip(";").strip()
    yml_text = _yaml_text(sql_path)
    config: dict[str, Any] = yaml.safe_load(yml_text) or {}
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
    read: set[str] = set()
    landed = landing_columns()
    for table in tree.find_all(exp.Table):
        if not table.name:  # table functions such as range(10)
            continue
        if table.db or table.name not in ctes:
            read.add(f"{table.db or MODEL_SCHEMA}.{table.name}")
        if table.db == LANDING_SCHEMA:
            if table.name not in landed:
                raise ModelError(
                    f"{sql_path.name}: reads landing.{table.name}, which is not a ledger contract "
                    f"table ({', '.join(sorted(landed))})"
                )
            # deleted_keys is written with the ledger table it names, which the model also reads
            if table.name != DELETED_KEYS:
                landing.add(table.name)
        elif (not table.db and table.name not in ctes) or table.db == MODEL_SCHEMA:
            refs.add(table.name)
    parameters = frozenset(p.name for p in tree.find_all(exp.Placeholder) if p.name)

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
        read_tables=tuple(sorted(read)),
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

    def __init__(self, models_dir: Path, *, types_cache_dir: Path | None = None) -> None:
        """`types_cache_dir`: where the static column types and lineage are kept between loads
        (None: worked out at every load)."""
        self.models_dir = Path(models_dir)
        loaded: dict[str, Model] = {}
        # models may sit in subfolders (staging/, intermediate/, marts/); names stay unique
        for path in sorted(self.models_dir.rglob("*.sql")):
            model = load_model(path)
            if model.name in loaded:
                raise ModelError(
                    f"two models are called {model.name}: {loaded[model.name].path} and {path}"
                )
            loaded[model.name] = model
        self.models: dict[str, Model] = {n: loaded[n] for n in _topological_order(loaded)}
        for model in self.models.values():
            for col, (target, _) in model.contract.relationships.items():
                if target not in self.models:
                    raise ModelError(
                        f"{model.name}.yml: relationship {col} points at {target!r}, which is not a model"
                    )
        self.types_cache_dir = types_cache_dir

    def upstream_models(self, name: str) -> list[str]:
        return [r for r in self.models[name].model_refs if r in self.models]

    @cached_property
    def _static(self) -> StaticTypes:
        return static_types(list(self.models.values()), self.types_cache_dir)

    def static_columns(self, name: str) -> list[ColumnInfo]:
        """Output columns (with types where sqlglot can infer them), known without running."""
        return self._static.columns[name]

    def column_lineage(self, name: str) -> dict[str, list[tuple[str, str]]]:
        """Output column -> [(upstream asset name, upstream column)], landing mapped to ledger_*.

        Worked out for every model on first use (or read from `types_cache_dir`, where a load
        with the same models, contract and sqlglot left it), then kept for the life of the
        project object."""
        return self._static.lineage[name]


def as_project(models: Path | ModelProject) -> ModelProject:
    """`models` itself when it is a loaded project, else the project of that folder. Loading
    parses every model, so a caller that builds or plans many times may load once and pass it."""
    return models if isinstance(models, ModelProject) else ModelProject(models)


def whole_history_models(models_dir: Path) -> list[str]:
    """Names of the models built over the whole history (no `partitioned_by` in their YAML),
    read from the YAML files alone, without parsing any SQL."""
    names = []
    for sql_path in sorted(Path(models_dir).rglob("*.sql")):
        config = yaml.safe_load(_yaml_text(sql_path)) or {}
        if not config.get("partitioned_by"):
            names.append(sql_path.stem)
    return names
