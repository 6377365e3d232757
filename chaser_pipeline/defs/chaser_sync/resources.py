"""Chaser as a Dagster resource: one interface (`ChaserResource`), two implementations, chosen
here from the settings: the real API when CHASER_API_KEY is set, else the built-in emulator.

Secrets are bound with `dagster.EnvVar`, so the UI shows the variable's name, never its value.
"""

from abc import ABC, abstractmethod

import dagster as dg

from chaser_pipeline.chaser.target import BuiltinEmulator, ChaserApi, ChaserTarget, ClientOptions
from chaser_pipeline.settings import Secret, Settings, load_settings


class ChaserResource(dg.ConfigurableResource, ABC):
    """Where the sync assets send, and how hard one step may drive it."""

    max_in_flight: int = 4
    """Requests in flight at once from one step."""
    requests_per_minute: int = 200
    """Chaser's request budget (a sliding 60 s window), shared by every request of one step."""
    max_retries: int = 6

    @abstractmethod
    def target(self) -> ChaserTarget: ...

    def _options(self) -> ClientOptions:
        return ClientOptions(
            max_in_flight=self.max_in_flight,
            requests_per_minute=self.requests_per_minute,
            max_retries=self.max_retries,
        )


class ChaserApiResource(ChaserResource):
    """Chaser's API (CHASER_API_URL, CHASER_API_KEY, CHASER_API_SECRET)."""

    api_url: str
    api_key: str
    api_secret: str

    def target(self) -> ChaserTarget:
        return ChaserApi(
            self.api_url, Secret(self.api_key), Secret(self.api_secret), self._options()
        )


class ChaserEmulatorResource(ChaserResource):
    """The built-in Chaser emulator, started for each step; used when no API key is set."""

    state_path: str
    """The emulator's SQLite state file, beside the pipeline's DuckDB."""

    def target(self) -> ChaserTarget:
        from pathlib import Path

        return BuiltinEmulator(Path(self.state_path), self._options())


def chaser_resource(settings: Settings) -> ChaserResource:
    if settings.uses_emulator:
        # The emulator's "Chaser" lives beside the sync state that describes it.
        return ChaserEmulatorResource(
            state_path=str(settings.duckdb_path.with_name("chaser_emulator.sqlite3"))
        )
    return ChaserApiResource(
        api_url=settings.api_url or "",
        api_key=dg.EnvVar("CHASER_API_KEY"),
        api_secret=dg.EnvVar("CHASER_API_SECRET"),
    )


@dg.definitions
def resources() -> dg.Definitions:
    """`chaser`: the real API or the built-in emulator, as the settings say."""
    return dg.Definitions(resources={"chaser": chaser_resource(load_settings())})
