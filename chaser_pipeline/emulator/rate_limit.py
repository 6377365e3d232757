"""Chaser's request limit as the emulator applies it: a sliding window per organisation, and the
first-24-hours waiver of a new organisation.

The numbers (200 requests a minute, 24 hours) and the guesses (no Retry-After, refused requests
not counted) come from `rules`. The window lives in memory, seeded at start from the request log,
so a restarted emulator still remembers its last minute; emulator processes sharing one state
file each keep their own window. The organisation's creation time is kept in the state file, so
a waiver lasts 24 hours however often the emulator restarts.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from chaser_pipeline.emulator import rules
from chaser_pipeline.emulator.store import ORGANISATION_CREATED_AT, EmulatorStore


@dataclass(frozen=True)
class RateLimitConfig:
    """How the emulator limits requests; the defaults are Chaser's documented ones.

    requests_per_minute: admitted requests in any window (None: no limit at all).
    window_seconds: the window's length (tests shorten it; Chaser's is 60 s).
    retry_after: send Retry-After (whole seconds until the window has room) with each 429.
    new_organisation: the organisation was created when the state file first saw this flag,
        so no limit applies for `waiver_seconds` from then.
    """

    requests_per_minute: int | None = rules.REQUESTS_PER_MINUTE
    window_seconds: float = rules.RATE_WINDOW_SECONDS
    retry_after: bool = rules.RETRY_AFTER_ON_429
    new_organisation: bool = False
    waiver_seconds: float = rules.WAIVER_SECONDS

    def __post_init__(self) -> None:
        if self.requests_per_minute is not None and self.requests_per_minute < 1:
            raise ValueError("requests_per_minute must be at least 1 (or None for no limit)")
        if self.window_seconds <= 0 or self.waiver_seconds < 0:
            raise ValueError("window_seconds must be positive and waiver_seconds not negative")


@dataclass(frozen=True)
class Admission:
    """The limit's decision on one request: `refusal` when it is over the limit; `counted`
    when it uses the window (not during the waiver, nor when there is no limit)."""

    counted: bool
    refusal: Refusal | None = None


@dataclass(frozen=True)
class Refusal:
    """A request over the limit: how long until the window has room, and what to send."""

    wait_seconds: float
    message: str

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.wait_seconds)))


class OrganisationRateLimit:
    """The sliding window of one organisation; `admit()` per request, thread-safe."""

    def __init__(
        self,
        config: RateLimitConfig,
        store: EmulatorStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        created = store.meta(ORGANISATION_CREATED_AT)
        if created is None and config.new_organisation:
            created = repr(now)
            with store.transaction():
                store.set_meta(ORGANISATION_CREATED_AT, created)
        self._created_at = float(created) if created is not None else None
        self._counted: deque[float] = deque(store.counted_since(now - config.window_seconds))

    @property
    def waiver_ends_at(self) -> float | None:
        """When the organisation's first-24-hours waiver ends (None: it never had one)."""
        if self._created_at is None:
            return None
        return self._created_at + self.config.waiver_seconds

    def in_waiver(self, now: float | None = None) -> bool:
        ends = self.waiver_ends_at
        return ends is not None and (self._clock() if now is None else now) < ends

    def end_waiver(self) -> None:
        """End the waiver now, as 24 hours passing would (tests need not wait a day)."""
        with self._lock:
            self._created_at = self._clock() - self.config.waiver_seconds
            # A connection of its own: the server's may be inside a transaction in its thread.
            with EmulatorStore(self._store.path) as store, store.transaction():
                store.set_meta(ORGANISATION_CREATED_AT, repr(self._created_at))

    def admit(self) -> Admission:
        """Decide on one arriving request; a refused one is not counted."""
        limit = self.config.requests_per_minute
        if limit is None:
            return _UNCOUNTED
        with self._lock:
            now = self._clock()
            if self.in_waiver(now):
                return _UNCOUNTED
            horizon = now - self.config.window_seconds
            counted = self._counted
            while counted and counted[0] <= horizon:
                counted.popleft()
            if len(counted) < limit:
                counted.append(now)
                return _COUNTED
            wait = counted[len(counted) - limit] + self.config.window_seconds - now
        return Admission(
            False,
            Refusal(
                max(wait, 0.0),
                f"rate limit exceeded: at most {limit} requests in "
                f"{self.config.window_seconds:g} s per organisation",
            ),
        )


_COUNTED = Admission(True)
_UNCOUNTED = Admission(False)
