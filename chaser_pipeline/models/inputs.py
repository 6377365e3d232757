"""The tables the models read besides each other: the landed ledger, the extract's record of hard
deletes, and what Chaser holds.

- `landing.<table>` for every ledger table: every column of the contract, optional ones included
  (NULL when the warehouse does not provide them), and `landing.contacts` always (design.md).
- `landing.deleted_keys(table_name, key, deleted_at)`: keys gone from the warehouse; their last
  row stays in `landing.<table>`. The models read it beside the ledger table it names, so it is
  no asset dependency of its own.
- `chaser_sync.holdings(object, key, payload_hash)`: the current Chaser target's confirmed rows,
  kept current by the sync; the models read `chaser_sync.holding_keys(object, key)`, a view of
  its keys: which documents Chaser holds is what they use, so a sync that only updates
  documents Chaser holds leaves their input version, and their tables, as they were.

`ensure_model_inputs` (run before every model build) creates the last two empty when nothing has
written them yet, so the models can always read them.
"""

from __future__ import annotations

import duckdb

from chaser_pipeline.ledger.contract import LEDGER_TABLES
from chaser_pipeline.ledger.landing import DELETED_KEYS_COLUMNS, ensure_deleted_keys

Columns = tuple[tuple[str, str], ...]

DELETED_KEYS = "deleted_keys"

HOLDINGS_SCHEMA = "chaser_sync"
HOLDINGS = "holdings"
HOLDING_KEYS_VIEW = "chaser_sync.holding_keys"
HOLDING_KEYS_DDL = (
    f"create view if not exists {HOLDING_KEYS_VIEW} as select object, key from chaser_sync.holdings"
)
HOLDINGS_COLUMNS: Columns = (
    ("object", "VARCHAR"),
    ("key", "VARCHAR"),
    ("payload_hash", "VARCHAR"),
)


def ledger_columns() -> dict[str, Columns]:
    """Every ledger table's landed columns, in landing order (optional columns last)."""
    return {name: tuple(table.columns) for name, table in LEDGER_TABLES.items()}


def landing_columns() -> dict[str, Columns]:
    """Every `landing.<table>` a model may read: the ledger tables and `deleted_keys`."""
    return {**ledger_columns(), DELETED_KEYS: DELETED_KEYS_COLUMNS}


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = $schema and table_name = $table",
            {"schema": schema, "table": table},
        ).fetchall()[0][0]
    )


def _create_empty(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, columns: Columns
) -> None:
    ddl = ", ".join(f"{name} {kind}" for name, kind in columns)
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"create table if not exists {schema}.{table} ({ddl})")


def ensure_holdings(con: duckdb.DuckDBPyConnection) -> None:
    """Create `chaser_sync.holdings` empty unless it exists (as the sync's view or a table), and
    the view of its keys the models read."""
    if not _exists(con, HOLDINGS_SCHEMA, HOLDINGS):
        _create_empty(con, HOLDINGS_SCHEMA, HOLDINGS, HOLDINGS_COLUMNS)
    con.execute(HOLDING_KEYS_DDL)


def ensure_model_inputs(con: duckdb.DuckDBPyConnection) -> None:
    """What the models read besides the ledger tables, empty when nothing wrote it yet: Chaser's
    holdings before the first sync, and `landing.deleted_keys` for a landing written without the
    key-set comparison (a copied warehouse, an older extract): no key known to be deleted."""
    ensure_holdings(con)
    ensure_deleted_keys(con)
