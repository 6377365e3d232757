"""The deployment recipe (deploy/): run pods that start with empty working folders share one
PostgreSQL sync state, so a second sync sends nothing and two at once never send a row twice; the
image's code-server command serves the code location; the Helm values keep secrets in a secret."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from chaser_pipeline.demo.generator import generate_demo_warehouse
from chaser_pipeline.emulator import EmulatorStore, run_emulator_in_thread

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
API_KEY, API_SECRET = "deploy-key", "deploy-secret-never-logged"


def _worker_env(root: Path, name: str, warehouse: Path, chaser_url: str, state_url: str) -> dict:
    """A run pod: its own empty working folder and Dagster home, the shared warehouse, Chaser
    and sync state."""
    folder = root / name
    folder.mkdir()
    return {
        **os.environ,
        "CHASER_WAREHOUSE_URL": f"duckdb:///{warehouse}",
        "CHASER_DUCKDB_PATH": str(folder / "pipeline.duckdb"),
        "CHASER_API_URL": chaser_url,
        "CHASER_API_KEY": API_KEY,
        "CHASER_API_SECRET": API_SECRET,
        "CHASER_STATE_URL": state_url,
        "DAGSTER_HOME": str(folder / "dagster_home"),
    }


def _sync(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "chaser-pipeline"), "sync"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def shared(tmp_path):
    warehouse = generate_demo_warehouse(
        tmp_path / "warehouse.duckdb", invoices=300, customers=40, credit_notes=40, seed=5
    ).path
    with run_emulator_in_thread(
        tmp_path / "chaser.sqlite3", api_key=API_KEY, api_secret=API_SECRET
    ) as chaser:
        yield warehouse, chaser


@pytest.mark.postgres
def test_a_second_pod_with_an_empty_working_folder_sends_nothing(tmp_path, shared, postgres_url):
    warehouse, chaser = shared
    first = _sync(_worker_env(tmp_path, "pod-1", warehouse, chaser.url, postgres_url))
    output, _ = first.communicate(timeout=300)
    assert first.returncode == 0, output[-3000:]
    with EmulatorStore(chaser.state_path) as store:
        writes, held = store.write_request_count(), store.count("invoices")
    assert held > 50

    second = _sync(_worker_env(tmp_path, "pod-2", warehouse, chaser.url, postgres_url))
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output[-3000:]
    with EmulatorStore(chaser.state_path) as store:
        assert store.write_request_count() == writes, output[-3000:]
    assert "0 created, 0 updated" in output


@pytest.mark.postgres
def test_two_pods_syncing_at_once_never_send_a_row_twice(tmp_path, shared, postgres_url):
    warehouse, chaser = shared
    pods = [
        _sync(_worker_env(tmp_path, f"pod-{i}", warehouse, chaser.url, postgres_url))
        for i in (1, 2)
    ]
    outputs = [pod.communicate(timeout=600)[0] for pod in pods]
    for pod, output in zip(pods, outputs, strict=True):
        assert pod.returncode == 0, output[-3000:]
    with EmulatorStore(chaser.state_path) as store:
        for object_name in ("customers", "invoices", "credit_notes"):
            held = store.records(object_name)
            assert held, object_name
            key = {"customers": "external_id"}.get(object_name, object_name[:-1] + "_id")
            written_twice = [r[key] for r in held if store.write_count(object_name, r[key]) != 1]
            assert written_twice == [], (object_name, written_twice[:5])


# One Dagster job in a "run pod" of its own, as K8sRunLauncher starts it: the code location
# loaded from the environment, the job executed in-process; a monthly job over every month.
_POD_SCRIPT = """
import json, os, sys
import dagster as dg
os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
from chaser_pipeline.definitions import defs
job = defs().resolve_job_def(sys.argv[1])
tags = {}
if job.partitions_def is not None:
    keys = job.partitions_def.get_partition_keys()
    tags = {"dagster/asset_partition_range_start": keys[0],
            "dagster/asset_partition_range_end": keys[-1]}
result = job.execute_in_process(instance=dg.DagsterInstance.get(), tags=tags,
                                raise_on_error=False)
out = {"success": result.success, "checks": {}, "changed_months": None, "failures": [
    (e.step_failure_data.error.cause or e.step_failure_data.error).to_string()[-4000:]
    for e in result.get_step_failure_events()]}
for evaluation in result.get_asset_check_evaluations():
    out["checks"][evaluation.check_name] = [evaluation.passed, evaluation.description]
for node in [n.name for n in job.graph.node_defs]:
    if node == "chaser_pending_months":
        [m] = result.asset_materializations_for_node(node)
        out["changed_months"] = m.metadata["changed_months"].value
print("RESULT " + json.dumps(out))
"""


def _pod(env: dict, job: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _POD_SCRIPT, job],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    [line] = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")] or [
        "RESULT "
        + json.dumps({"success": False, "output": done.stdout[-2000:] + done.stderr[-3000:]})
    ]
    return json.loads(line.removeprefix("RESULT "))


@pytest.mark.postgres
def test_each_job_in_a_pod_of_its_own_lands_what_it_needs(tmp_path, shared, postgres_url):
    """With K8sRunLauncher every run starts on an empty disk, and only the incremental job
    extracted and built the whole-history models: the monthly run the sensor asks for failed
    (no int_invoice_balances), so no document ever reached Chaser, and the data-lag check, with
    nothing built, said Chaser held everything. Each now lands the ledger first when its DuckDB
    never landed one."""
    warehouse, chaser = shared

    def pod(name: str, job: str) -> dict:
        return _pod(_worker_env(tmp_path, name, warehouse, chaser.url, postgres_url), job)

    incremental = pod("pod-1", "chaser_incremental_sync")
    assert incremental["success"], incremental
    assert incremental["changed_months"]  # the first run: every month to sync
    monthly = pod("pod-2", "chaser_monthly_sync")
    assert monthly["success"], monthly
    with EmulatorStore(chaser.state_path) as store:
        held = store.count("invoices")
    assert held > 50
    lag = pod("pod-3", "chaser_data_lag_check")
    assert lag["success"] and lag["checks"]["chaser_data_lag"][0], lag
    # the next day in a fresh pod, nothing changed: no month to sync (not the whole history)
    again = pod("pod-4", "chaser_incremental_sync")
    assert again["success"] and again["changed_months"] == [], again
    with EmulatorStore(chaser.state_path) as store:
        assert store.count("invoices") == held  # and sent nothing again
    # the daily drift sample in a pod of its own compares Chaser with the shared state
    drift = pod("pod-5", "chaser_drift_sample")
    assert drift["success"] and drift["checks"]["chaser_drift_sample"][0], drift


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_images_command_serves_the_code_location(tmp_path):
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    command = yaml.safe_load(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert command[:3] == ["dagster", "api", "grpc"]
    port = _free_port()
    args = [str(BIN / "dagster"), *command[1:]]
    args[args.index("-p") + 1] = str(port)
    args[args.index("-h") + 1] = "127.0.0.1"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    server = subprocess.Popen(args, cwd=REPO, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            check = subprocess.run(
                [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(port)],
                env=env,
                capture_output=True,
                text=True,
            )
            if check.returncode == 0:
                break
            assert server.poll() is None, "the code server exited"
            assert time.monotonic() < deadline, check.stdout + check.stderr
            time.sleep(0.5)  # the server is starting: poll until the deadline
    finally:
        server.terminate()
        server.wait(30)


def test_the_helm_values_keep_secrets_in_a_kubernetes_secret():
    values = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "chaser_pipeline.definitions"]
    assert {"name": "chaser-pipeline"} in deployment["envSecrets"]
    assert {"name": "chaser-pipeline"} in values["runLauncher"]["config"]["k8sRunLauncher"][
        "envSecrets"
    ]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["concurrency"]["pools"]["defaultLimit"] == 1
    # a dead run pod is marked failed, so the schedules do not wait for it (see schedules.py)
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is True
    known = set(re.findall(r"^(CHASER_[A-Z_]+)=", (REPO / ".env.example").read_text(), re.M))
    for variable in deployment["env"]:
        assert variable["name"] in known, variable["name"]
        assert not re.search(r"SECRET|KEY|PASSWORD|STATE_URL|WAREHOUSE_URL", variable["name"])
    secret_file = (REPO / "deploy" / "k8s" / "chaser.env.example").read_text()
    assert set(re.findall(r"^(CHASER_[A-Z_]+)=", secret_file, re.M)) <= known
