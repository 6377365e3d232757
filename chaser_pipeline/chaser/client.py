"""Async client for the Chaser API: auth, timeouts, bounded concurrency, rate limit and retries.

One `ChaserClient` owns one `httpx.AsyncClient` (connections are reused) and one semaphore and
rate limiter shared by every request made through it. The nouns (`organisation`, `customers`,
`invoices`, `credit_notes`) are small objects on the client. Nothing here knows about Dagster.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from aiolimiter import AsyncLimiter

from chaser_pipeline.chaser.encoding import EncodedEntries, RawJSON, dumps, encode_payload, loads
from chaser_pipeline.chaser.errors import (
    AuthenticationError,
    ChaserError,
    ConflictError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    ValidationError,
    error_message,
)
from chaser_pipeline.config import Secret

log = logging.getLogger(__name__)

BULK_LIMIT = 100
PAGE_LIMIT = 100
FILTER_OPS = frozenset({"eq", "ne", "gt", "lt", "gte", "lte", "in", "nin"})
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_RETRYABLE_STATUS = frozenset({408}) | frozenset(range(500, 600))


def _reveal(value: Any) -> str:
    # Accepts a plain str or anything with .get() (chaser_pipeline.config.Secret).
    if isinstance(value, str):
        return value
    getter = getattr(value, "get", None)
    if callable(getter):
        return str(getter())
    raise TypeError("api_key and api_secret must be str or Secret")


@dataclass
class ClientStats:
    """What one client has done so far; shared by every noun of the client."""

    requests: int = 0
    write_requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    by_status: Counter[int] = field(default_factory=Counter)


@dataclass(frozen=True)
class EntrySuccess:
    """An entry of a bulk upsert that Chaser accepted; chaser_id is known for inserts only."""

    index: int
    key: str | None
    chaser_id: str | None


@dataclass(frozen=True)
class EntryFailure:
    """An entry of a bulk upsert that Chaser refused, with Chaser's reason."""

    index: int
    key: str | None
    status: int
    message: str


@dataclass
class BulkOutcome:
    """The result of one `bulk_upsert` call; indexes refer to the entries passed in.

    Every entry ends up accepted or failed. `accepted` holds the indexes and `chaser_ids` the id
    Chaser gave each inserted entry (by index), so a large sync reads plain ints;
    `succeeded` builds the same as EntrySuccess objects, with their keys, when asked."""

    failed: list[EntryFailure] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    chaser_ids: dict[int, str | None] = field(default_factory=dict)
    requests: int = 0
    key_of: Callable[[int], str | None] = field(
        default=lambda index: None, repr=False, compare=False
    )

    @property
    def succeeded(self) -> list[EntrySuccess]:
        return [EntrySuccess(i, self.key_of(i), self.chaser_ids.get(i)) for i in self.accepted]


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header: seconds (possibly fractional) or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds)


def _filter_params(filters: Mapping[str, Any]) -> dict[str, str]:
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


class ChaserClient:
    """Async Chaser API client; use as `async with ChaserClient(...) as client:`."""

    def __init__(
        self,
        base_url: str,
        api_key: Any,
        api_secret: Any,
        *,
        max_in_flight: int = 4,
        requests_per_second: float = 20.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_rate_limited_waits: int = 100,
        max_rate_limited_seconds: float = 900.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        self.base_url = base_url.rstrip("/")
        self._api_key = Secret(_reveal(api_key))
        self._api_secret = Secret(_reveal(api_secret))
        self.max_in_flight = max_in_flight
        self.requests_per_second = requests_per_second
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        # Waiting on 429 is Chaser asking us to slow down, not a failure: it has its own caps.
        self.max_rate_limited_waits = max_rate_limited_waits
        self.max_rate_limited_seconds = max_rate_limited_seconds
        self.stats = ClientStats()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=httpx.BasicAuth(self._api_key.get(), self._api_secret.get()),
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_in_flight, max_keepalive_connections=max_in_flight
            ),
            headers={"accept": "application/json"},
            transport=transport,
        )
        self._semaphore = asyncio.Semaphore(max_in_flight)
        # A one-second bucket of requests_per_second tokens: short bursts, steady average.
        if requests_per_second >= 1:
            self._limiter = AsyncLimiter(requests_per_second, 1.0)
        else:  # a bucket must hold at least one request
            self._limiter = AsyncLimiter(1, 1.0 / requests_per_second)
        # After a 429 with Retry-After, every request of this client holds back until then.
        self._paused_until = 0.0
        self._random = random.Random()

        self.organisation = Organisation(self)
        self.customers = Customers(self)
        self.invoices = Invoices(self)
        self.credit_notes = CreditNotes(self)

    def __repr__(self) -> str:
        return f"ChaserClient(base_url={self.base_url!r}, api_key='***', api_secret='***')"

    async def __aenter__(self) -> ChaserClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _backoff(self, failures: int) -> float:
        # Exponential backoff with full jitter: spreads retries of many workers apart.
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** max(0, failures - 1)))
        return self._random.uniform(0, ceiling)

    async def _send_once(
        self, method: str, path: str, params: Mapping[str, Any] | None, body: bytes | None
    ) -> httpx.Response:
        async with self._semaphore:
            pause = self._paused_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            await self._limiter.acquire()
            self.stats.requests += 1
            if method in _WRITE_METHODS:
                self.stats.write_requests += 1
            headers = {"content-type": "application/json"} if body is not None else None
            started = time.monotonic()
            response = await self._http.request(
                method, path, params=params, content=body, headers=headers
            )
            log.debug(
                "%s %s -> %s in %.0f ms",
                method,
                path,
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
            return response

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one request with retries; return the parsed JSON body of a 2xx answer."""
        response, _, _ = await self._request(method, path, params=params, json=json)
        return response

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> tuple[Any, bool, int]:
        """Like `request`; also says whether a transport error came before the answer, and
        the answer's status."""
        body = dumps(json) if json is not None else None
        failures = 0
        rate_limited_waits = 0
        rate_limited_seconds = 0.0
        after_transport_error = False
        where = f"{method} {path}"
        while True:
            try:
                response = await self._send_once(method, path, params, body)
            except httpx.TransportError as exc:
                self.stats.transport_errors += 1
                after_transport_error = True
                failures += 1
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if failures > self.max_retries:
                    raise TransportError(
                        f"{where} failed after {failures} attempts: {reason}",
                        method=method,
                        path=path,
                    ) from None
                delay = self._backoff(failures)
                log.warning("%s: %s; retry %d in %.2f s", where, reason, failures, delay)
                self.stats.retries += 1
                await asyncio.sleep(delay)
                continue

            status = response.status_code
            self.stats.by_status[status] += 1
            if status < 300:
                if not response.content:
                    return None, after_transport_error, status
                return loads(response.content), after_transport_error, status

            parsed = _parse_body(response)
            retry_after = _retry_after_seconds(response.headers.get("retry-after"))
            if status == 429:
                self.stats.rate_limited += 1
                rate_limited_waits += 1
                delay = (
                    retry_after if retry_after is not None else self._backoff(rate_limited_waits)
                )
                if (
                    rate_limited_waits > self.max_rate_limited_waits
                    or rate_limited_seconds + delay > self.max_rate_limited_seconds
                ):
                    raise RateLimitedError(
                        f"{where}: Chaser still answers 429 after {rate_limited_waits - 1} waits "
                        f"({rate_limited_seconds:.1f} s)",
                        method=method,
                        path=path,
                        status=status,
                        body=parsed,
                    )
                if retry_after is not None:
                    self._paused_until = max(self._paused_until, time.monotonic() + delay)
                rate_limited_seconds += delay
                log.info("%s: rate limited (429); waiting %.2f s", where, delay)
                self.stats.retries += 1
                await asyncio.sleep(delay)
                continue
            if status in _RETRYABLE_STATUS:
                self.stats.server_errors += 1
                failures += 1
                if failures > self.max_retries:
                    raise ServerError(
                        f"{where}: Chaser answered HTTP {status} on {failures} attempts: "
                        f"{error_message(parsed)}",
                        method=method,
                        path=path,
                        status=status,
                        body=parsed,
                    )
                delay = max(retry_after or 0.0, self._backoff(failures))
                log.warning("%s: HTTP %d; retry %d in %.2f s", where, status, failures, delay)
                self.stats.retries += 1
                await asyncio.sleep(delay)
                continue
            raise _client_error(method, path, status, parsed, after_transport_error)


def _parse_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return loads(response.content)
    except ValueError:
        return response.text[:500]


def _client_error(
    method: str, path: str, status: int, body: Any, after_transport_error: bool
) -> ChaserError:
    where = f"{method} {path}"
    if status in (401, 403):
        return AuthenticationError(
            f"Chaser rejected the API key/secret (HTTP {status}): "
            f"check CHASER_API_KEY and CHASER_API_SECRET ({where})",
            method=method,
            path=path,
            status=status,
            body=body,
        )
    if status == 404:
        return NotFoundError(
            f"{where}: not found (HTTP 404): {error_message(body)}",
            method=method,
            path=path,
            status=status,
            body=body,
        )
    message = f"{where}: Chaser refused the request (HTTP {status}): {error_message(body)}"
    if status == 409:
        conflict = ConflictError(message, method=method, path=path, status=status, body=body)
        conflict.after_transport_error = after_transport_error
        return conflict
    return ValidationError(message, method=method, path=path, status=status, body=body)


def _named_errors(body: Any, count: int) -> dict[int, str]:
    """The entries (positions in a bulk request of `count`) an answer's `errors` list names."""
    named: dict[int, str] = {}
    errors = body.get("errors") if isinstance(body, dict) else None
    for item in errors if isinstance(errors, list) else []:
        position = item.get("index") if isinstance(item, dict) else None
        if isinstance(position, int) and not isinstance(position, bool) and 0 <= position < count:
            named.setdefault(position, error_message(item))
    return named


def _quote(value: str) -> str:
    return quote(str(value), safe="")


class Organisation:
    """The organisation the API key belongs to; `get()` is the cheapest credential check."""

    def __init__(self, client: ChaserClient) -> None:
        self._client = client

    async def get(self) -> dict[str, Any]:
        body = await self._client.request("GET", "/v1/organisation")
        return body["data"]


class _Resource:
    """List, get, create, update and bulk upsert for one Chaser resource."""

    path: str = ""
    key_field: str = ""

    def __init__(self, client: ChaserClient) -> None:
        self._client = client

    async def list(self, limit: int = PAGE_LIMIT, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every record matching the filters, page by page (`field=v`, `field__op=v`)."""
        if not 1 <= limit <= PAGE_LIMIT:
            raise ValueError(f"limit must be between 1 and {PAGE_LIMIT}")
        params: dict[str, Any] = _filter_params(filters)
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
            body, _, _ = await self._client._request("POST", self.path, json=encoded)
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
        outcome = BulkOutcome(key_of=lambda index: self._key(encoded[index]))
        if not entries:
            return outcome
        await self._bulk(encoded, list(range(len(encoded))), outcome)
        outcome.accepted.sort()
        outcome.failed.sort(key=lambda f: f.index)
        return outcome

    def _key(self, entry: Any) -> str | None:
        return entry.key if isinstance(entry, RawJSON) else entry.get(self.key_field)

    async def _bulk(self, encoded: Sequence[Any], indexes: list[int], outcome: BulkOutcome) -> None:
        path = f"/v1/bulk{self.path.removeprefix('/v1')}"
        outcome.requests += 1
        if isinstance(encoded, EncodedEntries) and len(indexes) == len(encoded):
            entries: Any = encoded.array  # all of them, as DuckDB joined them
        else:
            entries = [encoded[i] for i in indexes]
        try:
            body, _, status = await self._client._request("PUT", path, json={"entries": entries})
        except ConflictError:
            # 409 is not a row rejection (a key clash or a concurrent write): halving would
            # record good rows as failed, so the caller decides.
            raise
        except NotFoundError as exc:
            # A 404 that names entries (e.g. an unknown customer) is a row rejection; one that
            # names none means the endpoint itself is missing.
            if not _named_errors(exc.body, len(indexes)):
                raise
            await self._isolate(encoded, indexes, outcome, 404, exc.body)
            return
        except ValidationError as exc:
            await self._isolate(encoded, indexes, outcome, exc.status or 400, exc.body)
            return
        errors = body.get("errors") if isinstance(body, dict) else None
        named = _named_errors(body, len(indexes))
        if isinstance(errors, list) and errors and not named:
            # A 2xx that reports errors without saying which entries: find them as for a 4xx
            # (upserts by key, so sending the saved entries again is harmless).
            await self._isolate(encoded, indexes, outcome, status, body)
            return
        for position, message in named.items():
            index = indexes[position]
            outcome.failed.append(EntryFailure(index, self._key(encoded[index]), status, message))
        inserted: dict[int, str] = {}
        data = (body or {}).get("data") or {}
        for item in data.get("inserted_ids") or []:
            if isinstance(item, dict) and isinstance(item.get("index"), int):
                inserted[item["index"]] = item.get("id")
        if named:
            outcome.accepted.extend(i for p, i in enumerate(indexes) if p not in named)
        else:
            outcome.accepted.extend(indexes)
        for position, chaser_id in inserted.items():
            if position not in named and 0 <= position < len(indexes):
                outcome.chaser_ids[indexes[position]] = chaser_id

    async def _isolate(
        self,
        encoded: Sequence[Any],
        indexes: list[int],
        outcome: BulkOutcome,
        status: int,
        body: Any,
    ) -> None:
        named = _named_errors(body, len(indexes))
        if named:
            # Chaser named the bad entries: record them, send the rest again in one request.
            for position, message in named.items():
                index = indexes[position]
                outcome.failed.append(
                    EntryFailure(index, self._key(encoded[index]), status, message)
                )
            rest = [index for position, index in enumerate(indexes) if position not in named]
            if rest:
                await self._bulk(encoded, rest, outcome)
            return
        if len(indexes) == 1:
            index = indexes[0]
            outcome.failed.append(
                EntryFailure(index, self._key(encoded[index]), status, error_message(body))
            )
            return
        # No entry named: halve until each bad entry stands alone.
        middle = len(indexes) // 2
        await self._bulk(encoded, indexes[:middle], outcome)
        await self._bulk(encoded, indexes[middle:], outcome)


class Customers(_Resource):
    """Chaser customers, matched on external_id."""

    path = "/v1/customers"
    key_field = "external_id"

    async def get_by_external_id(self, external_id: str) -> dict[str, Any]:
        return await self.get(f"ext_{external_id}")

    async def _get_by_key(self, key: str) -> dict[str, Any]:
        return await self.get_by_external_id(key)


class Invoices(_Resource):
    """Chaser invoices, matched on invoice_id."""

    path = "/v1/invoices"
    key_field = "invoice_id"


class CreditNotes(_Resource):
    """Chaser credit notes, matched on credit_note_id."""

    path = "/v1/credit_notes"
    key_field = "credit_note_id"
