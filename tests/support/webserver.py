"""Starting and stopping a Dagster webserver (`dagster dev`, `chaser-pipeline ui`) in a test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_processes(sid: int) -> list[str]:
    """`ps` lines of every process still in the server's session."""
    out = subprocess.run(
        ["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if line.split()[1] == str(sid)]


def stop_session(proc: subprocess.Popen, deadline_s: float = 20.0) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after a deadline."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if proc.poll() is not None and not session_processes(proc.pid):
                return
            time.sleep(0.2)


def start_in_own_session(
    command: list[str], *, cwd: Path, env: dict, log: Path
) -> subprocess.Popen:
    """Start a server in its own session: `dagster dev` ignores SIGTERM from a non-interactive
    parent, and the code server, daemon and run workers it starts must all be stopped with it."""
    with log.open("w") as out:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_for(
    what: str, probe: Callable[[], Any], deadline_s: float, proc: subprocess.Popen, log: Path
) -> Any:
    """Poll `probe` until it returns something truthy; fail with the server's log otherwise."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        assert proc.poll() is None, f"the server exited:\n{log.read_text()[-4000:]}"
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"{what} not within {deadline_s} s; server log:\n{log.read_text()[-4000:]}")


def serving(base: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            return httpx.get(f"{base}/server_info", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return probe
