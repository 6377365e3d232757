"""What sqlglot can tell about the models without running them: output columns with their types,
and which upstream columns each output column is computed from (column lineage).

`type_models` walks the models in dependency order, so a model's output columns join the schema
that the models downstream of it are typed against (`select *` expands).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
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


# What typing and lineage found, kept between code loads: parsing, qualifying and typing every
# model with sqlglot is about half of loading the definitions (0.5 s of 1.3 s), paid by every
# `chaser-pipeline` command, code server and run process. The file is named by a hash of
# everything the result depends on, so a changed model, contract, sqlglot or this module is
# typed afresh; a folder that cannot be written only costs the typing.
TYPES_CACHE_FORMAT = 1


@dataclass(frozen=True)
class StaticTypes:
    """Every model's static output columns and column lineage."""

    columns: dict[str, list[ColumnInfo]]
    lineage: dict[str, dict[str, list[tuple[str, str]]]]


def static_types(models: list[Model], cache_dir: Path | None) -> StaticTypes:
    """`type_models` and every model's lineage, read from `cache_dir` when typed before."""
    path = cache_dir / f"model-types-{_types_key(models)}.json" if cache_dir else None
    if path is not None:
        try:
            return _types_from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not typed yet (or a damaged file): type afresh
    typed = type_models(models)
    found = StaticTypes(typed.columns, {m.name: typed.lineage(m.name) for m in models})
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".model-types-")
            with os.fdopen(fd, "w") as out:
                json.dump(_types_to_json(found), out)
            os.replace(temporary, path)  # whole or not at all, whatever runs beside it
        except OSError as e:
            log.debug("model types not kept in %s: %s", cache_dir, e)
    return found


def _types_key(models: list[Model]) -> str:
    digest = hashlib.sha256()
    for part in (
        str(TYPES_CACHE_FORMAT),
        sqlglot.__version__,
        Path(__file__).read_text(),
        json.dumps(landing_columns(), sort_keys=True),
        json.dumps(HOLDINGS_COLUMNS),
        *(f"{m.name}:{m.code_version}" for m in models),
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def _types_to_json(types: StaticTypes) -> dict:
    return {
        "columns": {
            name: [[c.name, c.type, c.description] for c in columns]
            for name, columns in types.columns.items()
        },
        "lineage": types.lineage,
    }


def _types_from_json(data: dict) -> StaticTypes:
    return StaticTypes(
        columns={
            name: [ColumnInfo(*column) for column in columns]
            for name, columns in data["columns"].items()
        },
        lineage={
            name: {column: [tuple(dep) for dep in deps] for column, deps in lineage.items()}
            for name, lineage in data["lineage"].items()
        },
    )
