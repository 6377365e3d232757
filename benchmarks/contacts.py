"""Benchmark (issue 12): contact persons at ~1M invoices, ~2 contacts per customer.

1. The demo warehouse (its `contacts` table: 1 to 3 per customer, 2 on average) is extracted and
   every model built; customers and contact persons are sent to an emulator (its own process, no
   request limit: the budget lifted), one bulk request per customer with contact persons.
2. The contacts of `--changed` customers (ones whose ledger contacts Chaser holds) change in the
   warehouse (first name, updated_at); the next extract, models and sync of customers and
   contact persons must send exactly one contact-person request per changed customer (the
   emulator's request log) and nothing for customers.
3. Nothing changed: the contact persons' diff (`build_plan` over the whole history against the
   confirmed hashes) is timed, twice, and the sync sends nothing.

`--diff-scale` times the no-change diff at another scale without an emulator: every planned
contact person and customer is written into the state as confirmed (as `benchmarks.pending`
does), then the diff runs twice. At ~1M invoices the first load alone is ~95,000 contact-person
requests (one per customer), so the request counts are checked at `--scale` and the diff timed at
`--diff-scale`.

    .venv/bin/python -m benchmarks.contacts [--scale 33.334] [--changed 1000] [--diff-scale 333.34]

Prints figures; asserts the request counts, never time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchmarks.scale import NOW, _extract, _generate, _models, in_child, load_average, show
from benchmarks.scale_reconcile import EmulatorRunning, load, request_counts, target

OBJECTS = ["customers", "contact_persons"]
CHANGED_AT = NOW - timedelta(hours=2)  # after the first extract's cursor, before the next run


def density(warehouse: Path) -> str:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        contacts, customers, per = con.execute(
            """select count(*), count(distinct customer_id), count(*) / count(distinct customer_id)
            from ledger.contacts"""
        ).fetchone()
    return f"{contacts:,d} ledger contacts over {customers:,d} customers ({per:.2f} per customer)"


def pick_and_change(pipeline: Path, warehouse: Path, n: int) -> list[str]:
    """Customers with a ledger contact Chaser holds (first N by id); their contacts changed."""
    import duckdb

    with duckdb.connect(str(pipeline), read_only=True) as con:
        customers = [
            r[0]
            for r in con.execute(
                """select distinct m.customer_external_id from chaser_contact_persons as m
                join chaser_sync.state as s on s.object = 'contact_persons' and s.key = m.external_id
                join landing.contacts as c on c.contact_id = m.external_id
                order by 1 limit $n""",
                {"n": n},
            ).fetchall()
        ]
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            """update ledger.contacts set first_name = coalesce(first_name, '') || ' (changed)',
            updated_at = $at where customer_id in (select unnest($ids::varchar[]))""",
            {"at": CHANGED_AT, "ids": customers},
        )
    return customers


def _incremental(warehouse: str, pipeline: str) -> dict:
    """The next run's extract of every table (an hour after the first) and models."""
    from chaser_pipeline.ledger.contract import LEDGER_TABLES
    from chaser_pipeline.ledger.extract import extract_table
    from chaser_pipeline.ledger.warehouse import Warehouse
    from chaser_pipeline.models.build import run_models
    from chaser_pipeline.paths import models_dir
    from chaser_pipeline.preflight import open_duckdb

    started = time.perf_counter()
    con = open_duckdb(Path(pipeline))
    try:
        for table in LEDGER_TABLES.values():
            extract_table(
                con,
                Warehouse.from_url(f"duckdb:///{warehouse}"),
                table,
                now=NOW + timedelta(hours=1),
            )
        run_models(con, models_dir())
    finally:
        con.close()
    return {"wall": time.perf_counter() - started}


def _diff_seconds(emulator, pipeline: str, runs: int = 2) -> list[tuple[float, dict]]:
    """The contact persons' whole-history plan against the confirmed hashes, timed."""
    from chaser_pipeline.db import WHOLE_HISTORY
    from chaser_pipeline.preflight import open_duckdb
    from chaser_pipeline.sync.objects import CHASER_OBJECTS
    from chaser_pipeline.sync.plan import SyncOptions, build_plan
    from chaser_pipeline.sync.state import DuckDBState

    con = open_duckdb(Path(pipeline))
    out = []
    try:
        state = DuckDBState(con, lock_dir=Path(pipeline).parent)
        for _ in range(runs):
            started = time.perf_counter()
            state.refresh(target(emulator))
            counts = build_plan(
                con,
                CHASER_OBJECTS["contact_persons"],
                WHOLE_HISTORY,
                SyncOptions(),
                NOW,
                target=target(emulator),
            )
            out.append((time.perf_counter() - started, dict(counts)))
    finally:
        con.close()
    return out


def _confirmed_diff(pipeline: str, runs: int = 2) -> list[tuple[float, dict]]:
    """Confirm every planned customer and contact person in the state (a synthetic target), then
    time the contact persons' whole-history diff against it."""
    from chaser_pipeline.db import WHOLE_HISTORY
    from chaser_pipeline.preflight import open_duckdb
    from chaser_pipeline.sync.objects import CHASER_OBJECTS
    from chaser_pipeline.sync.plan import SyncOptions, build_plan
    from chaser_pipeline.sync.state import STATE_TABLE, DuckDBState, Target

    fake = Target(url="http://diff.invalid", organisation_id="diff")
    con = open_duckdb(Path(pipeline))
    out = []
    try:
        state = DuckDBState(con, lock_dir=Path(pipeline).parent)
        for name in OBJECTS:
            state.refresh(fake)
            build_plan(con, CHASER_OBJECTS[name], WHOLE_HISTORY, SyncOptions(), NOW, target=fake)
            con.execute(
                f"""insert into {STATE_TABLE} by name select $t as target, $o as object,
                {CHASER_OBJECTS[name].key} as key, sync_payload_hash as payload_hash,
                $now as confirmed_at, 'confirmed' as last_status, $now as last_attempt_at
                from sync_plan where sync_action in ('create', 'update')""",
                {"t": fake.key, "o": name, "now": NOW},
            )
        for _ in range(runs):
            started = time.perf_counter()
            state.refresh(fake)
            counts = build_plan(
                con,
                CHASER_OBJECTS["contact_persons"],
                WHOLE_HISTORY,
                SyncOptions(),
                NOW,
                target=fake,
            )
            out.append((time.perf_counter() - started, dict(counts)))
    finally:
        con.close()
    return out


def _confirm_contact_persons(emulator, pipeline: str) -> int:
    """`--confirm-contacts`: write every planned contact person into the state as confirmed for
    the emulator's target, as if the first load had sent them (at ~1M invoices that load is
    ~95,000 requests, one per customer); returns how many."""
    from chaser_pipeline.db import WHOLE_HISTORY
    from chaser_pipeline.preflight import open_duckdb
    from chaser_pipeline.sync.objects import CHASER_OBJECTS
    from chaser_pipeline.sync.plan import SyncOptions, build_plan
    from chaser_pipeline.sync.state import STATE_TABLE, DuckDBState

    chaser = target(emulator)
    contact_persons = CHASER_OBJECTS["contact_persons"]
    con = open_duckdb(Path(pipeline))
    try:
        DuckDBState(con, lock_dir=Path(pipeline).parent).refresh(chaser)
        build_plan(con, contact_persons, WHOLE_HISTORY, SyncOptions(), NOW, target=chaser)
        con.execute(
            f"""insert into {STATE_TABLE} by name select $t as target, $o as object,
            {contact_persons.key} as key, sync_payload_hash as payload_hash,
            $now as confirmed_at, 'confirmed' as last_status, $now as last_attempt_at
            from sync_plan where sync_action in ('create', 'update')""",
            {"t": chaser.key, "o": "contact_persons", "now": NOW},
        )
        ((confirmed,),) = con.execute(
            f"select count(*) from {STATE_TABLE} where object = 'contact_persons'"
        ).fetchall()
    finally:
        con.close()
    return confirmed


def diff_at_scale(scale: float, folder: Path) -> None:
    warehouse, pipeline = folder / "warehouse-diff.duckdb", folder / "pipeline-diff.duckdb"
    if not pipeline.exists():
        show(f"demo generator (scale {scale})", in_child(_generate, str(warehouse), scale))
        print(f"  {density(warehouse)}")
        show("extract", in_child(_extract, f"duckdb:///{warehouse}", str(pipeline)))
        show("models", in_child(_models, str(pipeline)))
    for seconds, counts in in_child(_confirmed_diff, str(pipeline)):
        print(
            f"no-change diff (plan) of contact persons at scale {scale}: {seconds:.2f} s "
            f"{counts} ({load_average()})"
        )


def writes(emulator) -> dict[str, int]:
    return {name: w for name, (_, w) in request_counts(emulator).items() if name in OBJECTS}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {name: after.get(name, 0) - before.get(name, 0) for name in OBJECTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=33.334)
    parser.add_argument("--changed", type=int, default=1000, help="customers whose contacts change")
    parser.add_argument("--diff-scale", type=float, default=333.34, help="0: skip")
    parser.add_argument("--keep", type=Path)
    parser.add_argument(
        "--confirm-contacts",
        action="store_true",
        help="first load sends customers only and marks contact persons confirmed in the state "
        "(for ~1M invoices, where sending them all is ~95,000 requests)",
    )
    args = parser.parse_args()
    print(f"scale {args.scale}, {os.cpu_count()} CPUs, {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="chaser-contacts-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if args.diff_scale:
            diff_at_scale(args.diff_scale, folder)
        warehouse, pipeline = folder / "warehouse.duckdb", folder / "pipeline.duckdb"
        show("demo generator", in_child(_generate, str(warehouse), args.scale))
        print(f"  {density(warehouse)}")
        show("extract", in_child(_extract, f"duckdb:///{warehouse}", str(pipeline)))
        show("models", in_child(_models, str(pipeline)))
        with EmulatorRunning(folder) as emulator:
            first = ["customers"] if args.confirm_contacts else OBJECTS
            loaded = in_child(load, emulator, str(pipeline), first)
            show("first load (budget lifted)", loaded)
            print(f"  {loaded['sent']}")
            if args.confirm_contacts:
                confirmed = in_child(_confirm_contact_persons, emulator, str(pipeline))
                print(f"  {confirmed:,d} contact persons marked confirmed in the state, not sent")
            customers = pick_and_change(pipeline, warehouse, args.changed)
            print(f"changed the ledger contacts of {len(customers):,d} customers")
            in_child(_incremental, str(warehouse), str(pipeline))
            before = writes(emulator)
            synced = in_child(load, emulator, str(pipeline), OBJECTS)
            sent = delta(writes(emulator), before)
            show("sync after the change", synced)
            print(f"  write requests (emulator log): {sent}; {synced['sent']}")
            assert sent == {"customers": 0, "contact_persons": len(customers)}, sent
            for seconds, counts in in_child(_diff_seconds, emulator, str(pipeline)):
                print(
                    f"no-change diff (plan) of contact persons: {seconds:.2f} s {counts} "
                    f"({load_average()})"
                )
            before = writes(emulator)
            quiet = in_child(load, emulator, str(pipeline), OBJECTS)
            show("no-change sync", quiet)
            assert delta(writes(emulator), before) == {"customers": 0, "contact_persons": 0}
            print("  write requests: 0")


if __name__ == "__main__":
    main()
