"""The emulator's HTTP application: Chaser's endpoints over the SQLite store, plus faults.

`EmulatorApp` is the ASGI entry point. For each request it reads the body once, injects faults,
checks Basic auth (403 `forbidden_error`), applies the organisation's request limit (429), hands
the request to a Starlette router, logs the answer and the object it addressed in the store, and
drops the connection of a write after it was committed when the fault config asks for it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.routing import Router

from chaser_pipeline.emulator import rules
from chaser_pipeline.emulator.faults import FaultConfig, FaultInjector
from chaser_pipeline.emulator.handlers import (
    Handlers,
    error_response,
    json_response,
    routes,
    unknown_path,
)
from chaser_pipeline.emulator.rate_limit import OrganisationRateLimit, RateLimitConfig
from chaser_pipeline.emulator.store import EmulatorStore

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SILENT_POLL_SECONDS = 0.05


class DroppedConnection(Exception):
    """Raised to the server after the status line so it closes the socket without a body."""


class _QuietDrops(logging.Filter):
    # uvicorn logs every exception that leaves the app; an injected drop is not news.
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


_quiet_drops = _QuietDrops()


def object_of(path: str) -> str | None:
    """The Chaser object a path addresses (for the request log), if any."""
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "v1":
        parts = parts[1:]
        if parts[0] == "bulk":
            parts = parts[1:]
        if len(parts) >= 3 and parts[0] == "customers" and parts[2] == "contact_persons":
            return "contact_persons"
        if parts and parts[0] in rules.TOP_LEVEL_OBJECTS:
            return parts[0]
        if parts and parts[0] in ("organisation", "organisations"):
            return "organisation"
    return None


@dataclass
class _Exchange:
    """One HTTP request as the app sees it: read once, logged once."""

    method: str
    path: str
    body: bytes
    arrived: float
    object_name: str | None
    signature: bytes  # identifies a repeat of the same request (faults hit it at most once)
    number: int = 0  # 1 for the first request this app served
    counted: bool = False  # counted by the organisation's request limit
    logged: bool = False

    @property
    def is_write(self) -> bool:
        return self.method in _WRITE_METHODS


class EmulatorApp:
    """ASGI app of one emulator server: faults, auth, request limit, routing and the request log.

    `on_outage` is called once when an injected outage begins (the server stops listening);
    `close()` releases requests held by a silent fault, before the server stops."""

    def __init__(
        self,
        store: EmulatorStore,
        *,
        api_key: str,
        api_secret: str,
        faults: FaultConfig | None = None,
        rate_limit: RateLimitConfig | None = None,
        name_bad_entries: bool = rules.BULK_NAMES_BAD_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.faults = FaultInjector(faults)
        self.rate_limit = OrganisationRateLimit(rate_limit or RateLimitConfig(), store, clock=clock)
        self.on_outage: Callable[[], None] | None = None
        self._clock = clock
        self._closing = threading.Event()
        self._outage_started = False
        token = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
        self._expected_auth = f"Basic {token}".encode()
        self.router = Router(
            routes=routes(Handlers(store, name_bad_entries=name_bad_entries)),
            redirect_slashes=False,
            default=unknown_path,
        )
        logging.getLogger("uvicorn.error").addFilter(_quiet_drops)

    def close(self) -> None:
        """Let requests held by a silent fault go (unanswered): the server is stopping."""
        self._closing.set()

    def _authorised(self, scope: dict[str, Any]) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                try:
                    scheme, _, token = value.partition(b" ")
                    base64.b64decode(token, validate=True)
                except (binascii.Error, ValueError):
                    return False
                return scheme.lower() == b"basic" and hmac.compare_digest(
                    b"Basic " + token, self._expected_auth
                )
        return False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        exchange = await self._read(scope, receive)
        if exchange is None:
            return  # the client went away before sending its body
        if self.faults.outage(exchange.number):
            await self._outage(exchange, send)
            return
        if self.faults.silent(exchange.number):
            await self._silent(exchange, send)
            return
        if await self._inject_fault(exchange, scope, receive, send):
            return
        if not self._authorised(scope):
            self._log(exchange, 403, None, None)
            await error_response(rules.FORBIDDEN_ERROR, rules.FORBIDDEN_MESSAGE)(
                scope, receive, send
            )
            return
        admission = self.rate_limit.admit()
        exchange.counted = admission.counted
        refusal = admission.refusal
        if refusal is not None:
            self._log(exchange, 429, None, None)
            headers = (
                {"retry-after": refusal.retry_after_header}
                if self.rate_limit.config.retry_after
                else None
            )
            await error_response(rules.RATE_LIMIT_ERROR, refusal.message, headers)(
                scope, receive, send
            )
            return
        await self._route(exchange, scope, receive, send)

    async def _read(self, scope: dict[str, Any], receive: Any) -> _Exchange | None:
        """Read the whole body once (the router and the fault signature both need it)."""
        arrived = self._clock()
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        method: str = scope["method"]
        path: str = scope["path"]
        signature = hashlib.blake2b(
            b"\0".join((method.encode(), path.encode(), scope.get("query_string", b""), body)),
            digest_size=16,
        ).digest()
        exchange = _Exchange(method, path, body, arrived, object_of(path), signature)
        exchange.number = self.faults.arrive()
        return exchange

    def _log(
        self, exchange: _Exchange, status: int, entries: int | None, fault: str | None
    ) -> None:
        self.store.log_request(
            at=exchange.arrived,
            method=exchange.method,
            path=exchange.path,
            object_name=exchange.object_name,
            is_write=exchange.is_write,
            status=status,
            entries=entries,
            fault=fault,
            counted=exchange.counted,
        )
        exchange.logged = True

    async def _outage(self, exchange: _Exchange, send: Any) -> None:
        """The server goes down: this connection closes unanswered, and the server stops
        listening, so later connections are refused."""
        self._log(exchange, 0, None, "outage")
        if not self._outage_started:
            self._outage_started = True
            if self.on_outage is not None:
                self.on_outage()
        await _drop(send)

    async def _silent(self, exchange: _Exchange, send: Any) -> None:
        """Hold the request without ever answering, until the server stops."""
        self._log(exchange, 0, None, "silent")
        while not self._closing.is_set():
            await asyncio.sleep(_SILENT_POLL_SECONDS)
        await _drop(send)

    async def _inject_fault(
        self, exchange: _Exchange, scope: dict[str, Any], receive: Any, send: Any
    ) -> bool:
        """Add latency, and answer with an injected fault instead of handling, if one is due."""
        config = self.faults.config
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        fault = self.faults.before(exchange.signature, exchange.number)
        if fault is None:
            return False
        headers = (
            {"retry-after": f"{fault.retry_after:.3f}".rstrip("0").rstrip(".") or "0"}
            if fault.retry_after is not None
            else None
        )
        self._log(exchange, fault.status, None, fault.kind)
        await json_response(fault.body(), fault.status, headers)(scope, receive, send)
        return True

    async def _route(
        self, exchange: _Exchange, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        """Hand the request to the router; log the answer before it leaves, and drop the
        connection of a committed write when a fault says so."""
        sent = False
        dropped = False
        raw_path = scope.get("raw_path")
        # Route on the path as sent, so an escaped "/" in an external id stays in its segment;
        # the handlers unescape each path parameter.
        path = raw_path.decode("latin-1").partition("?")[0] if raw_path else scope["path"]
        scope = {**scope, "path": path, "state": {**scope.get("state", {})}}

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": exchange.body, "more_body": False}
            return await receive()

        async def respond(message: dict[str, Any]) -> None:
            nonlocal dropped
            if message["type"] == "http.response.start":
                status = message["status"]
                dropped = (
                    exchange.is_write
                    and status < 300
                    and self.faults.drop_after_commit(exchange.signature)
                )
                # Logged before the answer leaves, so whoever got the answer sees the log row.
                self._log(
                    exchange, status, scope["state"].get("entries"), "drop" if dropped else None
                )
                # The status line and headers go out; the promised body never does.
                await send(message)
                return
            if not dropped:
                await send(message)

        try:
            await self.router(scope, replay, respond)
        except Exception:
            logging.getLogger(__name__).exception("%s %s failed", exchange.method, exchange.path)
            if exchange.logged:
                raise  # the answer had started: the connection closes
            self._log(exchange, 500, scope["state"].get("entries"), "error")
            await error_response(rules.INTERNAL_ERROR, "internal server error")(
                scope, receive, send
            )
            return
        if dropped:
            raise DroppedConnection(
                f"{exchange.method} {exchange.path}: connection dropped after commit (injected)"
            )


async def _drop(send: Any) -> None:
    """Close the connection without an answer: the status line goes out, then nothing."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]}
    )
    raise DroppedConnection("connection closed without an answer (injected)")
