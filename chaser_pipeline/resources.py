"""Dagster resources: the source warehouse, the pipeline's DuckDB, and Chaser.

Resources are built from the environment in one place (`build_resources`); secrets are bound with
`dagster.EnvVar`, so the UI shows the variable's name, never its value.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from chaser_pipeline.config import Settings, load_settings
from chaser_pipeline.paths import data_dir
from chaser_pipeline.warehouse import Warehouse

if TYPE_CHECKING:
    from chaser_pipeline.chaser.client import ChaserClient


class WarehouseResource(dg.ConfigurableResource):
    """The source warehouse (CHASER_WAREHOUSE_URL); empty means the bundled demo warehouse."""

    url: str = ""

    def get(self) -> Warehouse:
        return Warehouse.from_url(self.url or None)


@dataclass(frozen=True)
class ChaserTarget:
    """Where a sync sends: the real Chaser API or the built-in emulator, ready for requests."""

    url: str
    is_emulator: bool
    display: str  # for logs and metadata; never holds a secret
    make_client: Callable[[], ChaserClient]


class ChaserResource(dg.ConfigurableResource):
    """Chaser API access; with no API key, a built-in Chaser emulator started for the run."""

    api_url: str = ""
    api_key: str = ""
    api_secret: str = ""
    max_in_flight: int = 4
    """Requests in flight at once from one step."""
    requests_per_second: float = 20.0
    """Client-side rate limit, shared by every request of one step."""
    max_retries: int = 6
    emulator_state_path: str = ""
    """State file of the built-in emulator; default: the project's data folder."""

    @contextlib.contextmanager
    def open_target(self) -> Iterator[ChaserTarget]:
        from chaser_pipeline.chaser.client import ChaserClient

        def factory(url: str, key: str, secret: str) -> Callable[[], ChaserClient]:
            return lambda: ChaserClient(
                url,
                key,
                secret,
                max_in_flight=self.max_in_flight,
                requests_per_second=self.requests_per_second,
                max_retries=self.max_retries,
            )

        if self.api_key:
            yield ChaserTarget(
                self.api_url,
                False,
                f"Chaser API at {self.api_url}",
                factory(self.api_url, self.api_key, self.api_secret),
            )
            return
        from chaser_pipeline.emulator import run_emulator_in_thread
        from chaser_pipeline.emulator.server import DEFAULT_API_KEY, DEFAULT_API_SECRET

        state = self.emulator_state_path or str(data_dir() / "chaser_emulator.sqlite3")
        with run_emulator_in_thread(state) as handle:
            yield ChaserTarget(
                handle.url,
                True,
                f"built-in Chaser emulator at {handle.url} (no CHASER_API_KEY set; state in {state})",
                factory(handle.url, DEFAULT_API_KEY, DEFAULT_API_SECRET),
            )


@contextlib.contextmanager
def duckdb_connection(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """The resource's connection, closed even when the body raises (the resource's own is not),
    so a failed step never leaves the pipeline's DuckDB file locked."""
    Path(resource.database).parent.mkdir(parents=True, exist_ok=True)
    with resource.get_connection() as con:
        try:
            yield con
        finally:
            con.close()


def build_resources(settings: Settings | None = None) -> dict[str, object]:
    """Resources for Definitions; config errors surface at load time, before any data moves."""
    settings = settings or load_settings()
    warehouse = (
        WarehouseResource(url=dg.EnvVar("CHASER_WAREHOUSE_URL"))
        if os.environ.get("CHASER_WAREHOUSE_URL", "").strip()
        else WarehouseResource()
    )
    if settings.uses_emulator:
        # The emulator's "Chaser" lives beside the sync state that describes it.
        chaser = ChaserResource(
            emulator_state_path=str(settings.duckdb_path.with_name("chaser_emulator.sqlite3"))
        )
    else:
        chaser = ChaserResource(
            api_url=settings.api_url or "",
            api_key=dg.EnvVar("CHASER_API_KEY"),
            api_secret=dg.EnvVar("CHASER_API_SECRET"),
        )
    return {
        "warehouse": warehouse,
        "duckdb": DuckDBResource(database=str(settings.duckdb_path)),
        "chaser": chaser,
    }
