"""SQL model assets: one asset per `dbt_like_models/**/<name>.sql`, built by a factory when
Dagster loads the code location, with the contract checks of every model.

One asset and one step per file (not one step for every model) keeps each model's
materializations, partitions and checks its own: only the invoice and credit-note marts are
partitioned, and a failed contract check blocks exactly the assets downstream of its model. Each is
a one-spec `multi_asset` so that its checks, which run in its step, can also run alone.
"""

import warnings
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from chaser_pipeline.db import document_window, month_key, utc_now
from chaser_pipeline.defs.models.checks import (
    ModelCheck,
    model_checks,
    runs_in_model_step,
    separate_check,
)
from chaser_pipeline.defs.partitions import describe_window, monthly_partitions
from chaser_pipeline.defs.resources import duckdb_connection, ensure_run_local_ledger
from chaser_pipeline.models.build import build_model, table_schema_rows
from chaser_pipeline.models.field_rules import register_field_rules
from chaser_pipeline.models.names import landing_asset_name
from chaser_pipeline.models.project import Model, ModelProject
from chaser_pipeline.models.rules import MartRule, mart_rules
from chaser_pipeline.models.versions import (
    WHOLE_TABLE,
    is_current,
    model_input_version,
    record_build,
)
from chaser_pipeline.paths import data_dir, models_dir
from chaser_pipeline.settings import Settings, load_settings

GROUP = "models"
KINDS = {"duckdb", "sql"}


def _column_schema(columns: list[tuple[str, str]], descriptions: dict[str, str]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=ctype or "unknown", description=descriptions.get(name))
            for name, ctype in columns
        ]
    )


Lineage = dict[str, list[tuple[str, str]]]


def _column_lineage(lineage: Lineage, columns: list[str]) -> dg.TableColumnLineage:
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


def lineage_markdown(lineage: Lineage, columns: list[str]) -> str:
    """One line per output column: `column` ← `upstream_asset.column`, ... (what the open-source
    UI can show: it does not display `dagster/column_lineage`)."""
    lines = []
    for column in columns:
        sources = lineage.get(column)
        origin = (
            ", ".join(f"`{asset}.{upstream}`" for asset, upstream in sorted(sources))
            if sources
            else "no upstream column (a constant or a computed value)"
        )
        lines.append(f"- `{column}` ← {origin}")
    return "\n".join(lines) or "No column lineage known."


def _sql_markdown(model: Model) -> str:
    return f"```sql\n{model.sql}\n```"


def _scope(
    context: dg.AssetExecutionContext, partitioned: bool, history_start: date
) -> tuple[tuple[date, date] | None, list[str]]:
    """The window to build and the partition keys it covers; (None, [WHOLE_TABLE]) for a whole
    table (an unpartitioned model, or a run without partitions, which rebuilds every month).
    The first month's window also holds every document issued before the history start."""
    if partitioned and (context.has_partition_key or context.has_partition_key_range):
        # Works for one partition and for a range run (single-run backfill policy).
        time_window = context.partition_time_window
        window = document_window(time_window.start.date(), time_window.end.date(), history_start)
        return window, list(context.partition_keys)
    return None, [WHOLE_TABLE]


def _rows_by_month(
    con: duckdb.DuckDBPyConnection, model: Model, window: tuple[date, date], first: str = ""
) -> dict[str, int]:
    """Rows of the table in the window, by month partition key (YYYY-MM-01); rows issued
    before the history start count in its first month, rows dated after the current month in
    the current month's."""
    column = f'"{model.partitioned_by}"'
    return dict(
        con.execute(
            f"""select least(greatest(substr({column}::varchar, 1, 7) || '-01', $first), $last),
                count(*)
            from {model.table_name}
            where {column}::varchar >= $start and {column}::varchar < $end
            group by 1""",
            {
                "start": window[0].isoformat(),
                "end": window[1].isoformat(),
                "first": first,
                "last": month_key(utc_now()),
            },
        ).fetchall()
    )


def model_asset(
    project: ModelProject,
    model: Model,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    default_country: str,
    checks: Sequence[ModelCheck] = (),
    rebuild_from: Settings | None = None,
) -> dg.AssetsDefinition:
    """The asset that builds `model` in the pipeline's DuckDB (table `main.<name>`), and runs
    `checks` on it in the same step. `rebuild_from`: a partitioned model's step lands the ledger
    and builds the whole-history models first when the DuckDB never landed one (a monthly run on
    a fresh disk: `ensure_run_local_ledger`).

    Its column lineage and SQL are worked out here, once per code load, and shown on the
    definition (before any run) and on every materialization. A build whose inputs have the
    version of the last build is skipped: the table already holds those rows. The asset can be
    subset: its checks can run without a build (the UI's *Execute checks*)."""
    partitioned = model.partitioned_by is not None
    history_start = partitions_def.start.date()
    deps = [dg.AssetDep(landing_asset_name(t)) for t in model.landing_tables] + [
        dg.AssetDep(m) for m in project.upstream_models(model.name)
    ]
    descriptions = dict(model.column_descriptions)
    static_columns = project.static_columns(model.name)
    lineage = project.column_lineage(model.name)
    model_names = frozenset(project.models)
    static_names = [c.name for c in static_columns] or list(lineage)
    metadata: dict[str, Any] = {
        "dagster/table_name": model.table_name,
        "sql_file": dg.MetadataValue.path(str(model.path.relative_to(project.models_dir.parent))),
        "column_lineage": dg.MetadataValue.md(lineage_markdown(lineage, static_names)),
        "dagster/column_lineage": _column_lineage(lineage, static_names),
        "sql": dg.MetadataValue.md(_sql_markdown(model)),
    }
    if static_columns:
        metadata["dagster/column_schema"] = _column_schema(
            [(c.name, c.type) for c in static_columns], descriptions
        )
    if partitioned:
        metadata["partitioned_by"] = model.partitioned_by

    asset_key = dg.AssetKey(model.name)
    spec = dg.AssetSpec(
        asset_key,
        group_name=GROUP,
        description=model.description,
        kinds=KINDS,
        deps=deps,
        code_version=model.code_version,
        metadata=metadata,
    )
    # BackfillPolicy is beta in Dagster 1.13; a warning per model at every load helps nobody.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        asset_decorator = dg.multi_asset(
            name=model.name,
            specs=[spec],
            check_specs=[c.spec() for c in checks],
            can_subset=True,
            partitions_def=partitions_def if partitioned else None,
            backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        )

    @asset_decorator
    def _model(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> Iterator[Any]:
        selected = [c for c in checks if c.key in context.selected_asset_check_keys]
        if asset_key not in context.selected_asset_keys:
            with duckdb_connection(duckdb) as con:
                yield from [c.result(con) for c in selected]
            return
        window, partition_keys = _scope(context, partitioned, history_start)
        with duckdb_connection(duckdb) as con:
            if partitioned and rebuild_from is not None:
                ensure_run_local_ledger(context.log, con, rebuild_from)
            version = model_input_version(
                con, model, default_country=default_country, models=model_names
            )
            rebuilt = not is_current(con, model, partition_keys, version)
            if rebuilt:
                register_field_rules(con, default_country)
                build = build_model(con, model, window)
                record_build(con, model, partition_keys, version, utc_now())
                row_count, seconds = build.row_count, build.seconds
            else:
                row_count, seconds = _row_count(con, model, window), 0.0
            columns = table_schema_rows(con, model)
            by_month = _rows_by_month(con, model, window, partition_keys[0]) if window else {}
            check_results = [c.result(con) for c in selected]
        names = [c for c, _ in columns]
        result: dict[str, Any] = {}
        if window is not None:
            # First, so each month's own window and row count (set below for a range run,
            # overriding these) lead its metadata in the UI.
            result["window"] = describe_window(window)
        result["dagster/row_count"] = dg.MetadataValue.int(row_count)
        if len(partition_keys) > 1:
            # A range run: these are the run's; each month gets its own window and count.
            result["run_window"] = describe_window(window) if window else ""
            result["run_row_count"] = dg.MetadataValue.int(row_count)
            for key in partition_keys:
                month = partitions_def.time_window_for_partition_key(key)
                context.add_asset_metadata(
                    {
                        "window": describe_window(
                            document_window(month.start.date(), month.end.date(), history_start)
                        ),
                        "dagster/row_count": dg.MetadataValue.int(by_month.get(key, 0)),
                    },
                    partition_key=key,
                )
        result.update(
            {
                "rebuilt": rebuilt,
                "input_version": version,
                "elapsed_seconds": dg.MetadataValue.float(round(seconds, 3)),
                "dagster/table_name": model.table_name,
                "column_lineage": dg.MetadataValue.md(lineage_markdown(lineage, names)),
                "dagster/column_lineage": _column_lineage(lineage, names),
                "dagster/column_schema": _column_schema(columns, descriptions),
            }
        )
        if rebuilt:
            context.log.info("built %s: %d rows in %.2f s", model.table_name, row_count, seconds)
        else:
            context.log.info(
                "%s not rebuilt: its inputs and code are unchanged since the last build "
                "(input version %s, %d rows)",
                model.table_name,
                version,
                row_count,
            )
        yield dg.MaterializeResult(
            asset_key=asset_key,
            metadata=result,
            data_version=dg.DataVersion(version),
            check_results=check_results,
        )

    return _model


def _row_count(
    con: duckdb.DuckDBPyConnection, model: Model, window: tuple[date, date] | None
) -> int:
    if window is None:
        ((n,),) = con.execute(f"select count(*) from {model.table_name}").fetchall()
        return n
    return sum(_rows_by_month(con, model, window).values())


def build_model_definitions(
    models_folder: Path,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    default_country: str,
    rules: Sequence[MartRule] = (),
    rebuild_from: Settings | None = None,
    types_cache_dir: Path | None = None,
) -> dg.Definitions:
    """Assets and checks for every SQL model in `models_folder`, plus checks for `rules`.

    `partitions_def` (a time-window partitions definition) applies to the models whose YAML says
    `partitioned_by`. Raises `ModelError` naming the file for a broken folder (e.g. a cycle).
    """
    project = ModelProject(models_folder, types_cache_dir=types_cache_dir)
    checks = model_checks(project, rules)
    in_step = [c for c in checks if runs_in_model_step(project, c)]
    return dg.Definitions(
        assets=[
            model_asset(
                project,
                model,
                partitions_def,
                default_country,
                [c for c in in_step if c.model == model.name],
                rebuild_from,
            )
            for model in project.models.values()
        ],
        asset_checks=[separate_check(c) for c in checks if c not in in_step],
    )


@dg.definitions
def models() -> dg.Definitions:
    """The project's own models (dbt_like_models/), with the configured partitions and country."""
    settings = load_settings()
    return build_model_definitions(
        models_dir(),
        monthly_partitions(settings),
        settings.default_country,
        mart_rules(),
        rebuild_from=settings,
        types_cache_dir=data_dir() / "cache",
    )
