"""The one Dagster home (`DAGSTER_HOME`) that `chaser-pipeline sync` records runs in and
`chaser-pipeline ui` shows: `$DAGSTER_HOME` when set, else `data/dagster_home`."""

from __future__ import annotations

import os
from pathlib import Path

from chaser_pipeline.paths import data_dir

# Every run that calls the Chaser API shares one pool slot: overlapping runs stay in budget.
# Run monitoring marks a run that never started as failed (a run whose worker died too, where the
# run launcher can tell: not Dagster's default one, see defs/automation/runs.py).
DAGSTER_YAML = "concurrency:\n  pools:\n    default_limit: 1\nrun_monitoring:\n  enabled: true\n"

WORKSPACE_YAML = """\
load_from:
  - python_module:
      module_name: chaser_pipeline.definitions
      location_name: chaser_pipeline
"""


def default_dagster_home() -> Path:
    """Where runs are recorded when DAGSTER_HOME is not set."""
    return data_dir() / "dagster_home"


def dagster_home() -> Path:
    """The Dagster home of this command, created with its dagster.yaml if new; DAGSTER_HOME is
    set to it for Dagster (and for the processes `ui` starts)."""
    home = Path(os.environ.get("DAGSTER_HOME", "").strip() or default_dagster_home())
    home = home.expanduser().resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home


def workspace_file(home: Path) -> Path:
    """A workspace file naming this package's code location (it also works outside the repo)."""
    path = home / "workspace.yaml"
    if not path.exists() or path.read_text() != WORKSPACE_YAML:
        path.write_text(WORKSPACE_YAML)
    return path
