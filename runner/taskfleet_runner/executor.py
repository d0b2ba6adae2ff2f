"""Runs one task attempt and returns its outcome as a value (never raises for task errors)."""

from __future__ import annotations

import asyncio
import json
import traceback
from dataclasses import dataclass, field
from typing import Any

from taskfleet.cache import JobCache
from taskfleet.task import (
    CurrentTask,
    ExecutionContext,
    JobRef,
    SubtaskSpec,
    Task,
    deserialize_input,
    is_async,
)

MAX_TRACEBACK_LINES = 30


@dataclass
class Success:
    display: str | None
    subtasks: list[SubtaskSpec] = field(default_factory=list)
    progress: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Failure:
    message: str
    traceback: str
    display: str | None = None
    error_type: str = "Exception"  # what the runner logs at INFO: a message may carry input values
    progress: list[dict[str, Any]] = field(default_factory=list)


ExecutionResult = Success | Failure


def current_task_from_claim(payload: dict[str, Any]) -> CurrentTask:
    return CurrentTask(
        id=payload["id"],
        job=JobRef(payload["job_id"], payload.get("job_name", "")),
        identifier=(payload["name"], payload["version"]),
        retry_count=int(payload.get("retry_count", 0)),
        attempt=int(payload["attempt"]),
        parent_id=payload.get("parent_id"),
        cluster=payload["cluster"],
        display=payload.get("display"),
    )


def execute(
    task_class: type[Task], payload: dict[str, Any], runner_context: Any = None, cache: JobCache | None = None
) -> ExecutionResult:
    context = ExecutionContext(current_task_from_claim(payload), runner_context=runner_context, cache=cache)
    try:
        task = deserialize_input(task_class, json.loads(payload.get("input") or "null"))
        if is_async(task):
            asyncio.run(task.execute(context))  # type: ignore[arg-type, func-returns-value]
        else:
            task.execute(context)
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt | SystemExit):
            raise
        lines = traceback.format_exception(type(err), err, err.__traceback__)
        summary = "".join(lines[-MAX_TRACEBACK_LINES:])
        return Failure(
            f"{type(err).__name__}: {err}",
            summary,
            context.current_task.display,
            type(err).__name__,
            context.reported_progress,
        )
    return Success(context.current_task.display, context.submitted_subtasks, context.reported_progress)
