"""Exceptions raised by the taskfleet SDK. Catch `TaskfleetError` for all of them."""

from __future__ import annotations

from typing import Any


class TaskfleetError(Exception):
    """Base class of every taskfleet SDK error."""


class ConfigurationError(TaskfleetError):
    """The client is missing something it needs (for example the API URL)."""


class TaskValidationError(TaskfleetError, ValueError):
    """A task, its input or its identifier cannot be submitted. Raised before any request is sent."""


class DuplicateTaskError(TaskfleetError, ValueError):
    """Two task classes registered on one runner share an identifier."""


class ApiError(TaskfleetError):
    """The API answered with an error. `status`, `code` and `message` come from its JSON body."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class InvalidRequestError(ApiError):
    """400/413: the request was malformed or too large; nothing was changed."""


class ForbiddenError(ApiError):
    """403: these credentials do not reach what the request names (a task of another cluster, say)."""


class NotFoundError(ApiError):
    """404: the job, task, cluster or route does not exist."""


class ConflictError(ApiError):
    """409: the request does not fit the current state (e.g. canceling a completed job)."""


class ServerError(ApiError):
    """5xx after the client's retries were used up."""


class ApiUnavailableError(TaskfleetError):
    """The API could not be reached after the client's retries."""


def error_for(status: int, body: Any) -> ApiError:
    body = body if isinstance(body, dict) else {"message": str(body)}
    info = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = str(info.get("code") or "Error")
    message = str(info.get("message") or body.get("message") or "")
    details = info.get("details")
    if status == 403:
        return ForbiddenError(status, code, message, details)
    if status == 404:
        return NotFoundError(status, code, message, details)
    if status == 409:
        return ConflictError(status, code, message, details)
    if status >= 500:
        return ServerError(status, code, message, details)
    return InvalidRequestError(status, code, message, details)
