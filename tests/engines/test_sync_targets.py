"""State keyed by target: what one Chaser confirmed never counts for another (a new organisation
or the real API after the emulator starts from nothing), and one sync sends to a target at a time."""

from __future__ import annotations

import threading

import pytest

from chaser_pipeline.emulator import EmulatorStore
from chaser_pipeline.sync.state import DuckDBState, StateLockTimeout, Target
from tests.support.marts import emulated_chaser, mart_db


def test_a_new_target_starts_from_nothing_and_the_old_one_keeps_its_state(tmp_path):
    con = mart_db(tmp_path / "p.duckdb", [("C-1", "Good Ltd")], [("I-1", "C-1"), ("I-2", "C-1")])
    first_root, second_root = tmp_path / "first", tmp_path / "second"
    first_root.mkdir()
    second_root.mkdir()
    with emulated_chaser(first_root) as first:
        assert first.sync(con, "customers", run_id="r1").confirmed["create"] == 1
        assert first.sync(con, "invoices", run_id="r1").confirmed["create"] == 2
        assert first.sync(con, "invoices", run_id="r2").planned["unchanged"] == 2
    # the same pipeline pointed at another Chaser: nothing it holds is assumed
    with emulated_chaser(second_root) as second:
        _, target = second.state(con)
        customers = second.sync(con, "customers", run_id="r3")
        invoices = second.sync(con, "invoices", run_id="r3")
        assert customers.confirmed["create"] == 1
        assert invoices.confirmed["create"] == 2 and invoices.planned["held_back"] == 0
        with EmulatorStore(second_root / "c.sqlite3") as store:
            assert sorted(r["invoice_id"] for r in store.records("invoices")) == ["I-1", "I-2"]
        # a later change goes to the new target, which holds the customer
        con.execute("update chaser_invoices set total = 13.00 where invoice_id = 'I-1'")
        assert second.sync(con, "invoices", run_id="r4").confirmed["update"] == 1
    rows = con.execute(
        "select target, count(*) from chaser_sync.state group by target order by target"
    ).fetchall()
    assert len(rows) == 2 and {n for _, n in rows} == {3}
    assert target.key in {t for t, _ in rows}


def test_the_target_lock_makes_a_second_sync_wait_then_give_up_naming_the_target(tmp_path):
    con = mart_db(tmp_path / "p.duckdb", [], [])
    state = DuckDBState(con, tmp_path)
    # a gateway's password in the URL never reaches the message (it becomes a run's failure)
    target = Target("https://gw:GATEWAY-PASSWORD@openapi.example.test/?t=T0KEN", "org_1", "Ex")
    held, release = threading.Event(), threading.Event()

    def first_sync() -> None:
        with DuckDBState(con.cursor(), tmp_path).lock(target, wait_seconds=5):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=first_sync)
    thread.start()
    try:
        assert held.wait(10)
        with (
            pytest.raises(StateLockTimeout, match=r"openapi\.example\.test.*org_1") as refused,
            state.lock(target, wait_seconds=0.5),
        ):
            pass
        assert "GATEWAY-PASSWORD" not in str(refused.value) and "T0KEN" not in str(refused.value)
        # another target is not blocked
        with state.lock(Target("https://openapi.example.test", "org_2"), wait_seconds=0.5):
            pass
    finally:
        release.set()
        thread.join(10)
    with state.lock(target, wait_seconds=0.5):
        pass
