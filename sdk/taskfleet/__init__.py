"""taskfleet: self-hosted, serverless workflows on AWS.

    from taskfleet import Client, Task, ExecutionContext
"""

from .client import Client, Cluster, Job, TaskInfo
from .errors import (
    ApiError,
    ApiUnavailableError,
    ConfigurationError,
    ConflictError,
    DuplicateTaskError,
    InvalidRequestError,
    NotFoundError,
    ServerError,
    TaskfleetError,
    TaskValidationError,
)
from .task import CurrentTask, ExecutionContext, FutureTask, Task

__all__ = [
    "ApiError", "ApiUnavailableError", "Client", "Cluster", "ConfigurationError", "ConflictError",
    "CurrentTask", "DuplicateTaskError", "ExecutionContext", "FutureTask", "InvalidRequestError", "Job",
    "NotFoundError", "ServerError", "Task", "TaskInfo", "TaskValidationError", "TaskfleetError",
]
