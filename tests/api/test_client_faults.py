"""Bounded waits and mid-run faults: a silent Chaser, an outage and revoked credentials each end
the run quickly with a message that names what to fix (never a secret), the answers confirmed
before it reach the caller, and nothing is created twice."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from chaser_pipeline.chaser import (
    ChaserClient,
    ChaserNotAnsweringError,
    ChaserUnreachableError,
    DeadlineExceededError,
    ForbiddenError,
    RequestBudget,
)
from chaser_pipeline.chaser.client import display_url
from chaser_pipeline.emulator import EmulatorStore, FaultConfig
from tests.support.emulator import (
    API_KEY,
    API_SECRET,
    client_for,
    customer,
    invoice,
    run,
    running_emulator,
)


def batches(count: int, size: int = 5) -> list[list[dict]]:
    return [[customer(b * size + i) for i in range(size)] for b in range(count)]


async def send_batches(client: ChaserClient, to_send: list[list[dict]]) -> tuple[list, Exception]:
    """Upsert batch after batch as the sync does; the outcomes confirmed, and the error that
    stopped it."""
    confirmed = []
    try:
        for batch in to_send:
            confirmed.append(await client.customers.bulk_upsert(batch))
    except Exception as exc:
        return confirmed, exc
    raise AssertionError("the run was expected to fail")


def assert_no_secret(text: str) -> None:
    assert API_SECRET not in text and API_KEY not in text


def test_a_silent_chaser_fails_within_the_request_timeouts(tmp_path):
    with running_emulator(tmp_path, FaultConfig(silent_after=2)) as emulator:

        async def scenario():
            async with client_for(emulator, request_timeout=0.4, max_unanswered=2) as client:
                return await send_batches(client, batches(4)), client.stats

        started = time.monotonic()
        (confirmed, error), stats = run(scenario())
        elapsed = time.monotonic() - started
        with EmulatorStore(emulator.state_path) as store:
            held = store.count("customers")
    assert isinstance(error, ChaserNotAnsweringError)
    assert str(error).startswith("Chaser stopped answering: PUT /v1/bulk/customers got no answer")
    assert f"Chaser at {emulator.url} (CHASER_API_URL)" in str(error)
    assert_no_secret(str(error))
    assert elapsed < 3
    assert (stats.timeouts, stats.retries) == (2, 1)
    # What Chaser confirmed before it went silent reached the caller.
    assert [len(o.succeeded) for o in confirmed] == [5, 5] and held == 10


def test_the_run_deadline_cuts_a_silent_chaser_short(tmp_path):
    with running_emulator(tmp_path, FaultConfig(silent_after=0)) as emulator:

        async def scenario():
            async with client_for(emulator, deadline=time.time() + 2.0) as client:
                with pytest.raises(ChaserNotAnsweringError) as caught:
                    await client.organisation.get()
                return caught.value

        started = time.monotonic()
        error = run(scenario())
    assert time.monotonic() - started < 3  # not the 30 s request timeout
    assert "Chaser stopped answering" in str(error)
    assert "the run's deadline has passed" in str(error)


def test_nothing_is_sent_too_close_to_the_deadline(tmp_path):
    """Under a second left: an answer could not come back in time, so nothing is sent."""
    with running_emulator(tmp_path) as emulator:

        async def scenario():
            async with client_for(emulator, deadline=time.time() + 0.5) as client:
                with pytest.raises(DeadlineExceededError, match="too soon for an answer"):
                    await client.organisation.get()

        run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            assert store.request_count() == 0


def test_nothing_is_sent_after_the_deadline(tmp_path):
    with running_emulator(tmp_path) as emulator:

        async def scenario():
            async with client_for(emulator, deadline=time.time() - 1) as client:
                with pytest.raises(DeadlineExceededError, match="not sent"):
                    await client.organisation.get()
                return client.stats

        stats = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            assert store.request_count() == 0
    assert stats.requests == 0


def test_a_request_whose_budget_wait_ends_just_before_the_deadline_is_not_sent(tmp_path):
    """Room in the budget under a second before the deadline is too late for an answer to come
    back: the request is not sent (it would time out and be sent again by the next run), and
    its slot is given back."""
    with running_emulator(tmp_path) as emulator:
        budget = RequestBudget(1, window_seconds=1.0)

        async def scenario():
            async with client_for(emulator, budget=budget, deadline=time.time() + 1.9) as client:
                await client.organisation.get()
                with pytest.raises(DeadlineExceededError, match="not sent") as caught:
                    await client.organisation.get()
                return caught.value, client.stats

        error, stats = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            assert store.request_count() == 1
    assert "after waiting" in str(error)
    assert stats.requests == budget.stats.requests == 1  # the slot given back is not counted


def test_a_wait_for_the_budget_past_the_deadline_fails_at_once(tmp_path):
    with running_emulator(tmp_path) as emulator:
        budget = RequestBudget(2, window_seconds=60)

        async def scenario():
            async with client_for(emulator, budget=budget, deadline=time.time() + 5) as client:
                await client.organisation.get()
                await client.organisation.get()
                with pytest.raises(DeadlineExceededError) as caught:
                    await client.organisation.get()
                return caught.value

        started = time.monotonic()
        error = run(scenario())
    assert time.monotonic() - started < 1
    assert str(error).startswith("GET /v1/organisation not sent: the run's deadline comes in")
    assert "2 per 60 s" not in str(error) and "2 a minute" in str(error)


def test_an_outage_mid_run_names_chaser_api_url_and_a_rerun_completes(tmp_path):
    with running_emulator(tmp_path, FaultConfig(outage_after=2)) as emulator:
        url = emulator.url

        async def scenario():
            async with client_for(emulator, max_retries=3) as client:
                return await send_batches(client, batches(4))

        confirmed, error = run(scenario())
    assert isinstance(error, ChaserUnreachableError)
    assert str(error).startswith(f"Cannot reach Chaser at {url} (CHASER_API_URL): ConnectError")
    assert "Check CHASER_API_URL" in str(error)
    assert_no_secret(str(error))
    assert [len(o.succeeded) for o in confirmed] == [5, 5]

    # Chaser is back: the next run sends what is left, and nothing is held twice.
    with running_emulator(tmp_path) as emulator:

        async def rerun():
            async with client_for(emulator) as client:
                for batch in batches(4)[len(confirmed) :]:
                    await client.customers.bulk_upsert(batch)

        run(rerun())
        with EmulatorStore(emulator.state_path) as store:
            keys = [r["external_id"] for r in store.records("customers")]
    assert sorted(keys) == sorted(c["external_id"] for b in batches(4) for c in b)


@pytest.mark.parametrize(
    ("in_flight", "budget"),
    [
        pytest.param(1, None, id="waiting for an in-flight slot"),
        # four in flight, one request every 0.2 s: three wait in the budget, slot in hand
        pytest.param(4, RequestBudget(1, window_seconds=0.2), id="waiting for the budget"),
    ],
)
def test_requests_waiting_for_a_slot_are_not_sent_after_a_403(tmp_path, in_flight, budget):
    """Retrying cannot help a refused key: once Chaser answered 403, the client sends nothing
    more, not even the requests already waiting for an in-flight slot or for the budget; a
    request not sent leaves the budget's window as it was."""
    with running_emulator(tmp_path, FaultConfig(forbidden_after=1)) as emulator:

        async def scenario():
            async with client_for(emulator, max_in_flight=in_flight, budget=budget) as client:
                return await asyncio.gather(
                    *(client.organisation.get() for _ in range(5)), return_exceptions=True
                )

        answers = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            statuses = [row.status for row in store.request_log()]
    assert statuses == [200, 403]
    refused = [a for a in answers if isinstance(a, ForbiddenError)]
    assert len(refused) == 4
    assert all("check CHASER_API_KEY and CHASER_API_SECRET" in str(e) for e in refused)
    assert sum("not sent" in str(e) for e in refused) == 3
    if budget is not None:
        assert budget.stats.requests == 2


def test_credentials_revoked_mid_run_stop_at_once(tmp_path):
    with running_emulator(tmp_path, FaultConfig(forbidden_after=2)) as emulator:

        async def scenario():
            async with client_for(emulator) as client:
                return await send_batches(client, batches(4)), client.stats

        (confirmed, error), stats = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            statuses = [row.status for row in store.request_log()]
    assert isinstance(error, ForbiddenError)
    assert "check CHASER_API_KEY and CHASER_API_SECRET" in str(error)
    assert_no_secret(str(error))
    assert statuses == [200, 200, 403]  # no retry of a 403
    assert stats.retries == 0 and len(confirmed) == 2


def test_a_create_after_an_unapplied_5xx_is_sent_again_once(tmp_path):
    with running_emulator(tmp_path, FaultConfig(rate_5xx=1.0, first_attempt_only=True)) as emu:

        async def scenario():
            async with client_for(emu) as client:
                await client.customers.bulk_upsert([customer(1)])
                return await client.invoices.create(invoice(1))

        created = run(scenario())
        with EmulatorStore(emu.state_path) as store:
            invoices = store.records("invoices")
            methods = [(r.method, r.status) for r in store.request_log("invoices")]
    assert [r["id"] for r in invoices] == [created["id"]]
    # The 5xx came before the write: the key was looked up (its first try a 5xx too: every
    # distinct request meets one), not found, and the create sent once more.
    assert [(method, status >= 500) for method, status in methods] == [
        ("POST", True),
        ("GET", True),
        ("GET", False),
        ("POST", False),
    ]


def test_an_unreachable_host_names_chaser_api_url_and_no_credentials():
    async def scenario():
        client = ChaserClient(
            "http://user:pa55@127.0.0.1:9/chaser",  # port 9 (discard): nobody listens
            API_KEY,
            API_SECRET,
            max_retries=1,
            backoff_base=0.01,
        )
        async with client:
            with pytest.raises(ChaserUnreachableError) as caught:
                await client.organisation.get()
        return caught.value, repr(client)

    error, shown = run(scenario())
    assert "Cannot reach Chaser at http://127.0.0.1:9/chaser (CHASER_API_URL)" in str(error)
    for text in (str(error), repr(error), shown):
        assert "pa55" not in text
        assert_no_secret(text)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://openapi.chaserhq.com", "https://openapi.chaserhq.com"),
        ("https://key:secret@chaser.example/api?token=x#f", "https://chaser.example/api"),
    ],
)
def test_display_url_drops_credentials_query_and_fragment(url, shown):
    assert display_url(url) == shown


def test_a_failure_part_way_through_halving_keeps_what_was_settled():
    """A bulk request refused without naming entries is halved; when the network then fails,
    the error carries the half Chaser already accepted, so the caller can record it."""

    def handler(request: httpx.Request) -> httpx.Response:
        ids = [entry["invoice_id"] for entry in json.loads(request.content)["entries"]]
        if "I6" in ids and len(ids) > 1 and "I0" in ids:
            return httpx.Response(400, json={"message": "invalid", "type": "validation_error"})
        if "I6" in ids:
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, json={"data": {"modified_count": len(ids)}})

    async def scenario():
        transport = httpx.MockTransport(handler)
        client = ChaserClient("http://chaser.test", "k", "s", transport=transport, max_retries=0)
        async with client:
            with pytest.raises(ChaserUnreachableError) as caught:
                await client.invoices.bulk_upsert([{"invoice_id": f"I{i}"} for i in range(8)])
        return caught.value

    error = run(scenario())
    assert error.settled is not None
    assert error.settled.accepted == [0, 1, 2, 3] and not error.settled.failed
