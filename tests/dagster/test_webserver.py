"""Operator contract through `dagster dev`: a partition backfill launched over GraphQL (as from the
UI) runs to completion under the daemon and lands those months' invoices in Chaser."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg
import httpx
import pytest

from tests.support.pipeline import API_KEY, API_SECRET, AS_OF, make_pipeline
from tests.support.webserver import (
    free_port,
    serving,
    session_processes,
    start_in_own_session,
    stop_session,
    wait_for,
)

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
MONTHS = ["2024-04-01", "2024-05-01", "2024-06-01"]
SENSOR = "chaser_changed_months_sensor"

SENSOR_QUERY = """
query ($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { id selectorId status } }
    ... on PythonError { message }
  }
}"""

STOP_SENSOR = """
mutation ($originId: String!, $selectorId: String!) {
  stopSensor(jobOriginId: $originId, jobSelectorId: $selectorId) {
    __typename
    ... on StopSensorMutationResult { instigationState { status } }
    ... on PythonError { message }
  }
}"""

LOCATIONS = """
{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"""

LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidStepError { invalidStepKey }
    ... on UnauthorizedError { message }
  }
}"""

BACKFILL_STATUS = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs: runs(limit: 10) { runId status } }
    ... on PythonError { message }
  }
}"""


class GraphQL:
    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)

    def __call__(self, query: str, **variables) -> dict:
        response = self.client.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text[-3000:]
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


def test_backfill_launched_over_graphql_lands_the_months_in_chaser(tmp_path):
    p = make_pipeline(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = free_port()
    log = tmp_path / "dagster_dev.log"
    env = {
        **os.environ,
        "CHASER_WAREHOUSE_URL": f"duckdb:///{p.warehouse}",
        "CHASER_DUCKDB_PATH": str(p.duckdb_path),
        "CHASER_API_URL": p.url,
        "CHASER_API_KEY": API_KEY,
        "CHASER_API_SECRET": API_SECRET,
        "DAGSTER_HOME": str(home),
    }
    proc = start_in_own_session(
        [
            str(Path(sys.executable).with_name("dagster")),
            "dev",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO_ROOT,
        env=env,
        log=log,
    )
    instance = None
    gql = None
    try:
        base = f"http://127.0.0.1:{port}"

        wait_for("/server_info", serving(base), 90, proc, log)
        gql = GraphQL(base)
        nodes = wait_for(
            "the code location",
            lambda: gql(LOCATIONS)["repositoriesOrError"].get("nodes"),
            60,
            proc,
            log,
        )
        [repo] = nodes
        selector = {
            "repositoryName": repo["name"],
            "repositoryLocationName": repo["location"]["name"],
        }
        # The sensor starts RUNNING; stopped here so it does not launch one run per month of
        # history after the incremental run below (its own behaviour is tested in-process).
        sensor = gql(SENSOR_QUERY, selector={**selector, "sensorName": SENSOR})["sensorOrError"]
        assert sensor["__typename"] == "Sensor", sensor
        assert sensor["sensorState"]["status"] == "RUNNING"
        stopped = gql(
            STOP_SENSOR,
            originId=sensor["sensorState"]["id"],
            selectorId=sensor["sensorState"]["selectorId"],
        )["stopSensor"]
        assert stopped["instigationState"]["status"] == "STOPPED", stopped

        # the incremental run (customers first), in-process against the server's instance
        instance = dg.DagsterInstance.from_config(str(home))
        incremental = p.defs.resolve_job_def("chaser_incremental_sync").execute_in_process(
            instance=instance,
            run_config={"ops": {"sync_chaser_customers": {"config": {"as_of": AS_OF}}}},
        )
        assert incremental.success

        launched = gql(
            LAUNCH_BACKFILL,
            params={
                "assetSelection": [
                    {"path": ["chaser_invoices"]},
                    {"path": ["sync_chaser_invoices"]},
                ],
                "partitionNames": MONTHS,
                "title": "test backfill",
                # no execution config: the code location runs every job in one process
                "runConfigData": {
                    "ops": {"sync_chaser_invoices": {"config": {"as_of": AS_OF}}},
                },
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        def finished():
            backfill = gql(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]
            assert backfill["__typename"] == "PartitionBackfill", backfill
            return backfill if backfill["status"] not in ("REQUESTED", "CANCELING") else None

        backfill = wait_for("the backfill", finished, 150, proc, log)
        assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
        # both assets have BackfillPolicy.single_run(): one run for the three months
        assert [r["status"] for r in backfill["runs"]] == ["SUCCESS"]
        assert instance.get_materialized_partitions(dg.AssetKey("sync_chaser_invoices")) == set(
            MONTHS
        )
    finally:
        if gql is not None:
            gql.client.close()
        if instance is not None:
            instance.dispose()
        stop_session(proc)
        p.handle.stop()
    assert session_processes(proc.pid) == []

    months_in_chaser = {row["date"][:7] + "-01" for row in p.chaser("invoices").values()}
    assert months_in_chaser == set(MONTHS)
    assert p.chaser("invoices") == p.expected("invoices")
