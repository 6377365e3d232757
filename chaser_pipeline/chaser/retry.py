"""When to send a request to Chaser again, how long to wait first, and what a failure may mean.

Chaser documents 500 as "retry" and 429 as "over 200 requests a minute"; everything else the
client has to guess lives here (and in `errors`): which other statuses are worth another try,
which rate-limit headers to believe, and which failures may have left a write applied.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

# Chaser documents 500; 502-504 come from proxies and load balancers in front of it, 408 is a
# proxy's timeout. All of them may succeed when the same request is sent again.
RETRYABLE_STATUS = frozenset({408}) | frozenset(range(500, 600))
RATE_LIMITED_STATUS = 429

# Whether a 429 carries these is not documented: Retry-After is believed when present, then a
# reset time (seconds from now, or an epoch time when it is that large).
RESET_HEADERS = ("x-ratelimit-reset", "ratelimit-reset")
_EPOCH_THRESHOLD = 1_000_000_000


def should_retry(status: int) -> bool:
    """Whether an error answer may succeed if the same request is sent again."""
    return status in RETRYABLE_STATUS


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number (fractions allowed) or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer


def rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """How long a 429 asks to wait, if it says: Retry-After, else a rate-limit reset header.

    None means the answer does not say; the budget then waits until its window has room."""
    retry_after = parse_retry_after(headers.get("retry-after"))
    if retry_after is not None:
        return retry_after
    for name in RESET_HEADERS:
        raw = headers.get(name)
        try:
            value = float(raw) if raw else None
        except ValueError:
            value = None
        if value is not None and value == value:
            return max(0.0, value - time.time() if value > _EPOCH_THRESHOLD else value)
    return None


def never_reached_chaser(exc: BaseException) -> bool:
    """Whether a failed attempt certainly never reached Chaser (no connection was made).

    Any other failure (a dropped connection, no answer in time, a 5xx) may have come after
    Chaser applied the request: a create must look its key up before it is sent again."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.UnsupportedProtocol)


@dataclass
class Backoff:
    """Exponential backoff with full jitter: spreads the retries of many workers apart."""

    base: float = 0.5
    ceiling: float = 30.0
    random: random.Random = field(default_factory=random.Random)

    def delay(self, failures: int) -> float:
        """How long to wait before attempt `failures + 1`."""
        top = min(self.ceiling, self.base * (2 ** max(0, failures - 1)))
        return self.random.uniform(0, top)
