"""Benchmark: the first load in waiver mode against a sink that is not the bottleneck, vs a bare loop.

The emulator takes a whole core, so against it the engine/bare ratio measures the emulator. Here
both send to `benchmarks/sink.py` (its own process: raw asyncio HTTP, answers every bulk upsert
with valid ids, stores nothing):

1. Demo warehouse, landing by ATTACH copy, every SQL model (as `benchmarks/sync.py`).
2. Engine: `sync_object` for customers, invoices, credit notes over the whole history with the
   budget of `--initial-load` (`RequestBudget(200, initial_load=True)`: no pacing in the
   organisation's first 24 hours) and its in-flight count (16), long-paid invoices sent too.
3. Bare loop (`benchmarks/bare_httpx.py`): the same bodies (encoded before its clock starts),
   the same in-flight count, to the same sink (restarted, so both start cold).

Prints rows and requests a second of each, their ratio (goal >= 0.8), CPU of the benchmark and
of the sink (its share of a core shows it is not the bottleneck). Asserts the requests equal
ceil(rows / 100) per object (the sink's own count), never time.

    ./.venv/bin/python -m benchmarks.initial_load [--scale 333.34] [--in-flight 16] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psutil

from benchmarks.bare_httpx import BareResult, send_bare
from benchmarks.sync import (
    API_KEY,
    RESOURCES,
    Phase,
    Sampler,
    bare_bodies,
    build_models,
    land,
    measured,
)
from chaser_pipeline.chaser.budget import RequestBudget
from chaser_pipeline.chaser.bulk import BULK_LIMIT
from chaser_pipeline.chaser.client import ChaserClient
from chaser_pipeline.db import WHOLE_HISTORY
from chaser_pipeline.demo.generator import generate_demo_warehouse
from chaser_pipeline.sync.engine import sync_object
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.plan import SyncOptions
from chaser_pipeline.sync.report import SyncReport
from chaser_pipeline.sync.state import DuckDBState, Target

TARGET = Target(url="benchmark-sink", organisation_id="sink")


class SinkProcess:
    """`python -m benchmarks.sink` on a free loopback port."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sink", "--port", str(self.port)]
        )
        self.process = psutil.Process(self.popen.pid)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.popen.poll() is not None:
                    self.stop()
                    raise RuntimeError("the sink did not start") from None
                time.sleep(0.05)

    def stats(self) -> dict[str, dict[str, int]]:
        with urllib.request.urlopen(f"{self.url}/_sink/stats", timeout=10) as answer:
            return json.load(answer)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def engine_load(
    con: duckdb.DuckDBPyConnection, sink: SinkProcess, secret: str, in_flight: int, folder: Path
) -> dict[str, SyncReport]:
    budget = RequestBudget(200, initial_load=True)

    def factory() -> ChaserClient:
        return ChaserClient(
            sink.url,
            API_KEY,
            secret,
            max_in_flight=4,
            initial_load_in_flight=in_flight,
            budget=budget,
        )

    state = DuckDBState(con, lock_dir=folder)
    reports = {}
    for name in RESOURCES:
        reports[name] = report = sync_object(
            state,
            TARGET,
            factory,
            CHASER_OBJECTS[name],
            window=WHOLE_HISTORY,
            options=SyncOptions(skip_paid_older_than_days=None),
            run_id="bench-waiver",
            clock=lambda: datetime.now(UTC).replace(tzinfo=None),
        )
        print(
            f"  engine {name:13s} {report.attempted:>9,d} rows {report.requests:>6,d} requests "
            f"{report.duration_seconds:>6.1f} s {report.attempted / report.duration_seconds:>9,.0f}"
            f" rows/s (sending {report.send_seconds:.1f} s)  failed {report.failed}"
        )
    assert not budget.fell_back, "the sink answered 429?"
    return reports


def show_phase(name: str, phase: Phase) -> None:
    print(
        f"  [{name}] wall {phase.wall:.1f} s; CPU: benchmark {phase.own_cpu:.1f} s "
        f"({phase.own_cpu / phase.wall:.0%} of a core), sink {phase.emulator_cpu:.1f} s "
        f"({phase.emulator_cpu / phase.wall:.0%} of a core)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=333.34)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--in-flight", type=int, default=16, help="requests in flight (both)")
    parser.add_argument("--keep", type=Path, help="folder to keep the warehouse and DB in")
    args = parser.parse_args()
    print(
        f"chaser-pipeline waiver-mode first load vs bare httpx, into a minimal sink  "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC  python {sys.version.split()[0]}  "
        f"{psutil.cpu_count()} cores  load average "
        f"{' '.join(f'{x:.2f}' for x in psutil.getloadavg())}"
    )
    sampler = Sampler()
    with tempfile.TemporaryDirectory(prefix="chaser-waiver-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pipeline.duckdb").unlink(missing_ok=True)
        warehouse, secret = folder / "warehouse.duckdb", secrets.token_urlsafe(16)
        started = time.perf_counter()
        generate_demo_warehouse(warehouse, scale=args.scale, seed=args.seed)
        con = duckdb.connect(str(folder / "pipeline.duckdb"))
        land(con, warehouse)
        build_models(con, quiet=True)
        print(f"warehouse, landing, models: {time.perf_counter() - started:.1f} s")

        sink = SinkProcess()
        try:
            with measured(sampler, "engine", sink.process) as engine_phase:
                reports = engine_load(con, sink, secret, args.in_flight, folder)
            engine_stats = sink.stats()
        finally:
            sink.stop()
        show_phase("engine", engine_phase)
        bodies = {name: bare_bodies(con, name, "bench-waiver") for name in RESOURCES}
        con.close()
        sink = SinkProcess()
        bare: dict[str, BareResult] = {}
        try:
            with measured(sampler, "bare", sink.process) as bare_phase:
                for name in RESOURCES:
                    bare[name] = b = send_bare(
                        sink.url, API_KEY, secret, name, bodies[name], in_flight=args.in_flight
                    )
                    print(
                        f"  bare   {name:13s} {b.rows:>9,d} rows {b.requests:>6,d} requests "
                        f"{b.seconds:>6.1f} s {b.rows_per_second:>9,.0f} rows/s"
                    )
            bare_stats = sink.stats()
        finally:
            sink.stop()
        show_phase("bare", bare_phase)
        sampler.stop()
    summarise(reports, bare, engine_stats, bare_stats)


def summarise(reports, bare, engine_stats, bare_stats) -> None:
    print(
        f"\n{'object':13s} {'rows':>9s} {'requests':>8s} {'engine s':>8s} {'engine r/s':>10s} "
        f"{'bare s':>7s} {'bare r/s':>9s} {'ratio':>6s}"
    )
    rows = engine_s = send_s = bare_s = requests = 0.0
    problems = []
    for name in RESOURCES:
        report, b = reports[name], bare[name]
        ratio = (report.attempted / report.duration_seconds) / b.rows_per_second
        print(
            f"{name:13s} {report.attempted:>9,d} {report.requests:>8,d} "
            f"{report.duration_seconds:>8.1f} {report.attempted / report.duration_seconds:>10,.0f} "
            f"{b.seconds:>7.1f} {b.rows_per_second:>9,.0f} {ratio:>6.2f}"
        )
        rows, requests = rows + report.attempted, requests + report.requests
        engine_s, bare_s = engine_s + report.duration_seconds, bare_s + b.seconds
        send_s += report.send_seconds
        floor = math.ceil(report.attempted / BULK_LIMIT)
        for who, stats in (("engine", engine_stats), ("bare", bare_stats)):
            if (
                stats["requests"].get(name) != floor
                or stats["entries"].get(name) != report.attempted
            ):
                problems.append(f"{who} {name}: sink saw {stats}, expected {floor} requests")
    print(
        f"{'overall':13s} {int(rows):>9,d} {int(requests):>8,d} {engine_s:>8.1f} "
        f"{rows / engine_s:>10,.0f} {bare_s:>7.1f} {rows / bare_s:>9,.0f} "
        f"{bare_s / engine_s:>6.2f}   (goal >= 0.80)\n"
        f"send rate: engine {requests / engine_s:,.0f} requests/s, bare {requests / bare_s:,.0f} "
        f"requests/s; engine seconds include planning and folding the state\n"
        f"sending alone (first request to last answer recorded; no plan, no fold): "
        f"{send_s:.1f} s, {requests / send_s:,.0f} requests/s, ratio {bare_s / send_s:.2f}"
    )
    assert not problems, "; ".join(problems)
    print("checks passed: requests == ceil(rows / 100) per object at the sink, both loops")


if __name__ == "__main__":
    main()
