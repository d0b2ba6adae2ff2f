"""Latches: completion counting without hot items (docs/architecture.md, "Latches"). Pure functions.

A latch has a `total` and a number set `done` of the members that arrived. A task's dependencies: up to
LATCH_BUCKET members it lives on its owner item (`<kind>_total`, `<kind>_done`); a larger one is split into
bucket items of LATCH_BUCKET members each, and the owner's latch counts full buckets instead. A parent's
children and a job's roots are always in sibling buckets (`plan_sibling_latch`), which hold their figures too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from taskfleet import rules

from .states import TaskState


class LatchPlan(NamedTuple):
    """The owner's latch attributes and, for a bucketed latch, the member count of each bucket."""

    owner_attributes: dict[str, Any]
    bucket_totals: dict[int, int]


def bucket_of(member: int) -> int:
    return member // rules.LATCH_BUCKET


def plan_latch(kind: str, members: Iterable[int]) -> LatchPlan:
    members = list(members)
    if len(members) <= rules.LATCH_BUCKET:
        return LatchPlan({f"{kind}_total": len(members), f"{kind}_bucketed": False}, {})
    totals = dict(sorted(Counter(bucket_of(m) for m in members).items()))
    return LatchPlan({f"{kind}_total": len(totals), f"{kind}_bucketed": True}, totals)


def plan_sibling_latch(kind: str, members: int) -> LatchPlan:
    """The latch of a parent's children or a job's roots: always in sibling buckets of LATCH_BUCKET members
    (in the job's partition, where each member's figures are counted in the same write)."""
    totals = dict(sorted(Counter(bucket_of(m) for m in range(members)).items()))
    return LatchPlan({f"{kind}_total": len(totals), f"{kind}_bucketed": True}, totals)


def latch_full(item: Mapping[str, Any], kind: str) -> bool:
    return len(item.get(f"{kind}_done") or ()) >= int(item.get(f"{kind}_total", 0))


def bucket_full(bucket: Mapping[str, Any]) -> bool:
    return len(bucket.get("done") or ()) >= int(bucket["total"])


def window_open(parent: Mapping[str, Any], index: int) -> bool:
    """Whether subtask `index` of `parent` may have its ticket out (docs/architecture.md, "Dispatch
    window"): its latch bucket is among the first `window` ones, or the bucket `window` before it is full."""
    window = int(parent.get("window") or 0)
    bucket = bucket_of(index)
    return not window or bucket < window or (bucket - window) in (parent.get("children_done") or ())


def is_ready(task: Mapping[str, Any]) -> bool:
    """QUEUED with every dependency completed: its ticket may go out."""
    return bool(task["state"] == TaskState.QUEUED and latch_full(task, "deps"))
