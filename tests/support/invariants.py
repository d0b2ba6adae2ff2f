"""Invariants of a job's stored state, and of what runners executed, checked after every reliability
scenario (tests/reliability/, tests/support/scenarios.py). Each check returns a list of violations (empty: holds).

Stored state (`check_job`), read straight from DynamoDB:
- the tree: every root exists; every COMPUTED task's children exist, name it as parent and its attempt;
- no orphaned subtask: a task of the job that is not reachable from the roots must be garbage of an
  attempt that never committed (its parent is not COMPUTED with that attempt), and must never have run;
- counts add up: each latch (roots of the job, children of a task, dependencies of a task) holds exactly
  the members that are completed (quiescent) or a subset of them (in flight), within its total;
- `completed` means COMPUTED and every child completed (and, quiescent, the converse);
- a task that was ever claimed had all its dependencies completed;
- lease: a RUNNING task has an owner and an expiry; quiescent, no RUNNING task has an expired lease;
- the job's figures (quiescent): its stats buckets count every finished task of the tree exactly once,
  by state, and its total is the tree's size;
- the job: COMPLETED iff every root completed (quiescent); COMPLETED means every task in the tree is
  completed (FAILED_OPTIONAL and SKIPPED tasks count as completed: they settled); FAILED means some
  task FAILED; an active job (quiescent) has no FAILED task and no overdue outbox; retries used never
  exceed max_retries; lease losses never exceed the limit by more than one.

Executions (`check_executions`), from the lines the reliability tasks append to a log:
- each task attempt started at most once (at most one runner per attempt);
- executions of one task never overlap in time (a new attempt starts only after the previous one ended
  or its runner was killed);
- every COMPUTED task finished its committed attempt exactly once; garbage tasks never ran.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from taskfleet import rules
from taskfleet_functions.dal.dynamo import deserialize
from taskfleet_functions.dal.repository import job_pk, task_pk
from taskfleet_functions.orchestrator import JobState as Job
from taskfleet_functions.orchestrator import Orchestrator
from taskfleet_functions.orchestrator import TaskState as Task
from taskfleet_functions.orchestrator.states import ACTIVE_JOB_STATES, FINISHED_TASK_STATES

QUEUED, RUNNING, COMPUTED, FAILED = Task.QUEUED, Task.RUNNING, Task.COMPUTED, Task.FAILED
COMPLETED = Job.COMPLETED
TASK_STATES = set(Task)
JOB_STATES = set(Job)


class JobState:
    """Everything stored about one job: the job item, its reachable tree, every task item of the job
    (reachable or not), and latch buckets."""

    def __init__(self, engine: Orchestrator, job_id: str) -> None:
        db = engine.db
        self.job = db.get(job_pk(job_id), "META") or {}
        self.tree: dict[str, dict[str, Any]] = {}
        self.all_tasks: dict[str, dict[str, Any]] = {}
        self.buckets: dict[tuple[str, str], dict[str, Any]] = {}  # (owner PK, kind) -> union of bucket done
        self.bucket_items: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if self.job:
            for task in engine.walk(self.job):
                self.tree[task["task_id"]] = task
        start: dict[str, Any] | None = None
        while True:  # every TASK META item of this job, reachable or not (a scan: test data is small)
            kwargs: dict[str, Any] = {
                "TableName": db.table,
                "ConsistentRead": True,
                "FilterExpression": "#job = :j AND #type = :t",
                "ExpressionAttributeNames": {"#job": "job_id", "#type": "type"},
                "ExpressionAttributeValues": {":j": {"S": job_id}, ":t": {"S": "task"}},
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            resp = db.client.scan(**kwargs)
            for raw in resp.get("Items", []):
                item = deserialize(raw) or {}
                self.all_tasks[item["task_id"]] = item
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        owners = [job_pk(job_id), *(task_pk(t) for t in self.tree)]
        for owner in owners:  # latch buckets: dependencies (and latches of jobs written before sibling buckets)
            if owner == job_pk(job_id) and not self.job.get("roots_bucketed"):
                continue
            if owner != job_pk(job_id):
                task = self.tree[owner[len("TASK#") :]]
                if not (task.get("children_bucketed") or task.get("deps_bucketed")):
                    continue
            for item in db.query_all(
                key_condition="#PK = :pk AND begins_with(#SK, :l)", values={":pk": owner, ":l": "LATCH#"}
            ):
                self.bucket_items[owner].append(item)
        self._load_sibling_buckets(db, job_id)

    def _load_sibling_buckets(self, db: Any, job_id: str) -> None:
        """Sibling buckets (children of a parent, roots of the job) live in the job's partition, by group."""
        for item in db.query_all(
            key_condition="#PK = :pk AND begins_with(#SK, :s)", values={":pk": job_pk(job_id), ":s": "STATS#"}
        ):
            if "total" not in item:
                continue
            group = item["SK"].split("#")[1]
            owner = job_pk(job_id) if group == "root" else task_pk(group)
            kind = "roots" if group == "root" else "children"
            self.bucket_items[owner].append({**item, "SK": f"LATCH#{kind}#{item['SK'].rsplit('#', 1)[1]}"})


def _sibling_id(task: dict[str, Any], index: int) -> str:
    if task.get("parent_id"):
        return rules.child_task_id(task["parent_id"], int(task["parent_attempt"]), index)
    return rules.root_task_id(task["job_id"], index)


def _latch_members(state: JobState, owner_pk: str, owner: dict[str, Any], kind: str) -> tuple[set[int], list[str]]:
    """The members recorded in a latch (bucketed or not), and structural problems found."""
    problems: list[str] = []
    done = {int(m) for m in owner.get(f"{kind}_done") or ()}
    if not owner.get(f"{kind}_bucketed"):
        return done, problems
    members: set[int] = set()
    full_buckets: set[int] = set()
    for item in state.bucket_items.get(owner_pk, []):
        if not item["SK"].startswith(f"LATCH#{kind}#"):
            continue
        k = int(item["SK"].rsplit("#", 1)[1])
        bucket_done = {int(m) for m in item.get("done") or ()}
        if len(bucket_done) > int(item["total"]):
            problems.append(f"{owner_pk} {kind} bucket {k} has {len(bucket_done)} members of {item['total']}")
        if any(m // rules.LATCH_BUCKET != k for m in bucket_done):
            problems.append(f"{owner_pk} {kind} bucket {k} holds members of other buckets")
        members |= bucket_done
        if len(bucket_done) >= int(item["total"]):
            full_buckets.add(k)
    if not done <= full_buckets:
        problems.append(f"{owner_pk} {kind}: buckets {sorted(done - full_buckets)} signalled full but are not")
    return members, problems


def check_job(engine: Orchestrator, job_id: str, *, quiescent: bool = True, now_ms: int | None = None) -> list[str]:  # noqa: PLR0912, PLR0915 - the module docstring's list of invariants, each an independent check
    """Violations of the stored-state invariants of one job (see the module docstring)."""
    state = JobState(engine, job_id)
    v: list[str] = []
    job = state.job
    if not job:
        return [f"job {job_id} does not exist"]
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    if job.get("state") not in JOB_STATES:
        v.append(f"job state {job.get('state')!r} is not a job state")
    tree, everything = state.tree, state.all_tasks

    # --- the tree and orphans ---------------------------------------------------------------------
    roots = [rules.root_task_id(job_id, i) for i in range(int(job.get("roots", 0)))]
    for i, root in enumerate(roots):
        if root not in tree:
            v.append(f"root {i} ({root}) is missing")
    for task in tree.values():
        if task.get("state") == COMPUTED and task.get("children"):
            for i in range(int(task["children"])):
                child_id = rules.child_task_id(task["task_id"], int(task["attempt"]), i)
                child = tree.get(child_id)
                if child is None:
                    v.append(f"task {task['task_id']} (COMPUTED, {task['children']} children) lacks child {i}")
                elif child.get("parent_id") != task["task_id"] or int(child.get("parent_attempt", -1)) != int(
                    task["attempt"]
                ):
                    v.append(f"child {child_id} does not name its parent's committed attempt")
    for task_id, task in everything.items():
        if task_id in tree:
            continue
        parent = everything.get(task.get("parent_id") or "")
        committed = (
            parent is not None
            and parent.get("state") == COMPUTED
            and int(parent.get("attempt", -1)) == int(task.get("parent_attempt", -2))
        )
        if task.get("parent_id") is None or committed:
            v.append(f"orphaned task {task_id}: not reachable from the roots, yet its parent attempt committed")
        elif task.get("state") != QUEUED or int(task.get("attempt", 0)) != 0:
            v.append(f"garbage task {task_id} of an uncommitted attempt ran (state {task.get('state')})")

    # --- per-task rules ---------------------------------------------------------------------------
    def completed(task_id: str) -> bool:
        t = tree.get(task_id)
        settled = t is not None and t.get("state") in (Task.FAILED_OPTIONAL, Task.SKIPPED)
        return bool(t and ((t.get("state") == COMPUTED and t.get("completed")) or settled))

    for task_id, task in tree.items():
        st = task.get("state")
        if st not in TASK_STATES:
            v.append(f"task {task_id} has state {st!r}")
            continue
        if task.get("completed") and st != COMPUTED:
            v.append(f"task {task_id} is marked completed but is {st}")
        kids = [rules.child_task_id(task_id, int(task["attempt"]), i) for i in range(int(task.get("children") or 0))]
        if st == COMPUTED:
            kids_done = all(completed(k) for k in kids)
            if task.get("completed") and not kids_done:
                v.append(f"task {task_id} is marked completed before all its children completed")
            if quiescent and kids_done and not task.get("completed"):
                v.append(f"task {task_id}: every child completed, but the task is not marked completed")
            members, problems = _latch_members(state, task_pk(task_id), task, "children")
            v.extend(problems)
            really = {i for i, k in enumerate(kids) if completed(k)}
            if not members <= really or (quiescent and members != really):
                v.append(f"task {task_id} children latch {sorted(members)} != completed children {sorted(really)}")
        deps = [int(d) for d in task.get("depends_on") or ()]
        if deps:
            members, problems = _latch_members(state, task_pk(task_id), task, "deps")
            v.extend(problems)
            really = {d for d in deps if completed(_sibling_id(task, d))}
            if not members <= really or (quiescent and members != really):
                v.append(f"task {task_id} deps latch {sorted(members)} != completed dependencies {sorted(really)}")
            if int(task.get("attempt", 0)) > 0 and really != set(deps):
                v.append(f"task {task_id} was claimed before its dependencies {sorted(set(deps) - really)} completed")
        if st == RUNNING:
            if not task.get("lease_owner") or not task.get("lease_expires"):
                v.append(f"task {task_id} is RUNNING without a lease")
            elif quiescent and int(task["lease_expires"]) <= now:
                v.append(f"task {task_id} is RUNNING with an expired lease and nobody repairing it")
        elif task.get("lease_owner"):
            v.append(f"task {task_id} is {st} but still has a lease owner")
        used = int(task.get("retry_count", 0)) - int(task.get("retry_base", 0))
        if used > int(task.get("max_retries", 0)):
            v.append(f"task {task_id} used {used} retries of {task.get('max_retries', 0)}")
        if int(task.get("lease_losses", 0)) > rules.MAX_LEASE_LOSSES + 1:
            v.append(f"task {task_id} has {task['lease_losses']} lease losses")

    # --- the job ----------------------------------------------------------------------------------
    members, problems = _latch_members(state, job_pk(job_id), job, "roots")
    v.extend(problems)
    really = {i for i, r in enumerate(roots) if completed(r)}
    if not members <= really or (quiescent and members != really):
        v.append(f"job roots latch {sorted(members)} != completed roots {sorted(really)}")
    all_roots_done = len(really) == len(roots)
    jstate = job.get("state")
    if jstate == COMPLETED:
        if not all_roots_done:
            v.append("job is COMPLETED but not every root completed")
        if not all(completed(t) for t in tree):
            v.append("job is COMPLETED but some task in its tree is not completed")
    if jstate == FAILED and not any(t.get("state") == FAILED for t in tree.values()):
        # allowed only if the failing task was requeued by a retry that raced the job-level failure
        culprit = tree.get(str((job.get("failure") or {}).get("task_id")))
        if not (culprit and culprit.get("last_failure")):
            v.append("job is FAILED but no task of it is FAILED (nor retried)")
    if quiescent and jstate in ACTIVE_JOB_STATES:
        if all_roots_done:
            v.append(f"every root completed but the job is {jstate}")
        failed = [t for t, task in tree.items() if task.get("state") == FAILED]
        if failed:
            v.append(f"job is {jstate} but tasks {failed[:3]} are FAILED")
    if quiescent and jstate == "SUBMITTED" and any(int(t.get("attempt", 0)) > 0 for t in tree.values()):
        v.append("job is still SUBMITTED although tasks of it were claimed")
    if quiescent:
        figures = engine.job_figures(job)["execution_stats"]
        finished = Counter(str(t["state"]) for t in tree.values() if t.get("state") in FINISHED_TASK_STATES)
        expected = {**({"QUEUED": len(tree) - finished.total()} if len(tree) > finished.total() else {}), **finished}
        if figures["tasks_by_state"] != expected or figures["total_tasks"] != len(tree):
            v.append(f"job figures {figures['tasks_by_state']} (total {figures['total_tasks']}) != tree {expected}")
    if quiescent and job.get("outbox_at") and int(job["outbox_at"]) + 60_000 < now:
        v.append("job has an outbox (unconfirmed dispatch) overdue by more than a minute")
    return v


def state_counts(engine: Orchestrator, job_id: str) -> Counter[str]:
    job = engine.db.get(job_pk(job_id), "META") or {}
    return Counter(t["state"] for t in engine.walk(job)) if job else Counter()


# --- executions --------------------------------------------------------------------------------------


def check_executions(  # noqa: PLR0912 - the execution invariants, each an independent check
    records: Iterable[dict[str, Any]],
    engine: Orchestrator,
    job_ids: Iterable[str],
    kills: dict[int, float] | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """Violations of the execution invariants, and figures: executions per task, duplicates.

    `records` are {"task", "attempt", "pid", "phase": "start"|"end", "t"}; `kills` maps the pid of each
    runner the harness SIGKILLed to the time it did."""
    kills = kills or {}
    v: list[str] = []
    tree: dict[str, dict[str, Any]] = {}
    garbage: set[str] = set()
    for job_id in job_ids:
        state = JobState(engine, job_id)
        tree.update(state.tree)
        garbage |= set(state.all_tasks) - set(state.tree)
    starts: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    ends: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["task"] in tree or r["task"] in garbage:
            (starts if r["phase"] == "start" else ends)[(r["task"], int(r["attempt"]))].append(r)
    for (task_id, attempt), runs in starts.items():
        if len(runs) > 1:
            v.append(f"task {task_id} attempt {attempt} started {len(runs)} times (pids {[r['pid'] for r in runs]})")
        if task_id in garbage:
            v.append(f"garbage task {task_id} was executed")
    by_task: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for (task_id, attempt), runs in starts.items():
        for r in runs:
            end = next((e["t"] for e in ends.get((task_id, attempt), []) if e["pid"] == r["pid"]), None)
            if end is None:
                end = kills.get(int(r["pid"]), float("inf"))
            by_task[task_id].append((attempt, float(r["t"]), end))
    for task_id, spans in by_task.items():
        spans.sort()
        for (a1, _, end1), (a2, start2, _) in itertools.pairwise(spans):
            if start2 < end1:
                v.append(f"task {task_id}: attempt {a2} started while attempt {a1} was still running")
    for task_id, task in tree.items():
        if task.get("state") != COMPUTED:
            continue
        finished = ends.get((task_id, int(task["attempt"])), [])
        if len(finished) != 1:
            v.append(f"task {task_id} committed attempt {task['attempt']} finished {len(finished)} times")
    per_task = Counter(task_id for (task_id, _), runs in starts.items() for _ in runs)
    histogram = Counter(per_task.get(t, 0) for t in tree)
    interrupted = sum(
        1 for key, runs in starts.items() for r in runs if not any(e["pid"] == r["pid"] for e in ends.get(key, []))
    )
    committed = {(t, int(task["attempt"])) for t, task in tree.items() if task.get("state") == COMPUTED}
    figures = {
        "tasks": len(tree),
        "executions": sum(per_task.values()),
        # the same attempt executed twice: what "at most one runner per attempt" forbids
        "duplicate_executions": sum(len(runs) - 1 for runs in starts.values()),
        # attempts cut short by a killed runner, and finished attempts whose result did not stand
        # (a failure with retries left, or a late report of a lost lease): re-executions by design
        "interrupted_executions": interrupted,
        "superseded_executions": sum(len(e) for key, e in ends.items() if key not in committed),
        "executions_per_task": {str(k): n for k, n in sorted(histogram.items())},
        "tasks_computed": sum(1 for t in tree.values() if t.get("state") == COMPUTED),
        "tasks_completed": sum(1 for t in tree.values() if t.get("state") == COMPUTED and t.get("completed")),
    }
    return v, figures
