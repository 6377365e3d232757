"""A warehouse's Arrow stream made ready for DuckDB, value for value, with its text checked.

DuckDB wraps an exception raised while it reads a stream in its own error; a `CheckedStream`
keeps the original (the warehouse's failure mid-stream, or a bad value) for the caller to raise.

DuckDB refuses a stream whose text is not valid UTF-8 with a message that names neither the
column nor the row. PostgreSQL can hold such text (a `SQL_ASCII` database stores any bytes), so
batches from it are checked here first, and a bad value fails naming the table, the column, the
row's key and the SQL file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from chaser_pipeline.ledger.contract import ContractViolation, LedgerTable

EXCERPT_BYTES = 40


class CheckedStream:
    """`reader`: the stream with opaque NUMERIC as its exact digits and time-zone-aware
    timestamps as naive UTC, batch by batch (no full copy); `failure`: what went wrong while
    DuckDB read it, as the user should see it (`read_error` maps the warehouse's own errors)."""

    def __init__(
        self,
        reader: pa.RecordBatchReader,
        table: LedgerTable,
        *,
        check_text: bool,
        read_error: Callable[[Exception], Exception],
    ):
        self.table = table
        self.failure: Exception | None = None
        self._read_error = read_error
        fields, self._casts = [], {}
        for i, f in enumerate(reader.schema):
            t = f.type
            if isinstance(t, pa.ExtensionType | pa.OpaqueType) and hasattr(t, "storage_type"):
                fields.append(pa.field(f.name, t.storage_type))
                self._casts[i] = "storage"
            elif pa.types.is_timestamp(t) and t.tz is not None:
                fields.append(pa.field(f.name, pa.timestamp(t.unit)))
                self._casts[i] = pa.timestamp(t.unit)
            else:
                fields.append(pa.field(f.name, t))
        self.schema = pa.schema(fields)
        self._text = (
            [i for i, f in enumerate(self.schema) if _is_text(f.type)] if check_text else []
        )
        self.reader = pa.RecordBatchReader.from_batches(self.schema, self._batches(reader))

    def _batches(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        source = iter(reader)
        while True:
            try:
                batch = next(source)
            except StopIteration:
                return
            except Exception as exc:  # the warehouse failed mid-stream
                self.failure = self._read_error(exc)
                raise self.failure from None
            columns = []
            for i, column in enumerate(batch.columns):
                how = self._casts.get(i)
                if how == "storage":
                    column = column.storage
                elif how is not None:
                    # UTC instants keep their value; only the zone annotation goes.
                    column = column.cast(how)
                columns.append(column)
            batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
            self._check_text(batch)
            yield batch

    def _check_text(self, batch: pa.RecordBatch) -> None:
        for i in self._text:
            try:
                batch.column(i).validate(full=True)
            except pa.ArrowInvalid:
                self.failure = self._invalid_text(batch, self.schema.field(i).name)
                raise self.failure from None

    def _invalid_text(self, batch: pa.RecordBatch, column: str) -> ContractViolation:
        values = _as_bytes(batch.column(column))
        row = next(i for i, v in enumerate(values) if v is not None and not _is_utf8(v))
        key = (
            _as_bytes(batch.column(self.table.key))[row]
            if self.table.key in batch.schema.names
            else None
        )
        where = f"row {self.table.key} = {_show(key)}" if key is not None else "a row"
        return ContractViolation(
            f"Ledger table {self.table.name!r}, column {column!r}, {where}: the text is not valid "
            f"UTF-8 ({_show(values[row][:EXCERPT_BYTES])}). Fix the value in the warehouse, or "
            f"convert the column to UTF-8 in {self.table.sql_file}."
        )


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _as_bytes(column: pa.Array) -> list[bytes | None]:
    binary = pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary()
    return column.view(binary).to_pylist()


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _show(value: bytes | None) -> str:
    """A value as readable text, bad bytes escaped (\\xe9), quoted."""
    if value is None:
        return "NULL"
    return f"'{value.decode('utf-8', errors='backslashreplace')}'"
