"""Jobs API: submit, list, find, tasks, cancel, retry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ..models.api import RetryIn, SubmitJobIn
from ..orchestrator import JobState
from ..orchestrator.errors import InvalidRequest
from ..views import job_view, task_view
from ..wiring import orchestrator
from .common import body, count, int_param, logger, make_app, metrics, ok, tracer

app = make_app()


@app.post("/jobs")
def submit() -> Any:
    req = body(app, SubmitJobIn)
    specs = [t.to_spec() for t in req.tasks]
    job = orchestrator().submit_job(
        req.name, specs, cluster=req.cluster, max_retries=req.max_retries, client_token=req.client_token
    )
    count("JobsSubmitted", 1)
    logger.info("job submitted", extra={"job_id": job["job_id"], "root_tasks": len(specs)})
    return ok(job_view(job), 201)


def _list_param(params: dict[str, str], name: str, limit: int = 20) -> list[str]:
    """A comma-separated query parameter (repeated ones arrive comma-joined too)."""
    values = [v for v in (params.get(name) or "").split(",") if v]
    if len(values) > limit:
        raise InvalidRequest(f"query parameter {name!r} takes at most {limit} values")
    return values


def _time_param(params: dict[str, str], name: str) -> int | None:
    """An ISO 8601 time (with a zone, or UTC) as epoch milliseconds."""
    raw = params.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"query parameter {name!r} must be an ISO 8601 time, e.g. 2026-12-01T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@app.get("/jobs")
def list_jobs() -> Any:
    """Jobs newest first: `state` (one or comma-separated), `name`, `clusters`, `automations`, submitted in
    [`since`, `until`), `limit` per page, `cursor`."""
    params = app.current_event.query_string_parameters or {}
    states = _list_param(params, "state")
    unknown = [s for s in states if s not in JobState.__members__]
    if unknown:
        raise InvalidRequest(f"state {unknown[0]!r:.40} is not one of {sorted(JobState.__members__)}")
    states = list(dict.fromkeys(JobState[s].value for s in states))  # QUEUED is SUBMITTED's older name
    since, until = _time_param(params, "since"), _time_param(params, "until")
    submitted = None
    if since is not None or until is not None:
        submitted = (since or 0, until if until is not None else 10**15)
        if submitted[0] >= submitted[1]:
            raise InvalidRequest("'since' must be before 'until'")
    jobs, cursor = orchestrator().list_jobs(
        states=states,
        name=params.get("name"),
        clusters=_list_param(params, "clusters"),
        automation_ids=_list_param(params, "automations"),
        submitted=submitted,
        limit=int_param(app, "limit", 50, 1, 500),
        cursor=params.get("cursor"),
    )
    figures = orchestrator().jobs_figures(jobs)
    return ok({"jobs": [{**job_view(job), **f} for job, f in zip(jobs, figures, strict=True)], "next_cursor": cursor})


def _with_figures(job: dict[str, Any]) -> dict[str, Any]:
    """The job as the API shows it: its item, its progress and its execution stats."""
    return {**job_view(job), **orchestrator().job_figures(job)}


@app.get("/jobs/<job_id>")
def find(job_id: str) -> Any:
    return ok(_with_figures(orchestrator().get_job(job_id)))


# A job's tasks are answered whole up to this many (about 3 MB: Lambda answers at most 6 MB), the first ones
# of the walk from the roots, with `truncated` saying when there are more (docs/architecture.md, "Limits").
MAX_TASKS_ANSWERED = 5_000


@app.get("/jobs/<job_id>/tasks")
def tasks(job_id: str) -> Any:
    limit = int_param(app, "limit", MAX_TASKS_ANSWERED, 1, MAX_TASKS_ANSWERED)
    found = orchestrator().job_tasks(job_id, limit=limit + 1)
    return ok({"tasks": [task_view(t) for t in found[:limit]], "truncated": len(found) > limit})


@app.post("/jobs/<job_id>/cancel")
def cancel(job_id: str) -> Any:
    return ok(_with_figures(orchestrator().cancel_job(job_id)))


@app.post("/jobs/<job_id>/retry")
def retry(job_id: str) -> Any:
    req = body(app, RetryIn)
    return ok({"rescheduled": orchestrator().retry_job(job_id, req.client_token)})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
