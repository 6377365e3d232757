"""SQL models become assets with parsed deps and lineage, idempotent partition writes, blocking contract checks."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from chaser_pipeline.assets.models import build_model_definitions
from chaser_pipeline.checks import CHASER_DATE_PATTERN, ledger_checks, ledger_queries
from chaser_pipeline.ledger import LEDGER_TABLES
from chaser_pipeline.modelling import (
    ModelError,
    ModelProject,
    build_model,
    find_violations,
    run_models,
)

# BackfillPolicy is beta in 1.13; the warning says nothing about these tests.
pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")

PARTITIONS = dg.MonthlyPartitionsDefinition(start_date="2024-01-01")

STG_INVOICES = """
-- Invoices as landed, renamed and cast.
with source as (
    select * from landing.invoices
),
final as (
    select
        invoice_id,
        customer_id as customer_external_id,
        upper(status) as status,
        total,
        issue_date
    from source
)
select * from final
"""

STG_PAYMENTS = """
with source as (
    select * from landing.payments
)
select payment_id, invoice_id, amount from source where not is_reversed
"""

CHASER_INVOICES = """
with invoices as (
    select * from stg_invoices
    where issue_date >= $window_start and issue_date < $window_end
),
paid as (
    select invoice_id, sum(amount) as paid_amount from stg_payments group by invoice_id
),
currencies as (
    select * from ref_iso4217_currencies
),
final as (
    select
        i.invoice_id,
        i.customer_external_id,
        i.status,
        i.total,
        least(coalesce(p.paid_amount, 0), i.total) as amount_paid,
        strftime(i.issue_date, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' as date
    from invoices as i
    left join paid as p on p.invoice_id = i.invoice_id
)
select * from final
"""

CHASER_INVOICES_YML = """
description: Invoices as Chaser gets them.
partitioned_by: date
checks:
  unique: [invoice_id]
  not_null: [invoice_id, status]
  accepted_values:
    status: [AUTHORISED, PAID]
  relationships:
    invoice_id: stg_invoices.invoice_id
columns:
  amount_paid: Payments applied, capped at the total.
"""


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(textwrap.dedent(text).lstrip())


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    write(folder, "stg_invoices.sql", STG_INVOICES)
    write(folder, "stg_payments.sql", STG_PAYMENTS)
    write(folder, "chaser_invoices.sql", CHASER_INVOICES)
    write(folder, "chaser_invoices.yml", CHASER_INVOICES_YML)
    return folder


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A pipeline DuckDB with landed invoices (Jan-Feb 2024) and payments, plus a lookup table."""
    path = tmp_path / "p.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema landing")
        for table in ("invoices", "payments"):
            columns = ", ".join(f"{c} {t}" for c, t in LEDGER_TABLES[table].columns)
            con.execute(f"create table landing.{table} ({columns})")
        con.execute(
            """
            insert into landing.invoices
            select 'inv-' || x, 'N' || x, 'cus-1',
                   case when x % 2 = 0 then 'paid' else 'authorised' end, 'GBP',
                   10.00, 12.00, date '2024-01-01' + x::int, date '2024-04-01', now()::timestamp
            from range(50) t(x)
            """
        )
        con.execute(
            """
            insert into landing.payments
            select 'pay-' || x, 'inv-' || x, 5.00, now()::timestamp, x = 3, now()::timestamp
            from range(20) t(x)
            """
        )
        con.execute("create table ref_iso4217_currencies as select 'GBP' as code")
    return path


def resources(database: Path) -> dict[str, object]:
    return {"duckdb": DuckDBResource(database=str(database))}


def keys(names) -> set[dg.AssetKey]:
    return {dg.AssetKey(n) for n in names}


def by_name(assets: list[dg.AssetsDefinition]) -> dict[str, dg.AssetsDefinition]:
    return {a.key.to_user_string(): a for a in assets}


def test_each_sql_file_is_an_asset_with_deps_parsed_from_sql(models: Path) -> None:
    assets, checks = build_model_definitions(models, PARTITIONS)
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

    check_names = {key.name for c in checks for key in c.check_keys}
    assert check_names == {
        "unique_invoice_id",
        "not_null_columns",
        "accepted_values_status",
        "relationship_invoice_id",
    }
    assert all(spec.blocking for c in checks for spec in c.check_specs)
    assert all(spec.description for c in checks for spec in c.check_specs)


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
    assets, _ = build_model_definitions(models, PARTITIONS)
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
    assets, checks = build_model_definitions(models, PARTITIONS)
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
    assets, checks = build_model_definitions(models, PARTITIONS)
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


def test_a_dependency_cycle_names_the_files(tmp_path: Path) -> None:
    write(tmp_path, "first.sql", "select * from second")
    write(tmp_path, "second.sql", "with x as (select * from third) select * from x")
    write(tmp_path, "third.sql", "select * from first")
    with pytest.raises(
        ModelError, match=r"cycle.*first\.sql -> second\.sql -> third\.sql -> first\.sql"
    ):
        build_model_definitions(tmp_path, PARTITIONS)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        pytest.param(
            "select * from landing.invoicez", "landing.invoicez", id="unknown-landing-table"
        ),
        pytest.param("select $cutoff as x", "unknown parameters", id="unknown-parameter"),
    ],
)
def test_broken_models_fail_with_the_file_named(tmp_path: Path, sql: str, message: str) -> None:
    write(tmp_path, "broken.sql", sql)
    with duckdb.connect() as con, pytest.raises(ModelError, match=message):
        run_models(con, tmp_path)


def test_run_models_builds_everything_over_the_whole_history(models: Path, database: Path) -> None:
    with duckdb.connect(str(database)) as con:
        builds = run_models(con, models)
        assert list(builds) == ["stg_invoices", "stg_payments", "chaser_invoices"]
        assert builds["chaser_invoices"].row_count == 50
        paid = con.execute(
            "select amount_paid from chaser_invoices where invoice_id = 'inv-3'"
        ).fetchall()
    assert paid == [(0,)]  # its one payment is reversed
    lineage = ModelProject(models).column_lineage("chaser_invoices")
    assert lineage["amount_paid"] == [("stg_payments", "amount"), ("stg_invoices", "total")] or set(
        lineage["amount_paid"]
    ) == {("stg_payments", "amount"), ("stg_invoices", "total")}


MARTS = """
create table chaser_customers as select * from (values ('cus-1')) t(external_id);
create table chaser_invoices as select * from (values
    ('inv-1', 'cus-1', 'GBP', 10.00::decimal(18,2), 4.00::decimal(18,2), 6.00::decimal(18,2),
     '2024-01-01T00:00:00.000Z', '2024-02-01T00:00:00.000Z', null),
    ('inv-2', 'cus-9', 'XXY', 10.00, 4.00, 5.00, '2024-01-01', '2024-02-01T00:00:00.000Z',
     '2024-01-05T10:00:00.000Z')
) t(invoice_id, customer_external_id, currency_code, total, amount_paid, amount_due, date, due_date,
    fully_paid_date);
create table chaser_credit_notes as select * from (values
    ('cn-1', 'cus-1', 'EUR', '2024-01-01T00:00:00.000Z', 10.00::decimal(18,2), 11.00::decimal(18,2)),
    ('cn-2', 'cus-1', 'EUR', '2024-01-01T00:00:00.000Z', 10.00, 0.00)
) t(credit_note_id, customer_external_id, currency_code, date, total, remaining_credit);
create table chaser_rejections as select * from (values
    ('invoice', 'inv-7', 'overpaid', 'paid 12.00 of 10.00', 'reported'),
    ('customer', 'cus-3', 'invalid_email', 'not an address', 'reported')
) t(entity, key, reason_code, detail, severity);
"""


def test_ledger_checks_find_each_broken_rule() -> None:
    with duckdb.connect() as con:
        con.execute(MARTS)
        found = {
            (asset, query.name): find_violations(con, query) for asset, query, _ in ledger_queries()
        }
    counts = {key: v.count for key, v in found.items()}
    assert counts == {
        ("chaser_invoices", "amounts_add_up"): 1,
        ("chaser_credit_notes", "remaining_credit_within_total"): 1,
        ("chaser_invoices", "currency_code_iso4217"): 1,
        ("chaser_invoices", "dates_in_chaser_format"): 1,
        ("chaser_credit_notes", "currency_code_iso4217"): 0,
        ("chaser_credit_notes", "dates_in_chaser_format"): 0,
        ("chaser_rejections", "overpaid_invoices"): 1,
        ("chaser_rejections", "over_allocated_credit_notes"): 0,
        ("chaser_rejections", "invalid_emails_left_out"): 1,
    }
    assert found[("chaser_invoices", "dates_in_chaser_format")].examples == [
        {"invoice_id": "inv-2", "date_column": "date", "value": "2024-01-01"}
    ]
    assert CHASER_DATE_PATTERN.startswith("^")
    severities = {
        key.name: spec.blocking
        for c in ledger_checks
        for key, spec in zip(c.check_keys, c.check_specs, strict=True)
    }
    assert severities["amounts_add_up"] and not severities["overpaid_invoices"]


def test_partitioned_write_binds_only_the_window(models: Path, database: Path) -> None:
    """The partition write filters by text on the declared column, with bound values."""
    project = ModelProject(models)
    with duckdb.connect(str(database)) as con:
        run_models(con, models, only=["stg_invoices", "stg_payments"])
        build = build_model(
            con, project.models["chaser_invoices"], (date(2024, 1, 1), date(2024, 1, 11))
        )
        assert build.row_count == 10
        assert con.execute("select count(*) from chaser_invoices").fetchall() == [(10,)]


def test_a_partition_write_refuses_a_table_with_other_columns(models: Path, database: Path) -> None:
    project = ModelProject(models)
    window = (date(2024, 1, 1), date(2024, 2, 1))
    with duckdb.connect(str(database)) as con:
        run_models(con, models, only=["stg_invoices", "stg_payments"])
        con.execute("create table chaser_invoices as select 1 as invoice_id")
        with pytest.raises(ModelError, match=r"drop table main\.chaser_invoices"):
            build_model(con, project.models["chaser_invoices"], window)
        # The failed write rolled back: the old table is untouched.
        assert con.execute("select * from chaser_invoices").fetchall() == [(1,)]
