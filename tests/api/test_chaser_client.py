"""The Chaser client over a real socket: paging, retries, lossless writes, bad-entry isolation, secrets."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import socket
import time
from decimal import Decimal

import httpx
import pytest

from chaser_pipeline.chaser import (
    ChaserClient,
    ForbiddenError,
    NotFoundError,
    RequestBudget,
    TransportError,
    UnexpectedStatusError,
    ValidationError,
    dumps,
    encode_payload,
)
from chaser_pipeline.chaser.encoding import EncodedEntries, RawJSON
from chaser_pipeline.chaser.retry import parse_retry_after
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

# ---- encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "expected_json"),
    [
        pytest.param({"total": 0.1 + 0.2}, b'{"total":0.30}', id="float 0.1+0.2 -> 0.30"),
        pytest.param({"total": 10.5}, b'{"total":10.50}', id="float 10.5 -> 10.50"),
        pytest.param({"total": Decimal("10.5")}, b'{"total":10.50}', id="decimal 10.5 -> 10.50"),
        pytest.param({"amount_due": Decimal("-3.1")}, b'{"amount_due":-3.10}', id="negative"),
        pytest.param({"amount_paid": 7}, b'{"amount_paid":7.00}', id="int money -> 7.00"),
        pytest.param({"total": Decimal("2.675")}, b'{"total":2.68}', id="half up 2.675 -> 2.68"),
        pytest.param(
            {"total": Decimal("123456789012345.67")},
            b'{"total":123456789012345.67}',
            id="decimal(18,2) max scale exact",
        ),
        pytest.param({"page_hint": 3}, b'{"page_hint":3}', id="int outside money stays int"),
        pytest.param({"fully_paid_date": None}, b'{"fully_paid_date":null}', id="none -> null"),
        pytest.param(
            {"date": dt.date(2024, 2, 29)},
            b'{"date":"2024-02-29T00:00:00.000Z"}',
            id="date -> midnight UTC",
        ),
        pytest.param(
            {"date": dt.datetime(2024, 1, 5, 10, 11, 12, 345678)},
            b'{"date":"2024-01-05T10:11:12.345Z"}',
            id="naive datetime is UTC, milliseconds",
        ),
        pytest.param(
            {"date": dt.datetime(2024, 1, 5, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))},
            b'{"date":"2024-01-04T23:00:00.000Z"}',
            id="aware datetime converted to UTC",
        ),
        pytest.param(
            {"due_date": "2024-01-31T00:00:00.000Z"},
            b'{"due_date":"2024-01-31T00:00:00.000Z"}',
            id="formatted string passes through",
        ),
        pytest.param(
            {"addresses": [{"city": "Zürich", "address_type": "Billing"}]},
            b'{"addresses":[{"city":"Z\\u00fcrich","address_type":"Billing"}]}',
            id="nested list of dicts",
        ),
        pytest.param(
            {"payments": [{"amount": 5, "date": dt.date(2024, 1, 1)}]},
            b'{"payments":[{"amount":5.00,"date":"2024-01-01T00:00:00.000Z"}]}',
            id="nested money and dates",
        ),
    ],
)
def test_encode_payload(record, expected_json):
    encoded = encode_payload(record)
    assert dumps(encoded) == expected_json
    # What is sent is valid JSON that reads back to the same decimals.
    assert json.loads(dumps(encoded), parse_float=Decimal) == json.loads(
        expected_json, parse_float=Decimal
    )


def test_encode_payload_refuses_non_finite_money():
    with pytest.raises(ValueError, match="finite"):
        encode_payload({"total": float("nan")})


@pytest.mark.parametrize(
    ("header", "low", "high"),
    [
        pytest.param("2", 2.0, 2.0, id="seconds"),
        pytest.param("0.05", 0.05, 0.05, id="fractional seconds"),
        pytest.param(None, None, None, id="absent"),
        pytest.param("soon", None, None, id="garbage ignored"),
    ],
)
def test_retry_after_parsing(header, low, high):
    value = parse_retry_after(header)
    if low is None:
        assert value is None
    else:
        assert low <= value <= high


def test_retry_after_http_date():
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    value = parse_retry_after(when.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert 25 <= value <= 31


# ---- against the emulator ------------------------------------------------------------------


def test_pagination_returns_every_record_once(tmp_path):
    with running_emulator(tmp_path) as emulator:

        async def scenario():
            async with client_for(emulator, max_in_flight=4) as client:
                batches = [
                    [customer(i) for i in range(start, min(start + 100, 1050))]
                    for start in range(0, 1050, 100)
                ]
                for batch in batches:
                    outcome = await client.customers.bulk_upsert(batch)
                    assert not outcome.failed
                before = client.stats.requests
                seen = [record async for record in client.customers.list(limit=100)]
                return seen, client.stats.requests - before

        seen, list_requests = run(scenario())
    keys = [record["external_id"] for record in seen]
    assert len(keys) == 1050
    assert set(keys) == {f"C-{i:05d}" for i in range(1050)}
    assert list_requests == 11  # ten full pages and one of 50


def test_list_filters(tmp_path):
    with running_emulator(tmp_path) as emulator:

        async def scenario():
            async with client_for(emulator) as client:
                await client.customers.bulk_upsert([customer(1), customer(2)])
                await client.invoices.bulk_upsert(
                    [
                        invoice(1, total=Decimal("10.00")),
                        invoice(2, total=Decimal("99.99")),
                        invoice(3, status="PAID", total=Decimal("500.00")),
                    ]
                )
                big = [r["invoice_id"] async for r in client.invoices.list(total__gte=50)]
                paid = [r["invoice_id"] async for r in client.invoices.list(status="PAID")]
                some = [
                    r["invoice_id"]
                    async for r in client.invoices.list(invoice_id__in=["INV-000001", "INV-000003"])
                ]
                return big, paid, some

        big, paid, some = run(scenario())
    assert big == ["INV-000002", "INV-000003"]
    assert paid == ["INV-000003"]
    assert some == ["INV-000001", "INV-000003"]


def test_429_waits_for_retry_after_then_succeeds(tmp_path):
    faults = FaultConfig(rate_429=1.0, retry_after=0.3, first_attempt_only=True)
    with running_emulator(tmp_path, faults) as emulator:

        async def scenario():
            async with client_for(emulator, max_retries=0) as client:
                started = time.monotonic()
                organisation = await client.organisation.get()
                return organisation, time.monotonic() - started, client.stats

        organisation, elapsed, stats = run(scenario())
        log = EmulatorStore(emulator.state_path).request_log()
    assert organisation["name"]
    assert elapsed >= 0.3
    # 429s are not failures: max_retries=0 and the call still succeeded.
    assert (stats.rate_limited, stats.requests) == (1, 2)
    assert [(row.status, row.fault) for row in log] == [(429, "429"), (200, None)]
    assert log[1].at - log[0].at >= 0.3


def test_5xx_is_retried_then_succeeds(tmp_path):
    faults = FaultConfig(rate_5xx=1.0, first_attempt_only=True)
    with running_emulator(tmp_path, faults) as emulator:

        async def scenario():
            async with client_for(emulator) as client:
                outcome = await client.customers.bulk_upsert([customer(1), customer(2)])
                return outcome, client.stats

        outcome, stats = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            assert store.count("customers") == 2
    assert len(outcome.succeeded) == 2
    assert (stats.server_errors, stats.retries, stats.requests) == (1, 1, 2)


def test_write_dropped_after_commit_is_neither_lost_nor_duplicated(tmp_path):
    faults = FaultConfig(rate_drop=1.0, first_attempt_only=True)
    with running_emulator(tmp_path, faults) as emulator:

        async def scenario():
            async with client_for(emulator) as client:
                outcome = await client.customers.bulk_upsert([customer(i) for i in range(10)])
                created = await client.invoices.create(invoice(1, customer_index=3))
                return outcome, created, client.stats

        outcome, created, stats = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            customers = store.records("customers")
            invoices = store.records("invoices")
            drops = [row for row in store.request_log() if row.fault == "drop"]
            # The bulk upsert landed, was dropped, and was applied once more by key.
            assert {store.write_count("customers", f"C-{i:05d}") for i in range(10)} == {2}
            assert store.write_count("invoices", "INV-000001") == 1
            assert store.write_request_count("customers") == 2
            # The POST landed and lost its answer: the key was looked up, not POSTed again.
            assert store.write_request_count("invoices") == 1
    assert len(drops) == 2
    assert len(customers) == 10
    assert len(outcome.succeeded) == 10 and not outcome.failed
    assert [record["invoice_id"] for record in invoices] == ["INV-000001"]
    assert created["id"] == invoices[0]["id"]
    assert stats.transport_errors == 2


def test_rate_limit_and_concurrency_are_shared_by_all_nouns(tmp_path):
    with running_emulator(tmp_path, FaultConfig(latency_ms=100)) as emulator:

        async def scenario(**options):
            async with client_for(emulator, **options) as client:
                calls = [client.organisation.get() for _ in range(3)]
                calls += [client.customers.get_by_external_id("C-00001") for _ in range(3)]
                started = time.monotonic()
                await asyncio.gather(*calls, return_exceptions=True)
                return time.monotonic() - started

        # Six requests of 100 ms, two at a time: at least three rounds.
        assert run(scenario(max_in_flight=2)) >= 0.3
        # Five per second in a sliding window: the sixth waits for the first to leave it.
        budget = RequestBudget(5, window_seconds=1.0)
        assert run(scenario(max_in_flight=6, budget=budget)) >= 1.0


def test_wrong_credentials_fail_once_with_a_clear_message(tmp_path):
    with running_emulator(tmp_path) as emulator:

        async def scenario():
            async with ChaserClient(emulator.url, API_KEY, "not-the-secret") as client:
                with pytest.raises(ForbiddenError) as caught:
                    await client.organisation.get()
                return caught.value, client.stats

        error, stats = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            assert len(store.request_log()) == 1
    assert str(error).startswith(
        "Chaser refused the API key or secret (HTTP 403 forbidden_error: requested resource is "
        "forbidden): check CHASER_API_KEY and CHASER_API_SECRET"
    )
    assert "not-the-secret" not in str(error)
    assert "GET /v1/organisation" in str(error)
    assert (stats.requests, stats.retries) == (1, 0)


def test_bulk_batch_with_two_bad_entries_lands_the_other_98(tmp_path):
    entries = [invoice(i) for i in range(100)]
    entries[17] = invoice(17, currency_code="gbp")
    entries[64] = invoice(64, customer_index=999)
    with running_emulator(tmp_path) as emulator:

        async def scenario():
            async with client_for(emulator) as client:
                await client.customers.bulk_upsert([customer(1)])
                return await client.invoices.bulk_upsert(entries)

        outcome = run(scenario())
        with EmulatorStore(emulator.state_path) as store:
            stored = {record["invoice_id"] for record in store.records("invoices")}
    assert len(outcome.succeeded) == 98
    assert [(f.index, f.key, f.status) for f in outcome.failed] == [
        (17, "INV-000017", 400),
        (64, "INV-000064", 400),
    ]
    assert "currency_code" in outcome.failed[0].message
    assert "C-00999" in outcome.failed[1].message
    assert outcome.requests == 2  # the rejected batch, then the 98 in one request
    assert stored == {f"INV-{i:06d}" for i in range(100)} - {"INV-000017", "INV-000064"}
    assert all(s.chaser_id for s in outcome.succeeded)


def test_bulk_isolation_by_halving_when_errors_are_not_indexed():
    """A server that only says 'bad request' still gets every good entry, bad ones alone."""
    stored: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        entries = json.loads(request.content)["entries"]
        if any(entry["invoice_id"].endswith("bad") for entry in entries):
            return httpx.Response(400, json={"message": "invalid entry"})
        stored.extend(entry["invoice_id"] for entry in entries)
        return httpx.Response(200, json={"data": {"modified_count": len(entries)}})

    entries = [{"invoice_id": f"I{i}" + ("bad" if i in (5, 6, 40) else "")} for i in range(50)]

    async def scenario():
        transport = httpx.MockTransport(handler)
        async with ChaserClient("http://chaser.test", "k", "s", transport=transport) as client:
            return await client.invoices.bulk_upsert(entries)

    outcome = run(scenario())
    assert [f.index for f in outcome.failed] == [5, 6, 40]
    assert {f.message for f in outcome.failed} == {"invalid entry"}
    assert sorted(stored) == sorted(
        e["invoice_id"] for e in entries if "bad" not in e["invoice_id"]
    )
    assert [s.index for s in outcome.succeeded] == [i for i in range(50) if i not in (5, 6, 40)]


def test_pre_encoded_entries_go_as_one_body_and_bad_ones_are_still_isolated_by_key():
    """The sync engine hands over entries DuckDB encoded and joined: the first request sends that
    array as is (the very bytes the entry-by-entry path writes), and when Chaser refuses some,
    the client still tells them apart by index and key."""
    rows = [{"invoice_id": f"I{i}", "total": Decimal("1.50")} for i in range(10)]
    texts = [dumps(encode_payload(row)).decode() for row in rows]
    made: list[int] = []

    def entry(index: int) -> RawJSON:
        made.append(index)
        return RawJSON(texts[index], rows[index]["invoice_id"])

    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        entries = json.loads(request.content)["entries"]
        errors = [
            {"index": i, "message": "customer unknown"}
            for i, e in enumerate(entries)
            if e["invoice_id"] == "I3"
        ]
        if errors:
            return httpx.Response(400, json={"message": "invalid entries", "errors": errors})
        inserted = [{"index": i, "id": f"c-{e['invoice_id']}"} for i, e in enumerate(entries)]
        return httpx.Response(200, json={"data": {"inserted_ids": inserted}})

    async def scenario(entries):
        transport = httpx.MockTransport(handler)
        async with ChaserClient("http://chaser.test", "k", "s", transport=transport) as client:
            return await client.invoices.bulk_upsert(entries)

    outcome = run(scenario(EncodedEntries("[" + ",".join(texts) + "]", len(texts), entry)))
    assert bodies[0] == dumps({"entries": [encode_payload(row) for row in rows]})
    assert [(f.index, f.key, f.status) for f in outcome.failed] == [(3, "I3", 400)]
    assert outcome.accepted == [i for i in range(10) if i != 3]
    assert outcome.chaser_ids == {i: f"c-I{i}" for i in outcome.accepted}
    assert [(s.key, s.chaser_id) for s in outcome.succeeded][:2] == [("I0", "c-I0"), ("I1", "c-I1")]
    assert outcome.requests == 2  # the refused batch, then the other nine in one request

    bodies.clear()
    made.clear()
    ok = [dict(row, invoice_id=f"J{i}") for i, row in enumerate(rows)]
    ok_texts = [dumps(encode_payload(row)).decode() for row in ok]
    outcome = run(
        scenario(
            EncodedEntries(
                "[" + ",".join(ok_texts) + "]",
                len(ok_texts),
                lambda i: RawJSON(ok_texts[i], ok[i]["invoice_id"]),
            )
        )
    )
    assert outcome.accepted == list(range(10)) and not outcome.failed
    assert outcome.chaser_ids[9] == "c-J9"
    assert made == []  # all accepted: no entry was ever turned into a Python object


def mocked_bulk(handler, count: int):
    """Bulk-upsert invoices I0..I<count-1> against a fake Chaser answering with `handler`;
    returns the outcome and the invoice ids of every request sent."""
    sent: list[list[str]] = []

    def recording(request: httpx.Request) -> httpx.Response:
        entries = json.loads(request.content)["entries"]
        sent.append([entry["invoice_id"] for entry in entries])
        return handler(entries)

    async def scenario():
        transport = httpx.MockTransport(recording)
        async with ChaserClient("http://chaser.test", "k", "s", transport=transport) as client:
            return await client.invoices.bulk_upsert(
                [{"invoice_id": f"I{i}", "total": 1} for i in range(count)]
            )

    return run(scenario()), sent


def test_bulk_2xx_answer_naming_bad_entries_records_them_failed():
    """A 200 that lists errors by index saved only the others: those are not confirmed."""

    def handler(entries):
        return httpx.Response(
            200,
            json={
                "data": {"inserted_count": 2, "inserted_ids": [{"index": 2, "id": "c2"}]},
                "errors": [{"index": 1, "message": "bad date"}, {"index": 3, "message": "bad"}],
            },
        )

    outcome, sent = mocked_bulk(handler, 4)
    assert [(s.key, s.chaser_id) for s in outcome.succeeded] == [("I0", None), ("I2", "c2")]
    assert [(f.key, f.status, f.message) for f in outcome.failed] == [
        ("I1", 200, "bad date"),
        ("I3", 200, "bad"),
    ]
    assert len(sent) == 1  # the others were saved: nothing is sent again


@pytest.mark.parametrize("status", [401, 409, 422])
def test_bulk_undocumented_status_is_raised_not_halved_into_row_failures(status):
    """Only 400 is a row rejection; an undocumented status stops the request (no entry is
    recorded failed, no halving), whatever a guess about it might say."""
    sent: list[int] = []

    def handler(entries):
        sent.append(len(entries))
        return httpx.Response(status, json={"message": "something undocumented"})

    with pytest.raises(UnexpectedStatusError) as failure:
        mocked_bulk(handler, 4)
    assert failure.value.status == status
    assert "does not document" in str(failure.value)
    assert sent == [4]


def test_bulk_404_naming_an_entry_isolates_it_and_resends_the_rest():
    """An unknown customer answered 404 with the entry's index is a row rejection."""

    def handler(entries):
        ids = [entry["invoice_id"] for entry in entries]
        if "I1" in ids:
            return httpx.Response(
                404,
                json={
                    "message": "customer not found",
                    "errors": [{"index": ids.index("I1"), "message": "customer not found"}],
                },
            )
        return httpx.Response(200, json={"data": {"modified_count": len(entries)}})

    outcome, sent = mocked_bulk(handler, 4)
    assert [s.key for s in outcome.succeeded] == ["I0", "I2", "I3"]
    assert [(f.key, f.status, f.message) for f in outcome.failed] == [
        ("I1", 404, "customer not found")
    ]
    assert sent == [["I0", "I1", "I2", "I3"], ["I0", "I2", "I3"]]


def test_bulk_404_naming_no_entry_still_raises():
    sent: list[int] = []

    def handler(entries):
        sent.append(len(entries))
        return httpx.Response(404, json={"message": "no such endpoint"})

    with pytest.raises(NotFoundError):
        mocked_bulk(handler, 4)
    assert sent == [4]


def test_bulk_upsert_refuses_more_than_100_entries():
    async def scenario():
        async with ChaserClient("http://chaser.test", "k", "s") as client:
            await client.invoices.bulk_upsert([invoice(i) for i in range(101)])

    with pytest.raises(ValueError, match="at most 100"):
        run(scenario())


def test_validation_error_is_not_retried(tmp_path):
    with running_emulator(tmp_path) as emulator:

        async def scenario():
            async with client_for(emulator) as client:
                await client.customers.create(customer(1))
                with pytest.raises(ValidationError) as caught:
                    await client.invoices.create(invoice(1, currency_code="EURO"))
                return caught.value, client.stats

        error, stats = run(scenario())
    assert (error.status, error.error_type) == (400, "validation_error")
    assert "currency_code" in error.chaser_message
    assert "POST /v1/invoices" in str(error)
    assert (stats.requests, stats.retries) == (2, 0)


def test_network_failure_becomes_transport_error_after_retries():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def scenario():
        client = ChaserClient(
            f"http://127.0.0.1:{port}",
            "k",
            "s",
            max_retries=2,
            backoff_base=0.01,
            connect_timeout=1,
        )
        async with client:
            with pytest.raises(TransportError) as caught:
                await client.organisation.get()
            return caught.value, client.stats

    error, stats = run(scenario())
    assert "GET /v1/organisation" in str(error)
    assert f"Cannot reach Chaser at http://127.0.0.1:{port} (CHASER_API_URL)" in str(error)
    assert (stats.requests, stats.transport_errors) == (3, 3)


def test_secret_never_appears_in_logs_errors_or_repr(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    faults = FaultConfig(rate_5xx=1.0, rate_429=0.0, first_attempt_only=True)
    texts: list[str] = []
    with running_emulator(tmp_path, faults) as emulator:

        async def scenario():
            async with client_for(emulator) as client:
                texts.extend([repr(client), str(client)])
                await client.customers.bulk_upsert([customer(1)])
                with pytest.raises(ValidationError) as invalid:
                    await client.invoices.create(invoice(1, date="2024-03-01"))
                texts.extend([str(invalid.value), repr(invalid.value)])
            async with ChaserClient(emulator.url, API_KEY, API_SECRET + "x") as wrong:
                with pytest.raises(ForbiddenError) as denied:
                    await wrong.organisation.get()
                texts.extend([str(denied.value), repr(denied.value), repr(wrong)])

        run(scenario())
    texts.append(caplog.text)
    header = base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()
    assert "retry" in caplog.text  # the 5xx retry was logged, so logs were captured
    for text in texts:
        assert API_SECRET not in text
        assert header not in text
