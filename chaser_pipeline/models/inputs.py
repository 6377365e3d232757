"""The tables the models read besides each other: the landed ledger, the extract's record of hard
deletes, and what Chaser holds.

- `landing.<table>` for every ledger table: every column of the contract, optional ones included
  (NULL when the warehouse does not provide them), and `landing.contacts` always (design.md).
- `landing.deleted_keys(table_name, key, deleted_at)`: keys gone from the warehouse; their last
  row stays in `landing.<table>`. The models read it beside the ledger table it names, so it is
  no asset dependency of its own.
- `chaser_sync.holdings(object, key, payload_hash)`: the current Chaser target's confirmed rows,
  kept current by the sync.

`ensure_model_inputs` (run before every model build) creates the last two empty when nothing has
written them yet, so the models can always read them.
"""

from __future__ import annotations

import duckdb

from chaser_pipeline.ledger.contract import LEDGER_TABLES
from chaser_pipeline.models.names import LANDING_SCHEMA

Columns = tuple[tuple[str, str], ...]

# design.md's optional ledger parts, for as long as the ledger contract in this checkout does not
# declare them itself (the extract's LEDGER_TABLES wins wherever it does).
_OPTIONAL_COLUMNS: dict[str, Columns] = {
    "payments": (("customer_id", "VARCHAR"), ("currency_code", "VARCHAR")),
    "credit_allocations": (("payment_id", "VARCHAR"),),
}
_CONTACTS: Columns = (
    ("contact_id", "VARCHAR"),
    ("customer_id", "VARCHAR"),
    ("first_name", "VARCHAR"),
    ("last_name", "VARCHAR"),
    ("email", "VARCHAR"),
    ("phone", "VARCHAR"),
    ("mobile", "VARCHAR"),
    ("is_archived", "BOOLEAN"),
    ("updated_at", "TIMESTAMP"),
)

DELETED_KEYS = "deleted_keys"
DELETED_KEYS_COLUMNS: Columns = (
    ("table_name", "VARCHAR"),
    ("key", "VARCHAR"),
    ("deleted_at", "TIMESTAMP"),
)

HOLDINGS_SCHEMA = "chaser_sync"
HOLDINGS = "holdings"
HOLDINGS_COLUMNS: Columns = (
    ("object", "VARCHAR"),
    ("key", "VARCHAR"),
    ("payload_hash", "VARCHAR"),
)


def ledger_columns() -> dict[str, Columns]:
    """Every ledger table's landed columns, in landing order (optional columns last)."""
    tables = {name: tuple(table.columns) for name, table in LEDGER_TABLES.items()}
    for name, optional in _OPTIONAL_COLUMNS.items():
        present = {column for column, _ in tables[name]}
        tables[name] += tuple(c for c in optional if c[0] not in present)
    tables.setdefault("contacts", _CONTACTS)
    return tables


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
    """Create `chaser_sync.holdings` empty unless it exists (as the sync's view or a table)."""
    if not _exists(con, HOLDINGS_SCHEMA, HOLDINGS):
        _create_empty(con, HOLDINGS_SCHEMA, HOLDINGS, HOLDINGS_COLUMNS)


def ensure_model_inputs(con: duckdb.DuckDBPyConnection) -> None:
    """What the models read besides the ledger tables, empty when nothing wrote it yet: Chaser's
    holdings before the first sync, and `landing.deleted_keys` for a landing written without the
    key-set comparison (a copied warehouse, an older extract): no key known to be deleted."""
    ensure_holdings(con)
    if not _exists(con, LANDING_SCHEMA, DELETED_KEYS):
        _create_empty(con, LANDING_SCHEMA, DELETED_KEYS, DELETED_KEYS_COLUMNS)
