"""One small section per Chaser API object: the organisation, customers, invoices, credit notes,
overpayments and each customer's contact persons.

Each object endpoint lists (paged, with `total_count`), gets, creates, updates and bulk-upserts
through the client it belongs to; the client owns transport, retries, the budget and the
deadline, so every request here, reads included, is paced like any other.

A create whose answer was lost is never sent blindly again: before a retry the endpoint looks its
key up, and a record found is the one the lost attempt made (a create of a known key is an error
in Chaser, and would be a duplicate if it were not).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chaser_pipeline.chaser.bulk import BULK_LIMIT, BulkOutcome, BulkUpsert, refused_outcome
from chaser_pipeline.chaser.encoding import EncodedEntries, RawJSON, encode_payload
from chaser_pipeline.chaser.errors import NotFoundError

if TYPE_CHECKING:
    from chaser_pipeline.chaser.client import ChaserClient

log = logging.getLogger(__name__)

PAGE_LIMIT = 100
FILTER_OPS = frozenset({"eq", "ne", "gt", "lt", "gte", "lte", "in", "nin"})
EXTERNAL_ID_PREFIX = "ext_"


def filter_params(filters: Mapping[str, Any]) -> dict[str, str]:
    """`status="PAID"` -> filter[status][eq]=PAID; `status__in=["A","B"]` -> filter[status][in]=A,B."""
    params: dict[str, str] = {}
    for name, value in filters.items():
        field_name, _, op = name.partition("__")
        op = op or "eq"
        if op not in FILTER_OPS:
            raise ValueError(
                f"unknown filter operator {op!r} in {name!r}; use one of {sorted(FILTER_OPS)}"
            )
        if isinstance(value, list | tuple | set | frozenset):
            value = ",".join(str(v) for v in value)
        params[f"filter[{field_name}][{op}]"] = str(value)
    return params


def _quote(value: str) -> str:
    return quote(str(value), safe="")


def external_path_id(external_id: str) -> str:
    """A customer's path id from its external id: `ext_` + the id, escaped for a URL."""
    return EXTERNAL_ID_PREFIX + _quote(external_id)


def _encode_entries(entries: Sequence[Any]) -> Sequence[Any]:
    if len(entries) > BULK_LIMIT:
        raise ValueError(f"bulk_upsert takes at most {BULK_LIMIT} entries, got {len(entries)}")
    if isinstance(entries, EncodedEntries):
        return entries
    return [e if isinstance(e, RawJSON) else encode_payload(e) for e in entries]


@dataclass(frozen=True)
class Page:
    """One page of a list: its records and how many records match in all (`total_count`)."""

    records: list[dict[str, Any]]
    page_number: int
    page_size: int
    total_count: int | None


class Organisation:
    """The organisation the API key belongs to; `get()` is the cheapest credential check."""

    def __init__(self, client: ChaserClient) -> None:
        self._client = client

    async def get(self) -> dict[str, Any]:
        body = await self._client.request("GET", "/v1/organisation")
        return body["data"]

    async def sync(self, tasks: Sequence[str] = ()) -> bool:
        """Ask Chaser to run its organisation sync (what it triggers is not documented)."""
        payload = {"tasks": [{"task": task} for task in tasks]} if tasks else None
        body = await self._client.request("POST", "/v1/organisation/sync", json=payload)
        return bool(((body or {}).get("data") or {}).get("result"))


class ObjectEndpoint:
    """List, get, create, update and bulk upsert for one Chaser object at `path`."""

    path: str = ""
    key_field: str = ""

    def __init__(self, client: ChaserClient, path: str | None = None) -> None:
        self._client = client
        if path is not None:
            self.path = path

    @property
    def bulk_path(self) -> str:
        return f"/v1/bulk{self.path.removeprefix('/v1')}"

    async def page(self, page: int = 0, limit: int = PAGE_LIMIT, **filters: Any) -> Page:
        """One page of the records matching the filters (`field=v`, `field__op=v`)."""
        if not 1 <= limit <= PAGE_LIMIT:
            raise ValueError(f"limit must be between 1 and {PAGE_LIMIT}")
        params = {**filter_params(filters), "page": page, "limit": limit}
        body = await self._client.request("GET", self.path, params=params)
        total = body.get("total_count")
        return Page(
            list(body.get("data") or []),
            page,
            limit,
            total if isinstance(total, int) and not isinstance(total, bool) else None,
        )

    async def list(self, limit: int = PAGE_LIMIT, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every record matching the filters, page by page."""
        number, seen = 0, 0
        while True:
            page = await self.page(number, limit, **filters)
            for record in page.records:
                yield record
            seen += len(page.records)
            if len(page.records) < limit or (
                page.total_count is not None and seen >= page.total_count
            ):
                return
            number += 1

    async def count(self, **filters: Any) -> int | None:
        """How many records match (Chaser's `total_count`), in one request."""
        return (await self.page(0, 1, **filters)).total_count

    async def get(self, chaser_id: str) -> dict[str, Any]:
        body = await self._client.request("GET", f"{self.path}/{_quote(chaser_id)}")
        return body["data"]

    async def find_by_key(self, key: str) -> dict[str, Any] | None:
        """The record with this key (`key_field`), or None."""
        async for record in self.list(limit=1, **{self.key_field: key}):
            return record
        return None

    async def create(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Create one record. If an attempt may have landed before its answer was lost, the key
        is looked up before sending again, and a record found is returned instead."""
        encoded = encode_payload(payload)
        key = encoded.get(self.key_field)

        async def recover() -> dict[str, Any] | None:
            found = await self.find_by_key(str(key))
            return {"data": found} if found is not None else None

        body, _ = await self._client.send(
            "POST", self.path, json=encoded, recover=recover if key else None
        )
        return body["data"]

    async def update(self, chaser_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        body = await self._client.request(
            "PUT", f"{self.path}/{_quote(chaser_id)}", json=encode_payload(payload)
        )
        return body["data"]

    async def bulk_upsert(self, entries: Sequence[Mapping[str, Any]]) -> BulkOutcome:
        """Upsert up to 100 entries by key; bad entries are isolated so the good ones still land."""
        encoded = _encode_entries(entries)
        path = self.bulk_path

        async def send(entries_json: Any) -> tuple[Any, int]:
            return await self._client.send("PUT", path, json={"entries": entries_json})

        return await BulkUpsert(send, encoded, self.key_field).run()


class Customers(ObjectEndpoint):
    """Chaser customers, matched on external_id."""

    path = "/v1/customers"
    key_field = "external_id"

    async def get_by_external_id(self, external_id: str) -> dict[str, Any]:
        body = await self._client.request("GET", f"{self.path}/{external_path_id(external_id)}")
        return body["data"]

    async def find_by_key(self, key: str) -> dict[str, Any] | None:
        try:
            return await self.get_by_external_id(key)
        except NotFoundError:
            return None


class Invoices(ObjectEndpoint):
    """Chaser invoices, matched on invoice_id."""

    path = "/v1/invoices"
    key_field = "invoice_id"


class CreditNotes(ObjectEndpoint):
    """Chaser credit notes, matched on credit_note_id."""

    path = "/v1/credit_notes"
    key_field = "credit_note_id"


class Overpayments(ObjectEndpoint):
    """Chaser overpayments, matched on overpayment_id (fields modelled on credit notes)."""

    path = "/v1/overpayments"
    key_field = "overpayment_id"


class CustomerContactPersons(ObjectEndpoint):
    """The contact persons of one customer, matched on external_id within the customer."""

    key_field = "external_id"

    def __init__(self, client: ChaserClient, customer_external_id: str) -> None:
        super().__init__(
            client, f"/v1/customers/{external_path_id(customer_external_id)}/contact_persons"
        )
        self.customer_external_id = customer_external_id

    async def delete(self, chaser_id: str) -> None:
        """Delete one contact person; if an attempt may have landed before its answer was
        lost, a record already gone counts as deleted."""
        path = f"{self.path}/{_quote(chaser_id)}"

        async def recover() -> dict[str, Any] | None:
            try:
                await self.get(chaser_id)
            except NotFoundError:
                return {"data": None}
            return None

        await self._client.send("DELETE", path, recover=recover)


class ContactPersons:
    """Contact persons (a customer's extra recipients), always addressed through their customer:
    `/v1/customers/ext_{customer_external_id}/contact_persons`."""

    key_field = "external_id"

    def __init__(self, client: ChaserClient) -> None:
        self._client = client

    def of(self, customer_external_id: str) -> CustomerContactPersons:
        """The endpoint of one customer's contact persons."""
        return CustomerContactPersons(self._client, customer_external_id)

    def list(
        self, customer_external_id: str, limit: int = PAGE_LIMIT, **filters: Any
    ) -> AsyncIterator[dict[str, Any]]:
        return self.of(customer_external_id).list(limit, **filters)

    async def page(
        self, customer_external_id: str, page: int = 0, limit: int = PAGE_LIMIT, **filters: Any
    ) -> Page:
        return await self.of(customer_external_id).page(page, limit, **filters)

    async def get(self, customer_external_id: str, chaser_id: str) -> dict[str, Any]:
        return await self.of(customer_external_id).get(chaser_id)

    async def create(self, customer_external_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        return await self.of(customer_external_id).create(payload)

    async def update(
        self, customer_external_id: str, chaser_id: str, payload: Mapping[str, Any]
    ) -> dict[str, Any]:
        return await self.of(customer_external_id).update(chaser_id, payload)

    async def delete(self, customer_external_id: str, chaser_id: str) -> None:
        await self.of(customer_external_id).delete(chaser_id)

    async def bulk_upsert(
        self, customer_external_id: str, entries: Sequence[Mapping[str, Any]]
    ) -> BulkOutcome:
        """Upsert up to 100 contact persons of one customer by external_id.

        A 404 that names no entry means the customer or the endpoint is missing; one lookup of
        the customer tells which. A missing customer refuses every entry (a row rejection
        carrying Chaser's message), a missing endpoint raises."""
        endpoint = self.of(customer_external_id)
        try:
            return await endpoint.bulk_upsert(entries)
        except NotFoundError as exc:
            if exc.settled is not None and (exc.settled.accepted or exc.settled.failed):
                raise
            if await self._client.customers.find_by_key(customer_external_id) is not None:
                raise
            message = f"customer {customer_external_id!r} is not in Chaser: {exc.chaser_message}"
            return refused_outcome(_encode_entries(entries), self.key_field, 404, message)
