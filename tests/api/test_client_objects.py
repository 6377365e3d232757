"""The client's endpoints for every Chaser object over a real socket: contact persons per customer,
overpayments, organisation sync, paged lists with total_count counted against the budget, and
bad entries isolated the same way for every object."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chaser_pipeline.chaser import ChaserClient, NotFoundError, RequestBudget, ValidationError
from chaser_pipeline.chaser.endpoints import ContactPersons, ObjectEndpoint
from chaser_pipeline.emulator import EmulatorStore, FaultConfig, RateLimitConfig
from tests.support.emulator import (
    client_for,
    contact_person,
    customer,
    invoice,
    overpayment,
    run,
    running_emulator,
)


@pytest.mark.parametrize("name", ["customers", "invoices", "credit_notes", "overpayments"])
def test_endpoint_by_object_name(name):
    client = ChaserClient("http://chaser.test", "k", "s")
    endpoint = client.endpoint(name)
    assert isinstance(endpoint, ObjectEndpoint) and endpoint.path == f"/v1/{name}"
    assert isinstance(client.endpoint("contact_persons"), ContactPersons)
    with pytest.raises(ValueError, match="no object 'payments'"):
        client.endpoint("payments")
    run(client.aclose())


def test_contact_persons_bulk_upsert_per_customer_and_list(tmp_path):
    with running_emulator(tmp_path) as emulator:

        async def scenario():
            async with client_for(emulator) as client:
                await client.customers.bulk_upsert([customer(1), customer(2)])
                first = await client.contact_persons.bulk_upsert(
                    "C-00001", [contact_person(i) for i in range(3)]
                )
                # The same external ids under another customer are other people.
                second = await client.contact_persons.bulk_upsert(
                    "C-00002", [contact_person(0), contact_person(1, status="ARCHIVED")]
                )
                again = await client.contact_persons.bulk_upsert(
                    "C-00001", [contact_person(2, contact_last_name="Renamed")]
                )
                people = [p async for p in client.contact_persons.list("C-00001", limit=2)]
                page = await client.contact_persons.page("C-00002")
                return first, second, again, people, page

        first, second, again, people, page = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            bulk_paths = [
                row.path
                for row in store.request_log("contact_persons")
                if row.path.startswith("/v1/bulk")
            ]
            lists = store.request_count("contact_persons") - len(bulk_paths)
    assert [len(o.succeeded) for o in (first, second, again)] == [3, 2, 1]
    assert all(s.chaser_id for s in first.succeeded) and again.succeeded[0].chaser_id is None
    assert [p["external_id"] for p in people] == ["P-0000", "P-0001", "P-0002"]
    assert people[2]["contact_last_name"] == "Renamed"
    assert page.total_count == 2 and page.records[1]["status"] == "ARCHIVED"
    assert bulk_paths == [
        "/v1/bulk/customers/ext_C-00001/contact_persons",
        "/v1/bulk/customers/ext_C-00002/contact_persons",
        "/v1/bulk/customers/ext_C-00001/contact_persons",
    ]
    assert lists == 3  # two pages of two for C-00001, one page for C-00002


def test_contact_persons_of_a_customer_chaser_lacks_are_rejected_rows(tmp_path):
    with running_emulator(tmp_path) as emulator:

        async def scenario():
            async with client_for(emulator) as client:
                await client.customers.bulk_upsert([customer(1)])
                unknown = await client.contact_persons.bulk_upsert(
                    "C-09999", [contact_person(1), contact_person(2)]
                )
                one_bad = await client.contact_persons.bulk_upsert(
                    "C-00001", [contact_person(1), contact_person(2, mobile_number="0770")]
                )
                return unknown, one_bad

        unknown, one_bad = run(scenario())
    assert [(f.key, f.status) for f in unknown.failed] == [("P-0001", 404), ("P-0002", 404)]
    assert "customer 'C-09999' is not in Chaser" in unknown.failed[0].message
    assert "entity not found" in unknown.failed[0].message
    assert not unknown.succeeded
    assert [s.key for s in one_bad.succeeded] == ["P-0001"]
    assert [(f.key, f.status) for f in one_bad.failed] == [("P-0002", 400)]
    assert "mobile_number" in one_bad.failed[0].message


def test_contact_person_create_get_update_delete(tmp_path):
    with running_emulator(tmp_path, FaultConfig(rate_drop=1.0, first_attempt_only=True)) as emu:

        async def scenario():
            async with client_for(emu) as client:
                await client.customers.bulk_upsert([customer(1)])
                # Every write's answer is lost once: a create looks its key up rather than
                # creating twice, a delete finds its record gone rather than failing.
                created = await client.contact_persons.create("C-00001", contact_person(1))
                fetched = await client.contact_persons.get("C-00001", created["id"])
                updated = await client.contact_persons.update(
                    "C-00001", created["id"], {"status": "ARCHIVED"}
                )
                await client.contact_persons.delete("C-00001", created["id"])
                with pytest.raises(NotFoundError):
                    await client.contact_persons.get("C-00001", created["id"])
                return created, fetched, updated

        created, fetched, updated = run(scenario())
        with EmulatorStore(emu.state_path) as store:
            posts = [r for r in store.request_log("contact_persons") if r.method == "POST"]
    assert len(posts) == 1 and posts[0].fault == "drop"
    assert fetched["id"] == created["id"] and fetched["external_id"] == "P-0001"
    assert updated["status"] == "ARCHIVED"


def test_overpayments_bulk_upsert_list_and_count(tmp_path):
    with running_emulator(tmp_path) as emulator:

        async def scenario():
            async with client_for(emulator) as client:
                await client.customers.bulk_upsert([customer(1)])
                entries = [overpayment(i) for i in range(5)]
                entries[3] = overpayment(3, customer_index=77)
                outcome = await client.overpayments.bulk_upsert(entries)
                listed = [o async for o in client.overpayments.list(limit=2)]
                active = await client.overpayments.count(status="ACTIVE")
                one = await client.overpayments.get(listed[0]["id"])
                created = await client.overpayments.create(overpayment(9))
                with pytest.raises(ValidationError, match="already exists"):
                    await client.overpayments.create(overpayment(9))
                return outcome, listed, active, one, created

        outcome, listed, active, one, created = run(scenario())
    assert [s.key for s in outcome.succeeded] == [
        "OP-000000",
        "OP-000001",
        "OP-000002",
        "OP-000004",
    ]
    assert [(f.key, f.status) for f in outcome.failed] == [("OP-000003", 400)]
    assert "C-00077" in outcome.failed[0].message
    assert len(listed) == 4 and active == 4
    assert one["total"] == Decimal("25.00")
    assert created["id"].startswith("ovp_")


def test_organisation_sync(tmp_path):
    with running_emulator(tmp_path) as emulator:

        async def scenario():
            async with client_for(emulator) as client:
                return await client.organisation.sync(), await client.organisation.sync(["all"])

        assert run(scenario()) == (True, True)
        with EmulatorStore(emulator.state_path) as store:
            assert [r.path for r in store.request_log("organisation")] == [
                "/v1/organisation/sync"
            ] * 2


def test_paged_lists_of_every_object_count_against_the_budget(tmp_path):
    with running_emulator(tmp_path) as emulator:
        budget = RequestBudget()

        async def scenario():
            async with client_for(emulator, budget=budget) as client:
                await client.customers.bulk_upsert([customer(i) for i in range(100)])
                await client.customers.bulk_upsert([customer(i) for i in range(100, 250)][:100])
                await client.customers.bulk_upsert([customer(i) for i in range(200, 250)])
                writes = budget.stats.requests
                read = [c async for c in client.customers.list()]
                total = await client.customers.count()
                return writes, read, total, client.stats.requests

        writes, read, total, requests = run(scenario())
    assert writes == 3
    assert len(read) == total == 250
    assert budget.stats.requests == requests == 3 + 3 + 1  # three pages, one count


def test_halving_over_a_socket_when_the_emulator_names_no_entry(tmp_path):
    unlimited = RateLimitConfig(requests_per_minute=None)
    with running_emulator(tmp_path, rate_limit=unlimited, name_bad_entries=False) as emulator:

        async def scenario():
            async with client_for(emulator) as client:
                await client.customers.bulk_upsert([customer(1)])
                entries = [invoice(i) for i in range(100)]
                entries[17] = invoice(17, currency_code="gbp")
                entries[64] = invoice(64, customer_index=999)
                return await client.invoices.bulk_upsert(entries)

        outcome = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            stored = store.count("invoices")
    assert stored == len(outcome.succeeded) == 98
    assert [(f.key, f.status) for f in outcome.failed] == [("INV-000017", 400), ("INV-000064", 400)]
    assert "currency_code" in outcome.failed[0].message and "C-00999" in outcome.failed[1].message
    # Each level of halving sends both halves of a refused part: 7 levels for 100 entries.
    assert outcome.requests <= 1 + 2 * 2 * 7
