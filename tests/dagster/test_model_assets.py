"""Model assets contract: each SQL file is an asset with deps and column lineage parsed from its SQL,
partition writes are idempotent, and a failed contract check blocks the models downstream."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from chaser_pipeline.defs.models.assets import build_model_definitions
from chaser_pipeline.models.build import run_models
from tests.support.toy_models import CHASER_INVOICES_YML, database, models, write

# BackfillPolicy is beta in 1.13; the warning says nothing about these tests.
pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")

PARTITIONS = dg.MonthlyPartitionsDefinition(start_date="2024-01-01")

__all__ = ["database", "models"]  # fixtures


def build(folder: Path) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    defs = build_model_definitions(folder, PARTITIONS, "GB")
    return list(defs.assets or []), list(defs.asset_checks or [])


def resources(database: Path) -> dict[str, object]:
    return {"duckdb": DuckDBResource(database=str(database))}


def keys(names) -> set[dg.AssetKey]:
    return {dg.AssetKey(n) for n in names}


def by_name(assets: list[dg.AssetsDefinition]) -> dict[str, dg.AssetsDefinition]:
    return {a.key.to_user_string(): a for a in assets}


def test_each_sql_file_is_an_asset_with_deps_parsed_from_sql(models: Path) -> None:
    assets, checks = build(models)
    found = by_name(assets)
    assert set(found) == {"stg_invoices", "stg_payments", "chaser_invoices"}
    deps = {name: set(a.asset_deps[a.key]) for name, a in found.items()}
    assert deps["stg_invoices"] == keys(["ledger_invoices"])
    assert deps["stg_payments"] == keys(["ledger_payments"])
    # CTE names and the field rules' lookup table are not dependencies.
    assert deps["chaser_invoices"] == keys(["stg_invoices", "stg_payments"])

    invoices = found["chaser_invoices"]
    spec = next(iter(invoices.specs))
    assert spec.group_name == "models"
    assert spec.description == "Invoices as Chaser gets them."
    assert set(spec.kinds) == {"duckdb", "sql"}
    assert invoices.partitions_def == PARTITIONS
    assert invoices.backfill_policy == dg.BackfillPolicy.single_run()
    assert found["stg_invoices"].partitions_def is None
    # The SQL header comment is the description when there is no YAML.
    assert (
        next(iter(found["stg_invoices"].specs)).description
        == "Invoices as landed, renamed and cast."
    )
    static = spec.metadata["dagster/column_schema"]
    assert [c.name for c in static.columns] == [
        "invoice_id",
        "customer_external_id",
        "status",
        "total",
        "amount_paid",
        "date",
    ]
    assert static.columns[4].description == "Payments applied, capped at the total."

    # checks that read only their model and what it reads run in the model's own step
    specs = [spec for a in assets for spec in a.check_specs] + [
        spec for c in checks for spec in c.check_specs
    ]
    assert {spec.name for spec in specs} == {
        "unique_invoice_id",
        "not_null_columns",
        "accepted_values_status",
        "relationship_invoice_id",
    }
    assert {spec.name for spec in invoices.check_specs} == {spec.name for spec in specs}
    assert all(spec.blocking for spec in specs)
    assert all(spec.description for spec in specs)


def test_a_new_sql_file_adds_an_asset_with_its_deps_and_column_lineage(
    models: Path, database: Path
) -> None:
    write(
        models,
        "invoice_balances.sql",
        """
        with invoices as (
            select * from landing.invoices
        ),
        paid as (
            select invoice_id, sum(amount) as paid_amount from stg_payments group by invoice_id
        ),
        final as (
            select
                i.invoice_id,
                i.total - coalesce(p.paid_amount, 0) as amount_due
            from invoices as i
            left join paid as p using (invoice_id)
        )
        select * from final
        """,
    )
    assets, _ = build(models)
    found = by_name(assets)
    balances = found["invoice_balances"]
    assert set(balances.asset_deps[balances.key]) == keys(["ledger_invoices", "stg_payments"])

    result = dg.materialize(
        [found["stg_payments"], balances],
        resources=resources(database),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    (event,) = result.asset_materializations_for_node("invoice_balances")
    lineage = event.metadata["dagster/column_lineage"].value.deps_by_column
    assert set(lineage["amount_due"]) == {
        dg.TableColumnDep(asset_key=dg.AssetKey("ledger_invoices"), column_name="total"),
        dg.TableColumnDep(asset_key=dg.AssetKey("stg_payments"), column_name="amount"),
    }
    assert lineage["invoice_id"] == [
        dg.TableColumnDep(asset_key=dg.AssetKey("ledger_invoices"), column_name="invoice_id")
    ]
    assert event.metadata["dagster/row_count"].value == 50
    assert event.metadata["dagster/table_name"].value == "main.invoice_balances"
    schema = event.metadata["dagster/column_schema"].value
    assert [(c.name, c.type) for c in schema.columns] == [
        ("invoice_id", "VARCHAR"),
        ("amount_due", "DECIMAL(38,2)"),
    ]


def _partition_rows(database: Path) -> list[tuple]:
    with duckdb.connect(str(database)) as con:
        return con.execute("select * from chaser_invoices order by invoice_id").fetchall()


def test_partition_write_is_idempotent_and_leaves_other_months_alone(
    models: Path, database: Path
) -> None:
    assets, checks = build(models)
    found = by_name(assets)
    upstream = [found["stg_invoices"], found["stg_payments"]]
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize(upstream, resources=resources(database), instance=instance).success

    def run(**kwargs) -> dg.ExecuteInProcessResult:
        result = dg.materialize(
            [found["chaser_invoices"], *checks, *upstream],
            selection=["chaser_invoices"],
            resources=resources(database),
            instance=instance,
            **kwargs,
        )
        assert result.success
        return result

    first = run(partition_key="2024-02-01")
    rows = _partition_rows(database)
    assert len(rows) == 19  # issue dates 2024-02-01 .. 2024-02-19
    assert all(r[5].startswith("2024-02-") for r in rows)
    (event,) = first.asset_materializations_for_node("chaser_invoices")
    assert event.metadata["dagster/row_count"].value == 19

    run(partition_key="2024-02-01")
    assert _partition_rows(database) == rows

    # A range run (single-run backfill policy) writes both months in one transaction.
    run(
        tags={
            "dagster/asset_partition_range_start": "2024-01-01",
            "dagster/asset_partition_range_end": "2024-02-01",
        }
    )
    months = {r[5][:7] for r in _partition_rows(database)}
    assert months == {"2024-01", "2024-02"}
    assert len(_partition_rows(database)) == 50


def test_failed_contract_check_blocks_downstream_models(models: Path, database: Path) -> None:
    write(
        models, "chaser_invoices.yml", CHASER_INVOICES_YML.replace("[AUTHORISED, PAID]", "[PAID]")
    )
    write(models, "invoice_report.sql", "select count(*) as invoices from chaser_invoices")
    assets, checks = build(models)
    with duckdb.connect(str(database)) as con:
        run_models(con, models, only=["stg_invoices", "stg_payments"])

    result = dg.materialize(
        [*assets, *checks],
        selection=["chaser_invoices", "invoice_report"],
        resources=resources(database),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key="2024-01-01",
        raise_on_error=False,
    )
    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    failed = evaluations["accepted_values_status"]
    assert not failed.passed
    assert failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["violations"].value == 15  # x odd in 0..30: January AUTHORISED
    examples = failed.metadata["examples"].value
    assert len(examples) == 5
    assert examples[0]["status"] == "AUTHORISED"
    assert evaluations["unique_invoice_id"].passed
    assert result.asset_materializations_for_node("chaser_invoices")
    assert not result.asset_materializations_for_node("invoice_report")


def test_the_definition_shows_column_lineage_and_sql_before_any_run(models: Path) -> None:
    """The open-source UI does not display `dagster/column_lineage`: a readable entry does."""
    assets, _ = build(models)
    spec = next(iter(by_name(assets)["chaser_invoices"].specs))
    lineage = spec.metadata["column_lineage"].value
    assert "- `amount_paid` ← `stg_invoices.total`, `stg_payments.amount`" in lineage
    assert "- `invoice_id` ← `stg_invoices.invoice_id`" in lineage
    assert spec.metadata["sql"].value.startswith("```sql\nwith invoices as (")
    deps = spec.metadata["dagster/column_lineage"].deps_by_column
    assert deps["status"] == [
        dg.TableColumnDep(asset_key=dg.AssetKey("stg_invoices"), column_name="status")
    ]


def test_unchanged_inputs_are_not_rebuilt_and_a_landed_change_is(
    models: Path, database: Path
) -> None:
    assets, _ = build(models)
    stg_invoices = by_name(assets)["stg_invoices"]
    instance = dg.DagsterInstance.ephemeral()

    def run() -> dg.AssetMaterialization:
        result = dg.materialize([stg_invoices], resources=resources(database), instance=instance)
        assert result.success
        (event,) = result.asset_materializations_for_node("stg_invoices")
        return event

    first, second = run(), run()
    assert first.metadata["rebuilt"].value is True
    assert second.metadata["rebuilt"].value is False
    assert second.metadata["dagster/row_count"].value == 50
    assert second.tags["dagster/data_version"] == first.tags["dagster/data_version"]

    with duckdb.connect(str(database)) as con:
        con.execute("update landing.invoices set total = 11.00 where invoice_id = 'inv-7'")
    third = run()
    assert third.metadata["rebuilt"].value is True
    assert third.tags["dagster/data_version"] != first.tags["dagster/data_version"]
    with duckdb.connect(str(database)) as con:
        assert con.execute(
            "select total from stg_invoices where invoice_id = 'inv-7'"
        ).fetchall() == [(11,)]


def test_a_range_run_gives_each_month_its_own_row_count(models: Path, database: Path) -> None:
    assets, _ = build(models)
    found = by_name(assets)
    instance = dg.DagsterInstance.ephemeral()
    upstream = [found["stg_invoices"], found["stg_payments"]]
    assert dg.materialize(upstream, resources=resources(database), instance=instance).success
    result = dg.materialize(
        [found["chaser_invoices"], *upstream],
        selection=["chaser_invoices"],
        resources=resources(database),
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": "2024-01-01",
            "dagster/asset_partition_range_end": "2024-02-01",
        },
    )
    assert result.success
    events = {e.partition: e for e in result.asset_materializations_for_node("chaser_invoices")}
    # issue dates 2024-01-01 + 0..49 days: 31 in January, 19 in February
    assert events["2024-01-01"].metadata["dagster/row_count"].value == 31
    assert events["2024-02-01"].metadata["dagster/row_count"].value == 19
    assert events["2024-02-01"].metadata["window"].value == "2024-02-01 to 2024-02-29"
    # the first month says what it carries, as a one-month run of it and its sync say
    assert events["2024-01-01"].metadata["window"].value == "everything up to 2024-01-31"
    assert events["2024-02-01"].metadata["run_row_count"].value == 50
    # the run starts at the first partition, which also carries every invoice issued before it
    assert events["2024-02-01"].metadata["run_window"].value == "everything up to 2024-02-29"


def test_checks_run_in_their_models_step_and_can_run_alone(models: Path, database: Path) -> None:
    write(models, "invoice_report.sql", "select count(*) as invoices from stg_invoices")
    write(
        models,
        "invoice_report.yml",
        "checks:\n  relationships:\n    invoices: chaser_invoices.total\n",
    )
    assets, checks = build(models)
    # the report's relationship reads chaser_invoices, which the report does not read: a step
    # of its own, after both
    assert [key.name for c in checks for key in c.check_keys] == ["relationship_invoices"]
    with duckdb.connect(str(database)) as con:
        run_models(con, models, only=["stg_invoices", "stg_payments", "chaser_invoices"])

    result = dg.materialize(
        [by_name(assets)["chaser_invoices"]],
        selection=dg.AssetSelection.checks_for_assets("chaser_invoices"),
        resources=resources(database),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert not result.asset_materializations_for_node("chaser_invoices")
    evaluations = {e.check_name for e in result.get_asset_check_evaluations()}
    assert evaluations == {
        "unique_invoice_id",
        "not_null_columns",
        "accepted_values_status",
        "relationship_invoice_id",
    }
