"""Claims and leases: a runner's claim of a ticket's task makes it RUNNING with a lease (the hash of the
runner's secret token, an expiry), extended by heartbeats. A claim is a conditional write, so each attempt
runs on at most one runner; a RUNNING task whose lease ran out is taken over as a new attempt (a lease
loss, not a retry). Only a runner of the task's own cluster may claim it, naming the task's own job
(docs/architecture.md, "Leases and the runner's cluster")."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from taskfleet import rules

from .. import faults
from ..dal.dynamo import Item, UpdateResult
from ..dal.repository import Holder, Table
from ..settings import Settings
from . import overlap
from .contracts import Claim, ClaimResult, DeferredRef, lease_hash
from .errors import Conflict, Forbidden
from .jobs import Jobs
from .propagation import Propagation
from .siblings import deferred_item
from .states import ACTIVE_JOB_STATES, ClaimStatus, JobState, Reason, TaskState
from .tree import Tree

BUSY_MARGIN_MS = 1_000


def _busy(expires: int, now: int, code: Reason, reason: str) -> ClaimResult:
    return ClaimResult(status=ClaimStatus.BUSY, retry_after_ms=expires - now + BUSY_MARGIN_MS, code=code, reason=reason)


def _discard(code: Reason, reason: str) -> ClaimResult:
    return ClaimResult(status=ClaimStatus.DISCARD, code=code, reason=reason)


def check_holder(task: Item, cluster: str, job_id: str) -> None:
    """Refuse a runner request about a task of another cluster (403) or naming another job (409)."""
    if task.get("cluster") != cluster:
        raise Forbidden(
            f"task {task.get('task_id')} belongs to another cluster than {cluster!r}, the only one this runner's"
            " credentials reach",
            code="WrongCluster",
        )
    if task.get("job_id") != job_id:
        raise Conflict(f"task {task.get('task_id')} is not a task of job {job_id}", code="WrongJob")


@dataclass(kw_only=True)
class Leases:
    table: Table
    jobs: Jobs
    tree: Tree
    propagation: Propagation
    settings: Settings
    clock: Callable[[], int]

    @property
    def lease_ms(self) -> int:
        return self.settings.lease_seconds * 1000

    def claim(self, claim: Claim, runner_id: str, *, job: Future[Item | None] | None = None) -> ClaimResult:
        """Claim the task a ticket names for `runner_id`. `job`: the read of the job's brief item if the
        caller started it already (the combined report-and-claim call reads it once).

        The job's read overlaps the claim's first write. A claim that finds the job canceled or finished
        once both are back takes its write back before anything runs, so cancel is as strong as with
        the read first: no task of a job canceled before its claim's read runs."""
        job_read = job if job is not None else overlap.start(lambda: self.jobs.brief(claim.job_id))
        now = self.clock()
        lease_ms = claim.lease_seconds * 1000 if claim.lease_seconds else self.lease_ms
        lease = {
            **dict(claim.note),
            "state": TaskState.RUNNING,
            "lease_hash": lease_hash(claim.lease),
            "lease_owner": runner_id,
            "lease_expires": now + lease_ms,
            "started_at": now,
        }
        known = job_read.result() if job_read.done() else None
        result: UpdateResult | None = None
        if known is None or known["state"] in ACTIVE_JOB_STATES:
            result = self._create_deferred(claim, lease) if claim.ref is not None else None
            if result is None or not result.ok:
                result = self.table.claim_queued(claim.task_id, lease, Holder(claim.job_id, claim.cluster))
        found = job_read.result()
        if found is None or found["state"] not in ACTIVE_JOB_STATES:
            if result is not None and result.ok and result.item is not None:
                self._unclaim(result.item, lease)
            if found is None:
                return _discard(Reason.UNKNOWN_JOB, "unknown job")
            return self._claim_of_inactive_job(claim, found, now)
        assert result is not None
        if not result.ok:
            taken = self._claim_taken(claim, found, result.item, lease, now=now)
            if isinstance(taken, ClaimResult):
                return taken
            result = taken
        task = result.item
        assert task is not None
        if found["state"] == JobState.SUBMITTED:
            self.jobs.start(claim.job_id, now)
        root = task.get("optional_root")
        if root and root != task["task_id"] and self.table.subtree_failed(str(root)):
            return self._skip_claimed(task)
        return ClaimResult(status=ClaimStatus.RUN, task={**self._payload(task, found), "lease": claim.lease})

    def _unclaim(self, task: Item, lease: dict[str, Any]) -> None:
        """Take back a claim made while the job was being read, which turned out canceled or finished: the
        task is QUEUED again (as a canceled job's tasks are) with the attempt it had, and nothing ran."""
        self.table.compare_and_set(
            task["task_id"],
            state=TaskState.RUNNING,
            attempt=int(task["attempt"]),
            set={"state": TaskState.QUEUED},
            add={"attempt": -1},
            end_lease=True,
            holder=Holder(str(task["job_id"]), str(task["cluster"]), str(lease["lease_hash"])),
        )

    def _claim_of_inactive_job(self, claim: Claim, job: Item, now: int) -> ClaimResult:
        """A canceled or finished job's ticket: discarded, except that a running task keeps its watchdog."""
        task = self.table.get_task(claim.task_id)
        if task:
            check_holder(task, claim.cluster, claim.job_id)
        if task and task["state"] == TaskState.RUNNING:
            if int(task.get("lease_expires", 0)) > now:
                return _busy(int(task["lease_expires"]), now, Reason.RUNNING_ELSEWHERE, "running elsewhere")
            self.release_expired(task)
        return _discard(Reason.JOB_NOT_ACTIVE, f"job is {job['state']}")

    def _claim_taken(
        self, claim: Claim, job: Item, old: Item | None, lease: dict[str, Any], *, now: int
    ) -> ClaimResult | UpdateResult:
        """The task was not QUEUED: take over an expired lease, go on from this runner's own earlier claim
        (its response was lost), or say why there is nothing to run."""
        if old is None:
            return _discard(Reason.UNKNOWN_TASK, "unknown task")
        check_holder(old, claim.cluster, claim.job_id)
        if old["state"] == TaskState.RUNNING and int(old.get("lease_expires", 0)) <= now:
            return self._take_over(claim, old, lease, now, job)
        if old["state"] == TaskState.RUNNING and old.get("lease_hash") == lease["lease_hash"]:
            return UpdateResult(True, old)  # this runner's own claim, retried after a lost response
        if old["state"] == TaskState.RUNNING:
            return _busy(int(old["lease_expires"]), now, Reason.RUNNING_ELSEWHERE, "running elsewhere")
        self.propagation.repair(old, job)
        return _discard(Reason.TASK_FINISHED, f"task is {old['state']}")

    def _take_over(
        self, claim: Claim, old: Item, lease: dict[str, Any], now: int, job: Item
    ) -> ClaimResult | UpdateResult:
        """An expired lease: a new attempt for this runner, or FAILED (FAILED_OPTIONAL for an optional task)
        after too many lease losses."""
        losses = int(old.get("lease_losses", 0)) + 1
        if losses > rules.MAX_LEASE_LOSSES:
            message = f"the task's runner stopped responding {losses} times (lease expired)"
            res = self.table.compare_and_set(
                claim.task_id,
                state=TaskState.RUNNING,
                attempt=int(old["attempt"]),
                end_lease=True,
                set={
                    "state": TaskState.FAILED_OPTIONAL if old.get("optional_root") else TaskState.FAILED,
                    "finished_at": now,
                    "lease_losses": losses,
                    "failure": {"message": message, "attempt": old["attempt"], "at": now},
                },
            )
            if res.ok and res.item:
                faults.point("claim.before_fail_job")
                self.propagation.repair(res.item, job)
            return _discard(Reason.LEASES_EXPIRED, message)
        result = self.table.compare_and_set(
            claim.task_id,
            state=TaskState.RUNNING,
            attempt=int(old["attempt"]),
            set={**lease, "lease_losses": losses},
            add={"attempt": 1},
            holder=Holder(claim.job_id, claim.cluster),
        )
        if not result.ok:
            return ClaimResult(
                status=ClaimStatus.BUSY,
                retry_after_ms=BUSY_MARGIN_MS,
                code=Reason.TAKEN_OVER_CONCURRENTLY,
                reason="taken over concurrently",
            )
        return result

    def _skip_claimed(self, task: Item) -> ClaimResult:
        """A claimed task below an optional root whose subtree failed: SKIPPED instead of run."""
        result = self.table.compare_and_set(
            task["task_id"],
            state=TaskState.RUNNING,
            attempt=int(task["attempt"]),
            set={"state": TaskState.SKIPPED, "finished_at": self.clock()},
            end_lease=True,
        )
        if result.ok and result.item:
            self.propagation.skipped(result.item, True)
        return _discard(Reason.SKIPPED, "skipped: a task below the same optional task failed")

    def _create_deferred(self, claim: Claim, lease: dict[str, Any]) -> UpdateResult | None:
        """The first claim of a deferred subtask creates its item, RUNNING (a put if absent). None when the
        ref names no deferred subtask of a committed parent attempt (the caller goes on as for any task)."""
        ref = DeferredRef(*claim.ref) if claim.ref is not None else None
        if ref is None or rules.child_task_id(*ref) != claim.task_id:
            return None
        chunk = self.tree.spec_chunk(ref.parent_id, ref.parent_attempt, ref.child_index // rules.SPEC_CHUNK)
        if chunk is None or str(ref.child_index) not in chunk.get("specs", {}):
            return None
        item = deferred_item(chunk, ref)
        check_holder(item, claim.cluster, claim.job_id)
        item.pop("ref")
        item.update(lease, attempt=1)
        return self.table.create_claimed(self.table.task_row(item))

    def _payload(self, task: Item, job: Item) -> dict[str, Any]:
        """What the runner gets to run the task."""
        text = task.get("input")
        if text is None and task.get("input_spilled"):
            text = self.table.get_input(task["task_id"])
        return {
            "id": task["task_id"],
            "job_id": task["job_id"],
            "job_name": job.get("name", ""),
            "name": task["name"],
            "version": task["version"],
            "cluster": task["cluster"],
            "parent_id": task.get("parent_id"),
            "attempt": int(task["attempt"]),
            "retry_count": int(task.get("retry_count", 0)),
            "display": task.get("display"),
            "input": text if text is not None else "null",
            "lease_seconds": self.settings.lease_seconds,
            "lease_expires": int(task["lease_expires"]),
            **({"job_trace_parent": job["trace_parent"]} if job.get("trace_parent") else {}),
        }

    def extend(self, task_id: str, attempt: int, holder: Holder, seconds: int | None = None) -> int:
        """Extend the lease on this attempt for the holder of its token (by `seconds`, or the deployment's
        lease); Conflict(LeaseLost) otherwise."""
        expires = self.clock() + (seconds * 1000 if seconds else self.lease_ms)
        if not self.table.extend_lease(task_id, attempt, holder, expires):
            raise Conflict("the lease on this task attempt is lost", code="LeaseLost")
        return expires

    def release_expired(self, task: Item) -> UpdateResult:
        """A RUNNING attempt whose lease ran out goes back to QUEUED (a lease loss, not a retry)."""
        return self.table.compare_and_set(
            task["task_id"],
            state=TaskState.RUNNING,
            attempt=int(task["attempt"]),
            set={"state": TaskState.QUEUED},
            add={"lease_losses": 1},
            end_lease=True,
        )
