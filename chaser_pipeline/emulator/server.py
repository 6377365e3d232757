"""Run the emulator: in a background thread (tests, demos) or in the foreground (the CLI)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import threading
import time
from pathlib import Path

import uvicorn

from chaser_pipeline.emulator.app import EmulatorApp
from chaser_pipeline.emulator.faults import FaultConfig
from chaser_pipeline.emulator.store import EmulatorStore

DEFAULT_API_KEY = "emulator"
DEFAULT_API_SECRET = "emulator-secret"
DEFAULT_PORT = 8787
DEFAULT_STATE_FILE = "chaser_emulator.sqlite3"

log = logging.getLogger(__name__)


def build_app(
    state_path: str | Path,
    *,
    api_key: str = DEFAULT_API_KEY,
    api_secret: str = DEFAULT_API_SECRET,
    faults: FaultConfig | None = None,
) -> EmulatorApp:
    """The ASGI app of one emulator over the SQLite state file at state_path."""
    return EmulatorApp(
        EmulatorStore(state_path), api_key=api_key, api_secret=api_secret, faults=faults
    )


def _uvicorn_config(
    app: EmulatorApp, host: str, port: int, *, log_level: str, log_config
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        access_log=False,  # one log line per request would dominate a 10,000-request benchmark
        log_level=log_level,
        log_config=log_config,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
    )


class EmulatorHandle:
    """A running emulator in a daemon thread: `.url`, `.store_path`, `.stop()`; a context manager."""

    def __init__(
        self,
        server: uvicorn.Server,
        thread: threading.Thread,
        host: str,
        port: int,
        state_path: Path,
        app: EmulatorApp,
    ) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port
        self.state_path = state_path
        self.app = app
        self.url = f"http://{host}:{port}"

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self.app.store.close()

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorHandle(url={self.url!r}, state_path={str(self.state_path)!r})"


def run_emulator_in_thread(
    state_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str = DEFAULT_API_KEY,
    api_secret: str = DEFAULT_API_SECRET,
    faults: FaultConfig | None = None,
    startup_timeout: float = 10.0,
) -> EmulatorHandle:
    """Start an emulator on host:port (0: a free port) and return once it accepts connections."""
    state_path = Path(state_path)
    app = build_app(state_path, api_key=api_key, api_secret=api_secret, faults=faults)
    # Binding here tells us the port before the server starts, even when port=0.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        _uvicorn_config(app, host, bound_port, log_level="warning", log_config=None)
    )
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [sock]},
        name=f"chaser-emulator-{bound_port}",
        daemon=True,
    )
    thread.start()
    handle = EmulatorHandle(server, thread, host, bound_port, state_path, app)
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the Chaser emulator on {host}:{bound_port} failed to start")
        if time.monotonic() > deadline:
            handle.stop()
            raise TimeoutError(f"the Chaser emulator did not start within {startup_timeout} s")
        thread.join(0.01)  # waits on the thread, returns early if it dies
    with socket.create_connection((host, bound_port), timeout=startup_timeout):
        pass
    return handle


def serve(
    state_path: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    api_key: str = DEFAULT_API_KEY,
    api_secret: str = DEFAULT_API_SECRET,
    faults: FaultConfig | None = None,
    log_level: str = "info",
) -> None:
    """Serve the emulator in the foreground until interrupted (the `emulator` CLI command)."""
    if state_path is None:
        from chaser_pipeline.paths import data_dir

        state_path = data_dir() / DEFAULT_STATE_FILE
    app = build_app(state_path, api_key=api_key, api_secret=api_secret, faults=faults)
    print(f"Chaser emulator on http://{host}:{port}  state: {state_path}", flush=True)
    print(
        f"  use it with CHASER_API_URL=http://{host}:{port} CHASER_API_KEY={api_key} "
        "and CHASER_API_SECRET set to the --api-secret value",
        flush=True,
    )
    try:
        uvicorn.Server(
            _uvicorn_config(
                app, host, port, log_level=log_level, log_config=uvicorn.config.LOGGING_CONFIG
            )
        ).run()
    finally:
        with contextlib.suppress(Exception):
            app.store.close()


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Options of `chaser-pipeline emulator`; pass a subparser to add them to it."""
    parser = parser or argparse.ArgumentParser(
        prog="chaser-pipeline emulator", description="Run a local Chaser API emulator (HTTP)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help=f"SQLite state file (default: data/{DEFAULT_STATE_FILE})",
    )
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--api-secret", default=DEFAULT_API_SECRET)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument(
        "--rate-429", type=float, default=0.0, help="share of requests answered 429"
    )
    parser.add_argument(
        "--retry-after", type=float, default=1.0, help="Retry-After seconds on injected 429s"
    )
    parser.add_argument(
        "--rate-5xx", type=float, default=0.0, help="share of requests answered 500/503"
    )
    parser.add_argument(
        "--rate-drop",
        type=float,
        default=0.0,
        help="share of writes whose connection drops after commit",
    )
    parser.add_argument(
        "--max-rps", type=float, default=None, help="hard request rate limit (429 above it)"
    )
    parser.add_argument(
        "--first-attempt-only",
        action="store_true",
        help="a retried request never suffers a second fault",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault decisions")
    parser.add_argument("--log-level", default="info")
    return parser


def faults_from_args(args: argparse.Namespace) -> FaultConfig:
    return FaultConfig(
        latency_ms=args.latency_ms,
        rate_429=args.rate_429,
        retry_after=args.retry_after,
        rate_5xx=args.rate_5xx,
        rate_drop=args.rate_drop,
        max_rps=args.max_rps,
        first_attempt_only=args.first_attempt_only,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of `chaser-pipeline emulator` and `python -m chaser_pipeline.emulator`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = faults_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    serve(
        args.state,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        api_secret=args.api_secret,
        faults=faults,
        log_level=args.log_level,
    )
    return 0
