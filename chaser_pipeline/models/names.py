"""Names every part of the model stage agrees on: schemas, the SQL dialect, and safe identifiers."""

from __future__ import annotations

import re

DIALECT = "duckdb"
LANDING_SCHEMA = "landing"
MODEL_SCHEMA = "main"
# The window a build binds to $window_start / $window_end (the whole history when unpartitioned).
WINDOW_PARAMETERS = frozenset({"window_start", "window_end"})

# Identifiers reach SQL text (file stems, YAML column names): only plain lowercase names pass.
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class ModelError(ValueError):
    """A model folder that cannot work; the message names the file to fix."""


def landing_asset_name(table: str) -> str:
    """The extract asset that lands `landing.<table>`."""
    return f"ledger_{table}"


def quote(identifier: str) -> str:
    """Double-quote an identifier that already passed the IDENTIFIER check."""
    if not IDENTIFIER.match(identifier):
        raise ModelError(f"not a plain SQL identifier: {identifier!r}")
    return f'"{identifier}"'
