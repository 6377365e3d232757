"""When to retry a request to Chaser, and how long to wait first: small named steps.

Everything the client guesses about answers the API does not document (what a 408 or 503
means, whether a 429 carries Retry-After) is decided here and in `errors.error_for_status`.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field

# A 5xx may succeed on a retry (Chaser documents 500); 408 is a proxy's timeout.
RETRYABLE_STATUS = frozenset({408}) | frozenset(range(500, 600))
RATE_LIMITED_STATUS = 429


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
    return max(0.0, seconds)


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
