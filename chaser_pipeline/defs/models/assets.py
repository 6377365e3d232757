"""SQL model assets: one asset per `dbt_like_models/**/<name>.sql`, built by a factory when
Dagster loads the code location, with the contract checks of every model.

One `@asset` per file (not one multi_asset) keeps each model's materializations, partitions and
checks its own: only the invoice and credit-note marts are partitioned, and a failed contract
check blocks exactly the assets downstream of its model.
"""

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from chaser_pipeline.db import document_window
from chaser_pipeline.defs.models.checks import model_checks
from chaser_pipeline.defs.partitions import monthly_partitions
from chaser_pipeline.defs.resources import duckdb_connection
from chaser_pipeline.models.build import build_model, table_schema_rows
from chaser_pipeline.models.field_rules import register_field_rules
from chaser_pipeline.models.names import landing_asset_name
from chaser_pipeline.models.project import Model, ModelProject
from chaser_pipeline.models.rules import MartRule, mart_rules
from chaser_pipeline.paths import models_dir
from chaser_pipeline.settings import load_settings

GROUP = "models"
KINDS = {"duckdb", "sql"}


def _column_schema(columns: list[tuple[str, str]], descriptions: dict[str, str]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=ctype or "unknown", description=descriptions.get(name))
            for name, ctype in columns
        ]
    )


def _column_lineage(
    project: ModelProject, model: Model, columns: list[str]
) -> dg.TableColumnLineage:
    lineage = project.column_lineage(model.name)
    return dg.TableColumnLineage(
        deps_by_column={
            column: [
                dg.TableColumnDep(asset_key=dg.AssetKey(asset), column_name=upstream_column)
                for asset, upstream_column in lineage[column]
            ]
            for column in columns
            if lineage.get(column)
        }
    )


def model_asset(
    project: ModelProject,
    model: Model,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    default_country: str,
) -> dg.AssetsDefinition:
    """The asset that builds `model` in the pipeline's DuckDB (table `main.<name>`)."""
    partitioned = model.partitioned_by is not None
    history_start = partitions_def.start.date()
    deps = [dg.AssetDep(landing_asset_name(t)) for t in model.landing_tables] + [
        dg.AssetDep(m) for m in project.upstream_models(model.name)
    ]
    descriptions = dict(model.column_descriptions)
    static_columns = project.static_columns(model.name)
    metadata: dict[str, Any] = {
        "dagster/table_name": model.table_name,
        "sql_file": dg.MetadataValue.path(str(model.path.relative_to(project.models_dir.parent))),
    }
    if static_columns:
        metadata["dagster/column_schema"] = _column_schema(
            [(c.name, c.type) for c in static_columns], descriptions
        )
    if partitioned:
        metadata["partitioned_by"] = model.partitioned_by

    # BackfillPolicy is beta in Dagster 1.13; a warning per model at every load helps nobody.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        asset_decorator = dg.asset(
            name=model.name,
            group_name=GROUP,
            description=model.description,
            kinds=KINDS,
            deps=deps,
            partitions_def=partitions_def if partitioned else None,
            backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
            code_version=model.code_version,
            metadata=metadata,
        )

    @asset_decorator
    def _model(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
        window = None
        # A run without partitions (possible in tests and ad-hoc runs) rebuilds the whole table.
        if partitioned and (context.has_partition_key or context.has_partition_key_range):
            # Works for one partition and for a range run (single-run backfill policy).
            time_window = context.partition_time_window
            window = document_window(
                time_window.start.date(), time_window.end.date(), history_start
            )
        with duckdb_connection(duckdb) as con:
            register_field_rules(con, default_country)
            build = build_model(con, model, window)
            columns = table_schema_rows(con, model)
        result: dict[str, Any] = {
            "dagster/row_count": dg.MetadataValue.int(build.row_count),
            "dagster/table_name": model.table_name,
            "dagster/column_schema": _column_schema(columns, descriptions),
            "dagster/column_lineage": _column_lineage(project, model, [c for c, _ in columns]),
            "elapsed_seconds": dg.MetadataValue.float(round(build.seconds, 3)),
        }
        if window is not None:
            result["window"] = f"[{window[0].isoformat()}, {window[1].isoformat()})"
        context.log.info(
            "built %s: %d rows in %.2f s", model.table_name, build.row_count, build.seconds
        )
        return dg.MaterializeResult(metadata=result)

    return _model


def build_model_definitions(
    models_folder: Path,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    default_country: str,
    rules: Sequence[MartRule] = (),
) -> dg.Definitions:
    """Assets and checks for every SQL model in `models_folder`, plus checks for `rules`.

    `partitions_def` (a time-window partitions definition) applies to the models whose YAML says
    `partitioned_by`. Raises `ModelError` naming the file for a broken folder (e.g. a cycle).
    """
    project = ModelProject(models_folder)
    return dg.Definitions(
        assets=[
            model_asset(project, model, partitions_def, default_country)
            for model in project.models.values()
        ],
        asset_checks=model_checks(project, rules),
    )


@dg.definitions
def models() -> dg.Definitions:
    """The project's own models (dbt_like_models/), with the configured partitions and country."""
    settings = load_settings()
    return build_model_definitions(
        models_dir(), monthly_partitions(settings), settings.default_country, mart_rules()
    )
