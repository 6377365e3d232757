"""A local Chaser: a real HTTP server speaking the Chaser API, with state in SQLite, Chaser's
request limit, and faults on demand."""

from chaser_pipeline.emulator.faults import FaultConfig
from chaser_pipeline.emulator.rate_limit import RateLimitConfig
from chaser_pipeline.emulator.server import (
    EmulatorHandle,
    build_app,
    main,
    run_emulator_in_thread,
    serve,
)
from chaser_pipeline.emulator.store import EmulatorStore, RequestLogRow

__all__ = [
    "EmulatorHandle",
    "EmulatorStore",
    "FaultConfig",
    "RateLimitConfig",
    "RequestLogRow",
    "build_app",
    "main",
    "run_emulator_in_thread",
    "serve",
]
