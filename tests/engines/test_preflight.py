"""Bad local places fail fast, before any data moves, naming the variable to fix: an unwritable
folder, a pipeline DuckDB that is not DuckDB or that another process holds, DAGSTER_HOME."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chaser_pipeline.preflight import check_local_paths, open_duckdb
from chaser_pipeline.settings import ConfigError, load_settings


def settings_for(path):
    return load_settings({"CHASER_DUCKDB_PATH": str(path)})


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_an_unwritable_folder_names_chaser_duckdb_path(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="CHASER_DUCKDB_PATH"):
        check_local_paths(settings_for(folder / "sub" / "p.duckdb"))


def test_a_file_that_is_not_duckdb_names_chaser_duckdb_path(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("this is a text file, not a database\n" * 10)
    with pytest.raises(ConfigError, match=r"CHASER_DUCKDB_PATH: .* is not a DuckDB file"):
        check_local_paths(settings_for(path))
    with pytest.raises(ConfigError, match="not a DuckDB file"):
        open_duckdb(path)


def test_a_file_under_a_regular_file_names_the_variable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="CHASER_DUCKDB_PATH: cannot create the folder"):
        check_local_paths(settings_for(blocker / "p.duckdb"))
    with pytest.raises(ConfigError, match="DAGSTER_HOME: cannot create the folder"):
        check_local_paths(settings_for(tmp_path / "p.duckdb"), dagster_home=blocker / "home")


def test_a_duckdb_another_process_holds_is_waited_for_then_named(tmp_path):
    path = tmp_path / "p.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        check_local_paths(settings_for(path))  # a DuckDB file: the run waits for it
        with pytest.raises(ConfigError, match=r"CHASER_DUCKDB_PATH: .* held by another process"):
            open_duckdb(path, wait_seconds=0.5)
    finally:
        holder.stdin.close()
        holder.wait(10)
    open_duckdb(path, wait_seconds=5).close()
