"""A contact person moved to another customer in the ledger (LEDGER_CONTRACT.md "Recipients and
unapplied cash": a contact removed from a customer becomes ARCHIVED there) is archived under the
customer it left, in the same run that sends it under its new customer, so the old customer's
reminders stop going to that person; once, with the state in DuckDB or in PostgreSQL, and a
reconcile after a lost state finds a copy still active under the old customer."""

from __future__ import annotations

import pytest

from chaser_pipeline.settings import Secret
from chaser_pipeline.sync.postgres_state import PostgresState, connect
from chaser_pipeline.sync.state import DuckDBState
from tests.support.marts import emulated_chaser, mart_db

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
