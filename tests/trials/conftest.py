"""What the CLI trials compare against: one clean `chaser-pipeline sync` of the trials' ledger."""

from __future__ import annotations

import pytest

from tests.support.pipeline import make_pipeline
from tests.support.trials import (
    FAST,
    LEDGER,
    NO_LIMIT,
    Traffic,
    holdings,
    record_counts,
    run_sync_cli,
    sync_env,
)


@pytest.fixture(scope="session")
def clean_cli_sync(tmp_path_factory):
    """(holdings, record counts, traffic) after one clean `chaser-pipeline sync` of LEDGER."""
    root = tmp_path_factory.mktemp("clean_cli")
    pipeline = make_pipeline(root, env=FAST, rate_limit=NO_LIMIT, **LEDGER)
    try:
        done = run_sync_cli(sync_env(pipeline, root / "dagster_home", **FAST))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        state = pipeline.emulator_state
        return holdings(state), record_counts(state), Traffic.read(state)
    finally:
        pipeline.handle.stop()  # type: ignore[attr-defined]
