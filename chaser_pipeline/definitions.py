"""The chaser-pipeline code location: every Dagster object of the `defs/` folder, nothing else."""

from pathlib import Path

import dagster as dg

from chaser_pipeline.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    # Bad configuration fails here with the variable named, before any definition is built.
    load_settings()
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
