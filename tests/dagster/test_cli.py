"""Command-line contract: `sync` and `ui` use one Dagster home by default, `sync` prints what the
models held back by reason, and `report` / `sql` read the pipeline's DuckDB with no extra tool."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from chaser_pipeline.cli import main
from chaser_pipeline.cli.home import dagster_home, default_dagster_home
from tests.support.pipeline import make_pipeline


@pytest.fixture
def pipeline(tmp_path):
    p = make_pipeline(tmp_path)
    yield p
    p.handle.stop()


def test_sync_and_ui_use_the_same_home_by_default(monkeypatch, tmp_path):
    monkeypatch.setattr("chaser_pipeline.cli.home.data_dir", lambda: tmp_path / "data")
    monkeypatch.delenv("DAGSTER_HOME")
    sync_home = dagster_home()
    assert sync_home == default_dagster_home() == tmp_path / "data" / "dagster_home"
    assert (sync_home / "dagster.yaml").read_text().startswith("concurrency:")

    monkeypatch.delenv("DAGSTER_HOME")
    started = {}

    def execv(path, argv):
        started.update(path=path, argv=argv, home=os.environ["DAGSTER_HOME"])
        raise SystemExit(0)

    monkeypatch.setattr("os.execv", execv)
    with pytest.raises(SystemExit):
        main(["ui", "--port", "3999"])
    assert started["home"] == str(sync_home)
    argv = started["argv"]
    assert started["path"] == sys.executable
    assert argv[argv.index("-m") : argv.index("-m") + 3] == ["-m", "dagster", "dev"]
    assert argv[argv.index("--port") + 1] == "3999"
    workspace = Path(argv[argv.index("--workspace") + 1])
    assert "location_name: chaser_pipeline" in workspace.read_text()


@pytest.mark.slow
def test_sync_prints_held_back_by_reason_and_report_reads_the_duckdb(pipeline, capsys):
    assert main(["sync"]) == 0
    out = capsys.readouterr().out
    reasons = pipeline.query(
        """select reason_code, entity, count(*) from chaser_rejections
        where severity = 'held_back' group by all order by 3 desc"""
    )
    total = sum(n for _, _, n in reasons)
    assert f"held back by the models' rules: {total} (" in out
    for reason, entity, n in reasons:
        assert f"{reason} ({entity}) {n}" in out

    assert main(["report"]) == 0
    report = capsys.readouterr().out
    assert f"Held back by the models' rules (not sent; chaser_rejections): {total}" in report
    for heading in (
        "Rejected by Chaser",
        "Waiting for their customer",
        "Stale in Chaser",
        "Months that need a sync: 0 (",
    ):
        assert heading in report

    assert main(["sql", "select count(*) as n from chaser_sync.state"]) == 0
    [(state_rows,)] = pipeline.query("select count(*) from chaser_sync.state")
    assert f"{state_rows}" in capsys.readouterr().out
    assert main(["sql", "select * from no_such_table"]) == 1


@pytest.mark.slow
def test_a_failed_sync_prints_what_to_fix_not_only_a_run_id(pipeline, capsys):
    """The summary names the failed step and carries its error's own message (the SQL file and
    the column to fix), so the user need not open the Dagster UI to learn what went wrong."""
    pipeline.ledger("alter table ledger.payments drop column paid_at")
    assert main(["sync"]) == 1
    out = capsys.readouterr().out
    [failure] = [line for line in out.splitlines() if " failed: " in line]
    assert failure.lstrip().startswith("ledger_payments failed: ")
    assert "sql/payments.sql" in out and "paid_at" in out
    assert "Traceback" not in out
