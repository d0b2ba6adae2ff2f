"""taskfleet: self-hosted, serverless workflows on AWS.

    from taskfleet import Client, Task, ExecutionContext

The names below are loaded on first use (PEP 562), so `import taskfleet.rules` (the pure rules the
orchestrator functions share with the SDK) loads nothing else of the SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client, Cluster, ExecutionStats, Job, ProgressIndicator, TaskInfo
    from .errors import (
        ApiError,
        ApiUnavailableError,
        ConfigurationError,
        ConflictError,
        DuplicateTaskError,
        ForbiddenError,
        InvalidRequestError,
        NotFoundError,
        ServerError,
        TaskfleetError,
        TaskValidationError,
    )
    from .protocol import JobState, TaskState
    from .task import CurrentTask, ExecutionContext, FutureTask, ProgressUpdate, Task

_WHERE = {
    **dict.fromkeys(("Client", "Cluster", "ExecutionStats", "Job", "ProgressIndicator", "TaskInfo"), "client"),
    **dict.fromkeys(("JobState", "TaskState"), "protocol"),
    **dict.fromkeys(
        (
            "ApiError",
            "ApiUnavailableError",
            "ConfigurationError",
            "ConflictError",
            "DuplicateTaskError",
            "ForbiddenError",
            "InvalidRequestError",
            "NotFoundError",
            "ServerError",
            "TaskfleetError",
            "TaskValidationError",
        ),
        "errors",
    ),
    **dict.fromkeys(("CurrentTask", "ExecutionContext", "FutureTask", "ProgressUpdate", "Task"), "task"),
}

__all__ = [
    "ApiError",
    "ApiUnavailableError",
    "Client",
    "Cluster",
    "ConfigurationError",
    "ConflictError",
    "CurrentTask",
    "DuplicateTaskError",
    "ExecutionContext",
    "ExecutionStats",
    "ForbiddenError",
    "FutureTask",
    "InvalidRequestError",
    "Job",
    "JobState",
    "NotFoundError",
    "ProgressIndicator",
    "ProgressUpdate",
    "ServerError",
    "Task",
    "TaskInfo",
    "TaskState",
    "TaskValidationError",
    "TaskfleetError",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'taskfleet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
