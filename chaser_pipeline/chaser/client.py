"""Async client for the Chaser API: auth, timeouts, bounded concurrency, the request budget and
retries.

One `ChaserClient` owns one `httpx.AsyncClient` (connections are reused) and its in-flight bound.
The request budget (`RequestBudget`) paces every request and may be shared by all the clients of
one run; the run's deadline bounds every wait. The API objects (`organisation`, `customers`,
`invoices`, `credit_notes`, `overpayments`, `contact_persons`) are small endpoint objects on the
client. Nothing here knows about Dagster.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from chaser_pipeline.chaser.budget import RequestBudget
from chaser_pipeline.chaser.encoding import dumps, loads
from chaser_pipeline.chaser.endpoints import (
    ContactPersons,
    CreditNotes,
    Customers,
    Invoices,
    ObjectEndpoint,
    Organisation,
    Overpayments,
)
from chaser_pipeline.chaser.errors import (
    URL_VARIABLE,
    ChaserNotAnsweringError,
    ChaserUnreachableError,
    DeadlineExceededError,
    ForbiddenError,
    RateLimitedError,
    ServerError,
    TransportError,
    error_for_status,
    error_message,
)
from chaser_pipeline.chaser.retry import (
    RATE_LIMITED_STATUS,
    Backoff,
    never_reached_chaser,
    parse_retry_after,
    rate_limit_wait,
    should_retry,
)
from chaser_pipeline.settings import Secret

log = logging.getLogger(__name__)

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
# A request is sent only if this long (or its timeout, if shorter) is left before the run's
# deadline: a shorter attempt would only time out.
MIN_ATTEMPT_SECONDS = 1.0
# Connections in one httpx pool; a client sending more at once opens several pools.
POOL_CONNECTIONS = 4

# Called before a request whose earlier attempt may have been applied is sent again; a body it
# returns (not None) ends the request, e.g. the record a lost create made.
Recover = Callable[[], Awaitable[Any]]


def _reveal(value: Any) -> str:
    # Accepts a plain str or anything with .get() (chaser_pipeline.settings.Secret).
    if isinstance(value, str):
        return value
    getter = getattr(value, "get", None)
    if callable(getter):
        return str(getter())
    raise TypeError("api_key and api_secret must be str or Secret")


def display_url(url: str) -> str:
    """The URL without user name, password, query or fragment: safe for messages."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


@dataclass
class ClientStats:
    """What one client has done so far; shared by every endpoint of the client.

    `requests` counts requests sent (each one against the budget); `retries` the requests sent
    again after a failure (a 429 is not a failure and spends none); `transport_errors` the
    attempts that got no answer, of which `timeouts` got none in time."""

    requests: int = 0
    write_requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    timeouts: int = 0
    budget_wait_seconds: float = 0.0
    by_status: Counter[int] = field(default_factory=Counter)


@dataclass
class _Attempts:
    """How one request has fared so far, across its retries."""

    method: str
    path: str
    failures: int = 0
    unanswered: int = 0  # attempts that got no answer within the request timeout
    rate_limited: int = 0
    maybe_applied: bool = False  # an attempt may have reached Chaser and been applied

    @property
    def where(self) -> str:
        return f"{self.method} {self.path}"


class ChaserClient:
    """Async Chaser API client; use as `async with ChaserClient(...) as client:`.

    budget: the run's request budget, shared by every client of the run (default: a budget of
        its own at 200 requests a minute).
    max_in_flight: requests in flight at once; `initial_load_in_flight` while the budget is in
        initial-load mode.
    request_timeout: seconds one attempt may take, answer included; `connect_timeout` to
        connect.
    deadline: wall-clock time (epoch seconds, as `time.time()`) after which nothing is sent and
        no wait continues; None: no deadline.
    max_retries: attempts repeated after 5xx or network failures; `max_unanswered` attempts
        without an answer in time end the request ("Chaser stopped answering").
    """

    def __init__(
        self,
        base_url: str,
        api_key: Any,
        api_secret: Any,
        *,
        budget: RequestBudget | None = None,
        max_in_flight: int = 4,
        initial_load_in_flight: int = 16,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        deadline: float | None = None,
        max_retries: int = 6,
        max_unanswered: int = 3,
        max_rate_limited_waits: int = 100,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_in_flight < 1 or initial_load_in_flight < 1:
            raise ValueError("max_in_flight and initial_load_in_flight must be at least 1")
        if request_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("request_timeout and connect_timeout must be positive")
        if max_unanswered < 1:
            raise ValueError("max_unanswered must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.display_url = display_url(self.base_url)
        self._api_key = Secret(_reveal(api_key))
        self._api_secret = Secret(_reveal(api_secret))
        self.budget = budget if budget is not None else RequestBudget()
        self.max_in_flight = max_in_flight
        self.initial_load_in_flight = initial_load_in_flight
        self.request_timeout = request_timeout
        self.deadline = deadline
        self.max_retries = max_retries
        self.max_unanswered = max_unanswered
        self.max_rate_limited_waits = max_rate_limited_waits
        self.backoff = Backoff(backoff_base, backoff_max)
        self.stats = ClientStats()
        # what a client in another process needs to send as this one does (`process_config`)
        self._settings = {
            "max_in_flight": max_in_flight,
            "initial_load_in_flight": initial_load_in_flight,
            "request_timeout": request_timeout,
            "connect_timeout": connect_timeout,
            "deadline": deadline,
            "max_retries": max_retries,
            "max_unanswered": max_unanswered,
            "max_rate_limited_waits": max_rate_limited_waits,
            "backoff_base": backoff_base,
            "backoff_max": backoff_max,
        }
        self._own_transport = transport is None
        # Chaser refused the credentials (403): no request of this client is sent any more, not
        # even those already waiting for a slot (retrying cannot help, and each would be refused)
        self._refused: ForbiddenError | None = None
        widest = max(max_in_flight, initial_load_in_flight if self.budget.initial_load else 0)
        # Connection pools of at most POOL_CONNECTIONS each, every request sent through the
        # least busy: httpcore's pool looks at each connection it holds (expiry, a readable
        # idle socket) for every request, which with 16 connections in one pool took about a
        # third of the event loop's time during an initial load. A given transport (tests,
        # fault injection) is one pool.
        pools = 1 if transport is not None else math.ceil(widest / POOL_CONNECTIONS)
        # sizes differing by at most one, adding up to `widest`, the larger first: the least
        # busy pool (the first of equals) then never holds more requests than its size
        sizes = [widest // pools + (1 if i < widest % pools else 0) for i in range(pools)]
        # one TLS context for every pool (each would build its own, about 20 ms apiece)
        tls = httpx.create_ssl_context() if transport is None else True
        self._pools = [
            httpx.AsyncClient(
                base_url=self.base_url,
                auth=httpx.BasicAuth(self._api_key.get(), self._api_secret.get()),
                timeout=httpx.Timeout(
                    request_timeout, connect=min(connect_timeout, request_timeout)
                ),
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                headers={"accept": "application/json"},
                verify=tls,
                transport=transport,
            )
            for size in sizes
        ]
        self._pool_load = [0] * pools
        # Every request holds `_wide`; outside initial-load mode it holds `_narrow` too.
        self._wide = asyncio.Semaphore(widest)
        self._narrow = asyncio.Semaphore(max_in_flight)

        self.organisation = Organisation(self)
        self.customers = Customers(self)
        self.invoices = Invoices(self)
        self.credit_notes = CreditNotes(self)
        self.overpayments = Overpayments(self)
        self.contact_persons = ContactPersons(self)

    def __repr__(self) -> str:
        return f"ChaserClient(base_url={self.display_url!r}, api_key='***', api_secret='***')"

    async def __aenter__(self) -> ChaserClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        async with contextlib.AsyncExitStack() as stack:  # every pool, whatever one raises
            for pool in self._pools:
                stack.push_async_callback(pool.aclose)

    def process_config(self) -> dict[str, Any] | None:
        """The arguments of a client that sends as this one does (its budget aside), for a
        process of its own (`chaser.send_process`); None when this client was given a transport,
        which another process cannot share. Holds the credentials: hand it over a pipe only,
        never on a command line or in a log."""
        if not self._own_transport:
            return None
        return {
            "base_url": self.base_url,
            "api_key": self._api_key.get(),
            "api_secret": self._api_secret.get(),
            **self._settings,
        }

    def add_stats(self, other: ClientStats) -> None:
        """Count what a client sending on this one's behalf (another process) did."""
        stats = self.stats
        for name in (f.name for f in dataclasses.fields(ClientStats) if f.name != "by_status"):
            setattr(stats, name, getattr(stats, name) + getattr(other, name))
        stats.by_status.update(other.by_status)

    @property
    def in_flight_limit(self) -> int:
        """Requests this client sends at once right now: more during an initial load."""
        if self.budget.initial_load:
            return max(self.max_in_flight, self.initial_load_in_flight)
        return self.max_in_flight

    def endpoint(self, object_name: str) -> ObjectEndpoint | ContactPersons:
        """The endpoint of one Chaser object by its API name (customers, invoices, ...)."""
        endpoint = getattr(self, object_name, None)
        if not isinstance(endpoint, ObjectEndpoint | ContactPersons):
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
        body, _ = await self.send(method, path, params=params, json=json)
        return body

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        recover: Recover | None = None,
    ) -> tuple[Any, int]:
        """Like `request`; also returns the answer's status. `recover` runs before a request
        that may already have been applied is sent again (see `Recover`)."""
        body = dumps(json) if json is not None else None
        attempts = _Attempts(method, path)
        while True:
            if attempts.maybe_applied and recover is not None:
                found = await recover()
                if found is not None:
                    log.info(
                        "%s: applied before its answer was lost; not sent again", attempts.where
                    )
                    return found, 200
            try:
                response = await self._send_once(attempts, params, body)
            except (httpx.TransportError, TimeoutError) as exc:
                await self._after_no_answer(attempts, exc)
                continue
            status = response.status_code
            self.stats.by_status[status] += 1
            if status < 300:
                return (loads(response.content) if response.content else None), status
            parsed = _parse_body(response)
            if status == RATE_LIMITED_STATUS:
                self._after_rate_limited(attempts, response, parsed)
            elif should_retry(status):
                await self._after_server_error(attempts, response, parsed)
            else:
                error = error_for_status(method, path, status, parsed)
                if isinstance(error, ForbiddenError) and self._refused is None:
                    self._refused = error
                raise error

    @contextlib.asynccontextmanager
    async def _in_flight(self) -> AsyncIterator[None]:
        async with self._wide:
            if self.budget.initial_load:
                yield
            else:
                async with self._narrow:
                    yield

    async def _send_once(
        self, attempts: _Attempts, params: Mapping[str, Any] | None, body: bytes | None
    ) -> httpx.Response:
        method, path = attempts.method, attempts.path
        async with self._in_flight():
            self._check_refused(attempts)
            self._check_deadline(attempts)
            try:
                waited = await self.budget.acquire(deadline=self.deadline)
            except DeadlineExceededError as exc:
                raise DeadlineExceededError(
                    f"{attempts.where} not sent: {exc}", method=method, path=path
                ) from None
            if self._refused is not None:  # refused while this request waited for the budget
                self.budget.unused()
                self._check_refused(attempts)
            self.stats.budget_wait_seconds += waited
            try:
                self._check_deadline(attempts, waited)
            except DeadlineExceededError:
                self.budget.unused()
                raise
            self.stats.requests += 1
            if method in _WRITE_METHODS:
                self.stats.write_requests += 1
            headers = {"content-type": "application/json"} if body is not None else None
            started = time.monotonic()
            load = self._pool_load
            pool = load.index(min(load))
            load[pool] += 1
            try:
                async with asyncio.timeout(self._attempt_timeout()):
                    response = await self._pools[pool].request(
                        method, path, params=params, content=body, headers=headers
                    )
            finally:
                load[pool] -= 1
                self.budget.release()
            log.debug(
                "%s -> %s in %.0f ms",
                attempts.where,
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
            return response

    def _check_refused(self, attempts: _Attempts) -> None:
        """Send nothing once Chaser refused the credentials (see `_refused`)."""
        refused = self._refused
        if refused is not None:
            raise ForbiddenError(
                f"{attempts.where} not sent: {refused}",
                method=attempts.method,
                path=attempts.path,
                status=refused.status,
                body=refused.body,
            )

    def _attempt_timeout(self) -> float:
        if self.deadline is None:
            return self.request_timeout
        return max(0.001, min(self.request_timeout, self.deadline - time.time()))

    def _check_deadline(self, attempts: _Attempts, waited: float = 0.0) -> None:
        """Send nothing past the run's deadline, nor so close to it that the answer could not
        come back in time (the request would time out, maybe applied, and the next run send it
        again): at least MIN_ATTEMPT_SECONDS (or the request timeout, if shorter) must be left."""
        if self.deadline is None:
            return
        left = self.deadline - time.time()
        if left <= 0:
            why = "the run's deadline has passed"
        elif left < min(MIN_ATTEMPT_SECONDS, self.request_timeout):
            why = f"the run's deadline comes in {left:.1f} s, too soon for an answer"
        else:
            return
        if waited > 0.05:
            why += (
                f", after waiting {waited:.1f} s for the request budget ({self.budget.rate_text})"
            )
        raise DeadlineExceededError(
            f"{attempts.where} not sent: {why}", method=attempts.method, path=attempts.path
        )

    def _past_deadline_after(self, delay: float) -> bool:
        return self.deadline is not None and time.time() + delay >= self.deadline

    async def _after_no_answer(self, attempts: _Attempts, exc: BaseException) -> None:
        """Wait before sending again after an attempt got no answer; raise once that is spent."""
        self.stats.transport_errors += 1
        attempts.failures += 1
        if not never_reached_chaser(exc):
            attempts.maybe_applied = True
        if isinstance(exc, TimeoutError | httpx.TimeoutException) and not never_reached_chaser(exc):
            self.stats.timeouts += 1
            attempts.unanswered += 1
        delay = self.backoff.delay(attempts.failures)
        if attempts.failures > self.max_retries or attempts.unanswered >= self.max_unanswered:
            raise self._gave_up(attempts, exc) from None
        if self._past_deadline_after(delay):
            raise self._gave_up(attempts, exc, deadline_passed=True) from None
        log.warning(
            "%s: %s; retry %d in %.2f s", attempts.where, _reason(exc), attempts.failures, delay
        )
        self.stats.retries += 1
        await asyncio.sleep(delay)

    def _gave_up(
        self, attempts: _Attempts, exc: BaseException, *, deadline_passed: bool = False
    ) -> TransportError:
        """The error for a request that got no answer, naming CHASER_API_URL (never a secret)."""
        where, count = attempts.where, attempts.failures
        url = f"{self.display_url} ({URL_VARIABLE})"
        tail = "; the run's deadline has passed" if deadline_passed else ""
        options = {"method": attempts.method, "path": attempts.path}
        if never_reached_chaser(exc):
            return ChaserUnreachableError(
                f"Cannot reach Chaser at {url}: {_reason(exc)} on {count} attempts of {where}"
                f"{tail}. Check {URL_VARIABLE} and the network.",
                **options,
            )
        if attempts.unanswered and isinstance(exc, TimeoutError | httpx.TimeoutException):
            return ChaserNotAnsweringError(
                f"Chaser stopped answering: {where} got no answer within "
                f"{self.request_timeout:g} s on {attempts.unanswered} of {count} attempts "
                f"(Chaser at {url}){tail}",
                **options,
            )
        return TransportError(
            f"{where}: the connection to Chaser at {url} failed on {count} attempts: "
            f"{_reason(exc)}{tail}",
            **options,
        )

    def _after_rate_limited(self, attempts: _Attempts, response: httpx.Response, body: Any) -> None:
        """Hold the whole budget back as Chaser asks; the next acquire waits (spends no retry)."""
        self.stats.rate_limited += 1
        attempts.rate_limited += 1
        if attempts.rate_limited > self.max_rate_limited_waits:
            raise RateLimitedError(
                f"{attempts.where}: Chaser still answers 429 after "
                f"{attempts.rate_limited - 1} waits",
                method=attempts.method,
                path=attempts.path,
                status=RATE_LIMITED_STATUS,
                body=body,
            )
        was_initial_load = self.budget.initial_load
        pause = self.budget.rate_limited(rate_limit_wait(response.headers))
        if was_initial_load and not self.budget.initial_load:
            log.warning("%s", self.budget.fallback_message())
        log.info("%s: rate limited (429); the budget pauses %.2f s", attempts.where, pause)

    async def _after_server_error(
        self, attempts: _Attempts, response: httpx.Response, body: Any
    ) -> None:
        """Wait before sending again after a 5xx; raise once retries are spent."""
        status = response.status_code
        self.stats.server_errors += 1
        attempts.failures += 1
        attempts.maybe_applied = True  # a 500 may come after the write was applied
        delay = max(
            parse_retry_after(response.headers.get("retry-after")) or 0.0,
            self.backoff.delay(attempts.failures),
        )
        out_of_time = self._past_deadline_after(delay)
        if attempts.failures > self.max_retries or out_of_time:
            tail = "; the run's deadline has passed" if out_of_time else ""
            raise ServerError(
                f"{attempts.where}: Chaser answered HTTP {status} on {attempts.failures} "
                f"attempts: {error_message(body)}{tail}",
                method=attempts.method,
                path=attempts.path,
                status=status,
                body=body,
            )
        log.warning(
            "%s: HTTP %d; retry %d in %.2f s", attempts.where, status, attempts.failures, delay
        )
        self.stats.retries += 1
        await asyncio.sleep(delay)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _parse_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return loads(response.content)
    except ValueError:
        return response.text[:500]
