"""Named states, outcomes and reason codes (the reference product's names where it has them).

Each is a StrEnum: its members are the very strings stored in DynamoDB and sent on the wire, so they
compare equal to those strings and serialize as them.
"""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPUTED = "COMPUTED"  # its execution succeeded; "completed" (a stored flag) once every child completed
    FAILED = "FAILED"


class JobState(StrEnum):
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


ACTIVE_JOB_STATES = (JobState.SUBMITTED, JobState.RUNNING)
RETRYABLE_JOB_STATES = (JobState.FAILED, JobState.CANCELED)


class Outcome(StrEnum):
    """What a runner reports about one task attempt."""

    COMPUTED = "computed"  # execute() returned: commit the result and the subtasks it submitted
    FAILED = "failed"  # execute() raised: retry or fail
    RELEASED = "released"  # the runner gives the task back unfinished (shutdown): QUEUED again, no retry counted


class ReportStatus(StrEnum):
    OK = "ok"  # recorded as computed
    REQUEUED = "requeued"  # queued again (a retry, or a released task)
    FAILED = "failed"  # recorded as failed, no retries left: the job failed
    LEASE_LOST = "lease_lost"  # not this runner's attempt any more: nothing was recorded


class ClaimStatus(StrEnum):
    RUN = "run"  # the runner holds the lease: execute the task
    BUSY = "busy"  # another runner holds it: hide the ticket until `retry_after_ms`
    DISCARD = "discard"  # nothing to run for this ticket: delete it


class Reason(StrEnum):
    """Why a claim was not `run`, or a report not recorded: a code for metrics and logs; the message
    beside it says the same for people."""

    NONE = ""
    UNKNOWN_JOB = "unknown_job"
    UNKNOWN_TASK = "unknown_task"
    JOB_NOT_ACTIVE = "job_not_active"
    TASK_FINISHED = "task_finished"
    RUNNING_ELSEWHERE = "running_elsewhere"
    TAKEN_OVER_CONCURRENTLY = "taken_over_concurrently"
    LEASES_EXPIRED = "leases_expired"  # the runner died too often: the task failed
    LEASE_LOST = "lease_lost"
    ALREADY_RECORDED = "already_recorded"
