"""An extract's rows on their way in: checked against the contract, then held in a temporary
DuckDB table of the landing shape (every column; optional ones the query left out are NULL).
Nothing reaches `landing` from here; a violation fails before anything is written.

Money is never rounded: a value that does not fit DECIMAL(18,2) exactly (16 digits before the
point, 2 after) fails naming the table, the column, a row key and the SQL file, whatever the
warehouse's type (PostgreSQL `numeric` without a scale arrives as exact digits and is checked
digit by digit; DuckDB's DECIMAL(18,3) is refused by its type).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from chaser_pipeline.ledger.batches import CheckedStream
from chaser_pipeline.ledger.contract import (
    MONEY,
    ContractViolation,
    LedgerTable,
    money_needs_value_check,
    validate_schema,
)

# Exact digits that fit DECIMAL(18,2): up to 16 before the point, up to 2 after (trailing zeros
# beyond them change nothing: 100.000 fits, 100.005 does not).
FITS_MONEY_DIGITS = r"-?0*[0-9]{1,16}(\.[0-9]{0,2}0*)?"
EXAMPLES = 3


@dataclass(frozen=True)
class Staged:
    """A staged stream: the temporary table holding it and which optional columns it had."""

    name: str
    optional_columns: tuple[str, ...]


def stage(
    con: duckdb.DuckDBPyConnection,
    table: LedgerTable,
    reader: pa.RecordBatchReader,
    name: str,
    *,
    check_text: bool,
    read_error: Callable[[Exception], Exception],
) -> Staged:
    """Check a warehouse stream against the contract and hold it as temporary table `name`."""
    validate_schema(table, reader.schema)  # before a row is read
    fields = {f.name: f for f in reader.schema}
    money_to_check = [
        c
        for c, t in table.columns
        if t == MONEY and c in fields and money_needs_value_check(fields[c])
    ]
    stream = CheckedStream(reader, table, check_text=check_text, read_error=read_error)
    con.register(f"{name}_stream", stream.reader)
    source = f"{name}_stream"
    try:
        if money_to_check:
            # The digits are checked before the cast, which would round them.
            con.execute(f"create or replace temp table {name}_raw as select * from {source}")
            source = f"{name}_raw"
            for column in money_to_check:
                _check_money(con, table, source, column, stream.schema.field(column).type)
        casts = ", ".join(
            f"cast({c} as {t}) as {c}" if c in fields else f"cast(null as {t}) as {c}"
            for c, t in table.columns
        )
        con.execute(f"create or replace temp table {name} as select {casts} from {source}")
    except duckdb.Error as exc:
        raise _landing_failure(table, stream, exc) from None
    finally:
        con.unregister(f"{name}_stream")
        con.execute(f"drop table if exists {name}_raw")
    return Staged(name, tuple(c for c in table.optional_columns if c in fields))


def _check_money(
    con: duckdb.DuckDBPyConnection, table: LedgerTable, source: str, column: str, kind: pa.DataType
) -> None:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        unfit = f"not regexp_full_match({column}, '{FITS_MONEY_DIGITS}')"
    else:
        unfit = f"try_cast({column} as {MONEY}) is null"
    where = f"from {source} where {column} is not null and {unfit}"
    (count,) = con.execute(f"select count(*) {where}").fetchall()[0]
    if count:
        examples = con.execute(
            f"select {table.key}, {column}::varchar {where} order by {table.key} limit {EXAMPLES}"
        ).fetchall()
        shown = "; ".join(
            f"{table.key} = {key!r}: {value}" if key is not None else f"NULL key: {value}"
            for key, value in examples
        )
        raise ContractViolation(
            f"Ledger table {table.name!r}, column {column!r}: {count} value(s) do not fit "
            f"{MONEY} exactly (at most 16 digits before the point and 2 after), e.g. row "
            f"{shown}. Money is never rounded: fix the value(s) in the warehouse, or round them "
            f"explicitly in {table.sql_file} if that is what your ledger means."
        )


def stage_keys(
    con: duckdb.DuckDBPyConnection,
    table: LedgerTable,
    reader: pa.RecordBatchReader,
    name: str,
    *,
    check_text: bool,
    read_error: Callable[[Exception], Exception],
) -> None:
    """Hold a key-only stream as temporary table `name(key varchar)`, NULL keys included."""
    key_field = reader.schema.field(table.key)
    if why := _key_type_problem(key_field.type):
        raise ContractViolation(
            f"Ledger table {table.name!r} does not match the contract: column {table.key!r} "
            f"{why}. Edit {table.sql_file} so its key is text."
        )
    stream = CheckedStream(reader, table, check_text=check_text, read_error=read_error)
    con.register(f"{name}_stream", stream.reader)
    try:
        con.execute(
            f"create or replace temp table {name} as "
            f"select cast({table.key} as varchar) as key from {name}_stream"
        )
    except duckdb.Error as exc:
        raise _landing_failure(table, stream, exc) from None
    finally:
        con.unregister(f"{name}_stream")


def _landing_failure(table: LedgerTable, stream: CheckedStream, exc: duckdb.Error) -> Exception:
    """The original failure when the stream raised it (the warehouse's error, a bad value),
    else DuckDB's own words with the table and the file to look at."""
    if stream.failure is not None:
        return stream.failure
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ContractViolation(
        f"Ledger table {table.name!r}: the rows {table.sql_file} returned could not be landed: "
        f"{reason}. Check the values of the column it names in the warehouse, or convert them "
        f"in {table.sql_file}."
    )


def _key_type_problem(t: pa.DataType) -> str | None:
    ok = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)
    return None if ok or pa.types.is_string_view(t) else f"is {t}, expected text"
