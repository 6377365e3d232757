"""Chaser's endpoints over the emulator's SQLite store: the organisation (and its sync), list, get,
create, update and bulk upsert of every object, and each customer's contact persons, all as
strict as `rules`, answering errors with Chaser's `{message, type, url}` bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chaser_pipeline.chaser.encoding import dumps, loads
from chaser_pipeline.emulator import rules
from chaser_pipeline.emulator.store import EmulatorStore, KeyExists

Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(data), status_code=status, media_type="application/json", headers=headers)


def error_response(
    error_type: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response(
        rules.error_body(error_type, message), rules.ERROR_STATUS[error_type], headers
    )


class ApiError(Exception):
    """An error answer: Chaser's status and body for one error type (plus `errors` for bulk)."""

    def __init__(
        self, error_type: str, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = rules.ERROR_STATUS[error_type]
        self.body = rules.error_body(error_type, message, errors)


def invalid(message: str, errors: list[dict[str, Any]] | None = None) -> ApiError:
    return ApiError(rules.VALIDATION_ERROR, message, errors)


def not_found(what: str | None = None) -> ApiError:
    message = rules.NOT_FOUND_MESSAGE if what is None else f"{rules.NOT_FOUND_MESSAGE}: {what}"
    return ApiError(rules.NOT_FOUND_ERROR, message)


def _path_param(request: Request, name: str) -> str:
    # The app routes on the raw path, so an escaped "/" in an id stays inside its segment.
    return unquote(request.path_params[name])


def _object_rules(request: Request) -> rules.ObjectRules:
    found = rules.TOP_LEVEL_OBJECTS.get(_path_param(request, "object"))
    if found is None:
        raise not_found()
    return found


async def _body(request: Request, *, optional: bool = False) -> Any:
    raw = await request.body()
    if optional and not raw.strip():
        return None
    try:
        return loads(raw)
    except ValueError:
        raise invalid("the body is not valid JSON") from None


def _parse_filters(request: Request, spec: rules.ObjectRules) -> list[tuple[str, str, Any]]:
    filters = []
    for name, value in request.query_params.multi_items():
        if not name.startswith("filter["):
            continue
        inner = name[len("filter[") : -1] if name.endswith("]") else ""
        field, sep, op = inner.partition("][")
        if not sep or op not in rules.FILTER_OPS:
            raise invalid(
                f"bad filter {name!r}: use filter[field][op] with op in {', '.join(rules.FILTER_OPS)}"
            )
        if field != "id" and field not in spec.checks:
            raise invalid(f"cannot filter {spec.name} on unknown field {field!r}")

        def convert(text: str, field: str = field) -> Any:
            if field in spec.money_fields:
                try:
                    return float(Decimal(text))
                except ArithmeticError:
                    raise invalid(f"filter on {field} needs a number, got {text!r}") from None
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
        raise invalid(f"{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(f"{name} must be {bound}, got {value}")
    return value


def _check(spec: rules.ObjectRules, entry: Any) -> None:
    try:
        spec.validate(entry)
    except rules.Invalid as exc:
        raise invalid(str(exc)) from None


class Handlers:
    """Chaser's endpoints, answering from one store."""

    def __init__(
        self, store: EmulatorStore, *, name_bad_entries: bool = rules.BULK_NAMES_BAD_ENTRIES
    ) -> None:
        self.store = store
        self.name_bad_entries = name_bad_entries

    # ---- the organisation ----------------------------------------------------------------

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

    async def organisation_sync(self, request: Request) -> Response:
        body = await _body(request, optional=True)
        if body is not None:
            tasks = body.get("tasks") if isinstance(body, dict) else None
            if (
                not isinstance(body, dict)
                or set(body) - {"tasks"}
                or not isinstance(tasks, list)
                or not all(
                    isinstance(t, dict) and set(t) == {"task"} and isinstance(t["task"], str)
                    for t in tasks
                )
            ):
                raise invalid('the body must be {"tasks": [{"task": "..."}]} or empty')
        return json_response({"data": {"result": True}})

    # ---- objects with a path of their own --------------------------------------------------

    async def list(self, request: Request) -> Response:
        return self._list(request, _object_rules(request), "")

    async def get(self, request: Request) -> Response:
        spec = _object_rules(request)
        return json_response({"data": self._find(spec, "", _path_param(request, "id"))})

    async def create(self, request: Request) -> Response:
        return await self._create(request, _object_rules(request), None)

    async def update(self, request: Request) -> Response:
        return await self._update(request, _object_rules(request), None)

    async def bulk(self, request: Request) -> Response:
        return await self._bulk(request, _object_rules(request), None)

    # ---- contact persons: /v1/customers/{customer_id}/contact_persons ------------------------

    async def contact_persons_list(self, request: Request) -> Response:
        return self._list(request, rules.CONTACT_PERSONS, self._customer_scope(request))

    async def contact_person_get(self, request: Request) -> Response:
        scope = self._customer_scope(request)
        record = self._find(rules.CONTACT_PERSONS, scope, _path_param(request, "id"))
        return json_response({"data": record})

    async def contact_persons_create(self, request: Request) -> Response:
        return await self._create(request, rules.CONTACT_PERSONS, request)

    async def contact_person_update(self, request: Request) -> Response:
        return await self._update(request, rules.CONTACT_PERSONS, request)

    async def contact_person_delete(self, request: Request) -> Response:
        request.state.entries = 1
        with self.store.transaction():
            scope = self._customer_scope(request)
            record = self._find(rules.CONTACT_PERSONS, scope, _path_param(request, "id"))
            self.store.delete("contact_persons", record["id"], scope)
        return json_response({"data": record})

    async def contact_persons_bulk(self, request: Request) -> Response:
        return await self._bulk(request, rules.CONTACT_PERSONS, request)

    # ---- shared by every object --------------------------------------------------------------

    def _customer_scope(self, request: Request) -> str:
        """The Chaser id of the customer in the path (its id or ext_ + its external id)."""
        path_id = _path_param(request, "customer_id")
        return self._find(rules.CUSTOMERS, "", path_id)["id"]

    def _scope(self, scoped_request: Request | None) -> str:
        return "" if scoped_request is None else self._customer_scope(scoped_request)

    def _list(self, request: Request, spec: rules.ObjectRules, scope: str) -> Response:
        page = _int_param(request, "page", 0, 0, None)
        limit = _int_param(request, "limit", rules.PAGE_LIMIT, 1, rules.PAGE_LIMIT)
        filters = _parse_filters(request, spec)
        total, data = self.store.page(
            spec.name, page=page, limit=limit, filters=filters, scope=scope
        )
        return json_response(
            {
                "object": "list",
                "url": unquote(request.url.path),
                "page_number": page,
                "page_size": limit,
                "total_count": total,
                "data": data,
            }
        )

    def _find(self, spec: rules.ObjectRules, scope: str, path_id: str) -> dict[str, Any]:
        if spec.name in rules.EXTERNAL_ID_OBJECTS and path_id.startswith(rules.EXTERNAL_ID_PREFIX):
            key = path_id[len(rules.EXTERNAL_ID_PREFIX) :]
            record = self.store.get_by_key(spec.name, key, scope)
        else:
            record = self.store.get(spec.name, path_id, scope)
        if record is None:
            raise not_found(f"no {spec.singular} with id {path_id!r}")
        return record

    def _check_customer(self, spec: rules.ObjectRules, entry: dict[str, Any]) -> None:
        if spec.references_customer:
            ref = entry["customer_external_id"]
            if not self.store.ids_by_key("customers", [ref]):
                raise ApiError(rules.UNKNOWN_CUSTOMER_ERROR, rules.unknown_customer_message(ref))

    async def _create(
        self, request: Request, spec: rules.ObjectRules, scoped: Request | None
    ) -> Response:
        request.state.entries = 1
        entry = await _body(request)
        _check(spec, entry)
        key = spec.key_of(entry)
        with self.store.transaction():
            scope = self._scope(scoped)
            self._check_customer(spec, entry)
            try:
                chaser_id = self.store.insert(spec.name, key, entry, spec.id_prefix, scope)
            except KeyExists:
                raise ApiError(
                    rules.KNOWN_KEY_CREATE_ERROR, rules.exists_message(spec, key)
                ) from None
            record = self.store.get(spec.name, chaser_id, scope)
        return json_response({"data": record}, status=201)

    async def _update(
        self, request: Request, spec: rules.ObjectRules, scoped: Request | None
    ) -> Response:
        request.state.entries = 1
        changes = await _body(request)
        if not isinstance(changes, dict):
            raise invalid(f"a {spec.singular} must be a JSON object")
        with self.store.transaction():
            scope = self._scope(scoped)
            current = self._find(spec, scope, _path_param(request, "id"))
            chaser_id = current.pop("id")
            current.pop("customer_id", None)
            merged = {**current, **changes}
            _check(spec, merged)
            self._check_customer(spec, merged)
            key = spec.key_of(merged)
            try:
                self.store.replace(spec.name, chaser_id, key, merged)
            except KeyExists:
                raise invalid(rules.exists_message(spec, key)) from None
            record = self.store.get(spec.name, chaser_id, scope)
        return json_response({"data": record})

    async def _bulk(
        self, request: Request, spec: rules.ObjectRules, scoped: Request | None
    ) -> Response:
        body = await _body(request)
        entries = body.get("entries") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise invalid('the body must be {"entries": [...]}')
        request.state.entries = len(entries)
        if len(entries) > rules.BULK_LIMIT:
            raise invalid(f"at most {rules.BULK_LIMIT} entries per request, got {len(entries)}")
        errors = _invalid_entries(spec, entries)
        # All or nothing: one bad entry and nothing of the request is applied.
        with self.store.transaction():
            scope = self._scope(scoped)
            errors += self._unknown_customers(spec, entries, {e["index"] for e in errors})
            if errors:
                errors.sort(key=lambda error: error["index"])
                message = f"{len(errors)} of {len(entries)} entries are invalid; nothing was saved"
                if len(errors) == 1 and not self.name_bad_entries:
                    message = f"{message}: {errors[0]['message']}"
                raise invalid(message, errors if self.name_bad_entries else None)
            inserted, modified = self.store.upsert_many(
                spec.name,
                [(spec.key_of(entry), entry) for entry in entries],
                spec.id_prefix,
                scope,
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
    """The API's routes. A path with a method it does not serve is 404 `not_found_error`, as an
    unknown path is (the document lists no 405)."""
    h = handlers
    table: list[tuple[str, dict[str, Endpoint]]] = [
        ("/v1/organisation", {"GET": h.organisation}),
        ("/v1/organisations", {"GET": h.organisations}),
        ("/v1/organisation/sync", {"POST": h.organisation_sync}),
        ("/v1/bulk/customers/{customer_id}/contact_persons", {"PUT": h.contact_persons_bulk}),
        ("/v1/bulk/{object}", {"PUT": h.bulk}),
        (
            "/v1/customers/{customer_id}/contact_persons",
            {"GET": h.contact_persons_list, "POST": h.contact_persons_create},
        ),
        (
            "/v1/customers/{customer_id}/contact_persons/{id}",
            {
                "GET": h.contact_person_get,
                "PUT": h.contact_person_update,
                "DELETE": h.contact_person_delete,
            },
        ),
        ("/v1/{object}", {"GET": h.list, "POST": h.create}),
        ("/v1/{object}/{id}", {"GET": h.get, "PUT": h.update}),
    ]
    # Every route takes every method, so a method it does not serve reaches _dispatch (404).
    return [Route(path, _dispatch(methods), methods=_ALL_METHODS) for path, methods in table]


_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _dispatch(methods: dict[str, Endpoint]) -> Endpoint:
    async def run(request: Request) -> Response:
        endpoint = methods.get("GET" if request.method == "HEAD" else request.method)
        try:
            if endpoint is None:
                raise not_found()
            return await endpoint(request)
        except ApiError as exc:
            return json_response(exc.body, status=exc.status)

    return run


async def unknown_path(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The router's answer to a path no route matches."""
    await error_response(rules.NOT_FOUND_ERROR, rules.NOT_FOUND_MESSAGE)(scope, receive, send)
