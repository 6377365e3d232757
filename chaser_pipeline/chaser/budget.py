"""The request budget of a run: at most N requests in any 60 s window, shared by every client.

Chaser allows 200 requests a minute per organisation (waived for the organisation's first 24
hours). One `RequestBudget` paces every request of a run, reads included, across all the
`ChaserClient`s given it, and across event loops (the sync runs one per object): its state is
guarded by a thread lock and waits are plain `asyncio.sleep`s in the caller's loop.

A request holds its slot from the moment it is sent; when its answer arrives the slot is dated
then. Chaser counts a request when it arrives, which is between the two, so a window that never
holds more than N of these slots never makes Chaser count more than N, whatever the latency.

The slot times (wall clock, epoch seconds) can be read with `recent()` and passed to the next
run's budget, so a run that starts right after another does not burst into a full window.
"""

from __future__ import annotations

import asyncio
import heapq
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chaser_pipeline.chaser.errors import DeadlineExceededError

DEFAULT_REQUESTS_PER_MINUTE = 200
WINDOW_SECONDS = 60.0
# When only requests still in flight fill the window, look again this often.
_IN_FLIGHT_POLL_SECONDS = 0.05


@dataclass
class BudgetStats:
    """What the run has spent: requests sent, 429s received, seconds spent waiting for room."""

    requests: int = 0
    rate_limited: int = 0
    waited_seconds: float = 0.0


class RequestBudget:
    """A sliding window of `requests_per_minute` requests, shared by every client of one run.

    `requests_per_minute=None` paces nothing (a local sink, a benchmark). `initial_load=True` is
    for an organisation still in its first-24-hours waiver: no pacing until Chaser answers 429,
    then the budget applies from that moment on and `fell_back_at` says when.
    """

    def __init__(
        self,
        requests_per_minute: int | None = DEFAULT_REQUESTS_PER_MINUTE,
        *,
        recent: Iterable[float] = (),
        initial_load: bool = False,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if requests_per_minute is not None and requests_per_minute < 1:
            raise ValueError("requests_per_minute must be at least 1 (or None for no budget)")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.requests_per_minute = requests_per_minute
        self.window_seconds = window_seconds
        self.stats = BudgetStats()
        self.fell_back_at: float | None = None
        self._clock = clock
        self._initial_load = initial_load
        self._lock = threading.Lock()
        now = clock()
        # Answered requests, oldest first; a time in the future (another host's clock) counts as now.
        self._answered: deque[float] = deque(
            sorted(min(float(t), now) for t in recent if float(t) > now - window_seconds)
        )
        self._in_flight = 0
        self._paused_until = 0.0
        # One FIFO gate per event loop: waiters take slots in the order they asked.
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        mode = " initial_load" if self._initial_load else ""
        return (
            f"RequestBudget({self.requests_per_minute} per {self.window_seconds:g} s{mode}, "
            f"{len(self.recent())} in the window)"
        )

    @property
    def initial_load(self) -> bool:
        """True while the budget is not pacing because the organisation is in its waiver."""
        return self._initial_load

    @property
    def fell_back(self) -> bool:
        """True when an initial load met a 429 and the budget has paced since."""
        return self.fell_back_at is not None

    def recent(self) -> list[float]:
        """The times (epoch seconds) of the requests in the current window, oldest first;
        requests still in flight count as now. Feed them to the next run's budget."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            return [*self._answered, *([now] * self._in_flight)]

    def room_in(self) -> float:
        """Seconds until one more request fits the window (0: now), as things stand."""
        with self._lock:
            return max(0.0, self._wait(self._clock()))

    def forecast(self, requests: int) -> str:
        """How long `requests` write requests take at this budget, as a sentence for a dry run
        or metadata."""
        return describe_forecast(requests, self.requests_per_minute, self.window_seconds)

    async def acquire(self, *, deadline: float | None = None) -> float:
        """Wait until the window has room, then hold a slot; return the seconds waited.

        Raises DeadlineExceededError, without waiting, when room would come after `deadline`
        (epoch seconds). Every acquire must be followed by one `release()`."""
        started = time.monotonic()
        async with self._gate():
            while True:
                with self._lock:
                    now = self._clock()
                    wait = self._wait(now)
                    if wait <= 0:
                        self._in_flight += 1
                        self.stats.requests += 1
                        waited = time.monotonic() - started
                        self.stats.waited_seconds += waited
                        return waited
                if deadline is not None and now + wait > deadline:
                    self.stats.waited_seconds += time.monotonic() - started
                    raise DeadlineExceededError(
                        f"the run's deadline comes in {max(0.0, deadline - now):.0f} s, before "
                        f"the request budget ({self.rate_text}) has room in {wait:.0f} s"
                    )
                await asyncio.sleep(wait)

    def release(self) -> None:
        """The request holding a slot was answered (or failed): date its slot now."""
        with self._lock:
            now = self._clock()
            self._in_flight = max(0, self._in_flight - 1)
            if self._answered and self._answered[-1] > now:  # the clock stepped back
                now = self._answered[-1]
            self._answered.append(now)
            self._prune(now)

    def unused(self) -> None:
        """A slot was acquired but its request was never sent: give it back undated (the
        window holds only requests Chaser may have counted)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self.stats.requests = max(0, self.stats.requests - 1)

    def rate_limited(self, retry_after: float | None) -> float:
        """Chaser answered 429: hold every request of the budget back; return the pause (s).

        With Retry-After, as long as Chaser asks. Without, until the oldest request in the
        window leaves it: the earliest moment the window can have room as far as this run
        knows. An initial load stops here and paces from now on."""
        with self._lock:
            now = self._clock()
            self.stats.rate_limited += 1
            if self._initial_load:
                self._initial_load = False
                self.fell_back_at = now
            if retry_after is not None:
                until = now + retry_after
            else:
                self._prune(now)
                oldest = self._answered[0] if self._answered else now
                until = oldest + self.window_seconds
            self._paused_until = max(self._paused_until, until)
            return self._paused_until - now

    def absorb(
        self,
        answered: Iterable[float],
        stats: BudgetStats,
        *,
        fell_back_at: float | None,
        paused_until: float,
    ) -> None:
        """Take in what a budget in another process spent on this one's behalf (see
        `chaser.send_process`): the times of its requests, its counts, the end of the waiver it
        met (if it did) and a pause Chaser asked for."""
        added = sorted(answered)
        with self._lock:
            if added and self._answered and added[0] < self._answered[-1]:
                self._answered = deque(heapq.merge(self._answered, added))
            else:  # the usual case: newer than every slot here
                self._answered.extend(added)
            self._prune(self._clock())
            self.stats.requests += stats.requests
            self.stats.rate_limited += stats.rate_limited
            self.stats.waited_seconds += stats.waited_seconds
            if fell_back_at is not None and self._initial_load:
                self._initial_load = False
                self.fell_back_at = fell_back_at
            self._paused_until = max(self._paused_until, paused_until)

    def handover(self) -> dict[str, float | None]:
        """What `absorb` takes, from this budget (the one in the other process)."""
        with self._lock:
            return {"fell_back_at": self.fell_back_at, "paused_until": self._paused_until}

    def _gate(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._lock:
            gate = self._gates.get(loop)
            if gate is None:
                gate = self._gates[loop] = asyncio.Lock()
            return gate

    def _prune(self, now: float) -> None:
        horizon = now - self.window_seconds
        answered = self._answered
        while answered and answered[0] <= horizon:
            answered.popleft()

    def _wait(self, now: float) -> float:
        """Seconds until one more request fits (0: now). Call with the lock held."""
        if self._paused_until > now:
            return self._paused_until - now
        limit = self.requests_per_minute
        if limit is None or self._initial_load:
            return 0.0
        self._prune(now)
        used = len(self._answered) + self._in_flight
        if used < limit:
            return 0.0
        leaving = used - limit  # this many more must leave the window before one fits
        if leaving < len(self._answered):
            return max(self._answered[leaving] + self.window_seconds - now, 0.001)
        return _IN_FLIGHT_POLL_SECONDS

    @property
    def rate_text(self) -> str:
        """The budget in words: "200 a minute"."""
        return _rate_text(self.requests_per_minute, self.window_seconds)

    def fallback_message(self) -> str | None:
        """What to tell the user when an initial load met a 429 (None when it did not)."""
        if self.fell_back_at is None:
            return None
        when = time.strftime("%H:%M:%S UTC", time.gmtime(self.fell_back_at))
        return (
            f"Chaser answered 429 at {when} during the initial load: the organisation's "
            f"first-24-hours waiver is over, so requests were paced at {self.rate_text} from then on"
        )

    def waiver_over_message(self, over_at: float) -> str:
        """What to tell the user when an initial load is asked for after Chaser ended the
        waiver in an earlier step or run."""
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(over_at))
        return (
            f"initial load asked for, but Chaser ended the organisation's first-24-hours waiver "
            f"(a 429 at {when}, in an earlier step or run): requests are paced at "
            f"{self.rate_text}"
        )


def forecast_seconds(
    requests: int,
    requests_per_minute: int | None = DEFAULT_REQUESTS_PER_MINUTE,
    window_seconds: float = WINDOW_SECONDS,
) -> float:
    """Seconds `requests` take at a steady `requests_per_minute` (0 when nothing paces)."""
    if requests < 0:
        raise ValueError("requests cannot be negative")
    if requests_per_minute is None:
        return 0.0
    return requests * window_seconds / requests_per_minute


# What a forecast leaves out: the sync checks its organisation once per run.
FORECAST_READS_NOTE = "reads not counted (one GET /v1/organisation a run)"


def describe_forecast(
    requests: int,
    requests_per_minute: int | None = DEFAULT_REQUESTS_PER_MINUTE,
    window_seconds: float = WINDOW_SECONDS,
) -> str:
    """`requests` write requests in words, e.g. "412 write requests, about 2 min 4 s at 200 a
    minute; reads not counted (one GET /v1/organisation a run)"."""
    noun = "write request" if requests == 1 else "write requests"
    if requests_per_minute is None:
        return f"{requests} {noun}, not paced; {FORECAST_READS_NOTE}"
    seconds = forecast_seconds(requests, requests_per_minute, window_seconds)
    return (
        f"{requests} {noun}, {_duration_text(seconds)} at "
        f"{_rate_text(requests_per_minute, window_seconds)}; {FORECAST_READS_NOTE}"
    )


def _rate_text(requests_per_minute: int | None, window_seconds: float) -> str:
    if requests_per_minute is None:
        return "no request budget"
    if window_seconds == WINDOW_SECONDS:
        return f"{requests_per_minute} a minute"
    return f"{requests_per_minute} per {window_seconds:g} s"


def _duration_text(seconds: float) -> str:
    whole = round(seconds)
    if whole < 1:
        return "under a second" if seconds > 0 else "no time"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"
    if minutes:
        return f"about {minutes} min {secs} s" if secs else f"about {minutes} min"
    return f"about {secs} s"
