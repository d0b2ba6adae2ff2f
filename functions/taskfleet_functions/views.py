"""Items -> API responses. The only place that decides what a client sees of the stored items."""

from __future__ import annotations

from typing import Any

from taskfleet import rules

from .orchestrator.contracts import iso
from .orchestrator.keys import ApiKey


def job_view(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": job["job_id"],
        "name": job.get("name"),
        "state": job.get("state"),
        "cluster": job.get("cluster"),
        "submitted_at": iso(job.get("submitted_at")),
        "started_at": iso(job.get("started_at")),
        "finished_at": iso(job.get("finished_at")),
        "max_retries": job.get("max_retries", 0),
        "root_tasks": job.get("roots"),
        "failure": job.get("failure"),
        "automation_id": job.get("automation_id"),
    }


def task_view(task: dict[str, Any]) -> dict[str, Any]:
    parent, attempt, job = task.get("parent_id"), int(task.get("parent_attempt", 0)), task["job_id"]

    def sibling(i: int) -> str:
        return rules.child_task_id(parent, attempt, i) if parent else rules.root_task_id(job, i)

    return {
        "id": task["task_id"],
        "job_id": job,
        "parent_id": parent,
        "index": task.get("index"),
        "name": task.get("name"),
        "version": task.get("version"),
        "cluster": task.get("cluster"),
        "state": task.get("state"),
        "waiting": task.get("waiting"),  # why a QUEUED task may not run (no runner for it, an inactive job)
        "completed": bool(task.get("completed")),
        "attempt": int(task.get("attempt", 0)),
        "retry_count": int(task.get("retry_count", 0)),
        "max_retries": int(task.get("max_retries", 0)),
        "lease_losses": int(task.get("lease_losses", 0)),
        "depends_on": [sibling(i) for i in task.get("depends_on") or ()],
        "subtasks": int(task.get("children", 0) or 0),
        "display": task.get("display") or task.get("name"),
        "optional": bool(task.get("optional_root")),
        "progress": [
            {"label": label or None, "total": int(total), "done": int(done)}
            for label, total, done in task.get("progress") or ()
        ],
        "failure": task.get("failure"),
        "last_failure": task.get("last_failure"),
        "submitted_at": iso(task.get("submitted_at")),
        "started_at": iso(task.get("started_at")),
        "finished_at": iso(task.get("finished_at")),
    }


def cluster_view(cluster: dict[str, Any], *, deletable: bool = True) -> dict[str, Any]:
    return {
        "slug": cluster["slug"],
        "name": cluster.get("name"),
        "display_name": cluster.get("name"),  # the reference's name for it
        "description": cluster.get("description"),
        "deletable": deletable,
        "dlq_url": cluster.get("dlq_url"),
        "runner_url": cluster.get("runner_url"),  # where its runners call (bound to it by IAM); None: the API
        "created_at": iso(cluster.get("created_at")),
    }


def lane_view(lane: dict[str, Any]) -> dict[str, Any]:
    return {"name": lane["name"], "version": lane["version"], "url": lane["url"]}


def key_view(key: ApiKey) -> dict[str, Any]:
    """A bearer API key as admins see it: never its token nor the token's hash."""
    return {
        "key_id": key.key_id,
        "role": key.role,
        "cluster": key.cluster,
        "lease_seconds": key.lease_seconds,
        "description": key.description,
        "created_at": iso(key.created_at),
        "revoked_at": iso(key.revoked_at),
        "revoked": key.revoked,
    }
