"""Helpers shared by the client and emulator tests: a running emulator and valid payloads."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from chaser_pipeline.chaser import ChaserClient
from chaser_pipeline.emulator import (
    EmulatorHandle,
    FaultConfig,
    RateLimitConfig,
    run_emulator_in_thread,
)

API_KEY = "test-key"
API_SECRET = "s3cr3t-never-logged"

T = TypeVar("T")


@contextmanager
def running_emulator(
    folder: Path,
    faults: FaultConfig | None = None,
    rate_limit: RateLimitConfig | None = None,
    **options: Any,
) -> Iterator[EmulatorHandle]:
    """An emulator on a free loopback port, its state in folder; Chaser's documented request
    limit unless `rate_limit` says otherwise."""
    with run_emulator_in_thread(
        folder / "chaser.sqlite3",
        api_key=API_KEY,
        api_secret=API_SECRET,
        faults=faults,
        rate_limit=rate_limit,
        **options,
    ) as handle:
        yield handle


def client_for(handle: EmulatorHandle, **options: Any) -> ChaserClient:
    """A client with fast backoff (its own budget of 200 a minute unless one is passed)."""
    options = {"backoff_base": 0.01, "backoff_max": 0.05} | options
    return ChaserClient(handle.url, API_KEY, API_SECRET, **options)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def customer(i: int, **changes: Any) -> dict[str, Any]:
    return {
        "external_id": f"C-{i:05d}",
        "company_name": f"Customer {i} Ltd",
        "contact_email_address": f"ap{i}@example.com",
        "mobile_number": "+447700900123",
        "status": "ACTIVE",
        "addresses": [
            {
                "address_line1": f"{i} High Street",
                "city": "Leeds",
                "postal_code": "LS1 1AA",
                "country": "GB",
                "address_type": "Billing",
            }
        ],
    } | changes


def invoice(i: int, customer_index: int = 1, **changes: Any) -> dict[str, Any]:
    return {
        "invoice_id": f"INV-{i:06d}",
        "invoice_number": f"{1000 + i}",
        "customer_external_id": f"C-{customer_index:05d}",
        "status": "AUTHORISED",
        "currency_code": "GBP",
        "sub_total": Decimal("100.00"),
        "total": Decimal("120.00"),
        "amount_paid": Decimal("20.00"),
        "amount_due": Decimal("100.00"),
        "date": "2024-03-01T00:00:00.000Z",
        "due_date": "2024-03-31T00:00:00.000Z",
        "fully_paid_date": None,
    } | changes


def credit_note(i: int, customer_index: int = 1, **changes: Any) -> dict[str, Any]:
    return {
        "credit_note_id": f"CN-{i:06d}",
        "credit_note_number": f"CN{i}",
        "customer_external_id": f"C-{customer_index:05d}",
        "currency_code": "GBP",
        "date": "2024-03-05T00:00:00.000Z",
        "total": Decimal("50.00"),
        "remaining_credit": Decimal("50.00"),
        "status": "ACTIVE",
    } | changes


def overpayment(i: int, customer_index: int = 1, **changes: Any) -> dict[str, Any]:
    return {
        "overpayment_id": f"OP-{i:06d}",
        "customer_external_id": f"C-{customer_index:05d}",
        "currency_code": "GBP",
        "date": "2024-03-07T00:00:00.000Z",
        "total": Decimal("25.00"),
        "remaining_credit": Decimal("25.00"),
        "status": "ACTIVE",
    } | changes


def contact_person(i: int, **changes: Any) -> dict[str, Any]:
    return {
        "external_id": f"P-{i:04d}",
        "contact_first_name": "Ada",
        "contact_last_name": f"Payer {i}",
        "contact_email_address": f"payer{i}@example.com",
        "mobile_number": "+447700900456",
        "status": "ACTIVE",
    } | changes
