"""The Chaser API client, without Dagster: transport and retries (`client`, `retry`), errors by
HTTP status (`errors`), one endpoint per API object (`endpoints`), bulk upserts with refused
entries isolated (`bulk`), exact payload encoding (`encoding`), and where to send (`target`)."""

from chaser_pipeline.chaser.bulk import BulkOutcome, EntryFailure, EntrySuccess
from chaser_pipeline.chaser.client import ChaserClient, ClientStats
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
