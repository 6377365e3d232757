"""The demo ledger of the engine tests, and its first run through the engines, each made once per
session: tests that start from them change a copy (copying files is far cheaper than a new run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaser_pipeline.demo.generator import generate_demo_warehouse
from tests.support.engine import DEMO_FIRST_RUN, EnginePipeline, EngineRun


@pytest.fixture(scope="session")
def demo_ledger(tmp_path_factory) -> Path:
    """A small demo warehouse (400 invoices, 60 customers, 60 credit notes, seed 7); read only."""
    root = tmp_path_factory.mktemp("demo-ledger")
    return generate_demo_warehouse(
        root / "warehouse.duckdb", invoices=400, customers=60, credit_notes=60, seed=7
    ).path


@pytest.fixture(scope="session")
def demo_first_run(tmp_path_factory, demo_ledger) -> tuple[EnginePipeline, EngineRun]:
    """The demo ledger's first run at DEMO_FIRST_RUN into a new Chaser target: the closed
    pipeline (`.clone(tmp_path)` it) and what the run did."""
    root = tmp_path_factory.mktemp("demo-first-run")
    warehouse = root / "warehouse.duckdb"
    warehouse.write_bytes(demo_ledger.read_bytes())
    return EnginePipeline.first_run(root, warehouse, DEMO_FIRST_RUN)
