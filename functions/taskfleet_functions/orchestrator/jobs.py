"""Job items: reads and every job state transition (each a conditional update on the current state)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from taskfleet import rules

from .. import faults
from ..dal.dynamo import Item
from ..dal.repository import BadCursor, Page, Table
from .errors import Conflict, InvalidRequest, NotFound
from .states import ACTIVE_JOB_STATES, RETRYABLE_JOB_STATES, JobState


class Jobs:
    def __init__(self, table: Table, clock: Callable[[], int]) -> None:
        self.table = table
        self.clock = clock
        self.transitions: Counter[JobState] = Counter()  # jobs this process finished (for metrics)

    def get(self, job_id: str) -> Item:
        if not rules.is_plausible_id(job_id):  # DynamoDB rejects keys over 2 KB with a 500-worthy error
            raise NotFound(f"job {job_id!r:.80} does not exist", code="JobNotFound")
        job = self.table.get_job(job_id)
        if job is None or job.get("type") != "job":
            raise NotFound(f"job {job_id!r} does not exist", code="JobNotFound")
        return job

    def brief(self, job_id: str) -> Item | None:
        """What a runner call needs of the job (id, state, name), or None."""
        return self.table.get_job(job_id, brief=True)

    def list(self, *, limit: int = 50, cursor: str | None = None, **filters: Any) -> Page:
        """Jobs newest first; `filters` as `Table.list_jobs` takes them (states, name, clusters,
        automation_ids, submitted)."""
        try:
            return self.table.list_jobs(limit=limit, cursor=cursor, **filters)
        except BadCursor as err:
            raise InvalidRequest(str(err)) from None

    def start(self, job_id: str, now: int) -> None:
        """SUBMITTED -> RUNNING at the first claim."""
        faults.point("claim.before_job_running")
        self.table.job_transition(
            job_id, from_states=(JobState.SUBMITTED,), set={"state": JobState.RUNNING, "started_at": now}
        )

    def complete(self, job_id: str) -> None:
        faults.point("propagate.before_job_completed")
        done = self.table.job_transition(
            job_id, from_states=ACTIVE_JOB_STATES, set={"state": JobState.COMPLETED, "finished_at": self.clock()}
        )
        if done.ok:
            self.transitions[JobState.COMPLETED] += 1

    def fail(self, job_id: str, task: Item, message: str) -> None:
        failure = {"task_id": task["task_id"], "name": task["name"], "message": message}
        result = self.table.job_transition(
            job_id,
            from_states=ACTIVE_JOB_STATES,
            set={"state": JobState.FAILED, "finished_at": self.clock(), "failure": failure},
        )
        if result.ok:
            self.transitions[JobState.FAILED] += 1

    def cancel(self, job_id: str) -> Item:
        job = self.get(job_id)
        result = self.table.job_transition(
            job_id, from_states=ACTIVE_JOB_STATES, set={"state": JobState.CANCELED, "finished_at": self.clock()}
        )
        if result.ok and result.item:
            return result.item
        current = result.item or job
        if current.get("state") == JobState.CANCELED:
            return current
        raise Conflict(
            f"job is {current.get('state')}; only a submitted or running job can be canceled", code="JobNotActive"
        )

    def reopen(self, job_id: str, outbox_due: int, token: str | None = None) -> tuple[bool, Item | None]:
        """FAILED/CANCELED -> RUNNING, with an outbox entry (the retry's dispatch is not done yet). Returns
        whether it moved and the job's image (the new one, or the current one when it did not move)."""
        result = self.table.job_transition(
            job_id,
            from_states=RETRYABLE_JOB_STATES,
            set={"state": JobState.RUNNING, **({"retry_token": token} if token else {})},
            remove=("finished_at", "failure", "retry_dispatched"),
            outbox_due=outbox_due,
        )
        return result.ok and result.item is not None, result.item

    def clear_outbox(self, job_id: str, *, dispatched: int | None = None) -> None:
        self.table.clear_outbox(job_id, dispatched=dispatched)

    def drain_transitions(self) -> dict[str, Any]:
        counts, self.transitions = {str(k): v for k, v in self.transitions.items()}, Counter()
        return counts
