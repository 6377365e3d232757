"""Benchmark: the extract's key-set comparison (hard deletes) over ~1M invoices, from a DuckDB
warehouse and from PostgreSQL.

Every incremental extract reads the warehouse's keys (`select <key> from (<sql file>)`), reads
the rows changed since the cursor, and compares the key set with the landed one
(`chaser_pipeline.ledger.extract.extract_table`). Measured per warehouse, each phase in a fresh
process so its peak RSS is its own:

1. first extract of every ledger table (every row read and landed);
2. a run with nothing changed: the key-set read and comparison is most of what it does;
3. the same after deleting 1% of the invoices and 1,000 payments in the warehouse (checked: the
   deletes land in landing.deleted_keys).

The PostgreSQL figures come from the same demo ledger copied into a fresh database (ADBC COPY).

    .venv/bin/python -m benchmarks.key_set [--scale 333.34] [--postgres-url URL] [--skip-postgres]

Prints wall times and peak RSS; asserts the deletes were found, nothing about time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from chaser_pipeline.demo.generator import generate_demo_warehouse
from chaser_pipeline.ledger.contract import LEDGER_TABLES
from chaser_pipeline.ledger.extract import ExtractOptions, extract_table
from chaser_pipeline.ledger.warehouse import Warehouse

# After the demo's last event (2026-11-19); each run one hour later, well within a week, so
# every run after the first is incremental.
FIRST_RUN = datetime(2026, 11, 21)
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_TYPES = {
    "VARCHAR": "varchar",
    "DECIMAL(18,2)": "numeric(18,2)",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (the kernel's high-water mark)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def extract_all(url: str, pipeline: str, now: datetime) -> dict:
    """One extract of every ledger table (in a child process); figures per table and peak RSS."""
    warehouse = Warehouse.from_url(url)
    con = duckdb.connect(pipeline)
    figures = {}
    try:
        for table in LEDGER_TABLES.values():
            started = time.perf_counter()
            result = extract_table(con, warehouse, table, now=now, options=ExtractOptions())
            figures[table.name] = {
                "seconds": time.perf_counter() - started,
                "key_set_seconds": result.key_set_seconds,
                "keys_read": result.keys_read,
                "rows_fetched": result.rows_fetched,
                "full": bool(result.full_compare),
                "deleted_new": result.landed.deleted_new,
                "rows": result.landed.row_count,
            }
    finally:
        con.close()
    return {"tables": figures, "peak_rss_mb": peak_rss_mb()}


def in_child(function, *args, **kwargs):
    """Run a function in a fresh process: its peak RSS is its own."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args, **kwargs).result()


def load_into_postgres(duckdb_path: Path, admin_url: str) -> tuple[str, float]:
    """Copy the demo ledger into a new PostgreSQL database; its URL and the seconds it took."""
    import adbc_driver_postgresql.dbapi as pg

    started = time.perf_counter()
    name = f"chaser_bench_{uuid.uuid4().hex[:8]}"
    with pg.connect(admin_url, autocommit=True) as admin:
        admin.cursor().execute(f'create database "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    source = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        with pg.connect(url, autocommit=True) as conn:
            cur = conn.cursor()
            cur.execute("create schema ledger")
            for table in LEDGER_TABLES.values():
                columns = ", ".join(f"{c} {PG_TYPES[t]}" for c, t in table.columns)
                cur.execute(f"create table ledger.{table.name} ({columns})")
                reader = source.sql(f"select * from ledger.{table.name}").to_arrow_reader(100_000)
                cur.adbc_ingest(table.name, reader, mode="append", db_schema_name="ledger")
                cur.execute(f"analyze ledger.{table.name}")
    finally:
        source.close()
    return url, time.perf_counter() - started


def drop_postgres(url: str, admin_url: str) -> None:
    import adbc_driver_postgresql.dbapi as pg

    name = url.rsplit("/", 1)[1]
    with pg.connect(admin_url, autocommit=True) as admin:
        admin.cursor().execute(f'drop database if exists "{name}" with (force)')


def delete_some(kind: str, url: str, path: Path | None) -> tuple[int, int]:
    """Delete 1% of the invoices (the lowest ids) and 1,000 payments, as a ledger would."""
    statements = [
        "delete from ledger.invoices where invoice_id in (select invoice_id from ledger.invoices "
        "order by invoice_id limit (select cast(count(*) / 100 as bigint) from ledger.invoices))",
        "delete from ledger.payments where payment_id in (select payment_id from ledger.payments "
        "order by payment_id desc limit 1000)",
    ]
    count_sql = [
        "select count(distinct invoice_id) from ledger.invoices",
        "select count(distinct payment_id) from ledger.payments",
    ]
    if kind == "duckdb":
        with duckdb.connect(str(path)) as con:
            con.execute("set enable_progress_bar = false")
            before = [con.execute(sql).fetchall()[0][0] for sql in count_sql]
            for sql in statements:
                con.execute(sql)
            after = [con.execute(sql).fetchall()[0][0] for sql in count_sql]
    else:
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(url, autocommit=True) as conn:
            cur = conn.cursor()

            def count(sql: str) -> int:
                cur.execute(sql)
                return cur.fetchall()[0][0]

            before = [count(sql) for sql in count_sql]
            for sql in statements:
                cur.execute(sql)
            after = [count(sql) for sql in count_sql]
    return before[0] - after[0], before[1] - after[1]


def report(label: str, run: dict) -> None:
    tables = run["tables"]
    print(f"\n{label}  (peak RSS {run['peak_rss_mb']:,.0f} MB)")
    print(f"  {'table':20s} {'rows':>10s} {'keys read':>10s} {'key read s':>10s} {'total s':>8s}")
    for name, f in tables.items():
        print(
            f"  {name:20s} {f['rows']:>10,d} {f['keys_read']:>10,d} "
            f"{f['key_set_seconds']:>10.2f} {f['seconds']:>8.2f}"
            + (f"   deleted {f['deleted_new']:,d}" if f["deleted_new"] else "")
            + ("   (every row read)" if f["full"] else "")
        )
    print(
        f"  {'all tables':20s} {'':>10s} {'':>10s} {'':>10s} {sum(f['seconds'] for f in tables.values()):>8.2f}"
    )


def bench(kind: str, url: str, folder: Path, path: Path | None) -> None:
    pipeline = str(folder / f"pipeline-{kind}.duckdb")
    report(f"[{kind}] first extract", in_child(extract_all, url, pipeline, FIRST_RUN))
    for i in range(2):
        now = FIRST_RUN + timedelta(hours=1 + i)
        report(f"[{kind}] nothing changed (run {i + 1})", in_child(extract_all, url, pipeline, now))
    invoices, payments = delete_some(kind, url, path)
    run = in_child(extract_all, url, pipeline, FIRST_RUN + timedelta(hours=3))
    report(f"[{kind}] after deleting {invoices:,d} invoices and {payments:,d} payments", run)
    found = run["tables"]["invoices"]["deleted_new"], run["tables"]["payments"]["deleted_new"]
    assert found == (invoices, payments), (found, invoices, payments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=333.34)
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL, help="admin URL")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--keep", type=Path, help="folder to keep the warehouse and pipeline DB in")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="chaser-key-set-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        warehouse = folder / "warehouse.duckdb"
        started = time.perf_counter()
        summary = in_child(generate_demo_warehouse, warehouse, scale=args.scale)
        print(f"demo warehouse: {summary.rows} in {time.perf_counter() - started:.1f} s")

        pg_url, seconds = None, 0.0
        if not args.skip_postgres:
            # Loaded before any DuckDB run changes the demo file.
            pg_url, seconds = load_into_postgres(warehouse, args.postgres_url)
            print(f"copied into PostgreSQL in {seconds:.1f} s")
        try:
            bench("duckdb", f"duckdb:///{warehouse}", folder, warehouse)
            if pg_url:
                bench("postgresql", pg_url, folder, None)
        finally:
            if pg_url:
                drop_postgres(pg_url, args.postgres_url)


if __name__ == "__main__":
    main()
