"""Code-location contract: the definitions load and validate from the repo root with no flags,
through `dagster` and `dg`, and hold every asset, check, job, schedule and sensor a user expects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_definitions_hold_the_whole_pipeline():
    from chaser_pipeline.definitions import defs as load_defs

    defs = load_defs()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    expected = {
        f"ledger_{t}"
        for t in ("customers", "invoices", "payments", "credit_notes", "credit_allocations")
    }
    expected |= {"chaser_customers", "chaser_invoices", "chaser_credit_notes", "chaser_rejections"}
    expected |= {
        "sync_chaser_customers",
        "sync_chaser_invoices",
        "sync_chaser_credit_notes",
        "chaser_sync_log",
    }
    assert expected <= keys
    # the sync log is written by the sync steps: no job runs (or waits on) a step of its own
    assert not graph.get(dg.AssetKey("chaser_sync_log")).is_executable
    checks = {k.name for k in graph.asset_check_keys}
    assert {"rejection_rate", "chaser_data_lag", "unique_invoice_id"} <= checks
    assert defs.resolve_job_def("chaser_incremental_sync") and defs.resolve_job_def(
        "chaser_monthly_sync"
    )
    assert (
        defs.resolve_schedule_def("chaser_daily_sync").default_status
        == dg.DefaultScheduleStatus.RUNNING
    )
    sensor = defs.resolve_sensor_def("chaser_changed_months_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    # customers first: invoice and credit note syncs wait for the customer sync
    for asset in ("sync_chaser_invoices", "sync_chaser_credit_notes"):
        parents = {p.to_user_string() for p in graph.get(dg.AssetKey(asset)).parent_keys}
        assert "sync_chaser_customers" in parents


@pytest.mark.slow  # a new Python process loading Dagster and the project: seconds each
@pytest.mark.parametrize(
    "command",
    [
        pytest.param(
            [str(BIN / "dagster"), "definitions", "validate"], id="dagster-definitions-validate"
        ),
        pytest.param([str(BIN / "dg"), "check", "defs"], id="dg-check-defs"),
    ],
)
def test_the_cli_loads_the_code_location_from_the_repo_root(command, tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_a_configuration_error_stops_the_load_in_process_naming_the_variable(monkeypatch):
    """The fast twin of the CLI test below: the same broken setting, loaded in this process."""
    from chaser_pipeline.definitions import defs as load_defs
    from chaser_pipeline.settings import ConfigError

    monkeypatch.setenv("CHASER_API_KEY", "only-a-key")
    with pytest.raises(ConfigError, match="CHASER_API_SECRET"):
        load_defs()


@pytest.mark.slow  # a new Python process loading Dagster and the project
def test_a_configuration_error_stops_the_load_naming_the_variable(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "CHASER_API_KEY": "only-a-key"}
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "CHASER_API_SECRET" in result.stdout + result.stderr


def test_nothing_is_read_or_built_at_import(monkeypatch):
    """Importing any module reads no setting: a broken one fails only when the defs load."""
    import importlib
    import pkgutil

    import chaser_pipeline
    from chaser_pipeline.definitions import defs as load_defs
    from chaser_pipeline.settings import ConfigError

    monkeypatch.setenv("CHASER_HISTORY_START", "last year")
    for module in pkgutil.walk_packages(chaser_pipeline.__path__, "chaser_pipeline."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    with pytest.raises(ConfigError, match="CHASER_HISTORY_START"):
        load_defs()
