"""Errors of the Chaser client, one class per kind of HTTP answer.

Every message names the method and path of the request and never the API secret or the
Authorization header, so an error can be logged or shown in Dagster as it is.
"""

from __future__ import annotations

from typing import Any


class ChaserError(Exception):
    """Something went wrong talking to Chaser."""

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class AuthenticationError(ChaserError):
    """Chaser rejected the API key or secret (HTTP 401 or 403); retrying cannot help."""


class NotFoundError(ChaserError):
    """The record does not exist (HTTP 404)."""


class ValidationError(ChaserError):
    """Chaser refused the request (a 4xx other than 401/403/404/408/429); `body` is the parsed answer."""


class ConflictError(ValidationError):
    """The record's key already exists (HTTP 409), e.g. a create of a known invoice_id."""

    # True when an earlier attempt of the same request was lost in the network: it may have landed.
    after_transport_error: bool = False


class RateLimitedError(ChaserError):
    """Chaser kept answering 429 after the client waited as long as it is allowed to."""


class ServerError(ChaserError):
    """Chaser answered 5xx (or 408) on every attempt."""


class TransportError(ChaserError):
    """The network failed (timeout, refused or dropped connection) on every attempt."""


def error_message(body: Any) -> str:
    """The human-readable part of an error body: `message`, else `error`, else the body itself."""
    if isinstance(body, dict):
        for field in ("message", "error", "detail"):
            value = body.get(field)
            if isinstance(value, str) and value:
                return value
    if body in (None, ""):
        return "no details given"
    return str(body)[:500]


def error_for_status(
    method: str, path: str, status: int, body: Any, *, after_transport_error: bool = False
) -> ChaserError:
    """The error an answer that is neither a success nor worth retrying stands for."""
    where = f"{method} {path}"
    if status in (401, 403):
        return AuthenticationError(
            f"Chaser rejected the API key/secret (HTTP {status}): "
            f"check CHASER_API_KEY and CHASER_API_SECRET ({where})",
            method=method,
            path=path,
            status=status,
            body=body,
        )
    if status == 404:
        return NotFoundError(
            f"{where}: not found (HTTP 404): {error_message(body)}",
            method=method,
            path=path,
            status=status,
            body=body,
        )
    message = f"{where}: Chaser refused the request (HTTP {status}): {error_message(body)}"
    if status == 409:
        conflict = ConflictError(message, method=method, path=path, status=status, body=body)
        conflict.after_transport_error = after_transport_error
        return conflict
    return ValidationError(message, method=method, path=path, status=status, body=body)
