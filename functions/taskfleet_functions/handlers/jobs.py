"""Jobs API: submit, list, find, tasks, cancel, retry."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ..models.api import SubmitJobIn
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


@app.get("/jobs")
def list_jobs() -> Any:
    params = app.current_event.query_string_parameters or {}
    state = params.get("state")
    if state is not None and state not in JobState.__members__:
        raise InvalidRequest(f"state must be one of {sorted(JobState.__members__)}")
    jobs, cursor = orchestrator().list_jobs(
        state=state, name=params.get("name"), limit=int_param(app, "limit", 50, 1, 500), cursor=params.get("cursor")
    )
    return ok({"jobs": [job_view(j) for j in jobs], "next_cursor": cursor})


@app.get("/jobs/<job_id>")
def find(job_id: str) -> Any:
    return ok(job_view(orchestrator().get_job(job_id)))


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
    return ok(job_view(orchestrator().cancel_job(job_id)))


@app.post("/jobs/<job_id>/retry")
def retry(job_id: str) -> Any:
    return ok({"rescheduled": orchestrator().retry_job(job_id)})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
