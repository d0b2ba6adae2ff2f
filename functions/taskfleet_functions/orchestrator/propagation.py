"""What a completed task sets off: its dependants' and its parent's (or job's) latches, the tickets of
what became ready, the next buckets of a large fan-out (the dispatch window), and, cascading upwards,
completed parents and the completed job. Every step is idempotent, so `repair` can redo any of them."""

from __future__ import annotations

from dataclasses import dataclass

from taskfleet import rules

from .. import faults
from ..dal.dynamo import Item
from ..dal.repository import Owner, Table
from .dispatch import Dispatcher
from .jobs import Jobs
from .latches import bucket_full, bucket_of, latch_full, window_open
from .states import ACTIVE_JOB_STATES, TaskState


def sibling_id(task: Item, index: int) -> str:
    """The id of the sibling of `task` with index `index`."""
    if task.get("parent_id"):
        return rules.child_task_id(task["parent_id"], int(task["parent_attempt"]), index)
    return rules.root_task_id(task["job_id"], index)


@dataclass(kw_only=True)
class Propagation:
    table: Table
    jobs: Jobs
    dispatcher: Dispatcher

    def signal(self, owner: Owner, kind: str, member: int, bucketed: bool) -> tuple[bool, Item | None]:
        """Record `member` in the owner's latch; returns (latch full, owner item). Idempotent: a replayed
        signal that finds the latch full reports it full again (everything a latch fires is idempotent)."""
        if bucketed:
            bucket = self.table.signal_bucket(owner, kind, bucket_of(member), member)
            if bucket is None or not bucket_full(bucket):
                return False, None
            member = bucket_of(member)
        item = self.table.signal_owner(owner, kind, member)
        if item is None:
            return False, None
        return latch_full(item, kind), item

    def completed(self, first: Item, job_active: bool) -> None:
        """`first` is completed: tell its dependants and its parent (or job); cascade what fills up.
        Dependants come first and their tickets go out before the parent hears of it: that is the
        critical path of a chain, and the parent's latch can wait one write longer."""
        stack = [first]
        while stack:
            task = stack.pop()
            self._release_dependants(task, job_active)
            bucketed = int(task.get("sibs", 1)) > rules.LATCH_BUCKET
            if not task.get("parent_id"):
                full, _ = self.signal(Owner("job", task["job_id"]), "roots", int(task["index"]), bucketed)
                if full:
                    self.jobs.complete(task["job_id"])
                continue
            parent_done = self._signal_parent(task, bucketed, job_active)
            if parent_done is not None:
                stack.append(parent_done)

    def _release_dependants(self, task: Item, job_active: bool) -> None:
        ready: list[Item] = []
        big = set(task.get("dependents_big") or ())
        for d in [*(task.get("dependents") or ()), *big]:
            full, dependant = self.signal(Owner("task", sibling_id(task, d)), "deps", int(task["index"]), d in big)
            faults.point("propagate.after_dependency_signal")
            if full and dependant is not None and dependant.get("state") == TaskState.QUEUED:
                ready.append(dependant)
        if ready:
            faults.point("propagate.before_dispatch")
            if job_active:
                self.dispatcher.send(ready)

    def _signal_parent(self, task: Item, bucketed: bool, job_active: bool) -> Item | None:
        """Signal the parent's children latch; the parent's item if that made it completed."""
        index = int(task["index"])
        full, parent = self.signal(Owner("task", task["parent_id"]), "children", index, bucketed)
        if job_active and bucketed and parent is not None and parent.get("window"):
            # the task's bucket is full: the bucket `window` after it may go out now
            faults.point("propagate.before_window_dispatch")
            self.dispatcher.bucket(parent, bucket_of(index) + int(parent["window"]))
        if not (full and parent is not None and parent.get("state") == TaskState.COMPUTED):
            return None
        faults.point("propagate.before_parent_completed")
        res = self.table.mark_completed(parent["task_id"])
        if res.ok and res.item:
            faults.point("propagate.after_parent_completed")
            return res.item
        return None

    def repair(self, task: Item, job: Item) -> None:
        """Redo, idempotently, everything that follows from `task`'s recorded outcome."""
        active = job.get("state") in ACTIVE_JOB_STATES
        if task["state"] == TaskState.FAILED:
            self.jobs.fail(task["job_id"], task, (task.get("failure") or {}).get("message", "task failed"))
            return
        if task["state"] != TaskState.COMPUTED:
            return
        if active and task.get("children"):
            self.dispatcher.children(task, window_open, suffix=":repair")
        if task.get("completed"):
            self.completed(task, active)
