"""Bulk upserts sent from a process of their own during an initial load.

In an organisation's first-24-hours waiver the budget paces nothing, and a first load is bound by
CPU: the event loop keeping 16 requests in flight shares two cores, and the GIL, with the threads
that read the plan from DuckDB and commit Chaser's answers. `SendProcess` moves the HTTP work
into a child process: a `ChaserClient` built from the parent's (`ChaserClient.process_config`),
with its retries, its in-flight bounds and a budget that starts where the parent's stands. The
parent hands it encoded batches over a pipe and gets each batch's outcome back: a `BulkOutcome`,
or the `ChaserError` with what was settled before it, as the parent's own client would return or
raise them. The parent keeps the plan, the journal and the fold.

Nothing is lost when either side dies. The keys of a batch are committed as attempted before the
batch is handed over (`sync.batches`); a batch Chaser answered that the parent did not record is
sent again by the next run, as after any killed run (bulk upsert is idempotent by key). The child
ends when its pipe closes. With each answer the child sends what it spent since the last (request
times, the client's and the budget's counts), and the moment a 429 ends the waiver it says so:
both are added to the parent's client and budget as they come, so the budget carried to the next
run and the run's metadata hold them even when the child is killed (all but its requests in
flight). Log records of the child are logged again in the parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import site
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from chaser_pipeline.chaser import errors
from chaser_pipeline.chaser.budget import BudgetStats, RequestBudget
from chaser_pipeline.chaser.bulk import BulkOutcome, EntryFailure
from chaser_pipeline.chaser.client import ChaserClient, ClientStats
from chaser_pipeline.chaser.encoding import EncodedEntries, RawJSON

log = logging.getLogger(__name__)

# Seconds the parent waits for the child's client to be ready (a new interpreter's imports).
READY_SECONDS = 60.0
# Seconds the parent waits for the child to finish and report once the last batch is answered.
CLOSE_SECONDS = 30.0
# Seconds a child asked to stop (terminate) is given before it is killed.
TERMINATE_SECONDS = 5.0


def sends_from_process(client: ChaserClient, requests: int, minimum: int) -> bool:
    """Whether `requests` write requests are worth a process of their own: only while the budget
    paces nothing (an initial load in the waiver), for at least `minimum` requests (0: never),
    and when the client makes its own connections (a given transport cannot cross processes)."""
    return (
        minimum > 0
        and requests >= minimum
        and client.budget.initial_load
        and client.process_config() is not None
    )


class SendProcessUnavailable(RuntimeError):
    """The child could not be started or was not ready: send from this process instead."""


def _child_environment() -> dict[str, str]:
    """The parent's environment; where the parent found this package outside the site
    directories (a Dagster code location's working directory, a source checkout), that folder
    first on the child's path, so the child runs the same code. (The child starts with -P: its
    working directory is not on its path, so a stale copy there cannot win.)"""
    root = str(Path(__file__).resolve().parents[2])
    installed = {
        str(Path(p).resolve()) for p in [*site.getsitepackages(), site.getusersitepackages()]
    }
    if root in installed:
        return dict(os.environ)
    paths = [root, *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


class SendProcess:
    """A child process sending bulk upserts for `client`; `async with SendProcess(client) as
    sending:` then `sending.endpoint("invoices").bulk_upsert(entries)`."""

    def __init__(self, client: ChaserClient) -> None:
        config = client.process_config()
        if config is None:
            raise ValueError("a client given a transport cannot send from another process")
        self._client = client
        self._config = config
        self._ids = itertools.count()
        self._waiting: dict[int, tuple[asyncio.Future, list[str | None]]] = {}
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._ended: str | None = None  # why the child can take no more batches
        self._closing = False  # the parent closed the pipe itself

    async def __aenter__(self) -> SendProcess:
        """Start the child and wait until its client is ready; SendProcessUnavailable when it
        cannot start (the caller then sends from its own event loop)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._closed: asyncio.Future = loop.create_future()
        self._ready: asyncio.Future = loop.create_future()
        budget = self._client.budget
        # A new interpreter (`python -m` this module), not a fork (which would copy DuckDB's
        # threads) nor multiprocessing's spawn (which imports the caller's main module again):
        # one end of a socket pair is its pipe; the credentials go over it, never in argv.
        ours, theirs = socket.socketpair()
        try:
            with theirs:
                self._process = subprocess.Popen(
                    [sys.executable, "-P", "-m", __name__, str(theirs.fileno())],
                    pass_fds=[theirs.fileno()],
                    stdin=subprocess.DEVNULL,
                    env=_child_environment(),
                )
        except OSError as exc:
            ours.close()
            raise SendProcessUnavailable(f"{sys.executable} could not be started: {exc}") from None
        self._conn = Connection(ours.detach())
        self._receiver = threading.Thread(
            target=self._receive, name="chaser-send-receive", daemon=True
        )
        self._receiver.start()
        try:
            with contextlib.suppress(OSError):  # a child already gone says so through _gone
                self._conn.send(
                    (
                        self._config,
                        {
                            "requests_per_minute": budget.requests_per_minute,
                            "window_seconds": budget.window_seconds,
                            "recent": budget.recent(),
                        },
                        logging.getLogger("chaser_pipeline").getEffectiveLevel(),
                    )
                )
            ready_seconds = self._ready_seconds()
            async with asyncio.timeout(ready_seconds):
                await asyncio.shield(self._ready)
        except TimeoutError:
            await self._shut(wait_seconds=0.0)  # it holds no batch yet: terminated at once
            raise SendProcessUnavailable(f"it was not ready within {ready_seconds:g} s") from None
        except errors.ChaserError:
            # its pipe closed: let it finish printing its error and exit by itself, then name
            # its exit code
            await self._shut(wait_seconds=min(TERMINATE_SECONDS, self._ready_seconds()))
            code = self._process.returncode
            raise SendProcessUnavailable(
                f"it ended before it was ready (exit code {code}); its error is above"
            ) from None
        except BaseException:
            await self._shut(wait_seconds=0.0)
            raise
        return self

    def _ready_seconds(self) -> float:
        deadline = self._client.deadline
        if deadline is None:
            return READY_SECONDS
        return max(0.0, min(READY_SECONDS, deadline - time.time()))

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        assert self._process is not None and self._conn is not None
        # After a normal end or an error every batch handed over was answered (the sender
        # waits for them): the child reports once it is done. Cancelled or interrupted, batches
        # may still be in flight: the child abandons them (their answers could not be recorded
        # now) and reports at once. Either way its requests and a waiver Chaser ended reach the
        # parent's client and budget, which the next run's budget starts from.
        normal = exc_type is None or issubclass(exc_type, Exception)
        try:
            with contextlib.suppress(OSError):
                self._conn.send(("close",) if normal else ("abort",))
            try:
                async with asyncio.timeout(CLOSE_SECONDS if normal else TERMINATE_SECONDS):
                    report = await asyncio.shield(self._closed)
            except (TimeoutError, errors.ChaserError) as exc:
                log.warning("The process sending to Chaser did not report its counts: %s", exc)
            else:
                self._absorb(report)
        finally:
            await self._shut()

    async def _shut(self, *, wait_seconds: float = CLOSE_SECONDS) -> None:
        """Stop the child and close the pipe, whatever state they are in: wait up to
        `wait_seconds` for it to end by itself, then terminate it."""
        assert self._process is not None and self._conn is not None
        self._closing = True
        # shut the socket down, not just closed: the receiving thread's blocked read then
        # returns, and the child reads EOF and ends (a close alone wakes neither)
        with (
            contextlib.suppress(OSError),
            socket.socket(fileno=os.dup(self._conn.fileno())) as pipe,
        ):
            pipe.shutdown(socket.SHUT_RDWR)
        await asyncio.to_thread(_stop, self._process, wait_seconds)
        self._conn.close()
        for future in (self._ready, self._closed):
            if future.done() and not future.cancelled():
                future.exception()  # seen (logged or raised above, or moot after a cancel)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit code once it ended (negative: the signal that ended it)."""
        assert self._process is not None
        return self._process.poll()

    def endpoint(self, object_name: str) -> RemoteEndpoint:
        self._client.endpoint(object_name)  # an unknown object fails here, in the parent
        return RemoteEndpoint(self, object_name)

    async def bulk_upsert(
        self, object_name: str, route: tuple[Any, ...], entries: EncodedEntries
    ) -> BulkOutcome:
        """`route`: () for an object of its own, (customer_external_id,) for contact persons."""
        lengths, keys = entries.lengths()
        if self._ended is not None:
            raise errors.TransportError(self._ended)
        number = next(self._ids)
        future = self._loop.create_future()
        self._waiting[number] = (future, keys)
        try:
            assert self._conn is not None
            self._conn.send(("bulk", number, object_name, route, str(entries.array), lengths, keys))
            return await future
        except OSError:
            raise errors.TransportError(self._why_ended()) from None
        finally:
            self._waiting.pop(number, None)

    def _receive(self) -> None:
        """The receiving thread: hands every message to the event loop."""
        assert self._conn is not None
        try:
            while True:
                message = self._conn.recv()
                self._loop.call_soon_threadsafe(self._deliver, message)
                if message[0] == "closed":
                    return
        except RuntimeError:  # the loop is closed: nobody waits any more
            return
        except (EOFError, OSError):
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self._loop.call_soon_threadsafe(self._gone)

    def _deliver(self, message: tuple) -> None:
        kind = message[0]
        if kind == "log":
            _, level, name, text = message
            logging.getLogger(name).log(level, "%s", text)
        elif kind == "ready":
            if not self._ready.done():
                self._ready.set_result(None)
        elif kind == "spent":
            self._absorb_spent(message[1])
        elif kind == "closed":
            if not self._closed.done():
                self._closed.set_result(message[1])
        elif kind == "waiver over":  # at once: a run stopped before the end still notes it
            self._absorb(message[1])
        else:
            _, number, answer = message
            future, keys = self._waiting.get(number, (None, []))
            if future is None or future.done():
                return
            if kind == "done":
                future.set_result(_outcome(answer, keys))
            elif kind == "error":
                future.set_exception(_error(answer, keys))
            else:
                future.set_exception(
                    RuntimeError(f"the process sending to Chaser failed on a batch: {answer}")
                )

    def _gone(self) -> None:
        """The pipe closed: the child ended. Every batch still waiting fails."""
        if self._closing:
            return
        if not self._ready.done():
            self._ready.set_exception(errors.TransportError("it ended before it was ready"))
        why = self._why_ended()
        for future, _ in list(self._waiting.values()):
            if not future.done():
                future.set_exception(errors.TransportError(why))
        if not self._closed.done():
            self._closed.set_exception(errors.TransportError(why))

    def _why_ended(self) -> str:
        if self._ended is None:
            code = self._process.poll() if self._process is not None else None
            self._ended = (
                "the process sending to Chaser ended before answering every batch"
                + (f" (exit code {code})" if code is not None else "")
                + "; what it sent but did not report is sent again by the next run"
            )
        return self._ended

    def _absorb_spent(self, spent: dict[str, Any]) -> None:
        """Add what the child spent since it last said (with each batch's answer): a child
        killed before its final report loses no more than its requests still in flight."""
        client = dict(spent["client"])
        client["by_status"] = Counter(client["by_status"])
        self._client.add_stats(ClientStats(**client))
        self._client.budget.absorb(
            spent["recent"], BudgetStats(**spent["budget"]), fell_back_at=None, paused_until=0.0
        )

    def _absorb(self, handover: dict[str, Any]) -> None:
        """The end of the waiver the child met, and the pause Chaser asked for
        (`RequestBudget.handover`)."""
        self._client.budget.absorb([], BudgetStats(), **handover)


class RemoteEndpoint:
    """One object's bulk upserts, sent by a `SendProcess`: called as the client's endpoint is,
    `bulk_upsert(entries)`, or `bulk_upsert(customer_external_id, entries)` for contact persons."""

    def __init__(self, sending: SendProcess, object_name: str) -> None:
        self._sending = sending
        self.object_name = object_name

    async def bulk_upsert(self, *args: Any) -> BulkOutcome:
        *route, entries = args
        if not isinstance(entries, EncodedEntries):
            raise TypeError("a process of its own sends encoded entries (EncodedEntries) only")
        return await self._sending.bulk_upsert(self.object_name, tuple(route), entries)


def _stop(process: subprocess.Popen, wait_seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(wait_seconds)
        return
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(TERMINATE_SECONDS)
        return
    process.kill()
    process.wait()


def _outcome(answer: tuple, keys: list[str | None]) -> BulkOutcome:
    accepted, chaser_ids, failed, requests = answer
    return BulkOutcome(
        failed=[EntryFailure(*f) for f in failed],
        accepted=accepted,
        chaser_ids=chaser_ids,
        requests=requests,
        key_of=lambda index: keys[index],
    )


def _error(answer: tuple, keys: list[str | None]) -> errors.ChaserError:
    name, message, method, path, status, body, settled = answer
    kind = getattr(errors, name, None)
    if not (isinstance(kind, type) and issubclass(kind, errors.ChaserError)):
        kind = errors.ChaserError
    error = kind(message, method=method, path=path, status=status, body=body)
    if settled is not None:
        error.settled = _outcome(settled, keys)
    return error


# The child.


def serve(conn: Connection) -> None:
    """The child process: take the client's settings, then send each batch the parent hands
    over until it says close (or its pipe closes), then report what was spent."""
    try:
        config, budget, log_level = conn.recv()
    except (EOFError, OSError):
        return
    lock = threading.Lock()

    def send(message: tuple) -> None:
        with lock, contextlib.suppress(OSError):
            conn.send(message)

    handler = _Forward(send)
    root = logging.getLogger("chaser_pipeline")
    root.addHandler(handler)
    root.setLevel(log_level)
    root.propagate = False
    try:
        asyncio.run(_serve(conn, send, config, budget))
    finally:
        conn.close()


async def _serve(
    conn: Connection, send: Any, config: dict[str, Any], handed: dict[str, Any]
) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple | None] = asyncio.Queue()

    def receive() -> None:
        # read by the event loop when the pipe is readable: no thread taking turns at the GIL
        try:
            while conn.poll():
                message = conn.recv()
                inbox.put_nowait(message)
                if message[0] in ("close", "abort"):
                    loop.remove_reader(conn.fileno())
                    return
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(None)

    loop.add_reader(conn.fileno(), receive)
    budget = _Noticing(
        send,
        handed["requests_per_minute"],
        recent=handed["recent"],
        initial_load=True,
        window_seconds=handed["window_seconds"],
    )
    sending: set[asyncio.Task] = set()
    async with ChaserClient(**config, budget=budget) as client:
        tally = _Tally(client, budget)
        send(("ready",))
        while (message := await inbox.get()) is not None and message[0] == "bulk":
            task = asyncio.create_task(_bulk(client, send, message, tally))
            sending.add(task)
            task.add_done_callback(sending.discard)
        if message is None or message[0] == "abort":
            # the parent is gone, or stops before these answers could be recorded
            for task in sending:
                task.cancel()
            if message is None:
                return
        if sending:
            await asyncio.wait(sending)
    send(("spent", tally.take()))
    send(("closed", budget.handover()))


async def _bulk(client: ChaserClient, send: Any, message: tuple, tally: _Tally) -> None:
    _, number, object_name, route, array, lengths, keys = message
    starts = list(itertools.accumulate((n + 1 for n in lengths), initial=1))  # "[" then ","s

    def entry(index: int) -> RawJSON:
        return RawJSON(array[starts[index] : starts[index] + lengths[index]], keys[index])

    entries = EncodedEntries(array, len(lengths), entry)
    endpoint = client.endpoint(object_name)
    try:
        outcome = await endpoint.bulk_upsert(*route, entries)
    except errors.ChaserError as exc:
        settled = _outcome_state(exc.settled) if exc.settled is not None else None
        state = (type(exc).__name__, str(exc), exc.method, exc.path, exc.status, exc.body, settled)
        answer: tuple = ("error", number, state)
    except Exception as exc:  # a defect here: the parent stops the sync with it
        answer = ("failed", number, f"{type(exc).__name__}: {exc}")
    else:
        answer = ("done", number, _outcome_state(outcome))
    send(("spent", tally.take()))  # before the answer: counted by the time it is recorded
    send(answer)


class _Noticing(RequestBudget):
    """The child's budget: tells the parent the moment Chaser ends the waiver (a 429), so a run
    stopped before the child's final report still notes it."""

    def __init__(self, send: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._send = send
        self.answered_since: list[float] = []

    def release(self) -> None:
        super().release()
        self.answered_since.append(self._answered[-1])  # the slot just dated

    def take_times(self) -> list[float]:
        """The times of the requests answered since the last call."""
        times, self.answered_since = self.answered_since, []
        return times

    def rate_limited(self, retry_after: float | None) -> float:
        was_initial_load = self.initial_load
        pause = super().rate_limited(retry_after)
        if was_initial_load and not self.initial_load:
            self._send(("waiver over", self.handover()))
        return pause


class _Tally:
    """What the child spent since it last told the parent: the times of its answered
    requests, and its client's and budget's counts."""

    def __init__(self, client: ChaserClient, budget: _Noticing) -> None:
        self._client = client
        self._budget = budget
        self._client_seen = _client_counts(client.stats)
        self._budget_seen = dataclasses.asdict(budget.stats)

    def take(self) -> dict[str, Any]:
        client, budget = _client_counts(self._client.stats), dataclasses.asdict(self._budget.stats)
        spent = {
            "client": {
                name: (
                    dict(value - self._client_seen[name])
                    if name == "by_status"
                    else value - self._client_seen[name]
                )
                for name, value in client.items()
            },
            "budget": {name: value - self._budget_seen[name] for name, value in budget.items()},
            "recent": self._budget.take_times(),
        }
        self._client_seen, self._budget_seen = client, budget
        return spent


def _client_counts(stats: ClientStats) -> dict[str, Any]:
    counts = {f.name: getattr(stats, f.name) for f in dataclasses.fields(stats)}
    counts["by_status"] = Counter(stats.by_status)
    return counts


def _outcome_state(outcome: BulkOutcome) -> tuple:
    failed = [(f.index, f.key, f.status, f.message) for f in outcome.failed]
    return outcome.accepted, outcome.chaser_ids, failed, outcome.requests


class _Forward(logging.Handler):
    """Hands the child's log records to the parent, which logs them again."""

    def __init__(self, send: Any) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send(("log", record.levelno, record.name, record.getMessage()))
        except Exception:
            self.handleError(record)


__all__ = ["RemoteEndpoint", "SendProcess", "SendProcessUnavailable", "sends_from_process"]

if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
