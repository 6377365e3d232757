"""The ledger contract's source tables, and the checks an extract's columns and values must pass.

Everything downstream depends only on these columns (LEDGER_CONTRACT.md). A table's `columns` are
every column it has in the contract and in `landing.<table>`, required ones first, then the
optional ones (`optional_columns`), which a warehouse's SQL may leave out: they land as NULL. An
optional table (`optional`, today only `contacts`) may have no SQL file at all: it lands empty.

An extract whose query returns a missing or mistyped column fails before anything is written,
naming the table, the column and the SQL file to edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from chaser_pipeline.paths import sql_dir

MONEY = "DECIMAL(18,2)"


@dataclass(frozen=True)
class LedgerTable:
    """One ledger table: its key, every column in landing order, and what may be left out."""

    name: str
    key: str
    columns: tuple[tuple[str, str], ...]  # (column, DuckDB type), as landed
    description: str
    optional_columns: tuple[str, ...] = ()  # may be missing from the SQL's result: landed as NULL
    optional: bool = False  # the SQL file may be absent: landed as an empty table

    def __post_init__(self) -> None:
        names = self.column_names
        assert self.key in names and set(self.optional_columns) <= set(names), self.name
        # Optional columns come last, so a landing table that gains them (ALTER TABLE ... ADD
        # COLUMN appends) has the same column order as one created afresh.
        assert names[len(names) - len(self.optional_columns) :] == list(self.optional_columns)

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def required_column_names(self) -> list[str]:
        return [c for c, _ in self.columns if c not in self.optional_columns]

    @property
    def sql_file(self) -> str:
        """The extract query's path as a user sees it in the repository."""
        return f"sql/{self.name}.sql"

    def sql_path(self, folder: Path | None = None) -> Path:
        return (folder or sql_dir()) / f"{self.name}.sql"

    def read_sql(self, folder: Path | None = None) -> str | None:
        """The extract query; None for an optional table whose SQL file is absent."""
        path = self.sql_path(folder)
        if not path.is_file():
            if self.optional:
                return None
            raise ContractViolation(
                f"{self.sql_file} is missing ({path}): ledger table {self.name!r} is required. "
                f"Write {self.sql_file} so it returns: {', '.join(self.required_column_names)}."
            )
        return path.read_text()


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
                ("customer_id", "VARCHAR"),
                ("currency_code", "VARCHAR"),
            ),
            "Payments landed from the ledger: money received against invoices, or on account "
            "(no invoice_id: customer_id and currency_code say whose money it is).",
            optional_columns=("customer_id", "currency_code"),
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
                ("payment_id", "VARCHAR"),
            ),
            "Credit allocations landed from the ledger: credit (or cash received on account, "
            "payment_id) applied to invoices or refunded.",
            optional_columns=("payment_id",),
        ),
        LedgerTable(
            "contacts",
            "contact_id",
            (
                ("contact_id", "VARCHAR"),
                ("customer_id", "VARCHAR"),
                ("first_name", "VARCHAR"),
                ("last_name", "VARCHAR"),
                ("email", "VARCHAR"),
                ("phone", "VARCHAR"),
                ("mobile", "VARCHAR"),
                ("is_archived", "BOOLEAN"),
                ("updated_at", "TIMESTAMP"),
            ),
            "Contacts landed from the ledger (optional table): the other people at a customer "
            "whom Chaser reminds.",
            optional=True,
        ),
    )
}


class ContractViolation(ValueError):
    """The extract's columns or values do not match the ledger contract; the message names the
    table, the column (and row key for a value) and the SQL file to edit."""


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_opaque_numeric(t: pa.DataType) -> bool:
    # ADBC's PostgreSQL driver hands NUMERIC over as an opaque extension holding exact digits.
    return isinstance(t, pa.OpaqueType) and t.type_name == "numeric"


def postgres_numeric_scale(field: pa.Field) -> tuple[int, int] | None:
    """(precision, scale) of a PostgreSQL `numeric(p, s)` column from the driver's field
    metadata; None for a `numeric` declared without them (any number of digits)."""
    typmod = int((field.metadata or {}).get(b"POSTGRESQL:typmod", b"-1"))
    if typmod < 4:
        return None
    packed = typmod - 4  # PostgreSQL packs (precision << 16) | scale, plus 4
    return packed >> 16, packed & 0xFFFF


def _accepts(expected: str, field: pa.Field) -> str | None:
    """None when an Arrow column can be cast exactly to the contract type, else why not."""
    t = field.type
    if expected == "VARCHAR":
        return None if _is_string(t) or pa.types.is_null(t) else f"is {t}, expected text"
    if expected == MONEY:
        return _accepts_money(field)
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


def _accepts_money(field: pa.Field) -> str | None:
    t = field.type
    if pa.types.is_floating(t):
        return f"is {t}, a binary float; money must be DECIMAL(18,2), never a float"
    if pa.types.is_decimal(t):
        return None if t.scale <= 2 else f"is {t}; money needs at most 2 decimals (DECIMAL(18,2))"
    if _is_opaque_numeric(t):
        declared = postgres_numeric_scale(field)
        if declared and declared[1] > 2:
            return (
                f"is PostgreSQL numeric({declared[0]},{declared[1]}); money needs at most "
                f"2 decimals (cast it to numeric(18,2) only if no value has more)"
            )
        return None
    if pa.types.is_integer(t) or pa.types.is_null(t):
        return None
    return f"is {t}, expected DECIMAL(18,2)"


def money_needs_value_check(field: pa.Field) -> bool:
    """True when a money column's type does not by itself guarantee that every value fits
    DECIMAL(18,2) exactly (16 digits before the point, 2 after), so each value must be checked:
    PostgreSQL `numeric` of any declaration (without a scale it takes any digits, and even
    `numeric(18,2)` holds 'NaN'), wide decimals, 64-bit integers."""
    t = field.type
    if pa.types.is_decimal(t):
        return t.precision - t.scale > 16
    if _is_opaque_numeric(t):
        return True
    if pa.types.is_integer(t):
        return t.bit_width == 64
    return False


def validate_schema(table: LedgerTable, schema: pa.Schema) -> None:
    """Raise ContractViolation naming the table, the column(s) and the SQL file to edit.
    Optional columns may be absent (they land as NULL); when present they are checked alike."""
    fields = {f.name: f for f in schema}
    problems = [
        f"missing column {c!r} ({t})"
        for c, t in table.columns
        if c not in fields and c not in table.optional_columns
    ]
    for column, expected in table.columns:
        if column in fields and (why := _accepts(expected, fields[column])):
            problems.append(f"column {column!r} {why}")
    extra = [c for c in fields if c not in table.column_names]
    if extra:
        problems.append(f"unexpected column(s) {', '.join(map(repr, extra))}")
    if problems:
        optional = (
            f" (and, optionally, {', '.join(table.optional_columns)})"
            if table.optional_columns
            else ""
        )
        raise ContractViolation(
            f"Ledger table {table.name!r} does not match the contract: {'; '.join(problems)}. "
            f"Edit {table.sql_file} so it returns exactly: "
            f"{', '.join(table.required_column_names)}{optional}."
        )
