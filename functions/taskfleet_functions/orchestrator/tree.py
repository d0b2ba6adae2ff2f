"""A job's task tree, read without an index: from the roots down, level by level, with BatchGetItem.
Deferred subtasks not claimed yet are built from their parent's spec chunks."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

from taskfleet import rules

from ..dal.dynamo import Item
from ..dal.repository import Table
from .contracts import DeferredRef
from .siblings import deferred_item
from .states import TaskState

SPEC_CHUNK_CACHE = 256  # spec chunks kept per process (each up to SPEC_CHUNK specs of <= 1 KB)

Keep = Callable[[Item, int], bool]


class Tree:
    def __init__(self, table: Table) -> None:
        self.table = table
        self._chunks: dict[tuple[str, int, int], Item] = {}
        self._lock = threading.Lock()

    def walk(self, job: Item) -> Iterator[Item]:
        """Every task of the job's tree, breadth first. A deferred subtask not claimed yet is shown QUEUED."""
        level = self.table.get_tasks(rules.root_task_id(job["job_id"], i) for i in range(int(job["roots"])))
        while level:
            parents: list[Item] = []
            for item in sorted(level, key=lambda t: (t.get("parent_id") or "", t["index"])):
                yield item
                if item["state"] == TaskState.COMPUTED and item.get("children"):
                    parents.append(item)
            level = self.children(parents)

    def children(self, parents: Sequence[Item], keep: Keep | None = None) -> list[Item]:
        """The subtasks of COMPUTED tasks (those for which `keep(parent, index)` holds, if given): their
        items, or for deferred ones not claimed yet, QUEUED items built from the parent's spec chunks (with
        a "ref" to dispatch them by)."""
        wanted = {
            rules.child_task_id(p["task_id"], int(p["attempt"]), i): (p, i)
            for p in parents
            for i in range(int(p.get("children") or 0))
            if keep is None or keep(p, i)
        }
        found = self.table.get_tasks(wanted)
        missing: dict[tuple[str, int, int], list[int]] = defaultdict(list)
        for task_id in set(wanted) - {t["task_id"] for t in found}:
            parent, index = wanted[task_id]
            missing[(parent["task_id"], int(parent["attempt"]), index // rules.SPEC_CHUNK)].append(index)
        for (parent_id, attempt, k), indexes in missing.items():
            chunk = self.spec_chunk(parent_id, attempt, k)
            if chunk is not None:
                found.extend(
                    deferred_item(chunk, DeferredRef(parent_id, attempt, i))
                    for i in indexes
                    if str(i) in chunk["specs"]
                )
        return found

    def spec_chunk(self, parent_id: str, attempt: int, chunk: int) -> Item | None:
        """A spec chunk of a committed parent attempt. Chunks never change once their parent committed, so
        each process keeps the ones it read: a fan-out's claims read one per SPEC_CHUNK subtasks."""
        key = (parent_id, attempt, chunk)
        if key in self._chunks:
            return self._chunks[key]
        parent = self.table.get_task(parent_id, projection="state,attempt")
        if parent is None or parent["state"] != TaskState.COMPUTED or int(parent["attempt"]) != attempt:
            return None  # tickets go out only after the commit: this ref is not one the orchestrator sent
        item = self.table.get_spec_chunk(parent_id, attempt, chunk, consistent=False)
        if item is None:  # written before the parent's commit, but an eventually consistent read may miss it
            item = self.table.get_spec_chunk(parent_id, attempt, chunk, consistent=True)
        if item is not None:
            with self._lock:  # a combined call's halves (and the local stack's requests) share the cache
                if len(self._chunks) >= SPEC_CHUNK_CACHE:
                    self._chunks.pop(next(iter(self._chunks)))
                self._chunks[key] = item
        return item
