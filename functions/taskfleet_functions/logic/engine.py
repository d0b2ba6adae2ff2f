"""The orchestrator: every state change of jobs, tasks and clusters. See docs/architecture.md.

Storage is reached only through `Dynamo` (conditional writes) and `Queues` (ticket sends); both are
injected, so the same code runs on AWS, on the local stack, and in tests against in-process moto.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from taskfleet import rules

from .. import faults
from ..dal.dynamo import Dynamo, Item, UpdateResult
from ..dal.queues import Queues, Ticket
from ..dal.table import JOBS_INDEX, OUTBOX_INDEX
from ..settings import Settings
from .errors import Conflict, InvalidRequest, NotFound

# Task states
QUEUED, RUNNING, COMPUTED, FAILED = "QUEUED", "RUNNING", "COMPUTED", "FAILED"
# Job states
SUBMITTED, COMPLETED, CANCELED = "SUBMITTED", "COMPLETED", "CANCELED"
ACTIVE_JOB_STATES = (SUBMITTED, RUNNING)

META = "META"
CLUSTER_CACHE_MS = 60_000
BUSY_MARGIN_MS = 1_000
SPEC_CHUNK_CACHE = 256  # spec chunks kept per process (each up to SPEC_CHUNK specs of <= 1 KB)


def task_pk(task_id: str) -> str:
    return f"TASK#{task_id}"


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


# --- requests (already validated for shape by the API models) -----------------------------------------


@dataclass
class TaskSpec:
    name: str
    version: str
    input: Any = None
    depends_on: list[int] = field(default_factory=list)
    cluster: str | None = None
    max_retries: int = 0
    display: str | None = None


@dataclass
class Report:
    task_id: str
    job_id: str
    attempt: int
    outcome: str  # "computed" | "failed" | "released"
    display: str | None = None
    subtasks: list[TaskSpec] = field(default_factory=list)
    failure_message: str | None = None
    failure_traceback: str | None = None


# --- latches -------------------------------------------------------------------------------------------


def latch_fields(kind: str, members: Sequence[int], owner_pk: str) -> tuple[dict[str, Any], list[Item]]:
    """Owner attributes and bucket items for a latch over `members` (see "Latches")."""
    if len(members) <= rules.LATCH_BUCKET:
        return {f"{kind}_total": len(members), f"{kind}_bucketed": False}, []
    per_bucket: dict[int, int] = defaultdict(int)
    for m in members:
        per_bucket[m // rules.LATCH_BUCKET] += 1
    buckets = [{"PK": owner_pk, "SK": f"LATCH#{kind}#{k}", "total": n} for k, n in sorted(per_bucket.items())]
    return {f"{kind}_total": len(buckets), f"{kind}_bucketed": True}, buckets


def new_task_item(
    *, task_id: str, job_id: str, parent_id: str | None, parent_attempt: int, index: int, sibs: int,
    spec: list[Any], now: int, deps: list[int] | None = None, dependents: list[int] | None = None,
    big_dependents: list[int] | None = None,
) -> Item:
    """A QUEUED task item. `spec` is [name, version, cluster, input text (inline), max_retries, display]:
    the part a deferred subtask keeps in its parent's spec chunk until its first claim."""
    name, version, cluster, text, max_retries, display = spec
    item: Item = {
        "PK": task_pk(task_id), "SK": META, "type": "task", "task_id": task_id, "job_id": job_id,
        "parent_id": parent_id, "parent_attempt": parent_attempt, "index": index, "sibs": sibs,
        "name": name, "version": version, "cluster": cluster, "state": QUEUED, "attempt": 0, "retry_count": 0,
        "retry_base": 0, "max_retries": max_retries, "lease_losses": 0, "submitted_at": now,
        "depends_on": deps or None, "dependents": dependents or None, "dependents_big": big_dependents or None,
        "display": display, "input": text,
    }
    item.update(latch_fields("deps", deps or [], task_pk(task_id))[0])
    return item


def window_open(parent: Item, index: int) -> bool:
    """Whether subtask `index` of `parent` may have its ticket out (docs/architecture.md, "Dispatch
    window"): its latch bucket is among the first `window` ones, or the bucket `window` before it is full."""
    window = int(parent.get("window") or 0)
    bucket = index // rules.LATCH_BUCKET
    return not window or bucket < window or (bucket - window) in (parent.get("children_done") or ())


def spec_chunk_key(parent_attempt: int, chunk: int) -> str:
    return f"KIDS#{parent_attempt}#{chunk}"


def latch_full(item: Item, kind: str) -> bool:
    return len(item.get(f"{kind}_done") or ()) >= int(item.get(f"{kind}_total", 0))


def is_ready(task: Item) -> bool:
    """QUEUED with every dependency completed: its ticket may go out."""
    return bool(task["state"] == QUEUED and latch_full(task, "deps"))


@dataclass
class ClaimResult:
    status: str  # "run" | "busy" | "discard"
    task: dict[str, Any] | None = None
    retry_after_ms: int = 0
    reason: str = ""


@dataclass
class ReportResult:
    status: str  # "ok" | "requeued" | "failed" | "lease_lost"
    message: str = ""


class Orchestrator:
    def __init__(
        self,
        db: Dynamo,
        queues: Queues,
        settings: Settings,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.db = db
        self.queues = queues
        self.settings = settings
        self.clock = clock
        self.lease_ms = settings.lease_seconds * 1000
        # a submit/retry that has not confirmed its dispatch by then is redone by the sweeper
        self.outbox_ms = int(settings.outbox_grace_seconds * 1000)
        self._clusters: dict[str, tuple[Item, int]] = {}
        self._chunks: dict[tuple[str, int, int], Item] = {}
        self.dispatch_window = rules.DISPATCH_WINDOW // rules.LATCH_BUCKET  # in latch buckets
        self.job_transitions: Counter[str] = Counter()

    # ===================================================================================== clusters ==

    def cluster(self, slug: str) -> Item:
        """The cluster item (cached for a minute per process); creates declared clusters on first use."""
        slug = slug or rules.DEFAULT_CLUSTER
        cached = self._clusters.get(slug)
        if cached and cached[1] > self.clock():
            return cached[0]
        item = self.db.get("CLUSTERS", f"C#{slug}", consistent=False)
        if item is None and slug in self.settings.static_clusters:
            item = self._create_cluster(slug, slug)
        if item is None:
            raise NotFound(f"cluster {slug!r} does not exist", code="ClusterNotFound")
        self._clusters[slug] = (item, self.clock() + CLUSTER_CACHE_MS)
        return item

    def _create_cluster(self, slug: str, name: str) -> Item:
        url, dlq = self.queues.ensure(self.settings.queue_name(slug), self.settings.dlq_name(slug))
        item = {"PK": "CLUSTERS", "SK": f"C#{slug}", "type": "cluster", "slug": slug, "name": name,
                "queue_url": url, "dlq_url": dlq, "created_at": self.clock()}
        result = self.db.put(item, condition="attribute_not_exists(#PK)")
        return item if result.ok else (result.item or item)

    def create_cluster(self, name: str) -> Item:
        if not isinstance(name, str) or not (1 <= len(name) <= 100) or not name.isprintable():
            raise InvalidRequest("cluster name must be 1-100 printable characters")
        slug = f"{rules.slugify(name)[:30]}-{secrets.token_hex(3)}"
        return self._create_cluster(rules.check_slug(slug), name)

    def list_clusters(self) -> list[Item]:
        self.cluster(rules.DEFAULT_CLUSTER)  # the default cluster always exists
        return list(self.db.query_all(key_condition="#PK = :pk", values={":pk": "CLUSTERS"}))

    def delete_cluster(self, slug: str) -> None:
        if slug == rules.DEFAULT_CLUSTER:
            raise Conflict("the default cluster cannot be deleted")
        item = self.cluster(slug)
        self.queues.delete(item["queue_url"], item["dlq_url"])
        self.db.delete("CLUSTERS", f"C#{slug}")
        self._clusters.pop(slug, None)

    # ========================================================================================= jobs ==

    def submit_job(
        self,
        name: str,
        tasks: list[TaskSpec],
        cluster: str | None = None,
        max_retries: int = 0,
        client_token: str | None = None,
    ) -> Item:
        if not isinstance(name, str) or not (1 <= len(name) <= rules.MAX_JOB_NAME_CHARS):
            raise InvalidRequest(f"job name must be 1-{rules.MAX_JOB_NAME_CHARS} characters")
        if not tasks:
            raise InvalidRequest("a job needs at least one task")
        if len(tasks) > rules.MAX_ROOT_TASKS:
            raise InvalidRequest(f"a job has at most {rules.MAX_ROOT_TASKS} root tasks; submit more as subtasks")
        cluster_slug = cluster or rules.DEFAULT_CLUSTER
        job_id = rules.job_id_for_token(client_token) if client_token else str(uuid.uuid4())
        now = self.clock()
        if client_token:
            existing = self.db.get(job_pk(job_id), META)
            if existing is not None:
                return self._resubmitted(existing, name)
        for spec in tasks:
            spec.max_retries = spec.max_retries or max_retries
        items, ready = self._task_items(  # validates everything: nothing is written for a rejected submit
            tasks, job_id=job_id, parent=None, parent_attempt=0, default_cluster=cluster_slug, now=now
        )
        if client_token:
            # One writer per token: a duplicate (a client's retry) arriving while the first request is
            # still writing must not rewrite its tasks, which may already run once the job exists. The
            # lock goes stale when its holder must be dead (the API function's timeout is shorter).
            lock = self.db.put({"PK": job_pk(job_id), "SK": "TOKEN", "at": now},
                               condition="attribute_not_exists(#PK) OR #at < :stale",
                               values={":stale": now - int(self.settings.submit_lock_seconds * 1000)})
            if not lock.ok:
                existing = self.db.get(job_pk(job_id), META)
                if existing is not None:
                    return self._resubmitted(existing, name)
                raise Conflict("a submission with this client token is in progress; retry shortly",
                               code="SubmitInProgress")
        self.db.put_many(items)
        faults.point("submit.after_tasks")
        job = {
            "PK": job_pk(job_id), "SK": META, "type": "job", "job_id": job_id, "name": name,
            "state": SUBMITTED, "cluster": cluster_slug, "submitted_at": now, "max_retries": max_retries,
            "roots": len(tasks), "client_token": client_token,
            "GSI1PK": "JOBS", "GSI1SK": f"{now:015d}#{job_id}",
            "outbox_at": now + self.outbox_ms, "GSI2PK": "OUTBOX", "GSI2SK": f"{now + self.outbox_ms:015d}",
        }
        latch, buckets = latch_fields("roots", range(len(tasks)), job_pk(job_id))
        job.update(latch)
        self.db.put_many(buckets)
        result = self.db.put(job, condition="attribute_not_exists(#PK)")
        if not result.ok and (result.item or {}).get("submitted_at") != now:  # a concurrent submit won
            return result.item or job  # (else it is this request's own write, retried after a lost response)
        faults.point("submit.after_write")
        self._dispatch(ready, suffix="")
        faults.point("submit.before_clear_outbox")
        self._clear_outbox(job_id)
        job.pop("GSI2PK"), job.pop("GSI2SK"), job.pop("outbox_at")
        return job

    def _resubmitted(self, existing: Item, name: str) -> Item:
        """A submit with the client token of an existing job: that job (its dispatch finished if needed)."""
        if existing.get("name") != name:
            raise Conflict("client token was already used for a different job", code="TokenReused")
        if existing.get("outbox_at"):
            self.resume(existing)
        return existing

    def _task_items(
        self,
        specs: list[TaskSpec],
        *,
        job_id: str,
        parent: Item | None,
        parent_attempt: int,
        default_cluster: str,
        now: int,
    ) -> tuple[list[Item], list[Item]]:
        """Items to write for sibling tasks (task items, latch buckets, spilled inputs, spec chunks), and
        the ready ones (no deps) to dispatch. Subtasks outside any dependency, with an inline input, are
        deferred: only their spec is written, in chunks, and their item is created by their first claim
        (docs/architecture.md, "Deferred subtasks")."""
        def sibling_id(i: int) -> str:
            if parent is None:
                return rules.root_task_id(job_id, i)
            return rules.child_task_id(parent["task_id"], parent_attempt, i)

        dependents: dict[int, list[int]] = defaultdict(list)
        big_dependents: dict[int, list[int]] = defaultdict(list)
        checked_deps: list[list[int]] = []
        for i, spec in enumerate(specs):
            rules.check_task_name(spec.name)
            rules.parse_version(spec.version)
            deps = rules.check_dependencies(i, list(spec.depends_on))
            checked_deps.append(deps)
            for d in deps:
                (big_dependents if len(deps) > rules.LATCH_BUCKET else dependents)[d].append(i)
            if not (0 <= spec.max_retries <= rules.MAX_RETRIES_LIMIT):
                raise InvalidRequest(f"max_retries must be 0-{rules.MAX_RETRIES_LIMIT}")
        items: list[Item] = []
        ready: list[Item] = []
        chunks: dict[int, dict[str, list[Any]]] = defaultdict(dict)
        for i, spec in enumerate(specs):
            task_id = sibling_id(i)
            cluster = self.cluster(spec.cluster or default_cluster)["slug"]
            text = rules.encode_input(spec.input)
            spilled = len(text.encode("utf-8")) > rules.INLINE_INPUT_BYTES
            display = rules.truncate(spec.display, rules.MAX_DISPLAY_CHARS) if spec.display else None
            compact = [spec.name, spec.version, cluster, None if spilled else text, spec.max_retries, display]
            item = new_task_item(
                task_id=task_id, job_id=job_id, parent_id=parent["task_id"] if parent else None,
                parent_attempt=parent_attempt, index=i, sibs=len(specs), spec=compact, now=now,
                deps=checked_deps[i], dependents=dependents.get(i), big_dependents=big_dependents.get(i),
            )
            if parent is not None and not spilled and not (checked_deps[i] or i in dependents or i in big_dependents):
                chunks[i // rules.SPEC_CHUNK][str(i)] = compact
                item["ref"] = (parent["task_id"], parent_attempt, i)
                ready.append(item)
                continue
            if spilled:
                item["input_spilled"] = True
                items.append({"PK": task_pk(task_id), "SK": "INPUT", "input": text})
            items.extend(latch_fields("deps", checked_deps[i], task_pk(task_id))[1])
            items.append(item)
            if not checked_deps[i]:
                ready.append(item)
        if parent is not None:
            items.extend({"PK": task_pk(parent["task_id"]), "SK": spec_chunk_key(parent_attempt, k), "type": "specs",
                          "job_id": job_id, "sibs": len(specs), "submitted_at": now, "specs": entries}
                         for k, entries in sorted(chunks.items()))
        return items, ready

    def get_job(self, job_id: str) -> Item:
        if not rules.is_plausible_id(job_id):  # DynamoDB rejects keys over 2 KB with a 500-worthy error
            raise NotFound(f"job {job_id!r:.80} does not exist", code="JobNotFound")
        job = self.db.get(job_pk(job_id), META)
        if job is None or job.get("type") != "job":
            raise NotFound(f"job {job_id!r} does not exist", code="JobNotFound")
        return job

    def list_jobs(
        self, *, state: str | None = None, name: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Item], str | None]:
        filters, values = [], {":pk": "JOBS"}
        if state:
            filters.append("#state = :state")
            values[":state"] = state
        if name:
            filters.append("#name = :name")
            values[":name"] = name
        start = None
        if cursor:
            try:
                start = json.loads(base64.urlsafe_b64decode(cursor.encode()).decode())
                # exactly the key shape this API returns, or DynamoDB rejects it (a 500, not a 400)
                if not isinstance(start, dict) or set(start) != {"PK", "SK", "GSI1PK", "GSI1SK"} or not all(
                        isinstance(v, dict) and list(v) == ["S"] and isinstance(v["S"], str) and 0 < len(v["S"]) < 1024
                        for v in start.values()) or start["GSI1PK"]["S"] != "JOBS":
                    raise ValueError
            except (ValueError, RecursionError):
                raise InvalidRequest("cursor is not one this API returned") from None
        items, last = self.db.query(
            index=JOBS_INDEX, key_condition="#GSI1PK = :pk", values=values, forward=False,
            limit=limit, start_key=start, filter=" AND ".join(filters) or None,
        )
        next_cursor = base64.urlsafe_b64encode(json.dumps(last).encode()).decode() if last else None
        return items, next_cursor

    def walk(self, job: Item) -> Iterator[Item]:
        """Every task of the job's tree, breadth first, read with BatchGetItem (no index needed). A
        deferred subtask not claimed yet is shown QUEUED, built from its spec."""
        level = self.db.batch_get([(task_pk(rules.root_task_id(job["job_id"], i)), META)
                                   for i in range(int(job["roots"]))])
        while level:
            parents: list[Item] = []
            for item in sorted(level, key=lambda t: (t.get("parent_id") or "", t["index"])):
                yield item
                if item["state"] == COMPUTED and item.get("children"):
                    parents.append(item)
            level = self._children(parents)

    def _children(self, parents: Sequence[Item], keep: Callable[[Item, int], bool] | None = None) -> list[Item]:
        """The subtasks of COMPUTED tasks (those for which `keep(parent, index)` holds, if given): their
        items, or for deferred ones not claimed yet, QUEUED items built from the parent's spec chunks (with
        a "ref" to dispatch them by)."""
        wanted = {rules.child_task_id(p["task_id"], int(p["attempt"]), i): (p, i)
                  for p in parents for i in range(int(p.get("children") or 0)) if keep is None or keep(p, i)}
        found = self.db.batch_get([(task_pk(t), META) for t in wanted])
        missing: dict[tuple[str, int, int], list[int]] = defaultdict(list)
        for task_id in set(wanted) - {t["task_id"] for t in found}:
            parent, index = wanted[task_id]
            missing[(parent["task_id"], int(parent["attempt"]), index // rules.SPEC_CHUNK)].append(index)
        for (parent_id, attempt, k), indexes in missing.items():
            chunk = self._spec_chunk(parent_id, attempt, k)
            if chunk is not None:
                found.extend(self._deferred_item(chunk, parent_id, attempt, i, chunk["specs"][str(i)])
                             for i in indexes if str(i) in chunk["specs"])
        return found

    @staticmethod
    def _deferred_item(chunk: Item, parent_id: str, attempt: int, index: int, spec: list[Any]) -> Item:
        item = new_task_item(task_id=rules.child_task_id(parent_id, attempt, index), job_id=chunk["job_id"],
                             parent_id=parent_id, parent_attempt=attempt, index=index, sibs=int(chunk["sibs"]),
                             spec=spec, now=int(chunk["submitted_at"]))
        item["ref"] = (parent_id, attempt, index)
        return item

    def job_tasks(self, job_id: str) -> list[Item]:
        return list(self.walk(self.get_job(job_id)))

    def cancel_job(self, job_id: str) -> Item:
        job = self.get_job(job_id)
        result = self.db.update(
            job_pk(job_id), META, set={"state": CANCELED, "finished_at": self.clock()},
            condition="#state IN (:s, :r)", values={":s": SUBMITTED, ":r": RUNNING},
        )
        if result.ok and result.item:
            return result.item
        current = result.item or job
        if current.get("state") == CANCELED:
            return current
        raise Conflict(f"job is {current.get('state')}; only a submitted or running job can be canceled",
                       code="JobNotActive")

    def retry_job(self, job_id: str) -> int:
        """FAILED/CANCELED -> RUNNING; failed tasks are queued again, ready tasks dispatched."""
        self.get_job(job_id)
        now = self.clock()
        result = self.db.update(
            job_pk(job_id), META,
            set={"state": RUNNING, "finished_at": None, "failure": None, "outbox_at": now + self.outbox_ms,
                 "GSI2PK": "OUTBOX", "GSI2SK": f"{now + self.outbox_ms:015d}"},
            condition="#state IN (:f, :c)", values={":f": FAILED, ":c": CANCELED},
        )
        if not result.ok or result.item is None:
            current = result.item or {}
            if current.get("state") in ACTIVE_JOB_STATES and current.get("outbox_at"):
                # a retry whose dispatch is unfinished (this request's own write with its response lost,
                # or an earlier retry that crashed): finish it now rather than leave it to the sweeper
                return self.resume(current)
            return 0
        faults.point("retry.after_job_update")
        return self.resume(result.item)

    def resume(self, job: Item) -> int:
        """Bring an active job's tasks in line with it: failed tasks queued again, expired leases of
        running tasks released, every ready queued task dispatched. Idempotent; clears the outbox."""
        requeued = 0
        ready: list[Item] = []
        now = self.clock()
        if job.get("state") in ACTIVE_JOB_STATES:
            parents: dict[str, Item] = {}
            for found in self.walk(job):
                task, state = found, found["state"]
                if state == COMPUTED:
                    parents[task["task_id"]] = task
                if state == FAILED:
                    res = self.db.update(
                        task_pk(task["task_id"]), META,
                        set={"state": QUEUED, "retry_base": int(task.get("retry_count", 0)),
                             "last_failure": task.get("failure"), "failure": None},
                        condition="#state = :f AND #attempt = :a",
                        values={":f": FAILED, ":a": task["attempt"]},
                    )
                    if res.ok and res.item:
                        requeued += 1
                        task = res.item
                        faults.point("resume.after_requeue")
                elif state == RUNNING and int(task.get("lease_expires", 0)) <= now:
                    res = self._release_expired(task)
                    if res.ok and res.item:
                        task = res.item
                parent = parents.get(task.get("parent_id") or "")
                if is_ready(task) and (parent is None or window_open(parent, int(task["index"]))):
                    ready.append(task)
            faults.point("resume.before_dispatch")
            self._dispatch(ready, suffix=f":r{now}")
            faults.point("resume.before_clear_outbox")
        self._clear_outbox(job["job_id"])
        return requeued

    def _release_expired(self, task: Item) -> UpdateResult:
        """A RUNNING attempt whose lease ran out goes back to QUEUED (a lease loss, not a retry)."""
        return self.db.update(
            task_pk(task["task_id"]), META, set={"state": QUEUED}, add={"lease_losses": 1},
            remove=["lease_owner", "lease_expires"],
            condition="#state = :r AND #attempt = :a", values={":r": RUNNING, ":a": task["attempt"]},
        )

    def _clear_outbox(self, job_id: str) -> None:
        self.db.update(job_pk(job_id), META, remove=["outbox_at", "GSI2PK", "GSI2SK"],
                       condition="attribute_exists(#PK)")

    def _fail_job(self, job_id: str, task: Item, message: str) -> None:
        result = self.db.update(
            job_pk(job_id), META,
            set={"state": FAILED, "finished_at": self.clock(),
                 "failure": {"task_id": task["task_id"], "name": task["name"], "message": message}},
            condition="#state IN (:s, :r)", values={":s": SUBMITTED, ":r": RUNNING},
        )
        if result.ok:
            self.job_transitions[FAILED] += 1

    def drain_job_transitions(self) -> dict[str, int]:
        """Jobs this process moved to COMPLETED or FAILED since the last call (for the handlers' metrics)."""
        counts, self.job_transitions = dict(self.job_transitions), Counter()
        return counts

    # ====================================================================================== runners ==

    def _job_brief(self, job_id: str) -> Item | None:
        return self.db.get(job_pk(job_id), META, projection="job_id,state,name")

    def next(
        self, report: Report | None, claim: tuple[str, str, tuple[str, int, int] | None] | None, runner_id: str
    ) -> tuple[ReportResult | None, ClaimResult | None]:
        """A runner's combined call: report one task, claim the next. The job item is read once when
        both name the same job (unless the report just failed it)."""
        job: Item | None = None
        reported = None
        if report is not None:
            job = self._job_brief(report.job_id)
            reported = self.report(report, runner_id, job=job)
        claimed = None
        if claim is not None:
            job_id, task_id, ref = claim
            reuse = job is not None and job["job_id"] == job_id and reported is not None and reported.status == "ok"
            claimed = self.claim(job_id, task_id, runner_id, job=job if reuse else None, ref=ref)
        return reported, claimed

    def claim(self, job_id: str, task_id: str, runner_id: str, *, job: Item | None = None,
              ref: tuple[str, int, int] | None = None) -> ClaimResult:
        if job is None:
            job = self._job_brief(job_id)
        if job is None:
            return ClaimResult("discard", reason="unknown job")
        now = self.clock()
        if job["state"] not in ACTIVE_JOB_STATES:
            task = self.db.get(task_pk(task_id), META)
            if task and task["state"] == RUNNING:
                if int(task.get("lease_expires", 0)) > now:  # keep the watchdog of a running task
                    return ClaimResult("busy", retry_after_ms=int(task["lease_expires"]) - now + BUSY_MARGIN_MS)
                self._release_expired(task)
            return ClaimResult("discard", reason=f"job is {job['state']}")
        lease = {"state": RUNNING, "lease_owner": runner_id, "lease_expires": now + self.lease_ms, "started_at": now}
        created = self._create_deferred(job_id, task_id, ref, lease) if ref is not None else None
        if created is not None and created.ok:
            result = created
        else:
            result = self.db.update(task_pk(task_id), META, set=lease, add={"attempt": 1},
                                    condition="#state = :q", values={":q": QUEUED})
        if not result.ok:
            old = result.item
            if old is None:
                return ClaimResult("discard", reason="unknown task")
            if old["state"] == RUNNING and int(old.get("lease_expires", 0)) <= now:
                losses = int(old.get("lease_losses", 0)) + 1
                if losses > rules.MAX_LEASE_LOSSES:
                    message = f"the task's runner stopped responding {losses} times (lease expired)"
                    res = self.db.update(
                        task_pk(task_id), META,
                        set={"state": FAILED, "finished_at": now, "lease_losses": losses,
                             "failure": {"message": message, "attempt": old["attempt"], "at": now}},
                        remove=["lease_owner", "lease_expires"],
                        condition="#state = :r AND #attempt = :a", values={":r": RUNNING, ":a": old["attempt"]},
                    )
                    if res.ok:
                        faults.point("claim.before_fail_job")
                        self._fail_job(job_id, old, message)
                    return ClaimResult("discard", reason=message)
                result = self.db.update(
                    task_pk(task_id), META, set={**lease, "lease_losses": losses}, add={"attempt": 1},
                    condition="#state = :r AND #attempt = :a", values={":r": RUNNING, ":a": old["attempt"]},
                )
                if not result.ok:
                    return ClaimResult("busy", retry_after_ms=BUSY_MARGIN_MS, reason="taken over concurrently")
            elif old["state"] == RUNNING and old.get("lease_owner") == runner_id:
                # this runner's own claim, retried after a lost response or a crash: go on from its write
                result = UpdateResult(True, old)
            elif old["state"] == RUNNING:
                return ClaimResult("busy", retry_after_ms=int(old["lease_expires"]) - now + BUSY_MARGIN_MS,
                                   reason="running elsewhere")
            else:
                self.repair(old, job)
                return ClaimResult("discard", reason=f"task is {old['state']}")
        task = result.item
        assert task is not None
        if job["state"] == SUBMITTED:
            faults.point("claim.before_job_running")
            self.db.update(job_pk(job_id), META, set={"state": RUNNING, "started_at": now},
                           condition="#state = :s", values={":s": SUBMITTED})
        return ClaimResult("run", task=self._task_payload(task, job))

    def _create_deferred(
        self, job_id: str, task_id: str, ref: tuple[str, int, int], lease: Item
    ) -> UpdateResult | None:
        """The first claim of a deferred subtask creates its item, RUNNING (a put if absent). None when
        `ref` names no deferred subtask of a committed parent attempt (the caller goes on as for any task)."""
        parent_id, attempt, index = ref
        if rules.child_task_id(parent_id, attempt, index) != task_id:
            return None
        chunk = self._spec_chunk(parent_id, attempt, index // rules.SPEC_CHUNK)
        spec = (chunk or {}).get("specs", {}).get(str(index))
        if chunk is None or spec is None or chunk["job_id"] != job_id:
            return None
        item = self._deferred_item(chunk, parent_id, attempt, index, spec)
        item.pop("ref")
        item.update(lease, attempt=1)
        return self.db.put(item, condition="attribute_not_exists(#PK)")

    def _spec_chunk(self, parent_id: str, attempt: int, chunk: int) -> Item | None:
        """A spec chunk of a committed parent attempt. Chunks never change once their parent committed, so
        each process keeps the ones it read: a fan-out's claims read one per SPEC_CHUNK subtasks."""
        key = (parent_id, attempt, chunk)
        if key in self._chunks:
            return self._chunks[key]
        parent = self.db.get(task_pk(parent_id), META, projection="state,attempt")
        if parent is None or parent["state"] != COMPUTED or int(parent["attempt"]) != attempt:
            return None  # tickets go out only after the commit: this ref is not one the orchestrator sent
        item = self.db.get(task_pk(parent_id), spec_chunk_key(attempt, chunk), consistent=False)
        if item is None:  # written before the parent's commit, but an eventually consistent read may miss it
            item = self.db.get(task_pk(parent_id), spec_chunk_key(attempt, chunk))
        if item is not None:
            if len(self._chunks) >= SPEC_CHUNK_CACHE:
                self._chunks.pop(next(iter(self._chunks)))
            self._chunks[key] = item
        return item

    def _task_payload(self, task: Item, job: Item) -> dict[str, Any]:
        text = task.get("input")
        if text is None and task.get("input_spilled"):
            spilled = self.db.get(task_pk(task["task_id"]), "INPUT")
            text = spilled["input"] if spilled else "null"
        return {
            "id": task["task_id"], "job_id": task["job_id"], "job_name": job.get("name", ""),
            "name": task["name"], "version": task["version"], "cluster": task["cluster"],
            "parent_id": task.get("parent_id"), "attempt": int(task["attempt"]),
            "retry_count": int(task.get("retry_count", 0)), "display": task.get("display"),
            "input": text if text is not None else "null", "lease_seconds": self.settings.lease_seconds,
            "lease_expires": int(task["lease_expires"]),
        }

    def extend(self, task_id: str, attempt: int, runner_id: str) -> int:
        expires = self.clock() + self.lease_ms
        result = self.db.update(
            task_pk(task_id), META, set={"lease_expires": expires},
            condition="#state = :r AND #attempt = :a AND #lease_owner = :o",
            values={":r": RUNNING, ":a": attempt, ":o": runner_id}, returns="NONE",
        )
        if not result.ok:
            raise Conflict("the lease on this task attempt is lost", code="LeaseLost")
        return expires

    def report(self, report: Report, runner_id: str, *, job: Item | None = None) -> ReportResult:
        if job is None:
            job = self._job_brief(report.job_id)
        if job is None:
            return ReportResult("lease_lost", "unknown job")
        if report.outcome == "computed":
            try:
                return self._report_computed(report, job)
            except (rules.RuleViolation, InvalidRequest, NotFound) as err:
                # The task submitted subtasks that cannot exist: that is the task's own failure.
                report = Report(report.task_id, report.job_id, report.attempt, "failed", report.display,
                                failure_message=f"invalid subtasks: {getattr(err, 'message', str(err))}")
        if report.outcome == "failed":
            return self._report_failed(report, job)
        if report.outcome == "released":
            result = self.db.update(
                task_pk(report.task_id), META, set={"state": QUEUED},
                remove=["lease_owner", "lease_expires"],
                condition="#state = :r AND #attempt = :a", values={":r": RUNNING, ":a": report.attempt},
            )
            old = result.item or {}
            if result.ok or (old.get("state") == QUEUED and old.get("attempt") == report.attempt):
                return ReportResult("requeued")
            return ReportResult("lease_lost")
        raise InvalidRequest(f"unknown outcome {report.outcome!r}")

    def _report_computed(self, report: Report, job: Item) -> ReportResult:
        now = self.clock()
        children = report.subtasks
        if len(children) > rules.MAX_SUBTASKS_PER_REPORT:
            raise InvalidRequest(f"a task may submit at most {rules.MAX_SUBTASKS_PER_REPORT} subtasks")
        ready: list[Item] = []
        commit: dict[str, Any] = {"state": COMPUTED, "finished_at": now, "children": len(children),
                                  "completed": not children}
        if report.display is not None:
            commit["display"] = rules.truncate(report.display, rules.MAX_DISPLAY_CHARS)
        if children:
            parent = self.db.get(task_pk(report.task_id), META)
            if parent is None:
                return ReportResult("lease_lost", "unknown task")
            if parent["state"] == RUNNING and parent["attempt"] == report.attempt:
                items, ready = self._task_items(
                    children, job_id=report.job_id, parent=parent, parent_attempt=report.attempt,
                    default_cluster=parent["cluster"], now=now,
                )
                latch, buckets = latch_fields("children", range(len(children)), task_pk(report.task_id))
                commit.update(latch)
                if len(children) > self.dispatch_window * rules.LATCH_BUCKET:
                    commit["window"] = self.dispatch_window
                    ready = [t for t in ready if window_open(commit, int(t["index"]))]
                self.db.put_many([*items, *buckets])
        else:
            commit.update({"children_total": 0, "children_bucketed": False})
        faults.point("complete.before_commit")
        result = self.db.update(
            task_pk(report.task_id), META, set=commit, remove=["lease_owner", "lease_expires"],
            condition="#state = :r AND #attempt = :a", values={":r": RUNNING, ":a": report.attempt},
        )
        if not result.ok:
            old = result.item
            if old and old["state"] == COMPUTED and old["attempt"] == report.attempt:
                self.repair(old, job)  # a retried report: redo what may not have happened
                return ReportResult("ok", "already recorded")
            return ReportResult("lease_lost", "the lease on this task attempt is lost")
        task = result.item
        assert task is not None
        faults.point("complete.after_commit")
        active = job["state"] in ACTIVE_JOB_STATES
        if active:
            self._dispatch(ready, suffix="")
        if task.get("completed"):
            self._propagate_completed(task, active)
        return ReportResult("ok")

    def _report_failed(self, report: Report, job: Item) -> ReportResult:
        now = self.clock()
        task = self.db.get(task_pk(report.task_id), META)
        if task is None:
            return ReportResult("lease_lost", "unknown task")
        failure = {
            "message": rules.truncate(report.failure_message or "task failed", rules.MAX_FAILURE_CHARS),
            "traceback": rules.truncate(report.failure_traceback or "", rules.MAX_FAILURE_CHARS) or None,
            "attempt": report.attempt, "at": now,
        }
        if task["state"] != RUNNING or task["attempt"] != report.attempt:
            if task["attempt"] == report.attempt and task["state"] == FAILED:
                self._fail_job(report.job_id, task, str((task.get("failure") or {}).get("message", "")))
                return ReportResult("failed", "already recorded")
            if task["attempt"] == report.attempt and task["state"] == QUEUED:
                return ReportResult("requeued", "already recorded")
            return ReportResult("lease_lost")
        used = int(task.get("retry_count", 0)) - int(task.get("retry_base", 0))
        retry = used < int(task.get("max_retries", 0))
        update: dict[str, Any] = {"failure": failure}
        if report.display is not None:
            update["display"] = rules.truncate(report.display, rules.MAX_DISPLAY_CHARS)
        if retry:
            update.update({"state": QUEUED, "retry_count": int(task.get("retry_count", 0)) + 1})
        else:
            update.update({"state": FAILED, "finished_at": now})
        result = self.db.update(
            task_pk(report.task_id), META, set=update, remove=["lease_owner", "lease_expires"],
            condition="#state = :r AND #attempt = :a", values={":r": RUNNING, ":a": report.attempt},
        )
        if not result.ok:
            old = result.item or {}
            # unless it is this request's own write, retried by botocore after a lost response
            if old.get("attempt") != report.attempt or old.get("state") != (QUEUED if retry else FAILED):
                return ReportResult("lease_lost")
        if retry:
            return ReportResult("requeued")
        faults.point("fail.before_job_update")
        self._fail_job(report.job_id, task, str(failure["message"]))
        return ReportResult("failed")

    # ================================================================================= propagation ==

    def _signal(self, owner_pk: str, kind: str, member: int, bucketed: bool) -> tuple[bool, Item | None]:
        """Record `member` in the owner's latch; returns (latch full, owner item). Idempotent."""
        if bucketed:
            bucket = member // rules.LATCH_BUCKET
            res = self.db.update(
                owner_pk, f"LATCH#{kind}#{bucket}", add={"done": {member}},
                condition="attribute_exists(#PK) AND NOT contains(#done, :m)", values={":m": member},
            )
            if res.item is None or len(res.item.get("done") or ()) < int(res.item["total"]):
                return False, None
            member = bucket
        attr = f"{kind}_done"
        res = self.db.update(
            owner_pk, META, add={attr: {member}},
            condition=f"attribute_exists(#PK) AND NOT contains(#{attr}, :m)", values={":m": member},
        )
        if res.item is None:
            return False, None
        return latch_full(res.item, kind), res.item

    def _propagate_completed(self, first: Item, job_active: bool) -> None:
        """`first` is completed: tell its dependants and its parent (or job); cascade what fills up.
        Dependants come first and their tickets go out before the parent hears of it: that is the
        critical path of a chain, and the parent's latch can wait one write longer."""
        stack = [first]
        while stack:
            task = stack.pop()
            ready: list[Item] = []
            big = set(task.get("dependents_big") or ())
            for d in [*(task.get("dependents") or ()), *big]:
                sibling = (rules.child_task_id(task["parent_id"], int(task["parent_attempt"]), d)
                           if task.get("parent_id") else rules.root_task_id(task["job_id"], d))
                full, dependant = self._signal(task_pk(sibling), "deps", int(task["index"]), d in big)
                faults.point("propagate.after_dependency_signal")
                if full and dependant is not None and dependant.get("state") == QUEUED:
                    ready.append(dependant)
            if ready:
                faults.point("propagate.before_dispatch")
                if job_active:
                    self._dispatch(ready, suffix="")
            bucketed = int(task.get("sibs", 1)) > rules.LATCH_BUCKET
            if task.get("parent_id"):
                full, parent = self._signal(task_pk(task["parent_id"]), "children", int(task["index"]), bucketed)
                if job_active and bucketed and parent is not None and parent.get("window"):
                    # the task's bucket is full: the bucket `window` after it may go out now
                    faults.point("propagate.before_window_dispatch")
                    self._dispatch_bucket(parent, int(task["index"]) // rules.LATCH_BUCKET + int(parent["window"]))
                if full and parent is not None and parent.get("state") == COMPUTED:
                    faults.point("propagate.before_parent_completed")
                    res = self.db.update(task_pk(parent["task_id"]), META, set={"completed": True},
                                         condition="#state = :c", values={":c": COMPUTED})
                    if res.ok and res.item:
                        faults.point("propagate.after_parent_completed")
                        stack.append(res.item)
            else:
                full, _ = self._signal(job_pk(task["job_id"]), "roots", int(task["index"]), bucketed)
                if full:
                    faults.point("propagate.before_job_completed")
                    done = self.db.update(job_pk(task["job_id"]), META,
                                          set={"state": COMPLETED, "finished_at": self.clock()},
                                          condition="#state IN (:s, :r)", values={":s": SUBMITTED, ":r": RUNNING})
                    if done.ok:
                        self.job_transitions[COMPLETED] += 1

    def repair(self, task: Item, job: Item) -> None:
        """Redo, idempotently, everything that follows from `task`'s recorded outcome."""
        active = job.get("state") in ACTIVE_JOB_STATES
        if task["state"] == FAILED:
            self._fail_job(task["job_id"], task, (task.get("failure") or {}).get("message", "task failed"))
            return
        if task["state"] != COMPUTED:
            return
        if active and task.get("children"):
            self._dispatch_children(task, window_open, suffix=":repair")
        if task.get("completed"):
            self._propagate_completed(task, active)

    def _dispatch_bucket(self, parent: Item, bucket: int) -> None:
        """Tickets for the ready subtasks of one latch bucket of `parent` (if it has that many)."""
        start = bucket * rules.LATCH_BUCKET
        self._dispatch_children(parent, lambda _, i: start <= i < start + rules.LATCH_BUCKET, suffix="")

    def _dispatch_children(self, parent: Item, keep: Callable[[Item, int], bool], *, suffix: str) -> None:
        """Tickets for the ready subtasks of `parent` for which `keep(parent, index)` holds."""
        self._dispatch([c for c in self._children([parent], keep) if is_ready(c)], suffix=suffix)

    def _dispatch(self, tasks: list[Item], *, suffix: str) -> None:
        by_cluster: dict[str, list[Ticket]] = defaultdict(list)
        for t in tasks:
            by_cluster[t["cluster"]].append(
                Ticket(t["job_id"], t["task_id"], t["name"], t["version"], int(t.get("attempt", 0)), t.get("ref"))
            )
        for slug, tickets in by_cluster.items():
            self.queues.send(self.cluster(slug)["queue_url"], tickets, dedup_suffix=suffix)

    # ===================================================================================== sweeper ==

    def sweep(self, *, max_jobs: int = 100, max_dlq_messages: int = 100) -> dict[str, int]:
        """Repair what a crash left behind: overdue job dispatches (outbox) and tickets in the DLQs."""
        stats = {"outbox_jobs": 0, "dlq_resent": 0, "dlq_dropped": 0}
        now = self.clock()
        due, _ = self.db.query(index=OUTBOX_INDEX, key_condition="#GSI2PK = :o AND #GSI2SK <= :now",
                               values={":o": "OUTBOX", ":now": f"{now:015d}"}, limit=max_jobs)
        for entry in due:
            job = self.db.get(entry["PK"], META)
            if job is not None:
                self.resume(job)
                stats["outbox_jobs"] += 1
        for cluster in self.db.query_all(key_condition="#PK = :pk", values={":pk": "CLUSTERS"}):
            handled = 0
            while handled < max_dlq_messages:
                messages = self.queues.receive(cluster["dlq_url"], max_messages=10, wait=0)
                if not messages:
                    break
                for message in messages:
                    handled += 1
                    resent = self._redrive(cluster, message)
                    stats["dlq_resent" if resent else "dlq_dropped"] += 1
                self.queues.delete_messages(cluster["dlq_url"], [m["ReceiptHandle"] for m in messages])
        return stats

    def _redrive(self, cluster: Item, message: dict[str, Any]) -> bool:
        try:
            ticket = Ticket.parse(message["Body"])
        except (ValueError, KeyError, TypeError):
            return False
        task = self.db.get(task_pk(ticket.task_id), META)
        job = self.db.get(job_pk(ticket.job_id), META)
        if task is None and ticket.ref is not None and job is not None and job["state"] in ACTIVE_JOB_STATES:
            task = {"state": QUEUED}  # a deferred subtask not claimed yet (the claim checks the ref)
        if task is None or job is None:
            return False
        if task["state"] in (QUEUED, RUNNING) and job["state"] in ACTIVE_JOB_STATES:
            self.queues.send(cluster["queue_url"], [ticket], dedup_suffix=f":d{self.clock()}")
            return True
        self.repair(task, job)
        return False
