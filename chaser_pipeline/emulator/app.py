"""The emulator's HTTP application: Chaser's endpoints over the SQLite store, plus faults.

`EmulatorApp` is the ASGI entry point. It reads the body once, injects faults, checks Basic auth,
hands the request to a Starlette router, logs the answer in the store, and drops the connection
of a write after it was committed when the fault config asks for it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.routing import Router

from chaser_pipeline.emulator import rules
from chaser_pipeline.emulator.faults import FaultConfig, FaultInjector
from chaser_pipeline.emulator.handlers import Handlers, json_response, routes
from chaser_pipeline.emulator.store import EmulatorStore

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class DroppedConnection(Exception):
    """Raised to the server after a committed write so it closes the socket without a body."""


class _QuietDrops(logging.Filter):
    # uvicorn logs every exception that leaves the app; an injected drop is not news.
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


_quiet_drops = _QuietDrops()


def _object_of(path: str) -> str | None:
    """The Chaser object a path addresses (for the request log), if any."""
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[1] == "bulk":
        return parts[2]
    if len(parts) >= 2 and parts[1] in rules.OBJECTS:
        return parts[1]
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
    logged: bool = False

    @property
    def is_write(self) -> bool:
        return self.method in _WRITE_METHODS


class EmulatorApp:
    """ASGI app of one emulator server: faults, auth, routing and the request log."""

    def __init__(
        self,
        store: EmulatorStore,
        *,
        api_key: str,
        api_secret: str,
        faults: FaultConfig | None = None,
    ) -> None:
        self.store = store
        self.faults = FaultInjector(faults)
        token = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
        self._expected_auth = f"Basic {token}".encode()
        self.router = Router(routes=routes(Handlers(store)))
        logging.getLogger("uvicorn.error").addFilter(_quiet_drops)

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
        if await self._inject_fault(exchange, scope, receive, send):
            return
        if not self._authorised(scope):
            self._log(exchange, 401, None, None)
            response = json_response(
                {"message": "invalid API key or secret"},
                401,
                {"www-authenticate": 'Basic realm="Chaser"'},
            )
            await response(scope, receive, send)
            return
        await self._route(exchange, scope, receive, send)

    async def _read(self, scope: dict[str, Any], receive: Any) -> _Exchange | None:
        """Read the whole body once (the router and the fault signature both need it)."""
        arrived = time.time()
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
        return _Exchange(method, path, body, arrived, _object_of(path), signature)

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
        )
        exchange.logged = True

    async def _inject_fault(
        self, exchange: _Exchange, scope: dict[str, Any], receive: Any, send: Any
    ) -> bool:
        """Add latency, and answer with an injected fault instead of handling, if one is due."""
        config = self.faults.config
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        fault = self.faults.before(exchange.signature)
        if fault is None:
            return False
        headers = (
            {"retry-after": f"{fault.retry_after:.3f}".rstrip("0").rstrip(".") or "0"}
            if fault.retry_after is not None
            else None
        )
        self._log(exchange, fault.status, None, fault.kind)
        await json_response({"message": fault.message}, fault.status, headers)(scope, receive, send)
        return True

    async def _route(
        self, exchange: _Exchange, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        """Hand the request to the router; log the answer before it leaves, and drop the
        connection of a committed write when a fault says so."""
        sent = False
        dropped = False
        scope = {**scope, "state": {**scope.get("state", {})}}

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
            if not exchange.logged:
                self._log(exchange, 500, scope["state"].get("entries"), "error")
            raise
        if dropped:
            raise DroppedConnection(
                f"{exchange.method} {exchange.path}: connection dropped after commit (injected)"
            )
