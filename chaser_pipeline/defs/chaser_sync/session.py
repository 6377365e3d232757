"""A step's session with Chaser: the pipeline's DuckDB, the sync state, the Chaser target checked
once per run, and the request budget, carried across steps and runs in the state.

The session connects only when a step first needs Chaser (the built-in emulator starts then): a
step that finds nothing to send, in a run whose target was already checked, makes no request and
starts nothing."""

import contextlib
from collections.abc import Iterator
from datetime import datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from chaser_pipeline.chaser.budget import RequestBudget
from chaser_pipeline.chaser.client import ChaserClient
from chaser_pipeline.chaser.target import ChaserTarget, Connection
from chaser_pipeline.defs.chaser_sync.resources import ChaserResource, SyncStateResource
from chaser_pipeline.defs.resources import duckdb_connection
from chaser_pipeline.sync.engine import check_target
from chaser_pipeline.sync.state import SyncState, Target

# A wait for the budget at a step's start this long or longer is logged before it happens.
BUDGET_WAIT_NOTICE_SECONDS = 5.0


class ChaserSession:
    def __init__(
        self,
        state: SyncState,
        chaser_target: ChaserTarget,
        budget: RequestBudget,
        deadline: float | None,
        stack: contextlib.ExitStack,
        description: str,
    ) -> None:
        self.state = state
        self.budget = budget
        self.target: Target | None = None
        # an initial load asked for after Chaser ended the organisation's waiver: when it did
        self.waiver_over_at: float | None = None
        self._chaser_target, self._deadline, self._stack = chaser_target, deadline, stack
        self._description = description
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection:
        """The open target, connected on first use."""
        if self._connection is None:
            self._connection = self._stack.enter_context(
                self._chaser_target.connect(budget=self.budget, deadline=self._deadline)
            )
        return self._connection

    @property
    def connected(self) -> bool:
        return self._connection is not None

    @property
    def display(self) -> str:
        """Where the session sends, never a secret."""
        return self._connection.display if self._connection else self._description

    @property
    def credentials(self) -> str:
        """Which credentials the session sends with (a hash, never them)."""
        return self._chaser_target.credentials

    def make_client(self) -> ChaserClient:
        return self.connection.make_client()

    def open_target(self, context: dg.OpExecutionContext, now: datetime) -> Target:
        """The organisation this run sends to, checked once per run; a target the pipeline never
        sent to starts from nothing, and the step says so. A budget that makes its first
        request wait (the last minute's requests, an earlier run's included, fill the window)
        says so before it waits, rather than sitting silent."""

        def notice_budget_wait() -> None:
            wait = self.budget.room_in()
            if wait >= BUDGET_WAIT_NOTICE_SECONDS:
                context.log.info(
                    "Chaser's request budget (%s) has room in %.0f s: the requests of the last "
                    "minute, earlier runs' included, fill it; waiting",
                    self.budget.rate_text,
                    wait,
                )

        target, new = check_target(
            self.state,
            self._chaser_target.identity,
            self.make_client,
            run_id=context.run.run_id,
            now=now,
            before_asking=notice_budget_wait,
            credentials=self.credentials,
        )
        if new:
            context.log.warning(
                "%s (organisation %s %s) is new to this pipeline: nothing sent to another "
                "Chaser counts for it, so the whole history is sent to it",
                self.display,
                target.organisation_id,
                target.organisation_name,
            )
        self.target = target
        return target

    def own_target(self, context: dg.OpExecutionContext, now: datetime) -> Target:
        """The organisation this pipeline's credentials reach, as a sync last noted it (no
        request), else asked of Chaser once (`open_target`): other pipelines sharing the state
        send to organisations of their own, so none of theirs is ever guessed."""
        known = self.state.target_for(self.credentials)
        if known is None:
            return self.open_target(context, now)
        self.target = known
        return known


@contextlib.contextmanager
def chaser_session(
    chaser: ChaserResource,
    duckdb: DuckDBResource,
    sync_state: SyncStateResource,
    *,
    initial_load: bool = False,
    deadline: float | None = None,
) -> Iterator[ChaserSession]:
    """Open the pipeline's DuckDB, the state and (when first asked) Chaser. The request budget
    starts from the requests earlier runs made in the last minute, and what this step adds is
    saved for the next one, so a sync that starts right after another does not burst into a
    full window. An initial load is paced from the start once Chaser has ended the waiver (a
    429 to an earlier step or run), rather than bursting into 429s again at every step."""
    with duckdb_connection(duckdb) as con, contextlib.ExitStack() as stack:
        state = sync_state.open(con, duckdb.database)
        # this pipeline's organisation (whichever another pipeline sharing the state checked
        # last), or none yet
        previous = state.target_for(chaser.target().credentials) or Target("none", "none")
        waiver_over_at = state.waiver_over_at(previous) if initial_load else None
        target = chaser.target(initial_load=initial_load and waiver_over_at is None)
        budget = target.options.budget(recent=state.recent_requests(previous))
        session = ChaserSession(state, target, budget, deadline, stack, chaser.describe())
        session.waiver_over_at = waiver_over_at
        try:
            yield session
        finally:
            stack.close()
            if session.connected and (
                session.target is not None or previous.organisation_id != "none"
            ):
                state.save_requests(session.target or previous, budget.recent())
                if budget.fell_back_at is not None:
                    state.note_waiver_over(session.target or previous, budget.fell_back_at)
