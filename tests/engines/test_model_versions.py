"""Model input versions: equal exactly when a model's code, settings and input tables' rows are
equal, so an unchanged model is never rebuilt and a changed one always is."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from chaser_pipeline.db import table_fingerprint
from chaser_pipeline.models.project import load_model
from chaser_pipeline.models.versions import input_version, is_current, read_tables, record_build

NOW = datetime(2026, 11, 21)


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("create schema landing")
    con.execute(
        "create table landing.invoices as select range::varchar as id, 1 as n from range(5)"
    )
    con.execute("create table main.rates as select 'GBP' as code")
    yield con
    con.close()


@pytest.fixture
def model(tmp_path: Path):
    sql = tmp_path / "stg_invoices.sql"
    sql.write_text(
        "with source as (select * from landing.invoices)\n"
        "select s.id, s.n from source as s join rates on rates.code = 'GBP'"
    )
    return load_model(sql)


def test_a_model_reads_its_tables_not_its_ctes(model) -> None:
    assert read_tables(model) == ("landing.invoices", "main.rates")


def test_the_fingerprint_ignores_row_order_and_sees_every_value(con) -> None:
    before = table_fingerprint(con, "landing.invoices")
    con.execute("create table landing.shuffled as select * from landing.invoices order by id desc")
    assert table_fingerprint(con, "landing.shuffled") == before
    con.execute("update landing.invoices set n = 2 where id = '3'")
    assert table_fingerprint(con, "landing.invoices") != before
    assert table_fingerprint(con, "landing.nothing") == "missing"


def test_duplicate_rows_count(con) -> None:
    before = table_fingerprint(con, "landing.invoices")
    con.execute("insert into landing.invoices select * from landing.invoices where id = '1'")
    con.execute("insert into landing.invoices select * from landing.invoices where id = '1'")
    assert table_fingerprint(con, "landing.invoices") != before


def test_the_version_changes_with_inputs_settings_and_code(con, model, tmp_path) -> None:
    version = input_version(con, model, settings=["GB"])
    assert input_version(con, model, settings=["GB"]) == version
    assert input_version(con, model, settings=["FR"]) != version
    con.execute("insert into main.rates values ('EUR')")
    assert input_version(con, model, settings=["GB"]) != version
    edited = tmp_path / "stg_invoices.sql"
    edited.write_text(model.sql + " where s.n > 0")
    assert input_version(con, load_model(edited), settings=["GB"]) != input_version(
        con, model, settings=["GB"]
    )


def test_a_build_is_current_for_the_partitions_it_recorded(con, model) -> None:
    assert not is_current(con, model, [""], "v1")  # no table yet
    con.execute("create table main.stg_invoices as select 1 as x")
    assert not is_current(con, model, [""], "v1")
    record_build(con, model, ["2024-01-01", "2024-02-01"], "v1", NOW)
    assert is_current(con, model, ["2024-01-01"], "v1")
    assert is_current(con, model, ["2024-01-01", "2024-02-01"], "v1")
    assert not is_current(con, model, ["2024-01-01", "2024-03-01"], "v1")
    assert not is_current(con, model, ["2024-01-01"], "v2")
    # a whole-table build replaces every month's record
    record_build(con, model, [""], "v2", NOW)
    assert is_current(con, model, [""], "v2")
    assert not is_current(con, model, ["2024-01-01"], "v1")


def test_an_upstream_model_counts_by_the_version_it_was_built_from(con, tmp_path) -> None:
    sql = tmp_path / "downstream.sql"
    sql.write_text("select * from stg_invoices")
    downstream = load_model(sql)
    con.execute("create table main.stg_invoices as select 1 as x")
    unrecorded = input_version(con, downstream, models={"stg_invoices"})
    record_build(con, load_model_named(tmp_path, "stg_invoices"), [""], "v1", NOW)
    v1 = input_version(con, downstream, models={"stg_invoices"})
    assert v1 != unrecorded
    record_build(con, load_model_named(tmp_path, "stg_invoices"), [""], "v2", NOW)
    assert input_version(con, downstream, models={"stg_invoices"}) != v1


def load_model_named(folder: Path, name: str):
    path = folder / f"{name}.sql"
    if not path.exists():
        path.write_text("select 1 as x")
    return load_model(path)
