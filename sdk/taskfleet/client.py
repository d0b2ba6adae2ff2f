"""The user-facing client: `Client(url).jobs()`, `.clusters()`, `.keys()`, `.runner(...)`."""

from __future__ import annotations

import builtins
import os
import random
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from taskfleet import rules

from .errors import ConfigurationError, ConflictError, TaskValidationError
from .http import Transport
from .protocol import TERMINAL_JOB_STATES, JobState, TaskState
from .task import Task, task_spec

if TYPE_CHECKING:
    from taskfleet_runner.runner import TaskRunner

    from .automations import AutomationClient

SUBMIT_IN_PROGRESS_WAIT = 45.0  # > the API's token lock (30 s): a dead first attempt is taken over


def _state(enum: type[JobState] | type[TaskState], value: Any) -> Any:
    """A state from the API as its enum member (a str subclass: it compares equal to the plain string); a
    value this SDK does not know stays a string."""
    try:
        return enum(value)
    except ValueError:
        return value or ""


def _datetime(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass(frozen=True)
class ProgressIndicator:
    """One progress indicator of a job: `label` (None: the unnamed one), summed over the job's tasks."""

    label: str | None
    total: int
    done: int

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> ProgressIndicator:
        return cls(label=d.get("label"), total=int(d.get("total") or 0), done=int(d.get("done") or 0))


@dataclass(frozen=True)
class ExecutionStats:
    """A job's execution figures, kept up to date as its tasks finish. `tasks_by_state` counts finished
    tasks by state exactly; tasks not finished yet (queued or running) count as QUEUED."""

    first_task_started_at: datetime | None = None
    last_task_stopped_at: datetime | None = None
    compute_time: timedelta = timedelta(0)
    elapsed_time: timedelta = timedelta(0)
    parallelism: float = 0.0  # compute time over elapsed time
    total_tasks: int = 0
    tasks_by_state: dict[TaskState, int] = field(default_factory=dict)

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> ExecutionStats:
        return cls(
            first_task_started_at=_datetime(d.get("first_task_started_at")),
            last_task_stopped_at=_datetime(d.get("last_task_stopped_at")),
            compute_time=timedelta(milliseconds=int(d.get("compute_time_ms") or 0)),
            elapsed_time=timedelta(milliseconds=int(d.get("elapsed_time_ms") or 0)),
            parallelism=float(d.get("parallelism") or 0.0),
            total_tasks=int(d.get("total_tasks") or 0),
            tasks_by_state={_state(TaskState, k): int(v) for k, v in (d.get("tasks_by_state") or {}).items()},
        )


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    state: JobState
    cluster: str
    submitted_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    max_retries: int = 0
    root_tasks: int = 0
    failure: dict[str, Any] | None = None
    # summed over the job's tasks as they finish (a job just submitted has none yet)
    progress: list[ProgressIndicator] = field(default_factory=list)
    execution_stats: ExecutionStats = field(default_factory=ExecutionStats)
    automation_id: str | None = None  # the automation that submitted it

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Job:
        return cls(
            id=data["id"],
            name=data.get("name") or "",
            state=_state(JobState, data.get("state")),
            cluster=data.get("cluster") or "",
            submitted_at=data.get("submitted_at"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            max_retries=int(data.get("max_retries") or 0),
            root_tasks=int(data.get("root_tasks") or 0),
            failure=data.get("failure"),
            progress=[ProgressIndicator.from_api(p) for p in data.get("progress") or ()],
            execution_stats=ExecutionStats.from_api(data.get("execution_stats") or {}),
            automation_id=data.get("automation_id"),
        )


@dataclass(frozen=True)
class TaskInfo:
    id: str
    job_id: str
    parent_id: str | None
    name: str
    version: str
    cluster: str
    state: str
    completed: bool
    attempt: int
    retry_count: int
    display: str
    depends_on: list[str] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    lease_losses: int = 0
    subtasks: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    optional: bool = False  # submitted optional, or below an optional task
    progress: list[ProgressIndicator] = field(default_factory=list)  # its last reported attempt's
    # Why a QUEUED task may not run: its job is FAILED or CANCELED, or no runner that can run it has
    # asked for work on its cluster lately. None when nothing stands in its way.
    waiting: str | None = None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> TaskInfo:
        return cls(
            id=d["id"],
            job_id=d["job_id"],
            parent_id=d.get("parent_id"),
            name=d["name"],
            version=d["version"],
            cluster=d["cluster"],
            state=_state(TaskState, d["state"]),
            completed=bool(d.get("completed")),
            attempt=int(d.get("attempt", 0)),
            retry_count=int(d.get("retry_count", 0)),
            display=d.get("display") or d["name"],
            depends_on=list(d.get("depends_on") or []),
            failure=d.get("failure"),
            lease_losses=int(d.get("lease_losses", 0)),
            subtasks=int(d.get("subtasks", 0)),
            started_at=d.get("started_at"),
            finished_at=d.get("finished_at"),
            waiting=d.get("waiting"),
            optional=bool(d.get("optional")),
            progress=[ProgressIndicator.from_api(p) for p in d.get("progress") or ()],
        )


@dataclass(frozen=True)
class Cluster:
    slug: str
    name: str
    description: str | None = None
    deletable: bool = True

    @property
    def display_name(self) -> str:
        """The reference's name for `name`."""
        return self.name

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Cluster:
        return cls(
            slug=d["slug"],
            name=d.get("name") or d["slug"],
            description=d.get("description"),
            deletable=bool(d.get("deletable", True)),
        )


def _job_id(job: Job | str | uuid.UUID) -> str:
    return job.id if isinstance(job, Job) else str(job)


def _check_submit(name: str, tasks: Sequence[Task], client_token: str | None) -> None:
    if not tasks:
        raise TaskValidationError("submit needs at least one task")
    if not isinstance(name, str) or not (1 <= len(name) <= 256):
        raise TaskValidationError("job name must be 1-256 characters")
    if client_token is not None and not (isinstance(client_token, str) and 1 <= len(client_token) <= 128):
        raise TaskValidationError("client_token must be a string of 1-128 characters")


def _clusters(
    cluster: str | Cluster | Sequence[str | Cluster] | None, roots: int
) -> tuple[str | None, builtins.list[str | None]]:
    """A submit's cluster argument as (the job's cluster, one per root task), checked."""
    if cluster is None or isinstance(cluster, str | Cluster):
        slugs: builtins.list[str | None] = [cluster.slug if isinstance(cluster, Cluster) else cluster]
    else:
        slugs = [c.slug if isinstance(c, Cluster) else c for c in cluster]
        if len(slugs) != roots:
            raise TaskValidationError(f"cluster: a list needs one cluster per root task ({roots}), got {len(slugs)}")
    for slug in slugs:
        if slug:
            try:
                rules.check_slug(slug)
            except rules.RuleViolation as err:
                raise TaskValidationError(str(err)) from None
    if cluster is None or isinstance(cluster, str | Cluster):
        return slugs[0], [None] * roots
    return None, slugs


def _iso(moment: datetime | str) -> str:
    """A time for a job query: a datetime (naive ones are UTC) or an ISO 8601 string."""
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


class JobClient:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def submit(
        self,
        name: str,
        task_or_tasks: Task | Sequence[Task],
        cluster: str | Cluster | Sequence[str | Cluster] | None = None,
        max_retries: int = 0,
        *,
        client_token: str | None = None,
    ) -> Job:
        """Submit a job. `cluster`: one for all root tasks, or a list with one per root task. A client token
        (generated if not given) makes the request safe to retry: the same token returns the same job
        instead of a second one."""
        tasks = [task_or_tasks] if isinstance(task_or_tasks, Task) else list(task_or_tasks)
        _check_submit(name, tasks, client_token)
        cluster, per_task = _clusters(cluster, len(tasks))
        specs = [
            task_spec(t, depends_on=[], cluster=c, max_retries=max_retries).wire()
            for t, c in zip(tasks, per_task, strict=True)
        ]
        body: dict[str, Any] = {
            "name": name,
            "tasks": specs,
            "max_retries": max_retries,
            "client_token": client_token or uuid.uuid4().hex,
        }
        if cluster:
            body["cluster"] = cluster
        # A 409 SubmitInProgress: an earlier attempt of this very request (same token) is still being
        # written, or died while writing; ask again until it is done or its token lock went stale.
        deadline = time.monotonic() + SUBMIT_IN_PROGRESS_WAIT
        delay = 0.25
        while True:
            try:
                return Job.from_api(self._t.request("POST", "/jobs", body))
            except ConflictError as err:
                if err.code != "SubmitInProgress" or time.monotonic() > deadline:
                    raise
            time.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(2.0, delay * 2)

    def find(self, job: Job | str | uuid.UUID) -> Job:
        return Job.from_api(self._t.request("GET", f"/jobs/{_job_id(job)}"))

    def query(
        self,
        temporal_extent: tuple[datetime | str, datetime | str] | None = None,
        job_states: Sequence[str] | None = None,
        name: str | None = None,
        clusters: Sequence[str | Cluster] | None = None,
        automation_ids: Sequence[str] | None = None,
        *,
        limit: int | None = None,
    ) -> builtins.list[Job]:
        """Every job that matches, newest first (pages are followed here; `limit` stops after that many).
        `temporal_extent`: jobs submitted in [start, end); `job_states`: any of these states; `name`: a part of
        the job's name, in any case."""
        query: dict[str, Any] = {"name": name}
        if temporal_extent is not None:
            query["since"], query["until"] = (_iso(t) for t in temporal_extent)
        if job_states:
            query["state"] = ",".join(str(s) for s in job_states)
        if clusters:
            query["clusters"] = ",".join(c.slug if isinstance(c, Cluster) else c for c in clusters)
        if automation_ids:
            query["automations"] = ",".join(automation_ids)
        jobs: builtins.list[Job] = []
        cursor: str | None = None
        while True:
            page_size = min(500, limit - len(jobs)) if limit is not None else 500
            page = self._t.request("GET", "/jobs", query={**query, "cursor": cursor, "limit": page_size})
            jobs.extend(Job.from_api(data) for data in page["jobs"])
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and len(jobs) >= limit):
                return jobs[:limit]

    def list(self, state: str | None = None, name: str | None = None, limit: int = 100) -> builtins.list[Job]:
        """Jobs, newest first, following pages until `limit` jobs were read."""
        return list(self.iter(state=state, name=name, limit=limit))

    def iter(self, state: str | None = None, name: str | None = None, limit: int | None = None) -> Iterator[Job]:
        cursor: str | None = None
        seen = 0
        while True:
            page = self._t.request(
                "GET", "/jobs", query={"state": state, "name": name, "cursor": cursor, "limit": min(100, limit or 100)}
            )
            for data in page["jobs"]:
                yield Job.from_api(data)
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def tasks(self, job: Job | str, *, limit: int = 5_000) -> builtins.list[TaskInfo]:
        """The job's tasks, from the roots down, at most `limit` (5,000 at most); a warning says when the job
        has more."""
        answer = self._t.request("GET", f"/jobs/{_job_id(job)}/tasks", query={"limit": limit})
        if answer.get("truncated"):
            warnings.warn(
                f"job {_job_id(job)} has more than {limit} tasks; only the first {limit} are listed",
                stacklevel=2,
            )
        return [TaskInfo.from_api(t) for t in answer["tasks"]]

    def visualize(self, job: Job | str, direction: str = "down") -> str:
        """The job's task graph as an SVG document: tasks by state colour, subtasks grouped under their
        parent, dependencies as arrows; a large fan-out of like tasks folds into one node with counts."""
        from .diagram import render_svg

        found = job if isinstance(job, Job) else self.find(job)
        tasks = self._t.request("GET", f"/jobs/{found.id}/tasks")["tasks"]
        return render_svg(tasks, direction, title=f"{found.name} ({found.state})")

    def display(self, job: Job | str, direction: str = "down") -> Any:
        """Show the job's diagram in a notebook (IPython); returns the displayed object."""
        try:
            from IPython.display import SVG, display
        except ImportError:
            raise ConfigurationError("display() needs IPython (a notebook); visualize() returns the SVG") from None
        image = SVG(self.visualize(job, direction))
        display(image)
        return image

    def cancel(self, job: Job | str) -> Job:
        return Job.from_api(self._t.request("POST", f"/jobs/{_job_id(job)}/cancel", {}))

    def retry(self, job: Job | str) -> int:
        # a token makes the request safe to send again: a resend after a lost answer gets the first's answer
        body = {"client_token": uuid.uuid4().hex}
        return int(self._t.request("POST", f"/jobs/{_job_id(job)}/retry", body)["rescheduled"])

    def wait(self, job: Job | str, timeout: float = 300.0, poll: float = 0.2) -> Job:
        """Poll until the job is COMPLETED, FAILED or CANCELED; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.find(job)
            if current.state in TERMINAL_JOB_STATES:
                return current
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {current.id} still {current.state} after {timeout} s")
            time.sleep(poll)


class ClusterClient:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, name: str, description: str | None = None, slug: str | None = None) -> Cluster:
        """A new cluster named `name` (its display name); its slug is `slug` if given (ConflictError if
        taken), else made from the name with a random suffix."""
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        if slug is not None:
            try:
                body["slug"] = rules.check_slug(slug)
            except rules.RuleViolation as err:
                raise TaskValidationError(str(err)) from None
        return Cluster.from_api(self._t.request("POST", "/clusters", body))

    def update(self, cluster: str | Cluster, *, name: str | None = None, description: str | None = None) -> Cluster:
        """Change a cluster's display name and/or description (its slug stays)."""
        slug = cluster.slug if isinstance(cluster, Cluster) else cluster
        body = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        return Cluster.from_api(self._t.request("PATCH", f"/clusters/{slug}", body))

    def find(self, slug: str) -> Cluster:
        return Cluster.from_api(self._t.request("GET", f"/clusters/{slug or 'default'}"))

    def all(self) -> builtins.list[Cluster]:
        return [Cluster.from_api(c) for c in self._t.request("GET", "/clusters")["clusters"]]

    def backlog(self, cluster: str | Cluster) -> dict[str, Any]:
        """Tickets waiting or in flight in the cluster's lanes (SQS's approximate counts): `backlog` in all,
        and `lanes`, one `{name, version, backlog}` per task identifier."""
        slug = cluster.slug if isinstance(cluster, Cluster) else cluster
        return dict(self._t.request("GET", f"/clusters/{slug}/backlog"))

    def delete(self, slug: str | Cluster, *, force: bool = False) -> None:
        """Delete a created cluster. Refused (ConflictError) for a declared cluster, and while tickets are
        queued or in flight in its lanes unless `force` (which drops them: their tasks stay QUEUED)."""
        path = f"/clusters/{slug.slug if isinstance(slug, Cluster) else slug}"
        self._t.request("DELETE", path + ("?force=true" if force else ""))


class KeyClient:
    """Bearer API keys ("taskfleet keys"), for callers that present a token instead of signing requests (the
    Connect endpoint). Admin routes. Answers are the API's key views: key_id, role, cluster, lease_seconds,
    description, created_at, revoked_at (ISO times), revoked; never a token, except `create`'s."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(
        self,
        role: str,
        *,
        cluster: str | Cluster | None = None,
        lease_seconds: int | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A new key of `role` (reader, submitter, admin, runner or full; a runner key needs the `cluster` it
        reaches; runner and full keys may set the `lease_seconds` of their claims). The answer's "token" is shown
        only here: taskfleet keeps its hash alone, so a lost token means a new key."""
        slug = cluster.slug if isinstance(cluster, Cluster) else cluster
        body = {"role": role, "cluster": slug, "lease_seconds": lease_seconds, "description": description}
        return dict(self._t.request("POST", "/keys", {k: v for k, v in body.items() if v is not None}))

    def all(self) -> builtins.list[dict[str, Any]]:
        """Every key, revoked ones too, oldest first."""
        return [dict(k) for k in self._t.request("GET", "/keys")["keys"]]

    def revoke(self, key_id: str) -> dict[str, Any]:
        """Revoke a key for good (again: no change). Processes of the deployment that checked it lately may
        still take it for up to TASKFLEET_KEY_CACHE_SECONDS (30 s by default)."""
        return dict(self._t.request("DELETE", f"/keys/{quote(key_id, safe='')}"))


class Client:
    """Connects to a taskfleet API: `url`, else the TASKFLEET_URL environment variable."""

    def __init__(self, url: str | None = None, *, session: Any = None, timeout: float = 30.0) -> None:
        url = url or os.environ.get("TASKFLEET_URL")
        if not url:
            raise ConfigurationError("no API URL: pass Client(url=...) or set TASKFLEET_URL")
        self.url = url.rstrip("/")
        self._session = session
        self.transport = Transport(self.url, session=session, timeout=timeout)

    def jobs(self) -> JobClient:
        return JobClient(self.transport)

    def clusters(self) -> ClusterClient:
        return ClusterClient(self.transport)

    def keys(self) -> KeyClient:
        """Bearer API keys (admin): create, list, revoke."""
        return KeyClient(self.transport)

    def automations(self) -> AutomationClient:
        """Cron and storage event automations (taskfleet.automations)."""
        from .automations import AutomationClient

        return AutomationClient(self.transport)

    def config(self) -> dict[str, Any]:
        return dict(self.transport.request("GET", "/config"))

    def runner(
        self, cluster: str | Cluster | None = None, tasks: Sequence[type[Task]] = (), **options: Any
    ) -> TaskRunner:
        """A task runner for `cluster` (default cluster if None) that executes the given task classes."""
        from taskfleet_runner.runner import TaskRunner

        slug = cluster.slug if isinstance(cluster, Cluster) else (cluster or "default")
        return TaskRunner(self, slug, list(tasks), **options)
