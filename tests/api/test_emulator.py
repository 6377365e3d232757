"""The emulator follows Chaser's document and is as strict as Chaser: the error contract (403, 400,
404, 429 with {message, type, url}), the request limit and waiver, payload rules, references,
all-or-nothing bulk, contact persons, overpayments, organisation sync, faults and shared state."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import pytest

from chaser_pipeline.chaser.encoding import dumps
from chaser_pipeline.emulator import EmulatorStore, FaultConfig, RateLimitConfig
from chaser_pipeline.emulator.app import object_of
from chaser_pipeline.emulator.server import (
    build_parser,
    credentials_from,
    faults_from_args,
    rate_limit_from_args,
)
from tests.support.emulator import (
    API_KEY,
    API_SECRET,
    contact_person,
    credit_note,
    customer,
    invoice,
    overpayment,
    running_emulator,
)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """One emulator for the module's payload tests; the request limit has tests of its own."""
    unlimited = RateLimitConfig(requests_per_minute=None)
    with running_emulator(tmp_path_factory.mktemp("emulator"), rate_limit=unlimited) as handle:
        yield handle


@pytest.fixture(scope="module")
def http(emulator):
    """A raw HTTP client: the emulator is tested on its own, without the Chaser client."""
    with httpx.Client(base_url=emulator.url, auth=(API_KEY, API_SECRET), timeout=10) as client:
        client.put("/v1/bulk/customers", content=dumps({"entries": [customer(1), customer(2)]}))
        yield client


def send(http: httpx.Client, method: str, path: str, body=None, **kwargs) -> httpx.Response:
    content = dumps(body) if body is not None else None
    return http.request(method, path, content=content, **kwargs)


def assert_error(response: httpx.Response, status: int, error_type: str) -> dict:
    """Chaser's documented error body: {message, type, url}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == error_type
    assert body["url"] == f"https://openapi.chaserhq.com/docs/#errors/{error_type}"
    assert body["message"]
    return body


def test_requests_without_valid_credentials_get_403(emulator):
    for auth in (None, (API_KEY, "wrong"), ("wrong", API_SECRET)):
        response = httpx.get(f"{emulator.url}/v1/organisation", auth=auth)
        body = assert_error(response, 403, "forbidden_error")
        assert body["message"] == "requested resource is forbidden"


def test_organisation(http):
    assert send(http, "GET", "/v1/organisation").json()["data"]["base_currency"] == "GBP"
    listed = send(http, "GET", "/v1/organisations").json()
    assert listed["object"] == "list" and len(listed["data"]) == 1


@pytest.mark.parametrize(
    ("path", "payload", "status", "fragment"),
    [
        pytest.param(
            "/v1/invoices", invoice(10, customer_index=404), 400, "C-00404", id="unknown customer"
        ),
        pytest.param(
            "/v1/credit_notes",
            credit_note(10, customer_index=404),
            400,
            "C-00404",
            id="credit note unknown customer",
        ),
        pytest.param(
            "/v1/invoices",
            invoice(11, currency_code="GB"),
            400,
            "currency_code",
            id="currency too short",
        ),
        pytest.param(
            "/v1/invoices",
            invoice(12, currency_code="gbp"),
            400,
            "currency_code",
            id="currency lowercase",
        ),
        pytest.param(
            "/v1/invoices", invoice(13, date="2024-03-01"), 400, "date", id="date without time"
        ),
        pytest.param(
            "/v1/invoices",
            invoice(14, due_date="2024-03-01T00:00:00Z"),
            400,
            "due_date",
            id="date without ms",
        ),
        pytest.param(
            "/v1/invoices", invoice(15, status="OPEN"), 400, "status", id="unknown status"
        ),
        pytest.param(
            "/v1/invoices",
            invoice(16, total=Decimal("1.005")),
            400,
            "2 decimal",
            id="three decimals",
        ),
        pytest.param(
            "/v1/invoices",
            invoice(17, total="120.00"),
            400,
            "total must be a number",
            id="money as string",
        ),
        pytest.param(
            "/v1/invoices",
            invoice(18, amount_due=None),
            400,
            "amount_due is required",
            id="required missing",
        ),
        pytest.param(
            "/v1/invoices",
            invoice(19, invoiceId="x"),
            400,
            "unknown field invoiceId",
            id="camelCase key",
        ),
        pytest.param(
            "/v1/customers",
            customer(20, mobile_number="07700900123"),
            400,
            "mobile_number",
            id="mobile without +",
        ),
        pytest.param(
            "/v1/customers", customer(21, status="ACHIEVED"), 400, "status", id="help page typo"
        ),
        pytest.param(
            "/v1/customers",
            customer(22, addresses=[{"city": "Leeds", "address_type": "Home"}]),
            400,
            "address_type",
            id="bad address type",
        ),
        pytest.param("/v1/customers", customer(1), 400, "already exists", id="create existing key"),
    ],
)
def test_rejections(http, path, payload, status, fragment):
    response = send(http, "POST", path, payload)
    assert fragment in assert_error(response, status, "validation_error")["message"]


def test_body_that_is_not_json_is_400(http):
    response = http.post("/v1/customers", content=b"{not json")
    assert_error(response, 400, "validation_error")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/v1/nothing_here", id="unknown object"),
        pytest.param("GET", "/v2/customers", id="unknown version"),
        pytest.param("DELETE", "/v1/customers/ext_C-00001", id="method not served"),
        pytest.param("GET", "/v1/contact_persons", id="contact persons only under a customer"),
        pytest.param("GET", "/v1/invoices/inv_nope", id="unknown entity"),
    ],
)
def test_unknown_url_or_entity_is_404(http, method, path):
    assert_error(send(http, method, path), 404, "not_found_error")


def test_create_get_update(http):
    created = send(http, "POST", "/v1/invoices", invoice(100)).json()["data"]
    assert created["id"].startswith("inv_")
    assert send(http, "GET", f"/v1/invoices/{created['id']}").json()["data"]["total"] == 120
    updated = send(
        http,
        "PUT",
        f"/v1/invoices/{created['id']}",
        {"status": "PAID", "amount_due": Decimal("0.00"), "amount_paid": Decimal("120.00")},
    )
    assert updated.status_code == 200, updated.text
    fetched = send(http, "GET", f"/v1/invoices/{created['id']}")
    # Money comes back digit for digit, as sent.
    assert b'"amount_paid":120.00' in fetched.content
    assert fetched.json()["data"]["status"] == "PAID"
    assert send(http, "GET", "/v1/invoices/inv_nope").status_code == 404


def test_customer_by_external_id(http):
    found = send(http, "GET", "/v1/customers/ext_C-00002")
    assert found.status_code == 200
    assert found.json()["data"]["external_id"] == "C-00002"
    assert send(http, "GET", "/v1/customers/ext_C-99999").status_code == 404


@pytest.mark.parametrize("limit", [0, 101, "x"])
def test_list_limit_out_of_range_is_400(http, limit):
    assert send(http, "GET", "/v1/customers", params={"limit": limit}).status_code == 400


def test_list_envelope_and_filters(http):
    body = send(http, "GET", "/v1/customers", params={"page": 0, "limit": 1}).json()
    assert {k: body[k] for k in ("object", "url", "page_number", "page_size")} == {
        "object": "list",
        "url": "/v1/customers",
        "page_number": 0,
        "page_size": 1,
    }
    assert body["total_count"] >= 2 and len(body["data"]) == 1
    only = send(http, "GET", "/v1/customers", params={"filter[external_id][in]": "C-00001,C-00002"})
    assert [c["external_id"] for c in only.json()["data"]] == ["C-00001", "C-00002"]
    others = send(http, "GET", "/v1/customers", params={"filter[external_id][ne]": "C-00001"})
    assert "C-00001" not in {c["external_id"] for c in others.json()["data"]}
    assert send(http, "GET", "/v1/customers", params={"filter[nope][eq]": "1"}).status_code == 400
    assert (
        send(http, "GET", "/v1/customers", params={"filter[status][like]": "A"}).status_code == 400
    )


def test_bulk_over_100_entries_is_400(http):
    response = send(
        http, "PUT", "/v1/bulk/customers", {"entries": [customer(i) for i in range(101)]}
    )
    assert response.status_code == 400
    assert "100" in response.json()["message"]


def test_bulk_is_all_or_nothing_and_names_bad_entries(http, emulator):
    entries = [invoice(200 + i) for i in range(5)]
    entries[1] = invoice(201, currency_code="usd")
    entries[3] = invoice(203, customer_index=777)
    response = send(http, "PUT", "/v1/bulk/invoices", {"entries": entries})
    errors = assert_error(response, 400, "validation_error")["errors"]
    assert [e["index"] for e in errors] == [1, 3]
    assert "currency_code" in errors[0]["message"] and "C-00777" in errors[1]["message"]
    with EmulatorStore(emulator.state_path) as store:
        assert store.write_count("invoices", "INV-000200") == 0  # nothing of the request applied


def test_bulk_upsert_inserts_then_updates_by_key(http, emulator):
    first = send(
        http, "PUT", "/v1/bulk/credit_notes", {"entries": [credit_note(1), credit_note(2)]}
    )
    assert first.status_code == 200, first.text
    data = first.json()["data"]
    assert (data["inserted_count"], data["modified_count"]) == (2, 0)
    assert [item["index"] for item in data["inserted_ids"]] == [0, 1]
    again = send(
        http,
        "PUT",
        "/v1/bulk/credit_notes",
        {
            "entries": [
                credit_note(2, remaining_credit=Decimal("0.00"), status="PAID"),
                credit_note(3),
            ]
        },
    ).json()["data"]
    assert (again["inserted_count"], again["modified_count"]) == (1, 1)
    assert again["inserted_ids"][0]["index"] == 1
    with EmulatorStore(emulator.state_path) as store:
        by_key = {r["credit_note_id"]: r for r in store.records("credit_notes")}
        assert by_key["CN-000002"]["status"] == "PAID"
        assert by_key["CN-000002"]["id"] == data["inserted_ids"][1]["id"]
        assert store.write_count("credit_notes", "CN-000002") == 2
        log = store.request_log("credit_notes")
        assert [row.entries for row in log if row.method == "PUT"] == [2, 2]
        assert all(row.entries == 1 for row in log if row.method == "POST")


def test_state_survives_a_restart_and_is_shared(tmp_path):
    with running_emulator(tmp_path) as first, running_emulator(tmp_path) as second:
        auth = (API_KEY, API_SECRET)
        response = httpx.put(
            f"{first.url}/v1/bulk/customers", content=dumps({"entries": [customer(5)]}), auth=auth
        )
        assert response.status_code == 200
        # A second process (here: server) on the same file sees the same Chaser.
        seen = httpx.get(f"{second.url}/v1/customers/ext_C-00005", auth=auth)
        assert seen.status_code == 200
    with running_emulator(tmp_path) as again:
        seen = httpx.get(f"{again.url}/v1/customers/ext_C-00005", auth=(API_KEY, API_SECRET))
        assert seen.json()["data"]["company_name"] == "Customer 5 Ltd"


def test_dropped_write_is_committed_but_unanswered(tmp_path):
    faults = FaultConfig(rate_drop=1.0, first_attempt_only=True)
    with running_emulator(tmp_path, faults) as emulator:
        body = dumps({"entries": [customer(1)]})
        with httpx.Client(base_url=emulator.url, auth=(API_KEY, API_SECRET)) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                http.put("/v1/bulk/customers", content=body)
            assert http.put("/v1/bulk/customers", content=body).status_code == 200
        with EmulatorStore(emulator.state_path) as store:
            assert store.write_count("customers", "C-00001") == 2
            assert [row.fault for row in store.request_log()] == ["drop", None]


def test_cli_options_become_fault_and_limit_configs():
    args = build_parser().parse_args(
        [
            "--port",
            "0",
            "--rate-429",
            "0.1",
            "--retry-after",
            "0.05",
            "--rate-drop",
            "0.2",
            "--silent-after",
            "5",
            "--outage-after",
            "6",
            "--forbidden-after",
            "7",
            "--seed",
            "7",
            "--requests-per-minute",
            "30",
            "--rate-limit-retry-after",
            "--new-organisation",
            "--waiver-hours",
            "0.5",
        ]
    )
    assert faults_from_args(args) == FaultConfig(
        rate_429=0.1,
        retry_after=0.05,
        rate_drop=0.2,
        silent_after=5,
        outage_after=6,
        forbidden_after=7,
        seed=7,
    )
    assert rate_limit_from_args(args) == RateLimitConfig(
        requests_per_minute=30, retry_after=True, new_organisation=True, waiver_seconds=1800
    )
    assert args.port == 0


def test_cli_defaults_follow_the_document():
    args = build_parser().parse_args([])
    assert (
        rate_limit_from_args(args)
        == RateLimitConfig()
        == RateLimitConfig(
            requests_per_minute=200, window_seconds=60, retry_after=False, new_organisation=False
        )
    )
    assert faults_from_args(args) == FaultConfig()
    assert not FaultConfig().active
    assert rate_limit_from_args(build_parser().parse_args(["--requests-per-minute", "0"])) == (
        RateLimitConfig(requests_per_minute=None)
    )


def test_credentials_come_from_the_environment_unless_flags_say_otherwise():
    environment = {
        "CHASER_EMULATOR_API_KEY": "env-key",
        "CHASER_EMULATOR_API_SECRET": "env-secret",
    }
    assert credentials_from(build_parser().parse_args([]), environment) == ("env-key", "env-secret")
    flags = build_parser().parse_args(["--api-key", "k", "--api-secret=-s"])
    assert credentials_from(flags, environment) == ("k", "-s")
    assert credentials_from(build_parser().parse_args([]), {}) == ("emulator", "emulator-secret")


def test_money_is_stored_as_received(http, emulator):
    raw = dumps({"entries": [invoice(300, total=5)]})
    assert b'"total":5,' in raw
    assert http.put("/v1/bulk/invoices", content=raw).status_code == 200
    with EmulatorStore(emulator.state_path) as store:
        stored = {r["invoice_id"]: r for r in store.records("invoices")}["INV-000300"]
    assert stored["total"] == 5 and stored["amount_due"] == Decimal("100.00")


# ---- contact persons, overpayments, organisation sync -----------------------------------------


def test_contact_persons_live_under_their_customer(http, emulator):
    base = "/v1/customers/ext_C-00001/contact_persons"
    created = send(http, "POST", base, contact_person(1))
    assert created.status_code == 201, created.text
    person = created.json()["data"]
    assert person["id"].startswith("cp_") and person["external_id"] == "P-0001"
    # The same external id under another customer is another contact person.
    other = send(http, "POST", "/v1/customers/ext_C-00002/contact_persons", contact_person(1))
    assert other.status_code == 201, other.text
    # ...but not twice under one customer.
    again = send(http, "POST", base, contact_person(1))
    assert "already exists" in assert_error(again, 400, "validation_error")["message"]

    by_chaser_id = send(http, "GET", f"/v1/customers/ext_C-00001/contact_persons/{person['id']}")
    customer_id = by_chaser_id.json()["data"]["customer_id"]
    listed = send(http, "GET", f"/v1/customers/{customer_id}/contact_persons").json()
    assert listed["total_count"] == 1 and listed["data"][0]["id"] == person["id"]

    updated = send(http, "PUT", f"{base}/{person['id']}", {"status": "ARCHIVED"})
    assert updated.json()["data"]["status"] == "ARCHIVED"
    # A contact person is found only through its own customer.
    elsewhere = send(http, "GET", f"/v1/customers/ext_C-00002/contact_persons/{person['id']}")
    assert_error(elsewhere, 404, "not_found_error")
    deleted = send(http, "DELETE", f"{base}/{person['id']}")
    assert deleted.status_code == 200
    assert send(http, "GET", base).json()["total_count"] == 0


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        pytest.param(contact_person(5, external_id=None), "external_id is required", id="no key"),
        pytest.param(
            contact_person(5, mobile_number="07700900456"), "mobile_number", id="not E.164"
        ),
        pytest.param(contact_person(5, status="ACTIVE "), "status", id="bad status"),
        pytest.param(contact_person(5, company_name="X"), "unknown field company_name", id="field"),
    ],
)
def test_contact_person_rejections(http, payload, fragment):
    response = send(http, "POST", "/v1/customers/ext_C-00001/contact_persons", payload)
    assert fragment in assert_error(response, 400, "validation_error")["message"]


def test_contact_persons_of_an_unknown_customer_are_404(http):
    for method, path, body in [
        ("GET", "/v1/customers/ext_C-55555/contact_persons", None),
        ("POST", "/v1/customers/ext_C-55555/contact_persons", contact_person(1)),
        ("PUT", "/v1/bulk/customers/ext_C-55555/contact_persons", {"entries": [contact_person(1)]}),
    ]:
        assert_error(send(http, method, path, body), 404, "not_found_error")


def test_contact_persons_bulk_upsert_per_customer(http, emulator):
    path = "/v1/bulk/customers/ext_C-00002/contact_persons"
    first = send(http, "PUT", path, {"entries": [contact_person(7), contact_person(8)]})
    assert first.json()["data"]["inserted_count"] == 2, first.text
    again = send(http, "PUT", path, {"entries": [contact_person(8, status="ARCHIVED")]})
    assert (again.json()["data"]["modified_count"], again.json()["data"]["inserted_count"]) == (
        1,
        0,
    )
    bad = send(
        http, "PUT", path, {"entries": [contact_person(9), contact_person(10, mobile_number="1")]}
    )
    assert [e["index"] for e in assert_error(bad, 400, "validation_error")["errors"]] == [1]
    with EmulatorStore(emulator.state_path) as store:
        assert store.write_count("contact_persons", "P-0008") == 2
        assert store.write_count("contact_persons", "P-0009") == 0  # all or nothing
        owners = {
            r["customer_id"]
            for r in store.records("contact_persons")
            if r["external_id"] in ("P-0007", "P-0008")
        }
    assert owners == {send(http, "GET", "/v1/customers/ext_C-00002").json()["data"]["id"]}


def test_overpayments_follow_the_credit_note_rules(http, emulator):
    first = send(
        http, "PUT", "/v1/bulk/overpayments", {"entries": [overpayment(1), overpayment(2)]}
    )
    assert first.status_code == 200, first.text
    entries = [
        overpayment(3, customer_index=999),
        overpayment(4, status="REFUNDED"),
        overpayment(5, total=Decimal("1.001")),
        overpayment(6, date="2024-03-07"),
        overpayment(7, remaining_credit=Decimal("0.00"), status="PAID"),
    ]
    refused = send(http, "PUT", "/v1/bulk/overpayments", {"entries": entries})
    errors = assert_error(refused, 400, "validation_error")["errors"]
    assert [e["index"] for e in errors] == [0, 1, 2, 3]
    assert "C-00999" in errors[0]["message"] and "status" in errors[1]["message"]
    listed = send(http, "GET", "/v1/overpayments", params={"filter[status][eq]": "ACTIVE"}).json()
    assert listed["total_count"] == 2
    one = send(http, "GET", f"/v1/overpayments/{listed['data'][0]['id']}").json()["data"]
    assert one["overpayment_id"] == "OP-000001"
    known = send(http, "POST", "/v1/overpayments", overpayment(1))
    assert_error(known, 400, "validation_error")
    # a reversed or removed overpayment is withdrawn as a credit note is: VOIDED, DELETED
    withdrawn = [
        overpayment(1, remaining_credit=Decimal("0.00"), status="VOIDED"),
        overpayment(2, remaining_credit=Decimal("0.00"), status="DELETED"),
    ]
    assert send(http, "PUT", "/v1/bulk/overpayments", {"entries": withdrawn}).status_code == 200
    statuses = send(http, "GET", "/v1/overpayments").json()["data"]
    assert sorted(o["status"] for o in statuses) == ["DELETED", "VOIDED"]


def test_organisation_sync(http):
    assert send(http, "POST", "/v1/organisation/sync").json() == {"data": {"result": True}}
    tasks = {"tasks": [{"task": "invoices"}]}
    assert send(http, "POST", "/v1/organisation/sync", tasks).json() == {"data": {"result": True}}
    assert_error(
        send(http, "POST", "/v1/organisation/sync", {"tasks": "all"}), 400, "validation_error"
    )


@pytest.mark.parametrize(
    ("path", "object_name"),
    [
        ("/v1/customers", "customers"),
        ("/v1/customers/ext_C-1", "customers"),
        ("/v1/bulk/invoices", "invoices"),
        ("/v1/credit_notes/crn_1", "credit_notes"),
        ("/v1/overpayments", "overpayments"),
        ("/v1/bulk/overpayments", "overpayments"),
        ("/v1/customers/ext_C-1/contact_persons", "contact_persons"),
        ("/v1/customers/cus_1/contact_persons/cp_1", "contact_persons"),
        ("/v1/bulk/customers/ext_C-1/contact_persons", "contact_persons"),
        ("/v1/organisation", "organisation"),
        ("/v1/organisation/sync", "organisation"),
        ("/v1/nothing", None),
        ("/health", None),
    ],
)
def test_request_log_names_the_object_each_request_addressed(path, object_name):
    assert object_of(path) == object_name


def test_an_external_id_with_a_slash_stays_one_path_segment(http):
    assert (
        send(
            http, "PUT", "/v1/bulk/customers", {"entries": [customer(1, external_id="A/1")]}
        ).status_code
        == 200
    )
    found = send(http, "GET", "/v1/customers/ext_A%2F1")
    assert found.json()["data"]["external_id"] == "A/1"
    people = send(
        http,
        "PUT",
        "/v1/bulk/customers/ext_A%2F1/contact_persons",
        {"entries": [contact_person(1)]},
    )
    assert people.status_code == 200, people.text


# ---- the request limit -----------------------------------------------------------------------


def test_by_default_200_requests_a_minute_then_429_without_retry_after(tmp_path):
    with (
        running_emulator(tmp_path) as emulator,
        httpx.Client(base_url=emulator.url, auth=(API_KEY, API_SECRET)) as http,
    ):
        statuses = [http.get("/v1/organisation").status_code for _ in range(200)]
        refused = http.get("/v1/organisation")
        wrong_key = httpx.get(f"{emulator.url}/v1/organisation", auth=("nope", "nope"))
    assert statuses == [200] * 200
    body = assert_error(refused, 429, "rate_limit_error")
    assert "200 requests in 60 s" in body["message"]
    assert "retry-after" not in refused.headers
    assert wrong_key.status_code == 403  # credentials are checked before the budget


def test_the_window_slides_and_a_retry_after_option_names_the_wait(tmp_path):
    limit = RateLimitConfig(requests_per_minute=3, window_seconds=1.0, retry_after=True)
    with (
        running_emulator(tmp_path, rate_limit=limit) as emulator,
        httpx.Client(base_url=emulator.url, auth=(API_KEY, API_SECRET)) as http,
    ):
        assert [http.get("/v1/organisation").status_code for _ in range(3)] == [200] * 3
        refused = http.get("/v1/organisation")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        deadline = time.monotonic() + 5
        while http.get("/v1/organisation").status_code == 429:  # refusals are not counted
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_a_new_organisation_has_no_limit_until_its_waiver_ends_even_across_restarts(tmp_path):
    new = RateLimitConfig(requests_per_minute=3, window_seconds=60, new_organisation=True)
    auth = (API_KEY, API_SECRET)
    with running_emulator(tmp_path, rate_limit=new) as emulator:
        assert emulator.app.rate_limit.in_waiver()
        assert {
            httpx.get(f"{emulator.url}/v1/organisation", auth=auth).status_code for _ in range(10)
        } == {200}
    # Restarted without the flag: the organisation is still the same new one.
    later = RateLimitConfig(requests_per_minute=3, window_seconds=60)
    with running_emulator(tmp_path, rate_limit=later) as emulator:
        assert {
            httpx.get(f"{emulator.url}/v1/organisation", auth=auth).status_code for _ in range(5)
        } == {200}
        emulator.end_waiver()
        statuses = [
            httpx.get(f"{emulator.url}/v1/organisation", auth=auth).status_code for _ in range(4)
        ]
    assert statuses == [200, 200, 200, 429]
    with running_emulator(tmp_path, rate_limit=later) as emulator:
        assert not emulator.app.rate_limit.in_waiver()
        # The restarted emulator remembers the last minute: the window is still full.
        assert httpx.get(f"{emulator.url}/v1/organisation", auth=auth).status_code == 429


def test_a_refused_bulk_request_may_name_no_entry(tmp_path):
    unlimited = RateLimitConfig(requests_per_minute=None)
    with (
        running_emulator(tmp_path, rate_limit=unlimited, name_bad_entries=False) as emulator,
        httpx.Client(base_url=emulator.url, auth=(API_KEY, API_SECRET)) as http,
    ):
        send(http, "PUT", "/v1/bulk/customers", {"entries": [customer(1)]})
        one_bad = send(
            http,
            "PUT",
            "/v1/bulk/invoices",
            {"entries": [invoice(1), invoice(2, currency_code="gbp")]},
        )
    body = assert_error(one_bad, 400, "validation_error")
    assert "errors" not in body and "currency_code" in body["message"]


def test_injected_server_errors_can_be_one_status(tmp_path):
    faults = FaultConfig(rate_5xx=1.0, server_error_status=503)
    with (
        running_emulator(tmp_path, faults) as emulator,
        httpx.Client(base_url=emulator.url, auth=(API_KEY, API_SECRET)) as http,
    ):
        statuses = {http.get("/v1/organisation").status_code for _ in range(8)}
    assert statuses == {503}
    with pytest.raises(ValueError, match="server_error_status"):
        FaultConfig(server_error_status=404)
    args = build_parser().parse_args(["--rate-5xx", "1", "--server-error-status", "500"])
    assert faults_from_args(args) == FaultConfig(rate_5xx=1.0, server_error_status=500)


# ---- mid-run faults --------------------------------------------------------------------------


def test_revoked_credentials_answer_403_after_n_requests(tmp_path):
    with (
        running_emulator(tmp_path, FaultConfig(forbidden_after=2)) as emulator,
        httpx.Client(base_url=emulator.url, auth=(API_KEY, API_SECRET)) as http,
    ):
        statuses = [http.get("/v1/organisation") for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    assert_error(statuses[2], 403, "forbidden_error")


def test_a_silent_emulator_accepts_and_never_answers(tmp_path):
    with (
        running_emulator(tmp_path, FaultConfig(silent_after=1)) as emulator,
        httpx.Client(base_url=emulator.url, auth=(API_KEY, API_SECRET), timeout=0.5) as http,
    ):
        assert http.get("/v1/organisation").status_code == 200
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            http.get("/v1/organisation")
        assert time.monotonic() - started >= 0.5
        with EmulatorStore(emulator.state_path) as store:
            assert [row.fault for row in store.request_log()] == [None, "silent"]


def test_an_outage_drops_the_request_then_refuses_connections(tmp_path):
    with running_emulator(tmp_path, FaultConfig(outage_after=1)) as emulator:
        with httpx.Client(base_url=emulator.url, auth=(API_KEY, API_SECRET)) as http:
            assert http.get("/v1/organisation").status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                http.get("/v1/organisation")
        deadline = time.monotonic() + 5
        while True:
            try:
                httpx.get(f"{emulator.url}/v1/organisation", timeout=1)
            except httpx.ConnectError:
                break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the emulator still accepts connections"
            time.sleep(0.05)
