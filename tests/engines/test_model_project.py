"""Model project contract, without Dagster: dependency order and cycles, broken models named by
file, whole-history and windowed builds, the ledger rules on the marts as violation queries, and
the static types and lineage kept between loads only while nothing they depend on changes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from chaser_pipeline.models.build import build_model, run_models
from chaser_pipeline.models.contract import find_violations
from chaser_pipeline.models.inputs import ensure_holdings
from chaser_pipeline.models.names import ModelError
from chaser_pipeline.models.project import ModelProject
from chaser_pipeline.models.rules import CHASER_DATE_PATTERN, mart_rules
from chaser_pipeline.paths import models_dir
from tests.support.models import project as shared_project
from tests.support.toy_models import database, models, write

__all__ = ["database", "models"]  # fixtures


def test_a_dependency_cycle_names_the_files(tmp_path: Path) -> None:
    write(tmp_path, "first.sql", "select * from second")
    write(tmp_path, "second.sql", "with x as (select * from third) select * from x")
    write(tmp_path, "third.sql", "select * from first")
    with pytest.raises(
        ModelError, match=r"cycle.*first\.sql -> second\.sql -> third\.sql -> first\.sql"
    ):
        ModelProject(tmp_path)


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
create table chaser_customers as select * from (values
    ('cus-1', '+447700900123'),
    ('cus-2', '07700 900123')
) t(external_id, mobile_number);
create table chaser_contact_persons as select * from (values
    ('cus-1:a@b.co', null),
    ('ct-1', '+1')
) t(external_id, mobile_number);
create table chaser_overpayments as select * from (values
    ('pay-1', 'GBP', '2024-01-01T09:30:00.000Z', 10.00::decimal(18,2), 10.00::decimal(18,2)),
    ('pay-2', 'GBX', '2024-01-01 09:30', 10.00, 0.00),
    ('pay-3', 'GBP', '2024-01-01T09:30:00.000Z', 10.00, -1.00)
) t(overpayment_id, currency_code, date, total, remaining_credit);
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
    ('customer', 'cus-3', 'invalid_email', 'not an address', 'reported'),
    ('invoice', 'inv-8', 'stale_in_chaser', 'Chaser holds inv-8, now held back', 'stale_in_chaser'),
    ('allocation', 'a-1', 'allocation_other_currency', 'EUR to GBP', 'reported'),
    ('allocation', 'a-2', 'allocation_other_customer', 'cus-2 to cus-1', 'reported'),
    ('invoice', 'inv-9', 'customer_held_back', 'cus-3 held back', 'reported'),
    ('invoice', 'inv-5', 'deleted_in_ledger', 'removed', 'reported')
) t(entity, key, reason_code, detail, severity);
"""


def test_ledger_checks_find_each_broken_rule() -> None:
    with duckdb.connect() as con:
        con.execute(MARTS)
        found = {
            (rule.model, rule.query.name): find_violations(con, rule.query) for rule in mart_rules()
        }
    counts = {key: v.count for key, v in found.items()}
    assert counts == {
        ("chaser_invoices", "amounts_add_up"): 1,
        ("chaser_credit_notes", "remaining_credit_within_total"): 1,
        ("chaser_invoices", "currency_code_iso4217"): 1,
        ("chaser_invoices", "dates_in_chaser_format"): 1,
        ("chaser_credit_notes", "currency_code_iso4217"): 0,
        ("chaser_credit_notes", "dates_in_chaser_format"): 0,
        ("chaser_overpayments", "remaining_credit_within_total"): 1,
        ("chaser_customers", "mobile_number_e164"): 1,
        ("chaser_contact_persons", "mobile_number_e164"): 1,
        ("chaser_overpayments", "currency_code_iso4217"): 1,
        ("chaser_overpayments", "dates_in_chaser_format"): 1,
        ("chaser_rejections", "overpaid_invoices"): 1,
        ("chaser_rejections", "over_allocated_credit_notes"): 0,
        ("chaser_rejections", "invalid_emails_left_out"): 1,
        ("chaser_rejections", "documents_stale_in_chaser"): 1,
        ("chaser_rejections", "allocations_ignored"): 2,
        ("chaser_rejections", "documents_waiting_for_their_customer"): 1,
        ("chaser_rejections", "withdrawn_from_the_ledger"): 1,
    }
    assert found[("chaser_invoices", "dates_in_chaser_format")].examples == [
        {"invoice_id": "inv-2", "date_column": "date", "value": "2024-01-01"}
    ]
    assert CHASER_DATE_PATTERN.startswith("^")
    severities = {rule.query.name: rule.severity for rule in mart_rules()}
    assert severities["amounts_add_up"] == "ERROR"
    assert severities["overpaid_invoices"] == "WARN"
    assert severities["documents_stale_in_chaser"] == "WARN"


def test_the_project_reads_landing_deleted_keys_and_holdings_without_making_them_assets():
    project = ModelProject(models_dir())
    stg = project.models["stg_invoices"]
    assert stg.landing_tables == ("invoices",)  # deleted_keys is read beside it, no asset
    assert project.models["stg_contacts"].landing_tables == ("contacts",)
    assert "holdings" not in project.models["int_overpayments"].model_refs
    assert project.upstream_models("chaser_contact_persons") == ["int_contact_persons"]


@pytest.mark.parametrize(
    "mart",
    [
        "chaser_customers",
        "chaser_invoices",
        "chaser_credit_notes",
        "chaser_contact_persons",
        "chaser_overpayments",
    ],
)
def test_every_mart_column_has_lineage_back_to_the_ledger(mart: str) -> None:
    """Column lineage still parses: every payload column of every mart names its upstream."""
    project = shared_project()
    lineage = project.column_lineage(mart)
    columns = [c.name for c in project.static_columns(mart)]
    assert columns and set(lineage) == set(columns)
    assert all(lineage[c] for c in columns), {c: lineage[c] for c in columns}


def test_the_model_build_creates_chaser_holdings_empty_and_keeps_the_syncs_view(tmp_path):
    with duckdb.connect(str(tmp_path / "p.duckdb")) as con:
        ensure_holdings(con)
        assert con.execute("select count(*) from chaser_sync.holdings").fetchall() == [(0,)]
        con.execute("drop table chaser_sync.holdings")
        con.execute(
            "create view chaser_sync.holdings as "
            "select 'invoices' as object, 'INV-1' as key, 'h' as payload_hash"
        )
        ensure_holdings(con)  # the sync's view stays as it is
        assert con.execute("select key from chaser_sync.holdings").fetchall() == [("INV-1",)]


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


def test_static_types_are_kept_between_loads_until_a_model_changes(models: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    fresh = ModelProject(models)  # no cache: typed at load
    first = ModelProject(models, types_cache_dir=cache)
    names = list(first.models)
    assert {n: first.static_columns(n) for n in names} == {
        n: fresh.static_columns(n) for n in names
    }
    assert {n: first.column_lineage(n) for n in names} == {
        n: fresh.column_lineage(n) for n in names
    }
    [kept] = cache.glob("model-types-*.json")

    # the next load reads the file (a value planted in it shows through)...
    planted = kept.read_text().replace('"VARCHAR"', '"PLANTED"', 1)
    assert planted != kept.read_text()
    kept.write_text(planted)
    again = ModelProject(models, types_cache_dir=cache)
    assert "PLANTED" in {c.type for n in names for c in again.static_columns(n)}

    # ...until a model changes: then it is typed afresh, under another name
    write(models, "stg_invoices.sql", (models / "stg_invoices.sql").read_text() + "\n-- edited")
    changed = ModelProject(models, types_cache_dir=cache)
    assert "PLANTED" not in {c.type for n in names for c in changed.static_columns(n)}
    assert len(list(cache.glob("model-types-*.json"))) == 2

    # a damaged file or a folder that cannot be written only costs the typing
    for path in cache.glob("model-types-*.json"):
        path.write_text("{not json")
    damaged = ModelProject(models, types_cache_dir=cache)
    assert damaged.static_columns("stg_invoices") == changed.static_columns("stg_invoices")
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    unwritable = ModelProject(models, types_cache_dir=blocked / "cache")
    assert unwritable.static_columns("stg_invoices") == changed.static_columns("stg_invoices")
