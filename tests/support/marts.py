"""Hand-made marts in a pipeline DuckDB, and an emulated Chaser with a client factory, for sync
engine tests that need no models and no Dagster."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb

from chaser_pipeline.chaser.client import ChaserClient
from chaser_pipeline.db import utc_now
from chaser_pipeline.emulator import EmulatorStore, run_emulator_in_thread
from chaser_pipeline.sync.engine import check_target, sync_object
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.report import SyncReport
from chaser_pipeline.sync.state import DuckDBState, SyncState, Target

API_KEY, API_SECRET = "test-key", "test-secret-never-logged"


class EmulatedChaser:
    """An emulated Chaser on loopback, clients for it, and the sync engine pointed at it."""

    def __init__(self, url: str, state_path: Path) -> None:
        self.url = url
        self.state_path = state_path
        self._states: dict[int, tuple[SyncState, Target]] = {}

    def clients(self, **options: Any) -> Callable[[], ChaserClient]:
        """A client factory (keyword arguments go to ChaserClient)."""
        return lambda: ChaserClient(self.url, API_KEY, API_SECRET, **options)

    def state(self, con: duckdb.DuckDBPyConnection) -> tuple[SyncState, Target]:
        """The DuckDB sync state on `con`, and this Chaser as its target (checked once)."""
        if id(con) not in self._states:
            state = DuckDBState(con, self.state_path.parent)
            target, _ = check_target(state, self.url, self.clients(), run_id="tests", now=utc_now())
            self._states[id(con)] = (state, target)
        return self._states[id(con)]

    def use(self, con: duckdb.DuckDBPyConnection, state: SyncState) -> Target:
        """Sync the marts on `con` through `state` (PostgreSQL, say) from now on."""
        target, _ = check_target(state, self.url, self.clients(), run_id="tests", now=utc_now())
        self._states[id(con)] = (state, target)
        return target

    def sync(
        self,
        con: duckdb.DuckDBPyConnection,
        object_name: str,
        client: Callable[[], ChaserClient] | None = None,
        **options: Any,
    ) -> SyncReport:
        """One sync of one object from the marts on `con` (keyword arguments go to
        sync_object)."""
        state, target = self.state(con)
        return sync_object(
            state, target, client or self.clients(), CHASER_OBJECTS[object_name], **options
        )

    def store(self) -> EmulatorStore:
        return EmulatorStore(self.state_path)


@contextlib.contextmanager
def emulated_chaser(tmp_path: Path, **faults: Any) -> Iterator[EmulatedChaser]:
    """An emulated Chaser on loopback with its state in tmp_path/c.sqlite3."""
    with run_emulator_in_thread(
        tmp_path / "c.sqlite3", api_key=API_KEY, api_secret=API_SECRET, **faults
    ) as emu:
        yield EmulatedChaser(emu.url, tmp_path / "c.sqlite3")


def mart_db(path, customers: list[tuple], invoices: list[tuple]) -> duckdb.DuckDBPyConnection:
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
