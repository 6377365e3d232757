"""The Chaser API client, without Dagster: transport and retries (`client`, `retry`), the run's
request budget (`budget`), errors as Chaser documents them (`errors`), one endpoint per API
object (`endpoints`), bulk upserts with refused entries isolated (`bulk`), exact payload encoding
(`encoding`), and where to send (`target`)."""

from chaser_pipeline.chaser.budget import (
    BudgetStats,
    RequestBudget,
    describe_forecast,
    forecast_seconds,
)
from chaser_pipeline.chaser.bulk import BulkOutcome, EntryFailure, EntrySuccess
from chaser_pipeline.chaser.client import ChaserClient, ClientStats
from chaser_pipeline.chaser.encoding import dumps, encode_payload
from chaser_pipeline.chaser.errors import (
    ChaserError,
    ChaserNotAnsweringError,
    ChaserUnreachableError,
    DeadlineExceededError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnexpectedStatusError,
    ValidationError,
)

__all__ = [
    "BudgetStats",
    "BulkOutcome",
    "ChaserClient",
    "ChaserError",
    "ChaserNotAnsweringError",
    "ChaserUnreachableError",
    "ClientStats",
    "DeadlineExceededError",
    "EntryFailure",
    "EntrySuccess",
    "ForbiddenError",
    "NotFoundError",
    "RateLimitedError",
    "RequestBudget",
    "ServerError",
    "TransportError",
    "UnexpectedStatusError",
    "ValidationError",
    "describe_forecast",
    "dumps",
    "encode_payload",
    "forecast_seconds",
]
