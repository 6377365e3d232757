"""Trouble on demand: latency, 429s, 5xx, connections dropped after a write, a hard rate limit.

Decisions come from a seeded random generator, one per server, so a run can be repeated.
With `first_attempt_only`, a given request (method, path, query and body) is hit by at most one
fault: its retry goes through, which makes "fails once, then succeeds" tests deterministic.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class FaultConfig:
    """Faults one emulator server injects; all off by default."""

    latency_ms: float = 0.0  # added to every request
    rate_429: float = 0.0  # share of requests answered 429 with Retry-After
    retry_after: float = 1.0  # seconds sent in Retry-After (fractions allowed, e.g. 0.05)
    rate_5xx: float = 0.0  # share of requests answered 500 or 503
    rate_drop: float = 0.0  # share of successful writes whose connection drops after commit
    max_rps: float | None = None  # hard limit; above it requests get 429 + Retry-After
    first_attempt_only: bool = False  # each distinct request suffers at most one fault
    seed: int | None = 0

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_5xx", "rate_drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.latency_ms < 0 or self.retry_after < 0:
            raise ValueError("latency_ms and retry_after cannot be negative")
        if self.max_rps is not None and self.max_rps <= 0:
            raise ValueError("max_rps must be positive")

    @property
    def active(self) -> bool:
        return bool(
            self.latency_ms or self.rate_429 or self.rate_5xx or self.rate_drop or self.max_rps
        )


@dataclass(frozen=True)
class Fault:
    """An injected answer instead of the real one."""

    kind: str  # "429", "rate_limit", "5xx"
    status: int
    retry_after: float | None
    message: str


class FaultInjector:
    """Decides, request by request, which fault (if any) to inject; used by one event loop."""

    def __init__(self, config: FaultConfig | None) -> None:
        self.config = config or FaultConfig()
        self._random = random.Random(self.config.seed)
        self._faulted: set[bytes] = set()
        self._tokens = float(self.config.max_rps or 0.0)
        self._refilled = time.monotonic()

    def _eligible(self, signature: bytes) -> bool:
        return not (self.config.first_attempt_only and signature in self._faulted)

    def _mark(self, signature: bytes) -> None:
        if self.config.first_attempt_only:
            self._faulted.add(signature)

    def before(self, signature: bytes) -> Fault | None:
        """A fault to answer with instead of handling the request, or None."""
        config = self.config
        if config.max_rps:
            # Token bucket holding one second of requests.
            now = time.monotonic()
            self._tokens = min(
                max(config.max_rps, 1.0), self._tokens + (now - self._refilled) * config.max_rps
            )
            self._refilled = now
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / config.max_rps
                return Fault(
                    "rate_limit", 429, wait, f"rate limit of {config.max_rps:g} requests/s exceeded"
                )
            self._tokens -= 1.0
        if not self._eligible(signature):
            return None
        if config.rate_429 and self._random.random() < config.rate_429:
            self._mark(signature)
            return Fault("429", 429, config.retry_after, "too many requests (injected)")
        if config.rate_5xx and self._random.random() < config.rate_5xx:
            self._mark(signature)
            status = self._random.choice((500, 503))
            return Fault("5xx", status, None, f"injected server error {status}")
        return None

    def drop_after_commit(self, signature: bytes) -> bool:
        """Whether to drop the connection of a write that has just been applied."""
        if not self.config.rate_drop or not self._eligible(signature):
            return False
        if self._random.random() < self.config.rate_drop:
            self._mark(signature)
            return True
        return False
