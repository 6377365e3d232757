"""Chaser's request budget holds across the steps and runs of one pipeline: each step's session
starts from the request times earlier ones left in the sync state, so a sync that starts right
after another does not burst into a full window; and once Chaser ends an organisation's first-day
waiver (a 429 to an initial load), no later step or run of an initial load sends unpaced."""

from __future__ import annotations

import asyncio
import time

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from chaser_pipeline.chaser.errors import DeadlineExceededError
from chaser_pipeline.db import utc_now
from chaser_pipeline.defs.chaser_sync.resources import ChaserApiResource, SyncStateResource
from chaser_pipeline.defs.chaser_sync.session import chaser_session
from chaser_pipeline.emulator import RateLimitConfig, run_emulator_in_thread
from chaser_pipeline.sync.engine import check_target

API_KEY, API_SECRET = "budget-key", "budget-secret"


def check(session) -> None:
    """The session's organisation check (one request), as a sync step's first: noted with the
    credentials, by which the next session finds its organisation's request times."""
    session.target, _ = check_target(
        session.state,
        session.connection.identity,
        session.connection.make_client,
        run_id="run-1",
        now=utc_now(),
        credentials=session.credentials,
    )


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
            check(first)
            asyncio.run(read_twice(first))
            sent = first.connection.budget.recent()
        assert len(sent) == 3  # the organisation check and two reads

        with chaser_session(chaser, duckdb, sync_state) as second:
            carried = second.connection.budget.recent()
        assert carried == sent


def test_a_step_whose_first_request_must_wait_says_so_before_it_waits(tmp_path):
    """A sync right after another that filled the minute would sit silent until the window had
    room; the step logs how long it will wait first (here the run's deadline then ends it at
    once instead of waiting out the minute)."""
    with run_emulator_in_thread(
        tmp_path / "c.sqlite3", api_key=API_KEY, api_secret=API_SECRET
    ) as emulator:
        resources = {
            "chaser": ChaserApiResource(
                api_url=emulator.url, api_key=API_KEY, api_secret=API_SECRET, requests_per_minute=1
            ),
            "duckdb": DuckDBResource(database=str(tmp_path / "p.duckdb")),
            "sync_state": SyncStateResource(),
        }

        def probe_asset(deadline_seconds: float | None) -> dg.AssetsDefinition:
            @dg.asset(name="probe")
            def probe(
                context,
                chaser: ChaserApiResource,
                duckdb: DuckDBResource,
                sync_state: SyncStateResource,
            ):
                deadline = time.time() + deadline_seconds if deadline_seconds else None
                with chaser_session(chaser, duckdb, sync_state, deadline=deadline) as session:
                    session.open_target(context, utc_now())

            return probe

        instance = dg.DagsterInstance.ephemeral()
        first = dg.materialize([probe_asset(None)], resources=resources, instance=instance)
        assert first.success  # the minute's one request: the organisation check
        second = dg.materialize(
            [probe_asset(2)], resources=resources, instance=instance, raise_on_error=False
        )
    assert not second.success  # the deadline ended it rather than a minute's wait
    messages = [entry.user_message for entry in instance.all_logs(second.run_id)]
    [notice] = [m for m in messages if "request budget" in m]
    assert "(1 a minute) has room in" in notice and "waiting" in notice
    assert not [
        m for m in (e.user_message for e in instance.all_logs(first.run_id)) if "budget" in m
    ]


def test_an_initial_load_after_chaser_ended_the_waiver_is_paced_from_its_first_request(tmp_path):
    """`--initial-load` runs every sync step unpaced; the first step's 429 says the waiver is
    over, and each later step used to start unpaced again and spend requests on 429s. The state
    keeps when it ended: the next step starts paced, with the window the last one left."""
    with run_emulator_in_thread(
        tmp_path / "c.sqlite3",
        api_key=API_KEY,
        api_secret=API_SECRET,
        rate_limit=RateLimitConfig(requests_per_minute=5),
    ) as emulator:
        chaser = ChaserApiResource(
            api_url=emulator.url, api_key=API_KEY, api_secret=API_SECRET, requests_per_minute=5
        )
        duckdb = DuckDBResource(database=str(tmp_path / "p.duckdb"))
        sync_state = SyncStateResource()

        async def read(session, times: int) -> None:
            async with session.connection.make_client() as client:
                for _ in range(times):
                    await client.organisation.get()

        # the deadline ends the first step at its 429 rather than a minute's wait for room
        with (
            pytest.raises(DeadlineExceededError),
            chaser_session(
                chaser, duckdb, sync_state, initial_load=True, deadline=time.time() + 5
            ) as first,
        ):
            assert first.budget.initial_load
            check(first)
            asyncio.run(read(first, 10))
        assert first.budget.fell_back and first.budget.stats.rate_limited == 1

        with chaser_session(chaser, duckdb, sync_state, initial_load=True) as second:
            assert not second.budget.initial_load  # paced from its first request
            assert second.waiver_over_at == first.budget.fell_back_at
            assert second.budget.room_in() > 0  # the window the first step filled
            assert "ended the organisation's first-24-hours waiver" in (
                second.budget.waiver_over_message(second.waiver_over_at)
            )

        # a step that is not an initial load never looks at the waiver
        with chaser_session(chaser, duckdb, sync_state) as plain:
            assert plain.waiver_over_at is None and not plain.budget.initial_load
