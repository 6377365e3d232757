"""Trouble on demand: latency, 429s, 5xx, connections dropped after a write, and the faults of a
Chaser that goes wrong mid-run: silent (accepts, never answers), an outage (stops listening) and
revoked credentials (403 from then on).

Random decisions come from a seeded generator, one per server, so a run can be repeated. With
`first_attempt_only`, a given request (method, path, query and body) is hit by at most one random
fault: its retry goes through, which makes "fails once, then succeeds" tests deterministic. The
mid-run faults start after a number of requests (`..._after`: that many are served first).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from chaser_pipeline.emulator import rules


@dataclass(frozen=True)
class FaultConfig:
    """Faults one emulator server injects; all off by default."""

    latency_ms: float = 0.0  # added to every request
    rate_429: float = 0.0  # share of requests answered 429
    retry_after: float | None = None  # Retry-After seconds on those 429s (None: no header)
    rate_5xx: float = 0.0  # share of requests answered 500 or 503
    server_error_status: int | None = None  # the status of those (None: 500 or 503 at random)
    rate_drop: float = 0.0  # share of successful writes whose connection drops after commit
    first_attempt_only: bool = False  # each distinct request suffers at most one random fault
    silent_after: int | None = None  # then every request is accepted and never answered
    outage_after: int | None = None  # then the server stops listening (connections refused)
    forbidden_after: int | None = None  # then the credentials are revoked: 403 to everything
    seed: int | None = 0

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_5xx", "rate_drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.latency_ms < 0 or (self.retry_after is not None and self.retry_after < 0):
            raise ValueError("latency_ms and retry_after cannot be negative")
        if self.server_error_status is not None and not 500 <= self.server_error_status <= 599:
            raise ValueError(f"server_error_status must be a 5xx, got {self.server_error_status}")
        for name in ("silent_after", "outage_after", "forbidden_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} cannot be negative, got {value}")

    @property
    def active(self) -> bool:
        return bool(
            self.latency_ms
            or self.rate_429
            or self.rate_5xx
            or self.rate_drop
            or self.silent_after is not None
            or self.outage_after is not None
            or self.forbidden_after is not None
        )


@dataclass(frozen=True)
class Fault:
    """An injected answer instead of the real one."""

    kind: str  # "429", "5xx", "forbidden"
    status: int
    error_type: str
    retry_after: float | None
    message: str

    def body(self) -> dict[str, str]:
        return rules.error_body(self.error_type, self.message)


class FaultInjector:
    """Decides, request by request, which fault (if any) to inject; used by one event loop."""

    def __init__(self, config: FaultConfig | None) -> None:
        self.config = config or FaultConfig()
        self._random = random.Random(self.config.seed)
        self._faulted: set[bytes] = set()
        self._count_lock = threading.Lock()
        self._arrived = 0

    def arrive(self) -> int:
        """Count one arriving request; returns its number (1 for the first)."""
        with self._count_lock:
            self._arrived += 1
            return self._arrived

    def _past(self, limit: int | None, number: int) -> bool:
        return limit is not None and number > limit

    def silent(self, number: int) -> bool:
        """Whether request `number` is never answered."""
        return self._past(self.config.silent_after, number)

    def outage(self, number: int) -> bool:
        """Whether request `number` finds the server down."""
        return self._past(self.config.outage_after, number)

    def _eligible(self, signature: bytes) -> bool:
        return not (self.config.first_attempt_only and signature in self._faulted)

    def _mark(self, signature: bytes) -> None:
        if self.config.first_attempt_only:
            self._faulted.add(signature)

    def before(self, signature: bytes, number: int) -> Fault | None:
        """A fault to answer with instead of handling the request, or None."""
        config = self.config
        if self._past(config.forbidden_after, number):
            return Fault("forbidden", 403, rules.FORBIDDEN_ERROR, None, rules.FORBIDDEN_MESSAGE)
        if not self._eligible(signature):
            return None
        if config.rate_429 and self._random.random() < config.rate_429:
            self._mark(signature)
            return Fault(
                "429",
                429,
                rules.RATE_LIMIT_ERROR,
                config.retry_after,
                "too many requests (injected)",
            )
        if config.rate_5xx and self._random.random() < config.rate_5xx:
            self._mark(signature)
            status = config.server_error_status or self._random.choice((500, 503))
            return Fault(
                "5xx", status, rules.INTERNAL_ERROR, None, f"injected server error {status}"
            )
        return None

    def drop_after_commit(self, signature: bytes) -> bool:
        """Whether to drop the connection of a write that has just been applied."""
        if not self.config.rate_drop or not self._eligible(signature):
            return False
        if self._random.random() < self.config.rate_drop:
            self._mark(signature)
            return True
        return False
