"""Async client for the Chaser API: auth, timeouts, bounded concurrency, rate limit and retries.

One `ChaserClient` owns one `httpx.AsyncClient` (connections are reused) and one semaphore and
rate limiter shared by every request made through it. The API objects (`organisation`,
`customers`, `invoices`, `credit_notes`) are small endpoint objects on the client. Nothing here
knows about Dagster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiolimiter import AsyncLimiter

from chaser_pipeline.chaser.encoding import dumps, loads
from chaser_pipeline.chaser.endpoints import (
    CreditNotes,
    Customers,
    Invoices,
    ObjectEndpoint,
    Organisation,
)
from chaser_pipeline.chaser.errors import (
    RateLimitedError,
    ServerError,
    TransportError,
    error_for_status,
    error_message,
)
from chaser_pipeline.chaser.retry import (
    RATE_LIMITED_STATUS,
    Backoff,
    parse_retry_after,
    should_retry,
)
from chaser_pipeline.settings import Secret

log = logging.getLogger(__name__)

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _reveal(value: Any) -> str:
    # Accepts a plain str or anything with .get() (chaser_pipeline.settings.Secret).
    if isinstance(value, str):
        return value
    getter = getattr(value, "get", None)
    if callable(getter):
        return str(getter())
    raise TypeError("api_key and api_secret must be str or Secret")


@dataclass
class ClientStats:
    """What one client has done so far; shared by every endpoint of the client."""

    requests: int = 0
    write_requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    by_status: Counter[int] = field(default_factory=Counter)


@dataclass
class _Attempts:
    """How one request has fared so far, across its retries."""

    where: str
    failures: int = 0
    rate_limited_waits: int = 0
    rate_limited_seconds: float = 0.0
    after_transport_error: bool = False


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
        self.backoff = Backoff(backoff_base, backoff_max)
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

    def endpoint(self, object_name: str) -> ObjectEndpoint:
        """The endpoint of one Chaser object by its API name (customers, invoices, ...)."""
        endpoint = getattr(self, object_name, None)
        if not isinstance(endpoint, ObjectEndpoint):
            raise ValueError(f"the Chaser API has no object {object_name!r}")
        return endpoint

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one request with retries; return the parsed JSON body of a 2xx answer."""
        body, _, _ = await self.send(method, path, params=params, json=json)
        return body

    async def send(
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
        attempts = _Attempts(f"{method} {path}")
        while True:
            try:
                response = await self._send_once(method, path, params, body)
            except httpx.TransportError as exc:
                await self._after_transport_error(attempts, exc, method, path)
                continue
            status = response.status_code
            self.stats.by_status[status] += 1
            if status < 300:
                parsed = loads(response.content) if response.content else None
                return parsed, attempts.after_transport_error, status
            parsed = _parse_body(response)
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if status == RATE_LIMITED_STATUS:
                await self._after_rate_limited(attempts, retry_after, parsed, method, path)
            elif should_retry(status):
                await self._after_server_error(attempts, status, retry_after, parsed, method, path)
            else:
                raise error_for_status(
                    method,
                    path,
                    status,
                    parsed,
                    after_transport_error=attempts.after_transport_error,
                )

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

    async def _after_transport_error(
        self, attempts: _Attempts, exc: httpx.TransportError, method: str, path: str
    ) -> None:
        """Wait before retrying after the network failed; raise once retries are spent."""
        self.stats.transport_errors += 1
        attempts.after_transport_error = True
        attempts.failures += 1
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if attempts.failures > self.max_retries:
            raise TransportError(
                f"{attempts.where} failed after {attempts.failures} attempts: {reason}",
                method=method,
                path=path,
            ) from None
        delay = self.backoff.delay(attempts.failures)
        log.warning("%s: %s; retry %d in %.2f s", attempts.where, reason, attempts.failures, delay)
        self.stats.retries += 1
        await asyncio.sleep(delay)

    async def _after_rate_limited(
        self, attempts: _Attempts, retry_after: float | None, body: Any, method: str, path: str
    ) -> None:
        """Wait as Chaser asks (Retry-After) or back off; raise once waiting is spent."""
        self.stats.rate_limited += 1
        attempts.rate_limited_waits += 1
        delay = (
            retry_after
            if retry_after is not None
            else self.backoff.delay(attempts.rate_limited_waits)
        )
        if (
            attempts.rate_limited_waits > self.max_rate_limited_waits
            or attempts.rate_limited_seconds + delay > self.max_rate_limited_seconds
        ):
            raise RateLimitedError(
                f"{attempts.where}: Chaser still answers 429 after "
                f"{attempts.rate_limited_waits - 1} waits ({attempts.rate_limited_seconds:.1f} s)",
                method=method,
                path=path,
                status=RATE_LIMITED_STATUS,
                body=body,
            )
        if retry_after is not None:
            self._paused_until = max(self._paused_until, time.monotonic() + delay)
        attempts.rate_limited_seconds += delay
        log.info("%s: rate limited (429); waiting %.2f s", attempts.where, delay)
        self.stats.retries += 1
        await asyncio.sleep(delay)

    async def _after_server_error(
        self,
        attempts: _Attempts,
        status: int,
        retry_after: float | None,
        body: Any,
        method: str,
        path: str,
    ) -> None:
        """Wait before retrying a 5xx; raise once retries are spent."""
        self.stats.server_errors += 1
        attempts.failures += 1
        if attempts.failures > self.max_retries:
            raise ServerError(
                f"{attempts.where}: Chaser answered HTTP {status} on {attempts.failures} "
                f"attempts: {error_message(body)}",
                method=method,
                path=path,
                status=status,
                body=body,
            )
        delay = max(retry_after or 0.0, self.backoff.delay(attempts.failures))
        log.warning(
            "%s: HTTP %d; retry %d in %.2f s", attempts.where, status, attempts.failures, delay
        )
        self.stats.retries += 1
        await asyncio.sleep(delay)


def _parse_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return loads(response.content)
    except ValueError:
        return response.text[:500]
