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
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from chaser_pipeline.chaser.encoding import dumps, loads
from chaser_pipeline.emulator import rules
from chaser_pipeline.emulator.faults import FaultConfig, FaultInjector
from chaser_pipeline.emulator.store import EmulatorStore, KeyExists

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class DroppedConnection(Exception):
    """Raised to the server after a committed write so it closes the socket without a body."""


class _QuietDrops(logging.Filter):
    # uvicorn logs every exception that leaves the app; an injected drop is not news.
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


_quiet_drops = _QuietDrops()


class ApiError(Exception):
    """An error answer: status and body `{"message": ...}` (plus `errors` for bulk)."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message}
        if errors is not None:
            self.body["errors"] = errors


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(data), status_code=status, media_type="application/json", headers=headers)


def _resource_rules(request: Request) -> rules.ResourceRules:
    resource = request.path_params["resource"]
    found = rules.RESOURCES.get(resource)
    if found is None:
        raise ApiError(404, f"unknown resource {resource!r}")
    return found


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return loads(raw)
    except ValueError:
        raise ApiError(rules.STATUS_BAD_REQUEST, "the body is not valid JSON") from None


def _parse_filters(request: Request, spec: rules.ResourceRules) -> list[tuple[str, str, Any]]:
    filters = []
    for name, value in request.query_params.multi_items():
        if not name.startswith("filter["):
            continue
        inner = name[len("filter[") : -1] if name.endswith("]") else ""
        field, sep, op = inner.partition("][")
        if not sep or op not in rules.FILTER_OPS:
            raise ApiError(
                400,
                f"bad filter {name!r}: use filter[field][op] with op in {', '.join(rules.FILTER_OPS)}",
            )
        if field != "id" and field not in spec.checks:
            raise ApiError(400, f"cannot filter {spec.resource} on unknown field {field!r}")

        def convert(text: str, field: str = field) -> Any:
            if field in spec.money_fields:
                try:
                    return float(Decimal(text))
                except ArithmeticError:
                    raise ApiError(400, f"filter on {field} needs a number, got {text!r}") from None
            return text

        if op in ("in", "nin"):
            filters.append((field, op, [convert(v) for v in value.split(",")]))
        else:
            filters.append((field, op, convert(value)))
    return filters


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, f"{name} must be {bound}, got {value}")
    return value


class Handlers:
    """Chaser's endpoints, answering from one store."""

    def __init__(self, store: EmulatorStore) -> None:
        self.store = store

    async def organisation(self, request: Request) -> Response:
        return _json({"data": rules.ORGANISATION})

    async def organisations(self, request: Request) -> Response:
        return _json(
            {
                "object": "list",
                "url": "/v1/organisations",
                "page_number": 0,
                "page_size": rules.PAGE_LIMIT,
                "total_count": 1,
                "data": [rules.ORGANISATION],
            }
        )

    async def list(self, request: Request) -> Response:
        spec = _resource_rules(request)
        page = _int_param(request, "page", 0, 0, None)
        limit = _int_param(request, "limit", rules.PAGE_LIMIT, 1, rules.PAGE_LIMIT)
        filters = _parse_filters(request, spec)
        total, data = self.store.page(spec.resource, page=page, limit=limit, filters=filters)
        return _json(
            {
                "object": "list",
                "url": f"/v1/{spec.resource}",
                "page_number": page,
                "page_size": limit,
                "total_count": total,
                "data": data,
            }
        )

    def _find(self, spec: rules.ResourceRules, path_id: str) -> dict[str, Any]:
        if spec.resource in rules.EXTERNAL_ID_RESOURCES and path_id.startswith(
            rules.EXTERNAL_ID_PREFIX
        ):
            record = self.store.get_by_key(spec.resource, path_id[len(rules.EXTERNAL_ID_PREFIX) :])
        else:
            record = self.store.get(spec.resource, path_id)
        if record is None:
            raise ApiError(404, f"no {spec.noun} with id {path_id!r}")
        return record

    async def get(self, request: Request) -> Response:
        spec = _resource_rules(request)
        return _json({"data": self._find(spec, request.path_params["id"])})

    def _check(self, spec: rules.ResourceRules, entry: Any) -> None:
        try:
            spec.validate(entry)
        except rules.Invalid as exc:
            raise ApiError(rules.STATUS_INVALID, str(exc)) from None

    def _check_customer(self, spec: rules.ResourceRules, entry: dict[str, Any]) -> None:
        if spec.references_customer:
            ref = entry["customer_external_id"]
            if not self.store.ids_by_key("customers", [ref]):
                raise ApiError(rules.STATUS_UNKNOWN_CUSTOMER, rules.unknown_customer_message(ref))

    async def create(self, request: Request) -> Response:
        spec = _resource_rules(request)
        request.state.entries = 1
        entry = await _body(request)
        self._check(spec, entry)
        key = spec.key_of(entry)
        with self.store.transaction():
            self._check_customer(spec, entry)
            try:
                chaser_id = self.store.insert(spec.resource, key, entry, spec.id_prefix)
            except KeyExists:
                raise ApiError(rules.STATUS_EXISTS, rules.exists_message(spec, key)) from None
        return _json({"data": {**entry, "id": chaser_id}}, status=201)

    async def update(self, request: Request) -> Response:
        spec = _resource_rules(request)
        request.state.entries = 1
        changes = await _body(request)
        if not isinstance(changes, dict):
            raise ApiError(rules.STATUS_INVALID, f"a {spec.noun} must be a JSON object")
        with self.store.transaction():
            current = self._find(spec, request.path_params["id"])
            chaser_id = current.pop("id")
            merged = {**current, **changes}
            self._check(spec, merged)
            self._check_customer(spec, merged)
            key = spec.key_of(merged)
            try:
                self.store.replace(spec.resource, chaser_id, key, merged)
            except KeyExists:
                raise ApiError(rules.STATUS_EXISTS, rules.exists_message(spec, key)) from None
        return _json({"data": {**merged, "id": chaser_id}})

    async def bulk(self, request: Request) -> Response:
        spec = _resource_rules(request)
        body = await _body(request)
        entries = body.get("entries") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise ApiError(rules.STATUS_BAD_REQUEST, 'the body must be {"entries": [...]}')
        request.state.entries = len(entries)
        if len(entries) > rules.BULK_LIMIT:
            raise ApiError(
                rules.STATUS_BAD_REQUEST,
                f"at most {rules.BULK_LIMIT} entries per request, got {len(entries)}",
            )
        errors: list[dict[str, Any]] = []
        for index, entry in enumerate(entries):
            try:
                spec.validate(entry)
            except rules.Invalid as exc:
                errors.append({"index": index, "message": str(exc)})
        bad = {error["index"] for error in errors}
        # All or nothing: one bad entry and nothing of the request is applied.
        with self.store.transaction():
            if spec.references_customer:
                refs = {
                    entry["customer_external_id"]
                    for index, entry in enumerate(entries)
                    if index not in bad
                }
                known = self.store.ids_by_key("customers", refs)
                for index, entry in enumerate(entries):
                    if index not in bad and entry["customer_external_id"] not in known:
                        errors.append(
                            {
                                "index": index,
                                "message": rules.unknown_customer_message(
                                    entry["customer_external_id"]
                                ),
                            }
                        )
            if errors:
                errors.sort(key=lambda error: error["index"])
                raise ApiError(
                    rules.STATUS_INVALID,
                    f"{len(errors)} of {len(entries)} entries are invalid; nothing was saved",
                    errors,
                )
            inserted, modified = self.store.upsert_many(
                spec.resource, [(spec.key_of(entry), entry) for entry in entries], spec.id_prefix
            )
        return _json(
            {
                "data": {
                    "modified_count": modified,
                    "inserted_count": len(inserted),
                    "inserted_ids": [{"index": i, "id": chaser_id} for i, chaser_id in inserted],
                }
            }
        )


def _routes(handlers: Handlers) -> list[Route]:
    return [
        Route("/v1/organisation", handlers.organisation, methods=["GET"]),
        Route("/v1/organisations", handlers.organisations, methods=["GET"]),
        Route("/v1/bulk/{resource}", handlers.bulk, methods=["PUT"]),
        Route("/v1/{resource}", handlers.list, methods=["GET"]),
        Route("/v1/{resource}", handlers.create, methods=["POST"]),
        Route("/v1/{resource}/{id}", handlers.get, methods=["GET"]),
        Route("/v1/{resource}/{id}", handlers.update, methods=["PUT"]),
    ]


def _wrap_errors(endpoint):
    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ApiError as exc:
            return _json(exc.body, status=exc.status)

    return run


def _resource_of(path: str) -> str | None:
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[1] == "bulk":
        return parts[2]
    if len(parts) >= 2 and parts[1] in rules.RESOURCES:
        return parts[1]
    return None


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
        handlers = Handlers(store)
        routes = [
            Route(route.path, _wrap_errors(route.endpoint), methods=list(route.methods or ()))
            for route in _routes(handlers)
        ]
        self.router = Router(routes=routes)
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
        arrived = time.time()
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        method: str = scope["method"]
        path: str = scope["path"]
        is_write = method in _WRITE_METHODS
        resource = _resource_of(path)
        signature = hashlib.blake2b(
            b"\0".join((method.encode(), path.encode(), scope.get("query_string", b""), body)),
            digest_size=16,
        ).digest()

        def log(status: int, entries: int | None, fault: str | None) -> None:
            self.store.log_request(
                at=arrived,
                method=method,
                path=path,
                resource=resource,
                is_write=is_write,
                status=status,
                entries=entries,
                fault=fault,
            )

        config = self.faults.config
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        fault = self.faults.before(signature)
        if fault is not None:
            headers = (
                {"retry-after": f"{fault.retry_after:.3f}".rstrip("0").rstrip(".") or "0"}
                if fault.retry_after is not None
                else None
            )
            log(fault.status, None, fault.kind)
            await _json({"message": fault.message}, fault.status, headers)(scope, receive, send)
            return
        if not self._authorised(scope):
            log(401, None, None)
            response = _json(
                {"message": "invalid API key or secret"},
                401,
                {"www-authenticate": 'Basic realm="Chaser"'},
            )
            await response(scope, receive, send)
            return

        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        dropped = False
        logged = False
        scope = {**scope, "state": {**scope.get("state", {})}}

        async def respond(message: dict[str, Any]) -> None:
            nonlocal dropped, logged
            if message["type"] == "http.response.start":
                status = message["status"]
                dropped = is_write and status < 300 and self.faults.drop_after_commit(signature)
                # Logged before the answer leaves, so whoever got the answer also sees the log row.
                log(status, scope["state"].get("entries"), "drop" if dropped else None)
                logged = True
                # The status line and headers go out; the promised body never does.
                await send(message)
                return
            if not dropped:
                await send(message)

        try:
            await self.router(scope, replay, respond)
        except Exception:
            if not logged:
                log(500, scope["state"].get("entries"), "error")
            raise
        if dropped:
            raise DroppedConnection(f"{method} {path}: connection dropped after commit (injected)")
