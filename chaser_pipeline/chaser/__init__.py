"""The Chaser API client: async, rate limited, retrying, and unaware of Dagster."""

from chaser_pipeline.chaser.client import (
    BulkOutcome,
    ChaserClient,
    ClientStats,
    EntryFailure,
    EntrySuccess,
)
from chaser_pipeline.chaser.encoding import dumps, encode_payload
from chaser_pipeline.chaser.errors import (
    AuthenticationError,
    ChaserError,
    ConflictError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    ValidationError,
)

__all__ = [
    "AuthenticationError",
    "BulkOutcome",
    "ChaserClient",
    "ChaserError",
    "ClientStats",
    "ConflictError",
    "EntryFailure",
    "EntrySuccess",
    "NotFoundError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "ValidationError",
    "dumps",
    "encode_payload",
]
