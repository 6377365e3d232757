"""Chaser as a Dagster resource: one interface (`ChaserResource`), two implementations, chosen
here from the settings: the real API when CHASER_API_KEY is set, else the built-in emulator.

Secrets are bound with `dagster.EnvVar`, so the UI shows the variable's name, never its value.
"""

from abc import ABC, abstractmethod
from pathlib import Path

import dagster as dg
import duckdb

from chaser_pipeline.chaser.client import display_url
from chaser_pipeline.chaser.target import BuiltinEmulator, ChaserApi, ChaserTarget, ClientOptions
from chaser_pipeline.settings import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    DEFAULT_REQUESTS_PER_MINUTE,
    Secret,
    Settings,
    load_settings,
)
from chaser_pipeline.sync.state import SyncState, open_state


class ChaserResource(dg.ConfigurableResource, ABC):
    """Where the sync assets send, and how hard one step may drive it."""

    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    """Requests in flight at once from one step (CHASER_API_MAX_IN_FLIGHT)."""
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    """Chaser's request budget, a sliding 60 s window over every request of a run, carried
    across runs in the sync state (CHASER_API_REQUESTS_PER_MINUTE; 0: no pacing)."""
    initial_load_in_flight: int = 16
    """Requests in flight during an initial load (the organisation's first-24-hours waiver)."""
    max_retries: int = 6
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
    """Seconds one attempt may wait for Chaser's answer (CHASER_API_REQUEST_TIMEOUT); three
    unanswered attempts of one request fail the step with "Chaser stopped answering"."""

    @abstractmethod
    def target(self, *, initial_load: bool = False) -> ChaserTarget:
        """Where to send; `initial_load` lifts the pacing until Chaser's first 429."""

    @abstractmethod
    def describe(self) -> str:
        """Where this resource sends, for logs and metadata (never a secret)."""

    def _options(self, initial_load: bool) -> ClientOptions:
        return ClientOptions(
            max_in_flight=self.max_in_flight,
            requests_per_minute=self.requests_per_minute or None,
            max_retries=self.max_retries,
            request_timeout=self.request_timeout,
            initial_load=initial_load,
            initial_load_in_flight=self.initial_load_in_flight,
        )


class ChaserApiResource(ChaserResource):
    """Chaser's API (CHASER_API_URL, CHASER_API_KEY, CHASER_API_SECRET)."""

    api_url: str
    api_key: str
    api_secret: str

    def target(self, *, initial_load: bool = False) -> ChaserTarget:
        return ChaserApi(
            self.api_url,
            Secret(self.api_key),
            Secret(self.api_secret),
            self._options(initial_load),
        )

    def describe(self) -> str:
        return f"Chaser API at {display_url(self.api_url.rstrip('/'))}"


class ChaserEmulatorResource(ChaserResource):
    """The built-in Chaser emulator, started for each step; used when no API key is set."""

    state_path: str
    """The emulator's SQLite state file, beside the pipeline's DuckDB."""

    def target(self, *, initial_load: bool = False) -> ChaserTarget:
        return BuiltinEmulator(Path(self.state_path), self._options(initial_load))

    def describe(self) -> str:
        return f"built-in Chaser emulator (no CHASER_API_KEY set; state in {self.state_path})"


class SyncStateResource(dg.ConfigurableResource):
    """Where what Chaser confirmed is kept: the pipeline's DuckDB, or PostgreSQL
    (CHASER_STATE_URL), so runs in fresh containers know what earlier runs sent."""

    url: str = ""
    """A PostgreSQL URL; empty keeps the state in the pipeline's DuckDB."""
    lock_wait_seconds: float = 600.0
    """How long a sync waits for another one sending to the same Chaser before giving up."""

    def open(self, con: duckdb.DuckDBPyConnection, duckdb_path: str) -> SyncState:
        """The state, with `con` (the pipeline's DuckDB at `duckdb_path`) as its working copy."""
        return open_state(con, Path(duckdb_path), Secret(self.url) if self.url else None)


def chaser_resource(settings: Settings) -> ChaserResource:
    budget = {
        "requests_per_minute": settings.requests_per_minute or 0,
        "max_in_flight": settings.max_in_flight,
        "request_timeout": settings.request_timeout,
    }
    if settings.uses_emulator:
        # The emulator's "Chaser" lives beside the sync state that describes it.
        return ChaserEmulatorResource(
            state_path=str(settings.duckdb_path.with_name("chaser_emulator.sqlite3")), **budget
        )
    return ChaserApiResource(
        api_url=settings.api_url or "",
        api_key=dg.EnvVar("CHASER_API_KEY"),
        api_secret=dg.EnvVar("CHASER_API_SECRET"),
        **budget,
    )


@dg.definitions
def resources() -> dg.Definitions:
    """`chaser`: the real API or the built-in emulator; `sync_state`: DuckDB or PostgreSQL."""
    settings = load_settings()
    sync_state = (
        SyncStateResource(url=dg.EnvVar("CHASER_STATE_URL"))
        if settings.state_url is not None
        else SyncStateResource()
    )
    return dg.Definitions(resources={"chaser": chaser_resource(settings), "sync_state": sync_state})
