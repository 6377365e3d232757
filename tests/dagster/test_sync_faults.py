"""Sync under faults: a run killed mid-sync and re-run leaves Chaser complete with no duplicate or
lost write; a customer Chaser refuses holds back its documents until it lands; the guards stop a
run before anything is sent."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import dagster as dg
import duckdb
import pytest

from chaser_pipeline.db import WHOLE_HISTORY
from chaser_pipeline.emulator import EmulatorStore, FaultConfig, run_emulator_in_thread
from chaser_pipeline.sync.engine import MassChangeError, sync_object
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.plan import SyncOptions
from tests.support.pipeline import API_KEY, API_SECRET, make_pipeline

pytestmark = pytest.mark.slow


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)  # polling with a deadline, not waiting for a fixed time
    raise AssertionError(f"timed out waiting for {what}")


def test_a_run_killed_mid_sync_and_rerun_leaves_chaser_complete(tmp_path):
    # Slow Chaser down so the kill lands while invoices are being sent.
    pipeline = make_pipeline(tmp_path, invoices=1500, faults=FaultConfig(latency_ms=40))
    env = {
        **os.environ,
        "CHASER_WAREHOUSE_URL": f"duckdb:///{pipeline.warehouse}",
        "CHASER_DUCKDB_PATH": str(pipeline.duckdb_path),
        "CHASER_API_URL": pipeline.url,
        "CHASER_API_KEY": API_KEY,
        "CHASER_API_SECRET": API_SECRET,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    command = [sys.executable, "-m", "chaser_pipeline.cli", "sync"]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    store = EmulatorStore(pipeline.emulator_state)
    try:
        _wait_for(lambda: store.write_request_count("invoices") >= 3, 120, "invoice writes")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        partial = store.count("invoices")
        assert partial > 0
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
        expected = pipeline.expected("invoices")
        held = pipeline.chaser("invoices")
        assert held == expected  # complete: nothing lost
        # no duplicates: one record per key, and only batches in flight at the kill were resent
        assert store.count("invoices") == len(expected)
        rewritten = sum(store.write_count("invoices", key) - 1 for key in expected)
        assert rewritten <= 8 * 100
    finally:
        store.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        pipeline.handle.stop()


@contextlib.contextmanager
def _chaser(tmp_path, **faults):
    """An emulated Chaser on loopback (state in tmp_path/c.sqlite3), and a factory of clients
    for it (keyword arguments go to ChaserClient)."""
    from chaser_pipeline.chaser.client import ChaserClient

    with run_emulator_in_thread(
        tmp_path / "c.sqlite3", api_key=API_KEY, api_secret=API_SECRET, **faults
    ) as emu:
        yield lambda **options: lambda: ChaserClient(emu.url, API_KEY, API_SECRET, **options)


def _mart_db(path, customers: list[tuple], invoices: list[tuple]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute(
        """create or replace table chaser_customers (external_id varchar, company_name varchar,
        contact_first_name varchar, contact_last_name varchar, contact_email_address varchar,
        phone_number varchar, mobile_number varchar, status varchar,
        addresses struct(address_line1 varchar, address_line2 varchar, city varchar,
            region varchar, postal_code varchar, country varchar, address_type varchar)[])"""
    )
    con.execute(
        """create or replace table chaser_invoices (invoice_id varchar, invoice_number varchar,
        customer_external_id varchar, status varchar, currency_code varchar,
        sub_total decimal(18,2), total decimal(18,2), amount_paid decimal(18,2),
        amount_due decimal(18,2), date varchar, due_date varchar, fully_paid_date varchar)"""
    )
    for row in customers:
        con.execute(
            "insert into chaser_customers values (?, ?, null, null, null, null, null, 'ACTIVE', null)",
            row,
        )
    for row in invoices:
        con.execute(
            """insert into chaser_invoices values (?, 'N-1', ?, 'AUTHORISED', 'GBP', 10.00, 12.00,
            0.00, 12.00, '2024-03-01T00:00:00.000Z', '2024-03-31T00:00:00.000Z', null)""",
            row,
        )
    return con


def test_answers_a_killed_run_committed_to_the_journal_count_before_the_next_plan(tmp_path):
    """A run killed after committing a batch's answers but before folding them into the state
    must not send those rows again: the next plan folds the journal first."""
    from chaser_pipeline.db import utc_now
    from chaser_pipeline.sync.plan import build_plan

    with _chaser(tmp_path) as clients:
        client = clients()
        con = _mart_db(
            tmp_path / "p.duckdb", [("C-1", "Good Ltd")], [("I-1", "C-1"), ("I-2", "C-1")]
        )
        assert (
            sync_object(con, client, CHASER_OBJECTS["customers"], run_id="r1").confirmed["create"]
            == 1
        )
        assert (
            sync_object(con, client, CHASER_OBJECTS["invoices"], run_id="r1").confirmed["create"]
            == 2
        )
        con.execute("update chaser_invoices set total = 13.00 where invoice_id = 'I-1'")
        build_plan(con, CHASER_OBJECTS["invoices"], WHOLE_HISTORY, SyncOptions(), utc_now())
        [(new_hash,)] = con.execute(
            "select sync_payload_hash from sync_plan where invoice_id = 'I-1'"
        ).fetchall()
        # what the killed run's writer committed: Chaser confirmed the update of I-1
        con.execute(
            """insert into chaser_sync.journal values
            ('killed', 'invoices', 'I-1', 'update', 200, null, now()::timestamp, ?, null)""",
            [new_hash],
        )
        writes = EmulatorStore(tmp_path / "c.sqlite3")
        before = writes.write_request_count("invoices")
        report = sync_object(con, client, CHASER_OBJECTS["invoices"], run_id="r2")
        assert dict(report.planned) == {"unchanged": 2}
        assert writes.write_request_count("invoices") == before
        writes.close()
        assert con.execute(
            "select payload_hash from chaser_sync.state where key = 'I-1'"
        ).fetchall() == [(new_hash,)]
        assert con.execute(
            "select count(*) from chaser_sync.log where run_id = 'killed' and key = 'I-1'"
        ).fetchall() == [(1,)]
        assert con.execute("select count(*) from chaser_sync.journal").fetchall() == [(0,)]
        assert con.execute(
            "select count(*) - count(distinct (object, key)) from chaser_sync.state"
        ).fetchall() == [(0,)]


def test_a_customer_chaser_refuses_holds_back_its_invoices_until_it_lands(tmp_path):
    with _chaser(tmp_path) as clients:
        client = clients()
        # Chaser requires a company name; the blank one is refused by Chaser itself.
        con = _mart_db(
            tmp_path / "p.duckdb",
            [("C-1", "Good Ltd"), ("C-2", "")],
            [("I-1", "C-1"), ("I-2", "C-2")],
        )
        customers = sync_object(con, client, CHASER_OBJECTS["customers"], run_id="r1")
        assert (sum(customers.confirmed.values()), customers.failed) == (1, 1)
        invoices = sync_object(con, client, CHASER_OBJECTS["invoices"], run_id="r1")
        assert invoices.planned["held_back"] == 1 and sum(invoices.confirmed.values()) == 1
        [(message,)] = con.execute(
            "select message from chaser_sync.log where key = 'I-2' and action = 'held_back'"
        ).fetchall()
        assert "C-2" in message
        [(status, error)] = con.execute(
            "select last_status, last_error from chaser_sync.state where key = 'C-2'"
        ).fetchall()
        assert status == "failed" and "company_name" in error

        # Fixed in the ledger: the customer lands, and the held-back invoice follows.
        con.execute(
            "update chaser_customers set company_name = 'Fixed Ltd' where external_id = 'C-2'"
        )
        assert (
            sync_object(con, client, CHASER_OBJECTS["customers"], run_id="r2").confirmed["create"]
            == 1
        )
        again = sync_object(con, client, CHASER_OBJECTS["invoices"], run_id="r2")
        assert again.confirmed["create"] == 1 and again.planned["unchanged"] == 1
        store = EmulatorStore(tmp_path / "c.sqlite3")
        assert sorted(r["invoice_id"] for r in store.records("invoices")) == ["I-1", "I-2"]
        store.close()


def test_mass_change_guard_stops_before_sending_and_a_flag_confirms(tmp_path):
    with _chaser(tmp_path) as clients:
        client = clients()
        con = _mart_db(tmp_path / "p.duckdb", [(f"C-{i}", f"Co {i}") for i in range(200)], [])
        first = sync_object(
            con, client, CHASER_OBJECTS["customers"], run_id="r1"
        )  # first run: no guard
        assert first.confirmed["create"] == 200
        con.execute(
            "update chaser_customers set company_name = company_name || ' Ltd' where external_id < 'C-5'"
        )
        store = EmulatorStore(tmp_path / "c.sqlite3")
        before = store.write_request_count("customers")
        with pytest.raises(MassChangeError, match=r"update \d+ of 200 previously synced customers"):
            sync_object(con, client, CHASER_OBJECTS["customers"], run_id="r2")
        assert store.write_request_count("customers") == before
        confirmed = sync_object(
            con,
            client,
            CHASER_OBJECTS["customers"],
            run_id="r3",
            options=SyncOptions(confirm_mass_change=True),
        )
        assert confirmed.confirmed["update"] > 100
        store.close()


def test_rejection_threshold_is_a_blocking_check_that_fails_the_sync(tmp_path):
    from dagster_duckdb import DuckDBResource

    from chaser_pipeline.defs.chaser_sync.assets import sync_asset
    from chaser_pipeline.defs.chaser_sync.resources import ChaserApiResource
    from chaser_pipeline.settings import load_settings

    sync_chaser_customers = sync_asset(CHASER_OBJECTS["customers"], load_settings())

    # 2 of 10 customers refused by Chaser (blank company name): 20% > the 1% default.
    rows = [(f"C-{i}", "" if i < 2 else f"Co {i}") for i in range(10)]
    _mart_db(tmp_path / "p.duckdb", rows, []).close()
    with run_emulator_in_thread(
        tmp_path / "c.sqlite3", api_key=API_KEY, api_secret=API_SECRET
    ) as emu:
        resources = {
            "duckdb": DuckDBResource(database=str(tmp_path / "p.duckdb")),
            "chaser": ChaserApiResource(api_url=emu.url, api_key=API_KEY, api_secret=API_SECRET),
        }
        result = dg.materialize(
            [sync_chaser_customers],
            resources=resources,
            raise_on_error=False,
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert not result.success
        [evaluation] = result.get_asset_check_evaluations()
        assert evaluation.check_name == "rejection_rate" and not evaluation.passed
        assert evaluation.metadata["rejected"].value == 2
        # the good rows still landed, and the failures are on record for the next run
        store = EmulatorStore(tmp_path / "c.sqlite3")
        assert store.count("customers") == 8
        store.close()

        # The next run retries exactly the two refused rows; a lenient threshold lets it pass.
        lenient = dg.materialize(
            [sync_chaser_customers],
            resources=resources,
            raise_on_error=False,
            instance=dg.DagsterInstance.ephemeral(),
            run_config={"ops": {"sync_chaser_customers": {"config": {"max_rejection_share": 1.0}}}},
        )
        assert lenient.success
        [retry] = lenient.get_asset_check_evaluations()
        assert retry.passed and retry.metadata["attempted"].value == 2


def test_a_document_chaser_may_hold_from_an_unrecorded_batch_is_never_skipped(tmp_path):
    from chaser_pipeline.chaser.errors import TransportError

    # Every write is applied by Chaser, then its connection drops (once per distinct request).
    faults = FaultConfig(rate_drop=1.0, first_attempt_only=True)
    with _chaser(tmp_path, faults=faults) as clients:
        patient = clients(backoff_base=0.01)
        impatient = clients(max_retries=0)  # gives up on the dropped answer, as a killed run would
        con = _mart_db(tmp_path / "p.duckdb", [("C-1", "Good Ltd")], [("I-1", "C-1")])
        assert (
            sync_object(con, patient, CHASER_OBJECTS["customers"], run_id="r1").confirmed["create"]
            == 1
        )
        with pytest.raises(TransportError):
            sync_object(con, impatient, CHASER_OBJECTS["invoices"], run_id="r1")
        store = EmulatorStore(tmp_path / "c.sqlite3")
        assert [r["status"] for r in store.records("invoices")] == ["AUTHORISED"]
        assert con.execute(
            "select count(*) from chaser_sync.state where key = 'I-1'"
        ).fetchone() == (0,)

        # Voided since: never worth a first send, but Chaser may hold it, so it must be sent.
        con.execute("update chaser_invoices set status = 'VOIDED' where invoice_id = 'I-1'")
        report = sync_object(con, patient, CHASER_OBJECTS["invoices"], run_id="r2")
        assert report.planned["skipped"] == 0 and report.confirmed["create"] == 1
        assert [r["status"] for r in store.records("invoices")] == ["VOIDED"]
        store.close()
