"""The request budget: a sliding window shared by every client of a run and carried across runs,
zero 429s when paced, 429s waited out without spending retries, the initial-load waiver falling
back at the first 429, and forecasts in words."""

from __future__ import annotations

import asyncio
import time

import pytest

from chaser_pipeline.chaser import (
    ChaserClient,
    DeadlineExceededError,
    RequestBudget,
    describe_forecast,
    forecast_seconds,
)
from chaser_pipeline.chaser.budget import FORECAST_READS_NOTE
from chaser_pipeline.emulator import EmulatorStore, FaultConfig, RateLimitConfig
from tests.support.emulator import API_KEY, API_SECRET, client_for, customer, run, running_emulator

# A small window keeps these tests short; the mechanism is the same at 200 a minute.
WINDOW = 1.0
LIMIT = 6


# ---- the budget on its own -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("requests", "per_minute", "text"),
    [
        pytest.param(
            412, 200, "412 write requests, about 2 min 4 s at 200 a minute", id="issue example"
        ),
        pytest.param(0, 200, "0 write requests, no time at 200 a minute", id="nothing to send"),
        pytest.param(1, 200, "1 write request, under a second at 200 a minute", id="one"),
        pytest.param(100, 200, "100 write requests, about 30 s at 200 a minute", id="seconds"),
        pytest.param(
            400, 200, "400 write requests, about 2 min at 200 a minute", id="whole minutes"
        ),
        pytest.param(
            13_000, 200, "13000 write requests, about 1 h 5 min at 200 a minute", id="hours"
        ),
        pytest.param(412, None, "412 write requests, not paced", id="no budget"),
    ],
)
def test_forecast_in_words(requests, per_minute, text):
    """A forecast counts write requests and says that reads are left out."""
    assert describe_forecast(requests, per_minute) == f"{text}; {FORECAST_READS_NOTE}"


def test_forecast_seconds_and_the_budgets_own_forecast():
    assert forecast_seconds(412) == pytest.approx(123.6)
    assert forecast_seconds(30, 30) == 60
    assert (
        RequestBudget(30)
        .forecast(45)
        .startswith("45 write requests, about 1 min 30 s at 30 a minute; reads not counted")
    )


async def take(budget: RequestBudget, count: int, **options) -> list[float]:
    """Acquire and release `count` slots one after another; the waits."""
    waits = []
    for _ in range(count):
        waits.append(await budget.acquire(**options))
        budget.release()
    return waits


def test_a_full_window_waits_until_its_oldest_request_leaves():
    budget = RequestBudget(LIMIT, window_seconds=WINDOW)
    started = time.monotonic()
    waits = run(take(budget, LIMIT + 1))
    elapsed = time.monotonic() - started
    assert max(waits[:LIMIT]) < 0.1  # the first LIMIT go at once
    assert waits[LIMIT] == pytest.approx(WINDOW, abs=0.15)
    assert elapsed >= WINDOW
    assert budget.stats.requests == LIMIT + 1
    assert budget.stats.waited_seconds == pytest.approx(sum(waits), abs=0.05)


def test_recent_times_carry_the_window_into_the_next_budget():
    first = RequestBudget(LIMIT, window_seconds=WINDOW)
    run(take(first, LIMIT))
    recent = first.recent()
    assert len(recent) == LIMIT and recent == sorted(recent)
    assert all(time.time() - WINDOW < t <= time.time() for t in recent)

    carried = RequestBudget(LIMIT, window_seconds=WINDOW, recent=recent)
    assert run(take(carried, 1))[0] > 0.5  # the earlier run's requests still fill the window
    fresh = RequestBudget(LIMIT, window_seconds=WINDOW)
    assert run(take(fresh, 1))[0] < 0.1


def test_recent_drops_old_times_and_holds_future_ones_at_now():
    now = time.time()
    budget = RequestBudget(3, window_seconds=WINDOW, recent=[now - 5, now - 0.2, now + 30])
    recent = budget.recent()
    assert len(recent) == 2
    assert recent[-1] <= time.time()


def test_a_wait_past_the_deadline_fails_at_once():
    budget = RequestBudget(1, window_seconds=30)
    run(take(budget, 1))
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError, match="deadline"):
        run(budget.acquire(deadline=time.time() + 1))
    assert time.monotonic() - started < 0.5


def test_a_429_without_retry_after_pauses_until_the_window_has_room():
    budget = RequestBudget(LIMIT, window_seconds=WINDOW)
    run(take(budget, 2))
    pause = budget.rate_limited(None)  # Chaser's window is full although ours is not
    assert 0.8 < pause <= WINDOW
    assert run(take(budget, 1))[0] == pytest.approx(pause, abs=0.1)
    assert budget.rate_limited(0.3) == pytest.approx(0.3, abs=0.05)  # Retry-After is honoured
    assert budget.stats.rate_limited == 2


def test_initial_load_does_not_pace_until_the_first_429():
    budget = RequestBudget(2, window_seconds=WINDOW, initial_load=True)
    assert max(run(take(budget, 10))) < 0.1
    assert budget.initial_load and not budget.fell_back and budget.fallback_message() is None
    budget.rate_limited(None)
    assert budget.fell_back and not budget.initial_load
    assert "during the initial load" in budget.fallback_message()
    assert "2 per 1 s" in budget.fallback_message()
    assert run(take(budget, 1))[0] > 0.5  # paced from now on


def test_no_budget_paces_nothing_but_still_counts():
    budget = RequestBudget(None)
    assert max(run(take(budget, 50))) < 0.1
    assert budget.stats.requests == 50 and len(budget.recent()) == 50


def test_one_budget_serves_several_event_loops_in_turn():
    budget = RequestBudget(LIMIT, window_seconds=WINDOW)
    run(take(budget, LIMIT))  # the sync runs one event loop per object
    assert run(take(budget, 1))[0] > 0.5


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"requests_per_minute": 0}, id="zero a minute"),
        pytest.param({"window_seconds": 0}, id="no window"),
    ],
)
def test_budget_refuses_nonsense(options):
    with pytest.raises(ValueError):
        RequestBudget(**options)


# ---- the budget against the emulator ---------------------------------------------------------


def limited(**options) -> RateLimitConfig:
    return RateLimitConfig(requests_per_minute=LIMIT, window_seconds=WINDOW, **options)


# These wait out real windows against an emulator process: slow, and still run in CI.
@pytest.mark.slow
def test_a_paced_run_gets_no_429_from_two_clients_sharing_one_budget(tmp_path):
    with running_emulator(tmp_path, FaultConfig(latency_ms=20), limited()) as emulator:
        budget = RequestBudget(LIMIT, window_seconds=WINDOW)

        async def scenario():
            async with (
                client_for(emulator, budget=budget, max_in_flight=4) as one,
                client_for(emulator, budget=budget, max_in_flight=4) as two,
            ):
                calls = [one.organisation.get() for _ in range(8)]
                calls += [two.customers.count() for _ in range(8)]
                await asyncio.gather(*calls)
                return one.stats, two.stats

        started = time.monotonic()
        one, two = run(scenario())
        elapsed = time.monotonic() - started
        with EmulatorStore(emulator.state_path) as store:
            assert store.request_count(status=429) == 0
            assert store.request_count() == 16
    assert one.rate_limited == two.rate_limited == 0
    assert budget.stats.requests == 16 and budget.stats.rate_limited == 0
    assert elapsed >= 2 * WINDOW  # 16 requests at 6 a window: at least two windows of waiting
    assert budget.stats.waited_seconds > 0
    assert one.budget_wait_seconds + two.budget_wait_seconds == pytest.approx(
        budget.stats.waited_seconds, abs=0.05
    )


@pytest.mark.slow
def test_a_429_without_retry_after_is_waited_out_without_failing_or_spending_retries(tmp_path):
    with running_emulator(tmp_path, rate_limit=limited()) as emulator:
        # A budget twice as generous as the organisation's limit: Chaser answers 429.
        budget = RequestBudget(2 * LIMIT, window_seconds=WINDOW)

        async def scenario():
            async with client_for(emulator, budget=budget, max_retries=0) as client:
                outcome = await client.customers.bulk_upsert([customer(i) for i in range(5)])
                for _ in range(2 * LIMIT):
                    await client.customers.get_by_external_id("C-00001")
                return outcome, client.stats

        outcome, stats = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            limited_answers = store.request_count(status=429)
            headers_free = all(row.fault is None for row in store.request_log())
    assert len(outcome.succeeded) == 5
    assert stats.rate_limited == limited_answers >= 1
    assert stats.retries == 0 and stats.server_errors == 0
    assert headers_free


@pytest.mark.slow
def test_the_budget_carried_across_two_runs_keeps_the_second_from_bursting(tmp_path):
    with running_emulator(tmp_path, rate_limit=limited()) as emulator:

        async def one_run(budget: RequestBudget) -> int:
            async with client_for(emulator, budget=budget) as client:
                for _ in range(LIMIT):
                    await client.organisation.get()
                return client.stats.rate_limited

        first = RequestBudget(LIMIT, window_seconds=WINDOW)
        assert run(one_run(first)) == 0
        # The next run starts at once, with the first run's request times: no 429.
        second = RequestBudget(LIMIT, window_seconds=WINDOW, recent=first.recent())
        assert run(one_run(second)) == 0
        assert second.stats.waited_seconds > 0.3
        # Without them it bursts into a full window and Chaser refuses it.
        third = RequestBudget(LIMIT, window_seconds=WINDOW)
        assert run(one_run(third)) >= 1


@pytest.mark.slow
def test_initial_load_runs_unpaced_in_the_waiver_and_falls_back_at_the_first_429(tmp_path):
    latency = 0.2
    new = limited(new_organisation=True, waiver_seconds=3600)
    with running_emulator(tmp_path, FaultConfig(latency_ms=latency * 1000), new) as emulator:
        budget = RequestBudget(LIMIT, window_seconds=WINDOW, initial_load=True)

        async def burst(client: ChaserClient, count: int) -> None:
            await asyncio.gather(*(client.organisation.get() for _ in range(count)))

        async def scenario():
            async with client_for(
                emulator, budget=budget, max_in_flight=2, initial_load_in_flight=16
            ) as client:
                # In the waiver: 16 requests at once, far above 6 a window.
                assert client.in_flight_limit == 16
                await burst(client, 16)
                assert budget.initial_load and client.stats.rate_limited == 0
                emulator.end_waiver()
                await burst(client, 2 * LIMIT)
                assert client.in_flight_limit == 2
                return client.stats

        stats = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            first_burst = sorted(row.at for row in store.request_log())[:16]
    # The emulator holds every request `latency` seconds before it answers, so each request that
    # arrived before the first one could have been answered was in flight beside it: with two in
    # flight at most, no more than two could have arrived in that time.
    beside_the_first = [at for at in first_burst if at < first_burst[0] + latency]
    assert len(beside_the_first) > 2
    assert budget.fell_back and not budget.initial_load
    assert stats.rate_limited >= 1 and stats.retries == 0
    assert "initial load" in budget.fallback_message()


@pytest.mark.slow
def test_retry_after_on_the_limit_is_honoured(tmp_path):
    with running_emulator(tmp_path, rate_limit=limited(retry_after=True)) as emulator:
        budget = RequestBudget(None)  # nothing paces: only Chaser's answer holds it back

        async def scenario():
            async with ChaserClient(emulator.url, API_KEY, API_SECRET, budget=budget) as client:
                for _ in range(LIMIT + 1):
                    await client.organisation.get()
                return client.stats

        started = time.monotonic()
        stats = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            log = store.request_log()
    assert stats.rate_limited == 1
    assert [row.status for row in log] == [200] * LIMIT + [429, 200]
    assert log[-1].at - log[-2].at >= 1.0  # Retry-After is whole seconds: 1
    assert time.monotonic() - started >= 1.0


def test_room_in_says_how_long_the_next_request_would_wait():
    """What a step logs before its first request waits on a window earlier runs filled."""
    now = 1_000.0
    full = RequestBudget(3, recent=[now - 50, now - 10, now - 5], clock=lambda: now)
    assert full.room_in() == pytest.approx(10)  # the oldest leaves the minute in 10 s
    assert RequestBudget(3, recent=[now - 50], clock=lambda: now).room_in() == 0
    assert RequestBudget(None, recent=[now] * 500, clock=lambda: now).room_in() == 0
