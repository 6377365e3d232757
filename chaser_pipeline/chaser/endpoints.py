"""One small section per Chaser API object: the organisation, customers, invoices, credit notes.

Each object endpoint lists (paged, filtered), gets, creates, updates and bulk-upserts through the
client it belongs to; the client owns transport, retries and the request budget.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chaser_pipeline.chaser.bulk import BULK_LIMIT, BulkOutcome, BulkUpsert
from chaser_pipeline.chaser.encoding import EncodedEntries, RawJSON, encode_payload
from chaser_pipeline.chaser.errors import ConflictError, NotFoundError

if TYPE_CHECKING:
    from chaser_pipeline.chaser.client import ChaserClient

log = logging.getLogger(__name__)

PAGE_LIMIT = 100
FILTER_OPS = frozenset({"eq", "ne", "gt", "lt", "gte", "lte", "in", "nin"})


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


class Organisation:
    """The organisation the API key belongs to; `get()` is the cheapest credential check."""

    def __init__(self, client: ChaserClient) -> None:
        self._client = client

    async def get(self) -> dict[str, Any]:
        body = await self._client.request("GET", "/v1/organisation")
        return body["data"]


class ObjectEndpoint:
    """List, get, create, update and bulk upsert for one Chaser object."""

    path: str = ""
    key_field: str = ""

    def __init__(self, client: ChaserClient) -> None:
        self._client = client

    async def list(self, limit: int = PAGE_LIMIT, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every record matching the filters, page by page (`field=v`, `field__op=v`)."""
        if not 1 <= limit <= PAGE_LIMIT:
            raise ValueError(f"limit must be between 1 and {PAGE_LIMIT}")
        params: dict[str, Any] = filter_params(filters)
        page = 0
        seen = 0
        while True:
            body = await self._client.request(
                "GET", self.path, params={**params, "page": page, "limit": limit}
            )
            data = body.get("data") or []
            for record in data:
                yield record
            seen += len(data)
            total = body.get("total_count")
            if len(data) < limit or (isinstance(total, int) and seen >= total):
                return
            page += 1

    async def get(self, chaser_id: str) -> dict[str, Any]:
        body = await self._client.request("GET", f"{self.path}/{_quote(chaser_id)}")
        return body["data"]

    async def _get_by_key(self, key: str) -> dict[str, Any]:
        async for record in self.list(limit=1, **{self.key_field: key}):
            return record
        raise NotFoundError(
            f"GET {self.path}: no record with {self.key_field} {key!r}",
            method="GET",
            path=self.path,
        )

    async def create(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Create one record; if a retry after a lost answer finds it exists, return that record."""
        encoded = encode_payload(payload)
        try:
            body, _, _ = await self._client.send("POST", self.path, json=encoded)
        except ConflictError as exc:
            # The first attempt landed but its answer was lost: the record is ours, not a duplicate.
            if exc.after_transport_error and encoded.get(self.key_field):
                log.info(
                    "POST %s: %s already exists after a lost answer; fetching it",
                    self.path,
                    encoded[self.key_field],
                )
                return await self._get_by_key(encoded[self.key_field])
            raise
        return body["data"]

    async def update(self, chaser_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        body = await self._client.request(
            "PUT", f"{self.path}/{_quote(chaser_id)}", json=encode_payload(payload)
        )
        return body["data"]

    async def bulk_upsert(self, entries: Sequence[Mapping[str, Any]]) -> BulkOutcome:
        """Upsert up to 100 entries by key; bad entries are isolated so the good ones still land."""
        if len(entries) > BULK_LIMIT:
            raise ValueError(f"bulk_upsert takes at most {BULK_LIMIT} entries, got {len(entries)}")
        if isinstance(entries, EncodedEntries):
            encoded: Sequence[Any] = entries
        else:
            encoded = [e if isinstance(e, RawJSON) else encode_payload(e) for e in entries]
        path = f"/v1/bulk{self.path.removeprefix('/v1')}"

        async def send(entries_json: Any) -> tuple[Any, int]:
            body, _, status = await self._client.send("PUT", path, json={"entries": entries_json})
            return body, status

        return await BulkUpsert(send, encoded, self.key_field).run()


class Customers(ObjectEndpoint):
    """Chaser customers, matched on external_id."""

    path = "/v1/customers"
    key_field = "external_id"

    async def get_by_external_id(self, external_id: str) -> dict[str, Any]:
        return await self.get(f"ext_{external_id}")

    async def _get_by_key(self, key: str) -> dict[str, Any]:
        return await self.get_by_external_id(key)


class Invoices(ObjectEndpoint):
    """Chaser invoices, matched on invoice_id."""

    path = "/v1/invoices"
    key_field = "invoice_id"


class CreditNotes(ObjectEndpoint):
    """Chaser credit notes, matched on credit_note_id."""

    path = "/v1/credit_notes"
    key_field = "credit_note_id"
