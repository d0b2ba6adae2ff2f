"""Domain errors. Handlers map them to HTTP status codes with a JSON body `{"error": {code, message}}`."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "BadRequest"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class InvalidRequest(DomainError):
    status = 400
    code = "InvalidRequest"


class Unauthenticated(DomainError):
    """No valid credential: a malformed, unknown or revoked bearer API key (orchestrator/keys.py)."""

    status = 401
    code = "Unauthenticated"


class Forbidden(DomainError):
    status = 403
    code = "Forbidden"


class NotFound(DomainError):
    status = 404
    code = "NotFound"


class Conflict(DomainError):
    status = 409
    code = "Conflict"


class TooLarge(DomainError):
    status = 413
    code = "TooLarge"
