"""Where the package finds its SQL and keeps its data: relative to the package, never the CWD."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_ROOT = PACKAGE_DIR.parent
_BUNDLED = PACKAGE_DIR / "_bundled"


def _find(name: str) -> Path:
    # An editable install (the repo) reads the top-level folder; a wheel carries a bundled copy.
    for candidate in (_REPO_ROOT / name, _BUNDLED / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"chaser-pipeline cannot find its {name!r} folder next to {PACKAGE_DIR}"
    )


def sql_dir() -> Path:
    """Folder of the extract queries, one per ledger table."""
    return _find("sql")


def models_dir() -> Path:
    """Folder of the SQL models run in the pipeline's DuckDB."""
    return _find("dbt_like_models")


def data_dir() -> Path:
    """The project's data folder: the repo's `data/` when run from a checkout, else a user folder.
    Not created here: whatever writes a file there creates it."""
    if (_REPO_ROOT / "pyproject.toml").is_file():
        return _REPO_ROOT / "data"
    return (
        Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "chaser-pipeline"
    )
