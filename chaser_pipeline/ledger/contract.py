"""The ledger contract's five source tables, and the check an extract's columns must pass.

Everything downstream depends only on these columns (LEDGER_CONTRACT.md). An extract whose query
returns a missing or mistyped column fails before anything is written, naming the table, the
column and the SQL file to edit.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from chaser_pipeline.paths import sql_dir

MONEY = "DECIMAL(18,2)"


@dataclass(frozen=True)
class LedgerTable:
    name: str
    key: str
    columns: tuple[tuple[str, str], ...]  # (column, DuckDB type)
    description: str

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def sql_file(self) -> str:
        return f"sql/{self.name}.sql"

    def read_sql(self) -> str:
        return (sql_dir() / f"{self.name}.sql").read_text()


LEDGER_TABLES: dict[str, LedgerTable] = {
    t.name: t
    for t in (
        LedgerTable(
            "customers",
            "customer_id",
            (
                ("customer_id", "VARCHAR"),
                ("company_name", "VARCHAR"),
                ("contact_first_name", "VARCHAR"),
                ("contact_last_name", "VARCHAR"),
                ("email", "VARCHAR"),
                ("phone", "VARCHAR"),
                ("mobile", "VARCHAR"),
                ("address_line1", "VARCHAR"),
                ("address_line2", "VARCHAR"),
                ("city", "VARCHAR"),
                ("region", "VARCHAR"),
                ("postal_code", "VARCHAR"),
                ("country", "VARCHAR"),
                ("is_archived", "BOOLEAN"),
                ("updated_at", "TIMESTAMP"),
            ),
            "Customers landed from the ledger: who Chaser reminds, and how to reach them.",
        ),
        LedgerTable(
            "invoices",
            "invoice_id",
            (
                ("invoice_id", "VARCHAR"),
                ("invoice_number", "VARCHAR"),
                ("customer_id", "VARCHAR"),
                ("status", "VARCHAR"),
                ("currency_code", "VARCHAR"),
                ("sub_total", MONEY),
                ("total", MONEY),
                ("issue_date", "DATE"),
                ("due_date", "DATE"),
                ("updated_at", "TIMESTAMP"),
            ),
            "Invoices landed from the ledger: what customers owe and when it falls due.",
        ),
        LedgerTable(
            "payments",
            "payment_id",
            (
                ("payment_id", "VARCHAR"),
                ("invoice_id", "VARCHAR"),
                ("amount", MONEY),
                ("paid_at", "TIMESTAMP"),
                ("is_reversed", "BOOLEAN"),
                ("updated_at", "TIMESTAMP"),
            ),
            "Payments landed from the ledger: money received against invoices.",
        ),
        LedgerTable(
            "credit_notes",
            "credit_note_id",
            (
                ("credit_note_id", "VARCHAR"),
                ("credit_note_number", "VARCHAR"),
                ("customer_id", "VARCHAR"),
                ("status", "VARCHAR"),
                ("currency_code", "VARCHAR"),
                ("total", MONEY),
                ("issue_date", "DATE"),
                ("updated_at", "TIMESTAMP"),
            ),
            "Credit notes landed from the ledger: credit a customer can use against invoices.",
        ),
        LedgerTable(
            "credit_allocations",
            "allocation_id",
            (
                ("allocation_id", "VARCHAR"),
                ("credit_note_id", "VARCHAR"),
                ("invoice_id", "VARCHAR"),
                ("amount", MONEY),
                ("allocated_at", "TIMESTAMP"),
                ("is_reversed", "BOOLEAN"),
                ("updated_at", "TIMESTAMP"),
            ),
            "Credit allocations landed from the ledger: credit applied to invoices or refunded.",
        ),
    )
}


class ContractViolation(ValueError):
    """The extract query's columns do not match the ledger contract."""


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_opaque_numeric(t: pa.DataType) -> bool:
    # ADBC's PostgreSQL driver hands NUMERIC over as an opaque extension holding exact digits.
    return isinstance(t, pa.OpaqueType) and t.type_name == "numeric"


def _accepts(expected: str, t: pa.DataType) -> str | None:
    """None when an Arrow type can be cast exactly to the contract type, else why not."""
    if expected == "VARCHAR":
        return None if _is_string(t) or pa.types.is_null(t) else f"is {t}, expected text"
    if expected == MONEY:
        if pa.types.is_floating(t):
            return f"is {t}, a binary float; money must be DECIMAL(18,2), never a float"
        if pa.types.is_decimal(t):
            return (
                None if t.scale <= 2 else f"is {t}; money needs at most 2 decimals (DECIMAL(18,2))"
            )
        if pa.types.is_integer(t) or _is_opaque_numeric(t) or pa.types.is_null(t):
            return None
        return f"is {t}, expected DECIMAL(18,2)"
    if expected == "DATE":
        return None if pa.types.is_date(t) or pa.types.is_null(t) else f"is {t}, expected DATE"
    if expected == "TIMESTAMP":
        ok = pa.types.is_timestamp(t) or pa.types.is_null(t)
        return None if ok else f"is {t}, expected TIMESTAMP (UTC)"
    if expected == "BOOLEAN":
        return (
            None if pa.types.is_boolean(t) or pa.types.is_null(t) else f"is {t}, expected BOOLEAN"
        )
    raise AssertionError(expected)


def validate_schema(table: LedgerTable, schema: pa.Schema) -> None:
    """Raise ContractViolation naming the table, the column(s) and the SQL file to edit."""
    got = {f.name: f.type for f in schema}
    problems = [f"missing column {c!r} ({t})" for c, t in table.columns if c not in got]
    for column, expected in table.columns:
        if column in got and (why := _accepts(expected, got[column])):
            problems.append(f"column {column!r} {why}")
    extra = [c for c in got if c not in table.column_names]
    if extra:
        problems.append(f"unexpected column(s) {', '.join(map(repr, extra))}")
    if problems:
        raise ContractViolation(
            f"Ledger table {table.name!r} does not match the contract: {'; '.join(problems)}. "
            f"Edit {table.sql_file} so it returns exactly: {', '.join(table.column_names)}."
        )


def normalise_batches(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """Make batches DuckDB-friendly without changing a value: opaque NUMERIC to its exact digits,
    time-zone-aware timestamps to naive UTC. Works batch by batch (streaming, no full copy)."""
    fields, casts = [], {}
    for i, f in enumerate(reader.schema):
        t = f.type
        if isinstance(t, pa.ExtensionType | pa.OpaqueType) and hasattr(t, "storage_type"):
            fields.append(pa.field(f.name, t.storage_type))
            casts[i] = "storage"
        elif pa.types.is_timestamp(t) and t.tz is not None:
            fields.append(pa.field(f.name, pa.timestamp(t.unit)))
            casts[i] = pa.timestamp(t.unit)
        else:
            fields.append(pa.field(f.name, t))
    if not casts:
        return reader
    schema = pa.schema(fields)

    def batches():
        for batch in reader:
            columns = []
            for i, column in enumerate(batch.columns):
                how = casts.get(i)
                if how == "storage":
                    column = column.storage
                elif how is not None:
                    # UTC instants keep their value; only the zone annotation goes.
                    column = column.cast(how)
                columns.append(column)
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())
