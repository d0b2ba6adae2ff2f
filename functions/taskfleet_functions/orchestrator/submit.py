"""Job submission: validate, write the roots, write the job (with its outbox entry), send the roots'
tickets, clear the outbox. A client token makes it idempotent: the same token returns the same job."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from taskfleet import rules

from .. import faults
from ..dal.dynamo import Item
from ..dal.repository import Table
from ..settings import Settings
from .clusters import Clusters
from .contracts import TaskSpec
from .dispatch import Dispatcher
from .errors import Conflict, InvalidRequest
from .latches import plan_sibling_latch
from .siblings import build_siblings
from .states import JobState

MAX_TRACE_PARENT_CHARS = 512  # a W3C traceparent is 55 characters; room for a vendor's longer form


@dataclass(kw_only=True)
class Submission:
    table: Table
    clusters: Clusters
    dispatcher: Dispatcher
    settings: Settings
    clock: Callable[[], int]
    resume: Callable[[Item], int]  # finishes the dispatch of a job whose outbox is still set

    def __post_init__(self) -> None:
        # a submit/retry that has not confirmed its dispatch by then is redone by the sweeper
        self.outbox_ms = int(self.settings.outbox_grace_seconds * 1000)
        self.lock_ms = int(self.settings.submit_lock_seconds * 1000)

    def submit(
        self,
        name: str,
        tasks: Sequence[TaskSpec],
        *,
        cluster: str | None = None,
        max_retries: int = 0,
        client_token: str | None = None,
        automation_id: str | None = None,
        trace_parent: str | None = None,
    ) -> Item:
        """`trace_parent`: the W3C trace context a Tilebox SDK client submits with; kept and shown with the job."""
        _check_job(name, tasks)
        if trace_parent is not None and len(trace_parent) > MAX_TRACE_PARENT_CHARS:
            raise rules.RuleViolation(f"trace_parent: at most {MAX_TRACE_PARENT_CHARS} characters")
        cluster_slug = cluster or rules.DEFAULT_CLUSTER
        job_id = rules.job_id_for_token(client_token) if client_token else str(uuid.uuid4())
        now = self.clock()
        if client_token and (existing := self.table.get_job(job_id)) is not None:
            return self._resubmitted(existing, name)
        specs = [replace(t, max_retries=t.max_retries or max_retries) for t in tasks]
        # validates everything: nothing is written for a rejected submit
        roots = build_siblings(
            specs,
            job_id=job_id,
            parent=None,
            parent_attempt=0,
            default_cluster=cluster_slug,
            now=now,
            cluster_slug=self.clusters.slug,
        )
        self.clusters.ensure_lanes((self.clusters.slug(s.cluster or cluster_slug), s.name, s.version) for s in specs)
        # One writer per token: a duplicate (a client's retry) arriving while the first request is still
        # writing must not rewrite its tasks, which may already run once the job exists. The lock goes
        # stale when its holder must be dead (the API function's timeout is shorter).
        if client_token and not self.table.take_submit_lock(job_id, now, now - self.lock_ms):
            if (existing := self.table.get_job(job_id)) is not None:
                return self._resubmitted(existing, name)
            raise Conflict("a submission with this client token is in progress; retry shortly", code="SubmitInProgress")
        self.table.put_rows(roots.rows)
        faults.point("submit.after_tasks")
        latch = plan_sibling_latch("roots", len(specs))
        job = {
            "job_id": job_id,
            "name": name,
            "state": JobState.SUBMITTED,
            "cluster": cluster_slug,
            "submitted_at": now,
            "max_retries": max_retries,
            "roots": len(specs),
            "client_token": client_token,
            **({"automation_id": automation_id} if automation_id else {}),
            **({"trace_parent": trace_parent} if trace_parent else {}),
            **latch.owner_attributes,
        }
        self.table.put_rows(self.table.sibling_bucket_row(job_id, "root", k, n) for k, n in latch.bucket_totals.items())
        result = self.table.put_job_if_absent(job, outbox_due=now + self.outbox_ms)
        if not result.ok and (result.item or {}).get("submitted_at") != now:  # a concurrent submit won
            return result.item or job  # (else it is this request's own write, retried after a lost response)
        faults.point("submit.after_write")
        self.dispatcher.send(roots.ready)
        faults.point("submit.before_clear_outbox")
        self.table.clear_outbox(job_id)
        return {**job, "type": "job"}

    def _resubmitted(self, existing: Item, name: str) -> Item:
        """A submit with the client token of an existing job: that job (its dispatch finished if needed)."""
        if existing.get("name") != name:
            raise Conflict("client token was already used for a different job", code="TokenReused")
        if existing.get("outbox_at"):
            self.resume(existing)
        return existing


def _check_job(name: str, tasks: Sequence[TaskSpec]) -> None:
    if not isinstance(name, str) or not (1 <= len(name) <= rules.MAX_JOB_NAME_CHARS):
        raise InvalidRequest(f"job name must be 1-{rules.MAX_JOB_NAME_CHARS} characters")
    if not tasks:
        raise InvalidRequest("a job needs at least one task")
    if len(tasks) > rules.MAX_ROOT_TASKS:
        raise InvalidRequest(f"a job has at most {rules.MAX_ROOT_TASKS} root tasks; submit more as subtasks")
