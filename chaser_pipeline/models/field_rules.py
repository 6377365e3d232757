"""Field rules a library does better than SQL: E.164 phone numbers, e-mail addresses, ISO 4217.

`register_field_rules(con, default_country)` registers them on a DuckDB connection as vectorised
Arrow UDFs, which the SQL models call by name:

- `chaser_e164(value VARCHAR, country VARCHAR) -> VARCHAR`: the number in E.164 (`+447700900123`).
  A number without a country code is read in `country` when that is an ISO 3166 alpha-2 code the
  library knows (the customer's own address), else in the default country; NULL when it cannot be
  a phone number.
- `chaser_valid_email(value VARCHAR) -> VARCHAR`: the address in its normalised form when it is a
  valid e-mail address (syntax only, no DNS look-up); NULL otherwise.
- `chaser_is_iso4217(value VARCHAR) -> BOOLEAN`: whether the value is an ISO 4217 currency code
  (not XXX "no currency", XTS "testing", a precious metal or a bond-market unit).

DuckDB hands each UDF a whole column chunk; the library runs once per distinct value of the chunk
(and a bounded cache remembers values across chunks), never once per row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import lru_cache

import duckdb
import email_validator
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import pycountry

_CACHE_SIZE = 1_000_000
E164_MAX_DIGITS = 15


@lru_cache(maxsize=_CACHE_SIZE)
def e164_phone_number(value: str, default_country: str) -> str | None:
    """The number in E.164, or None when it cannot be a phone number in `default_country`'s plan."""
    try:
        number = phonenumbers.parse(value, default_country)
    except phonenumbers.NumberParseException:
        return None
    # "Possible" (a plausible length for the country), not "valid": numbering plans change faster
    # than the library's metadata, and Ofcom's drama range (07700 900xxx) is not "valid" either.
    if not phonenumbers.is_possible_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # E.164 allows at most 15 digits, but the metadata's possible lengths allow more for a few
    # plans (a German mobile of 17 digits): such a number is not one Chaser can text.
    return e164 if len(e164) - 1 <= E164_MAX_DIGITS else None


@lru_cache(maxsize=_CACHE_SIZE)
def valid_email_address(value: str) -> str | None:
    """The normalised address when `value` is a syntactically valid e-mail address, else None."""
    try:
        return email_validator.validate_email(value, check_deliverability=False).normalized
    except email_validator.EmailNotValidError:
        return None


# ISO 4217 codes no document is issued in: "no currency" (XXX), testing (XTS), precious metals
# and bond-market units. A ledger that writes XXX means it has no currency for the document.
NOT_MONEY = frozenset({"XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD"})


@lru_cache(maxsize=1)
def iso4217_codes() -> pa.Array:
    """Every ISO 4217 alphabetic code of a currency (not NOT_MONEY), as an Arrow array (the UDF's
    lookup set)."""
    codes = {currency.alpha_3 for currency in pycountry.currencies} - NOT_MONEY
    return pa.array(sorted(codes), pa.string())


def _per_distinct_value(rule: Callable[[str], str | None]) -> Callable[[pa.ChunkedArray], pa.Array]:
    """Lift a per-value rule to an Arrow UDF that runs it once per distinct value of the chunk."""

    def apply(values: pa.ChunkedArray | pa.Array) -> pa.Array:
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        distinct = pc.unique(values).drop_null()
        results = pa.array([rule(value) for value in distinct.to_pylist()], pa.string())
        return pc.take(results, pc.index_in(values, value_set=distinct))

    return apply


def _is_iso4217(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.is_in(values, value_set=iso4217_codes())


def _e164_udf(default_country: str) -> Callable[[pa.ChunkedArray, pa.ChunkedArray], pa.Array]:
    """chaser_e164(value, country): the library runs once per distinct (region, value) pair."""
    regions = pa.array(sorted(phonenumbers.SUPPORTED_REGIONS), pa.string())

    def apply(
        values: pa.ChunkedArray | pa.Array, countries: pa.ChunkedArray | pa.Array
    ) -> pa.Array:
        code = pc.utf8_upper(pc.utf8_trim_whitespace(countries))
        region = pc.if_else(pc.is_in(code, value_set=regions), code, default_country)
        # one key per (region, number); NULL when the number is NULL
        keys = pc.binary_join_element_wise(region, values, "\x1f")
        if isinstance(keys, pa.ChunkedArray):
            keys = keys.combine_chunks()
        distinct = pc.unique(keys).drop_null()
        results = [
            e164_phone_number(number, country)
            for country, number in (key.split("\x1f", 1) for key in distinct.to_pylist())
        ]
        return pc.take(pa.array(results, pa.string()), pc.index_in(keys, value_set=distinct))

    return apply


def register_field_rules(con: duckdb.DuckDBPyConnection, default_country: str) -> None:
    """Register the field-rule UDFs on `con`; call it on every connection before running models.

    `default_country` (CHASER_DEFAULT_COUNTRY, ISO 3166 alpha-2) is the country assumed for phone
    numbers written without a country code when the customer's own country is not a known code.
    Registering again on one connection replaces the functions.
    """
    country = default_country.strip().upper()
    if country not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"CHASER_DEFAULT_COUNTRY={default_country!r} is not an ISO 3166 country code "
            "that phone numbers can be read with (for example GB, US, FR)"
        )

    udfs: list[tuple[str, Callable[..., pa.Array], list[str], str]] = [
        ("chaser_e164", _e164_udf(country), ["VARCHAR", "VARCHAR"], "VARCHAR"),
        ("chaser_valid_email", _per_distinct_value(valid_email_address), ["VARCHAR"], "VARCHAR"),
        ("chaser_is_iso4217", _is_iso4217, ["VARCHAR"], "BOOLEAN"),
    ]
    for name, function, parameters, return_type in udfs:
        # Registering again (a new default country) replaces the earlier function.
        with contextlib.suppress(duckdb.InvalidInputException):
            con.remove_function(name)
        # "special": the UDF sees NULLs itself (NULL in gives NULL out) and may return NULL.
        con.create_function(
            name, function, parameters, return_type, type="arrow", null_handling="special"
        )
