"""The Tilebox SDK's RPCs (JobService, the cluster methods of WorkflowsService, TaskService) mapped onto the
orchestrator: one method per RPC, each taking its request message and the caller, returning its response
message. No state of its own: the same engine, items and tickets as taskfleet's own API and runners.

Who may call what (docs/architecture.md, "Tilebox SDK clients"): the API key's role, as the IAM roles of
taskfleet's own API have it. reader: look; submitter: look and submit; admin: everything but running tasks;
runner: its own cluster's tasks (NextTask, TaskFailed, ExtendTaskLease) and that cluster's GetCluster; full:
the admin's calls and the runner's on every cluster (one Tilebox API key's reach).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from taskfleet import rules

from ..orchestrator import Orchestrator
from ..orchestrator.keys import ApiKey
from ..views import task_view
from . import convert
from .proto import workflows_diagram_pb2 as diagram
from .proto import workflows_job_pb2 as job
from .proto import workflows_task_pb2 as task
from .proto import workflows_workflows_pb2 as workflows
from .runners import TaskService
from .wire import ConnectError, uuid_of

READ = frozenset({"reader", "submitter", "admin", "full"})
SUBMIT = frozenset({"submitter", "admin", "full"})
ADMIN = frozenset({"admin", "full"})
RUNNER = frozenset({"runner", "full"})
DEFAULT_PAGE = 100  # jobs per QueryJobs page when the client sets no limit
MAX_PAGE = 500


@dataclass(frozen=True)
class Caller:
    key: ApiKey
    token: str  # the bearer token itself: a Connect claim's lease is derived from it (runners.py)


@dataclass(frozen=True)
class Rpc:
    request: type[Message]
    call: Callable[[Any, Caller], Message]
    roles: frozenset[str]


class ConnectService:
    def __init__(self, engine: Orchestrator) -> None:
        self.engine = engine
        self.tasks = TaskService(engine)
        jobs, clusters, tasks = (
            "/workflows.v1.JobService/",
            "/workflows.v1.WorkflowsService/",
            "/workflows.v1.TaskService/",
        )
        self.rpcs: dict[str, Rpc] = {
            jobs + "SubmitJob": Rpc(job.SubmitJobRequest, self.submit_job, SUBMIT),
            jobs + "GetJob": Rpc(job.GetJobRequest, self.get_job, READ),
            jobs + "QueryJobs": Rpc(job.QueryJobsRequest, self.query_jobs, READ),
            jobs + "VisualizeJob": Rpc(job.VisualizeJobRequest, self.visualize_job, READ),
            jobs + "CancelJob": Rpc(job.CancelJobRequest, self.cancel_job, ADMIN),
            jobs + "RetryJob": Rpc(job.RetryJobRequest, self.retry_job, ADMIN),
            clusters + "CreateCluster": Rpc(workflows.CreateClusterRequest, self.create_cluster, ADMIN),
            clusters + "GetCluster": Rpc(workflows.GetClusterRequest, self.get_cluster, READ | RUNNER),
            clusters + "ListClusters": Rpc(workflows.ListClustersRequest, self.list_clusters, READ),
            clusters + "UpdateCluster": Rpc(workflows.UpdateClusterRequest, self.update_cluster, ADMIN),
            clusters + "DeleteCluster": Rpc(workflows.DeleteClusterRequest, self.delete_cluster, ADMIN),
            tasks + "NextTask": Rpc(task.NextTaskRequest, self.tasks.next_task, RUNNER),
            tasks + "TaskFailed": Rpc(task.TaskFailedRequest, self.tasks.task_failed, RUNNER),
            tasks + "ExtendTaskLease": Rpc(task.TaskLeaseRequest, self.tasks.extend_lease, RUNNER),
        }

    # --- jobs -------------------------------------------------------------------------------------------
    def _job(self, item: dict[str, Any]) -> Message:
        return convert.job_message(item, self.engine.job_figures(item))

    def submit_job(self, req: Any, caller: Caller) -> Message:
        specs = convert.task_specs(req.tasks, default_cluster=None)
        if not specs:
            raise ConnectError("invalid_argument", "a job needs at least one task")
        # the job's cluster (what `clusters` filters on): its roots' one cluster, else the default
        slugs = {spec.cluster for spec in specs}
        cluster = slugs.pop() if len(slugs) == 1 else None
        item = self.engine.submit_job(req.job_name, specs, cluster=cluster, trace_parent=req.trace_parent or None)
        return self._job(item)

    def get_job(self, req: Any, caller: Caller) -> Message:
        return self._job(self.engine.get_job(uuid_of(req.job_id, "job_id")))

    def cancel_job(self, req: Any, caller: Caller) -> Message:
        self.engine.cancel_job(uuid_of(req.job_id, "job_id"))
        return job.CancelJobResponse()

    def retry_job(self, req: Any, caller: Caller) -> Message:
        return job.RetryJobResponse(num_tasks_rescheduled=self.engine.retry_job(uuid_of(req.job_id, "job_id")))

    def visualize_job(self, req: Any, caller: Caller) -> Message:
        from taskfleet.diagram import render_svg

        item = self.engine.get_job(uuid_of(req.job_id, "job_id"))
        tasks = [task_view(t) for t in self.engine.job_tasks(str(item["job_id"]), limit=5_000)]
        title = str(item.get("name") or "") if req.include_job_name else None
        return diagram.Diagram(svg=render_svg(tasks, title=title).encode())

    def query_jobs(self, req: Any, caller: Caller) -> Message:
        filters = req.filters
        if filters.HasField("id_interval"):
            raise ConnectError(
                "invalid_argument",
                "taskfleet's job ids are random (UUIDv4), not time-ordered: query jobs by a time interval instead",
            )
        if filters.automation_ids:
            raise ConnectError("invalid_argument", "filtering by automation is not served over this protocol")
        states = [convert.JOB_STATE_NAMES[s] for s in filters.states if s in convert.JOB_STATE_NAMES]
        if filters.states and not states:  # only STARTED, which taskfleet never reports
            return job.QueryJobsResponse()
        submitted = None
        if filters.HasField("time_interval"):
            interval = filters.time_interval
            start = interval.start_time.ToMilliseconds() + (1 if interval.start_exclusive else 0)
            end = interval.end_time.ToMilliseconds() + (1 if interval.end_inclusive else 0)
            if start >= end:
                return job.QueryJobsResponse()
            submitted = (start, end)
        limit = req.page.limit if req.page.HasField("limit") else DEFAULT_PAGE
        if not 1 <= limit <= MAX_PAGE:
            raise ConnectError("invalid_argument", f"page limit must be 1-{MAX_PAGE}")
        cursor = None
        if req.page.HasField("starting_after"):  # resolved to its position in the index (one read)
            after = self.engine.get_job(uuid_of(req.page.starting_after, "starting_after"))
            cursor = self.engine.table.jobs_cursor_after(after)
        found, next_cursor = self.engine.list_jobs(
            states=states,
            name=filters.name.strip() or None,  # a part of the name, in any case (the reference's match)
            clusters=list(filters.cluster_slugs),
            submitted=submitted,
            limit=limit,
            cursor=cursor,
        )
        jobs = [convert.job_message(item, f) for item, f in zip(found, self.engine.jobs_figures(found), strict=True)]
        if filters.task_states:  # from each job's figures, which its message carries anyway
            jobs = [j for j in jobs if _has_tasks_in(j, set(filters.task_states))]
        out = job.QueryJobsResponse(jobs=jobs)
        if next_cursor:
            out.next_page.limit = limit
            out.next_page.starting_after.CopyFrom(convert.id_message(self.engine.table.cursor_job_id(next_cursor)))
        return out

    # --- clusters ---------------------------------------------------------------------------------------
    def _cluster(self, item: dict[str, Any]) -> Message:
        return convert.cluster_message(item, deletable=self.engine.clusters.deletable(item))

    def create_cluster(self, req: Any, caller: Caller) -> Message:
        item = self.engine.create_cluster(req.name, description=req.description or None, slug=req.slug or None)
        return self._cluster(item)

    def get_cluster(self, req: Any, caller: Caller) -> Message:
        slug = req.cluster_slug or rules.DEFAULT_CLUSTER
        if caller.key.role == "runner" and slug != caller.key.cluster:
            raise ConnectError(
                "permission_denied",
                f"this runner key reaches cluster {caller.key.cluster!r} only; start the runner with"
                f" cluster={caller.key.cluster!r}",
            )
        return self._cluster(self.engine.cluster(rules.check_slug(slug)))

    def list_clusters(self, req: Any, caller: Caller) -> Message:
        return workflows.ListClustersResponse(clusters=[self._cluster(c) for c in self.engine.list_clusters()])

    def update_cluster(self, req: Any, caller: Caller) -> Message:
        item = self.engine.update_cluster(
            rules.check_slug(req.cluster_slug),
            name=req.name if req.HasField("name") else None,
            description=req.description if req.HasField("description") else None,
        )
        return self._cluster(item)

    def delete_cluster(self, req: Any, caller: Caller) -> Message:
        self.engine.delete_cluster(rules.check_slug(req.cluster_slug))
        return workflows.DeleteClusterResponse()


def _has_tasks_in(message: Any, states: set[int]) -> bool:
    """Whether a job has a task in one of `states`. taskfleet counts tasks not finished yet as QUEUED (telling
    queued from running would cost a write per claim), so RUNNING matches them too."""
    if convert.TASK_STATES["RUNNING"] in states:
        states = states | {convert.TASK_STATES["QUEUED"]}
    return any(entry.count and entry.state in states for entry in message.execution_stats.tasks_by_state)
