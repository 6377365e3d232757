"""A contact person moved to another customer in the ledger (LEDGER_CONTRACT.md "Recipients and
unapplied cash": a contact removed from a customer becomes ARCHIVED there) is archived under the
customer it left, in the same run that sends it under its new customer and before it, so the old
customer's reminders stop going to that person: once, with the state in DuckDB or in PostgreSQL,
whatever order Chaser answers in, and still owed after a run that died before Chaser confirmed
it. Moves are not counted twice by the mass-change guard, and reconcile reads the customer a
contact left."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from chaser_pipeline.chaser.client import ChaserClient
from chaser_pipeline.chaser.endpoints import ContactPersons
from chaser_pipeline.chaser.errors import ServerError
from chaser_pipeline.db import WHOLE_HISTORY, utc_now
from chaser_pipeline.models.project import ModelProject
from chaser_pipeline.settings import Secret
from chaser_pipeline.sync.engine import check_mass_change, sync_object
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.pending import Pending
from chaser_pipeline.sync.plan import SyncOptions, build_plan, previously_synced
from chaser_pipeline.sync.postgres_state import PostgresState, connect
from chaser_pipeline.sync.reconcile import reconcile
from chaser_pipeline.sync.state import DuckDBState
from tests.support.marts import API_KEY, API_SECRET, emulated_chaser, mart_db

CUSTOMERS = [("C-1", "Good Ltd"), ("C-2", "Other Ltd")]


def _contacts(con, rows: list[tuple[str, str, str]]) -> None:
    con.execute(
        """create or replace table chaser_contact_persons (external_id varchar,
        contact_first_name varchar, contact_last_name varchar, contact_email_address varchar,
        phone_number varchar, mobile_number varchar, status varchar,
        customer_external_id varchar)"""
    )
    for key, customer, status in rows:
        con.execute(
            """insert into chaser_contact_persons values
            (?, 'Grace', 'Hopper', 'grace@example.co.uk', null, null, ?, ?)""",
            [key, status, customer],
        )


def _held(chaser) -> dict[tuple[str, str], str]:
    """(customer external id, contact key) -> status, as Chaser holds them."""
    with chaser.store() as store:
        customers = {r["id"]: r["external_id"] for r in store.records("customers")}
        return {
            (customers[r["customer_id"]], r["external_id"]): r["status"]
            for r in store.records("contact_persons")
        }


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state_kind(request):
    return request.param


def _state(kind: str, con, folder, request):
    if kind == "duckdb":
        return DuckDBState(con, folder)
    return PostgresState(con, Secret(request.getfixturevalue("postgres_url")))


def test_a_moved_contact_is_archived_under_the_customer_it_left(tmp_path, state_kind, request):
    with emulated_chaser(tmp_path) as chaser:
        con = mart_db(tmp_path / "p.duckdb", CUSTOMERS, [])
        _contacts(con, [("CT-1", "C-1", "ACTIVE"), ("CT-2", "C-1", "ACTIVE")])
        state = _state(state_kind, con, tmp_path, request)
        chaser.use(con, state)
        chaser.sync(con, "customers", run_id="r1")
        assert chaser.sync(con, "contact_persons", run_id="r1").confirmed["create"] == 2

        # CT-1 now belongs to C-2 in the ledger
        con.execute(
            "update chaser_contact_persons set customer_external_id = 'C-2' where external_id = 'CT-1'"
        )
        writes = chaser.store()
        before = writes.write_request_count("contact_persons")
        moved = chaser.sync(con, "contact_persons", run_id="r2")
        # one request under C-1 (the archive), one under C-2 (the contact itself)
        assert writes.write_request_count("contact_persons") - before == 2
        assert moved.planned_requests == 2 and moved.failed == 0
        assert _held(chaser) == {
            ("C-1", "CT-1"): "ARCHIVED",
            ("C-1", "CT-2"): "ACTIVE",
            ("C-2", "CT-1"): "ACTIVE",
        }
        [(route,)] = state.query(
            "select route from chaser_sync.state where object = 'contact_persons' and key = 'CT-1'"
        )
        assert route == "C-2"

        # sent once: the next run has nothing to say
        again = chaser.sync(con, "contact_persons", run_id="r3")
        assert dict(again.planned) == {"unchanged": 2}
        assert writes.write_request_count("contact_persons") - before == 2

        # moved back: archived under C-2, active again under C-1
        con.execute(
            "update chaser_contact_persons set customer_external_id = 'C-1' where external_id = 'CT-1'"
        )
        chaser.sync(con, "contact_persons", run_id="r4")
        assert _held(chaser) == {
            ("C-1", "CT-1"): "ACTIVE",
            ("C-1", "CT-2"): "ACTIVE",
            ("C-2", "CT-1"): "ARCHIVED",
        }
        writes.close()


def test_a_state_from_before_routes_were_kept_gains_them(tmp_path, state_kind, request):
    """A state written before routes were kept (no `route` column) gets the column at its next
    opening; its contacts' routes are unknown, so a move then archives nothing (nothing says
    where they were) and is sent as before; the move after that is archived."""
    with emulated_chaser(tmp_path) as chaser:
        con = mart_db(tmp_path / "p.duckdb", CUSTOMERS, [])
        _contacts(con, [("CT-1", "C-1", "ACTIVE")])
        state = _state(state_kind, con, tmp_path, request)
        chaser.use(con, state)
        chaser.sync(con, "customers", run_id="r1")
        chaser.sync(con, "contact_persons", run_id="r1")
        _drop_routes(state_kind, con, request)

        state = _state(state_kind, con, tmp_path, request)  # the next run opens it again
        chaser.use(con, state)
        con.execute("update chaser_contact_persons set customer_external_id = 'C-2'")
        writes = chaser.store()
        before = writes.write_request_count("contact_persons")
        chaser.sync(con, "contact_persons", run_id="r2")
        assert writes.write_request_count("contact_persons") - before == 1
        assert _held(chaser) == {("C-1", "CT-1"): "ACTIVE", ("C-2", "CT-1"): "ACTIVE"}

        con.execute("update chaser_contact_persons set customer_external_id = 'C-1'")
        chaser.sync(con, "contact_persons", run_id="r3")
        assert writes.write_request_count("contact_persons") - before == 3
        assert _held(chaser) == {("C-1", "CT-1"): "ACTIVE", ("C-2", "CT-1"): "ARCHIVED"}
        writes.close()


def _drop_routes(kind: str, con, request) -> None:
    statements = [f"alter table chaser_sync.{t} drop column route" for t in ("state", "journal")]
    if kind == "duckdb":
        for statement in statements:
            con.execute(statement)
        return
    conn = connect(Secret(request.getfixturevalue("postgres_url")))
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        conn.commit()
    finally:
        conn.close()
    # the working copy is rebuilt from PostgreSQL at the next refresh
    for statement in statements:
        con.execute(statement)


class _SlowCustomer(ContactPersons):
    """Contact persons whose requests to one customer are answered late, or fail there (a run
    that dies while that request is in flight)."""

    def __init__(self, client, customer: str, *, fail: bool) -> None:
        super().__init__(client)
        self.customer, self.fail = customer, fail

    async def bulk_upsert(self, customer_external_id, entries):
        if customer_external_id == self.customer:
            await asyncio.sleep(0.3)  # the other customer's request is answered first
            if self.fail:
                raise ServerError(
                    "HTTP 500 (the run dies here)", method="PUT", path="/v1/bulk", status=500
                )
        return await super().bulk_upsert(customer_external_id, entries)


def _late(chaser, customer: str, *, fail: bool = False):
    def factory() -> ChaserClient:
        client = ChaserClient(chaser.url, API_KEY, API_SECRET)
        client.contact_persons = _SlowCustomer(client, customer, fail=fail)
        return client

    return factory


def _synced(tmp_path, chaser, state_kind, request, contacts: list[tuple[str, str, str]]):
    """The customers and these contact persons synced, then every contact moved to C-2."""
    con = mart_db(tmp_path / "p.duckdb", CUSTOMERS, [])
    _contacts(con, contacts)
    state = _state(state_kind, con, tmp_path, request)
    target = chaser.use(con, state)
    chaser.sync(con, "customers", run_id="r1")
    chaser.sync(con, "contact_persons", run_id="r1")
    con.execute("update chaser_contact_persons set customer_external_id = 'C-2'")
    return con, state, target


def _moved(tmp_path, chaser, state_kind, request):
    """CT-1 and CT-2 synced under C-1, then CT-1 moved to C-2 in the ledger."""
    rows = [("CT-1", "C-1", "ACTIVE"), ("CT-2", "C-1", "ACTIVE")]
    con, state, target = _synced(tmp_path, chaser, state_kind, request, rows)
    con.execute(
        "update chaser_contact_persons set customer_external_id = 'C-1' where external_id = 'CT-2'"
    )
    return con, state, target


def test_the_archive_is_recorded_first_whatever_order_chaser_answers_in(
    tmp_path, state_kind, request
):
    """With requests in flight together, the archive under C-1 could be answered after the
    contact under C-2 and recorded last, leaving the state on C-1 (sent again every run, and a
    move back never archived under C-2): the archives are answered and recorded first."""
    with emulated_chaser(tmp_path) as chaser:
        con, state, target = _moved(tmp_path, chaser, state_kind, request)
        contacts = CHASER_OBJECTS["contact_persons"]
        sync_object(state, target, _late(chaser, "C-1"), contacts, run_id="r2")
        assert dict(chaser.sync(con, "contact_persons", run_id="r3").planned) == {"unchanged": 2}
        con.execute("update chaser_contact_persons set customer_external_id = 'C-1'")
        sync_object(state, target, _late(chaser, "C-2"), contacts, run_id="r4")
        assert _held(chaser) == {
            ("C-1", "CT-1"): "ACTIVE",
            ("C-1", "CT-2"): "ACTIVE",
            ("C-2", "CT-1"): "ARCHIVED",
        }


def test_an_archive_chaser_never_confirmed_stays_owed(tmp_path, state_kind, request):
    """The run dies while the archive under C-1 is in flight: the contact is not sent under C-2
    in that run (its move waits for the archive), and the next run archives it, then moves it."""
    with emulated_chaser(tmp_path) as chaser:
        con, state, target = _moved(tmp_path, chaser, state_kind, request)
        contacts = CHASER_OBJECTS["contact_persons"]
        with pytest.raises(ServerError):
            sync_object(state, target, _late(chaser, "C-1", fail=True), contacts, run_id="r2")
        assert _held(chaser) == {("C-1", "CT-1"): "ACTIVE", ("C-1", "CT-2"): "ACTIVE"}
        chaser.sync(con, "contact_persons", run_id="r3")
        assert _held(chaser) == {
            ("C-1", "CT-1"): "ARCHIVED",
            ("C-1", "CT-2"): "ACTIVE",
            ("C-2", "CT-1"): "ACTIVE",
        }
        assert dict(chaser.sync(con, "contact_persons", run_id="r4").planned) == {"unchanged": 2}


def test_moves_are_not_counted_twice_by_the_mass_change_guard(tmp_path):
    """40 of 100 contact persons moved is 40% of what Chaser holds, under the 50% guard: an
    archive is a request more, not another row Chaser holds being changed."""
    with emulated_chaser(tmp_path) as chaser:
        con = mart_db(tmp_path / "p.duckdb", CUSTOMERS, [])
        _contacts(con, [(f"CT-{i:03}", "C-1", "ACTIVE") for i in range(100)])
        chaser.sync(con, "customers", run_id="r1")
        chaser.sync(con, "contact_persons", run_id="r1")
        con.execute(
            "update chaser_contact_persons set customer_external_id = 'C-2' "
            "where external_id < 'CT-040'"
        )
        state, target = chaser.state(con)
        state.refresh(target)
        planned = build_plan(
            con,
            CHASER_OBJECTS["contact_persons"],
            WHOLE_HISTORY,
            SyncOptions(),
            utc_now(),
            target=target,
        )
        assert (planned["update"], planned["archive"], previously_synced(con)) == (40, 40, 100)
        check_mass_change(
            Pending(
                planned={"contact_persons": planned}, previously_synced={"contact_persons": 100}
            ),
            SyncOptions(),
        )
        report = chaser.sync(con, "contact_persons", run_id="r2")
        assert (report.withdrawals, report.planned_requests, report.summary().updated) == (
            40,
            2,
            80,
        )


def test_reconcile_reads_the_customer_a_contact_left(tmp_path, state_kind, request):
    """C-1 has no contact left in the models after CT-1 moved: reconcile still reads it (the
    state's route names it), so the copy there is kept in the state and archived next."""
    project = object.__new__(ModelProject)
    project.models = {
        "chaser_contact_persons": SimpleNamespace(
            name="chaser_contact_persons",
            sql="select * from chaser_contact_persons",
            parameters=frozenset(),
        )
    }
    with emulated_chaser(tmp_path) as chaser:
        rows = [("CT-1", "C-1", "ACTIVE"), ("CT-2", "C-2", "ACTIVE")]
        con, state, target = _synced(tmp_path, chaser, state_kind, request, rows)
        report = reconcile(
            state,
            target,
            chaser.clients(),
            project,
            objects=["contact_persons"],
            apply=True,
            now=utc_now(),
        )
        assert report.objects["contact_persons"].held == 2
        chaser.sync(con, "contact_persons", run_id="r2")
        assert _held(chaser) == {
            ("C-1", "CT-1"): "ARCHIVED",
            ("C-2", "CT-1"): "ACTIVE",
            ("C-2", "CT-2"): "ACTIVE",
        }
