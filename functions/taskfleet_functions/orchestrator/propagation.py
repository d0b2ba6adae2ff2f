"""What a completed task sets off: its dependants' and its parent's (or job's) latches, the tickets of
what became ready, the next buckets of a large fan-out (the dispatch window), and, cascading upwards,
completed parents and the completed job. A FAILED_OPTIONAL or SKIPPED task sets off the same (it settles
its part of the job); a failure below an optional root skips the rest of that subtree (docs/
architecture.md, "Optional tasks"). Every step is idempotent, so `repair` can redo any of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from taskfleet import rules

from .. import faults
from ..dal.dynamo import Item
from ..dal.repository import Owner, Table
from .dispatch import Dispatcher
from .jobs import Jobs
from .latches import bucket_full, bucket_of, latch_full, window_open
from .states import ACTIVE_JOB_STATES, TaskState
from .stats import Statistics
from .tree import Tree

SKIP_PASS_LIMIT = 1_000  # tasks one skip pass looks at; the rest are skipped when their tickets are claimed


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
    tree: Tree
    stats: Statistics
    clock: Callable[[], int]

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
        """`first` is completed (or settled: FAILED_OPTIONAL, SKIPPED): tell its dependants and its parent
        (or job); cascade what fills up. Dependants come first and their tickets go out before the parent
        hears of it: that is the critical path of a chain, and the parent's latch can wait one write longer.
        `first` is counted in its job's figures before its parent (or job) hears of it, so a job seen
        COMPLETED shows its final figures."""
        stack = [first]
        while stack:
            task = stack.pop()
            stack.extend(self._release_dependants(task, job_active))
            if task is first or task.get("state") == TaskState.SKIPPED:  # (cascaded parents counted at their report)
                faults.point("propagate.before_stats")
                self.stats.record(task)
            bucketed = int(task.get("sibs", 1)) > rules.LATCH_BUCKET
            if not task.get("parent_id"):
                full, _ = self.signal(Owner("job", task["job_id"]), "roots", int(task["index"]), bucketed)
                if full:
                    self.jobs.complete(task["job_id"])
                continue
            parent_done = self._signal_parent(task, bucketed, job_active)
            if parent_done is not None:
                stack.append(parent_done)

    def _release_dependants(self, task: Item, job_active: bool) -> list[Item]:
        """Signal the dependants; send the tickets of those now ready. Returns the SKIPPED dependants whose
        dependencies are now all done: they settle now (nothing runs them)."""
        ready: list[Item] = []
        settled: list[Item] = []
        big = set(task.get("dependents_big") or ())
        for d in [*(task.get("dependents") or ()), *big]:
            full, dependant = self.signal(Owner("task", sibling_id(task, d)), "deps", int(task["index"]), d in big)
            faults.point("propagate.after_dependency_signal")
            if full and dependant is not None and dependant.get("state") == TaskState.QUEUED:
                ready.append(dependant)
            elif full and dependant is not None and dependant.get("state") == TaskState.SKIPPED:
                settled.append(dependant)
        if ready:
            faults.point("propagate.before_dispatch")
            if job_active:
                self.dispatcher.send(ready)
        return settled

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
        state = task["state"]
        if state == TaskState.FAILED:
            self.stats.record(task)
            self.jobs.fail(task["job_id"], task, (task.get("failure") or {}).get("message", "task failed"))
        elif state == TaskState.FAILED_OPTIONAL:
            self.optional_failed(task, active)
        elif state == TaskState.SKIPPED:
            self.skipped(task, active)
        elif state == TaskState.COMPUTED:
            if active and task.get("children"):
                self.dispatcher.children(task, window_open, suffix=":repair")
            if task.get("completed"):
                self.completed(task, active)
            else:
                self.stats.record(task)

    # --- optional subtrees ----------------------------------------------------------------------------

    def optional_failed(self, task: Item, job_active: bool) -> None:
        """An optional task failed for good (FAILED_OPTIONAL): below its optional root, the rest of the
        subtree is skipped; the task settles (its dependants and its parent go on) and is counted."""
        root = task.get("optional_root")
        if root and root != task["task_id"]:
            self.table.mark_subtree_failed(str(root))
            if job_active:
                self.skip_subtree(str(root))
        self.completed(task, job_active)

    def skipped(self, task: Item, job_active: bool) -> None:
        """A SKIPPED task settles once its dependencies are done (until then a dependency's completion
        finds it SKIPPED and settles it), and is counted."""
        if latch_full(task, "deps"):
            self.completed(task, job_active)
        else:
            self.stats.record(task)

    def skip(self, task: Item) -> Item | None:
        """A QUEUED task (or a deferred one not claimed yet) becomes SKIPPED; its image, or None if it was
        not QUEUED any more."""
        update = {"state": TaskState.SKIPPED, "finished_at": self.clock()}
        if "ref" in task:  # a deferred subtask without an item: create it SKIPPED
            row = {k: v for k, v in task.items() if k != "ref"} | update
            if self.table.create_claimed(self.table.task_row(row)).ok:
                return row
            current = self.table.get_task(task["task_id"])
            return self.skip(current) if current and current["state"] == TaskState.QUEUED else None
        result = self.table.compare_and_set(
            task["task_id"], state=TaskState.QUEUED, attempt=int(task.get("attempt", 0)), set=update
        )
        return result.item if result.ok else None

    def skip_subtree(self, root_id: str) -> int:
        """Skip the QUEUED tasks below an optional root (at most SKIP_PASS_LIMIT tasks looked at; claims
        skip the rest). Returns how many were skipped."""
        root = self.table.get_task(root_id)
        level = [root] if root is not None else []
        seen = skipped = 0
        while level and seen < SKIP_PASS_LIMIT:
            parents = [t for t in level if t["state"] == TaskState.COMPUTED and t.get("children")]
            level = []
            # (a huge fan-out is read only as far as the pass can look)
            for task in self.tree.children(parents, keep=lambda _parent, index: index < SKIP_PASS_LIMIT):
                if seen >= SKIP_PASS_LIMIT:
                    break
                seen += 1
                if task["state"] == TaskState.COMPUTED:
                    level.append(task)
                elif task["state"] == TaskState.QUEUED and (done := self.skip(task)) is not None:
                    skipped += 1
                    self.skipped(done, True)
                elif task["state"] == TaskState.SKIPPED:  # an earlier pass (a crash, a replay) may not have settled it
                    self.skipped(task, True)
        return skipped
