"""`chaser-pipeline report` and `chaser-pipeline sql`: what the pipeline's DuckDB says, read with
the duckdb package the install already has (no `duckdb` executable needed).

The report answers a finance user's questions after a sync: what was held back and why, what
Chaser refused and what it said, what waits for its customer, what Chaser holds in an older
version than the ledger's, and which months still need a sync.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from chaser_pipeline.chaser.client import display_url
from chaser_pipeline.db import table_exists
from chaser_pipeline.defs.chaser_sync.pending_cache import CACHE_TABLE, pending_version
from chaser_pipeline.sync.objects import CHASER_OBJECTS
from chaser_pipeline.sync.state import STATE_TABLE, TARGETS_TABLE, Target

REJECTIONS = "chaser_rejections"


class ReportError(RuntimeError):
    """The pipeline's DuckDB cannot be read (missing, or locked by a running sync)."""


def open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    if not path.exists():
        raise ReportError(f"{path} does not exist yet: run `chaser-pipeline sync` first")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        raise ReportError(
            f"cannot read {path} while another process writes it (a sync or the UI's run is "
            f"under way?): {exc}"
        ) from None


@dataclass(frozen=True)
class ReasonCount:
    entity: str
    reason_code: str
    rows: int
    example_key: str
    example_detail: str


def held_back_by_reason(
    con: duckdb.DuckDBPyConnection, severity: str = "held_back"
) -> list[ReasonCount]:
    """Rows of chaser_rejections with this severity, by entity and reason, with one example."""
    if not table_exists(con, REJECTIONS):
        return []
    rows = con.execute(
        f"""select entity, reason_code, count(*), min(key), arg_min(detail, key)
        from {REJECTIONS} where severity = $severity
        group by all order by 3 desc, 1, 2""",
        {"severity": severity},
    ).fetchall()
    return [ReasonCount(*row) for row in rows]


def held_back_line(counts: Sequence[ReasonCount]) -> str:
    """One line for the sync summary: total held back, then the count of each reason."""
    total = sum(c.rows for c in counts)
    if not total:
        return "held back by the models' rules: none"
    parts = ", ".join(f"{c.reason_code} ({c.entity}) {c.rows}" for c in counts)
    return f"held back by the models' rules: {total} ({parts})"


def last_target(con: duckdb.DuckDBPyConnection) -> Target | None:
    """The Chaser organisation the pipeline last checked, as its DuckDB recorded it (the sync
    state's working copy; with CHASER_STATE_URL, as of the last sync on this machine)."""
    if not table_exists(con, TARGETS_TABLE):
        return None
    row = con.execute(
        f"""select url, organisation_id, organisation_name from {TARGETS_TABLE}
        order by last_checked_at desc limit 1"""
    ).fetchone()
    return Target(*row) if row else None


def _rejected_by_chaser(
    con: duckdb.DuckDBPyConnection, target: Target | None
) -> list[tuple[str, str, int, str]]:
    """Documents whose last answer from Chaser was a refusal: object, message, count, example."""
    if target is None or not table_exists(con, STATE_TABLE):
        return []
    return con.execute(
        f"""select object, coalesce(last_error, '(no message)'), count(*), min(key)
        from {STATE_TABLE} where target = $target and last_status = 'failed'
        group by all order by 3 desc, 1, 2""",
        {"target": target.key},
    ).fetchall()


def _waiting_for_customer(
    con: duckdb.DuckDBPyConnection, target: Target | None
) -> list[tuple[str, int]]:
    """Documents in the marts whose customer Chaser has not accepted: the sync holds them back."""
    if target is None or not table_exists(con, STATE_TABLE):
        return []
    found = []
    for chaser_object in CHASER_OBJECTS.values():
        column = chaser_object.customer_column
        if not column or not table_exists(con, chaser_object.mart):
            continue
        ((n,),) = con.execute(
            f"""select count(*) from {chaser_object.mart} as m
            where not exists (
                select 1 from {STATE_TABLE} as c where c.target = $target
                and c.object = 'customers' and c.key = m.{column} and c.payload_hash is not null)""",
            {"target": target.key},
        ).fetchall()
        found.append((chaser_object.name, n))
    return found


def _stale_in_chaser(
    con: duckdb.DuckDBPyConnection, target: Target | None
) -> list[tuple[str, int, str]]:
    """Documents Chaser holds whose ledger version is now held back by a rule (so the mart no
    longer has them): Chaser shows an older version until the ledger is fixed."""
    if target is None or not table_exists(con, STATE_TABLE) or not table_exists(con, REJECTIONS):
        return []
    found = []
    for chaser_object in CHASER_OBJECTS.values():
        if not table_exists(con, chaser_object.mart):
            continue
        row = con.execute(
            f"""select count(distinct s.key), min(s.key) from {STATE_TABLE} as s
            join {REJECTIONS} as r on r.key = s.key
            where s.target = $target and s.object = $object and s.payload_hash is not null
            and r.entity = $entity and r.severity = 'held_back'
            and s.key not in (select {chaser_object.key} from {chaser_object.mart})""",
            {
                "target": target.key,
                "object": chaser_object.name,
                "entity": chaser_object.ledger_entity,
            },
        ).fetchone()
        if row and row[0]:
            found.append((chaser_object.name, row[0], row[1]))
    return found


def _pending(
    con: duckdb.DuckDBPyConnection,
    target: Target | None,
    models_dir: Path,
    history_start: date,
    now: Any,
) -> tuple[dict | None, str]:
    """The pending months as last planned, and whether that plan is still current."""
    if target is None or not table_exists(con, CACHE_TABLE):
        return None, "not planned yet: run `chaser-pipeline sync`"
    row = con.execute(f"select input_version, pending, computed_at from {CACHE_TABLE}").fetchone()
    if row is None:
        return None, "not planned yet: run `chaser-pipeline sync`"
    version, pending, computed_at = row
    current = pending_version(con, target, models_dir, history_start, now) == version
    note = (
        f"planned at {computed_at:%Y-%m-%d %H:%M} UTC, still current"
        if current
        else f"planned at {computed_at:%Y-%m-%d %H:%M} UTC; the ledger or the sync state changed "
        "since, so the next `chaser-pipeline sync` plans again"
    )
    return json.loads(pending), note


def write_report(
    con: duckdb.DuckDBPyConnection,
    *,
    models_dir: Path,
    history_start: date,
    now: Any,
    out: Callable[[str], None] = print,
) -> None:
    """Print the report's five sections."""
    target = last_target(con)
    if target is not None:
        out(
            f"Chaser: {display_url(target.url)} (organisation {target.organisation_id} "
            f"{target.organisation_name})".rstrip()
        )
    held = held_back_by_reason(con)
    out(f"Held back by the models' rules (not sent; {REJECTIONS}): {sum(c.rows for c in held)}")
    for c in held:
        out(
            f"  {c.entity:<12} {c.reason_code:<32} {c.rows:>7}   e.g. {c.example_key}: {c.example_detail}"
        )
    reported = held_back_by_reason(con, "reported")
    if reported:
        out(f"Reported, sent or ignored but worth a look: {sum(c.rows for c in reported)}")
        for c in reported:
            out(
                f"  {c.entity:<12} {c.reason_code:<32} {c.rows:>7}   e.g. {c.example_key}: {c.example_detail}"
            )

    refused = _rejected_by_chaser(con, target)
    out(f"Rejected by Chaser (its last answer; retried every sync): {sum(r[2] for r in refused)}")
    for name, message, n, key in refused:
        out(f"  {name:<12} {n:>7}   e.g. {key}: {message}")

    waiting = _waiting_for_customer(con, target)
    out(f"Waiting for their customer (sent once Chaser accepts it): {sum(n for _, n in waiting)}")
    for name, n in waiting:
        out(f"  {name:<12} {n:>7}")

    stale = _stale_in_chaser(con, target)
    out(
        "Stale in Chaser (it holds an older version; the ledger's is held back): "
        f"{sum(n for _, n, _ in stale)}"
    )
    for name, n, key in stale:
        out(f"  {name:<12} {n:>7}   e.g. {key}")

    pending, note = _pending(con, target, models_dir, history_start, now)
    months = (pending or {}).get("months", [])
    out(f"Months that need a sync: {len(months)} ({note})")
    if months:
        out(f"  {', '.join(m[:7] for m in months)}")
        documents = (pending or {}).get("documents", {})
        out("  documents: " + ", ".join(f"{k} {v}" for k, v in documents.items()))


def run_sql(con: duckdb.DuckDBPyConnection, query: str, out: Callable[[str], None] = print) -> int:
    """Run one read-only query and print its rows as an aligned table; returns the row count."""
    cursor = con.execute(query)
    if cursor.description is None:
        return 0
    names = [d[0] for d in cursor.description]
    rows = [["" if v is None else str(v) for v in row] for row in cursor.fetchall()]
    widths = [min(max([len(n), *(len(r[i]) for r in rows)]), 60) for i, n in enumerate(names)]
    out("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    out("  ".join("-" * w for w in widths))
    for row in rows:
        out("  ".join(v[:60].ljust(w) for v, w in zip(row, widths, strict=True)))
    out(f"({len(rows)} rows)")
    return len(rows)
