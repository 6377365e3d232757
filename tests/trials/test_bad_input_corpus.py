"""Bad input never silently lost nor wrongly accepted (LEDGER_CONTRACT.md "Never sent", issue 16):
every kind of bad ledger row in `corpus.CORPUS` is held back or reported with a reason a user can
read (or, for an extract-level problem, refused with an error naming table, column and file), and
every good row beside them still reaches the models and the emulated Chaser.

One warehouse holds the good rows and every row-level kind; it is extracted, modelled and synced
three times (a first load; an incremental run a day later after the `later` changes; a run a week
later when the full comparison is due), once for the module."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from chaser_pipeline.ledger.contract import LEDGER_TABLES, ContractViolation
from chaser_pipeline.ledger.extract import ExtractResult
from chaser_pipeline.ledger.warehouse import ExtractQueryError
from chaser_pipeline.paths import models_dir
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.plan import SyncOptions
from tests.support.ledger import Landing, LedgerWarehouse, write_sql_folder
from tests.support.marts import emulated_chaser
from tests.support.models import build_models, rows
from tests.trials.corpus import CORPUS, GOOD, GOOD_IN_CHASER, Kind

__all__ = ["CORPUS"]

RUNS = {1: datetime(2024, 6, 1), 2: datetime(2024, 6, 2), 3: datetime(2024, 6, 9)}
SYNC_ORDER = ("customers", "contact_persons", "invoices", "credit_notes", "overpayments")
OPTIONS = SyncOptions(confirm_mass_change=True, skip_paid_older_than_days=None)

ROW_KINDS = [k for k in CORPUS if k.refusal is None]
REFUSALS = [k for k in CORPUS if k.refusal is not None]


def _param(kind: Kind) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=kind.xfail)] if kind.xfail else []
    return pytest.param(kind, id=kind.name, marks=marks)


@dataclass
class Trial:
    """What the three runs left: the pipeline DuckDB, extract results and Chaser per run."""

    con: duckdb.DuckDBPyConnection
    extracts: dict[int, dict[str, ExtractResult]]
    chaser: dict[int, dict[str, dict[str, dict]]]
    rejections: list[dict[str, Any]]


def _warehouse_rows() -> dict[str, list[dict]]:
    tables: dict[str, list[dict]] = {name: list(r) for name, r in GOOD.items()}
    for kind in ROW_KINDS:
        for table, table_rows in kind.rows.items():
            tables.setdefault(table, []).extend(table_rows)
    return tables


def _run(landing: Landing, chaser, stage: int) -> dict[str, ExtractResult]:
    extracts = {t: landing.extract(t, RUNS[stage]) for t in LEDGER_TABLES}
    build_models(landing.con, models_dir())
    for name in SYNC_ORDER:
        chaser.sync(landing.con, name, options=OPTIONS, run_id=f"corpus-{stage}")
    return extracts


def _held(chaser) -> dict[str, dict[str, dict]]:
    store = chaser.store()
    try:
        return {
            name: {r[CHASER_OBJECTS[name].key]: r for r in store.records(name)}
            for name in SYNC_ORDER
        }
    finally:
        store.close()


@pytest.fixture(scope="module")
def trial(tmp_path_factory) -> Trial:
    root = tmp_path_factory.mktemp("corpus")
    warehouse = LedgerWarehouse("duckdb", path=root / "warehouse.duckdb")
    warehouse.write(_warehouse_rows())
    for kind in ROW_KINDS:
        for sql in kind.sql:
            warehouse.execute(sql)
    landing = Landing(root / "pipeline.duckdb", warehouse, write_sql_folder(root / "sql"))
    extracts, held = {}, {}
    with emulated_chaser(root) as chaser:
        for stage in RUNS:
            for kind in ROW_KINDS:
                for when, sql in kind.later:
                    if when == stage:
                        warehouse.execute(sql)
            extracts[stage] = _run(landing, chaser, stage)
            held[stage] = _held(chaser)
    yield Trial(landing.con, extracts, held, rows(landing.con, "chaser_rejections"))
    landing.close()


def _matches(record: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The expected fields whose value Chaser does not hold (money compared as Decimal)."""
    wrong = {}
    for name, value in expected.items():
        got = record.get(name)
        if isinstance(value, Decimal) and got is not None:
            got = Decimal(str(got))
        if got != value:
            wrong[name] = (got, value)
    return wrong


@pytest.mark.parametrize("kind", [_param(k) for k in ROW_KINDS])
@pytest.mark.slow  # the `trial` fixture's three runs take 10-15 s here
def test_a_bad_row_is_held_back_or_reported_with_a_reason(trial, kind):
    if kind.rejection:
        entity, key, reason, severity = kind.rejection
        found = [
            r
            for r in trial.rejections
            if (r["entity"], r["key"], r["reason_code"]) == (entity, key, reason)
        ]
        assert found, f"no {reason} rejection for {entity} {key}"
        [row] = found
        assert row["severity"] == severity
        assert kind.detail in row["detail"] and row["detail"].endswith("."), row["detail"]
    if kind.extract:
        table, result_field, key = kind.extract
        assert key in getattr(trial.extracts[1][table], result_field)
    for object_name, key, expected in kind.chaser:
        held = trial.chaser[kind.chaser_stage][object_name]
        if expected is None:
            assert key not in held, f"Chaser must not hold {object_name} {key}"
        else:
            assert key in held, f"Chaser must hold {object_name} {key}"
            assert not _matches(held[key], expected), _matches(held[key], expected)
    assert kind.rejection or kind.chaser or kind.extract, "a kind must assert something"


@pytest.mark.parametrize("stage", list(RUNS))
@pytest.mark.slow
def test_every_good_row_lands_beside_the_bad_ones(trial, stage):
    for object_name, key, expected in GOOD_IN_CHASER:
        held = trial.chaser[stage][object_name]
        assert key in held, f"run {stage}: Chaser must hold {object_name} {key}"
        assert not _matches(held[key], expected), (stage, key, _matches(held[key], expected))


@pytest.mark.slow
def test_no_row_is_lost_between_the_warehouse_and_the_models(trial):
    """Every keyed landed row is in its mart or has a rejection naming it."""
    named = {(r["entity"], r["key"]) for r in trial.rejections}
    for entity, table, mart, key in (
        ("customer", "customers", "chaser_customers", "external_id"),
        ("invoice", "invoices", "chaser_invoices", "invoice_id"),
        ("credit_note", "credit_notes", "chaser_credit_notes", "credit_note_id"),
    ):
        landed = trial.con.execute(
            f"select distinct trim({LEDGER_TABLES[table].key}) from landing.{table} "
            f"where nullif(trim({LEDGER_TABLES[table].key}), '') is not null"
        ).fetchall()
        in_mart = {k for (k,) in trial.con.execute(f"select {key} from {mart}").fetchall()}
        lost = [k for (k,) in landed if k not in in_mart and (entity, k) not in named]
        assert not lost, f"{table}: landed but neither sent nor reported: {lost}"


# Extract-level kinds: one table's SQL changed in a copy of a good warehouse.


@pytest.fixture(scope="module")
def good_warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("good") / "warehouse.duckdb"
    LedgerWarehouse("duckdb", path=path).write(GOOD)
    return path


def _sql_folder(folder: Path, kind: Kind) -> Path:
    write_sql_folder(folder)
    refusal = kind.refusal
    tables = list(LEDGER_TABLES) if kind.table == "*" else [kind.table]
    for table in tables:
        if refusal.drop_file:
            (folder / f"{table}.sql").unlink()
            continue
        columns = [c for c in LEDGER_TABLES[table].column_names if refusal.replace.get(c, c)]
        select = [f"{refusal.replace[c]} as {c}" if c in refusal.replace else c for c in columns]
        select += [
            f"{e} as {c}"
            for c, e in refusal.replace.items()
            if c not in LEDGER_TABLES[table].column_names and not c.startswith("__")
        ]
        source = refusal.replace.get("__from__", f"ledger.{table}")
        where = refusal.replace.get("__where__", "updated_at > $1::timestamp")
        if kind.table == "*" and table in ("customers", "invoices"):
            where = "updated_at > $1::timestamp"  # an empty ledger but for these
        (folder / f"{table}.sql").write_text(
            f"select {', '.join(select)} from {source} where {where}"
        )
    return folder


@pytest.mark.parametrize("kind", [_param(k) for k in REFUSALS])
def test_an_extract_level_problem_is_refused_naming_what_to_fix(tmp_path, good_warehouse, kind):
    shutil.copy(good_warehouse, tmp_path / "warehouse.duckdb")
    warehouse = LedgerWarehouse("duckdb", path=tmp_path / "warehouse.duckdb")
    landing = Landing(tmp_path / "pipeline.duckdb", warehouse, _sql_folder(tmp_path / "sql", kind))
    try:
        if not kind.refusal.accepted:
            with pytest.raises((ContractViolation, ExtractQueryError)) as failure:
                landing.extract(kind.table, RUNS[1])
            message = str(failure.value)
            assert all(m in message for m in kind.refusal.message), message
            assert "Traceback" not in message
            return
        results = [landing.extract(t, RUNS[1]) for t in LEDGER_TABLES]
        report = " ".join(" ".join(r.optional_missing) for r in results)
        assert all(m in report for m in kind.refusal.message), report
        build_models(landing.con, models_dir())
        sent = {
            k for (k,) in landing.con.execute("select invoice_id from chaser_invoices").fetchall()
        }
        assert {"G-I1", "G-I2"} <= sent
    finally:
        landing.close()


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 40
    assert timedelta(days=7) <= RUNS[3] - RUNS[1]  # the third run is a full comparison
