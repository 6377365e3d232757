"""One encoding of payloads for every Chaser object, and a JSON writer that keeps money exact.

Chaser wants money as JSON numbers and dates as `YYYY-MM-DDTHH:mm:ss.sssZ` in UTC. The ledger
holds money as DECIMAL(18,2); a binary float on the way (0.1 + 0.2 = 0.30000000000000004) would
send a value nobody booked, so money stays `Decimal` until the bytes are written by `dumps`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

# Fields that hold money in any Chaser payload (invoice, credit note, payment). An int or float
# found here is money too and gets two decimals; elsewhere only Decimal values do.
MONEY_FIELDS = frozenset(
    {"total", "sub_total", "amount_paid", "amount_due", "remaining_credit", "amount"}
)

_CENTS = Decimal("0.01")


def encode_money(value: Decimal | int | float) -> Decimal:
    """A money value as a Decimal with exactly two decimals (half up, as accountants round)."""
    if isinstance(value, bool):
        raise TypeError(f"a boolean is not money: {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"money must be a finite number, got {value!r}")
        # repr() is the shortest decimal that reads back as this float: 0.1 + 0.2 -> 0.30000000000000004
        value = Decimal(repr(value))
    elif isinstance(value, int):
        value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"money must be a finite number, got {value!r}")
    return value.quantize(_CENTS, rounding=ROUND_HALF_UP)


def encode_timestamp(value: dt.date | dt.datetime) -> str:
    """A date or datetime as `YYYY-MM-DDTHH:mm:ss.sssZ` in UTC; a naive datetime is taken as UTC."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
    else:
        value = dt.datetime(value.year, value.month, value.day)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _encode_value(value: Any, *, money: bool) -> Any:
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, Decimal):
        return encode_money(value)
    if isinstance(value, int | float):
        return encode_money(value) if money else value
    if isinstance(value, dt.date):  # datetime is a date too
        return encode_timestamp(value)
    if isinstance(value, Mapping):
        return encode_payload(value)
    if isinstance(value, list | tuple):
        return [_encode_value(item, money=money) for item in value]
    raise TypeError(f"cannot encode {type(value).__name__} for Chaser: {value!r}")


def encode_payload(record: Mapping[str, Any]) -> dict[str, Any]:
    """Turn one record (a row of a mart, maybe with nested addresses) into a Chaser payload.

    Money becomes a two-decimal Decimal, dates become UTC timestamp strings, None stays null,
    strings pass through unchanged, lists and mappings are encoded recursively.
    """
    return {
        str(key): _encode_value(value, money=key in MONEY_FIELDS) for key, value in record.items()
    }


class RawJSON(str):
    """JSON text already encoded (DuckDB's `to_json` of a mart row): `dumps` writes it as is.

    `key` is the entry's key (its external id), so a bulk outcome can name the entry."""

    key: str | None

    def __new__(cls, text: str, key: str | None = None) -> RawJSON:
        raw = super().__new__(cls, text)
        raw.key = key
        return raw


class EncodedEntries(Sequence[RawJSON]):
    """The entries of one bulk request, already encoded, with the JSON array of all of them.

    A million-row sync sends `array` (the entries joined by DuckDB) and makes no Python object
    per entry; `entry(i)` builds entry i (its text and key) only when the client must tell
    entries apart, i.e. when Chaser refuses some of them."""

    def __init__(
        self,
        array: str,
        size: int,
        entry: Callable[[int], RawJSON],
        lengths: Callable[[], tuple[list[int], list[str | None]]] | None = None,
    ) -> None:
        self.array = RawJSON(array)
        self._size = size
        self._entry = entry
        self._lengths = lengths

    def lengths(self) -> tuple[list[int], list[str | None]]:
        """Every entry's length in `array` (characters; the entries are joined by ",") and its
        key: what another process needs to tell the entries apart. Made at once where the
        entries come from a column."""
        if self._lengths is not None:
            return self._lengths()
        entries = [self._entry(i) for i in range(self._size)]
        return [len(e) for e in entries], [e.key for e in entries]

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: Any) -> Any:  # an int gives a RawJSON, a slice a list of them
        if isinstance(index, slice):
            return [self._entry(i) for i in range(*index.indices(self._size))]
        if not -self._size <= index < self._size:
            raise IndexError(index)
        return self._entry(index % self._size)


_encode_str = json.encoder.encode_basestring_ascii  # C-accelerated; ASCII output is always valid


def _write(obj: Any, out: list[str]) -> None:
    if type(obj) is RawJSON:
        out.append(obj)
    elif isinstance(obj, str):
        out.append(_encode_str(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"cannot write {obj!r} as JSON")
        out.append(format(obj, "f"))
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"cannot write {obj!r} as JSON")
        out.append(float.__repr__(obj))
    elif isinstance(obj, Mapping):
        out.append("{")
        first = True
        for key, value in obj.items():
            if not first:
                out.append(",")
            first = False
            out.append(_encode_str(str(key)))
            out.append(":")
            _write(value, out)
        out.append("}")
    elif isinstance(obj, list | tuple):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _write(value, out)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(obj).__name__} as JSON: {obj!r}")


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes in which a Decimal is written digit for digit (10.50 stays 10.50)."""
    out: list[str] = []
    _write(obj, out)
    # UTF-8: RawJSON text from DuckDB keeps non-ASCII characters as they are (valid JSON)
    return "".join(out).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse JSON keeping every non-integer number as a Decimal, so money reads back exactly."""
    return json.loads(data, parse_float=Decimal)
