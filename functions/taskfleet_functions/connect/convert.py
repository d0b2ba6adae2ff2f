"""Pure conversions between the Tilebox messages (`workflows.v1`) and taskfleet's items and specs: no AWS, no
orchestrator. The Connect service (service.py) calls these on both sides of the engine."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from taskfleet import rules

from ..orchestrator.contracts import TaskSpec
from ..orchestrator.states import JobState, TaskState
from .proto import workflows_core_pb2 as core
from .proto import workflows_workflows_pb2 as workflows
from .proto.tilebox_id_pb2 import ID
from .wire import uuid_bytes

# The reference's enums as numbers. Its JobState STARTED (3) has no taskfleet state and is never sent.
JOB_STATES: dict[str, int] = {
    JobState.SUBMITTED: core.JOB_STATE_SUBMITTED,
    JobState.RUNNING: core.JOB_STATE_RUNNING,
    JobState.COMPLETED: core.JOB_STATE_COMPLETED,
    JobState.FAILED: core.JOB_STATE_FAILED,
    JobState.CANCELED: core.JOB_STATE_CANCELED,
}
JOB_STATE_NAMES: dict[int, str] = {number: state for state, number in JOB_STATES.items()}
TASK_STATES: dict[str, int] = {
    TaskState.QUEUED: core.TASK_STATE_QUEUED,
    TaskState.RUNNING: core.TASK_STATE_RUNNING,
    TaskState.COMPUTED: core.TASK_STATE_COMPUTED,
    TaskState.FAILED: core.TASK_STATE_FAILED,
    TaskState.SKIPPED: core.TASK_STATE_SKIPPED,
    TaskState.FAILED_OPTIONAL: core.TASK_STATE_FAILED_OPTIONAL,
}


def id_message(text: str) -> ID:
    return ID(uuid=uuid_bytes(text))


def timestamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(int(ms))
    return stamp


def duration(seconds: float) -> Duration:
    span = Duration()
    span.FromMilliseconds(round(seconds * 1000))
    return span


def _iso_ms(text: str) -> int:
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def decode_input(data: bytes) -> Any:
    """A Tilebox task's input as the JSON value taskfleet keeps: the SDK serializes a dataclass task as JSON
    (its one field's value alone, or an object of its fields; b"" for a task without fields)."""
    if not data:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise rules.RuleViolation(
            "a task input that is not JSON (a protobuf message field?): taskfleet keeps task inputs as JSON,"
            " so give such a task JSON-serializable fields"
        ) from None


def encode_input(text: str | None) -> bytes:
    """taskfleet's stored JSON text as the bytes a Tilebox task deserializes (a task without input: b"")."""
    if text is None or text == "null":
        return b""
    return text.encode("utf-8")


def task_specs(submissions: Any, default_cluster: str | None) -> list[TaskSpec]:
    """The tasks of a `TaskSubmissions` in order. Each task of group g depends on every task of the groups g
    lists, which must come earlier (a task depends only on tasks submitted before it). A cluster slug of ""
    is `default_cluster` (the job's default, or the submitting task's cluster). Raises RuleViolation."""
    specs: list[TaskSpec] = []
    starts: list[tuple[int, int]] = []  # each group's [first, end) index in `specs`
    identifiers = list(submissions.identifier_lookup)
    slugs = list(submissions.cluster_slug_lookup)
    displays = list(submissions.display_lookup)
    for g, group in enumerate(submissions.task_groups):
        n = len(group.inputs)
        pointers = (group.identifier_pointers, group.cluster_slug_pointers, group.display_pointers)
        if any(len(p) != n for p in pointers) or any(
            len(v) not in (0, n) for v in (group.max_retries_values, group.optional_values)
        ):
            raise rules.RuleViolation(f"task group {g}: its lists differ in length")
        deps: list[int] = []
        for d in group.dependencies_on_other_groups:
            if d >= g:
                raise rules.RuleViolation(f"task group {g} depends on group {d}: only earlier groups may be named")
            deps.extend(range(*starts[d]))
        first = len(specs)
        for i in range(n):
            try:
                ident = identifiers[group.identifier_pointers[i]]
                slug = slugs[group.cluster_slug_pointers[i]]
                display = displays[group.display_pointers[i]]
            except IndexError:
                raise rules.RuleViolation(f"task group {g}, task {i}: a pointer is out of its lookup's range") from None
            specs.append(
                TaskSpec(
                    name=ident.name,
                    version=ident.version,
                    input=decode_input(group.inputs[i]),
                    depends_on=tuple(deps),
                    cluster=slug or default_cluster,
                    max_retries=int(group.max_retries_values[i]) if group.max_retries_values else 0,
                    display=display or None,
                    optional=bool(group.optional_values[i]) if group.optional_values else False,
                )
            )
        starts.append((first, len(specs)))
    return specs


def progress_tuples(updates: Sequence[Any]) -> tuple[tuple[str, int, int], ...]:
    """A report's progress indicators (label, total, done); "" is the unlabelled one, as taskfleet keeps it."""
    return tuple((u.label, int(u.total), int(u.done)) for u in updates)


def job_message(job: Mapping[str, Any], figures: Mapping[str, Any] | None = None) -> core.Job:
    """A taskfleet job item (with its figures, as `Orchestrator.job_figures` sums them) as a Tilebox Job."""
    message = core.Job(
        id=id_message(str(job["job_id"])),
        name=str(job.get("name") or ""),
        trace_parent=str(job.get("trace_parent") or ""),
        state=JOB_STATES.get(str(job.get("state")), core.JOB_STATE_SUBMITTED),  # type: ignore[arg-type]
        submitted_at=timestamp(int(job.get("submitted_at") or 0)),
    )
    if not figures:
        return message
    for indicator in figures.get("progress") or ():
        message.progress.add(label=indicator["label"] or "", total=indicator["total"], done=indicator["done"])
    stats = figures.get("execution_stats") or {}
    out = message.execution_stats
    if stats.get("first_task_started_at"):
        out.first_task_started_at.CopyFrom(timestamp(_iso_ms(stats["first_task_started_at"])))
    if stats.get("last_task_stopped_at"):
        out.last_task_stopped_at.CopyFrom(timestamp(_iso_ms(stats["last_task_stopped_at"])))
    out.compute_time.CopyFrom(duration(int(stats.get("compute_time_ms") or 0) / 1000))
    out.elapsed_time.CopyFrom(duration(int(stats.get("elapsed_time_ms") or 0) / 1000))
    out.parallelism = float(stats.get("parallelism") or 0.0)
    out.total_tasks = int(stats.get("total_tasks") or 0)
    for state, count in (stats.get("tasks_by_state") or {}).items():
        if state in TASK_STATES:
            out.tasks_by_state.add(state=TASK_STATES[state], count=int(count))
    return message


def cluster_message(cluster: Mapping[str, Any], *, deletable: bool) -> workflows.Cluster:
    return workflows.Cluster(
        slug=str(cluster["slug"]),
        display_name=str(cluster.get("name") or cluster["slug"]),
        description=str(cluster.get("description") or ""),
        deletable=deletable,
    )


def task_message(
    payload: Mapping[str, Any], job: Mapping[str, Any], identifier: tuple[str, str], lease_seconds: int
) -> core.Task:
    """A claimed task (the claim's payload) as the Tilebox runner runs it. `identifier` is the runner's own
    registered (name, version), which its executor looks the task class up by, exactly. The lease and the
    wait before its extension are equal: the SDK's renewer speaks only gRPC, so it must not wake before the
    lease is over (docs/architecture.md, "Tilebox SDK clients")."""
    message = core.Task(
        id=id_message(str(payload["id"])),
        identifier=core.TaskIdentifier(name=identifier[0], version=identifier[1]),
        state=core.TASK_STATE_RUNNING,
        input=encode_input(payload.get("input")),
        job=job_message(job),
        retry_count=int(payload.get("retry_count") or 0),
    )
    if payload.get("display"):
        message.display = str(payload["display"])
    if payload.get("parent_id"):
        message.parent_id.CopyFrom(id_message(str(payload["parent_id"])))
    message.lease.lease.CopyFrom(duration(lease_seconds))
    message.lease.recommended_wait_until_next_extension.CopyFrom(duration(lease_seconds))
    return message


def best_identifier(registered: Sequence[tuple[str, str]], name: str, version: str) -> tuple[str, str] | None:
    """The registered identifier a task (name, version) runs as: an exact match, else the highest compatible
    minor of the same major (taskfleet's `rules.can_run`); None when the runner cannot run it."""
    if (name, version) in registered:
        return name, version
    compatible = [(n, v) for n, v in registered if n == name and rules.can_run(v, version)]
    if not compatible:
        return None
    return max(compatible, key=lambda ident: rules.parse_version(ident[1]).minor)
