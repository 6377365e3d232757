"""A step's session with Chaser: the pipeline's DuckDB, the sync state, the Chaser target checked
once per run, and the request budget, carried across steps and runs in the state."""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from chaser_pipeline.chaser.target import Connection
from chaser_pipeline.defs.chaser_sync.resources import ChaserResource, SyncStateResource
from chaser_pipeline.defs.resources import duckdb_connection
from chaser_pipeline.sync.engine import check_target
from chaser_pipeline.sync.state import SyncState, Target


@dataclass
class ChaserSession:
    state: SyncState
    connection: Connection
    target: Target | None = None

    def open_target(self, context: dg.OpExecutionContext, now: datetime) -> Target:
        """The organisation this run sends to, checked once per run; a target the pipeline never
        sent to starts from nothing, and the step says so."""
        target, new = check_target(
            self.state,
            self.connection.identity,
            self.connection.make_client,
            run_id=context.run.run_id,
            now=now,
        )
        if new:
            context.log.warning(
                "%s (organisation %s %s) is new to this pipeline: nothing sent to another "
                "Chaser counts for it, so the whole history is sent to it",
                self.connection.display,
                target.organisation_id,
                target.organisation_name,
            )
        self.target = target
        return target


@contextlib.contextmanager
def chaser_session(
    chaser: ChaserResource,
    duckdb: DuckDBResource,
    sync_state: SyncStateResource,
    *,
    initial_load: bool = False,
    deadline: float | None = None,
) -> Iterator[ChaserSession]:
    """Open the pipeline's DuckDB, the state and Chaser. The request budget starts from the
    requests earlier runs made in the last minute, and what this step adds is saved for the next
    one, so a sync that starts right after another does not burst into a full window."""
    with duckdb_connection(duckdb) as con:
        state = sync_state.open(con, duckdb.database)
        previous = state.last_target()
        target = chaser.target(initial_load=initial_load)
        budget = target.options.budget(recent=state.recent_requests(previous))
        with target.connect(budget=budget, deadline=deadline) as connection:
            session = ChaserSession(state, connection)
            try:
                yield session
            finally:
                if session.target is not None or previous.organisation_id != "none":
                    state.save_requests(session.target or previous, budget.recent())
