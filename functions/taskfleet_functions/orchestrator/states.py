"""Named states, outcomes and reason codes (the reference product's names where it has them).

The wire vocabulary (states, outcomes, statuses) is defined once, in the SDK's `taskfleet.protocol`,
which the runner uses too; the reason codes are the orchestrator's own. Each is a StrEnum: its members
are the very strings stored in DynamoDB and sent on the wire.
"""

from __future__ import annotations

from enum import StrEnum

from taskfleet.protocol import (
    FINISHED_TASK_STATES,
    SETTLED_TASK_STATES,
    ClaimStatus,
    JobState,
    Outcome,
    ReportStatus,
    TaskState,
)

__all__ = [
    "ACTIVE_JOB_STATES",
    "FINISHED_TASK_STATES",
    "RETRYABLE_JOB_STATES",
    "SETTLED_TASK_STATES",
    "ClaimStatus",
    "JobState",
    "Outcome",
    "Reason",
    "ReportStatus",
    "TaskState",
]


ACTIVE_JOB_STATES = (JobState.SUBMITTED, JobState.RUNNING)
RETRYABLE_JOB_STATES = (JobState.FAILED, JobState.CANCELED)


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
    SKIPPED = "skipped"  # a task below an optional root whose subtree failed: skipped, not run
    REFUSED = "refused"  # a claim of another cluster's or job's task, with a report that was recorded
