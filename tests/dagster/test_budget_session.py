"""Chaser's request budget holds across the steps and runs of one pipeline: each step's session
starts from the request times earlier ones left in the sync state, so a sync that starts right
after another does not burst into a full window."""

from __future__ import annotations

import asyncio

from dagster_duckdb import DuckDBResource

from chaser_pipeline.db import utc_now
from chaser_pipeline.defs.chaser_sync.resources import ChaserApiResource, SyncStateResource
from chaser_pipeline.defs.chaser_sync.session import chaser_session
from chaser_pipeline.emulator import run_emulator_in_thread
from chaser_pipeline.sync.engine import check_target

API_KEY, API_SECRET = "budget-key", "budget-secret"


def test_the_next_session_starts_from_the_request_times_the_last_one_left(tmp_path):
    with run_emulator_in_thread(
        tmp_path / "c.sqlite3", api_key=API_KEY, api_secret=API_SECRET
    ) as emulator:
        chaser = ChaserApiResource(
            api_url=emulator.url, api_key=API_KEY, api_secret=API_SECRET, requests_per_minute=50
        )
        duckdb = DuckDBResource(database=str(tmp_path / "p.duckdb"))
        sync_state = SyncStateResource()

        async def read_twice(session) -> None:
            async with session.connection.make_client() as client:
                await client.organisation.get()
                await client.organisation.get()

        with chaser_session(chaser, duckdb, sync_state) as first:
            first.target, _ = check_target(
                first.state,
                first.connection.identity,
                first.connection.make_client,
                run_id="run-1",
                now=utc_now(),
            )
            asyncio.run(read_twice(first))
            sent = first.connection.budget.recent()
        assert len(sent) == 3  # the organisation check and two reads

        with chaser_session(chaser, duckdb, sync_state) as second:
            carried = second.connection.budget.recent()
        assert carried == sent
