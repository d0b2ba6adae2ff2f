"""Job statistics and progress (docs/architecture.md, "Job statistics and progress").

A task adds its figures to its stats bucket (one per 100 siblings, in the job's partition) once, when it
finishes; a job's figures are the sum of its buckets. `finish_record` and `summarize` are pure; the
`Statistics` class is the thin part that writes and reads the buckets.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from taskfleet import rules

from ..dal.dynamo import Item, UpdateResult
from ..dal.repository import ItemTooLarge, StatsSlot, Table
from .contracts import iso
from .states import FINISHED_TASK_STATES, JobState, TaskState

LABELS_PER_WRITE = 25  # 2 ADD clauses per label: an update expression may hold at most 4 KB
STATE_PREFIX, TOTAL_PREFIX, DONE_PREFIX = "n#", "pt#", "pd#"
log = logging.getLogger(__name__)


class FinishRecord(NamedTuple):
    """What a finished task adds to its stats bucket: one write per (seen set, counters) pair."""

    group: str  # the parent's id, or "root"
    bucket: int
    member: int
    attempt_code: int  # names this attempt of the task in its bucket (a job retry marks it `retried`)
    writes: list[tuple[str, dict[str, int]]]
    stop: int


def compute_ms(task: Mapping[str, Any]) -> int:
    """The task's compute time: its earlier attempts' (summed on the item) and its last one's."""
    earlier = int(task.get("compute_prev_ms") or 0)
    if task.get("state") == TaskState.SKIPPED:
        return earlier
    started, finished = task.get("started_at"), task.get("finished_at")
    return earlier + (max(0, int(finished) - int(started)) if started and finished else 0)


def progress_entries(task: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    return [(str(label), int(total), int(done)) for label, total, done in task.get("progress") or ()]


def finish_record(task: Mapping[str, Any]) -> FinishRecord | None:
    """A finished task's contribution to its job's figures; None for a task not finished."""
    state = task.get("state")
    if state not in FINISHED_TASK_STATES:
        return None
    index = int(task["index"])
    counters = {f"{STATE_PREFIX}{state}": 1, "compute_ms": compute_ms(task)}
    if state == TaskState.COMPUTED:
        counters["created"] = int(task.get("children") or 0)
    entries = progress_entries(task)
    chunks = [entries[i : i + LABELS_PER_WRITE] for i in range(0, len(entries), LABELS_PER_WRITE)] or [[]]
    writes = []
    for n, chunk in enumerate(chunks):
        part = dict(counters) if n == 0 else {}
        for label, total, done in chunk:
            part[f"{TOTAL_PREFIX}{label}"] = total
            part[f"{DONE_PREFIX}{label}"] = done
        writes.append(("seen" if n == 0 else f"seen_{n}", part))
    return FinishRecord(
        group=str(task.get("parent_id") or "root"),
        bucket=index // rules.LATCH_BUCKET,
        member=index,
        attempt_code=index % rules.LATCH_BUCKET + rules.LATCH_BUCKET * int(task.get("attempt") or 0),
        writes=writes,
        stop=int(task.get("finished_at") or 0),
    )


def summarize(job: Mapping[str, Any], buckets: Iterable[Mapping[str, Any]], now: int) -> dict[str, Any]:
    """The job's `progress` and `execution_stats` (the API's shape) from its stats buckets."""
    counts: Counter[str] = Counter()
    progress: dict[str, list[int]] = {}
    compute = created = 0
    last_stop: int | None = None
    for bucket in buckets:
        for key, value in bucket.items():
            if key.startswith(STATE_PREFIX):
                counts[key[len(STATE_PREFIX) :]] += int(value)
            elif key.startswith(TOTAL_PREFIX):
                progress.setdefault(key[len(TOTAL_PREFIX) :], [0, 0])[0] += int(value)
            elif key.startswith(DONE_PREFIX):
                progress.setdefault(key[len(DONE_PREFIX) :], [0, 0])[1] += int(value)
        compute += int(bucket.get("compute_ms") or 0)
        created += int(bucket.get("created") or 0)
        if bucket.get("last_stop") and any(k.startswith(STATE_PREFIX) and v for k, v in bucket.items()):
            last_stop = max(last_stop or 0, int(bucket["last_stop"]))
    total = int(job.get("roots") or 0) + created
    by_state = {state: n for state, n in sorted(counts.items()) if n > 0}
    unfinished = total - sum(by_state.values())
    if unfinished > 0:  # queued or running: telling them apart would cost a write per claim
        by_state = {TaskState.QUEUED.value: unfinished, **by_state}
    first = job.get("started_at")
    active = job.get("state") in (JobState.SUBMITTED, JobState.RUNNING)
    end = now if active else (last_stop or job.get("finished_at"))
    elapsed = max(0, int(end) - int(first)) if first and end else 0
    return {
        "progress": [
            {"label": label or None, "total": total_, "done": done}
            for label, (total_, done) in sorted(progress.items())
            if total_ or done
        ],
        "execution_stats": {
            "first_task_started_at": iso(int(first)) if first else None,
            "last_task_stopped_at": iso(last_stop),
            "compute_time_ms": compute,
            "elapsed_time_ms": elapsed,
            "parallelism": round(compute / elapsed, 4) if elapsed else 0.0,
            "total_tasks": total,
            "tasks_by_state": by_state,
        },
    }


def _settle_slot(task: Item, record: FinishRecord | None) -> StatsSlot:
    index = int(task["index"])
    group = str(task.get("parent_id") or "root")
    code = record.attempt_code if record else 0
    return StatsSlot(str(task["job_id"]), group, index // rules.LATCH_BUCKET, index, code)


def _slot(task: Item, record: FinishRecord) -> StatsSlot:
    return StatsSlot(str(task["job_id"]), record.group, record.bucket, record.member, record.attempt_code)


@dataclass
class Statistics:
    table: Table

    def record(self, task: Item) -> None:
        """Count a finished task in its job's figures (idempotent: a replay counts nothing)."""
        record = finish_record(task)
        if record is None:
            return
        slot = _slot(task, record)
        for n, (seen, counters) in enumerate(record.writes):
            try:
                self.table.record_finish(slot, counters, seen=seen, stop=record.stop)
            except ItemTooLarge:
                # The bucket cannot hold more labels (400 KB: thousands of distinct labels among 100 siblings):
                # the task is counted without them; its own item keeps them.
                log.warning(
                    "job %s: progress labels dropped from the job's figures (stats bucket full)", task["job_id"]
                )
                if n == 0:
                    unlabelled = {k: v for k, v in counters.items() if not k.startswith((TOTAL_PREFIX, DONE_PREFIX))}
                    self.table.record_finish(slot, unlabelled, seen=seen, stop=record.stop)

    def settle(self, task: Item, *, count: bool) -> Item | None:
        """`task` settles: its member joins its sibling bucket's latch and, if `count`, it is counted in its
        job's figures, in one write when it can be (docs/architecture.md, "Latches"). Returns the bucket's
        image after it (a replay: its current image); None when its bucket holds no latch (a job written
        before sibling buckets: the caller signals the old latch)."""
        record = finish_record(task) if count else None
        slot = _settle_slot(task, record)
        counters = record.writes[0][1] if record is not None and len(record.writes) == 1 else None
        try:
            result = self.table.settle_in_bucket([slot], counters, stop=record.stop if record else 0)
        except ItemTooLarge:
            result = UpdateResult(False, None)
        if result is None:
            return None
        if result.ok and (record is None or counters is not None):
            return result.item
        # apart: counted first (so a job seen COMPLETED shows its final figures), then the latch
        if record is not None:
            self.record(task)
        if not result.ok:  # the latch alone, which a replay finds done already (its image all the same)
            result = self.table.settle_in_bucket([slot], None, stop=0)
        return result.item if result is not None else None

    def settle_many(self, tasks: list[Item]) -> Item | None:
        """`settle` (counting each) for siblings of one bucket, in one write when it can be: the bucket's
        image after all of them, or None when the bucket holds no latch."""
        records = [finish_record(task) for task in tasks]
        if all(r is not None and len(r.writes) == 1 for r in records):
            slots = [_settle_slot(task, record) for task, record in zip(tasks, records, strict=True)]
            summed: Counter[str] = Counter()
            for record in records:
                assert record is not None
                summed.update(record.writes[0][1])
            try:
                stop = max(r.stop for r in records if r is not None)
                result = self.table.settle_in_bucket(slots, dict(summed), stop=stop)
            except ItemTooLarge:
                result = UpdateResult(False, None)
            if result is None:
                return None
            if result.ok:
                return result.item
        image: Item | None = None  # one at a time: each write's image holds the ones before it
        for task in tasks:
            image = self.settle(task, count=True)
            if image is None:
                return None
        return image

    def unrecord(self, task: Item) -> None:
        """Take a finished task out of its job's figures again (a job retry queues it anew)."""
        record = finish_record(task)
        if record is None:
            return
        slot = _slot(task, record)
        for seen, counters in record.writes:
            self.table.unrecord_finish(slot, counters, seen=seen)

    def of(self, job: Item, now: int) -> dict[str, Any]:
        return summarize(job, self.table.stats_buckets(str(job["job_id"])), now)
