"""Errors of the Chaser client, one class per answer Chaser documents, and how error bodies read.

Chaser documents 400 `validation_error`, 403 `forbidden_error` (bad key or secret), 404
`not_found_error`, 429 and 500, each with a body `{"message", "type", "url"}`. Anything else
(401, 409, 422, ...) is undocumented and stops the request as `UnexpectedStatusError`: no
behaviour rests on it. The one guess about undocumented bodies, an `errors` list naming the bad
entries of a bulk request by index, is `named_errors` below.

Every message names the method and path of the request and never the API key, the secret or the
Authorization header, so an error can be logged or shown in Dagster as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaser_pipeline.chaser.bulk import BulkOutcome

CREDENTIAL_VARIABLES = "CHASER_API_KEY and CHASER_API_SECRET"
URL_VARIABLE = "CHASER_API_URL"


class ChaserError(Exception):
    """Something went wrong talking to Chaser.

    `settled` is set when a bulk upsert failed part-way: the entries Chaser had already
    answered for, so the caller can record them before it stops."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        details = parse_error_body(body)
        self.chaser_message = details.message
        self.error_type = details.type
        self.settled: BulkOutcome | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ForbiddenError(ChaserError):
    """Chaser refused the API key or secret (HTTP 403 forbidden_error); retrying cannot help."""


class ValidationError(ChaserError):
    """Chaser refused the request as malformed or wrong (HTTP 400 validation_error)."""


class NotFoundError(ChaserError):
    """The URL or the entity does not exist (HTTP 404 not_found_error)."""


class RateLimitedError(ChaserError):
    """Chaser kept answering 429 after the client waited as long as it may."""


class ServerError(ChaserError):
    """Chaser answered 5xx on every attempt."""


class UnexpectedStatusError(ChaserError):
    """An answer whose status Chaser does not document (e.g. 401, 409, 422)."""


class TransportError(ChaserError):
    """The network failed (refused, dropped or unanswered connections) on every attempt."""


class ChaserUnreachableError(TransportError):
    """No connection to CHASER_API_URL could be made."""


class ChaserNotAnsweringError(TransportError):
    """Chaser accepted the requests but stopped answering them."""


class DeadlineExceededError(ChaserError):
    """The run's deadline came before the request could be sent or answered."""


@dataclass(frozen=True)
class ErrorBody:
    """Chaser's error body: `{"message": ..., "type": ..., "url": ...}` (each may be missing)."""

    message: str
    type: str | None = None
    url: str | None = None


def parse_error_body(body: Any) -> ErrorBody:
    """The parts of an error body; tolerant of bodies that are not Chaser's (a proxy's HTML)."""
    if isinstance(body, dict):
        message = next(
            (
                body[name]
                for name in ("message", "error", "detail")
                if isinstance(body.get(name), str) and body[name]
            ),
            None,
        )
        kind = body.get("type") if isinstance(body.get("type"), str) else None
        url = body.get("url") if isinstance(body.get("url"), str) else None
        return ErrorBody(message or _short(body), kind, url)
    if body in (None, ""):
        return ErrorBody("no details given")
    return ErrorBody(_short(body))


def error_message(body: Any) -> str:
    """The human-readable part of an error body."""
    return parse_error_body(body).message


def named_errors(body: Any, count: int) -> dict[int, str]:
    """The entries (positions in a bulk request of `count`) an answer names as refused.

    A guess: Chaser does not document how a bulk answer names one bad entry among 100. An
    `errors` list of `{"index": i, "message": ...}` is read; anything else names no entry (and
    the caller isolates bad entries by halving)."""
    named: dict[int, str] = {}
    errors = body.get("errors") if isinstance(body, dict) else None
    for item in errors if isinstance(errors, list) else []:
        position = item.get("index") if isinstance(item, dict) else None
        if isinstance(position, int) and not isinstance(position, bool) and 0 <= position < count:
            named.setdefault(position, error_message(item))
    return named


def refuses_entries(error: ChaserError, count: int) -> bool:
    """Whether a refused bulk request of `count` entries is about some of its entries (find
    and reject them, land the rest) rather than about the request (stop).

    400 `validation_error` always is. A guess: a 404 that names entries (an unknown customer
    reference, say) is too; one that names none means the URL itself is unknown."""
    if isinstance(error, ValidationError):
        return True
    return isinstance(error, NotFoundError) and bool(named_errors(error.body, count))


def error_for_status(method: str, path: str, status: int, body: Any) -> ChaserError:
    """The error an answer that is neither a success nor worth sending again stands for."""
    where = f"{method} {path}"
    details = parse_error_body(body)
    kind = f"HTTP {status} {details.type}" if details.type else f"HTTP {status}"
    options = {"method": method, "path": path, "status": status, "body": body}
    if status == 403:
        return ForbiddenError(
            f"Chaser refused the API key or secret ({kind}: {details.message}): check "
            f"{CREDENTIAL_VARIABLES} ({where})",
            **options,
        )
    if status == 400:
        return ValidationError(
            f"{where}: Chaser refused the request ({kind}): {details.message}", **options
        )
    if status == 404:
        return NotFoundError(f"{where}: not found ({kind}): {details.message}", **options)
    return UnexpectedStatusError(
        f"{where}: Chaser answered {kind}, which its API does not document: {details.message}",
        **options,
    )


def _short(body: Any) -> str:
    return str(body)[:500]
