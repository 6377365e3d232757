"""Benchmark: initial load of ~1M invoices into the Chaser emulator through the real sync engine.

What it does, in one process plus emulator subprocesses (each with its own SQLite state file in
the benchmark's folder):

1. Demo warehouse (`generate_demo_warehouse`), landing by ATTACH copy, every SQL model built with
   the framework's `build_model` (plain DuckDB, no Dagster).
2. Engine, initial load: `sync_object` for customers, then invoices, then credit notes over the
   whole window, against emulator B. Not through Dagster: the engine's own entry point, so the
   figures are the engine's, not Dagster's step overhead. Checks (asserts) that the write requests
   in the emulator's request log equal ceil(rows sent / 100) per resource.
3. Engine, no-change re-run over the same rows: asserts that no write request is sent; prints the
   plan (diff) step time and the whole run time.
4. Floor: a bare async httpx loop (`benchmarks/bare_httpx.py`) sends the SAME batches (the rows the
   engine sent, in the order its log recorded them, 100 a body, encoded once up front with
   `dumps(encode_payload(...))` exactly as the client does) with the same number in flight, to a
   fresh emulator A started the same way. Emulator B is stopped first, so the two never share the
   two cores; both runs are inserts into an empty state.

Prints rows per second per resource and overall, the engine/bare ratio, where the engine's own
time goes (plan, reading batches, encoding, recording state), CPU seconds of the benchmark and of
the emulator per phase, and peak RSS of both. Asserts only correctness, never time.

    ./.venv/bin/python -m benchmarks.sync [--scale 333.34] [--in-flight 4] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import psutil

import chaser_pipeline.chaser.client as client_module
import chaser_pipeline.sync.engine as engine_module
import chaser_pipeline.sync.sender as sender_module
from benchmarks.bare_httpx import BareResult, send_bare
from chaser_pipeline.chaser.budget import RequestBudget
from chaser_pipeline.chaser.bulk import BULK_LIMIT
from chaser_pipeline.chaser.client import ChaserClient
from chaser_pipeline.chaser.encoding import dumps, encode_payload
from chaser_pipeline.db import WHOLE_HISTORY
from chaser_pipeline.demo.generator import generate_demo_warehouse
from chaser_pipeline.emulator.server import API_SECRET_VARIABLE
from chaser_pipeline.emulator.store import EmulatorStore
from chaser_pipeline.ledger.contract import LEDGER_TABLES
from chaser_pipeline.models.build import build_model
from chaser_pipeline.models.field_rules import register_field_rules
from chaser_pipeline.models.project import ModelProject
from chaser_pipeline.paths import models_dir
from chaser_pipeline.settings import DEFAULT_COUNTRY
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.plan import SyncOptions
from chaser_pipeline.sync.report import SyncReport
from chaser_pipeline.sync.state import LOG_TABLE, DuckDBState, Target

RESOURCES = ("customers", "invoices", "credit_notes")
API_KEY = "bench"
MB = 2**20


# ---- measuring -----------------------------------------------------------------------------


class Sampler:
    """Samples the RSS of this process and of the running emulator every 50 ms, per phase."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.emulator: psutil.Process | None = None
        self.phase_name = ""
        self.peaks: dict[str, tuple[int, int]] = {}  # phase -> (own peak, emulator peak)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        own = self.me.memory_info().rss
        emu = 0
        if self.emulator is not None:
            with contextlib.suppress(psutil.Error):
                emu = self.emulator.memory_info().rss
        with self._lock:
            old_own, old_emu = self.peaks.get(self.phase_name, (0, 0))
            self.peaks[self.phase_name] = (max(old_own, own), max(old_emu, emu))

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def phase(self, name: str) -> None:
        self._sample()
        with self._lock:
            self.phase_name = name
        self._sample()

    def stop(self) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()


@dataclass
class Phase:
    """Wall time and CPU seconds of this process and the emulator over one phase."""

    wall: float = 0.0
    own_cpu: float = 0.0
    emulator_cpu: float = 0.0


@contextlib.contextmanager
def measured(sampler: Sampler, name: str, emulator: psutil.Process | None) -> Iterator[Phase]:
    sampler.phase(name)
    result = Phase()

    def cpu(process: psutil.Process | None) -> float:
        if process is None:
            return 0.0
        try:
            times = process.cpu_times()
        except psutil.Error:
            return 0.0
        return times.user + times.system

    own0, emu0, wall0 = cpu(sampler.me), cpu(emulator), time.perf_counter()
    yield result
    result.wall = time.perf_counter() - wall0
    result.own_cpu = cpu(sampler.me) - own0
    result.emulator_cpu = cpu(emulator) - emu0


class Timers:
    """Wall seconds spent inside a few engine functions (wrapped for this benchmark only)."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._originals: list[tuple[Any, str, Any]] = []

    def wrap(self, module: Any, name: str, label: str) -> None:
        original = getattr(module, name)
        seconds, calls = self.seconds, self.calls
        clock = time.perf_counter

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[label] += clock() - started
                calls[label] += 1

        self._originals.append((module, name, original))
        setattr(module, name, timed)

    def wrap_generator(self, module: Any, name: str, label: str) -> None:
        """Time spent producing each item (not the consumer's time between items)."""
        original = getattr(module, name)
        seconds, calls = self.seconds, self.calls
        clock = time.perf_counter

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            iterator = iter(original(*args, **kwargs))
            while True:
                started = clock()
                try:
                    item = next(iterator)
                except StopIteration:
                    seconds[label] += clock() - started
                    return
                seconds[label] += clock() - started
                calls[label] += 1
                yield item

        self._originals.append((module, name, original))
        setattr(module, name, timed)

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def restore(self) -> None:
        for module, name, original in reversed(self._originals):
            setattr(module, name, original)
        self._originals.clear()


# ---- emulator subprocess -------------------------------------------------------------------


class EmulatorProcess:
    """`python -m chaser_pipeline.emulator` in its own process, on a free loopback port."""

    def __init__(
        self,
        state: Path,
        secret: str,
        log_path: Path,
        limit_args: Sequence[str] = ("--requests-per-minute", "0"),
    ) -> None:
        """`limit_args`: the emulator's request-limit options; by default no limit (the
        benchmark measures the engine, not the budget)."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = state
        self._log = log_path.open("ab")
        self.popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chaser_pipeline.emulator",
                "--port",
                str(self.port),
                "--state",
                str(state),
                "--api-key",
                API_KEY,
                *limit_args,
                "--log-level",
                "warning",
            ],
            # the secret through the environment: a command line shows in `ps`
            env={**os.environ, API_SECRET_VARIABLE: secret},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.process = psutil.Process(self.popen.pid)
        deadline = time.monotonic() + 30
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"the emulator exited with {self.popen.returncode}; see {log_path}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(
                        "the emulator did not accept connections within 30 s"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def write_requests(state: Path, resource_name: str) -> int:
    with EmulatorStore(state) as store:
        return store.write_request_count(resource_name)


# ---- the pipeline DB -----------------------------------------------------------------------


def land(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    con.execute("attach $path as wh (read_only)", {"path": str(warehouse)})
    con.execute("create schema if not exists landing")
    for name in LEDGER_TABLES:
        con.execute(f"create or replace table landing.{name} as select * from wh.ledger.{name}")
    con.execute("detach wh")


def build_models(con: duckdb.DuckDBPyConnection, *, quiet: bool = False) -> None:
    project = ModelProject(models_dir())
    register_field_rules(con, DEFAULT_COUNTRY)
    for model in project.models.values():
        try:
            build = build_model(con, model)
        except Exception as exc:
            if model.name == "chaser_rejections":
                # The sync only reads it for a count of rows held back by rules.
                print(f"  {model.name:26s} FAILED ({type(exc).__name__}: {str(exc)[:200]})")
                print("  (continuing: the sync does not need chaser_rejections to send)")
                continue
            raise
        if not quiet:
            print(f"  {model.name:26s} {build.row_count:>11,d} rows {build.seconds:>7.2f} s")


def bare_bodies(
    con: duckdb.DuckDBPyConnection, resource_name: str, run_id: str
) -> list[tuple[int, bytes]]:
    """The batches the engine sent in `run_id` for one resource, as the client encodes them.

    The engine's log holds each batch's rows together, batch after batch in the order Chaser
    answered them: cut in that order, 100 at a time, they are the engine's batches (give or take
    the few that settled out of order). Rows Chaser refused are left out here (their batch would
    be refused whole without the client's isolation)."""
    spec = CHASER_OBJECTS[resource_name]
    columns = [r[0] for r in con.execute(f"describe {spec.mart}").fetchall()]
    select = ", ".join(f'm."{c}"' for c in columns)
    reader = con.sql(
        f"""select {select}
        from (
            select key, rowid as logged from {LOG_TABLE}
            where run_id = $run_id and object = $resource and action in ('create', 'update')
        ) as sent
        join {spec.mart} as m on m.{spec.key} = sent.key
        order by sent.logged""",
        params={"run_id": run_id, "resource": resource_name},
    ).to_arrow_reader(50 * BULK_LIMIT)
    bodies: list[tuple[int, bytes]] = []
    pending: list[dict[str, Any]] = []

    def flush(batch: list[dict[str, Any]]) -> None:
        bodies.append((len(batch), dumps({"entries": [encode_payload(row) for row in batch]})))

    # Arrow chunks need not be multiples of 100: cut exact batches of 100 across them, as the
    # engine does over its plan's rows.
    for chunk in reader:
        pending.extend(chunk.to_pylist())
        whole = len(pending) - len(pending) % BULK_LIMIT
        for i in range(0, whole, BULK_LIMIT):
            flush(pending[i : i + BULK_LIMIT])
        del pending[:whole]
    if pending:
        flush(pending)
    return bodies


# ---- output --------------------------------------------------------------------------------


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:>10,.0f}" if seconds else f"{'-':>10s}"


def print_phase(name: str, phase: Phase, sampler: Sampler) -> None:
    own, emu = sampler.peaks.get(name, (0, 0))
    print(
        f"  [{name}] wall {phase.wall:.1f} s; CPU: benchmark {phase.own_cpu:.1f} s "
        f"({phase.own_cpu / phase.wall:.0%} of a core), emulator {phase.emulator_cpu:.1f} s "
        f"({phase.emulator_cpu / phase.wall:.0%} of a core); peak RSS benchmark "
        f"{own / MB:,.0f} MB, emulator {emu / MB:,.0f} MB"
    )


@dataclass
class EngineRun:
    reports: dict[str, SyncReport] = field(default_factory=dict)
    emulator_writes: dict[str, int] = field(default_factory=dict)


def run_engine(
    con: duckdb.DuckDBPyConnection,
    emulator: EmulatorProcess,
    secret: str,
    options: SyncOptions,
    in_flight: int,
    run_id: str,
    on_report: Callable[[str, SyncReport, int], None],
) -> EngineRun:
    def client_factory() -> ChaserClient:
        return ChaserClient(
            emulator.url,
            API_KEY,
            secret,
            max_in_flight=in_flight,
            budget=RequestBudget(None),
        )

    def clock() -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)

    # The engine's state in the benchmark's DuckDB, keyed by the emulator as its Chaser target.
    state = DuckDBState(con, lock_dir=Path(tempfile.gettempdir()))
    target = Target(url=emulator.url, organisation_id="benchmark")
    result = EngineRun()
    for name in RESOURCES:
        before = write_requests(emulator.state, name)
        report = engine_module.sync_object(
            state,
            target,
            client_factory,
            CHASER_OBJECTS[name],
            window=WHOLE_HISTORY,
            options=options,
            run_id=run_id,
            clock=clock,
        )
        writes = write_requests(emulator.state, name) - before
        result.reports[name] = report
        result.emulator_writes[name] = writes
        on_report(name, report, writes)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=333.34)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--in-flight", type=int, default=4, help="requests in flight (both loops)")
    parser.add_argument("--keep", type=Path, help="folder to keep the warehouse, DB and states in")
    parser.add_argument(
        "--production-skips",
        action="store_true",
        help="keep every default skip rule of the engine (invoices paid over 183 days ago are "
        "not sent either); by default only documents Chaser would not show (drafts, voided, "
        "credit notes not ACTIVE) are skipped, so the load is every visible document",
    )
    args = parser.parse_args()
    options = (
        SyncOptions() if args.production_skips else SyncOptions(skip_paid_older_than_days=None)
    )
    sampler = Sampler()
    timers = Timers()
    timers.wrap(engine_module, "build_plan", "plan (build_plan)")
    timers.wrap_generator(
        sender_module, "planned_batches", "read batches (planned_batches, reader thread)"
    )
    timers.wrap(sender_module, "record_batches", "record answers (record_batches, writer thread)")
    timers.wrap(DuckDBState, "fold", "fold journal into state and log (SyncState.fold)")
    timers.wrap(client_module, "dumps", "write JSON (dumps)")

    print(
        f"chaser-pipeline sync benchmark  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
        f"python {sys.version.split()[0]}  duckdb {duckdb.__version__}  "
        f"{psutil.cpu_count()} cores  {psutil.virtual_memory().total / 2**30:.0f} GB"
    )
    print(
        f"scale {args.scale}, seed {args.seed}, {args.in_flight} requests in flight, "
        f"request budget off (RequestBudget(None)); engine via sync_object, NOT through Dagster"
    )
    print(
        "skip rules: "
        + (
            "engine defaults (--production-skips)"
            if args.production_skips
            else "invisible documents skipped, long-paid invoices sent (skip_paid_older_than_days=None)"
        )
    )

    with tempfile.TemporaryDirectory(prefix="chaser-sync-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        warehouse, pipeline = folder / "warehouse.duckdb", folder / "pipeline.duckdb"
        state_engine, state_bare = (
            folder / "emulator_engine.sqlite3",
            folder / "emulator_bare.sqlite3",
        )
        for path in (pipeline, state_engine, state_bare):
            for suffix in ("", "-wal", "-shm", ".wal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        print(f"folder: {folder}{'' if args.keep else ' (temporary)'}\n")
        secret = secrets.token_urlsafe(16)

        # ---- 1. data ------------------------------------------------------------------
        with measured(sampler, "prepare", None) as prep:
            started = time.perf_counter()
            summary = generate_demo_warehouse(warehouse, scale=args.scale, seed=args.seed)
            print(f"demo warehouse: {summary.rows} in {time.perf_counter() - started:.1f} s")
            con = duckdb.connect(str(pipeline))
            started = time.perf_counter()
            land(con, warehouse)
            print(f"landing (ATTACH copy): {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            print("models:")
            build_models(con)
            print(f"models total: {time.perf_counter() - started:.1f} s")
            mart_rows = {
                name: con.execute(f"select count(*) from {CHASER_OBJECTS[name].mart}").fetchone()[0]
                for name in RESOURCES
            }
        print_phase("prepare", prep, sampler)

        # ---- 2. engine, initial load --------------------------------------------------
        print(f"\n== engine initial load (sync_object, emulator B: {state_engine.name}) ==")
        emulator = EmulatorProcess(state_engine, secret, folder / "emulator_engine.log")
        sampler.emulator = emulator.process
        timers.reset()

        def show_initial(name: str, report: SyncReport, writes: int) -> None:
            sent = report.attempted
            print(
                f"  {name:13s} mart {mart_rows[name]:>9,d}  planned {dict(report.planned)}  "
                f"sent {sent:,d} (failed {report.failed})  {report.duration_seconds:.1f} s  "
                f"{rate(sent, report.duration_seconds)} rows/s"
            )
            print(
                f"  {'':13s} write requests: emulator log {writes:,d}, client {report.requests:,d},"
                f" ceil(rows sent / {BULK_LIMIT}) = {math.ceil(sent / BULK_LIMIT):,d}"
            )
            if report.failures:
                print(f"  {'':13s} first failures: {report.failures[:3]}")

        try:
            with measured(sampler, "engine initial", emulator.process) as engine_phase:
                initial = run_engine(
                    con, emulator, secret, options, args.in_flight, "bench-initial", show_initial
                )
            print_phase("engine initial", engine_phase, sampler)
            engine_breakdown = (Counter(timers.seconds), Counter(timers.calls))

            # ---- 3. engine, no-change re-run -------------------------------------------
            print("\n== engine no-change re-run (same rows, same emulator B) ==")
            timers.reset()
            plan_seconds: dict[str, float] = {}

            def show_rerun(name: str, report: SyncReport, writes: int) -> None:
                plan_seconds[name] = timers.seconds["plan (build_plan)"] - sum(
                    plan_seconds.values()
                )
                print(
                    f"  {name:13s} planned {dict(report.planned)}  plan step "
                    f"{plan_seconds[name]:.2f} s  whole {report.duration_seconds:.2f} s  "
                    f"write requests: emulator log {writes}, client {report.requests}"
                )

            with measured(sampler, "engine re-run", emulator.process) as rerun_phase:
                rerun = run_engine(
                    con, emulator, secret, options, args.in_flight, "bench-rerun", show_rerun
                )
            print_phase("engine re-run", rerun_phase, sampler)
        finally:
            emulator.stop()
            sampler.emulator = None

        # ---- 4. bare httpx loop, same batches, fresh emulator A ------------------------
        print(f"\n== bare async httpx loop (same bodies, emulator A: {state_bare.name}) ==")
        timers.restore()
        with measured(sampler, "encode bodies", None) as encode_phase:
            bodies = {name: bare_bodies(con, name, "bench-initial") for name in RESOURCES}
        print(
            f"  pre-encoded {sum(len(b) for b in bodies.values()):,d} bodies, "
            f"{sum(len(x) for b in bodies.values() for _, x in b) / MB:,.0f} MB, in "
            f"{encode_phase.wall:.1f} s (not timed below)"
        )
        con.close()
        emulator = EmulatorProcess(state_bare, secret, folder / "emulator_bare.log")
        sampler.emulator = emulator.process
        bare: dict[str, BareResult] = {}
        bare_writes: dict[str, int] = {}
        try:
            with measured(sampler, "bare", emulator.process) as bare_phase:
                for name in RESOURCES:
                    bare[name] = send_bare(
                        emulator.url, API_KEY, secret, name, bodies[name], in_flight=args.in_flight
                    )
                    bare_writes[name] = write_requests(state_bare, name)
                    print(
                        f"  {name:13s} sent {bare[name].rows:,d} in {bare[name].seconds:.1f} s "
                        f"{rate(bare[name].rows, bare[name].seconds)} rows/s  "
                        f"write requests: emulator log {bare_writes[name]:,d}"
                    )
            print_phase("bare", bare_phase, sampler)
        finally:
            emulator.stop()
            sampler.emulator = None
        del bodies
        sampler.stop()

    # ---- summary -----------------------------------------------------------------------
    print("\n== summary ==")
    print(
        f"{'resource':13s} {'rows sent':>10s} {'engine s':>9s} {'engine r/s':>10s} "
        f"{'bare s':>8s} {'bare r/s':>10s} {'ratio':>6s} {'writes':>7s} {'ceil/100':>8s}"
    )
    total_rows = total_engine = total_bare = 0.0
    for name in RESOURCES:
        report = initial.reports[name]
        sent, seconds = report.attempted, report.duration_seconds
        b = bare[name]
        total_rows += sent
        total_engine += seconds
        total_bare += b.seconds
        ratio = (sent / seconds) / b.rows_per_second if seconds and b.rows_per_second else 0.0
        print(
            f"{name:13s} {sent:>10,d} {seconds:>9.1f} {rate(sent, seconds)} {b.seconds:>8.1f} "
            f"{rate(b.rows, b.seconds)} {ratio:>6.2f} {initial.emulator_writes[name]:>7,d} "
            f"{math.ceil(sent / BULK_LIMIT):>8,d}"
        )
    overall = (total_rows / total_engine) / (total_rows / total_bare) if total_bare else 0.0
    print(
        f"{'overall':13s} {int(total_rows):>10,d} {total_engine:>9.1f} "
        f"{rate(int(total_rows), total_engine)} {total_bare:>8.1f} "
        f"{rate(int(total_rows), total_bare)} {overall:>6.2f}   (target ratio >= 0.80)"
    )
    print("engine seconds include planning and state commits (whole sync_object call).")

    seconds, calls = engine_breakdown
    print(f"\nwhere the engine's time goes (initial load, {total_engine:.1f} s wall):")
    for label, value in seconds.most_common():
        print(f"  {label:32s} {value:>7.1f} s  {calls[label]:>10,d} calls")
    print(
        "  (reading runs on its own thread and recording on the writer thread, both beside the "
        "event loop, so their seconds overlap the sending; the rest is the event loop, httpx "
        "and waiting on the emulator)"
    )

    rerun_total = sum(r.duration_seconds for r in rerun.reports.values())
    print(
        f"\nno-change re-run: plan step (invoices) {plan_seconds.get('invoices', 0):.2f} s "
        f"(target < 3 s), all plans {sum(plan_seconds.values()):.2f} s, whole run "
        f"{rerun_phase.wall:.2f} s (sync_object total {rerun_total:.2f} s; target < 30 s), "
        f"write requests {sum(rerun.emulator_writes.values())}"
    )
    own_peak = max(p[0] for p in sampler.peaks.values())
    emu_peak = max(p[1] for p in sampler.peaks.values())
    engine_own = max(sampler.peaks["engine initial"][0], sampler.peaks["engine re-run"][0])
    print(
        f"peak RSS: benchmark process {own_peak / MB:,.0f} MB sampled, ru_maxrss "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB "
        f"(during the engine sync phases: {engine_own / MB:,.0f} MB; target < 2048 MB); "
        f"emulator {emu_peak / MB:,.0f} MB"
    )

    # ---- correctness (never time) --------------------------------------------------------
    problems = []
    for name in RESOURCES:
        report = initial.reports[name]
        floor = math.ceil(report.attempted / BULK_LIMIT)
        if report.failed == 0 and initial.emulator_writes[name] != floor:
            problems.append(
                f"{name}: {initial.emulator_writes[name]} write requests, expected {floor}"
            )
        if bare_writes[name] != floor and report.failed == 0:
            problems.append(f"{name}: bare loop made {bare_writes[name]} writes, expected {floor}")
        if rerun.emulator_writes[name] or rerun.reports[name].requests:
            problems.append(f"{name}: the no-change re-run sent {rerun.emulator_writes[name]}")
    assert not problems, "; ".join(problems)
    print("\nchecks passed: write requests == ceil(rows / 100) per resource; re-run sent nothing")


if __name__ == "__main__":
    main()
