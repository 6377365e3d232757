"""Sending the plan: bulk requests in flight while a writer thread records Chaser's answers.

State is written by one thread on its own connection, so requests keep flowing while DuckDB
commits (it releases the GIL). A batch Chaser answered is committed within COMMIT_GATHER_SECONDS
(plus the commit under way), together with the others that settled meanwhile. At most
MAX_UNRECORDED_BATCHES are ever sent but unrecorded; a killed run sends just those again,
harmlessly (bulk upsert is idempotent by key).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from chaser_pipeline.chaser.bulk import BulkOutcome
from chaser_pipeline.chaser.client import ChaserClient
from chaser_pipeline.chaser.errors import ChaserError
from chaser_pipeline.chaser.send_process import RemoteEndpoint
from chaser_pipeline.sync.batches import Batch, planned_batches, settled_part
from chaser_pipeline.sync.journal import record_batches
from chaser_pipeline.sync.objects import ChaserObject
from chaser_pipeline.sync.report import SyncReport
from chaser_pipeline.sync.state import StateWriter, SyncState, Target

# Batches sent but not yet recorded in the state (in flight, or settled and waiting for the
# commit under way): what a killed run may have to send again.
MAX_UNRECORDED_BATCHES = 96
# The same when a process of its own sends (chaser.send_process: an initial load, in the waiver):
# answers then come faster than commits gathered from 96 would record them, and the batches a
# killed run sends again spend none of a budget the waiver lifts.
MAX_UNRECORDED_BATCHES_SENT_ELSEWHERE = 256
# A commit costs DuckDB about the same for one batch or twenty, so once a batch settles the
# writer lets others settle for this long and commits them together. In a first load with 16
# requests in flight, 100 ms gathers ~30 batches a commit: the writer's commits (CPU on the
# same two cores as the event loop) then cost the send about half what 25 ms did.
COMMIT_GATHER_SECONDS = 0.1
# Chaser's refusals kept in the report (all of them are in the log).
REPORTED_FAILURES = 10


class Sender:
    """Sends one object's planned rows through one client and records every answer."""

    def __init__(
        self,
        state: SyncState,
        target: Target,
        client: ChaserClient,
        chaser_object: ChaserObject,
        report: SyncReport,
        *,
        run_id: str,
        clock: Callable[[], datetime],
        on_progress: Callable[[SyncReport], None] | None = None,
        endpoint: RemoteEndpoint | None = None,
    ) -> None:
        self.state = state
        self.target = target
        # the client's own endpoint, or the same object's in a process sending for the client
        self.endpoint = endpoint or client.endpoint(chaser_object.name)
        self.chaser_object = chaser_object
        self.report = report
        self.run_id = run_id
        self.clock = clock
        self.on_progress = on_progress
        # A slot per batch sent but not yet recorded.
        usual = max(MAX_UNRECORDED_BATCHES, client.in_flight_limit * 2)
        most = usual if endpoint is None else max(usual, MAX_UNRECORDED_BATCHES_SENT_ELSEWHERE)
        self.unrecorded = asyncio.Semaphore(most)
        # slots above the usual, taken back once Chaser ends the waiver (requests cost budget)
        self.budget = client.budget
        self.extra_slots = most - usual
        self.settled: asyncio.Queue[tuple[Batch, BulkOutcome] | None] = asyncio.Queue()
        self.failures: list[BaseException] = []

    async def send(
        self, columns: list[str], actions: tuple[str, ...] = ("create", "update")
    ) -> None:
        """Send every planned row of `actions`; raise the first hard failure once what was sent
        is recorded."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chaser-sync-state")
        # one state writer per thread: answers on the writer thread, attempted keys on the reader
        answers, attempts = self.state.writer(), self.state.writer()
        recorder = asyncio.create_task(self._record_settled(writer, answers))
        sending: set[asyncio.Task] = set()
        # Chunks are read from DuckDB on their own thread: the next one is read while this one
        # is sent, so requests keep flowing (DuckDB releases the GIL while it works).
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chaser-sync-read")
        # the plan is a temp table of the state's own connection: read it there
        chunks = planned_batches(
            self.state.con, attempts, self.target, self.chaser_object, columns, actions=actions
        )
        reading = loop.run_in_executor(reader, next, chunks, None)
        try:
            while (chunk := await reading) is not None:
                reading = loop.run_in_executor(reader, next, chunks, None)
                for batch in chunk:
                    await self._start(batch, sending)
            for task in asyncio.as_completed(sending):
                await task
        finally:
            # `con` is free once a chunk being read ahead is done; its error (if any) is moot.
            await asyncio.wait([reading])
            if not reading.cancelled():
                reading.exception()
            reader.shutdown(wait=True)
            chunks.close()
            # Whatever happened, let the batches already sent finish and record what Chaser
            # confirmed, so nothing it holds is forgotten.
            if sending:
                await asyncio.wait(sending)
                for task in sending:  # seen here; the first hard failure is raised below
                    if not task.cancelled():
                        task.exception()
            self.settled.put_nowait(None)
            await recorder
            writer.shutdown(wait=True)
            answers.close()
            attempts.close()
            self.report.send_seconds += time.monotonic() - started
            self.state.fold()
        if self.failures:
            raise self.failures[0]

    async def _start(self, batch: Batch, sending: set[asyncio.Task]) -> None:
        """Start sending one batch once a slot is free; stop at the first hard failure."""
        await self.unrecorded.acquire()
        while self.extra_slots and not self.budget.initial_load:
            await self.unrecorded.acquire()  # held to the end: the usual allowance again
            self.extra_slots -= 1
        if self.failures:
            raise self.failures[0]
        for task in [t for t in sending if t.done()]:
            sending.discard(task)
            task.result()  # a batch that failed hard (credentials, Chaser down) stops the sync
        sending.add(asyncio.create_task(self._send_batch(batch)))

    async def _send_batch(self, batch: Batch) -> None:
        try:
            if self.chaser_object.route_column:
                outcome = await self.endpoint.bulk_upsert(batch.route, batch.entries)
            else:
                outcome = await self.endpoint.bulk_upsert(batch.entries)
        except ChaserError as exc:
            # what Chaser answered before the batch failed part-way is recorded all the same
            if exc.settled is not None and (exc.settled.accepted or exc.settled.failed):
                self.settled.put_nowait(settled_part(batch, exc.settled))
            else:
                self.unrecorded.release()
            raise
        except BaseException:
            self.unrecorded.release()
            raise
        self.settled.put_nowait((batch, outcome))

    async def _record_settled(self, writer: ThreadPoolExecutor, answers: StateWriter) -> None:
        """Commit settled batches in groups until the end marker (None) arrives."""
        loop = asyncio.get_running_loop()
        while True:
            batches = [await self.settled.get()]
            if batches[0] is not None:
                await asyncio.sleep(COMMIT_GATHER_SECONDS)  # let more settle: one commit for all
            while not self.settled.empty():
                batches.append(self.settled.get_nowait())
            done = [b for b in batches if b is not None]
            try:
                if done and not self.failures:
                    record = functools.partial(
                        record_batches,
                        answers,
                        self.target,
                        self.chaser_object,
                        done,
                        run_id=self.run_id,
                        now=self.clock(),
                    )
                    self._count(await loop.run_in_executor(writer, record), done)
            except BaseException as exc:  # surfaced by the sending loop, which stops
                self.failures.append(exc)
            for _ in done:
                self.unrecorded.release()
            if len(done) < len(batches):
                return

    def _count(self, recorded: Counter[str], batches: list[tuple[Batch, BulkOutcome]]) -> None:
        report = self.report
        report.confirmed.update({a: n for a, n in recorded.items() if a != "failed"})
        report.failed += recorded["failed"]
        for _, outcome in batches:
            for f in outcome.failed[: max(0, REPORTED_FAILURES - len(report.failures))]:
                report.failures.append((str(f.key), f.message))
        if self.on_progress:
            self.on_progress(report)
