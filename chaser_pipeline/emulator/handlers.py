"""Chaser's endpoints over the emulator's SQLite store: organisation, list, get, create, update
and bulk upsert, each as strict as the rules in `rules`, with Chaser's error bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chaser_pipeline.chaser.encoding import dumps, loads
from chaser_pipeline.emulator import rules
from chaser_pipeline.emulator.store import EmulatorStore, KeyExists


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(data), status_code=status, media_type="application/json", headers=headers)


class ApiError(Exception):
    """An error answer: status and body `{"message": ...}` (plus `errors` for bulk)."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message}
        if errors is not None:
            self.body["errors"] = errors


def _object_rules(request: Request) -> rules.ObjectRules:
    name = request.path_params["object"]
    found = rules.OBJECTS.get(name)
    if found is None:
        raise ApiError(404, f"unknown object {name!r}")
    return found


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return loads(raw)
    except ValueError:
        raise ApiError(rules.STATUS_BAD_REQUEST, "the body is not valid JSON") from None


def _parse_filters(request: Request, spec: rules.ObjectRules) -> list[tuple[str, str, Any]]:
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
            raise ApiError(400, f"cannot filter {spec.name} on unknown field {field!r}")

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
        return json_response({"data": rules.ORGANISATION})

    async def organisations(self, request: Request) -> Response:
        return json_response(
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
        spec = _object_rules(request)
        page = _int_param(request, "page", 0, 0, None)
        limit = _int_param(request, "limit", rules.PAGE_LIMIT, 1, rules.PAGE_LIMIT)
        filters = _parse_filters(request, spec)
        total, data = self.store.page(spec.name, page=page, limit=limit, filters=filters)
        return json_response(
            {
                "object": "list",
                "url": f"/v1/{spec.name}",
                "page_number": page,
                "page_size": limit,
                "total_count": total,
                "data": data,
            }
        )

    def _find(self, spec: rules.ObjectRules, path_id: str) -> dict[str, Any]:
        if spec.name in rules.EXTERNAL_ID_OBJECTS and path_id.startswith(rules.EXTERNAL_ID_PREFIX):
            record = self.store.get_by_key(spec.name, path_id[len(rules.EXTERNAL_ID_PREFIX) :])
        else:
            record = self.store.get(spec.name, path_id)
        if record is None:
            raise ApiError(404, f"no {spec.singular} with id {path_id!r}")
        return record

    async def get(self, request: Request) -> Response:
        spec = _object_rules(request)
        return json_response({"data": self._find(spec, request.path_params["id"])})

    def _check(self, spec: rules.ObjectRules, entry: Any) -> None:
        try:
            spec.validate(entry)
        except rules.Invalid as exc:
            raise ApiError(rules.STATUS_INVALID, str(exc)) from None

    def _check_customer(self, spec: rules.ObjectRules, entry: dict[str, Any]) -> None:
        if spec.references_customer:
            ref = entry["customer_external_id"]
            if not self.store.ids_by_key("customers", [ref]):
                raise ApiError(rules.STATUS_UNKNOWN_CUSTOMER, rules.unknown_customer_message(ref))

    async def create(self, request: Request) -> Response:
        spec = _object_rules(request)
        request.state.entries = 1
        entry = await _body(request)
        self._check(spec, entry)
        key = spec.key_of(entry)
        with self.store.transaction():
            self._check_customer(spec, entry)
            try:
                chaser_id = self.store.insert(spec.name, key, entry, spec.id_prefix)
            except KeyExists:
                raise ApiError(rules.STATUS_EXISTS, rules.exists_message(spec, key)) from None
        return json_response({"data": {**entry, "id": chaser_id}}, status=201)

    async def update(self, request: Request) -> Response:
        spec = _object_rules(request)
        request.state.entries = 1
        changes = await _body(request)
        if not isinstance(changes, dict):
            raise ApiError(rules.STATUS_INVALID, f"a {spec.singular} must be a JSON object")
        with self.store.transaction():
            current = self._find(spec, request.path_params["id"])
            chaser_id = current.pop("id")
            merged = {**current, **changes}
            self._check(spec, merged)
            self._check_customer(spec, merged)
            key = spec.key_of(merged)
            try:
                self.store.replace(spec.name, chaser_id, key, merged)
            except KeyExists:
                raise ApiError(rules.STATUS_EXISTS, rules.exists_message(spec, key)) from None
        return json_response({"data": {**merged, "id": chaser_id}})

    async def bulk(self, request: Request) -> Response:
        spec = _object_rules(request)
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
        errors = _invalid_entries(spec, entries)
        # All or nothing: one bad entry and nothing of the request is applied.
        with self.store.transaction():
            errors += self._unknown_customers(spec, entries, {e["index"] for e in errors})
            if errors:
                errors.sort(key=lambda error: error["index"])
                raise ApiError(
                    rules.STATUS_INVALID,
                    f"{len(errors)} of {len(entries)} entries are invalid; nothing was saved",
                    errors,
                )
            inserted, modified = self.store.upsert_many(
                spec.name, [(spec.key_of(entry), entry) for entry in entries], spec.id_prefix
            )
        return json_response(
            {
                "data": {
                    "modified_count": modified,
                    "inserted_count": len(inserted),
                    "inserted_ids": [{"index": i, "id": chaser_id} for i, chaser_id in inserted],
                }
            }
        )

    def _unknown_customers(
        self, spec: rules.ObjectRules, entries: list[Any], bad: set[int]
    ) -> list[dict[str, Any]]:
        """An error per valid entry naming a customer the store does not hold."""
        if not spec.references_customer:
            return []
        refs = {e["customer_external_id"] for i, e in enumerate(entries) if i not in bad}
        known = self.store.ids_by_key("customers", refs)
        return [
            {"index": i, "message": rules.unknown_customer_message(e["customer_external_id"])}
            for i, e in enumerate(entries)
            if i not in bad and e["customer_external_id"] not in known
        ]


def _invalid_entries(spec: rules.ObjectRules, entries: list[Any]) -> list[dict[str, Any]]:
    """An error per entry that breaks a payload rule, naming its index."""
    errors: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        try:
            spec.validate(entry)
        except rules.Invalid as exc:
            errors.append({"index": index, "message": str(exc)})
    return errors


def routes(handlers: Handlers) -> list[Route]:
    """The API's routes, each answering an ApiError with its status and body."""
    endpoints = [
        ("/v1/organisation", handlers.organisation, "GET"),
        ("/v1/organisations", handlers.organisations, "GET"),
        ("/v1/bulk/{object}", handlers.bulk, "PUT"),
        ("/v1/{object}", handlers.list, "GET"),
        ("/v1/{object}", handlers.create, "POST"),
        ("/v1/{object}/{id}", handlers.get, "GET"),
        ("/v1/{object}/{id}", handlers.update, "PUT"),
    ]
    return [Route(path, _wrap_errors(endpoint), methods=[m]) for path, endpoint, m in endpoints]


def _wrap_errors(endpoint):
    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ApiError as exc:
            return json_response(exc.body, status=exc.status)

    return run
