"""Time the demo warehouse generator: rows per table, wall time and peak memory.

    .venv/bin/python -m benchmarks.demo_data [--scale 333.34] [--seed 42]

Writes into a temporary folder that is removed afterwards. Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil

from chaser_pipeline.demo.generator import generate_demo_warehouse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=333.34, help="1 = 3,000 invoices")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="chaser-demo-bench-") as folder:
        path = Path(folder) / "warehouse.duckdb"
        started = time.perf_counter()
        summary = generate_demo_warehouse(path, scale=args.scale, seed=args.seed)
        wall = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6

    # ru_maxrss is in KiB on Linux: the process's peak resident set, DuckDB's buffers included.
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"demo warehouse, scale {args.scale}, seed {args.seed}, {os.cpu_count()} CPUs")
    for table, rows in summary.rows.items():
        print(f"  {table:<20} {rows:>12,} rows")
    print(f"  {'total':<20} {sum(summary.rows.values()):>12,} rows")
    print(f"wall time          {wall:8.1f} s (generator's own figure {summary.seconds:.1f} s)")
    print(f"peak RSS           {peak_rss_mb:8.0f} MB")
    print(f"current RSS        {psutil.Process().memory_info().rss / 1e6:8.0f} MB")
    print(f"file size          {size_mb:8.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
