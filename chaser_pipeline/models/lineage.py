"""What sqlglot can tell about the models without running them: output columns with their types,
and which upstream columns each output column is computed from (column lineage).

`type_models` walks the models in dependency order, so a model's output columns join the schema
that the models downstream of it are typed against (`select *` expands).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from chaser_pipeline.models.inputs import (
    DELETED_KEYS,
    HOLDINGS,
    HOLDINGS_COLUMNS,
    HOLDINGS_SCHEMA,
    landing_columns,
)
from chaser_pipeline.models.names import DIALECT, LANDING_SCHEMA, MODEL_SCHEMA, landing_asset_name

if TYPE_CHECKING:
    from chaser_pipeline.models.project import Model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str  # DuckDB type as far as it is known statically, "" when not
    description: str


@dataclass(frozen=True)
class TypedProject:
    """Every model's static output columns, and the qualified trees lineage is read from."""

    schema: Any  # sqlglot MappingSchema of landing tables and models
    columns: dict[str, list[ColumnInfo]]
    trees: dict[str, exp.Query | None]

    def lineage(self, name: str) -> dict[str, list[tuple[str, str]]]:
        """Output column -> [(upstream asset name, upstream column)]; {} when unknown."""
        tree = self.trees.get(name)
        if tree is None:
            return {}
        try:
            return _column_lineage(tree, self.schema)
        except (SqlglotError, KeyError, ValueError) as e:
            log.warning("column lineage of model %s not available: %s", name, e)
            return {}


def type_models(models: Iterable[Model]) -> TypedProject:
    """Type every model (given in dependency order) against the landing tables and the models
    before it."""
    from sqlglot.schema import MappingSchema

    schema = MappingSchema(
        {
            LANDING_SCHEMA: {name: dict(columns) for name, columns in landing_columns().items()},
            HOLDINGS_SCHEMA: {HOLDINGS: dict(HOLDINGS_COLUMNS)},
        },
        dialect=DIALECT,
    )
    columns: dict[str, list[ColumnInfo]] = {}
    trees: dict[str, exp.Query | None] = {}
    for model in models:
        try:
            model_columns, tree = _typed_columns(model, schema)
        except (SqlglotError, KeyError, ValueError) as e:
            log.warning("columns of model %s not known before it runs: %s", model.name, e)
            model_columns, tree = [], None
        columns[model.name], trees[model.name] = model_columns, tree
        if model_columns:
            schema.add_table(
                exp.table_(model.name, db=MODEL_SCHEMA),
                {c.name: c.type or "unknown" for c in model_columns},
                dialect=DIALECT,
            )
    return TypedProject(schema, columns, trees)


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

    # trim_selects=False: the trimmed copy of each SELECT is only a label for sqlglot's own
    # node display, and copying the tree per column took seconds per load (60x the rest).
    nodes = lineage(
        None,
        tree,
        schema=schema,
        dialect=DIALECT,
        scope=build_scope(tree),
        copy=False,
        trim_selects=False,
    )
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
                or (db == LANDING_SCHEMA and table.name == DELETED_KEYS)
                or schema.find(table, raise_on_missing=False) is None
            ):
                continue  # lookup tables, deleted keys, Chaser's holdings: not assets
            asset = landing_asset_name(table.name) if db == LANDING_SCHEMA else table.name
            dep = (asset, leaf.name.split(".")[-1])
            if dep not in found:
                found.append(dep)
        deps[name] = found
    return deps
