"""Run the emulator: in a background thread (tests, demos) or in the foreground (the CLI).

The CLI takes its credentials from CHASER_EMULATOR_API_KEY and CHASER_EMULATOR_API_SECRET (a
secret on a command line shows in `ps`); `--api-key` and `--api-secret` still work.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import uvicorn

from chaser_pipeline.emulator import rules
from chaser_pipeline.emulator.app import EmulatorApp
from chaser_pipeline.emulator.faults import FaultConfig
from chaser_pipeline.emulator.rate_limit import RateLimitConfig
from chaser_pipeline.emulator.store import EmulatorStore

DEFAULT_API_KEY = "emulator"
DEFAULT_API_SECRET = "emulator-secret"
DEFAULT_PORT = 8787
DEFAULT_STATE_FILE = "chaser_emulator.sqlite3"
API_KEY_VARIABLE = "CHASER_EMULATOR_API_KEY"
API_SECRET_VARIABLE = "CHASER_EMULATOR_API_SECRET"

log = logging.getLogger(__name__)


def build_app(
    state_path: str | Path,
    *,
    api_key: str = DEFAULT_API_KEY,
    api_secret: str = DEFAULT_API_SECRET,
    faults: FaultConfig | None = None,
    rate_limit: RateLimitConfig | None = None,
    name_bad_entries: bool = rules.BULK_NAMES_BAD_ENTRIES,
) -> EmulatorApp:
    """The ASGI app of one emulator over the SQLite state file at state_path."""
    return EmulatorApp(
        EmulatorStore(state_path),
        api_key=api_key,
        api_secret=api_secret,
        faults=faults,
        rate_limit=rate_limit,
        name_bad_entries=name_bad_entries,
    )


def _stop_listening(server: uvicorn.Server) -> None:
    """An injected outage: refuse new connections at once (runs in the server's loop), then
    let the server shut down."""
    for listener in getattr(server, "servers", []):
        listener.close()
    server.should_exit = True


def _describe_limit(app: EmulatorApp) -> str:
    limit = app.rate_limit
    config = limit.config
    if config.requests_per_minute is None:
        return "no request limit"
    text = (
        f"request limit: {config.requests_per_minute} per {config.window_seconds:g} s, "
        f"{'with' if config.retry_after else 'no'} Retry-After on 429"
    )
    if limit.in_waiver():
        ends = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(limit.waiver_ends_at))
        text += f"; new organisation: no limit until {ends}"
    return text


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
        self.app.close()
        self._server.should_exit = True
        self._thread.join(timeout)
        self.app.store.close()

    def end_waiver(self) -> None:
        """End the organisation's first-24-hours waiver now (see `--new-organisation`)."""
        self.app.rate_limit.end_waiver()

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
    rate_limit: RateLimitConfig | None = None,
    name_bad_entries: bool = rules.BULK_NAMES_BAD_ENTRIES,
    startup_timeout: float = 10.0,
) -> EmulatorHandle:
    """Start an emulator on host:port (0: a free port) and return once it accepts connections.

    `rate_limit` defaults to Chaser's documented limit (200 requests a minute, no Retry-After);
    `RateLimitConfig(requests_per_minute=None)` turns it off."""
    state_path = Path(state_path)
    app = build_app(
        state_path,
        api_key=api_key,
        api_secret=api_secret,
        faults=faults,
        rate_limit=rate_limit,
        name_bad_entries=name_bad_entries,
    )
    # Binding here tells us the port before the server starts, even when port=0.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        _uvicorn_config(app, host, bound_port, log_level="warning", log_config=None)
    )
    app.on_outage = lambda: _stop_listening(server)
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
    rate_limit: RateLimitConfig | None = None,
    name_bad_entries: bool = rules.BULK_NAMES_BAD_ENTRIES,
    log_level: str = "info",
) -> None:
    """Serve the emulator in the foreground until interrupted (the `emulator` CLI command)."""
    if state_path is None:
        from chaser_pipeline.paths import data_dir

        state_path = data_dir() / DEFAULT_STATE_FILE
    app = build_app(
        state_path,
        api_key=api_key,
        api_secret=api_secret,
        faults=faults,
        rate_limit=rate_limit,
        name_bad_entries=name_bad_entries,
    )
    print(f"Chaser emulator on http://{host}:{port}  state: {state_path}", flush=True)
    print(
        f"  use it with CHASER_API_URL=http://{host}:{port} CHASER_API_KEY={api_key} "
        f"and CHASER_API_SECRET set to the emulator's secret ({API_SECRET_VARIABLE})",
        flush=True,
    )
    print(f"  {_describe_limit(app)}", flush=True)
    server = uvicorn.Server(
        _uvicorn_config(
            app, host, port, log_level=log_level, log_config=uvicorn.config.LOGGING_CONFIG
        )
    )

    def outage() -> None:
        print("  injected outage: the emulator stops listening", flush=True)
        _stop_listening(server)

    app.on_outage = outage
    try:
        server.run()
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
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"API key to accept (default: ${API_KEY_VARIABLE}, else {DEFAULT_API_KEY!r})",
    )
    parser.add_argument(
        "--api-secret",
        default=None,
        help=f"API secret to accept; prefer ${API_SECRET_VARIABLE}: a command line shows in ps",
    )
    limits = parser.add_argument_group("request limit (Chaser's documented one by default)")
    limits.add_argument(
        "--requests-per-minute",
        type=int,
        default=rules.REQUESTS_PER_MINUTE,
        help=f"requests admitted in any minute (default {rules.REQUESTS_PER_MINUTE}; 0: no limit)",
    )
    limits.add_argument(
        "--rate-limit-retry-after",
        action="store_true",
        help="send Retry-After with each 429 of the limit (Chaser's document does not say it does)",
    )
    limits.add_argument(
        "--new-organisation",
        action="store_true",
        help="the organisation is new: no limit for its first 24 hours (kept in the state file)",
    )
    limits.add_argument(
        "--waiver-hours",
        type=float,
        default=rules.WAIVER_SECONDS / 3600,
        help="length of a new organisation's waiver (default 24)",
    )
    parser.add_argument(
        "--bulk-errors",
        choices=("indexed", "message-only"),
        default="indexed" if rules.BULK_NAMES_BAD_ENTRIES else "message-only",
        help="how a refused bulk request names its bad entries: an `errors` list with indexes, "
        "or only a message (the client then finds them by halving)",
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    faults.add_argument(
        "--rate-429", type=float, default=0.0, help="share of requests answered 429"
    )
    faults.add_argument(
        "--retry-after",
        type=float,
        default=None,
        help="Retry-After seconds on injected 429s (default: none sent)",
    )
    faults.add_argument(
        "--rate-5xx", type=float, default=0.0, help="share of requests answered 500/503"
    )
    faults.add_argument(
        "--server-error-status",
        type=int,
        default=None,
        metavar="STATUS",
        help="the status of injected server errors (default: 500 or 503 at random)",
    )
    faults.add_argument(
        "--rate-drop",
        type=float,
        default=0.0,
        help="share of writes whose connection drops after commit",
    )
    faults.add_argument(
        "--first-attempt-only",
        action="store_true",
        help="a retried request never suffers a second random fault",
    )
    faults.add_argument(
        "--silent-after",
        type=int,
        default=None,
        metavar="N",
        help="after N requests, accept connections and never answer",
    )
    faults.add_argument(
        "--outage-after",
        type=int,
        default=None,
        metavar="N",
        help="after N requests, stop listening (connections refused; the emulator exits)",
    )
    faults.add_argument(
        "--forbidden-after",
        type=int,
        default=None,
        metavar="N",
        help="after N requests, answer 403 to everything (credentials revoked)",
    )
    faults.add_argument("--seed", type=int, default=0, help="seed of the fault decisions")
    parser.add_argument("--log-level", default="info")
    return parser


def faults_from_args(args: argparse.Namespace) -> FaultConfig:
    return FaultConfig(
        latency_ms=args.latency_ms,
        rate_429=args.rate_429,
        retry_after=args.retry_after,
        rate_5xx=args.rate_5xx,
        server_error_status=args.server_error_status,
        rate_drop=args.rate_drop,
        first_attempt_only=args.first_attempt_only,
        silent_after=args.silent_after,
        outage_after=args.outage_after,
        forbidden_after=args.forbidden_after,
        seed=args.seed,
    )


def rate_limit_from_args(args: argparse.Namespace) -> RateLimitConfig:
    return RateLimitConfig(
        requests_per_minute=args.requests_per_minute or None,
        retry_after=args.rate_limit_retry_after,
        new_organisation=args.new_organisation,
        waiver_seconds=args.waiver_hours * 3600,
    )


def credentials_from(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The key and secret to accept: flags, else the environment, else the defaults."""
    from chaser_pipeline.settings import emulator_credentials

    env_key, env_secret = emulator_credentials(environ)
    return (
        args.api_key or env_key or DEFAULT_API_KEY,
        args.api_secret or env_secret or DEFAULT_API_SECRET,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of `chaser-pipeline emulator` and `python -m chaser_pipeline.emulator`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = faults_from_args(args)
        rate_limit = rate_limit_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    api_key, api_secret = credentials_from(args)
    serve(
        args.state,
        host=args.host,
        port=args.port,
        api_key=api_key,
        api_secret=api_secret,
        faults=faults,
        rate_limit=rate_limit,
        name_bad_entries=args.bulk_errors == "indexed",
        log_level=args.log_level,
    )
    return 0
