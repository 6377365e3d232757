"""Benchmark: an incremental sync of ~1M invoices with 1% changed, at Chaser's 200 requests a minute.

What it does, in one process plus an emulator subprocess (its own SQLite state file):

1. Demo warehouse, landing by ATTACH copy, every SQL model (as `benchmarks/sync.py`).
2. First load in the organisation's first-24-hours waiver: the emulator runs with
   `--new-organisation` (Chaser's documented limit, waived), the engine with the budget of
   `--initial-load` (`RequestBudget(200, initial_load=True)`, 16 in flight). Every object, in the
   pipeline's order: customers, contact persons, invoices, credit notes, overpayments.
3. Per day (`--days`, default 2), changes in the warehouse: 1% of the invoices (half paid in full, half re-dated), some
   customers renamed, the contacts of some customers changed (a quarter of them archived), 1% of
   the credit notes renumbered; then landing and models again.
4. The first day is over: the emulator restarts on the same state with `--waiver-hours 0`, so it
   enforces 200 requests a minute with no Retry-After. The pending forecast is computed
   (`compute_pending`, what the pending-months asset shows). A warm-up spends the previous
   minute at the budget (200 GET /v1/organisation, one every 0.3 s, as a sync just before would),
   and its request times seed the sync's budget, as the sync state carries them between runs:
   the sync starts in the steady state, every slot it takes freed by one of the minute before.
5. The incremental sync of every object through one shared `RequestBudget(200)`, 4 in flight.

Asserts (never time except the budget's own promise): write requests = ceil(rows sent / 100) per
object (contact persons: one per customer with changes), rows sent = rows changed, the forecast =
the write requests made, zero 429s, wall time within 20 s of requests / 200 minutes.

    ./.venv/bin/python -m benchmarks.budget [--scale 333.34] [--days 2] [--requests-per-minute 200]
        [--without-contact-persons] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psutil

from benchmarks.sync import API_KEY, EmulatorProcess, build_models, land
from chaser_pipeline.chaser.budget import RequestBudget
from chaser_pipeline.chaser.bulk import BULK_LIMIT
from chaser_pipeline.chaser.client import ChaserClient
from chaser_pipeline.db import WHOLE_HISTORY
from chaser_pipeline.demo.generator import generate_demo_warehouse
from chaser_pipeline.emulator.store import EmulatorStore
from chaser_pipeline.paths import models_dir
from chaser_pipeline.settings import DEFAULT_HISTORY_START
from chaser_pipeline.sync.engine import sync_object
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.pending import compute_pending
from chaser_pipeline.sync.plan import SyncOptions
from chaser_pipeline.sync.report import SyncReport
from chaser_pipeline.sync.state import STATE_TABLE, DuckDBState, Target

# The state's identity of the emulator: the same organisation across its restarts.
TARGET = Target(url="benchmark-emulator", organisation_id="benchmark")
TOLERANCE_SECONDS = 20.0
# Objects left out (--without-contact-persons): neither loaded nor changed nor synced.
SKIPPED: set[str] = set()


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def sync_all(
    state: DuckDBState, factory: Callable[[], ChaserClient], run_id: str
) -> tuple[dict[str, SyncReport], float]:
    """Every object in the pipeline's order over the whole history; the reports and wall s."""
    started = time.perf_counter()
    reports = {
        name: sync_object(
            state,
            TARGET,
            factory,
            chaser_object,
            window=WHOLE_HISTORY,
            options=SyncOptions(),
            run_id=run_id,
            clock=now_utc,
        )
        for name, chaser_object in CHASER_OBJECTS.items()
        if name not in SKIPPED
    }
    return reports, time.perf_counter() - started


def confirmed(object_name: str) -> str:
    """SQL: the keys Chaser confirmed of one object (alias s)."""
    return f"""select key from {STATE_TABLE}
        where target = '{TARGET.key}' and object = '{object_name}' and payload_hash is not null"""


def change_warehouse(
    con: duckdb.DuckDBPyConnection,
    warehouse: Path,
    share: float,
    customers: int,
    contacts: int,
    day: int,
) -> dict[str, int]:
    """Change the ledger as business day `day` would (other rows each day); return the rows
    changed per object."""
    con.execute("attach $path as wh", {"path": str(warehouse)})
    at = "timestamp '2026-11-20 09:00'"
    [(invoice_total,)] = con.execute("select count(*) from wh.ledger.invoices").fetchall()
    con.execute(
        f"""create or replace temp table bench_invoices as
        select invoice_id, amount_due, row_number() over (order by hash(invoice_id || '{day}')) % 2 = 0
            as pay
        from chaser_invoices
        where status = 'AUTHORISED' and amount_due > 0
            and invoice_id in ({confirmed("invoices")})
        order by hash(invoice_id || '{day}') limit {round(invoice_total * share)}"""
    )
    con.execute(
        f"""insert into wh.ledger.payments (payment_id, invoice_id, amount, paid_at, is_reversed,
            updated_at)
        select 'P-BENCH-{day}-' || invoice_id, invoice_id, amount_due, {at}, false, {at}
        from bench_invoices where pay"""
    )
    con.execute(
        f"""update wh.ledger.invoices set due_date = due_date + interval 7 day, updated_at = {at}
        where invoice_id in (select invoice_id from bench_invoices where not pay)"""
    )
    con.execute(
        f"""create or replace temp table bench_customers as
        select external_id from chaser_customers where status = 'ACTIVE'
            and external_id in ({confirmed("customers")})
        order by hash(external_id || '{day}') limit {customers}"""
    )
    con.execute(
        f"""update wh.ledger.customers set company_name = company_name || ' Group',
            updated_at = {at}
        where customer_id in (select external_id from bench_customers)"""
    )
    # one ledger contact of each of `contacts` customers: a quarter archived, the rest renamed
    con.execute(
        f"""create or replace temp table bench_contacts as
        select external_id, row_number() over (order by hash(customer_external_id || '{day}')) % 4 = 0
            as archive
        from chaser_contact_persons
        where status = 'ACTIVE' and external_id like 'CT-%'
            and external_id in ({confirmed("contact_persons")})
        qualify row_number() over (partition by customer_external_id order by external_id) = 1
        order by hash(customer_external_id || '{day}') limit {contacts}"""
    )
    con.execute(
        f"""update wh.ledger.contacts set updated_at = {at},
            is_archived = c.archive, last_name = coalesce(last_name, '') || '-Smith'
        from bench_contacts as c where contact_id = c.external_id"""
    )
    [(credit_total,)] = con.execute("select count(*) from wh.ledger.credit_notes").fetchall()
    con.execute(
        f"""create or replace temp table bench_credit_notes as
        select credit_note_id from chaser_credit_notes
        where credit_note_id in ({confirmed("credit_notes")})
        order by hash(credit_note_id || '{day}') limit {round(credit_total * share)}"""
    )
    con.execute(
        f"""update wh.ledger.credit_notes
        set credit_note_number = coalesce(credit_note_number, '') || '-R', updated_at = {at}
        where credit_note_id in (select credit_note_id from bench_credit_notes)"""
    )
    con.execute("detach wh")
    tables = {
        "customers": "bench_customers",
        "contact_persons": "bench_contacts",
        "invoices": "bench_invoices",
        "credit_notes": "bench_credit_notes",
    }
    counts = {n: con.execute(f"select count(*) from {t}").fetchone()[0] for n, t in tables.items()}
    return {**counts, "overpayments": 0}


async def warm_up(url: str, secret: str, budget: RequestBudget, per_minute: int) -> None:
    """The minute before: `per_minute` reads, evenly spaced, through `budget`."""
    async with ChaserClient(url, API_KEY, secret, max_in_flight=1, budget=budget) as client:
        started = time.monotonic()
        for i in range(per_minute):
            await client.organisation.get()
            await asyncio.sleep(max(0.0, started + (i + 1) * 60 / per_minute - time.monotonic()))


def log_since(state_file: Path, seq: int) -> list:
    with EmulatorStore(state_file) as store:
        return [r for r in store.request_log() if r.seq > seq]


def first_load(con, folder, secret, args) -> tuple[DuckDBState, int]:
    """Step 2: the whole history in the waiver; the state and the last request's seq."""
    emulator = EmulatorProcess(
        folder / "emulator.sqlite3", secret, folder / "emulator.log", ["--new-organisation"]
    )
    state = DuckDBState(con, lock_dir=folder)
    budget = RequestBudget(args.requests_per_minute, initial_load=True)

    def factory() -> ChaserClient:
        return ChaserClient(
            emulator.url,
            API_KEY,
            secret,
            max_in_flight=args.in_flight,
            initial_load_in_flight=args.initial_load_in_flight,
            budget=budget,
        )

    try:
        reports, wall = sync_all(state, factory, "bench-first-load")
    finally:
        emulator.stop()
    log = log_since(emulator.state, 0)
    requests = sum(r.is_write for r in log)
    print(
        f"first load (waiver, --initial-load budget, {args.initial_load_in_flight} in flight): "
        f"{wall:.1f} s, {requests:,d} write requests ({requests / wall:,.0f} a second), "
        f"{sum(r.status == 429 for r in log)} answered 429, fell back: {budget.fell_back}"
    )
    for name, report in reports.items():
        print(
            f"  {name:16s} sent {report.attempted:>9,d}  requests {report.requests:>7,d}  "
            f"{report.duration_seconds:>6.1f} s  failed {report.failed}"
        )
    assert not budget.fell_back and not any(r.status == 429 for r in log)
    return state, max((r.seq for r in log), default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=333.34)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--share", type=float, default=0.01, help="invoices, credit notes changed")
    parser.add_argument("--customers", type=int, default=500, help="customers renamed")
    parser.add_argument("--contacts", type=int, default=200, help="customers whose contacts change")
    parser.add_argument("--requests-per-minute", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--initial-load-in-flight", type=int, default=16)
    parser.add_argument("--days", type=int, default=2, help="incremental syncs after the load")
    parser.add_argument("--keep", type=Path, help="folder to keep the warehouse, DB and state in")
    parser.add_argument(
        "--without-contact-persons",
        action="store_true",
        help="leave contact persons out: their first load is one request per customer (about "
        "100,000 at full scale, ~25 min against the emulator on a busy 2-core machine)",
    )
    args = parser.parse_args()
    if args.without_contact_persons:
        SKIPPED.add("contact_persons")
        args.contacts = 0
    rpm = args.requests_per_minute
    print(
        f"chaser-pipeline budget benchmark  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
        f"python {sys.version.split()[0]}  duckdb {duckdb.__version__}  {psutil.cpu_count()} "
        f"cores  {psutil.virtual_memory().total / 2**30:.0f} GB  load average "
        f"{' '.join(f'{x:.2f}' for x in psutil.getloadavg())}"
    )
    with tempfile.TemporaryDirectory(prefix="chaser-budget-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*"):
            old.unlink()
        warehouse, secret = folder / "warehouse.duckdb", secrets.token_urlsafe(16)
        started = time.perf_counter()
        print(generate_demo_warehouse(warehouse, scale=args.scale, seed=args.seed).rows)
        con = duckdb.connect(str(folder / "pipeline.duckdb"))
        land(con, warehouse)
        build_models(con)
        print(f"warehouse, landing, models: {time.perf_counter() - started:.1f} s\n")

        state, seq = first_load(con, folder, secret, args)
        for day in range(1, args.days + 1):
            started = time.perf_counter()
            changed = change_warehouse(
                con, warehouse, args.share, args.customers, args.contacts, day
            )
            land(con, warehouse)
            build_models(con, quiet=True)
            print(
                f"\n== day {day}: changed {changed}; landing and models again: "
                f"{time.perf_counter() - started:.1f} s; load average "
                f"{' '.join(f'{x:.2f}' for x in psutil.getloadavg())}"
            )
            seq = incremental(con, state, folder, secret, args, changed, seq, rpm)
        con.close()


def incremental(con, state, folder, secret, args, changed, seq, rpm) -> int:
    """Steps 4 and 5, then the checks; the last request's seq."""
    history_start = datetime.fromisoformat(f"{DEFAULT_HISTORY_START}-01").date()
    pending = compute_pending(
        state, TARGET, models_dir(), history_start=history_start, now=now_utc()
    )
    forecast = RequestBudget(rpm).forecast(pending.requests)
    print(f"forecast (pending months): {forecast}; by object {pending.requests_by_object}")
    emulator = EmulatorProcess(
        folder / "emulator.sqlite3",
        secret,
        folder / "emulator.log",
        ["--requests-per-minute", str(rpm), "--waiver-hours", "0"],
    )
    try:
        previous = RequestBudget(rpm)
        warm = time.perf_counter()
        asyncio.run(warm_up(emulator.url, secret, previous, rpm))
        print(f"warm-up: {rpm} reads paced over {time.perf_counter() - warm:.1f} s")
        seq = max((r.seq for r in log_since(emulator.state, seq)), default=seq)
        budget = RequestBudget(rpm, recent=previous.recent())

        def factory() -> ChaserClient:
            return ChaserClient(
                emulator.url, API_KEY, secret, max_in_flight=args.in_flight, budget=budget
            )

        reports, wall = sync_all(state, factory, "bench-incremental")
    finally:
        emulator.stop()
    log = log_since(emulator.state, seq)
    report_and_check(reports, wall, log, changed, pending.requests_by_object, budget, rpm)
    print(f"(objects left out: {', '.join(sorted(SKIPPED))})" if SKIPPED else "")
    return max((r.seq for r in log), default=seq)


def report_and_check(reports, wall, log, changed, forecast, budget, rpm) -> None:
    writes = Counter(r.object_name for r in log if r.is_write)
    routes = {r.path.split("/")[4] for r in log if r.object_name == "contact_persons"}
    requests, limited = sum(writes.values()), sum(r.status == 429 for r in log)
    problems = []
    print(
        f"\n{'object':16s} {'changed':>8s} {'sent':>8s} {'requests':>8s} {'expected':>8s} "
        f"{'forecast':>8s} {'plan+send s':>11s}"
    )
    for name, report in reports.items():
        if name == "contact_persons":
            expected = len(routes)  # one request per customer with changes
        else:
            expected = math.ceil(report.attempted / BULK_LIMIT)
        print(
            f"{name:16s} {changed[name]:>8,d} {report.attempted:>8,d} {writes[name]:>8,d} "
            f"{expected:>8,d} {forecast[name]:>8,d} {report.duration_seconds:>11.1f}"
        )
        if not (report.attempted == changed[name] and writes[name] == expected == forecast[name]):
            problems.append(f"{name}: changed/sent/requests/expected/forecast disagree")
        if name == "contact_persons" and len(routes) != changed[name]:
            problems.append(f"contact persons went to {len(routes)} customers")
    ideal = requests * 60 / rpm
    print(
        f"\nwrite requests {requests}, reads {len(log) - requests}; wall {wall:.1f} s against "
        f"{requests} / {rpm} minutes = {ideal:.1f} s (difference {wall - ideal:+.1f} s, allowed "
        f"±{TOLERANCE_SECONDS:.0f} s); 429s {limited}; waited for the budget "
        f"{budget.stats.waited_seconds:.1f} s (summed over requests in flight)"
    )
    if limited:
        problems.append(f"{limited} answers 429")
    if abs(wall - ideal) > TOLERANCE_SECONDS:
        problems.append(f"wall {wall:.1f} s is not within {TOLERANCE_SECONDS} s of {ideal:.1f} s")
    assert not problems, "; ".join(problems)
    print("checks passed")


if __name__ == "__main__":
    main()
