"""Two pipelines, two Chaser organisations, one PostgreSQL sync state (CHASER_STATE_URL).

Contract: each pipeline works out what its own organisation holds, whichever organisation the
other checked last. The hourly data-lag check, the drift sample and the budget carried across
runs read the organisation this pipeline's credentials last reached (no request to Chaser), or
ask Chaser once when no sync noted them (a rotated key), never guessing; the working copy in
the pipeline's DuckDB holds that organisation's state only, so the models never read another
organisation's holdings, and a sync after the other pipeline's sends and checks sends nothing
that did not change.
"""

from __future__ import annotations

import os

import adbc_driver_postgresql.dbapi
import dagster as dg
import pytest

from tests.support.pipeline import AS_OF, Pipeline, make_pipeline

pytestmark = pytest.mark.slow

LAG_CHECK_OP = "chaser_pending_months_chaser_data_lag"
VARIABLES = (
    "CHASER_WAREHOUSE_URL",
    "CHASER_DUCKDB_PATH",
    "CHASER_API_URL",
    "CHASER_API_KEY",
    "CHASER_API_SECRET",
    "CHASER_STATE_URL",
)


class Worker:
    """A pipeline with its own environment, switched in before each of its runs (the code
    location reads its settings from the environment at run time, as in production)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.env = {name: os.environ[name] for name in VARIABLES}

    def __enter__(self) -> Pipeline:
        os.environ.update(self.env)
        return self.pipeline

    def __exit__(self, *exc: object) -> None:
        pass


def lag_check(p: Pipeline) -> dg.AssetCheckEvaluation:
    result = p.defs.resolve_job_def("chaser_data_lag_check").execute_in_process(
        instance=p.instance, run_config={"ops": {LAG_CHECK_OP: {"config": {"as_of": AS_OF}}}}
    )
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def in_postgres(url: str, sql: str) -> list[tuple]:
    with adbc_driver_postgresql.dbapi.connect(url) as con, con.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall() if cur.description else []
        con.commit()
    return rows


def working_copy_targets(p: Pipeline) -> set[str]:
    rows = p.query("select distinct target from chaser_sync.state")
    rows += p.query("select target from chaser_sync.targets")
    return {r[0] for r in rows}


def test_the_other_organisations_checks_never_reach_this_pipelines_models(tmp_path, postgres_url):
    env = {"CHASER_STATE_URL": postgres_url}
    # the same demo ledger's shape and key spellings, other contents: ids overlap, as two
    # subsidiaries' ledgers' do
    a = Worker(make_pipeline(tmp_path / "a", seed=7, env=env))
    b = Worker(make_pipeline(tmp_path / "b", seed=8, env=env))
    try:
        with a as p:
            assert p.sync().success
            assert p.sync().success  # the sends that created documents, taken in by the models
            a_target = p.url + "|"
            [a_key] = working_copy_targets(p)
            assert a_key.startswith(a_target)
            holdings = p.query("select object, key from chaser_sync.holding_keys order by 1, 2")
            writes = p.write_requests()
        with b as p:
            # b's organisation is now the one checked last
            assert p.sync(as_of="2099-01-01T00:00:00").success
            assert p.write_requests() > 0
        with a as p:
            evaluation = lag_check(p)
            # planned for this pipeline's organisation, not the one checked last
            assert evaluation.passed, evaluation.description
            assert working_copy_targets(p) == {a_key}
            assert p.query("select object, key from chaser_sync.holding_keys order by 1, 2") == (
                holdings
            )
            assert p.sync().success
            assert working_copy_targets(p) == {a_key}
            assert p.write_requests() == writes  # nothing changed: nothing sent
            # credentials no sync noted yet (a rotated key): Chaser is asked which organisation
            # they reach, and the answer noted
            in_postgres(postgres_url, "delete from chaser_sync.target_credentials")
            evaluation = lag_check(p)
            assert evaluation.passed, evaluation.description
            assert working_copy_targets(p) == {a_key}
            assert in_postgres(postgres_url, "select target from chaser_sync.target_credentials")
            assert p.write_requests() == writes
    finally:
        for w in (a, b):
            w.pipeline.handle.stop()
