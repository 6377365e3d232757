"""What the emulator accepts and how it answers: every rule of the Chaser API in one place.

The rules follow the API as documented (CHASER_API.md in the project's shared notes): the error
contract, the request limit, the payloads. Where that document marks a rule as a guess (medium),
or says nothing, the choice is still made here, strictly, under "Guesses": a user who finds the
real API differs changes one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

CUSTOMER_STATUSES = frozenset({"ACTIVE", "ARCHIVED"})
INVOICE_STATUSES = frozenset({"DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"})
CREDIT_NOTE_STATUSES = frozenset({"ACTIVE", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"})
CONTACT_PERSON_STATUSES = frozenset({"ACTIVE", "ARCHIVED"})
# Overpayment fields are undocumented; CHASER_API.md says to model them on credit notes, so an
# overpayment takes a credit note's statuses (a reversed or removed one is sent VOIDED / DELETED).
OVERPAYMENT_STATUSES = CREDIT_NOTE_STATUSES
ADDRESS_TYPES = frozenset({"POBOX", "Unknown", "Delivery", "Billing"})
GROUP_STATUSES = frozenset({"ACTIVE", "ARCHIVED"})

BULK_LIMIT = 100
PAGE_LIMIT = 100
FILTER_OPS = {
    "eq": "=",
    "ne": "!=",
    "gt": ">",
    "lt": "<",
    "gte": ">=",
    "lte": "<=",
    "in": "IN",
    "nin": "NOT IN",
}

_DATE = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z"
)
_CURRENCY = re.compile(r"[A-Z]{3}")
_MOBILE = re.compile(r"\+[1-9]\d{6,14}")

ADDRESS_FIELDS = frozenset(
    {
        "address_line1",
        "address_line2",
        "address_line3",
        "address_line4",
        "city",
        "region",
        "postal_code",
        "country",
        "address_type",
    }
)


class Invalid(ValueError):
    """One rule broken by one entry; the message is what Chaser would answer."""


def _string(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string")


def _money(name: str, value: Any) -> None:
    # JSON is parsed with parse_float=Decimal, so 10.505 arrives as Decimal('10.505').
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise Invalid(f"{name} must be a number")
    if isinstance(value, Decimal) and (not value.is_finite() or value.as_tuple().exponent < -2):
        raise Invalid(f"{name} must have at most 2 decimal places (got {value})")


def _date(name: str, value: Any) -> None:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise Invalid(
            f"{name} must be an ISO 8601 UTC date as YYYY-MM-DDTHH:mm:ss.sssZ (got {value!r})"
        )


def _currency(name: str, value: Any) -> None:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise Invalid(f"{name} must be an ISO 4217 code of three capital letters (got {value!r})")


def _mobile(name: str, value: Any) -> None:
    if not isinstance(value, str) or not _MOBILE.fullmatch(value):
        raise Invalid(f"{name} must start with + and the country code, digits only (got {value!r})")


def _enum(allowed: frozenset[str]):
    def check(name: str, value: Any) -> None:
        if value not in allowed:
            raise Invalid(f"{name} must be one of {', '.join(sorted(allowed))} (got {value!r})")

    return check


def _list_of(fields: dict[str, Any]):
    def check(name: str, value: Any) -> None:
        if not isinstance(value, list):
            raise Invalid(f"{name} must be a list")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise Invalid(f"{name}[{i}] must be an object")
            _check_fields(item, fields, f"{name}[{i}].")

    return check


_address_checks = {field: _string for field in ADDRESS_FIELDS} | {
    "address_type": _enum(ADDRESS_TYPES)
}
_group_checks = {"name": _string, "status": _enum(GROUP_STATUSES)}
_payment_checks = {"amount": _money, "date": _date}


def _check_fields(entry: dict[str, Any], checks: dict[str, Any], prefix: str = "") -> None:
    for name, value in entry.items():
        check = checks.get(name)
        if check is None:
            raise Invalid(f"unknown field {prefix}{name}")
        if value is not None:
            check(prefix + name, value)


@dataclass(frozen=True)
class ObjectRules:
    """How one Chaser object is named, keyed and checked."""

    name: str  # path segment: customers, invoices, credit_notes, ...
    singular: str  # for messages: customer, invoice, credit note
    key_field: str
    id_prefix: str
    required: tuple[str, ...]
    checks: dict[str, Any]
    money_fields: frozenset[str]
    references_customer: bool  # an entry's customer_external_id must name a known customer
    # Lives under a customer (/v1/customers/{customer_id}/...): keys are unique per customer.
    belongs_to_customer: bool = False

    def validate(self, entry: Any) -> None:
        """Raise Invalid with the first broken rule of one payload."""
        if not isinstance(entry, dict):
            raise Invalid(f"a {self.singular} must be a JSON object")
        _check_fields(entry, self.checks)
        for name in self.required:
            value = entry.get(name)
            if value is None or value == "":
                raise Invalid(f"{name} is required")

    def key_of(self, entry: dict[str, Any]) -> str:
        return str(entry[self.key_field])


CUSTOMERS = ObjectRules(
    name="customers",
    singular="customer",
    key_field="external_id",
    id_prefix="cus",
    required=("external_id", "company_name"),
    checks={
        "external_id": _string,
        "company_name": _string,
        "contact_first_name": _string,
        "contact_last_name": _string,
        "contact_email_address": _string,
        "phone_number": _string,
        "mobile_number": _mobile,
        "status": _enum(CUSTOMER_STATUSES),
        "addresses": _list_of(_address_checks),
        "groups": _list_of(_group_checks),
    },
    money_fields=frozenset(),
    references_customer=False,
)

INVOICES = ObjectRules(
    name="invoices",
    singular="invoice",
    key_field="invoice_id",
    id_prefix="inv",
    required=(
        "invoice_id",
        "invoice_number",
        "customer_external_id",
        "status",
        "currency_code",
        "total",
        "amount_paid",
        "amount_due",
        "date",
        "due_date",
    ),
    checks={
        "invoice_id": _string,
        "invoice_number": _string,
        "customer_external_id": _string,
        "status": _enum(INVOICE_STATUSES),
        "currency_code": _currency,
        "sub_total": _money,
        "total": _money,
        "amount_paid": _money,
        "amount_due": _money,
        "date": _date,
        "due_date": _date,
        "fully_paid_date": _date,
        "payments": _list_of(_payment_checks),
    },
    money_fields=frozenset({"sub_total", "total", "amount_paid", "amount_due"}),
    references_customer=True,
)

CREDIT_NOTES = ObjectRules(
    name="credit_notes",
    singular="credit note",
    key_field="credit_note_id",
    id_prefix="crn",
    required=(
        "credit_note_id",
        "credit_note_number",
        "customer_external_id",
        "currency_code",
        "date",
        "total",
        "remaining_credit",
        "status",
    ),
    checks={
        "credit_note_id": _string,
        "credit_note_number": _string,
        "customer_external_id": _string,
        "currency_code": _currency,
        "date": _date,
        "total": _money,
        "remaining_credit": _money,
        "status": _enum(CREDIT_NOTE_STATUSES),
    },
    money_fields=frozenset({"total", "remaining_credit"}),
    references_customer=True,
)

# Contact persons: a customer's extra recipients, addressed through the customer.
CONTACT_PERSONS = ObjectRules(
    name="contact_persons",
    singular="contact person",
    key_field="external_id",
    id_prefix="cp",
    required=("external_id",),
    checks={
        "external_id": _string,
        "contact_first_name": _string,
        "contact_last_name": _string,
        "contact_email_address": _string,
        "phone_number": _string,
        "mobile_number": _mobile,
        "status": _enum(CONTACT_PERSON_STATUSES),
    },
    money_fields=frozenset(),
    references_customer=False,
    belongs_to_customer=True,
)

# Overpayment fields are not documented in what we hold: modelled on credit notes, here only.
OVERPAYMENTS = ObjectRules(
    name="overpayments",
    singular="overpayment",
    key_field="overpayment_id",
    id_prefix="ovp",
    required=(
        "overpayment_id",
        "customer_external_id",
        "currency_code",
        "date",
        "total",
        "remaining_credit",
        "status",
    ),
    checks={
        "overpayment_id": _string,
        "customer_external_id": _string,
        "currency_code": _currency,
        "date": _date,
        "total": _money,
        "remaining_credit": _money,
        "status": _enum(OVERPAYMENT_STATUSES),
    },
    money_fields=frozenset({"total", "remaining_credit"}),
    references_customer=True,
)

OBJECTS: dict[str, ObjectRules] = {
    o.name: o for o in (CUSTOMERS, INVOICES, CREDIT_NOTES, CONTACT_PERSONS, OVERPAYMENTS)
}
# Objects with a path of their own (/v1/{object}); contact persons live under a customer.
TOP_LEVEL_OBJECTS: dict[str, ObjectRules] = {
    name: rules for name, rules in OBJECTS.items() if not rules.belongs_to_customer
}

# Chaser's `ext_` prefix addresses a customer by external id (unknown for the other objects).
EXTERNAL_ID_PREFIX = "ext_"
EXTERNAL_ID_OBJECTS = frozenset({"customers"})

# ---- The documented error contract ----------------------------------------------------------
VALIDATION_ERROR = "validation_error"  # 400: malformed or semantically wrong
FORBIDDEN_ERROR = "forbidden_error"  # 403: the API key or secret is invalid
NOT_FOUND_ERROR = "not_found_error"  # 404: unknown URL or entity
ERROR_URL = "https://openapi.chaserhq.com/docs/#errors/{type}"
FORBIDDEN_MESSAGE = "requested resource is forbidden"
NOT_FOUND_MESSAGE = "entity not found"

# ---- The documented request limit -----------------------------------------------------------
REQUESTS_PER_MINUTE = 200  # per organisation, in any window of RATE_WINDOW_SECONDS
RATE_WINDOW_SECONDS = 60.0
WAIVER_SECONDS = 24 * 3600  # no limit for this long after the organisation is created

# ---- Guesses: what the document does not say --------------------------------------------------
# The document names the 429 and 500 statuses but not their `type`.
RATE_LIMIT_ERROR = "rate_limit_error"  # 429
INTERNAL_ERROR = "internal_server_error"  # 500 (and injected 503)
# Whether a 429 carries Retry-After is not stated: by default it does not (an option adds it).
RETRY_AFTER_ON_429 = False
# A request refused with 429 does not use the budget; requests during the waiver do not either.
# A sliding window counts each admitted request when it arrives.
# An entry naming a customer Chaser does not hold is "semantically wrong": 400, not 404.
UNKNOWN_CUSTOMER_ERROR = VALIDATION_ERROR
# Whether a create (POST) of a key Chaser already holds is an error is unknown: here it is,
# a 400 (never a second record). Bulk upsert is the way to write a record that may exist.
KNOWN_KEY_CREATE_ERROR = VALIDATION_ERROR
# How a bulk answer names its bad entries is unknown: by default a refused bulk request lists
# `errors: [{"index": i, "message": ...}]` beside the message (an option leaves it out, so the
# client must find them by halving). All or nothing: one bad entry and nothing is saved.
BULK_NAMES_BAD_ENTRIES = True

ERROR_STATUS = {
    VALIDATION_ERROR: 400,
    FORBIDDEN_ERROR: 403,
    NOT_FOUND_ERROR: 404,
    RATE_LIMIT_ERROR: 429,
    INTERNAL_ERROR: 500,
}


def error_body(
    error_type: str, message: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Chaser's error body: `{message, type, url}` (plus the `errors` list of a bulk answer)."""
    body: dict[str, Any] = {
        "message": message,
        "type": error_type,
        "url": ERROR_URL.format(type=error_type),
    }
    if errors is not None:
        body["errors"] = errors
    return body


def unknown_customer_message(external_id: str) -> str:
    return f"customer_external_id {external_id!r} does not match any customer; create the customer first"


def exists_message(rules: ObjectRules, key: str) -> str:
    return f"a {rules.singular} with {rules.key_field} {key!r} already exists"


ORGANISATION = {
    "id": "org_emulator",
    "organisation_id": "org_emulator",
    "name": "Chaser Emulator Ltd",
    "legal_name": "Chaser Emulator Ltd",
    "base_currency": "GBP",
    "country_code": "GB",
    "timezone": "Europe/London",
    "last_sync_date": None,
}
