"""Where a sync sends: an interface with two implementations, Chaser's API and the built-in
emulator. The Dagster resources choose one where resources are built; the sync engine only sees an
open `Connection` and makes clients from it.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from chaser_pipeline.chaser.client import ChaserClient
from chaser_pipeline.settings import Secret


@dataclass(frozen=True)
class ClientOptions:
    """How hard one sync step may drive Chaser."""

    max_in_flight: int = 4
    requests_per_second: float = 20.0
    max_retries: int = 6


@dataclass(frozen=True)
class Connection:
    """An open target: its URL, a description safe for logs and metadata, and a client factory."""

    url: str
    display: str  # never holds a secret
    is_emulator: bool
    make_client: Callable[[], ChaserClient]
    # What the sync state calls this Chaser with the organisation id: the API URL, or
    # "builtin-emulator" (whose URL changes with every step's port).
    identity: str


class ChaserTarget(ABC):
    """A Chaser to send to; `connect()` makes it ready for requests for the length of a step."""

    options: ClientOptions

    @abstractmethod
    def connect(self) -> contextlib.AbstractContextManager[Connection]: ...

    def _factory(self, url: str, key: Secret, secret: Secret) -> Callable[[], ChaserClient]:
        options = self.options
        return lambda: ChaserClient(
            url,
            key,
            secret,
            max_in_flight=options.max_in_flight,
            requests_per_second=options.requests_per_second,
            max_retries=options.max_retries,
        )


class ChaserApi(ChaserTarget):
    """Chaser's API at `url` (CHASER_API_URL), with Basic auth."""

    def __init__(
        self, url: str, api_key: Secret, api_secret: Secret, options: ClientOptions | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._key, self._secret = api_key, api_secret
        self.options = options or ClientOptions()

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        yield Connection(
            self.url,
            f"Chaser API at {self.url}",
            False,
            self._factory(self.url, self._key, self._secret),
            self.url,
        )


class BuiltinEmulator(ChaserTarget):
    """A Chaser emulator started on a loopback port for the step, its state in a SQLite file."""

    def __init__(self, state_path: Path, options: ClientOptions | None = None) -> None:
        self.state_path = Path(state_path)
        self.options = options or ClientOptions()

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        from chaser_pipeline.emulator.server import (
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            run_emulator_in_thread,
        )

        with run_emulator_in_thread(self.state_path) as handle:
            yield Connection(
                handle.url,
                f"built-in Chaser emulator at {handle.url} "
                f"(no CHASER_API_KEY set; state in {self.state_path})",
                True,
                self._factory(handle.url, Secret(DEFAULT_API_KEY), Secret(DEFAULT_API_SECRET)),
                "builtin-emulator",
            )
