"""Bringing jobs back in line after failures: job retry, resume (also the outbox's redo), and the
sweeper (overdue outboxes, tickets in the dead-letter queues)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .. import faults
from ..dal.dynamo import Item
from ..dal.queues import Queues, Ticket
from ..dal.repository import Table
from .contracts import SweepStats
from .dispatch import Dispatcher
from .errors import Conflict
from .jobs import Jobs
from .latches import is_ready, window_open
from .lease import Leases
from .propagation import Propagation
from .states import ACTIVE_JOB_STATES, TaskState
from .stats import Statistics
from .tree import Tree


@dataclass(kw_only=True)
class Recovery:
    table: Table
    queues: Queues
    jobs: Jobs
    tree: Tree
    dispatcher: Dispatcher
    propagation: Propagation
    stats: Statistics
    leases: Leases
    clock: Callable[[], int]
    outbox_ms: int

    def retry_job(self, job_id: str, token: str | None = None) -> int:
        """FAILED/CANCELED -> RUNNING: failed tasks are queued again and every ready queued task is
        dispatched. Returns how many tasks were rescheduled (sent to run). A job with nothing to retry
        (SUBMITTED, RUNNING, COMPLETED) is a Conflict, unless `token` names the retry that moved it (a
        request sent again after a lost answer gets that retry's answer)."""
        self.jobs.get(job_id)
        moved, job = self.jobs.reopen(job_id, self.clock() + self.outbox_ms, token)
        if not moved or job is None:
            current = job or {}
            if current.get("state") in ACTIVE_JOB_STATES and current.get("outbox_at"):
                # a retry whose dispatch is unfinished (this request's own write with its response lost,
                # or an earlier retry that crashed): finish it now rather than leave it to the sweeper
                return self.resume(current)
            if token and current.get("retry_token") == token:
                return int(current.get("retry_dispatched") or 0)
            raise Conflict(
                f"job {job_id} is {current.get('state')}: only a FAILED or CANCELED job can be retried"
                " (if you just retried it, that retry went through)",
                code="NothingToRetry",
            )
        faults.point("retry.after_job_update")
        return self.resume(job, retry=True)

    def resume(self, job: Item, *, retry: bool = False) -> int:
        """Bring an active job's tasks in line with it: failed tasks queued again, expired leases of
        running tasks released, every ready queued task dispatched. Idempotent; clears the outbox.
        Returns how many tasks were dispatched."""
        ready: list[Item] = []
        now = self.clock()
        if job.get("state") in ACTIVE_JOB_STATES:
            parents: dict[str, Item] = {}
            for found in self.tree.walk(job):
                if found["state"] == TaskState.COMPUTED:
                    parents[found["task_id"]] = found
                if found["state"] == TaskState.SKIPPED:  # settles it if a crash left it unsettled (idempotent)
                    self.propagation.skipped(found, True)
                task, _ = self._bring_back(found, now)
                parent = parents.get(task.get("parent_id") or "")
                if is_ready(task) and (parent is None or window_open(parent, int(task["index"]))):
                    ready.append(task)
            faults.point("resume.before_dispatch")
            self.dispatcher.send(ready, suffix=f":r{now}")
            faults.point("resume.before_clear_outbox")
        self.jobs.clear_outbox(job["job_id"], dispatched=len(ready) if retry or job.get("retry_token") else None)
        return len(ready)

    def _bring_back(self, task: Item, now: int) -> tuple[Item, bool]:
        """A FAILED task queued again (its retries counted afresh), an expired lease released; the task's
        image after that, and whether it was a failed task queued again."""
        if task["state"] == TaskState.FAILED:
            failure = task.get("failure")
            # out of the job's figures first: its next finish counts it again (a crash in between leaves it
            # FAILED and uncounted, and the retry, redone from the outbox, queues it)
            self.stats.unrecord(task)
            started, finished = task.get("started_at"), task.get("finished_at")
            res = self.table.compare_and_set(
                task["task_id"],
                state=TaskState.FAILED,
                attempt=int(task["attempt"]),
                set={
                    "state": TaskState.QUEUED,
                    "retry_base": int(task.get("retry_count", 0)),
                    **({"last_failure": failure} if failure is not None else {}),
                },
                add={"compute_prev_ms": max(0, int(finished) - int(started))} if started and finished else None,
                remove=("failure", "finished_at")
                if failure is not None
                else ("failure", "last_failure", "finished_at"),
            )
            if res.ok and res.item:
                faults.point("resume.after_requeue")
                return res.item, True
        elif task["state"] == TaskState.RUNNING and int(task.get("lease_expires", 0)) <= now:
            res = self.leases.release_expired(task)
            if res.ok and res.item:
                return res.item, False
        return task, False

    def sweep(self, *, max_jobs: int = 100, max_dlq_messages: int = 100) -> dict[str, int]:
        """Repair what a crash left behind: overdue job dispatches (outbox) and tickets in the DLQs."""
        stats = {k: 0 for k in asdict(SweepStats())}
        for job_id in self.table.due_outbox_job_ids(self.clock(), max_jobs):
            job = self.table.get_job(job_id)
            if job is not None:
                self.resume(job)
                stats["outbox_jobs"] += 1
        for cluster in self.table.clusters():
            handled = 0
            while handled < max_dlq_messages:
                messages = self.queues.receive(cluster["dlq_url"], max_messages=10, wait=0)
                if not messages:
                    break
                for message in messages:
                    handled += 1
                    resent = self.redrive(cluster, message)
                    stats["dlq_resent" if resent else "dlq_dropped"] += 1
                self.queues.delete_messages(cluster["dlq_url"], [m["ReceiptHandle"] for m in messages])
        return stats

    def backlogs(self) -> dict[str, int]:
        """Each cluster's backlog: tickets waiting or in flight over all its lanes (the scaling metric)."""
        clusters = self.dispatcher.clusters
        return {
            str(c["slug"]): sum(self.queues.backlog(url) for url in clusters.lane_urls(str(c["slug"])))
            for c in self.table.clusters()
        }

    def redrive(self, cluster: Item, message: dict[str, Any]) -> bool:
        """A dead-lettered ticket: sent again if its task may still run, else its task's outcome repaired.
        Returns whether it was sent again."""
        try:
            ticket = Ticket.parse(message["Body"])
        except (ValueError, KeyError, TypeError):
            return False
        task = self.table.get_task(ticket.task_id)
        job = self.table.get_job(ticket.job_id)
        active = job is not None and job["state"] in ACTIVE_JOB_STATES
        if task is None and ticket.ref is not None and active:
            task = {"state": TaskState.QUEUED}  # a deferred subtask not claimed yet (the claim checks the ref)
        if task is None or job is None:
            return False
        if task["state"] in (TaskState.QUEUED, TaskState.RUNNING) and active:
            lane = self.dispatcher.clusters.lane_url(str(cluster["slug"]), ticket.name, ticket.version)
            self.queues.send(lane, [ticket], dedup_suffix=f":d{self.clock()}")
            return True
        self.propagation.repair(task, job)
        return False
