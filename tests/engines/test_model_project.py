"""Model project contract, without Dagster: dependency order and cycles, broken models named by
file, whole-history and windowed builds, and the ledger rules on the marts as violation queries."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from chaser_pipeline.models.build import build_model, run_models
from chaser_pipeline.models.contract import find_violations
from chaser_pipeline.models.names import ModelError
from chaser_pipeline.models.project import ModelProject
from chaser_pipeline.models.rules import CHASER_DATE_PATTERN, mart_rules
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
        ("chaser_rejections", "overpaid_invoices"): 1,
        ("chaser_rejections", "over_allocated_credit_notes"): 0,
        ("chaser_rejections", "invalid_emails_left_out"): 1,
    }
    assert found[("chaser_invoices", "dates_in_chaser_format")].examples == [
        {"invoice_id": "inv-2", "date_column": "date", "value": "2024-01-01"}
    ]
    assert CHASER_DATE_PATTERN.startswith("^")
    severities = {rule.query.name: rule.severity for rule in mart_rules()}
    assert severities["amounts_add_up"] == "ERROR"
    assert severities["overpaid_invoices"] == "WARN"


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
