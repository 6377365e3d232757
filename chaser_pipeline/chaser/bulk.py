"""Bulk upsert: up to 100 entries a request, and the entries Chaser refuses isolated from the rest.

Chaser answers a refused request with 400 `validation_error`; how it names one bad entry among 100
is not documented. Which refusals are about entries is decided in `errors.refuses_entries`; an
answer that names entries (`errors.named_errors`, the guess) settles those and sends the rest
again in one request; an answer that names none is halved until each bad entry stands alone. Bulk upsert matches by key, so sending the good entries again is harmless.
If a request fails otherwise part-way (network, 403, deadline), the error carries what was
settled before (`ChaserError.settled`), so the caller can record it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaser_pipeline.chaser.encoding import EncodedEntries, RawJSON
from chaser_pipeline.chaser.errors import (
    ChaserError,
    error_message,
    named_errors,
    refuses_entries,
)

BULK_LIMIT = 100


@dataclass(frozen=True)
class EntrySuccess:
    """An entry of a bulk upsert that Chaser accepted; chaser_id is known for inserts only."""

    index: int
    key: str | None
    chaser_id: str | None


@dataclass(frozen=True)
class EntryFailure:
    """An entry of a bulk upsert that Chaser refused, with Chaser's reason."""

    index: int
    key: str | None
    status: int
    message: str


@dataclass
class BulkOutcome:
    """The result of one `bulk_upsert` call; indexes refer to the entries passed in.

    Every entry ends up accepted or failed. `accepted` holds the indexes and `chaser_ids` the id
    Chaser gave each inserted entry (by index), so a large sync reads plain ints;
    `succeeded` builds the same as EntrySuccess objects, with their keys, when asked."""

    failed: list[EntryFailure] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    chaser_ids: dict[int, str | None] = field(default_factory=dict)
    requests: int = 0
    key_of: Callable[[int], str | None] = field(
        default=lambda index: None, repr=False, compare=False
    )

    @property
    def succeeded(self) -> list[EntrySuccess]:
        return [EntrySuccess(i, self.key_of(i), self.chaser_ids.get(i)) for i in self.accepted]


# Sends one bulk request ({"entries": [...]}); returns (parsed body, HTTP status).
SendBulk = Callable[[Any], Awaitable[tuple[Any, int]]]


def entry_key(entry: Any, key_field: str) -> str | None:
    """The key of one entry: a pre-encoded entry carries it, a payload holds it."""
    return entry.key if isinstance(entry, RawJSON) else entry.get(key_field)


def refused_outcome(
    encoded: Sequence[Any], key_field: str, status: int, message: str
) -> BulkOutcome:
    """The outcome of a bulk upsert whose every entry was refused for one reason."""
    return BulkOutcome(
        failed=[
            EntryFailure(i, entry_key(encoded[i], key_field), status, message)
            for i in range(len(encoded))
        ],
        requests=1,
        key_of=lambda i: entry_key(encoded[i], key_field),
    )


class BulkUpsert:
    """One bulk upsert call: sends the entries, isolates refused ones, fills a BulkOutcome."""

    def __init__(self, send: SendBulk, encoded: Sequence[Any], key_field: str) -> None:
        self.send = send
        self.encoded = encoded
        self.key_field = key_field
        self.outcome = BulkOutcome(key_of=lambda index: self.key(encoded[index]))

    def key(self, entry: Any) -> str | None:
        return entry_key(entry, self.key_field)

    async def run(self) -> BulkOutcome:
        try:
            if self.encoded:
                await self._send(list(range(len(self.encoded))))
        except ChaserError as exc:
            exc.settled = self._sorted()
            raise
        return self._sorted()

    def _sorted(self) -> BulkOutcome:
        self.outcome.accepted.sort()
        self.outcome.failed.sort(key=lambda f: f.index)
        return self.outcome

    def _entries(self, indexes: list[int]) -> Any:
        if isinstance(self.encoded, EncodedEntries) and len(indexes) == len(self.encoded):
            return self.encoded.array  # all of them, as DuckDB joined them
        return [self.encoded[i] for i in indexes]

    async def _send(self, indexes: list[int]) -> None:
        self.outcome.requests += 1
        try:
            body, status = await self.send(self._entries(indexes))
        except ChaserError as exc:
            if not refuses_entries(exc, len(indexes)):
                raise
            await self._isolate(indexes, exc.status or 400, exc.body)
            return
        errors = body.get("errors") if isinstance(body, dict) else None
        named = named_errors(body, len(indexes))
        if isinstance(errors, list) and errors and not named:
            # A 2xx that reports errors without saying which entries: find them as for a 4xx.
            await self._isolate(indexes, status, body)
            return
        self._settle(indexes, named, status, body)

    def _settle(self, indexes: list[int], named: dict[int, str], status: int, body: Any) -> None:
        """Record an answered request: named entries failed, the others accepted."""
        outcome = self.outcome
        for position, message in named.items():
            self._fail(indexes[position], status, message)
        outcome.accepted.extend(i for p, i in enumerate(indexes) if p not in named)
        data = (body or {}).get("data") or {}
        for item in data.get("inserted_ids") or []:
            if not isinstance(item, dict) or not isinstance(item.get("index"), int):
                continue
            position = item["index"]
            if position not in named and 0 <= position < len(indexes):
                outcome.chaser_ids[indexes[position]] = item.get("id")

    def _fail(self, index: int, status: int, message: str) -> None:
        self.outcome.failed.append(
            EntryFailure(index, self.key(self.encoded[index]), status, message)
        )

    async def _isolate(self, indexes: list[int], status: int, body: Any) -> None:
        named = named_errors(body, len(indexes))
        if named:
            # Chaser named the bad entries: record them, send the rest again in one request.
            for position, message in named.items():
                self._fail(indexes[position], status, message)
            rest = [index for position, index in enumerate(indexes) if position not in named]
            if rest:
                await self._send(rest)
            return
        if len(indexes) == 1:
            self._fail(indexes[0], status, error_message(body))
            return
        # No entry named: halve until each bad entry stands alone.
        middle = len(indexes) // 2
        await self._send(indexes[:middle])
        await self._send(indexes[middle:])
