"""A model's YAML contract as violation queries: SQL returning one row per row that breaks a rule.

The Dagster checks (`chaser_pipeline.defs.models.checks`) run these; so can anyone with a DuckDB
connection (`find_violations`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from chaser_pipeline.models.names import quote
from chaser_pipeline.models.project import Model


@dataclass(frozen=True)
class ViolationQuery:
    """A check as SQL: the query returns one row per violation (its key and the offending value)."""

    name: str
    description: str
    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)
    reads: tuple[str, ...] = ()  # other models the query reads (the check runs after them)


def contract_queries(model: Model) -> list[ViolationQuery]:
    """One violation query per contract rule kind and column, named for the UI."""
    contract = model.contract
    table = quote(model.name)
    key = contract.key_column
    key_sql = f"{quote(key)}::varchar" if key else "rowid::varchar"
    key_name = key or "rowid"
    queries: list[ViolationQuery] = []

    for columns in contract.unique:
        cols = ", ".join(quote(c) for c in columns)
        label = ", ".join(columns)
        queries.append(
            ViolationQuery(
                name=f"unique_{'_'.join(columns)}",
                description=f"No two rows of {model.name} share the same {label}.",
                sql=(
                    f"select {cols}, count(*) as duplicate_rows from {table} "
                    f"where {' and '.join(f'{quote(c)} is not null' for c in columns)} "
                    f"group by {cols} having count(*) > 1 order by {cols}"
                ),
            )
        )
    if contract.not_null:
        parts = [
            f"select {key_sql} as {quote(key_name)}, '{c}' as null_column from {table} "
            f"where {quote(c)} is null"
            for c in contract.not_null
        ]
        queries.append(
            ViolationQuery(
                name="not_null_columns",
                description=f"{', '.join(contract.not_null)} are never null in {model.name}.",
                sql=" union all ".join(parts),
            )
        )
    for column, values in contract.accepted_values.items():
        queries.append(
            ViolationQuery(
                name=f"accepted_values_{column}",
                description=f"{model.name}.{column} is one of {', '.join(map(str, values))}.",
                sql=(
                    f"select {key_sql} as {quote(key_name)}, {quote(column)} from {table} "
                    f"where {quote(column)} is not null "
                    f"and not list_contains($accepted, {quote(column)})"
                ),
                params={"accepted": list(values)},
            )
        )
    for column, (target, target_column) in contract.relationships.items():
        queries.append(
            ViolationQuery(
                name=f"relationship_{column}",
                description=f"Every {model.name}.{column} exists in {target}.{target_column}.",
                sql=(
                    f"select {key_sql} as {quote(key_name)}, t.{quote(column)} from {table} as t "
                    f"where t.{quote(column)} is not null and not exists ("
                    f"select 1 from {quote(target)} as r "
                    f"where r.{quote(target_column)} = t.{quote(column)})"
                ),
                reads=(target,),
            )
        )
    return queries


@dataclass(frozen=True)
class Violations:
    count: int
    examples: list[dict[str, Any]]


def find_violations(
    con: duckdb.DuckDBPyConnection, query: ViolationQuery, *, examples: int = 5
) -> Violations:
    """Count the query's rows and keep the first few as examples, in one pass."""
    cursor = con.execute(
        f"select count(*) over () as __violations, * from (\n{query.sql}\n) limit {int(examples)}",
        dict(query.params),
    )
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    count = rows[0][0] if rows else 0
    return Violations(
        count,
        [{n: _plain(v) for n, v in zip(names[1:], row[1:], strict=True)} for row in rows],
    )


def _plain(value: Any) -> Any:
    """A JSON-friendly example value (Decimal, dates -> text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
