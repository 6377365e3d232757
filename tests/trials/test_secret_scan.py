"""No secret leaves the environment (issue 16, STYLE: never print or store a secret): after a real
`chaser-pipeline sync` against an emulator started as its own process (its credentials from
CHASER_EMULATOR_API_KEY / CHASER_EMULATOR_API_SECRET), and after a sync with a wrong secret that
Chaser refuses with 403, neither secret (nor the Basic-auth token made from it) is in any file of
the working folder or DAGSTER_HOME (DuckDB files read column by column too, since DuckDB
compresses text), in the processes' output, or on the command line of any process they ran."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psutil
import pytest

from chaser_pipeline.demo.generator import generate_demo_warehouse

API_KEY = "scan-key-7Q2"
SECRET = "Sx-9f3Kq-distinctive-secret-41c7"
WRONG_SECRET = "Wz-2b8Lm-wrong-secret-90aa"
DEADLINE = 300.0


# each secret, and the Basic-auth token made from it
TEXT_NEEDLES = [
    text
    for secret in (SECRET, WRONG_SECRET)
    for text in (secret, base64.b64encode(f"{API_KEY}:{secret}".encode()).decode())
]
NEEDLES = [t.encode() for t in TEXT_NEEDLES] + [
    t.encode("utf-16-le") for t in (SECRET, WRONG_SECRET)
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)  # polling with a deadline
    raise AssertionError(f"timed out waiting for {what}")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class CommandLines:
    """Every command line seen in a process tree while it runs."""

    def __init__(self) -> None:
        self.seen: dict[int, str] = {}

    def record(self, *roots: psutil.Process) -> None:
        for root in roots:
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    self.seen[process.pid] = " ".join(process.cmdline())


def _run_watched(command: list[str], env: dict, cwd: Path, lines: CommandLines, *others):
    """Run a command to its end, recording the command lines of its process tree (and of
    `others`) every few milliseconds; return (returncode, stdout + stderr)."""
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    watched = psutil.Process(process.pid)
    deadline = time.monotonic() + DEADLINE
    while process.poll() is None and time.monotonic() < deadline:
        lines.record(watched, *others)
        time.sleep(0.02)  # sampling the process table while the sync runs
    if process.poll() is None:
        process.kill()
    out, err = process.communicate(timeout=30)
    assert process.returncode is not None, f"{command} did not end within {DEADLINE} s"
    return process.returncode, out + err


def _duckdb_text(path: Path) -> bytes:
    """Every value of every table of a DuckDB file, as text (its pages may be compressed)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
        parts = []
        for schema, table in tables:
            for row in con.execute(f'select * from "{schema}"."{table}"').fetchall():
                parts.append(repr(row))
        return "\n".join(parts).encode()
    finally:
        con.close()


def _files_holding_a_secret(*folders: Path) -> list[str]:
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            if not path.is_file() or path.name.endswith(".wal"):
                continue
            content = path.read_bytes()
            if path.suffix == ".duckdb":
                content += _duckdb_text(path)
            found += [f"{path}: {needle[:6]!r}..." for needle in NEEDLES if needle in content]
    return found


def test_the_scan_finds_a_secret_where_one_is(tmp_path):
    """The scan's own check: a secret in a DuckDB table (compressed on disk), in a log file and
    on a command line is found."""
    con = duckdb.connect(str(tmp_path / "leaky.duckdb"))
    con.execute("create table t as select ? || range::varchar as v from range(5000)", [SECRET])
    con.close()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "run.log").write_text(f"Authorization: Basic {TEXT_NEEDLES[1]}\n")
    assert len(_files_holding_a_secret(tmp_path)) == 2
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", SECRET], stdin=subprocess.PIPE
    )
    lines = CommandLines()
    try:
        _wait_until(lambda: lines.record(psutil.Process(holder.pid)) or lines.seen, "psutil")
    finally:
        holder.communicate(b"", timeout=30)
    assert any(SECRET in c for c in lines.seen.values())


@pytest.mark.slow
def test_no_secret_in_any_file_output_or_command_line_of_a_sync(tmp_path):
    work, home = tmp_path / "work", tmp_path / "dagster_home"
    work.mkdir()
    home.mkdir()
    warehouse = generate_demo_warehouse(
        work / "warehouse.duckdb", invoices=60, customers=12, credit_notes=8, seed=5
    ).path
    port = _free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CHASER_", "DAGSTER_"))}
    emulator_env = base | {
        "CHASER_EMULATOR_API_KEY": API_KEY,
        "CHASER_EMULATOR_API_SECRET": SECRET,
    }
    emulator = subprocess.Popen(
        [sys.executable, "-m", "chaser_pipeline.emulator", "--port", str(port), "--state",
         str(work / "chaser.sqlite3"), "--requests-per-minute", "0"],
        env=emulator_env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    lines = CommandLines()
    try:
        _wait_until(lambda: _listening(port) or emulator.poll() is not None, "the emulator")
        assert emulator.poll() is None, emulator.stdout.read().decode()[-2000:]
        sync_env = base | {
            "CHASER_WAREHOUSE_URL": f"duckdb:///{warehouse}",
            "CHASER_DUCKDB_PATH": str(work / "pipeline.duckdb"),
            "CHASER_API_URL": f"http://127.0.0.1:{port}",
            "CHASER_API_KEY": API_KEY,
            "CHASER_API_SECRET": SECRET,
            "CHASER_API_REQUESTS_PER_MINUTE": "0",
            "DAGSTER_HOME": str(home),
        }
        command = [sys.executable, "-m", "chaser_pipeline.cli", "sync"]
        watched_emulator = psutil.Process(emulator.pid)
        code, output = _run_watched(command, sync_env, work, lines, watched_emulator)
        assert code == 0, output.decode()[-3000:]

        wrong = sync_env | {"CHASER_API_SECRET": WRONG_SECRET}
        code, failed_output = _run_watched(command, wrong, work, lines, watched_emulator)
        assert code != 0, failed_output.decode()[-3000:]
        assert b"403" in failed_output or b"CHASER_API_SECRET" in failed_output
    finally:
        emulator.terminate()
        emulator_output, _ = emulator.communicate(timeout=30)

    assert len(lines.seen) >= 2  # the sync and the emulator at least
    on_command_lines = [c for c in lines.seen.values() if any(t in c for t in TEXT_NEEDLES)]
    assert not on_command_lines
    for stream in (output, failed_output, emulator_output):
        assert not [n for n in NEEDLES if n in stream]
    assert not _files_holding_a_secret(work, home)
    assert (work / "pipeline.duckdb").exists() and any(home.rglob("*.db"))
