"""The wire vocabulary that the SDK, the runner and the orchestrator share: task and job states, what a
runner reports, and what the orchestrator answers. Standard library only (the orchestrator functions
import this module too).

Each is a StrEnum: a member is the very string stored and sent, so it compares equal to that string and
serializes as it.
"""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPUTED = "COMPUTED"  # its execution succeeded; "completed" (a flag) once every subtask completed
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # never ran: a task below the same optional root failed
    FAILED_OPTIONAL = "FAILED_OPTIONAL"  # an optional task that failed with no retries left; the job goes on


# Where a task's part in its job is over: it counts as completed for its dependants and its parent.
SETTLED_TASK_STATES = (TaskState.COMPUTED, TaskState.FAILED_OPTIONAL, TaskState.SKIPPED)
FINISHED_TASK_STATES = (TaskState.COMPUTED, TaskState.FAILED, TaskState.FAILED_OPTIONAL, TaskState.SKIPPED)


class JobState(StrEnum):
    SUBMITTED = "SUBMITTED"
    QUEUED = "SUBMITTED"  # the reference product's older name for SUBMITTED (an alias)
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


TERMINAL_JOB_STATES = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED)


class Outcome(StrEnum):
    """What a runner reports about one task attempt."""

    COMPUTED = "computed"  # execute() returned: commit the result and the subtasks it submitted
    FAILED = "failed"  # execute() raised: retry or fail
    RELEASED = "released"  # given back unfinished (the runner stops): QUEUED again, no retry counted


class ReportStatus(StrEnum):
    """The orchestrator's answer to a report."""

    OK = "ok"  # recorded as computed
    REQUEUED = "requeued"  # queued again (a retry, or a released task): hand the ticket back at once
    FAILED = "failed"  # recorded as failed, no retries left: the job failed (unless the task is optional)
    LEASE_LOST = "lease_lost"  # not this runner's attempt any more: nothing was recorded


class ClaimStatus(StrEnum):
    """The orchestrator's answer to a claim."""

    RUN = "run"  # the runner holds the lease: execute the task
    BUSY = "busy"  # another runner holds it: hide the ticket until `retry_after_ms`
    DISCARD = "discard"  # nothing to run for this ticket: delete it
