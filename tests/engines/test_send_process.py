"""An initial load sent from a process of its own (issue 13b): Chaser ends up holding what a load
sent by the sync's own event loop leaves, every row once; a refused entry is isolated and recorded
with Chaser's message; the child's requests, its 429s and the end of the waiver reach the run's
budget and report (the end of the waiver at once); a sending process that dies stops the sync
with a clear error, and the next run sends only what was not recorded; a cancelled send stops the
process at once, its requests counted; a 403 stops the sync as Chaser's own client would; a
process that cannot start leaves the load to the step's own event loop."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import time

import psutil
import pytest

from chaser_pipeline.chaser import ForbiddenError, RequestBudget, TransportError
from chaser_pipeline.chaser.encoding import EncodedEntries, RawJSON
from chaser_pipeline.chaser.send_process import SendProcess
from chaser_pipeline.emulator import FaultConfig, RateLimitConfig
from chaser_pipeline.sync.plan import SyncOptions
from tests.support.marts import API_KEY, API_SECRET, emulated_chaser, mart_db

CUSTOMERS = [(f"C-{i:03d}", f"Customer {i} Ltd") for i in range(250)]
BAD = "C-007"
FROM_A_PROCESS = SyncOptions(send_process_min_requests=1)
IN_PROCESS = SyncOptions(send_process_min_requests=0)


def marts(path):
    con = mart_db(path, CUSTOMERS, [])
    # Chaser refuses a mobile number without its country code (400 validation_error)
    con.execute(
        "update chaser_customers set mobile_number = '07700900123' where external_id = ?", [BAD]
    )
    return con


def first_load(tmp_path, options: SyncOptions, caplog):
    folder = tmp_path / ("process" if options.send_process_min_requests else "in-process")
    folder.mkdir()
    budget = RequestBudget(200, initial_load=True)
    # Chaser names no bad entry: the child halves the request until it stands alone
    with emulated_chaser(folder, name_bad_entries=False) as chaser:
        con = marts(folder / "p.duckdb")
        clients = chaser.clients(budget=budget, initial_load_in_flight=4)
        with caplog.at_level(logging.INFO, logger="chaser_pipeline"):
            report = chaser.sync(con, "customers", clients, options=options, run_id="first")
        again = chaser.sync(con, "customers", clients, options=options, run_id="second")
        with chaser.store() as store:
            held = {r["external_id"]: r for r in store.records("customers")}
            writes = store.write_request_count("customers")
            requests = store.request_count()
        state = con.execute(
            "select key, payload_hash from chaser_sync.state where object = 'customers' "
            "and payload_hash is not null order by key"
        ).fetchall()
        con.close()
    return report, again, held, writes, requests, state, budget


def test_a_first_load_from_a_process_leaves_chaser_and_the_state_as_one_sent_in_process(
    tmp_path, caplog
):
    report, again, held, writes, requests, state, budget = first_load(
        tmp_path, FROM_A_PROCESS, caplog
    )
    assert any("from a process of its own" in r.getMessage() for r in caplog.records)
    caplog.clear()
    base_report, _, base_held, base_writes, _, base_state, _ = first_load(
        tmp_path, IN_PROCESS, caplog
    )
    assert not any("from a process of its own" in r.getMessage() for r in caplog.records)

    assert report.confirmed["create"] == base_report.confirmed["create"] == 249
    assert report.failed == base_report.failed == 1
    [(key, message)] = report.failures
    assert key == BAD and "mobile_number" in message
    assert report.failures == base_report.failures
    # what Chaser holds and what the state says it holds are the same either way
    assert BAD not in held and len(held) == 249
    strip = {"id", "created_at", "updated_at"}
    assert {k: {f: v for f, v in r.items() if f not in strip} for k, r in held.items()} == {
        k: {f: v for f, v in r.items() if f not in strip} for k, r in base_held.items()
    }
    assert state == base_state and len(state) == 249
    # the child's requests were counted in the report and spent from the run's budget
    assert report.requests + again.requests == writes == base_writes
    assert budget.stats.requests == requests - 1  # all but the organisation check (its own client)
    assert len(budget.recent()) == budget.stats.requests
    assert report.send_seconds > 0
    # nothing is sent twice: the second run finds everything confirmed (the refused row aside)
    assert again.confirmed["create"] == 0 and again.failed == 1 and again.requests == 1


def test_the_end_of_the_waiver_met_in_the_process_reaches_the_runs_budget(tmp_path, caplog):
    """A 429 in the child ends the initial load: the run's budget learns it at once (not only
    from the child's final report, which a stopped run never gets), paces from then on and says
    so, and no row is lost to it."""
    limit = RateLimitConfig(requests_per_minute=2, window_seconds=0.5)
    budget = RequestBudget(2, window_seconds=0.5, initial_load=True)
    customers = [(f"C-{i:03d}", f"Customer {i} Ltd") for i in range(1_000)]
    seen = []  # whether the run's budget had fallen back, at each recording of answers
    with emulated_chaser(tmp_path, rate_limit=limit) as chaser:
        con = mart_db(tmp_path / "p.duckdb", customers, [])
        clients = chaser.clients(budget=budget, initial_load_in_flight=4)
        with caplog.at_level(logging.INFO, logger="chaser_pipeline"):
            report = chaser.sync(
                con,
                "customers",
                clients,
                options=FROM_A_PROCESS,
                on_progress=lambda _: seen.append(budget.fell_back),
            )
        with chaser.store() as store:
            refused = store.request_count(status=429)
            held = store.records("customers")
    assert report.confirmed["create"] == 1_000 and report.failed == 0 and len(held) == 1_000
    assert True in seen[:-1], seen  # known while the child was still sending
    assert report.rate_limited == refused >= 1
    assert budget.fell_back and not budget.initial_load
    assert budget.stats.rate_limited == refused
    # the child's warning, logged again by the run
    assert any(
        r.levelno == logging.WARNING and "waiver is over" in r.getMessage() for r in caplog.records
    )


def test_a_sending_process_that_dies_stops_the_sync_and_the_next_run_sends_the_rest(tmp_path):
    budget = RequestBudget(200, initial_load=True)
    killed = []

    def kill_the_sender(_report) -> None:
        if killed:
            return
        for child in psutil.Process().children():
            if "chaser_pipeline.chaser.send_process" in " ".join(child.cmdline()):
                child.kill()
                killed.append(child.pid)

    customers = [(f"C-{i:03d}", f"Customer {i} Ltd") for i in range(800)]
    # each answer 50 ms late, one request at a time: the first answers are recorded (and the
    # process killed) long before the last batch is sent
    with emulated_chaser(tmp_path, faults=FaultConfig(latency_ms=50)) as chaser:
        con = mart_db(tmp_path / "p.duckdb", customers, [])
        clients = chaser.clients(budget=budget, max_in_flight=1, initial_load_in_flight=1)
        with pytest.raises(TransportError, match="process sending to Chaser ended"):
            chaser.sync(
                con,
                "customers",
                clients,
                options=FROM_A_PROCESS,
                run_id="killed",
                on_progress=kill_the_sender,
            )
        assert killed
        # what the child spent reached the run's budget batch by batch, not only in a final
        # report it never sent: every write Chaser received but the one in flight at the kill
        with chaser.store() as store:
            writes = store.write_request_count("customers")
        assert budget.stats.requests >= 1 and writes - 1 <= budget.stats.requests <= writes
        assert len(budget.recent()) == budget.stats.requests
        ((recorded,),) = con.execute(
            "select count(*) from chaser_sync.state where payload_hash is not null"
        ).fetchall()
        assert 0 < recorded < 800
        report = chaser.sync(con, "customers", clients, options=IN_PROCESS, run_id="next")
        with chaser.store() as store:
            held = store.records("customers")
    # the next run sends what was not recorded (a batch answered but unrecorded goes again,
    # harmlessly: bulk upsert matches by key), and Chaser holds each customer once
    assert report.confirmed["create"] + report.confirmed["update"] == 800 - recorded
    assert sorted(r["external_id"] for r in held) == sorted(k for k, _ in customers)


def test_a_cancelled_send_stops_the_process_at_once_and_keeps_its_count(tmp_path):
    """Cancelled (Dagster's interrupt, Ctrl-C) with a request in flight: the child abandons it
    and reports at once, then ends by itself (exit code 0, not the terminate after the close
    timeout), and the run's client and budget count the request it made."""
    budget = RequestBudget(200, initial_load=True)
    rows = [(f"C-{i:03d}", f"Customer {i} Ltd") for i in range(3)]
    with emulated_chaser(tmp_path, faults=FaultConfig(latency_ms=60_000)) as chaser:
        con = mart_db(tmp_path / "p.duckdb", rows, [])
        payloads = [
            json
            for (json,) in con.execute(
                "select to_json(c)::varchar from chaser_customers as c order by external_id"
            ).fetchall()
        ]
        entries = EncodedEntries(
            "[" + ",".join(payloads) + "]",
            len(payloads),
            lambda i: RawJSON(payloads[i], rows[i][0]),
        )

        async def scenario():
            async with chaser.clients(budget=budget)() as client:
                sending = SendProcess(client)

                async def send() -> None:
                    async with sending:
                        await sending.endpoint("customers").bulk_upsert(entries)

                task = asyncio.create_task(send())
                deadline = time.monotonic() + 30
                # poll until the child's request is at Chaser (its connection is open)
                while not _connected(sending):
                    assert time.monotonic() < deadline, "the child never connected"
                    await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                return sending, client.stats

        sending, stats = asyncio.run(scenario())
    assert sending.returncode == 0
    assert stats.requests == stats.write_requests == 1
    assert budget.stats.requests == 1 and len(budget.recent()) == 1


def _connected(sending: SendProcess) -> bool:
    try:
        return bool(psutil.Process(sending.pid).net_connections(kind="tcp"))
    except (AssertionError, psutil.Error):
        return False


@pytest.mark.parametrize("options", [FROM_A_PROCESS, IN_PROCESS], ids=["process", "in-process"])
def test_credentials_revoked_mid_send_stop_the_sync_at_once(tmp_path, options):
    """A 403 (in the child, or in the step's own event loop) stops the sync at once: no batch
    already handed over or waiting for a slot is sent after it, the message names the key
    variables (never their values), and what Chaser confirmed before it is recorded."""
    budget = RequestBudget(200, initial_load=True)
    customers = [(f"C-{i:03d}", f"Customer {i} Ltd") for i in range(500)]
    # the organisation check, then two bulk requests, then every request refused
    with emulated_chaser(tmp_path, faults=FaultConfig(forbidden_after=3)) as chaser:
        con = mart_db(tmp_path / "p.duckdb", customers, [])
        clients = chaser.clients(budget=budget, max_in_flight=1, initial_load_in_flight=1)
        with pytest.raises(ForbiddenError) as raised:
            chaser.sync(con, "customers", clients, options=options)
        with chaser.store() as store:
            statuses = [row.status for row in store.request_log()]
            held = len(store.records("customers"))
        ((recorded,),) = con.execute(
            "select count(*) from chaser_sync.state where payload_hash is not null"
        ).fetchall()
    message = str(raised.value)
    assert "check CHASER_API_KEY and CHASER_API_SECRET" in message
    assert API_KEY not in message and API_SECRET not in message
    assert statuses == [200, 200, 200, 403]  # no retry of a 403, nothing sent after it
    assert recorded == held == 200


@pytest.mark.parametrize(
    ("interpreter", "why"),
    [
        pytest.param("no-such-python", "could not be started", id="not there"),
        pytest.param(shutil.which("false"), "ended before it was ready (exit code 1)", id="exits"),
    ],
)
def test_a_process_that_cannot_start_leaves_the_load_to_the_steps_own_loop(
    tmp_path, monkeypatch, caplog, interpreter, why
):
    """The process is an optimisation: when it cannot start (or ends before its client is
    ready), the step sends as it would without it, says why, and nothing is lost."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / interpreter))
    budget = RequestBudget(200, initial_load=True)
    with emulated_chaser(tmp_path) as chaser:
        con = mart_db(tmp_path / "p.duckdb", CUSTOMERS, [])
        clients = chaser.clients(budget=budget)
        with caplog.at_level(logging.WARNING, logger="chaser_pipeline"):
            report = chaser.sync(con, "customers", clients, options=FROM_A_PROCESS)
        with chaser.store() as store:
            held = len(store.records("customers"))
    assert not report.sent_from_process
    assert why in report.send_process_unavailable
    assert any("could not start" in r.getMessage() for r in caplog.records)
    assert report.confirmed["create"] == held == 250
