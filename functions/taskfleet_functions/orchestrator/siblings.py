"""Sibling tasks as rows to write: a job's roots at submission, a task's subtasks at its commit.

Validation happens here, before anything is written: a rejected submission or report writes nothing.
Subtasks outside any dependency, with an inline input, are deferred: only their spec is written, in
chunk items of SPEC_CHUNK siblings, and their item is created by their first claim (docs/architecture.md,
"Deferred subtasks").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from taskfleet import rules

from ..dal.dynamo import Item
from ..dal.repository import Owner, Table
from .contracts import CompactSpec, DeferredRef, TaskSpec
from .errors import InvalidRequest
from .latches import plan_latch
from .states import TaskState


def new_task_item(
    *,
    task_id: str,
    job_id: str,
    parent_id: str | None,
    parent_attempt: int,
    index: int,
    sibs: int,
    spec: CompactSpec,
    now: int,
    deps: Sequence[int] = (),
    dependents: Sequence[int] = (),
    big_dependents: Sequence[int] = (),
) -> Item:
    """A QUEUED task's attributes (the table adds its keys)."""
    item: Item = {
        "task_id": task_id,
        "job_id": job_id,
        "parent_id": parent_id,
        "parent_attempt": parent_attempt,
        "index": index,
        "sibs": sibs,
        "name": spec.name,
        "version": spec.version,
        "cluster": spec.cluster,
        "state": TaskState.QUEUED.value,
        "attempt": 0,
        "retry_count": 0,
        "retry_base": 0,
        "max_retries": spec.max_retries,
        "lease_losses": 0,
        "submitted_at": now,
        "depends_on": list(deps) or None,
        "dependents": list(dependents) or None,
        "dependents_big": list(big_dependents) or None,
        "display": spec.display,
        "input": spec.input,
    }
    if spec.optional_root:
        item["optional_root"] = spec.optional_root
    item.update(plan_latch("deps", deps).owner_attributes)
    return item


def deferred_item(chunk: Mapping[str, Any], ref: DeferredRef) -> Item:
    """A deferred subtask not claimed yet, as a QUEUED item built from its parent's spec chunk."""
    item = new_task_item(
        task_id=rules.child_task_id(*ref),
        job_id=chunk["job_id"],
        parent_id=ref.parent_id,
        parent_attempt=ref.parent_attempt,
        index=ref.child_index,
        sibs=int(chunk["sibs"]),
        spec=CompactSpec(*chunk["specs"][str(ref.child_index)]),
        now=int(chunk["submitted_at"]),
    )
    item["ref"] = ref
    return item


@dataclass
class Siblings:
    """What to write for a set of siblings, and which of them are ready (to dispatch after the write)."""

    rows: list[Item] = field(default_factory=list)
    ready: list[Item] = field(default_factory=list)


@dataclass(frozen=True)
class _Graph:
    """Validated dependencies of the siblings: each one's dependencies and dependants (indices)."""

    deps: list[list[int]]
    dependents: dict[int, list[int]]
    big_dependents: dict[int, list[int]]  # dependants whose dependency latch is bucketed

    def in_graph(self, i: int) -> bool:
        return bool(self.deps[i] or i in self.dependents or i in self.big_dependents)


def _validate(specs: Sequence[TaskSpec]) -> _Graph:
    graph = _Graph([], defaultdict(list), defaultdict(list))
    for i, spec in enumerate(specs):
        rules.check_task_name(spec.name)
        rules.parse_version(spec.version)
        deps = rules.check_dependencies(i, list(spec.depends_on))
        graph.deps.append(deps)
        for d in deps:
            (graph.big_dependents if len(deps) > rules.LATCH_BUCKET else graph.dependents)[d].append(i)
        if not (0 <= spec.max_retries <= rules.MAX_RETRIES_LIMIT):
            raise InvalidRequest(f"max_retries must be 0-{rules.MAX_RETRIES_LIMIT}")
    return graph


def build_siblings(
    specs: Sequence[TaskSpec],
    *,
    job_id: str,
    parent: Item | None,
    parent_attempt: int,
    default_cluster: str,
    now: int,
    cluster_slug: Callable[[str], str],
) -> Siblings:
    """Rows for sibling tasks (task items, latch buckets, spilled inputs, spec chunks) and the ready ones.
    `cluster_slug` resolves a cluster name to an existing cluster's slug (NotFound otherwise)."""
    graph = _validate(specs)
    parent_id = parent["task_id"] if parent is not None else None
    inherited = parent.get("optional_root") if parent is not None else None  # optional below an optional task
    out = Siblings()
    chunks: dict[int, dict[str, list[Any]]] = defaultdict(dict)
    for i, spec in enumerate(specs):
        task_id = rules.child_task_id(parent_id, parent_attempt, i) if parent_id else rules.root_task_id(job_id, i)
        text = rules.encode_input(spec.input)
        spilled = len(text.encode("utf-8")) > rules.INLINE_INPUT_BYTES
        display = rules.truncate(spec.display, rules.MAX_DISPLAY_CHARS) if spec.display else None
        compact = CompactSpec(
            spec.name,
            spec.version,
            cluster_slug(spec.cluster or default_cluster),
            None if spilled else text,
            spec.max_retries,
            display,
            task_id if spec.optional else inherited,  # an optional task bounds its own subtree
        )
        item = new_task_item(
            task_id=task_id,
            job_id=job_id,
            parent_id=parent_id,
            parent_attempt=parent_attempt,
            index=i,
            sibs=len(specs),
            spec=compact,
            now=now,
            deps=graph.deps[i],
            dependents=graph.dependents.get(i, ()),
            big_dependents=graph.big_dependents.get(i, ()),
        )
        if parent_id is not None and not spilled and not graph.in_graph(i):
            chunks[i // rules.SPEC_CHUNK][str(i)] = list(compact)
            item["ref"] = DeferredRef(parent_id, parent_attempt, i)
            out.ready.append(item)
            continue
        if spilled:
            item["input_spilled"] = True
            out.rows.append(Table.input_row(task_id, text))
        owner = Owner("task", task_id)
        out.rows.extend(
            Table.latch_bucket_row(owner, "deps", k, n)
            for k, n in plan_latch("deps", graph.deps[i]).bucket_totals.items()
        )
        out.rows.append(Table.task_row(item))
        if not graph.deps[i]:
            out.ready.append(item)
    if parent_id is not None:
        out.rows.extend(
            Table.spec_chunk_row(
                parent_id,
                parent_attempt,
                k,
                {"job_id": job_id, "sibs": len(specs), "submitted_at": now, "specs": entries},
            )
            for k, entries in sorted(chunks.items())
        )
    return out
