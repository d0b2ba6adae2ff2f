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


def _latch_of(task: Item) -> tuple[Owner, str]:
    """The latch `task` settles into: its parent's children, or its job's roots."""
    if task.get("parent_id"):
        return Owner("task", str(task["parent_id"])), "children"
    return Owner("job", str(task["job_id"])), "roots"


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

    def completed(self, first: Item, job_active: bool, *, count_first: bool = True) -> None:
        """`first` is completed (or settled: FAILED_OPTIONAL, SKIPPED): tell its dependants and its parent
        (or job); cascade what fills up. Dependants come first and their tickets go out before the parent
        hears of it: that is the critical path of a chain, and the parent's latch can wait one write longer.
        `first` is counted in its job's figures in the same write that signals its sibling bucket, before
        its parent (or job) hears of it, so a job seen COMPLETED shows its final figures."""
        stack = [first]
        while stack:
            task = stack.pop()
            stack.extend(self._release_dependants(task, job_active))
            # (a cascaded parent was counted at its report; a SKIPPED one when it was skipped, not settled)
            count = (task is first and count_first) or task.get("state") == TaskState.SKIPPED
            faults.point("propagate.before_stats")
            bucket = self.stats.settle(task, count=count)
            if bucket is None:  # a job written before sibling buckets
                if count:
                    self.stats.record(task)
                owner, kind = _latch_of(task)
                full, owner_item = self.signal(
                    owner, kind, int(task["index"]), int(task.get("sibs", 1)) > rules.LATCH_BUCKET
                )
            else:
                full, owner_item = self._bucket_signalled(task, bucket)
            parent_done = self._fire(task, full, owner_item, job_active)
            if parent_done is not None:
                stack.append(parent_done)

    def completed_many(self, done: list[tuple[Item, bool]]) -> None:
        """Several tasks completed in one runner call (each with whether its job is active): as `completed`
        each, except that siblings of one bucket without dependants are counted and signalled in one write
        (docs/architecture.md, "Runner loop": batches)."""
        groups: dict[tuple[str, str, int], list[tuple[Item, bool]]] = {}
        for task, active in done:
            key = (str(task["job_id"]), str(task.get("parent_id") or "root"), bucket_of(int(task["index"])))
            groups.setdefault(key, []).append((task, active))
        for members in groups.values():
            tasks = [t for t, _ in members]
            active = members[0][1]
            if len(tasks) == 1 or any(t.get("dependents") or t.get("dependents_big") for t in tasks):
                for task, job_active in members:
                    self.completed(task, job_active)
                continue
            faults.point("propagate.before_stats")
            bucket = self.stats.settle_many(tasks)
            if bucket is None:  # a job written before sibling buckets
                for task in tasks:
                    self.completed(task, active)
                continue
            full, owner_item = self._bucket_signalled(tasks[-1], bucket)
            parent_done = self._fire(tasks[-1], full, owner_item, active)
            if parent_done is not None:
                self.completed(parent_done, active, count_first=False)

    def _bucket_signalled(self, task: Item, bucket: Item) -> tuple[bool, Item | None]:
        """`task`'s sibling bucket after its signal: when full, signal the owner's latch. Returns (owner's
        latch full, owner item: None unless the bucket was full)."""
        if not bucket_full(bucket):
            return False, None
        owner, kind = _latch_of(task)
        item = self.table.signal_owner(owner, kind, bucket_of(int(task["index"])))
        if item is None:
            return False, None
        return latch_full(item, kind), item

    def _fire(self, task: Item, full: bool, owner: Item | None, job_active: bool) -> Item | None:
        """What `task`'s signal to its parent's (job's) latch sets off: the job completed; the next bucket of a
        dispatch window; the parent completed (returned, for the caller to cascade)."""
        if not task.get("parent_id"):
            if full:
                self.jobs.complete(task["job_id"])
            return None
        if job_active and owner is not None and owner.get("window") and owner.get("children_bucketed"):
            # the task's bucket is full: the bucket `window` after it may go out now
            faults.point("propagate.before_window_dispatch")
            self.dispatcher.bucket(owner, bucket_of(int(task["index"])) + int(owner["window"]))
        if not (full and owner is not None and owner.get("state") == TaskState.COMPUTED):
            return None
        faults.point("propagate.before_parent_completed")
        res = self.table.mark_completed(owner["task_id"])
        if res.ok and res.item:
            faults.point("propagate.after_parent_completed")
            return res.item
        return None

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
