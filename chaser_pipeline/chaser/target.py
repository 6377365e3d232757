"""Where a sync sends: an interface with two implementations, Chaser's API and the built-in
emulator. The Dagster resources choose one where resources are built; the sync engine only sees an
open `Connection` and makes clients from it. Every client of one connection shares its request
budget and its deadline.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from chaser_pipeline.chaser.budget import DEFAULT_REQUESTS_PER_MINUTE, RequestBudget
from chaser_pipeline.chaser.client import DEFAULT_REQUEST_TIMEOUT, ChaserClient, display_url
from chaser_pipeline.db import short_hash
from chaser_pipeline.settings import Secret


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """How hard one sync step may drive Chaser."""

    max_in_flight: int = 4
    requests_per_minute: int | None = DEFAULT_REQUESTS_PER_MINUTE
    max_retries: int = 6
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    # An organisation in its first-24-hours waiver: no pacing until the first 429.
    initial_load: bool = False
    initial_load_in_flight: int = 16

    def budget(self, recent: Iterable[float] = ()) -> RequestBudget:
        """A new budget at these options, holding the request times of earlier runs."""
        return RequestBudget(
            self.requests_per_minute, recent=recent, initial_load=self.initial_load
        )


@dataclass(frozen=True)
class Connection:
    """An open target: its URL, a description safe for logs and metadata, a client factory,
    and the budget and deadline every client it makes shares."""

    url: str
    display: str  # never holds a secret
    is_emulator: bool
    make_client: Callable[[], ChaserClient]
    # What the sync state calls this Chaser with the organisation id: the API URL, or
    # "builtin-emulator" (whose URL changes with every step's port).
    identity: str
    budget: RequestBudget
    deadline: float | None = None


class ChaserTarget(ABC):
    """A Chaser to send to; `connect()` makes it ready for requests for the length of a step.

    `connect(budget=..., deadline=...)`: the run's budget (default: a new one from the options)
    and its deadline (epoch seconds, None: none)."""

    options: ClientOptions
    # What the sync state calls this Chaser (with the organisation id), known before connecting.
    identity: str
    # Which credentials reach it, never them (a hash of the URL and the API key): the sync state
    # notes them beside the organisation they reached, so a pipeline finds its own organisation
    # without asking Chaser when other pipelines share the state (see SyncState.last_target).
    credentials: str

    @abstractmethod
    def connect(
        self, *, budget: RequestBudget | None = None, deadline: float | None = None
    ) -> contextlib.AbstractContextManager[Connection]: ...

    def _connection(
        self,
        url: str,
        display: str,
        is_emulator: bool,
        credentials: tuple[Secret, Secret],
        identity: str,
        budget: RequestBudget | None,
        deadline: float | None,
    ) -> Connection:
        options = self.options
        budget = budget if budget is not None else options.budget()
        key, secret = credentials

        def make_client() -> ChaserClient:
            return ChaserClient(
                url,
                key,
                secret,
                budget=budget,
                deadline=deadline,
                max_in_flight=options.max_in_flight,
                initial_load_in_flight=options.initial_load_in_flight,
                request_timeout=options.request_timeout,
                max_retries=options.max_retries,
            )

        return Connection(url, display, is_emulator, make_client, identity, budget, deadline)


class ChaserApi(ChaserTarget):
    """Chaser's API at `url` (CHASER_API_URL), with Basic auth."""

    def __init__(
        self, url: str, api_key: Secret, api_secret: Secret, options: ClientOptions | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.identity = self.url
        self._key, self._secret = api_key, api_secret
        self.credentials = short_hash(["chaser credentials", self.url, api_key.get()])
        self.options = options or ClientOptions()

    @contextlib.contextmanager
    def connect(
        self, *, budget: RequestBudget | None = None, deadline: float | None = None
    ) -> Iterator[Connection]:
        yield self._connection(
            self.url,
            f"Chaser API at {display_url(self.url)}",
            False,
            (self._key, self._secret),
            self.identity,
            budget,
            deadline,
        )


class BuiltinEmulator(ChaserTarget):
    """A Chaser emulator started on a loopback port for the step, its state in a SQLite file."""

    def __init__(self, state_path: Path, options: ClientOptions | None = None) -> None:
        self.state_path = Path(state_path)
        self.identity = "builtin-emulator"
        # one organisation per emulator state file
        self.credentials = short_hash(["chaser credentials", self.identity, str(self.state_path)])
        self.options = options or ClientOptions()

    @contextlib.contextmanager
    def connect(
        self, *, budget: RequestBudget | None = None, deadline: float | None = None
    ) -> Iterator[Connection]:
        from chaser_pipeline.emulator.server import (
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            run_emulator_in_thread,
        )

        with run_emulator_in_thread(self.state_path) as handle:
            yield self._connection(
                handle.url,
                f"built-in Chaser emulator at {handle.url} "
                f"(no CHASER_API_KEY set; state in {self.state_path})",
                True,
                (Secret(DEFAULT_API_KEY), Secret(DEFAULT_API_SECRET)),
                self.identity,
                budget,
                deadline,
            )
