"""The queries an extract runs against the warehouse: the SQL file as written, and the same file
nested to read only what a check needs.

Nesting the user's query (`select <key> from (<sql>)`) keeps `sql/<table>.sql` the one place that
maps a warehouse onto the contract: whatever joins, renames or filters it holds apply to the key
set too. Both engines read only what the outer query asks for: DuckDB pushes the projection into
its scan and reads the key column alone (plus `updated_at` for the file's own filter); PostgreSQL
flattens the subquery, still visits each row but sends only the keys over the wire.
"""

from __future__ import annotations

from chaser_pipeline.ledger.contract import LedgerTable


def nestable(sql: str) -> str:
    """The query without trailing comment lines and semicolons, so it can sit in a subquery."""
    lines = sql.rstrip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
        lines.pop()
    body = "\n".join(lines).rstrip()
    while body.endswith(";"):
        body = body[:-1].rstrip()
    return body


def key_query(sql: str, table: LedgerTable) -> str:
    """Every key the query returns (NULL keys included, to count them), with no other column."""
    return f"select {table.key} from (\n{nestable(sql)}\n) as ledger_rows"


def null_key_query(sql: str, table: LedgerTable) -> str:
    """The query's rows whose key is NULL, every column."""
    return f"select * from (\n{nestable(sql)}\n) as ledger_rows where {table.key} is null"
